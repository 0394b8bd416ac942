"""The main window: docks around the viewer, in the order of the work.

Left: source & tile, dates & scenes. Right: composite, then attributes / thumbnail. Bottom: downloads.
Centre: the map, until a raster opens; then the viewer, with the map one tab away. Geometry and dock layout
persist in QSettings.
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QByteArray, QSize, Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QTabWidget,
    QWidget,
)

from s2desktop import __version__
from s2desktop.core.pipeline import Request, SourceSpec
from s2desktop.core.provenance import summary_of
from s2desktop.core.rasterinfo import read_overview
from s2desktop.gui import settings as st
from s2desktop.gui import workers
from s2desktop.gui.composite_runner import CompositePanel
from s2desktop.gui.downloads import DownloadPanel
from s2desktop.gui.scene_list import ScenePanel
from s2desktop.gui.source_panel import SourcePanel
from s2desktop.gui.inspector import PixelInspector
from s2desktop.gui.viewer import AttributesPanel, RasterViewer, ThumbnailPanel, screen_max_size
from s2desktop.gui.wording import in_window_words

log = logging.getLogger(__name__)

RASTER_FILTER = "Rasters (*.tif *.tiff *.jp2 *.vrt *.img);;All files (*)"
RASTER_SUFFIXES = {".tif", ".tiff", ".jp2", ".vrt", ".img", ".png"}
STATE_VERSION = 2  # 2: the map moved from the source dock to the centre; a v1 state sized that dock for it
ATTRIBUTION = "Contains modified Copernicus Sentinel data"

EXPORT_FILTERS = {
    "composite": "Composite GeoTIFF, 16-bit, as computed (*.tif)",
    "geotiff": "Rendered GeoTIFF, 8-bit RGBA, georeferenced (*.tif)",
    "png": "Rendered PNG, 8-bit RGBA (*.png)",
}


def _export_job(kind: str, src: str, dst: str, levels, gamma: float, classes: bool = False, progress=None,
                cancel=None, bands=None):
    from s2desktop.core import export

    if kind == "composite":
        return str(export.copy_raster(src, dst))
    driver = "PNG" if kind == "png" else "GTiff"
    return str(export.write_rendered(src, dst, levels, gamma, bands=bands, driver=driver, classes=classes,
                                     progress=progress, cancel=cancel))


def _finest_resolution_job(source, scenes):
    """The finest pixel size of the scenes' red bands, one scene per tile (headers only)."""
    from s2desktop.core import streaming

    return streaming.finest_resolution(source, scenes)


def _demo_archive_job(size, progress=None):
    from s2desktop.core.demo import ensure_demo_archive

    return str(ensure_demo_archive(size=size, progress=progress))


