"""Dates and scenes: the date range, the search (on a worker), the result table with lazy preview thumbnails,
and a timeline plot of cloud cover against date where clicking a point toggles that scene.

The search itself is the job's (`core.pipeline.Job.search`); the previews are `core.catalog.fetch_preview`
(cached on disk by the core); this module only shows them. For an area, the scenes of all the tiles under it are
listed by acquisition (`core.streaming.acquisitions`: one date and orbit, one row listing its tiles): ticking a
row chooses the acquisition, i.e. all its scenes.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

import pyqtgraph as pg
from PySide6.QtCore import QAbstractTableModel, QDate, QModelIndex, QSize, Qt, QThreadPool, QTimer, Signal
from PySide6.QtGui import QColor, QImage, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSlider,
    QSpinBox,
    QSplitter,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from s2desktop.core.streaming import acquisitions
from s2desktop.gui import workers
from s2desktop.gui.date_field import DateField
from s2desktop.gui.wording import in_window_words

log = logging.getLogger(__name__)

THUMB = 24  # px, preview thumbnail in a table row (small rows: 6-7 scenes visible at 1280x800)
PREVIEW_TIP = 240  # px, the larger preview in the row's tooltip (hover)

COLUMNS = ["Date", "Preview", "Cloud %", "Coverage %", "Baseline", "Tiles"]
COL_DATE, COL_PREVIEW, COL_CLOUD, COL_COVER, COL_BASELINE, COL_TILES = range(6)  # Tiles: areas only
COL_PRODUCT = -1  # the product name is in the row tooltip

SEASONS = {  # northern-hemisphere meteorological seasons: (start month, end month)
    "Spring (Mar–May)": (3, 5),
    "Summer (Jun–Aug)": (6, 8),
    "Autumn (Sep–Nov)": (9, 11),
    "Winter (Dec–Feb)": (12, 2),
}


def season_range(name: str, year: int) -> tuple[dt.date, dt.date]:
    """The first and last day of a season of `year` (winter starts in December of `year`)."""
    m0, m1 = SEASONS[name]
    start = dt.date(year, m0, 1)
    end_year = year + 1 if m1 < m0 else year
    nxt = dt.date(end_year + (m1 == 12), (m1 % 12) + 1, 1)
    return start, nxt - dt.timedelta(days=1)


def _qdate(d: dt.date) -> QDate:
    return QDate(d.year, d.month, d.day)


def _pydate(q: QDate) -> dt.date:
    return dt.date(q.year(), q.month(), q.day())


def _fmt(v: Any, digits: int = 1) -> str:
    if v is None:
        return "–"
    try:
        return f"{float(v):.{digits}f}"
    except (TypeError, ValueError):
        return str(v)


def _mean(values) -> float | None:
    values = [float(v) for v in values if v is not None]
    return sum(values) / len(values) if values else None


@dataclass(frozen=True)
class AcquisitionRow:
    """One row of an area's list: an acquisition (core.streaming.Acquisition: a date and orbit over one or
    more tiles), read like a scene by the model and the timeline; cloud and coverage are the tiles' means."""

    acquisition: Any

    @property
    def scenes(self) -> tuple:
        return self.acquisition.scenes

    @property
    def scene_id(self) -> str:  # stable across searches, so ticks survive a repeated search
        orbit = self.acquisition.orbit
        return f"{self.acquisition.date}_R{orbit:03d}" if orbit is not None else f"{self.acquisition.date}_R?"

    @property
    def date(self) -> dt.date:
        return dt.date.fromisoformat(self.acquisition.date)

    @property
    def date_label(self) -> str:
        orbit = self.acquisition.orbit
        return self.acquisition.date + (f" · R{orbit:03d}" if orbit is not None else "")

    sequence = 0
    prefix = ""

    @property
    def tiles(self) -> str:
        return ", ".join(s.tile for s in self.scenes)

    @property
    def cloud_cover(self) -> float | None:
        return _mean(s.cloud_cover for s in self.scenes)

    @property
    def data_coverage(self) -> float | None:
        return _mean(s.data_coverage for s in self.scenes)

    @property
    def baseline(self) -> str | None:
        return self.acquisition.baseline

    @property
    def product_name(self) -> str:
        return "; ".join(f"{s.tile} cloud {_fmt(s.cloud_cover)} %, coverage {_fmt(s.data_coverage)} %"
                         for s in self.scenes)

    @property
    def preview_scene(self):
        """The scene whose preview stands for the row: the first tile that has one."""
        return next((s for s in self.scenes if getattr(s, "preview", None)), self.scenes[0])

    @property
    def preview(self) -> str | None:
        return getattr(self.preview_scene, "preview", None)


