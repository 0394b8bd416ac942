"""The image viewer, the attributes panel and the thumbnail panel.

Rasters are read on a worker at a size that fits the screen (`core.rasterinfo.read_overview`), stretched on a
worker (`core.render.levels` / `apply_levels`, the same functions the export uses, so what you export is
what you see) and shown in a pyqtgraph `ImageItem` (row-major, C-contiguous RGBA uint8, explicit levels,
auto-downsampling). The image item covers the raster's full-resolution pixel grid, so mouse positions are
full-resolution pixel coordinates; map coordinates come from the geotransform and lon/lat from a coarse
lattice precomputed by the core (`core.export.lonlat_grid`), never from GDAL on the GUI thread.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QGuiApplication, QImage, QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSplitter,
    QToolButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from s2desktop.gui import workers
from s2desktop.gui.band_picker import BandPicker

log = logging.getLogger(__name__)

STRETCH_LABELS = [
    ("percentile", "Percentile cut"),
    ("shared", "Shared cut"),
    ("minmax", "Min – max"),
    ("truecolor", "True colour"),
    ("levels", "Per-band levels"),
    ("classes", "SCL classes"),
]
BAND_COLOURS = ["#d62728", "#2ca02c", "#1f77b4"]
BACKGROUND = "#2b2d30"
PAINT_MS = 100  # a running composite's windows are shown at most this often


def screen_max_size() -> int:
    """Longest side to read: enough for the screen, at most 2048 px (the full-res read is only for export)."""
    screen = QGuiApplication.primaryScreen()
    if screen is None:
        return 1600
    g = screen.availableGeometry()
    ratio = screen.devicePixelRatio() or 1.0
    return int(max(800, min(2048, max(g.width(), g.height()) * ratio)))


# --- worker jobs (no Qt widgets in here) ------------------------------------------------------------------------


def _load_job(path: str, max_size: int, bands=None) -> dict:
    from s2desktop.core import export, rasterinfo
    from s2desktop.core.display_bands import default_indexes

    if bands is None:  # true colour when the bands are named so, else the first three
        head = rasterinfo.raster_info(path)
        bands = default_indexes(head.count, head.descriptions)
    data, valid, info = rasterinfo.read_overview(path, max_size, bands)
    try:  # our composites carry OUTPUT_OFFSET; band files have scene metadata
        offset = int(info.tags["OUTPUT_OFFSET"]) if "OUTPUT_OFFSET" in info.tags else (
            rasterinfo.file_offset(path)[0] or 0)
    except Exception:  # no scene metadata: reflectance offset unknown, 0 is the pre-2022 convention
        offset = 0
    try:
        grid = export.lonlat_grid(info.crs_wkt, info.transform, info.width, info.height)
    except Exception as exc:  # odd CRS: no lon/lat readout, the rest still works
        log.info("no lon/lat for %s: %s", path, exc)
        grid = None
    k = max(1, int(np.sqrt(valid.size / 250_000)))  # histogram from a subsample of ~250k pixels
    sub, subvalid = data[:, ::k, ::k], valid[::k, ::k]
    hists = []
    for b in range(sub.shape[0]):
        v = sub[b][subvalid]
        if v.size:
            lo, hi = np.percentile(v, [0.1, 99.9])
            counts, edges = np.histogram(v, bins=128, range=(float(lo), float(hi) if hi > lo else float(lo) + 1))
        else:
            counts, edges = np.zeros(1), np.array([0.0, 1.0])
        hists.append((counts, edges))
    classes = None  # the classes a scene classification holds (for the legend), counted here, off the GUI thread
    if rasterinfo.is_scene_classification(info):
        counts = np.bincount(data[0][valid].ravel(), minlength=256)
        classes = [int(v) for v in np.flatnonzero(counts) if v != 0]
    return dict(path=path, data=data, valid=valid, info=info, offset=int(offset), grid=grid, hists=hists,
                classes=classes, bands=tuple(bands))


def _render_job(data, valid, mode, low, high, gamma, offset, manual):
    """Levels of the chosen stretch (or the user's own per-band levels), then core.render's levels + gamma + RGBA."""
    from s2desktop.core import render

    if mode == "classes":  # a scene classification in its class colours: no levels
        return np.ascontiguousarray(render.classes(data, valid)), []
    if mode == "levels" and manual:
        levels = [tuple(map(float, lv)) for lv in manual]
    else:
        levels = render.levels(data, valid, mode if mode in render.STRETCHES else "percentile",
                               low=low, high=high, offset=offset)
    u8 = render.apply_levels(data, valid, levels, gamma)
    return np.ascontiguousarray(render.to_rgba(u8 if u8.shape[0] >= 3 else u8[:1], valid)), levels


def _thumbnail_job(path: str, size: int, mode: str, low: float, high: float, gamma: float, offset: int,
                   levels, bands=None) -> np.ndarray:
    """(h, w, 4) RGBA: core.render.thumbnail for the named stretches, explicit levels for 'levels'."""
    from s2desktop.core import render
    from s2desktop.core.rasterinfo import read_overview

    if mode in render.MODES:
        return render.thumbnail(path, size, mode, bands, offset=offset, low=low, high=high, gamma_value=gamma)
    data, valid, _info = read_overview(path, size, bands, enlarge=True)
    u8 = render.apply_levels(data, valid, levels, gamma)
    return render.to_rgba(u8 if u8.shape[0] >= 3 else u8[:1], valid)


def rgba_to_qimage(rgba: np.ndarray) -> QImage:
    rgba = np.ascontiguousarray(rgba)
    h, w = rgba.shape[:2]
    return QImage(rgba.tobytes(), w, h, 4 * w, QImage.Format.Format_RGBA8888).copy()


# --- the viewer ----------------------------------------------------------------------------------------------


READOUT_EMPTY = "Move the cursor over the image for pixel values and coordinates."


class RasterViewer(QWidget):
    loaded = Signal(str, object)  # path, RasterInfo
    rendered = Signal()
    loadFailed = Signal(str, str)  # message, details
    statusMessage = Signal(str)
    pixelClicked = Signal(int, int)  # row, col of the full-resolution pixel clicked (the pixel inspector's)
    windowsPainted = Signal(int)  # a running composite's windows on screen so far (`paint_window`)

    def __init__(self, parent=None):
        super().__init__(parent)
        self._init_state()
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.setSpacing(2)
        lay.addLayout(self._build_controls())
        self.band_picker = BandPicker()  # a row of its own: which bands show as R, G, B (three bands or more)
        lay.addWidget(self.band_picker)
        self._build_banners(lay)
        self._build_image_view()
        self._build_histogram()
        lay.addWidget(self._build_split(), 1)
        self._build_readout(lay)
        self._render_timer = QTimer(self)
        self._render_timer.setSingleShot(True)
        self._render_timer.setInterval(120)
        self._paint_timer = QTimer(self)  # windows arriving together are shown together
        self._paint_timer.setSingleShot(True)
        self._paint_timer.setInterval(PAINT_MS)
        self._connect()
        self._stretch_changed()

    def _init_state(self) -> None:
        self.path: str | None = None
        self.data = None
        self.valid = None
        self.info = None
        self.grid = None
        self.offset = 0
        self.levels: list[tuple[float, float]] = []
        self.manual_levels: list[tuple[float, float]] | None = None
        self.image_rgba = None
        self.classes: list[int] | None = None  # values present in a scene classification (the legend)
        self._generation = 0
        self._fit_pending = False  # a dropped first render still owes the view its fit
        self._loading = None
        self._user_mode: str | None = None  # a stretch the user picked is kept for the next raster
        self.bands: tuple[int, ...] | None = None  # the 1-based bands shown (band_picker chooses them)
        self.readout_extra = None  # callable(px) -> text after the readout's values (the window: a count layer)
        self.canvas = None  # core.render.WindowCanvas: a running composite's windows, until its output opens

    def _build_stretch_combo(self) -> None:
        self.stretch = QComboBox()
        for key, label in STRETCH_LABELS:
            self.stretch.addItem(label, key)
        self.stretch.setItemData(self.stretch.findData("truecolor"), "Sentinel Hub true colour: reflectance 0–0.4 → 0–255",
                                 Qt.ItemDataRole.ToolTipRole)
        self.stretch.setItemData(self.stretch.findData("shared"), "One percentile cut for all bands: colours keep "
                                 "their balance (the default for RGB composites)", Qt.ItemDataRole.ToolTipRole)
        self.stretch.setItemData(self.stretch.findData("percentile"), "A percentile cut per band: more contrast, "
                                 "but each band is pulled to its own range (tints)", Qt.ItemDataRole.ToolTipRole)
        self.stretch.setToolTip("How raw values become screen brightness (the export uses the same)")

    def _build_level_inputs(self) -> None:
        """The percentile cut (low, high), gamma and the band whose levels the histogram edits."""
        self.low = QDoubleSpinBox()
        self.high = QDoubleSpinBox()
        for sb, v in ((self.low, 2.0), (self.high, 98.0)):
            sb.setRange(0.0, 100.0)
            sb.setDecimals(1)
            sb.setSingleStep(0.5)
            sb.setValue(v)
            sb.setSuffix(" %")
        self.gamma = QDoubleSpinBox()
        self.gamma.setRange(0.2, 4.0)
        self.gamma.setSingleStep(0.1)
        self.gamma.setValue(1.0)
        self.gamma.setToolTip("Gamma (>1 brightens mid-tones)")
        self.band = QComboBox()
        self.band.addItems(["Red", "Green", "Blue"])
        self.band.setToolTip("Band whose levels the histogram's region edits")

    def _build_controls(self) -> QHBoxLayout:
        """The row above the image: stretch, cut, gamma, band and Fit."""
        controls = QHBoxLayout()
        controls.setContentsMargins(6, 4, 6, 0)
        self._build_stretch_combo()
        self._build_level_inputs()
        self.fit_button = QToolButton()
        self.fit_button.setText("Fit")
        self.fit_button.setToolTip("Zoom to the whole image")
        controls.addWidget(QLabel("Stretch"))
        controls.addWidget(self.stretch)
        self.cut_label = QLabel("cut")
        controls.addWidget(self.cut_label)
        controls.addWidget(self.low)
        controls.addWidget(self.high)
        self.gamma_label = QLabel("gamma")
        controls.addWidget(self.gamma_label)
        controls.addWidget(self.gamma)
        self.band_label = QLabel("band")
        controls.addWidget(self.band_label)
        controls.addWidget(self.band)
        controls.addStretch(1)
        controls.addWidget(self.fit_button)
        return controls

    def _build_banners(self, lay: QVBoxLayout) -> None:
        """The preview note and the scene-classification legend, both hidden until needed."""
        self.note_label = QLabel()  # what the image is when it is not the final result (a preview)
        self.note_label.setObjectName("viewerNote")
        self.note_label.setStyleSheet("background: #fff3cd; color: #6b4e00; padding: 3px 6px; font-weight: bold;")
        self.note_label.setVisible(False)
        lay.addWidget(self.note_label)
        self.legend = QLabel()  # the classes of a scene classification and their colours
        self.legend.setWordWrap(True)
        self.legend.setContentsMargins(6, 0, 6, 0)
        self.legend.setVisible(False)
        lay.addWidget(self.legend)

    def _build_image_view(self) -> None:
        self.glw = pg.GraphicsLayoutWidget()
        self.glw.setBackground(BACKGROUND)
        self.vb = self.glw.addViewBox(lockAspect=True, invertY=True, enableMenu=False)
        self.image = pg.ImageItem(axisOrder="row-major")
        self.image.setAutoDownsample(True)
        self.vb.addItem(self.image)
        self.placeholder = pg.TextItem(
            "Open a raster (File → Open, or drop a GeoTIFF / JP2 here)\nor run a composite to see it here.",
            color="#c8c8c8", anchor=(0.5, 0.5))
        self.vb.addItem(self.placeholder)
        self.placeholder.setPos(0, 0)
        self.vb.setRange(QRectF(-1, -1, 2, 2))

    def _build_histogram(self) -> None:
        """The histogram with the levels region and each band's own cut marks."""
        self.hist = pg.PlotWidget()
        self.hist.setBackground("w")
        self.hist.setMaximumHeight(110)
        self.hist.setMinimumHeight(70)
        self.hist.setMenuEnabled(False)
        self.hist.getPlotItem().hideButtons()
        self.hist.getPlotItem().hideAxis("left")
        self.hist.getPlotItem().getViewBox().setMouseEnabled(x=True, y=False)
        self.region = pg.LinearRegionItem(values=(0, 1), brush=pg.mkBrush(100, 100, 100, 40))
        self.region.setZValue(10)
        self.hist.addItem(self.region)
        self._hist_curves = []
        self.cut_marks = []  # each band's own (lo, hi), in its colour, when the bands' cuts differ
        for col in BAND_COLOURS:
            for _edge in (0, 1):
                m = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen(col, width=1.2, style=Qt.PenStyle.DashLine))
                m.setZValue(11)
                m.setVisible(False)
                self.hist.addItem(m)
                self.cut_marks.append(m)

    def _build_split(self) -> QSplitter:
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.glw)
        split.addWidget(self.hist)
        split.setStretchFactor(0, 1)
        split.setStretchFactor(1, 0)
        split.setCollapsible(0, False)
        split.setSizes([800, 90])
        self.hist.setVisible(False)  # shown once a raster is open
        self.glw.setMinimumHeight(200)
        return split

    def _build_readout(self, lay: QVBoxLayout) -> None:
        # two lines (pixel and values / map and geographic coordinates) so nothing is cut in a narrow viewer
        self.readout = QLabel(READOUT_EMPTY)
        self.readout.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.readout.setContentsMargins(6, 0, 6, 4)
        self.readout.setStyleSheet("font-family: monospace;")
        self.readout.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.readout.setFixedHeight(2 * self.readout.fontMetrics().lineSpacing() + 6)
        lay.addWidget(self.readout)

    def _connect(self) -> None:
        self.stretch.activated.connect(lambda _i: setattr(self, "_user_mode", self.stretch.currentData()))
        self.fit_button.clicked.connect(self.fit)
        self.glw.scene().sigMouseMoved.connect(self._mouse_moved)
        self.glw.scene().sigMouseClicked.connect(self._mouse_clicked)
        self.region.sigRegionChangeFinished.connect(self._region_changed)
        self._render_timer.timeout.connect(self.render)
        self._paint_timer.timeout.connect(self._show_canvas)
        self.stretch.currentIndexChanged.connect(self._stretch_changed)
        for sb in (self.low, self.high, self.gamma):
            sb.valueChanged.connect(lambda _v: self._render_timer.start())
        self.band.currentIndexChanged.connect(self._band_changed)
        self.band_picker.bandsChosen.connect(lambda bands: self.open(self.path, bands) if self.path else None)

    @property
    def note(self) -> str:
        return self.note_label.text()

    def set_note(self, text: str) -> None:
        """A banner above the image saying what it is when it is not the final result ('' removes it)."""
        self.note_label.setText(text)
        self.note_label.setVisible(bool(text))

    # -- loading
    def open(self, path, bands=None) -> workers.Worker:
        """Read the raster (``bands``: the 1-based bands to show; None: its default, true colour when named)."""
        path = str(path)
        self.statusMessage.emit(f"Reading {Path(path).name}…")
        self._generation += 1
        gen = self._generation
        w = workers.start(_load_job, path, screen_max_size(), bands, name="read overview",
                          on_result=lambda r: self._loaded(r, gen),
                          on_error=lambda m, d: self._load_failed(path, m, d))
        self._loading = w
        return w

    def _load_failed(self, path: str, message: str, details: str) -> None:
        self.statusMessage.emit(f"Cannot open {Path(path).name}: {message}")
        self.loadFailed.emit(message, details)

    def _loaded(self, r: dict, gen: int) -> None:
        if gen != self._generation:
            return
        extent = (r["info"].width, r["info"].height)
        same = r["path"] == self.path and self.info is not None and (  # other bands of it: the view stays
            extent == (self.info.width, self.info.height))
        # a composite painted window by window: its output replaces the windows without moving the view
        same = same or (self.canvas is not None and self.canvas.extent == extent)
        self.canvas = None
        self._paint_timer.stop()
        self.path, self.bands = r["path"], r["bands"]
        self.data, self.valid, self.info = r["data"], r["valid"], r["info"]
        self.grid, self.offset = r["grid"], r["offset"]
        self.classes = r["classes"]
        self.manual_levels = None
        self._choose_mode_for(self.info)
        self._set_hists(r["hists"])
        self.placeholder.setVisible(False)
        self.hist.setVisible(True)
        self.readout.setText(READOUT_EMPTY)  # the last raster's pixel is not this one's
        # The image item takes the new raster's extent now, and the view fits it at once: a view left at the
        # last raster's range would show a crop until the new render arrives (preview -> full resolution).
        self.image.setRect(QRectF(0, 0, self.info.width, self.info.height))
        if not same:
            self.fit()
        self.band_picker.set_raster(self.info.count, self.info.descriptions, self.bands)
        self.loaded.emit(self.path, self.info)
        self.render(fit=not same)

    # -- a running composite's windows
    def paint_window(self, px) -> None:
        """A finished window of a running composite (`core.progress.WindowPixels`), painted at once into an image
        of the preview's size in a fixed true-colour stretch (`core.render.WindowCanvas`); the composite's output,
        opened when it is written, replaces the image over the same extent without moving the view."""
        from s2desktop.core.render import WindowCanvas

        first = self.canvas is None or not self.canvas.fits(px)
        if first:
            self._start_canvas(WindowCanvas.for_window(px))
        self.canvas.paste(px)
        if first:
            self._show_canvas()  # the first window at once; the next ones together, at most every PAINT_MS
        elif not self._paint_timer.isActive():
            self._paint_timer.start()

    def _start_canvas(self, canvas) -> None:
        """The raster shown gives way to the windows being painted: its readout, histogram and renders go."""
        shown = (self.info.width, self.info.height) if self.info is not None else (
            self.canvas.extent if self.canvas is not None else None)
        self._generation += 1  # a load or render of the last raster still running is stale now
        self.canvas = canvas
        self.path = self.data = self.valid = self.info = self.grid = None
        self.levels, self.image_rgba, self.classes = [], None, None
        self.placeholder.setVisible(False)
        # Qt scales the windows' image as it draws it: pyqtgraph's downsampling of the whole image again for every
        # few windows held the GUI thread ~80 ms a repaint (tests/benchmarks/bench_gui_latency.py)
        self.image.setAutoDownsample(False)
        self.stretch.blockSignals(True)  # the stretch the windows are painted in; the output opens in its own
        self.stretch.setCurrentIndex(self.stretch.findData("truecolor"))
        self.stretch.blockSignals(False)
        self._update_controls()
        self._set_hists([])  # no histogram until the output is read; its room stays, so the view keeps its size
        self.hist.setVisible(True)
        self.legend.setVisible(False)
        self.readout.setText(READOUT_EMPTY)
        if shown != canvas.extent:
            self.vb.setRange(QRectF(0, 0, *canvas.extent), padding=0.02)

    def _show_canvas(self) -> None:
        if self.canvas is None:
            return
        self.image.setImage(self.canvas.rgba, levels=(0, 255), autoLevels=False)
        self.image.setRect(QRectF(0, 0, *self.canvas.extent))
        self.windowsPainted.emit(self.canvas.windows)

    def drop_windows(self) -> bool:
        """A run that ended without an output (cancelled, failed): its windows go. -> whether there were any."""
        if self.canvas is None:
            return False
        self.canvas = None
        self._paint_timer.stop()
        self.image.clear()
        self.image.setAutoDownsample(True)
        self.placeholder.setVisible(True)
        self.vb.setRange(QRectF(-1, -1, 2, 2))  # the placeholder's own view, as before any raster
        return True

    def _set_hists(self, hists) -> None:
        for c in self._hist_curves:
            self.hist.removeItem(c)
        self._hist_curves = []
        self._hists = hists
        colours = BAND_COLOURS if len(hists) >= 3 else ["#444444"]
        for (counts, edges), col in zip(hists, colours):
            c = self.hist.plot(edges, counts, stepMode="center", pen=pg.mkPen(col, width=1.2))
            self._hist_curves.append(c)

    # -- rendering
    def stretch_params(self) -> dict:
        return dict(mode=self.stretch.currentData(), low=self.low.value(), high=self.high.value(),
                    gamma=self.gamma.value(), offset=self.offset, manual=self.manual_levels, bands=self.bands)

    def render(self, fit: bool = False) -> workers.Worker | None:
        if self.data is None:
            return None
        p = self.stretch_params()
        if p["low"] >= p["high"]:
            self.statusMessage.emit("The low cut must be below the high cut")
            return None
        self._generation += 1
        gen = self._generation
        return workers.start(_render_job, self.data, self.valid, p["mode"], p["low"], p["high"], p["gamma"],
                             p["offset"], p["manual"], name="render",
                             on_result=lambda r: self._rendered(r, gen, fit),
                             on_error=lambda m, d: self.statusMessage.emit(f"Cannot render: {m}"))

    def _rendered(self, r, gen: int, fit: bool) -> None:
        # Stale: a newer render was started, or the stretch changed and its (debounced) render is pending.
        if gen != self._generation or self._render_timer.isActive():
            self._fit_pending = self._fit_pending or fit
            return
        rgba, levels = r
        self.image_rgba = rgba
        self.levels = [tuple(x) for x in levels]
        self.image.setAutoDownsample(True)  # after a composite's windows (`_start_canvas`)
        self.image.setImage(rgba, levels=(0, 255), autoLevels=False)
        self.image.setRect(QRectF(0, 0, self.info.width, self.info.height))
        self._sync_region()
        if fit or self._fit_pending:
            self._fit_pending = False
            self.fit()
        self.statusMessage.emit(f"{Path(self.path).name}: {self.info.width} × {self.info.height} px, "
                                f"shown at {rgba.shape[1]} × {rgba.shape[0]}")
        self.rendered.emit()

    def fit(self) -> None:
        if self.info is not None:
            self.vb.setRange(QRectF(0, 0, self.info.width, self.info.height), padding=0.02)

    def _choose_mode_for(self, info) -> None:
        """A scene classification opens in its class colours, anything else in the stretch the user picked or,
        until they pick one, in its kind's default (core.render.default_stretch: true colour for RGB)."""
        from s2desktop.core.rasterinfo import is_scene_classification
        from s2desktop.core.render import default_stretch

        scl = is_scene_classification(info)
        mode = self.stretch.currentData()
        chosen = self._user_mode if self._user_mode not in (None, "classes") else None
        want = "classes" if scl else (chosen or default_stretch(info.count, info.dtypes))
        if want != mode:
            self.stretch.blockSignals(True)  # the load renders anyway: no second render from the change
            self.stretch.setCurrentIndex(self.stretch.findData(want))
            self.stretch.blockSignals(False)
        self._update_controls()

    def _update_controls(self) -> None:
        mode = self.stretch.currentData()
        for w in (self.low, self.high, self.cut_label):
            w.setVisible(mode in ("percentile", "shared"))
        for w in (self.band, self.band_label):
            w.setVisible(mode == "levels")
        for w in (self.gamma, self.gamma_label):
            w.setVisible(mode != "classes")
        self.legend.setVisible(mode == "classes")
        if mode == "classes":
            self.legend.setText(self._legend_html())

    def _legend_html(self) -> str:
        from s2desktop.core.render import SCL_CLASSES, UNKNOWN_CLASS, class_name

        items = []
        for v in self.classes or []:
            r, g, b = SCL_CLASSES[v][1] if v in SCL_CLASSES else UNKNOWN_CLASS
            back = "background-color:#6b6b6b; " if min(r, g, b) >= 180 else ""  # white, light grey: on a light panel
            name = f"{v} {class_name(v)}".replace(" ", "&nbsp;")  # an entry never breaks across lines
            items.append(f"<span style='{back}color:rgb({r},{g},{b}); font-size:14px'>■</span>&nbsp;{name}")
        return " &nbsp; ".join(items) or "No classified pixels"

    def _stretch_changed(self, *_):
        mode = self.stretch.currentData()
        self._update_controls()
        if mode == "levels" and self.manual_levels is None and self.levels:
            self.manual_levels = list(self.levels)
        self._render_timer.start()

    def _band_changed(self, *_):
        self._sync_region()

    def _sync_region(self) -> None:
        self._show_cut_marks()
        if not self.levels:
            return
        i = min(self.band.currentIndex(), len(self.levels) - 1)
        lv = (self.manual_levels or self.levels)[i] if self.stretch.currentData() == "levels" else self.levels[i]
        self.region.blockSignals(True)
        self.region.setRegion(lv)
        self.region.blockSignals(False)

    def _show_cut_marks(self) -> None:
        """The region edits one band; when the bands' cuts differ, each band's own cut shows in its colour."""
        differ = len(self.levels) >= 3 and len(set(self.levels[:3])) > 1
        for i, m in enumerate(self.cut_marks):
            if differ:
                m.setValue(self.levels[i // 2][i % 2])
            m.setVisible(differ)

    def _region_changed(self, *_):
        if not self.levels:
            return
        lo, hi = self.region.getRegion()
        manual = list(self.manual_levels or self.levels)
        manual[min(self.band.currentIndex(), len(manual) - 1)] = (float(lo), float(hi))
        self.manual_levels = manual
        if self.stretch.currentData() != "levels":
            self.stretch.setCurrentIndex(self.stretch.findData("levels"))
        self._render_timer.start()

    # -- readout
    def pixel_at(self, col: float, row: float) -> dict | None:
        """Values and coordinates at a full-resolution pixel position (used by the readout and the tests)."""
        if self.data is None or self.info is None:
            return None
        W, H = self.info.width, self.info.height
        if not (0 <= col < W and 0 <= row < H):
            return None
        h, w = self.data.shape[1:]
        r = min(h - 1, int(row * h / H))
        c = min(w - 1, int(col * w / W))
        values = [int(v) if np.issubdtype(self.data.dtype, np.integer) else float(v) for v in self.data[:, r, c]]
        a, b, cc, d, e, f = self.info.transform[:6]
        ccol, crow = int(col) + 0.5, int(row) + 0.5  # the pixel's centre
        x = a * ccol + b * crow + cc
        y = d * ccol + e * crow + f
        from s2desktop.core.export import interpolate_lonlat

        ll = interpolate_lonlat(self.grid, ccol, crow)
        return dict(col=int(col), row=int(row), values=values, valid=bool(self.valid[r, c]), x=x, y=y, lonlat=ll)

    def _mouse_moved(self, pos) -> None:
        if self.data is None:
            return
        p = self.vb.mapSceneToView(pos)
        px = self.pixel_at(p.x(), p.y())
        self.readout.setText(self.readout_text(px) if px is not None else READOUT_EMPTY)

    def _mouse_clicked(self, ev) -> None:
        """A left click on the raster: pixelClicked(row, col) of the full-resolution pixel under it."""
        if self.data is None or ev.button() != Qt.MouseButton.LeftButton:
            return
        p = self.vb.mapSceneToView(ev.scenePos())
        px = self.pixel_at(p.x(), p.y())
        if px is not None:
            self.pixelClicked.emit(px["row"], px["col"])

    def readout_text(self, px: dict) -> str:
        """Two lines: 'pixel col, row   values [...]' and 'EPSG:n x, y   lon .., lat ..'."""
        vals = ", ".join(str(v) for v in px["values"]) if px["valid"] else "nodata"
        if px["valid"] and self.stretch.currentData() == "classes":
            from s2desktop.core.render import class_name

            vals += f" {class_name(px['values'][0])}"
        crs = f"EPSG:{self.info.crs_epsg}" if self.info is not None and self.info.crs_epsg else "map"
        line2 = f"{crs}  x {px['x']:.1f}  y {px['y']:.1f}"
        if px["lonlat"]:
            lon, lat = px["lonlat"]
            line2 += f"   lon {lon:.5f}  lat {lat:.5f}"
        extra = self.readout_extra(px) if self.readout_extra is not None else ""
        return f"pixel {px['col']}, {px['row']}   values [{vals}]{extra}\n{line2}"

    def dragEnterEvent(self, ev):  # the main window handles drops; keep the viewer transparent to them
        ev.ignore()


def plain_number(v: float) -> str:
    """A float as plain digits, never exponent notation: map coordinates must read as coordinates
    (2690220.0, not 2.69022e+06), and every digit the file holds is kept."""
    return np.format_float_positional(v, trim="0")


def readable_number(v: float) -> str:
    """At most 4 decimals, trailing zeros dropped: a preview's pixel size of 109800 / 275 m reads 399.2727."""
    return np.format_float_positional(float(v), precision=4, trim="-")


class AttributesPanel(QTreeWidget):
    """The core's RasterInfo as a tree (nested dicts and lists expand)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setColumnCount(2)
        self.setHeaderLabels(["Attribute", "Value"])
        self.header().setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        self.setAlternatingRowColors(True)
        self.setWordWrap(False)
        self.set_info(None)

    def set_info(self, info) -> None:
        self.clear()
        if info is None:
            QTreeWidgetItem(self, ["(no raster open)", ""])
            return
        d = info.to_dict() if hasattr(info, "to_dict") else dict(info)
        order = ["path", "driver", "width", "height", "count", "dtypes", "crs_epsg", "resolution", "bounds",
                 "bounds_lonlat", "nodata", "compression", "block_shapes", "overviews", "colorinterp",
                 "descriptions", "file_size", "transform", "tags", "band_tags", "image_structure", "crs_wkt"]
        keys = [k for k in order if k in d] + [k for k in d if k not in order]
        for k in keys:
            self._add(self, k, d[k])
        res = self.findItems("resolution", Qt.MatchFlag.MatchExactly, 0)
        if res and isinstance(d.get("resolution"), (list, tuple)):  # a pixel size to read, its digits in the tip
            res[0].setText(1, ", ".join(readable_number(v) for v in d["resolution"]))

    def _add(self, parent, key, value) -> None:
        if isinstance(value, dict) and value:
            item = QTreeWidgetItem(parent, [str(key), f"{len(value)} entries"])
            for k, v in value.items():
                self._add(item, k, v)
        elif isinstance(value, (list, tuple)) and value and any(isinstance(v, (dict, list, tuple)) for v in value):
            item = QTreeWidgetItem(parent, [str(key), f"{len(value)} items"])
            for i, v in enumerate(value):
                self._add(item, f"[{i}]", v)
        else:
            if isinstance(value, (list, tuple)):
                text = ", ".join(plain_number(v) if isinstance(v, float) else str(v) for v in value)
            elif isinstance(value, float):
                text = plain_number(value)
            elif value is None:
                text = "–"
            else:
                text = str(value)
            item = QTreeWidgetItem(parent, [str(key), text])
            item.setToolTip(1, text[:2000])
            if parent is not self:
                pass

    def value_of(self, key: str) -> str | None:
        items = self.findItems(key, Qt.MatchFlag.MatchExactly, 0)
        return items[0].text(1) if items else None


class ThumbnailPanel(QWidget):
    """Choose a size, see the thumbnail (current stretch), save it as PNG."""

    thumbnailReady = Signal(QImage)

    def __init__(self, viewer: RasterViewer, parent=None):
        super().__init__(parent)
        self.viewer = viewer
        self.qimage: QImage | None = None
        self.rgba = None
        self._made_for: str | None = None
        self.made_with: dict | None = None  # the viewer's stretch the thumbnail shows
        self._generation = 0
        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 6, 6, 6)
        row = QHBoxLayout()
        self.size = QComboBox()
        for s in (128, 256, 512, 1024):
            self.size.addItem(f"{s} px", s)
        self.size.setCurrentIndex(1)
        self.make_button = QPushButton("Make")
        self.make_button.clicked.connect(self.make)
        self.save_button = QPushButton("Save PNG…")
        self.save_button.setEnabled(False)
        self.save_button.clicked.connect(self._save_dialog)
        row.addWidget(QLabel("Size"))
        row.addWidget(self.size)
        row.addWidget(self.make_button)
        row.addWidget(self.save_button)
        row.addStretch(1)
        lay.addLayout(row)
        self.label = QLabel("Open a raster to make a thumbnail.")
        self.label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.label.setMinimumHeight(120)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self.label)
        lay.addWidget(scroll, 1)
        viewer.rendered.connect(self._viewer_rendered)

    def _viewer_rendered(self) -> None:
        """Another raster or another stretch in the viewer: the thumbnail shows it the same way."""
        if self._made_for != self.viewer.path or self.made_with != self.viewer.stretch_params():
            self.make()

    def make(self) -> workers.Worker | None:
        v = self.viewer
        if v.path is None or not v.levels:
            return None
        p = v.stretch_params()
        self._made_for, self.made_with = v.path, p
        self._generation += 1
        gen = self._generation
        self.make_button.setEnabled(False)
        return workers.start(_thumbnail_job, v.path, int(self.size.currentData()), p["mode"], p["low"],
                             p["high"], p["gamma"], p["offset"], p["manual"] or v.levels, p["bands"],
                             name="thumbnail", on_result=lambda rgba: self._made(rgba, gen),
                             on_error=lambda m, d: self.label.setText(f"Cannot make the thumbnail: {m}"),
                             on_finished=lambda: self.make_button.setEnabled(True))

    def _made(self, rgba, gen: int | None = None) -> None:
        if gen is not None and gen != self._generation:  # an older stretch's thumbnail, finished late
            return
        self.rgba = rgba
        img = rgba_to_qimage(rgba)
        self.qimage = img
        self.label.setPixmap(QPixmap.fromImage(img))
        self.save_button.setEnabled(True)
        self.thumbnailReady.emit(img)

    def save(self, path) -> bool:
        if self.qimage is None:
            return False
        from s2desktop.core.render import save_png

        save_png(self.rgba, path)
        return True

    def _save_dialog(self) -> None:
        base = Path(self.viewer.path).stem + "_thumbnail.png" if self.viewer.path else "thumbnail.png"
        path, _ = QFileDialog.getSaveFileName(self, "Save thumbnail", base, "PNG image (*.png)")
        if not path:
            return
        from s2desktop.core.errors import S2Error

        try:
            self.save(path)
        except S2Error as exc:
            self._save_failed(str(exc))

    def _save_failed(self, message: str) -> None:
        self.label.setText(message)