class MainWindow(QMainWindow):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Sentinel-2 Desktop")
        self.setObjectName("MainWindow")
        self.setAcceptDrops(True)
        self._shut_down = False
        self._preparing_demo = False
        self._native_resolution: dict = {}  # (source, tiles) -> the finest pixel size under an area
        self._composite_after_download = False  # a JPEG 2000 area's Composite waits for its download
        self._demo_bar = None
        self.last_export: str | None = None
        self._count_layer: str | None = None  # the count layer of the composite in the viewer

        # -- centre: the map has the room until there is an image to show
        self.viewer = RasterViewer()
        self.map = self._make_map()
        self.central = QTabWidget()
        self.central.setObjectName("centralTabs")
        self.central.setDocumentMode(True)
        self.central.addTab(self.map, "Map")
        self.central.addTab(self.viewer, "Image")
        self.setCentralWidget(self.central)
        self.viewer.loaded.connect(lambda *_: self.show_image())

        # -- panels
        self.source_panel = SourcePanel()
        self.scene_panel = ScenePanel()
        self.download_panel = DownloadPanel()
        self.composite_panel = CompositePanel()
        self.attributes = AttributesPanel()
        self.thumbnail = ThumbnailPanel(self.viewer)
        self.inspector = PixelInspector()

        self.dock_source = self._dock("Source and tile", "dockSource", self.source_panel,
                                      Qt.DockWidgetArea.LeftDockWidgetArea)
        self.dock_scenes = self._dock("Dates and scenes", "dockScenes", self.scene_panel,
                                      Qt.DockWidgetArea.LeftDockWidgetArea)
        self.dock_downloads = self._dock("Downloads", "dockDownloads", self.download_panel,
                                         Qt.DockWidgetArea.BottomDockWidgetArea)
        self.dock_composite = self._dock("Composite", "dockComposite", self.composite_panel,
                                         Qt.DockWidgetArea.RightDockWidgetArea)
        self.dock_attributes = self._dock("Attributes", "dockAttributes", self.attributes,
                                          Qt.DockWidgetArea.RightDockWidgetArea)
        self.dock_thumbnail = self._dock("Thumbnail", "dockThumbnail", self.thumbnail,
                                         Qt.DockWidgetArea.RightDockWidgetArea)
        self.dock_inspector = self._dock("Pixel inspector", "dockInspector", self.inspector,
                                         Qt.DockWidgetArea.RightDockWidgetArea)
        self.splitDockWidget(self.dock_source, self.dock_scenes, Qt.Orientation.Vertical)
        self.tabifyDockWidget(self.dock_attributes, self.dock_thumbnail)
        self.tabifyDockWidget(self.dock_thumbnail, self.dock_inspector)
        self.dock_attributes.raise_()
        self.setCorner(Qt.Corner.BottomLeftCorner, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.setCorner(Qt.Corner.BottomRightCorner, Qt.DockWidgetArea.RightDockWidgetArea)
        self.setDockNestingEnabled(True)

        self._make_actions()
        self._make_menus()
        self._make_toolbar()
        self.status_label = QLabel("")
        self.statusBar().addPermanentWidget(self.status_label)
        self.statusBar().showMessage("Pick a tile on the map or type its id, choose dates, then Search.", 10000)

        self._connect()
        self.download_panel.set_folder(st.download_dir())
        if self.source_panel.tile_id():  # restored from the last session before the map was connected
            self._select_on_map(self.source_panel.tile_id())
        self._default_layout()
        self.restore_layout()
        self._update_actions()

    # -- construction helpers
    def _make_map(self) -> QWidget:
        try:
            from s2desktop.gui.map_picker import MapPicker

            m = MapPicker()
            m.setMinimumSize(240, 130)
            return m
        except Exception as exc:  # the map needs its resources; the rest of the window works without it
            log.error("map picker unavailable: %s", exc)
            lab = QLabel(f"Map unavailable: {exc}")
            lab.setWordWrap(True)
            return lab

    def show_map(self) -> None:
        self.central.setCurrentWidget(self.map)

    def show_image(self) -> None:
        self.central.setCurrentWidget(self.viewer)

    def _dock(self, title: str, name: str, widget: QWidget, area) -> QDockWidget:
        d = QDockWidget(title, self)
        d.setObjectName(name)
        d.setWidget(widget)
        d.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable
                      | QDockWidget.DockWidgetFeature.DockWidgetFloatable
                      | QDockWidget.DockWidgetFeature.DockWidgetClosable)
        self.addDockWidget(area, d)
        return d

    def _make_actions(self) -> None:
        def act(text, slot, shortcut=None, tip=""):
            a = QAction(text, self)
            if shortcut:
                a.setShortcut(QKeySequence(shortcut))
            a.setStatusTip(tip or text.replace("&", "").rstrip("…"))
            a.triggered.connect(slot)
            return a

        self.act_open = act("&Open raster…", self.open_dialog, QKeySequence.StandardKey.Open,
                            "Open a GeoTIFF or JP2 in the viewer")
        self.act_export = act("&Export…", self.export_dialog, "Ctrl+E",
                              "Export the composite GeoTIFF or the rendered image (PNG / GeoTIFF)")
        self.act_settings = act("&Settings…", self.settings_dialog, QKeySequence.StandardKey.Preferences,
                                "Download folder, parallel downloads, area cache, default source, endpoint, profile")
        self.act_quit = act("&Quit", self.close, QKeySequence.StandardKey.Quit)
        self.act_search = act("&Search", self.search, "Ctrl+F",
                              "Search scenes of the tile, or of every tile under the area, in the date range")
        self.act_download = act("&Download", self.download, "Ctrl+D", "Download the selected scenes' bands")
        self.act_composite = act("&Composite", self.composite_panel.start, "Ctrl+M",
                                 "Median composite of the downloaded scenes")
        self.act_about = act("&About", self.about)
        self.act_reset_layout = act("Reset layout", self._default_layout)
        self.act_count = act("Count &layer", self._open_count, tip="Show the composite's count of valid "
                             "observations per pixel (its OUT_count.tif)")
        self.act_count.setEnabled(False)

    def _make_menus(self) -> None:
        mb = self.menuBar()
        f = mb.addMenu("&File")
        f.addAction(self.act_open)
        self.recent_menu = f.addMenu("Open &recent")
        self.recent_menu.aboutToShow.connect(self._fill_recent)
        f.addAction(self.act_export)
        f.addSeparator()
        f.addAction(self.act_settings)
        f.addSeparator()
        f.addAction(self.act_quit)
        w = mb.addMenu("&Work")
        for a in (self.act_search, self.act_download, self.act_composite):
            w.addAction(a)
        v = mb.addMenu("&View")
        for d in (self.dock_source, self.dock_scenes, self.dock_downloads, self.dock_composite,
                  self.dock_attributes, self.dock_thumbnail, self.dock_inspector):
            v.addAction(d.toggleViewAction())
        v.addSeparator()
        v.addAction(self.act_count)
        v.addAction(self.act_reset_layout)
        h = mb.addMenu("&Help")
        h.addAction(self.act_about)

    def _make_toolbar(self) -> None:
        tb = self.addToolBar("Main")
        tb.setObjectName("toolbarMain")
        tb.setMovable(False)
        tb.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        for a in (self.act_open, self.act_search, self.act_download, self.act_composite, self.act_export):
            tb.addAction(a)

    def _connect(self) -> None:
        sp, sc, dl, cp, v = (self.source_panel, self.scene_panel, self.download_panel, self.composite_panel,
                             self.viewer)
        sp.tileChanged.connect(self._tile_changed)
        sp.areaChanged.connect(self._area_changed)
        sp.tile.textChanged.connect(lambda _t: self._update_actions())  # after the panel validated it
        sp.tile.textChanged.connect(lambda _t: self._tile_text_changed())
        sp.searchRequested.connect(self.search)
        sp.sourceChanged.connect(self._query_changed)
        sp.source.activated.connect(lambda _i: self._source_picked())
        if hasattr(self.map, "tileSelected"):
            self.map.tileSelected.connect(sp.set_tile)
            self.map.areaSelected.connect(sp.set_area_bounds)
        sc.searchRequested.connect(self.search)
        sc.searchFinished.connect(self._search_finished)
        sc.searchFailed.connect(lambda m, d: self.report_error("Search failed", m, d, dialog=False))
        sc.selectionChanged.connect(lambda _s: self._update_actions())
        sc.selectionChanged.connect(lambda _s: self._show_cost())
        sc.selectionChanged.connect(lambda _s: self._offer_area_composite())
        dl.download_button.clicked.connect(self.download)
        dl.allFinished.connect(self._downloads_finished)
        dl.inputsReady.connect(self._inputs_ready)
        dl.downloadFailed.connect(self._download_failed)
        cp.downloadFirst.connect(self._download_then_composite)
        cp.compositeReady.connect(self._composite_ready)
        cp.windowPixels.connect(self._composite_window)
        cp.startableChanged.connect(lambda _on: self._update_actions())
        cp.choicesChanged.connect(self._show_cost)  # other bands, another mask: other files to fetch
        cp.compositeFailed.connect(lambda _m: self._drop_painted_windows())
        cp.compositeFailed.connect(lambda m: self.report_error("Composite failed", m, "", dialog=True))
        cp.runner.cancelled.connect(self._composite_cancelled)
        v.loaded.connect(self._raster_loaded)
        v.loadFailed.connect(lambda m, d: self.report_error("Cannot open the raster", m, d))
        v.statusMessage.connect(lambda m: self.statusBar().showMessage(m, 8000))
        v.pixelClicked.connect(self._inspect_pixel)

    # -- layout persistence
    def _default_layout(self) -> None:
        for d in (self.dock_source, self.dock_scenes, self.dock_downloads, self.dock_composite,
                  self.dock_attributes, self.dock_thumbnail):
            d.setFloating(False)
            d.show()
        self.resize(1280, 800)
        self.resizeDocks([self.dock_source, self.dock_composite], [410, 300], Qt.Orientation.Horizontal)
        self.resizeDocks([self.dock_source, self.dock_scenes], [self.source_panel.sizeHint().height(), 800],
                         Qt.Orientation.Vertical)
        self.resizeDocks([self.dock_downloads], [230], Qt.Orientation.Vertical)  # 6 file rows at 1280 x 800
        # the composite dock: room for an area's resolution row and a two-line fetch status
        self.resizeDocks([self.dock_composite, self.dock_attributes], [285, 365], Qt.Orientation.Vertical)

    def restore_layout(self) -> None:
        s = st.settings()
        geo = s.value("window/geometry")
        state = s.value("window/state")
        if isinstance(geo, QByteArray) and not geo.isEmpty():
            self.restoreGeometry(geo)
        if isinstance(state, QByteArray) and not state.isEmpty():
            self.restoreState(state, STATE_VERSION)

    def save_layout(self) -> None:
        s = st.settings()
        s.setValue("window/geometry", self.saveGeometry())
        s.setValue("window/state", self.saveState(STATE_VERSION))
        self.source_panel.remember()
        s.setValue(st.MAX_CLOUD, self.scene_panel.cloud.value())
        s.sync()

    def sizeHint(self) -> QSize:
        return QSize(1280, 800)

    # -- flow: tile -> search -> select -> download -> composite -> view
    def _tile_changed(self, tile: str) -> None:
        self._select_on_map(tile)
        self._query_changed()

    def _select_on_map(self, tile: str) -> None:
        """Highlight the tile on the map and zoom to it (the map may be the 'unavailable' label instead)."""
        if hasattr(self.map, "select_tile"):
            try:
                self.map.select_tile(tile, zoom=True)
            except Exception as exc:  # a syntactically valid id that is not in the grid
                self.map.clear_selection()
                self.source_panel.tile_error.setText(str(exc))

    def _area_changed(self, area) -> None:
        """An area typed or drawn: outlined on the map with its tiles (zoomed to when it was typed)."""
        if hasattr(self.map, "select_area"):
            drawn = self.map.area is not None and all(abs(a - b) < 1e-3 for a, b in zip(self.map.area, area.bounds))
            self.map.select_area(area.bounds, zoom=not drawn)
        self._query_changed()

    def _tile_text_changed(self) -> None:
        """The field no longer names a tile or an area (cleared, mid-edit, invalid): nor does the map."""
        sp = self.source_panel
        if sp.tile_id() is None and sp.area() is None:
            self.scene_panel.set_query(sp.source_spec(), None)  # listed scenes stay; a hint about a tile goes
            if hasattr(self.map, "clear_selection"):
                self.map.clear_selection()
                self.map.clear_area()

    def _query_changed(self) -> None:
        """Source, tile or area changed: the scenes listed for another one go (they are not this one's)."""
        sp = self.source_panel
        area = sp.area()
        self.scene_panel.set_query(sp.source_spec(), sp.tile_id(), area=area)
        self._offer_area_composite()
        self._update_actions()

    def search(self) -> workers.Worker | None:
        if self._preparing_demo:
            self.statusBar().showMessage("The demo archive is still being prepared; the search follows", 5000)
            return None
        tile, area = self.source_panel.tile_id(), self.source_panel.area()
        if area is not None:
            if self._not_in_demo(area=area):
                return None
            self.statusBar().showMessage("Searching the tiles under the area…")
            return self.scene_panel.run_search(self.source_panel.source_spec(), None, area=area)
        if tile is None:
            text = self.source_panel.tile.text().strip()
            self.report_error("No tile", self.source_panel.tile_error.text() if text else
                              "Type a tile id (e.g. 33UUP), click the map or draw an area first", dialog=False)
            return None
        if self._not_in_demo(tile):
            return None
        if not self.source_panel.demo_session:  # the demo's tile and source are not the user's choices
            self.source_panel.push_recent_tile(tile)
            self.source_panel.remember()
        self.statusBar().showMessage(f"Searching {tile}…")
        return self.scene_panel.run_search(self.source_panel.source_spec(), tile)

    def _not_in_demo(self, tile: str | None = None, area=None) -> bool:
        """The demo source holds one tile: say so (rather than 'no scenes found') for any other tile, or an area
        not over it."""
        from s2desktop.core.areas import area_tiles
        from s2desktop.core.demo import DEMO_TILE

        if self.source_panel.source_key() != "demo":
            return False
        if area is not None:
            if DEMO_TILE in area_tiles(area):
                return False
            message = (f"The demo archive holds only tile {DEMO_TILE}; draw the area over {DEMO_TILE}, or pick "
                       "another source for this area")
        elif tile == DEMO_TILE:
            return False
        else:
            message = (f"The demo archive holds only tile {DEMO_TILE}; search {DEMO_TILE}, or pick another "
                       f"source for {tile}")
        self.scene_panel.status.setText(message)
        self.report_error("Not in the demo", message, dialog=False)
        return True

    def _source_picked(self) -> None:
        """The demo source picked by hand: it holds one tile in 2022's first weeks, so a tile or dates outside
        them are replaced by its own (a search would find nothing), and the panel says where its data is."""
        from s2desktop.core import demo
        from s2desktop.core.areas import area_tiles

        sp, sc = self.source_panel, self.scene_panel
        if sp.source_key() != "demo":
            return
        area, filled = sp.area(), []
        if sp.tile_id() != demo.DEMO_TILE and (area is None or demo.DEMO_TILE not in area_tiles(area)):
            sp.set_tile(demo.DEMO_TILE)
            filled.append("its tile")
        start, end = sc.dates()
        if end < demo.DEMO_START or start > demo.DEMO_END:
            sc.set_dates(demo.DEMO_START, demo.DEMO_END)
            filled.append("its dates")
        first, last = demo.DEMO_DATES[0], demo.DEMO_DATES[-1]
        where = f"The demo archive holds tile {demo.DEMO_TILE}, {first.day} {first:%b} to {last.day} {last:%b %Y}"
        sc.status.setText(where + (f" ({' and '.join(filled)} filled in)" if filled else "") + ": Search.")

    # -- the built-in demo (`s2desktop demo`)
    def start_demo(self, size: int | None = None) -> workers.Worker:
        """Point the window at the offline demo: source, tile and dates filled in, the archive generated on a
        worker if needed (progress in the status bar and the scenes panel), then the search runs.

        `size` is the side in px of a newly generated archive (None: the demo's own size; tests use small ones).
        """
        from s2desktop.core import demo

        self.source_panel.set_source("demo")
        self.source_panel.set_tile(demo.DEMO_TILE)  # validates it (and selects it on the map when it changed)
        self._tile_changed(demo.DEMO_TILE)  # the field may already hold it (last tile): select and zoom anyway
        self.source_panel.demo_session = True  # the demo's source and tile are not remembered as the user's
        self.scene_panel.set_dates(demo.DEMO_START, demo.DEMO_END)
        self._preparing_demo = True
        # a search now would generate the archive twice: _update_actions disables Search until it is ready
        from PySide6.QtWidgets import QProgressBar

        bar = QProgressBar()
        bar.setRange(0, 0)  # busy until the first date is written (or at once, when the archive exists)
        bar.setMaximumWidth(160)
        bar.setFormat("%v / %m dates")
        self._demo_bar = bar
        self.statusBar().addWidget(bar)
        text = "Preparing the demo archive…"
        self.statusBar().showMessage(text)
        self.scene_panel.status.setText(text)
        def progress(event) -> None:
            bar.setRange(0, event.items_total)
            bar.setValue(event.items_done)
            line = (f"Generating the demo archive (first run only): {event.items_done} of {event.items_total} "
                    "dates…" if event.items_done else "Generating the demo archive (first run only, a few seconds)…")
            self.statusBar().showMessage(line)
            self.scene_panel.status.setText(line)

        w = workers.Worker(_demo_archive_job, size, name="demo archive")
        # every date's event, unthrottled (ten of them), queued to the GUI thread
        w.kwargs["progress"] = w._emit_progress
        w.signals.progress.connect(workers._guarded(progress, self))
        w.signals.result.connect(workers._guarded(self._demo_ready, self))
        w.signals.errored.connect(workers._guarded(self._demo_failed, self))
        w.signals.finished.connect(workers._guarded(self._demo_finished, self))
        self._update_actions()
        return workers.registry.start(w)

    def _demo_finished(self) -> None:
        if not self._preparing_demo:  # already done (result, then finished)
            return
        self._preparing_demo = False
        if self._demo_bar is not None:
            self.statusBar().removeWidget(self._demo_bar)
            self._demo_bar.deleteLater()
            self._demo_bar = None
        self._update_actions()

    def _demo_ready(self, root: str) -> None:
        log.info("demo archive at %s", root)
        self._demo_finished()
        if not self._shut_down:
            self.search()

    def _demo_failed(self, message: str, details: str) -> None:
        self.scene_panel.status.setText(f"<span style='color:#b03a2e'>{in_window_words(message)}</span>")
        self.report_error("Cannot prepare the demo archive", message, details)

    def _search_finished(self, scenes) -> None:
        n = len(scenes)
        self.statusBar().showMessage(f"{n} scene{'s' if n != 1 else ''} found" if n else
                                     "No scenes found: try a longer date range or a higher cloud limit", 8000)
        self._update_actions()

    def download_request(self) -> Request:
        """The job's request for what the window shows: source, tile, dates, the ticked scenes, the folder."""
        sp, sc, cp = self.source_panel, self.scene_panel, self.composite_panel
        start, end = sc.dates()
        return Request(source=SourceSpec(**sp.source_spec()), tile=sp.tile_id(), area=sp.area(), start=start,
                       end=end, max_cloud=sc.max_cloud(), scenes=tuple(sc.model.chosen_scenes()),
                       bands=cp.bands(), mask=cp.mask(),
                       download_dir=st.download_dir(), download_workers=st.worker_count(),
                       cache_limit=st.area_cache_limit())

    def _area_streamed(self) -> bool:
        """Whether the area is read straight from COGs (the cogs source or a COG mirror): nothing to download."""
        source = self.scene_panel.source
        if source is not None:
            return source.layout == "cogs"
        return self.source_panel.source_key() == "cogs"

    def _offer_area_composite(self) -> None:
        """In area mode the composite dock runs the job's area step on the ticked acquisitions; else tile mode."""
        cp, area = self.composite_panel, self.source_panel.area()
        if area is None:
            if cp.area_request is not None:
                cp.set_area(None)
            return
        request = self.download_request()
        start, end = request.start, request.end
        name = "area_" + "_".join(f"{v:.3f}" for v in area.bounds) + f"_{start}_{end}_median.tif"
        cp.set_area(request, streamed=self._area_streamed(),
                    default_output=Path(request.download_dir) / "composites" / name)
        self._suggest_area_resolution(request.scenes)

    def _suggest_area_resolution(self, scenes) -> None:
        """The finest pixel size of the ticked scenes' red bands (one header per tile, read on a worker, once per
        source and tiles) becomes the area's default resolution."""
        source = self.scene_panel.source
        if source is None or not scenes:
            return
        key = (source.cache_id, frozenset(s.tile for s in scenes))
        if key in self._native_resolution:
            self.composite_panel.suggest_resolution(self._native_resolution[key])
            return

        def found(metres) -> None:
            self._native_resolution[key] = metres
            self.composite_panel.suggest_resolution(metres)

        workers.start(_finest_resolution_job, source, tuple(scenes), name="native resolution", owner=self,
                      on_result=found, on_error=lambda m, _d: log.info("native resolution unknown: %s", m))

    def download(self) -> workers.Worker | None:
        scenes = self.scene_panel.model.chosen_scenes()
        if not scenes or self.scene_panel.source is None:
            self.report_error("Nothing to download", "Search, then tick the scenes to download", dialog=False)
            return None
        if self.download_panel.running:
            return None
        if self.source_panel.area() is not None and self._area_streamed():
            self.report_error("Nothing to download", "An area on the COG archive is streamed: Composite reads "
                              "only the parts it needs", dialog=False)
            return None
        request = self.download_request()
        if self.source_panel.area() is None:
            self.composite_panel.set_inputs(None)  # the next composite is of this download
        self.statusBar().showMessage(f"Downloading {len(scenes)} scenes to {request.download_dir}…")
        w = self.download_panel.start(request, source=self.scene_panel.source)
        self._update_actions()
        return w

    def _show_cost(self):
        """The downloads panel says what the ticked scenes will cost before anything starts."""
        sc = self.scene_panel
        streamed = self.source_panel.area() is not None and self._area_streamed()  # nothing is downloaded
        request = self.download_request() if sc.model.checked and sc.source is not None and not streamed else None
        return self.download_panel.show_cost(request, sc.source)

    def _download_then_composite(self) -> None:
        """Composite on a JPEG 2000 area: the area's tiles come down first in the Downloads panel (a row per
        file, resume, cancel; files already verified are skipped), then the composite runs on them."""
        self._composite_after_download = self.download() is not None

    def _download_failed(self, message: str, details: str) -> None:
        self._composite_after_download = False
        self.report_error("Download failed", message, details)

    def _downloads_finished(self, counts: dict) -> None:
        done = counts.get("downloaded", 0) + counts.get("skipped", 0)
        msg = f"Downloads finished: {done} file(s) on disk"
        if counts.get("failed"):
            msg += f", {counts['failed']} failed (see the Downloads rows)"
        if counts.get("cancelled"):
            msg += f", {counts['cancelled']} cancelled"
        self.statusBar().showMessage(msg, 10000)
        self._show_cost()  # what is left to fetch
        self._update_actions()
        if self._composite_after_download:
            self._composite_after_download = False
            if not counts.get("failed") and not counts.get("cancelled") and self.source_panel.area() is not None:
                self.composite_panel.start(downloaded=True)

    def _inputs_ready(self, inputs) -> None:
        if self.source_panel.area() is not None:  # the area's tiles are on disk: its composite clips them
            self._offer_area_composite()
            self.dock_composite.raise_()
            return
        out = Path(inputs.paths("B04")[0]).parent.parent / "composites" / inputs.default_name()  # by the downloads
        self.composite_panel.set_inputs(inputs, default_output=out)
        self.dock_composite.raise_()
        self._update_actions()

    def _composite_ready(self, path: str, preview: bool) -> None:
        self.open_raster(path, remember=not preview)  # the preview is a temporary file: not a recent one
        self.viewer.set_note(f"{self.composite_panel.preview_title()}: the full resolution is on its way"
                             if preview else "")
        if not preview:
            self.statusBar().showMessage(f"Composite written: {path}", 15000)

    def _composite_window(self, px) -> None:
        """A finished window of the running composite: in the viewer at once, before the output is written."""
        note = f"{self.composite_panel.run_title}: windows appear as they finish"
        if self.viewer.note != note:  # the run's first window: the image comes to the front (once: the user may
            self.viewer.set_note(note)  # go back to the map while the rest arrive)
            self.show_image()
        self.viewer.paint_window(px)

    def _drop_painted_windows(self) -> bool:
        """A run that ended without an output: its half-painted windows are no result and go, with their note;
        -> whether there were any."""
        if not self.viewer.drop_windows():
            return False
        self.viewer.set_note("")
        return True

    def _composite_cancelled(self) -> None:
        if self._drop_painted_windows():
            return
        if self.viewer.note:  # a preview is shown: say that no full composite follows it
            self.viewer.set_note(f"{self.composite_panel.preview_title()} only: the full composite was cancelled")

    # -- viewer
    def open_raster(self, path, remember: bool = True) -> workers.Worker | None:
        """Show a raster in the viewer; `remember`: list it in File → Open recent."""
        p = Path(path)
        if not p.exists():
            self.report_error("Cannot open", f"{p} does not exist", dialog=False)
            return None
        if remember:
            st.push_recent(st.RECENT_FILES, str(p.resolve()))
        self.viewer.set_note("")  # a preview says so itself (see _composite_ready)
        return self.viewer.open(str(p))

    def _inspect_pixel(self, row: int, col: int) -> None:
        """A click on a composite (a raster with its provenance record beside it): its pixel's dates in the
        pixel inspector."""
        path = self.viewer.path
        if not path or not Path(path).with_suffix(".json").is_file():
            return
        self.dock_inspector.show()
        self.dock_inspector.raise_()
        self.inspector.inspect(path, row, col, self.viewer.bands)  # its chips show the bands the viewer does

    def _raster_loaded(self, path: str, info) -> None:
        record = summary_of(path) if info is not None else None  # a composite's: what went in, how
        self.attributes.set_info({**info.to_dict(), "provenance": record} if record else info)
        self._show_count((record or {}).get("count"))
        self.setWindowTitle(f"{Path(path).name} – Sentinel-2 Desktop")
        self._update_actions()

    def _show_count(self, count: str | None) -> None:
        """A composite's count layer in the pixel readout, read (decimated as the image is) on a worker; View →
        Count layer opens it."""
        self.viewer.readout_extra = None
        self._count_layer = count
        self.act_count.setEnabled(bool(count))
        if count:
            path = self.viewer.path
            workers.start(read_overview, count, screen_max_size(), name="read the count layer", owner=self,
                          on_result=lambda r: self._count_read(path, r[0][0]))

    def _open_count(self) -> None:
        if self._count_layer:
            self.open_raster(self._count_layer)

    def _count_read(self, path: str, count) -> None:
        if path != self.viewer.path or self.viewer.info is None:
            return  # another raster since
        (h, w), width, height = count.shape, self.viewer.info.width, self.viewer.info.height
        self.viewer.readout_extra = lambda px: (
            f"   count {int(count[min(h - 1, px['row'] * h // height), min(w - 1, px['col'] * w // width)])}")

    def open_dialog(self) -> None:
        start = st.get_list(st.RECENT_FILES)
        folder = str(Path(start[0]).parent) if start else str(st.download_dir())
        path, _ = QFileDialog.getOpenFileName(self, "Open raster", folder, RASTER_FILTER)
        if path:
            self.open_raster(path)

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        items = st.get_list(st.RECENT_FILES)
        if not items:
            a = self.recent_menu.addAction("(none)")
            a.setEnabled(False)
        for p in items:
            a = self.recent_menu.addAction(p)
            a.triggered.connect(lambda _c=False, p=p: self.open_raster(p))

    # -- export
    def export(self, kind: str, dst) -> workers.Worker | None:
        """kind: 'composite' (copy of the raster as computed) | 'geotiff' | 'png' (rendered, current stretch)."""
        v = self.viewer
        if v.path is None:
            self.report_error("Nothing to export", "Open a raster or run a composite first", dialog=False)
            return None
        levels = v.levels if len(v.levels) >= 3 else (v.levels * 3)
        classes = v.stretch.currentData() == "classes"
        self.statusBar().showMessage(f"Exporting {Path(dst).name}…")
        name = Path(dst).name
        return workers.start(_export_job, kind, v.path, str(dst), levels, v.gamma.value(), classes, progress=True,
                             cancel=True, bands=v.bands if v.bands and len(v.bands) == 3 else None, name="export", on_result=self._exported,
                             on_progress=lambda ev: self.statusBar().showMessage(
                                 f"Exporting {name}… {int(100 * ev.fraction)} %"),
                             on_error=lambda m, d: self.report_error("Export failed", m, d))

    def _exported(self, path: str) -> None:
        self.last_export = path
        self.statusBar().showMessage(f"Exported {path}", 10000)

    def export_dialog(self) -> None:
        if self.viewer.path is None:
            self.report_error("Nothing to export", "Open a raster or run a composite first", dialog=False)
            return
        base = Path(self.viewer.path)
        filters = ";;".join(EXPORT_FILTERS.values())
        path, chosen = QFileDialog.getSaveFileName(self, "Export", str(base.with_name(base.stem + "_export.tif")),
                                                   filters)
        if not path:
            return
        kind = next((k for k, f in EXPORT_FILTERS.items() if f == chosen), "composite")
        if kind == "png" and not path.lower().endswith(".png"):
            path += ".png"
        self.export(kind, path)

    # -- settings, about, errors
    def settings_dialog(self) -> None:
        dlg = st.SettingsDialog(self)
        saved = dlg.exec()
        dlg.deleteLater()  # by Qt, not left to the window's end
        if saved:
            self.statusBar().showMessage("Settings saved", 5000)
            self._settings_saved()

    def _settings_saved(self) -> None:
        """The Downloads panel follows the settings: the folder the next download goes to, and what it will cost
        there (files already verified in the old folder are not in the new one)."""
        if not self.download_panel.running:
            self.download_panel.set_folder(st.download_dir())
        self._show_cost()

    def about(self) -> None:
        QMessageBox.about(
            self, "About Sentinel-2 Desktop",
            f"<h3>Sentinel-2 Desktop {__version__}</h3>"
            "<p>Search, download, composite and view Sentinel-2 imagery from the AWS open-data buckets "
            "(or a local mirror).</p>"
            f"<p><b>{ATTRIBUTION}</b> (Copernicus programme, European Union / ESA).</p>"
            "<p>World outlines: Natural Earth (public domain). Tile grid: ESA Sentinel-2 tiling grid.</p>")

    def report_error(self, title: str, message: str, details: str = "", dialog: bool = True) -> None:
        """Errors go to the status bar, the log, and (for failures of a whole step) a dialog with details; the
        core's hints for the command line are put in the window's words."""
        message = in_window_words(message)
        self.statusBar().showMessage(f"{title}: {message}", 15000)
        if dialog:
            st.show_error(self, title, message, details)
        else:
            log.warning("%s: %s", title, message)

    def _update_actions(self) -> None:
        sc = self.scene_panel
        sp = self.source_panel
        where = sp.tile_id() is not None or sp.area() is not None
        self.act_search.setEnabled(where and not self._preparing_demo)
        sc.set_search_allowed(self.act_search.isEnabled())
        streamed = sp.area() is not None and self._area_streamed()  # nothing to download: it is streamed
        can_dl = bool(sc.model.checked) and sc.source is not None and not self.download_panel.running \
            and not streamed
        self.act_download.setEnabled(can_dl)
        self.download_panel.download_button.setEnabled(can_dl)
        self.act_composite.setEnabled(self.composite_panel.start_button.isEnabled())
        self.act_export.setEnabled(self.viewer.path is not None)
        n = len(sc.model.checked)
        self.status_label.setText((f"{n} acquisition{'s' if n != 1 else ''} selected" if streamed or
                                   sp.area() is not None else f"{n} selected") if n else "")

    # -- drag and drop
    def dragEnterEvent(self, ev) -> None:
        urls = ev.mimeData().urls() if ev.mimeData().hasUrls() else []
        if any(u.isLocalFile() and Path(u.toLocalFile()).suffix.lower() in RASTER_SUFFIXES for u in urls):
            ev.acceptProposedAction()
        else:
            ev.ignore()

    def dropEvent(self, ev) -> None:
        for u in ev.mimeData().urls():
            if u.isLocalFile() and Path(u.toLocalFile()).suffix.lower() in RASTER_SUFFIXES:
                self.open_raster(u.toLocalFile())
                ev.acceptProposedAction()
                return

    # -- closing
    def closeEvent(self, ev) -> None:
        self.save_layout()
        self.shutdown()
        super().closeEvent(ev)

    def shutdown(self) -> None:
        """Cancel downloads and the composite and wait for them (also on aboutToQuit)."""
        if self._shut_down:
            return
        self._shut_down = True
        self.scene_panel.shutdown()
        self.download_panel.shutdown()
        self.composite_panel.shutdown()
        workers.registry.cancel_all()