def acquisition_rows(scenes) -> list[AcquisitionRow]:
    return [AcquisitionRow(a) for a in acquisitions(scenes)]


def _decode_preview(source, scene, size: int, tip_size: int = PREVIEW_TIP):
    """Worker job: fetch the preview bytes through the core (cached) and decode them into a small QImage for
    the row and a larger one (as a JPEG data URI) for the row's tooltip."""
    from PySide6.QtCore import QBuffer, QByteArray, QIODevice

    from s2desktop.core.catalog import fetch_preview

    data = fetch_preview(source, scene)
    img = QImage.fromData(data)
    if img.isNull():
        raise ValueError("preview is not an image")
    smooth, keep = Qt.TransformationMode.SmoothTransformation, Qt.AspectRatioMode.KeepAspectRatio
    big = img.scaled(tip_size, tip_size, keep, smooth) if max(img.width(), img.height()) > tip_size else img
    raw = QByteArray()
    buf = QBuffer(raw)
    buf.open(QIODevice.OpenModeFlag.WriteOnly)
    big.save(buf, "JPEG", 90)
    buf.close()
    uri = "data:image/jpeg;base64," + bytes(raw.toBase64()).decode("ascii")
    return img.scaled(size, size, keep, smooth), uri


class SceneModel(QAbstractTableModel):
    """The search results; column 0 is checkable; previews are set as they arrive."""

    checkedChanged = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.scenes: list = []
        self.checked: set[str] = set()
        self.previews: dict[str, QPixmap] = {}
        self.preview_state: dict[str, str] = {}  # scene_id -> 'loading' | 'none' | 'error'
        self.preview_uris: dict[str, str] = {}  # scene_id -> data URI of the larger preview (tooltip)

    def set_scenes(self, scenes: list) -> None:
        """The listed scenes; ticks of scenes listed again stay (a repeated search keeps the selection)."""
        self.beginResetModel()
        self.scenes = list(scenes)
        self.checked &= {s.scene_id for s in self.scenes}
        self.preview_state = {k: v for k, v in self.preview_state.items() if v != "loading"}
        self.endResetModel()
        self.checkedChanged.emit()

    # -- Qt model API
    def rowCount(self, parent=QModelIndex()):
        return 0 if parent.isValid() else len(self.scenes)

    def columnCount(self, parent=QModelIndex()):
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        return None

    def flags(self, index):
        f = Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
        if index.column() == COL_DATE:
            f |= Qt.ItemFlag.ItemIsUserCheckable
        return f

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        s = self.scenes[index.row()]
        c = index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            if c == COL_DATE:
                if hasattr(s, "date_label"):
                    return s.date_label
                seq = getattr(s, "sequence", 0)
                return s.date.isoformat() + (f" #{seq}" if seq else "")
            if c == COL_PREVIEW:
                st = self.preview_state.get(s.scene_id)
                if s.scene_id in self.previews:
                    return None
                if getattr(s, "preview", None) is None or st == "none":
                    return "no preview"
                return {"error": "preview failed", "loading": "loading…"}.get(st, "")
            if c == COL_CLOUD:
                return _fmt(s.cloud_cover)
            if c == COL_COVER:
                return _fmt(s.data_coverage)
            if c == COL_BASELINE:
                return s.baseline or "–"
            if c == COL_TILES:
                return s.tiles if hasattr(s, "tiles") else s.tile
            if c == COL_PRODUCT:
                return s.product_name or ""
        elif role == Qt.ItemDataRole.CheckStateRole and c == COL_DATE:
            return Qt.CheckState.Checked if s.scene_id in self.checked else Qt.CheckState.Unchecked
        elif role == Qt.ItemDataRole.DecorationRole and c == COL_PREVIEW:
            return self.previews.get(s.scene_id)
        elif role == Qt.ItemDataRole.TextAlignmentRole and c in (COL_CLOUD, COL_COVER):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        elif role == Qt.ItemDataRole.ToolTipRole:
            return self.tooltip(s)
        elif role == Qt.ItemDataRole.ForegroundRole and c == COL_CLOUD:
            cc = s.cloud_cover
            if cc is not None and cc > 50:
                return QColor("#b03a2e")
        return None

    def setData(self, index, value, role=Qt.ItemDataRole.EditRole):
        if role == Qt.ItemDataRole.CheckStateRole and index.column() == COL_DATE:
            sid = self.scenes[index.row()].scene_id
            on = Qt.CheckState(value) == Qt.CheckState.Checked if not isinstance(value, bool) else value
            self.set_checked([sid], on)
            return True
        return False

    # -- selection helpers
    def set_checked(self, scene_ids, on: bool) -> None:
        changed = False
        for sid in scene_ids:
            if on and sid not in self.checked:
                self.checked.add(sid)
                changed = True
            elif not on and sid in self.checked:
                self.checked.discard(sid)
                changed = True
        if changed:
            self._checks_changed()

    def _checks_changed(self) -> None:
        self.dataChanged.emit(self.index(0, 0), self.index(max(0, self.rowCount() - 1), 0),
                              [Qt.ItemDataRole.CheckStateRole])
        self.checkedChanged.emit()

    def select_only(self, scene_ids) -> None:
        """Tick exactly these scenes (the others are unticked)."""
        ids = set(scene_ids)
        if ids != self.checked:
            self.checked = ids
            self._checks_changed()

    def toggle(self, row: int) -> None:
        sid = self.scenes[row].scene_id
        self.set_checked([sid], sid not in self.checked)

    def checked_scenes(self) -> list:
        """The ticked rows: scenes, or for an area acquisitions (AcquisitionRow)."""
        return [s for s in self.scenes if s.scene_id in self.checked]

    def chosen_scenes(self) -> list:
        """The scenes the ticked rows stand for (every tile of a ticked acquisition), in row order."""
        return [sc for row in self.checked_scenes() for sc in getattr(row, "scenes", (row,))]

    def tooltip(self, s) -> str:
        """Rich tooltip of a row: the larger preview (once loaded), the scene id, product name and prefix."""
        import html

        cc = "–" if s.cloud_cover is None else f"{float(s.cloud_cover):.1f} %"
        cov = "–" if s.data_coverage is None else f"{float(s.data_coverage):.1f} %"
        text = (f"<b>{html.escape(s.scene_id)}</b> · cloud {cc} · coverage {cov}<br>"
                f"<span style='font-size:small'>{html.escape(s.product_name or '')}<br>"
                f"{html.escape(str(getattr(s, 'prefix', '') or ''))}</span>")
        uri = self.preview_uris.get(s.scene_id)
        if uri:
            text = f"<img src='{uri}'><br>" + text
        return f"<qt>{text}</qt>"

    def set_preview(self, scene_id: str, pixmap: QPixmap | None, state: str = "", uri: str | None = None) -> None:
        if uri:
            self.preview_uris[scene_id] = uri
        if pixmap is not None:
            self.previews[scene_id] = pixmap
            self.preview_state.pop(scene_id, None)
        else:
            self.preview_state[scene_id] = state
        for row, s in enumerate(self.scenes):
            if s.scene_id == scene_id:
                ix = self.index(row, COL_PREVIEW)
                self.dataChanged.emit(ix, ix)


class CloudTimeline(pg.PlotWidget):
    """Cloud cover against date; a click on a point toggles that scene; a dashed line shows the threshold."""

    pointClicked = Signal(int)  # row

    def __init__(self, parent=None):
        super().__init__(parent=parent, axisItems={"bottom": pg.DateAxisItem(orientation="bottom")})
        self.setBackground("w")
        self.setMenuEnabled(False)
        self.setLabel("left", "cloud %")
        self.getAxis("left").setTicks([[(0, "0"), (50, "50"), (100, "100")], []])  # legible in a short strip
        self.showGrid(x=True, y=True, alpha=0.25)
        self.setYRange(0, 100, padding=0.05)
        self.getPlotItem().getViewBox().setMouseEnabled(x=True, y=False)
        self.getPlotItem().hideButtons()
        self.scatter = pg.ScatterPlotItem(size=11, hoverable=True, hoverSize=14, tip=self._tip)
        self.scatter.sigClicked.connect(self._clicked)
        self.addItem(self.scatter)
        self.threshold = pg.InfiniteLine(pos=30, angle=0, pen=pg.mkPen("#888", style=Qt.PenStyle.DashLine))
        self.addItem(self.threshold)
        self._scenes: list = []
        self.setMinimumHeight(70)

    @staticmethod
    def _tip(x, y, data):
        return f"{data[1]}  cloud {y:.1f} %  (click to toggle)"

    def set_scenes(self, scenes: list, checked: set[str]) -> None:
        self._scenes = scenes
        xs, ys, brushes, data = [], [], [], []
        for row, s in enumerate(scenes):
            t = dt.datetime(s.date.year, s.date.month, s.date.day, 12, tzinfo=dt.timezone.utc).timestamp()
            t += 3600 * getattr(s, "sequence", 0)
            xs.append(t)
            ys.append(float(s.cloud_cover) if s.cloud_cover is not None else 0.0)
            on = s.scene_id in checked
            brushes.append(pg.mkBrush("#1f77b4" if on else "#ffffff"))
            data.append((row, s.scene_id))
        self.scatter.setData(x=xs, y=ys, brush=brushes, pen=pg.mkPen("#1f77b4", width=1.5), data=data)
        if xs:
            pad = max(86400.0 * 2, (max(xs) - min(xs)) * 0.05)
            self.setXRange(min(xs) - pad, max(xs) + pad, padding=0)

    def show_range(self, start: dt.date, end: dt.date) -> None:
        """With no scenes yet, show the searched date range so the axis reads as dates."""
        if self._scenes:
            return
        t0 = dt.datetime(start.year, start.month, start.day, tzinfo=dt.timezone.utc).timestamp()
        t1 = dt.datetime(end.year, end.month, end.day, 23, tzinfo=dt.timezone.utc).timestamp()
        if t1 > t0:
            self.setXRange(t0, t1, padding=0.02)

    def _clicked(self, _item, points, _ev=None):
        if len(points):
            self.pointClicked.emit(int(points[0].data()[0]))


class ScenePanel(QWidget):
    """Dates, max cloud, Search, the results table and the timeline."""

    searchRequested = Signal()
    searchFinished = Signal(list)  # scenes
    searchFailed = Signal(str, str)
    selectionChanged = Signal(list)  # checked scenes
    sourceResolved = Signal(object)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.source = None
        self._search_worker = None
        self._search_seq = 0  # a result is shown only if it comes from the latest search of the current query
        self._query = None  # (source spec, tile or area name) of the listed scenes / the running search
        self._area_listed = False  # the rows are an area's acquisitions
        self._search_allowed = True  # the window says whether a search can run (a valid tile, ...)
        self._searching = False
        self._closed = False  # the window shut down: no more preview fetches
        self._preview_pool = QThreadPool(self)
        self._preview_pool.setMaxThreadCount(2)
        self._preview_source = None

        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 6, 6, 6)

        grid = QGridLayout()
        today = dt.date.today()
        self.start = DateField(_qdate(today - dt.timedelta(days=90)))  # typed as 2023-07-14 or 14/07/2023
        self.end = DateField(_qdate(today))
        for w in (self.start, self.end):
            w.setMinimumDate(QDate(2015, 6, 23))  # the first Sentinel-2 launch
        grid.addWidget(QLabel("From"), 0, 0)
        grid.addWidget(self.start, 0, 1)
        grid.addWidget(QLabel("to"), 0, 2)
        grid.addWidget(self.end, 0, 3)

        self.quick = QComboBox()
        self.quick.addItem("Quick range…", None)
        self.quick.addItem("Last month", "month")
        self.quick.addItem("Last 3 months", "3months")
        for name in SEASONS:
            self.quick.addItem(name, name)
        self.season_year = QSpinBox()
        self.season_year.setRange(2015, today.year)
        self.season_year.setValue(today.year)  # a season not begun yet this year is last year's (_apply_quick)
        self.season_year.setToolTip("Year of the season in the quick range")
        self.season_year.setPrefix("season ")
        self.quick.activated.connect(self._apply_quick)
        grid.addWidget(self.quick, 1, 0, 1, 3)
        grid.addWidget(self.season_year, 1, 3)

        self.cloud = QSlider(Qt.Orientation.Horizontal)
        self.cloud.setRange(0, 100)
        self.cloud.setValue(100)
        self.cloud.setToolTip("Only scenes with at most this cloud cover")
        self.cloud_label = QLabel()
        self.cloud.valueChanged.connect(self._cloud_changed)
        grid.addWidget(QLabel("Max cloud"), 2, 0)
        grid.addWidget(self.cloud, 2, 1, 1, 2)
        grid.addWidget(self.cloud_label, 2, 3)
        grid.setColumnStretch(1, 1)
        grid.setColumnStretch(3, 1)
        lay.addLayout(grid)

        row = QHBoxLayout()
        self.search_button = QPushButton("Search")
        self.search_button.setDefault(True)
        self.search_button.setToolTip("List the scenes of the tile in the date range")
        self.search_button.clicked.connect(self.searchRequested)
        self.status = QLabel("Pick a tile and a date range, then Search.")
        self.status.setWordWrap(True)
        row.addWidget(self.search_button)
        row.addWidget(self.status, 1)
        lay.addLayout(row)

        self.model = SceneModel(self)
        self.table = self._make_table()

        self.timeline = CloudTimeline()
        self.timeline.pointClicked.connect(self.model.toggle)

        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self.table)
        split.addWidget(self.timeline)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 1)
        split.setCollapsible(0, False)
        split.setSizes([260, 90])  # the table gets the room; the timeline stays a strip
        lay.addWidget(split, 1)

        lay.addLayout(self._make_selection_row())

        self.model.checkedChanged.connect(self._checked_changed)
        self.model.modelReset.connect(self._schedule_previews)
        self._preview_timer = QTimer(self)
        self._preview_timer.setSingleShot(True)
        self._preview_timer.setInterval(80)
        self._preview_timer.timeout.connect(self._load_visible_previews)
        self._cloud_changed(self.cloud.value())
        self._checked_changed()
        self.start.dateChanged.connect(self._dates_changed)
        self.end.dateChanged.connect(self._dates_changed)
        self._dates_changed()

    def _make_table(self) -> QTableView:
        """The scenes, one row each (an area's: one per acquisition), with their previews."""
        table = QTableView()
        table.setModel(self.model)
        table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        table.verticalHeader().setVisible(False)
        table.verticalHeader().setDefaultSectionSize(THUMB + 4)
        table.verticalHeader().setMinimumSectionSize(THUMB + 4)
        table.setIconSize(QSize(THUMB, THUMB))
        table.setAlternatingRowColors(True)
        hh = table.horizontalHeader()
        hh.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        hh.setSectionResizeMode(COL_PREVIEW, QHeaderView.ResizeMode.Fixed)
        table.setColumnWidth(COL_PREVIEW, max(THUMB + 16, table.fontMetrics().horizontalAdvance(
            "Preview") + 16))
        hh.setStretchLastSection(True)
        table.doubleClicked.connect(lambda ix: self.model.toggle(ix.row()))
        table.verticalScrollBar().valueChanged.connect(self._schedule_previews)
        table.setMinimumHeight(110)
        table.setColumnHidden(COL_TILES, True)
        hh.moveSection(COL_TILES, COL_CLOUD)  # an area's tiles beside its date, where a narrow dock shows them
        return table

    def _make_selection_row(self) -> QHBoxLayout:
        """'Select at most N %', Clear, and how many are ticked."""
        sel = QHBoxLayout()
        self.under = QSpinBox()
        self.under.setRange(0, 100)
        self.under.setValue(30)
        self.under.setSuffix(" %")
        self.under.valueChanged.connect(lambda v: self.timeline.threshold.setValue(v))
        self.select_under = QPushButton("Select at most")  # "at most N %", as the search's limit and --max-cloud
        self.select_under.setToolTip("Tick the scenes with at most this cloud cover (the limit included), and "
                                     "only those")
        self.select_under.clicked.connect(self.select_under_cloud)
        clear = QPushButton("Clear")
        clear.clicked.connect(lambda: self.model.set_checked([s.scene_id for s in self.model.scenes], False))
        self.count = QLabel()
        self.count.setWordWrap(True)
        sel.addWidget(self.select_under)
        sel.addWidget(self.under)
        sel.addWidget(clear)
        sel.addStretch(1)
        sel.addWidget(self.count)
        return sel

    def _dates_changed(self, *_):
        self.timeline.show_range(*self.dates())

    # -- dates
    def dates(self) -> tuple[dt.date, dt.date]:
        return _pydate(self.start.date()), _pydate(self.end.date())

    def set_dates(self, start: dt.date, end: dt.date) -> None:
        self.start.setDate(_qdate(start))
        self.end.setDate(_qdate(end))

    def max_cloud(self) -> float | None:
        v = self.cloud.value()
        return None if v >= 100 else float(v)

    def _cloud_changed(self, v: int) -> None:
        self.cloud_label.setText("any" if v >= 100 else f"≤ {v} %")

    def _apply_quick(self, index: int) -> None:
        key = self.quick.itemData(index)
        today = dt.date.today()
        if key == "month":
            self.set_dates(today - dt.timedelta(days=30), today)
        elif key == "3months":
            self.set_dates(today - dt.timedelta(days=91), today)
        elif key in SEASONS:
            year = self.season_year.value()
            if season_range(key, year)[0] > today:  # not begun yet: the last one there was
                year -= 1
                self.season_year.setValue(year)
            self.set_dates(*season_range(key, year))
        self.quick.setCurrentIndex(0)

    # -- search
    def run_search(self, source_spec: dict, tile: str | None, area=None) -> workers.Worker | None:
        """Resolve the source and search the tile, or every tile under ``area`` (core.areas.Area), on a worker;
        results land in the table (an area's grouped by acquisition)."""
        start, end = self.dates()
        if start > end:
            self._failed("The start date is after the end date", "")
            return None
        if self._search_worker is not None:
            self._search_worker.cancel()
        self._search_seq += 1
        seq = self._search_seq
        where = tile if area is None else area.name
        self._query = (dict(source_spec), where)
        self._set_searching(True)
        self.status.setText(f"Searching {'the tiles under the area' if area is not None else tile} "
                            f"{start} – {end}…")
        w = workers.start(_search_job, source_spec, tile, area, start, end, self.max_cloud(),
                          on_result=lambda v: self._found(v, where != tile) if seq == self._search_seq else None,
                          on_error=lambda m, d: self._failed(m, d) if seq == self._search_seq else None,
                          on_finished=lambda: self._set_searching(False) if seq == self._search_seq else None,
                          name="search", owner=self)
        self._search_worker = w
        return w

    def set_query(self, source_spec: dict, tile: str | None, area=None) -> None:
        """The window's source and tile or area now: listed scenes (or a running search) of another source, tile
        or area are dropped, so that nothing of the old one can be ticked and downloaded under the new one. Both
        None (the field holds nothing valid, e.g. while typing): only the source is compared. With nothing listed,
        the line beside Search says what to do for the new one (a message about the old one goes)."""
        if self._query is None:
            self.status.setText(self._hint(tile, area))
            return
        spec, listed = self._query
        where = tile if area is None else area.name
        if spec == dict(source_spec) and where in (None, listed):
            return
        self._query = None
        self._search_seq += 1  # the running search's result (or error) no longer applies
        if self._search_worker is not None:
            self._search_worker.cancel()
            self._search_worker = None
        self._set_searching(False)
        self.source = None
        self.model.set_scenes([])
        self._dates_changed()
        self.status.setText(self._hint(tile, area))

    @staticmethod
    def _hint(tile: str | None, area) -> str:
        return ("Search to list the scenes of the tiles under the area." if area is not None else
                f"Search to list the scenes of {tile}." if tile else "Pick a tile and a date range, then Search.")

    def set_search_allowed(self, allowed: bool) -> None:
        """The Search button follows the window's Search action (no tile: disabled), and is off while searching."""
        self._search_allowed = allowed
        self.search_button.setEnabled(allowed and not self._searching)

    def _set_searching(self, on: bool) -> None:
        self._searching = on
        self.search_button.setEnabled(self._search_allowed and not on)

    def _found(self, value, area: bool = False) -> None:
        source, scenes = value
        self.source = source
        self.sourceResolved.emit(source)
        self._area_listed = area
        self.table.setColumnHidden(COL_TILES, not area)
        self.model.set_scenes(acquisition_rows(scenes) if area else scenes)
        self.timeline.set_scenes(self.model.scenes, self.model.checked)
        n = len(scenes)
        found = f"{n} scene{'s' if n != 1 else ''} found"
        if area and n:
            rows, tiles = len(self.model.scenes), len({s.tile for s in scenes})
            found = (f"{n} scene{'s' if n != 1 else ''} of {tiles} tile{'s' if tiles != 1 else ''}: "
                     f"{rows} acquisition{'s' if rows != 1 else ''}")
        self.status.setText(found if n else "No scenes in this range (try a longer range or a higher cloud limit)")
        self.searchFinished.emit(scenes)

    def _failed(self, message: str, details: str) -> None:
        message = in_window_words(message)
        self.status.setText(f"<span style='color:#b03a2e'>{message}</span>")
        self.searchFailed.emit(message, details)  # the window reports (and logs) it

    # -- selection
    def select_under_cloud(self) -> None:
        """Tick exactly the scenes with at most N % cloud cover: the limit's one meaning, the search's and the
        command line's (--max-cloud) too."""
        n = self.under.value()
        ids = [s.scene_id for s in self.model.scenes if s.cloud_cover is not None and s.cloud_cover <= n]
        self.model.select_only(ids)

    def _checked_changed(self) -> None:
        scenes = self.model.checked_scenes()
        dates = len({s.date for s in scenes})
        total = len(self.model.scenes)
        if self._area_listed:
            tiles = len({sc.tile for sc in self.model.chosen_scenes()})
            self.count.setText(f"<b>{len(scenes)}</b> of {total} acquisitions<br>over {tiles} "
                               f"tile{'s' if tiles != 1 else ''}")
        else:
            self.count.setText(f"<b>{len(scenes)}</b> of {total} selected<br>on {dates} date"
                               f"{'s' if dates != 1 else ''}")
        self.timeline.set_scenes(self.model.scenes, self.model.checked)
        self.selectionChanged.emit(scenes)

    # -- lazy previews (only rows on screen)
    def _schedule_previews(self, *_):
        self._preview_timer.start()

    def showEvent(self, ev):
        super().showEvent(ev)
        self._schedule_previews()

    def resizeEvent(self, ev):
        super().resizeEvent(ev)
        self._schedule_previews()

    def visible_rows(self) -> range:
        n = self.model.rowCount()
        if n == 0:
            return range(0)
        vp = self.table.viewport()
        top = self.table.rowAt(0)
        bottom = self.table.rowAt(vp.height() - 1)
        top = 0 if top < 0 else top
        bottom = n - 1 if bottom < 0 else bottom
        return range(top, bottom + 1)

    def shutdown(self) -> None:
        """Window closing: no more preview fetches (the lazy-load timer may still be pending); queued ones go."""
        self._closed = True
        self._preview_timer.stop()
        self._preview_pool.clear()

    def _load_visible_previews(self) -> None:
        if self.source is None or self._closed:
            return
        for row in self.visible_rows():
            s = self.model.scenes[row]
            sid = s.scene_id
            if sid in self.model.previews or sid in self.model.preview_state:
                continue
            if getattr(s, "preview", None) is None:
                self.model.set_preview(sid, None, "none")
                continue
            self.model.set_preview(sid, None, "loading")
            workers.start(_decode_preview, self.source, getattr(s, "preview_scene", s), THUMB,
                          pool=self._preview_pool, name="preview",
                          on_result=lambda res, sid=sid: self.model.set_preview(sid, QPixmap.fromImage(res[0]),
                                                                                uri=res[1]),
                          on_error=lambda msg, _d, sid=sid: self._preview_failed(sid, msg))

    def _preview_failed(self, sid: str, msg: str) -> None:
        log.info("preview of %s failed: %s", sid, msg)
        self.model.set_preview(sid, None, "error")


def _search_job(source_spec: dict, tile: str | None, area, start, end, max_cloud):
    """The job's search step (worker thread): the tile, or every tile under the area -> (the source, scenes)."""
    from s2desktop.core.pipeline import Job, Request, SourceSpec

    job = Job(Request(SourceSpec(**source_spec), tile=tile, area=area, start=start, end=end, max_cloud=max_cloud))
    return job.source, job.search()
