"""A world map to pick a Sentinel-2 tile: pan/zoom, lon/lat readout, the tile grid when zoomed in, click to select.

The map is a plain equirectangular (plate carrée) pyqtgraph view in degrees: x = longitude, y = latitude, aspect
locked 1:1. Land and country outlines come from the bundled Natural Earth resource (`resources/world/`), the tile
grid and every point -> tile answer from `s2desktop.core.tiles` (the real ESA footprints). The grid is drawn
only when the view is narrow enough for it to be legible, and only the tiles in view, as one curve.

Public API (what the main window uses):

- signal ``tileSelected(str)``: the user picked a tile (click, overlap menu) or :meth:`select_tile` changed it.
- signal ``overlapOffered(list)``: a click hit 2+ overlapping tiles, nearest centre first.
- signal ``hovered(str)``: the tile names under the cursor changed ('' when none).
- signal ``areaSelected(tuple)``: the user drew an area (W, S, E, N in degrees) or :meth:`select_area` changed it.
- :meth:`select_tile` ``(tile_id, zoom=True)``: highlight a tile (and zoom to it); raises the core's
  InvalidTileError / NotFoundError for a bad id, so a text field can show that message.
- :meth:`click_lonlat` ``(lon, lat)``: what a mouse click does; returns the selected tile id or None.
- :meth:`select_area` ``(bounds, zoom=False)``: outline a lon/lat box and highlight the tiles under it;
  :meth:`clear_area`; :meth:`set_draw_mode` (the "Draw area" button): a drag draws a box instead of panning.
  A shift-drag draws one in either mode; Escape cancels a box being drawn (and then leaves the draw mode).
  A click on a tile selects it and drops the area (tile mode again).
- attribute ``choose_overlap``: ``callable(tiles: list[str]) -> str | None`` asked when tiles overlap. The default
  pops a non-blocking menu of the tiles (the nearest one is selected at once; picking another in the menu
  selects that one). Tests replace it with a plain function.
"""

from __future__ import annotations

import functools
from typing import Callable

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent, QPoint, QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QBrush, QColor, QFont, QFontMetrics, QPainterPath, QPen
from PySide6.QtWidgets import (
    QGraphicsPathItem,
    QGraphicsRectItem,
    QHBoxLayout,
    QLabel,
    QMenu,
    QSizePolicy,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from s2desktop.core import tiles as core_tiles
from s2desktop.core.resources import resource_path

__all__ = ["MapPicker"]

WORLD_RESOURCE = ("world", "world_110m.npz")

# Drawing thresholds (degrees of longitude across the view).
GRID_MAX_SPAN = 20.0  # the tile grid is drawn when the view is at most this wide
LABEL_MAX_SPAN = 12.0  # tile names are written into the grid when the view is at most this wide
LABEL_MAX_COUNT = 160
GRID_MAX_TILES = 2500  # never draw more than this many outlines, whatever the view
THROTTLE_MS = 60

OCEAN = QColor("#cfe0ee")
LAND = QColor("#f3f0e6")
BORDER = QColor("#9c9a92")
GRID = QColor(40, 90, 160, 130)
OFF_MAP = QColor("#e4e4e4")
HOVER = QColor(25, 70, 150)
SELECT_PEN = QColor(220, 90, 0)
SELECT_FILL = QColor(255, 140, 0, 70)
LABEL = QColor(30, 60, 110)
AREA_PEN = QColor(190, 20, 110)  # the area: magenta, apart from the tile selection's orange
AREA_FILL = QColor(190, 20, 110, 30)
AREA_TILES_FILL = QColor(255, 140, 0, 45)  # the tiles under the area
NO_TILE = "No tile selected"
DRAW_HINT = "Drag a box over your area (Esc cancels)"
MIN_DRAW_PX = 4  # a smaller drag is a slip of the hand, not an area


@functools.cache
def _world() -> dict[str, np.ndarray]:
    with np.load(resource_path(*WORLD_RESOURCE)) as z:
        return {k: z[k] for k in z.files}


def _connect_for(starts: np.ndarray, n: int) -> np.ndarray:
    """pyqtgraph connect array: point i joins i+1 unless i is the last point of a part."""
    connect = np.ones(n, dtype=bool)
    connect[starts[1:] - 1] = False
    connect[-1] = False
    return connect


def _ring_path(rings: list[np.ndarray]) -> QPainterPath:
    """One QPainterPath of closed rings, built from arrays in a single call (pyqtgraph's arrayToQPath), not
    point by point: far faster, and it keeps the number of Qt calls small."""
    rings = [np.asarray(r, dtype=np.float64) for r in rings if len(r) >= 2]
    if not rings:
        return QPainterPath()
    closed = [r if np.array_equal(r[0], r[-1]) else np.vstack([r, r[:1]]) for r in rings]
    xy = np.concatenate(closed)
    starts = np.cumsum([0] + [len(r) for r in closed[:-1]])
    path = pg.functions.arrayToQPath(xy[:, 0], xy[:, 1], connect=_connect_for(starts, len(xy)))
    path.setFillRule(Qt.FillRule.OddEvenFill)
    return path


def _copies(ring: np.ndarray) -> list[np.ndarray]:
    """A footprint ring plus its copy on the other side of the antimeridian if it crosses it."""
    out = [ring]
    if ring[:, 0].max() > 180.0:
        out.append(ring - np.array([360.0, 0.0]))
    return out


def _box_path(bounds) -> QPainterPath:
    w, s, e, n = bounds
    path = QPainterPath()
    path.addRect(QRectF(w, s, e - w, n - s))
    return path


class _MapViewBox(pg.ViewBox):
    """The map's view box: a drag that ``draws(ev)`` claims draws an area; any other drag pans as usual."""

    def __init__(self, draws: Callable[[object], bool]):
        super().__init__(enableMenu=False)
        self._draws = draws

    def mouseDragEvent(self, ev, axis=None):  # noqa: N802 (pyqtgraph name)
        if not self._draws(ev):
            super().mouseDragEvent(ev, axis)


def _format_lonlat(lon: float, lat: float) -> str:
    lon = (lon + 180.0) % 360.0 - 180.0
    ew = "E" if lon >= 0 else "W"
    ns = "N" if lat >= 0 else "S"
    return f"{abs(lat):.4f}° {ns}, {abs(lon):.4f}° {ew}"


def _in_own_zone(tile_id: str, lon: float) -> bool:
    """Whether the longitude lies in the tile's own UTM zone strip (6° wide); at a zone seam the neighbouring
    zone's tiles reach over it."""
    zone = int(tile_id[:-3])
    lo = -180.0 + 6.0 * (zone - 1)
    return lo - 0.05 <= ((lon + 180.0) % 360.0) - 180.0 <= lo + 6.05


def _own_zone_first(found: list[str], lon: float) -> list[str]:
    """The tiles under a point (nearest centre first), those of the zone the point lies in first."""
    return sorted(found, key=lambda t: not _in_own_zone(t, lon))


class MapPicker(QWidget):
    """World map with the Sentinel-2 tile grid; see the module docstring for the public API."""

    tileSelected = Signal(str)
    overlapOffered = Signal(list)
    hovered = Signal(str)
    areaSelected = Signal(tuple)  # (W, S, E, N) degrees

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._init_state()
        self._build_plot()
        self._draw_world()
        self._build_map_items()
        self._make_area_items()
        self._build_layout(self._build_bar())
        self._throttle = QTimer(self)
        self._throttle.setSingleShot(True)
        self._throttle.setInterval(THROTTLE_MS)
        self._connect()
        # Until the user or the program moves the map, keep the whole world in view as the widget gets its size.
        self._fit_world = True
        self.view.sigRangeChangedManually.connect(self._stop_fitting_world)
        self.zoom_world()
        self.update_grid()

    def _init_state(self) -> None:
        self._selected: str | None = None
        self._hover_tiles: list[str] = []
        self._visible: list[core_tiles.TileFootprint] = []
        self._grid_visible = False
        self._labels: list[pg.TextItem] = []
        self._label_candidates: list[tuple[str, float, float]] = []
        self.overlap_menu: QMenu | None = None
        self._last_click = (0.0, 0.0)
        self.choose_overlap: Callable[[list[str]], str | None] = self._offer_overlap_menu
        self._area: tuple[float, float, float, float] | None = None
        self._area_tiles: list[str] = []
        self._draw_mode = False
        self._drag: str | None = None  # None | 'drawing' | 'cancelled' (Esc: the rest of that drag is ignored)
        self._drag_from = QPointF()

    def _build_plot(self) -> None:
        """The plot and its view box: axes in degrees, aspect locked, limits past the poles."""
        self.plot = pg.PlotWidget(background=OCEAN, viewBox=_MapViewBox(self._area_drag))
        self.plot.setMenuEnabled(False)
        self.plot.hideButtons()
        self.plot.setAntialiasing(True)
        self.plot.setMouseTracking(True)
        pi = self.plot.getPlotItem()
        for name in ("left", "bottom"):
            axis = pi.getAxis(name)
            axis.setTextPen(pg.mkPen("#555555"))
            axis.setPen(pg.mkPen("#999999"))
        pi.setLabel("bottom", "longitude (°)")
        pi.setLabel("left", "latitude (°)")
        self.view: pg.ViewBox = pi.getViewBox()
        self._aspect = 1.0
        self.view.setAspectLocked(True, ratio=self._aspect)
        # y runs past the poles so that the whole world fits a wide widget with the aspect locked.
        self.view.setLimits(xMin=-200.0, xMax=200.0, yMin=-130.0, yMax=130.0, minXRange=0.2, minYRange=0.2)
        self.view.setDefaultPadding(0.0)

    def _build_map_items(self) -> None:
        """The grid curve, the hovered and selected tile outlines and the selected tile's dot."""
        self._grid_curve = pg.PlotCurveItem(pen=pg.mkPen(GRID, width=1), antialias=False)
        self._grid_curve.setZValue(10)
        self.view.addItem(self._grid_curve)

        self._hover_item = QGraphicsPathItem()
        pen = QPen(HOVER, 2.0)
        pen.setCosmetic(True)
        self._hover_item.setPen(pen)
        self._hover_item.setBrush(QBrush(QColor(60, 120, 220, 40)))
        self._hover_item.setZValue(20)
        self._hover_item.setVisible(False)
        self.view.addItem(self._hover_item)

        self._select_item = QGraphicsPathItem()
        pen = QPen(SELECT_PEN, 2.5)
        pen.setCosmetic(True)
        self._select_item.setPen(pen)
        self._select_item.setBrush(QBrush(SELECT_FILL))
        self._select_item.setZValue(30)
        self._select_item.setVisible(False)
        self.view.addItem(self._select_item)

        # The selected tile as a dot, so it can be found on the zoomed-out world map.
        self._select_dot = pg.ScatterPlotItem(
            size=9, pen=pg.mkPen("w", width=1.5), brush=pg.mkBrush(SELECT_PEN), pxMode=True
        )
        self._select_dot.setZValue(31)
        self.view.addItem(self._select_dot)

    def _build_bar(self) -> QHBoxLayout:
        """The row under the map: Draw area, the selected tile, coordinates, hover, hint and credit."""
        self.tile_label = QLabel(NO_TILE, self)  # the selected tile, whatever selected it (click, field, restore)
        self.tile_label.setStyleSheet("font-weight: bold;")
        self.coords_label = QLabel("Click a tile, or Shift-drag an area", self)
        self.coords_label.setMinimumWidth(150)
        self.hover_label = QLabel("", self)
        self.hover_label.setTextFormat(Qt.TextFormat.PlainText)
        self.hint_label = QLabel("", self)
        self.hint_label.setStyleSheet("color: #666666;")
        credit = QLabel("Map: Natural Earth · Grid: ESA Copernicus", self)
        credit.setStyleSheet("color: #888888; font-size: 8pt;")
        for label in (self.hover_label, self.hint_label, credit):  # may shrink in a narrow dock
            label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.hint_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)

        self.draw_button = QToolButton(self)
        self.draw_button.setText("Draw area")
        self.draw_button.setCheckable(True)
        self.draw_button.setToolTip("Drag a box on the map to composite that area instead of a tile (Shift-drag "
                                    "draws one at any time; Esc cancels; a click on a tile goes back to the tile)")

        bar = QHBoxLayout()
        bar.setContentsMargins(4, 0, 4, 0)
        bar.addWidget(self.draw_button)
        bar.addWidget(self.tile_label)
        bar.addSpacing(8)
        bar.addWidget(self.coords_label)
        bar.addWidget(self.hover_label, 1)
        bar.addWidget(self.hint_label)
        bar.addSpacing(12)
        bar.addWidget(credit)
        return bar

    def _build_layout(self, bar: QHBoxLayout) -> None:
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(self.plot, 1)
        layout.addLayout(bar)

    def _connect(self) -> None:
        self.draw_button.toggled.connect(self.set_draw_mode)
        self._throttle.timeout.connect(self.update_grid)
        self.view.sigRangeChanged.connect(self._range_changed)
        scene = self.plot.scene()
        scene.sigMouseMoved.connect(self._mouse_moved)
        scene.sigMouseClicked.connect(self._mouse_clicked)
        self.plot.installEventFilter(self)  # Esc cancels a drawing

    # ------------------------------------------------------------------ public API

    @property
    def selected_tile(self) -> str | None:
        return self._selected

    @property
    def grid_visible(self) -> bool:
        """Whether the tile grid is drawn for the current view."""
        return self._grid_visible

    @property
    def visible_tiles(self) -> list[str]:
        """Ids of the tiles whose outlines are drawn (empty when the grid is hidden)."""
        return [fp.id for fp in self._visible]

    @property
    def hover_text(self) -> str:
        return self.hover_label.text()

    def select_tile(self, tile_id: str, zoom: bool = True) -> str:
        """Highlight a tile (any accepted spelling) and optionally zoom to it; returns the canonical id.

        Emits ``tileSelected`` when the selection changes. Raises the core's InvalidTileError or NotFoundError.
        """
        fp = core_tiles.footprint(tile_id)
        changed = fp.id != self._selected or self._area is not None
        self.clear_area()
        self.set_draw_mode(False)
        self._selected = fp.id
        self._select_item.setPath(_ring_path(_copies(fp.ring)))
        self._select_item.setVisible(True)
        self._select_dot.setData([fp.centre[0]], [fp.centre[1]])
        self._select_dot.setVisible(not self._grid_visible)
        self.tile_label.setText(f"Tile {fp.id}")
        if changed and self._label_candidates:
            self._show_labels(self._label_candidates)  # the selected tile's name wins a collision
        if zoom:
            self.zoom_to(fp)
        if changed:
            self.tileSelected.emit(fp.id)
        return fp.id

    def clear_selection(self) -> None:
        self._selected = None
        self._select_item.setVisible(False)
        self._select_dot.setData([], [])
        if self._area is None:
            self.tile_label.setText(NO_TILE)

    # ------------------------------------------------------------------ areas

    @property
    def area(self) -> tuple[float, float, float, float] | None:
        """The selected area (W, S, E, N in degrees), or None in tile mode."""
        return self._area

    @property
    def area_tiles(self) -> list[str]:
        """The tiles under the selected area, as highlighted (nearest to its centre first)."""
        return list(self._area_tiles)

    @property
    def draw_mode(self) -> bool:
        return self._draw_mode

    def select_area(self, bounds, zoom: bool = False) -> list[str]:
        """Outline the box (W, S, E, N degrees) and highlight the tiles under it; the tile selection goes.
        Emits ``areaSelected`` when the area changes. Returns the tiles under it (none near the poles)."""
        box = tuple(float(v) for v in bounds)
        changed = box != self._area
        found = core_tiles.tiles_in_bbox(*box, limit=GRID_MAX_TILES)
        self._area, self._area_tiles = box, [fp.id for fp in found]
        self._selected = None
        self._select_item.setVisible(False)
        self._select_dot.setData([], [])
        self._area_item.setPath(_box_path(box))
        self._area_item.setVisible(True)
        tiles_path = _ring_path([r for fp in found for r in _copies(fp.ring)])
        tiles_path.setFillRule(Qt.FillRule.WindingFill)  # where tiles overlap, filled once (not cut out)
        self._area_tiles_item.setPath(tiles_path)
        self._area_tiles_item.setVisible(bool(found))
        n = len(found)
        count = "many tiles" if n >= GRID_MAX_TILES else f"{n} tile{'s' if n != 1 else ''}"  # only so many drawn
        self.tile_label.setText(f"Area · {count}" if n else "Area · no tile under it")
        self.tile_label.setToolTip(", ".join(self._area_tiles))
        if zoom:
            self.zoom_to_box(box)
        if changed:
            self.areaSelected.emit(box)
        return list(self._area_tiles)

    def clear_area(self) -> None:
        self._area, self._area_tiles = None, []
        self._area_item.setVisible(False)
        self._area_tiles_item.setVisible(False)
        self.tile_label.setToolTip("")
        if self._selected is None:
            self.tile_label.setText(NO_TILE)

    def set_draw_mode(self, on: bool) -> None:
        """Draw mode: a plain drag draws an area instead of panning the map (the button follows)."""
        if bool(on) == self._draw_mode:
            return
        self._draw_mode = bool(on)
        if self.draw_button.isChecked() != self._draw_mode:
            self.draw_button.setChecked(self._draw_mode)
        self.plot.viewport().setCursor(Qt.CursorShape.CrossCursor if on else Qt.CursorShape.ArrowCursor)
        self.hint_label.setText(DRAW_HINT if on else "")
        if not on:
            self.update_grid()  # its hint back

    def cancel_drawing(self) -> None:
        """Esc: drop the box being drawn (the previous area stays); with none being drawn, leave draw mode."""
        if self._drag == "drawing":
            self._drag = "cancelled"
            self._rubber_item.setVisible(False)
            self.hint_label.setText("Drawing cancelled")
        elif self._draw_mode:
            self.set_draw_mode(False)

    def zoom_to_box(self, box) -> None:
        self._fit_world = False
        w, s, e, n = box
        pad = max(e - w, n - s) * 0.5
        self.view.setRange(xRange=(w - pad, e + pad), yRange=(s - pad, n + pad), padding=0.0)

    def click_lonlat(self, lon: float, lat: float) -> str | None:
        """Select the tile containing (lon, lat), exactly as a mouse click there does.

        One tile: it is selected. Several overlapping tiles: ``overlapOffered`` is emitted with them (the tiles of
        the UTM zone the point lies in first, as their labels are drawn, each group nearest centre first: at a
        zone seam the neighbouring zone's tiles reach far over the seam, their centres close to the zone's own
        tiles' centres, and a click on a tile's label must pick that tile) and ``choose_overlap(tiles)`` is
        asked; its answer is selected, or the first of them when it answers None (the default menu answers None
        and lets the user switch afterwards). Returns the selected id, or None where no tile lies.
        """
        found = _own_zone_first(core_tiles.tiles_at(lon, lat), lon)
        if not found:
            self.hint_label.setText("No Sentinel-2 tile here")
            return None
        choice = None
        if len(found) > 1:
            self.overlapOffered.emit(list(found))
            self._last_click = (lon, lat)
            choice = self.choose_overlap(list(found))
            if choice is not None and choice not in found:
                choice = None
        return self.select_tile(choice or found[0], zoom=False)

    def hover_lonlat(self, lon: float, lat: float) -> str:
        """Update the readout for the cursor at (lon, lat) (what a mouse move does); returns the hover text."""
        self.coords_label.setText(_format_lonlat(lon, lat))
        found = core_tiles.tiles_at(lon, lat) if -90.0 <= lat <= 90.0 else []
        text = ("Tile " if len(found) == 1 else "Tiles ") + ", ".join(found) if found else ""
        self.hover_label.setText(text)
        self.plot.setToolTip(", ".join(found))
        if found != self._hover_tiles:
            self._hover_tiles = found
            self._show_hover_outline()
            self.hovered.emit(", ".join(found))
        return text

    def _show_hover_outline(self) -> None:
        """Outline the nearest tile under the cursor, only when the grid is shown."""
        if self._hover_tiles and self._grid_visible:
            self._hover_item.setPath(_ring_path(_copies(core_tiles.footprint(self._hover_tiles[0]).ring)))
            self._hover_item.setVisible(True)
        else:
            self._hover_item.setVisible(False)

    def zoom_world(self) -> None:
        """Show the whole world (the map keeps it in view while the widget is resized, until it is moved)."""
        self._fit_world = True
        self.view.setRange(xRange=(-180.0, 180.0), yRange=(-60.0, 75.0), padding=0.0)

    def zoom_to(self, fp: core_tiles.TileFootprint) -> None:
        """Show a tile with about one tile of margin around it (its neighbours and the grid visible)."""
        self._fit_world = False
        lon0, lat0, lon1, lat1 = fp.bbox
        pad = max(lon1 - lon0, lat1 - lat0)
        self.view.setRange(xRange=(lon0 - pad, lon1 + pad), yRange=(lat0 - pad, lat1 + pad), padding=0.0)

    def view_span(self) -> float:
        (x0, x1), _ = self.view.viewRange()
        return x1 - x0

    # ------------------------------------------------------------------ drawing

    def _make_area_items(self) -> None:
        """The selected area's outline, the tiles under it, and the rubber band of a box being drawn."""
        def item(pen_colour, width, brush, z, style=Qt.PenStyle.SolidLine):
            it = QGraphicsPathItem()
            pen = QPen(pen_colour, width, style)
            pen.setCosmetic(True)
            it.setPen(pen)
            it.setBrush(QBrush(brush))
            it.setZValue(z)
            it.setVisible(False)
            self.view.addItem(it)
            return it

        self._area_tiles_item = item(SELECT_PEN, 1.5, AREA_TILES_FILL, 28)
        self._area_item = item(AREA_PEN, 2.5, AREA_FILL, 32)
        self._rubber_item = item(AREA_PEN, 1.5, AREA_FILL, 33, Qt.PenStyle.DashLine)

    def _draw_world(self) -> None:
        world = _world()
        land = np.asarray(world["land_xy"], dtype=np.float64)
        starts = list(world["land_starts"]) + [len(land)]
        rings = [land[a:b] for a, b in zip(starts[:-1], starts[1:])]
        # copies either side of the antimeridian for views past +-180
        path = _ring_path([r + np.array([dx, 0.0]) for dx in (-360.0, 0.0, 360.0) for r in rings])
        for y0 in (90.0, -400.0):  # beyond the poles: not part of the map
            band = QGraphicsRectItem(-600.0, y0, 1200.0, 310.0)
            band.setPen(QPen(Qt.PenStyle.NoPen))
            band.setBrush(QBrush(OFF_MAP))
            band.setZValue(-11)
            self.view.addItem(band)
        land_item = QGraphicsPathItem(path)
        land_item.setPen(QPen(Qt.PenStyle.NoPen))
        land_item.setBrush(QBrush(LAND))
        land_item.setZValue(-10)
        self.view.addItem(land_item)

        xy = np.asarray(world["lines_xy"], dtype=np.float64)
        connect = _connect_for(np.asarray(world["lines_starts"]), len(xy))
        xs = np.concatenate([xy[:, 0] - 360.0, xy[:, 0], xy[:, 0] + 360.0])
        ys = np.tile(xy[:, 1], 3)
        lines = pg.PlotCurveItem(xs, ys, connect=np.tile(connect, 3), pen=pg.mkPen(BORDER, width=1))
        lines.setZValue(-5)
        self.view.addItem(lines)
        self._land_item, self._lines_item = land_item, lines

    def _stop_fitting_world(self, *_args) -> None:
        self._fit_world = False

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt name)
        super().resizeEvent(event)
        if self._fit_world:
            QTimer.singleShot(0, self._refit_world)

    def _refit_world(self) -> None:
        if self._fit_world:
            self.zoom_world()

    def _range_changed(self, *_args) -> None:
        if not self._throttle.isActive():
            self._throttle.start()

    def update_grid(self) -> None:
        """Redraw the tile grid for the current view (called throttled on every range change)."""
        self._update_aspect()
        (x0, x1), (y0, y1) = self.view.viewRange()
        span = x1 - x0
        if span > GRID_MAX_SPAN:
            self._set_grid([], labels=False)
            self.hint_label.setText(DRAW_HINT if self._draw_mode else "Zoom in to see the Sentinel-2 tile grid")
            return
        fps = core_tiles.tiles_in_bbox(x0, max(y0, -90.0), x1, min(y1, 90.0), limit=GRID_MAX_TILES)
        self.hint_label.setText(DRAW_HINT if self._draw_mode else "")
        self._set_grid(fps, labels=span <= LABEL_MAX_SPAN and len(fps) <= LABEL_MAX_COUNT, view=(x0, x1))

    def _update_aspect(self) -> None:
        """Scale longitudes by cos(latitude) of the view centre when zoomed in, so tiles look square there;
        blend back to a plain 1:1 plate carrée as the view widens to the whole world."""
        (x0, x1), (y0, y1) = self.view.viewRange()
        lat = float(np.clip((y0 + y1) / 2.0, -80.0, 80.0))
        w = float(np.clip((x1 - x0 - GRID_MAX_SPAN) / (4 * GRID_MAX_SPAN), 0.0, 1.0))
        ratio = round((1.0 - w) * np.cos(np.radians(lat)) + w, 2)
        if abs(ratio - self._aspect) > 0.011:
            self._aspect = ratio
            self.view.setAspectLocked(True, ratio=ratio)

    def _set_grid(self, fps: list[core_tiles.TileFootprint], labels: bool, view=(0.0, 0.0)) -> None:
        self._visible = fps
        self._grid_visible = bool(fps)
        self._select_dot.setVisible(not self._grid_visible)
        self._show_hover_outline()
        if not fps:
            self._grid_curve.setData([], [])
            self._show_labels([])
            return
        rings = np.stack([fp.ring for fp in fps])  # (k, 5, 2)
        # Shift each ring by 360 to the side of the antimeridian that is in view.
        x0, x1 = view
        shift = np.zeros(len(fps))
        shift[rings[:, :, 0].max(axis=1) < x0] = 360.0
        shift[rings[:, :, 0].min(axis=1) > x1] = -360.0
        xs = (rings[:, :, 0] + shift[:, None]).ravel()
        ys = rings[:, :, 1].ravel()
        connect = np.ones(len(xs), dtype=bool)
        connect[4::5] = False
        self._grid_curve.setData(xs, ys, connect=connect)
        if labels:
            self._show_labels([(fp.id, fp.centre[0] + (360.0 if fp.centre[0] < x0 - 5 else 0.0)
                                - (360.0 if fp.centre[0] > x1 + 5 else 0.0), fp.centre[1]) for fp in fps])
        else:
            self._show_labels([])

    def _place_labels(self, items: list[tuple[str, float, float]]) -> list[tuple[str, float, float]]:
        """The labels that fit without overlapping, greedily: the selected tile first, then tiles whose centre
        lies in their own UTM zone's strip (at a zone seam the neighbouring zone's overlapping tiles yield), then
        the rest; a label whose on-screen box collides with one already placed is skipped (its name is still
        shown on hover)."""
        if not items:
            return []
        font = self._label_font()
        fm = QFontMetrics(font)
        h = fm.height() + 2

        order = sorted(items, key=lambda it: (it[0] != self._selected, not _in_own_zone(it[0], it[1])))
        placed: list[QRectF] = []
        keep = []
        inside = self.view.sceneBoundingRect()  # a label cut by the map's edge reads as a wrong id: skip it
        for tid, x, y in order:
            c = self.view.mapViewToScene(QPointF(x, y))
            w = fm.horizontalAdvance(tid) + 6  # the text and a 3 px gap each side
            box = QRectF(c.x() - w / 2, c.y() - h / 2, w, h)
            if not inside.contains(box) or any(box.intersects(b) for b in placed):
                continue
            placed.append(box)
            keep.append((tid, x, y))
        return keep

    @staticmethod
    def _label_font():
        font = QFont()
        font.setPointSize(8)
        return font

    def _show_labels(self, items: list[tuple[str, float, float]]) -> None:
        self._label_candidates = items
        items = self._place_labels(items)
        while len(self._labels) < len(items):
            t = pg.TextItem(color=LABEL, anchor=(0.5, 0.5))
            t.setFont(self._label_font())
            t.setZValue(15)
            self.view.addItem(t)
            self._labels.append(t)
        for t, (text, x, y) in zip(self._labels, items):
            t.setText(text)
            t.setPos(x, y)
            t.setZValue(35 if text == self._selected else 15)  # above the selection's fill
            t.setVisible(True)
        for t in self._labels[len(items):]:
            t.setVisible(False)

    # ------------------------------------------------------------------ mouse

    def _scene_to_lonlat(self, scene_pos) -> tuple[float, float] | None:
        if not self.view.sceneBoundingRect().contains(scene_pos):
            return None
        p = self.view.mapSceneToView(scene_pos)
        return p.x(), p.y()

    def _mouse_moved(self, scene_pos) -> None:
        ll = self._scene_to_lonlat(scene_pos)
        if ll is None:
            return
        self.hover_lonlat(*ll)

    def _area_drag(self, ev) -> bool:
        """A drag in draw mode or with Shift draws a box (True: handled here); any other drag pans the map."""
        if ev.button() != Qt.MouseButton.LeftButton:
            return False
        if ev.isStart():
            shift = bool(ev.modifiers() & Qt.KeyboardModifier.ShiftModifier)
            self._drag = "drawing" if (self._draw_mode or shift) else None
            self._drag_from = self.view.mapSceneToView(ev.buttonDownScenePos())
            if self._drag:
                self.plot.setFocus(Qt.FocusReason.MouseFocusReason)  # so that Esc reaches the map
        if self._drag is None:
            return False
        ev.accept()
        if self._drag == "drawing":
            box = self._box_to(self.view.mapSceneToView(ev.scenePos()))
            self._rubber_item.setPath(_box_path(box))
            self._rubber_item.setVisible(True)
            if ev.isFinish():
                self._finish_box(box, ev.scenePos() - ev.buttonDownScenePos())
        if ev.isFinish():
            self._drag = None
        return True

    def _box_to(self, corner: QPointF) -> tuple[float, float, float, float]:
        """The box between the drag's start and ``corner``, kept on the map (lon -180..180, lat -90..90)."""
        p0, p1 = self._drag_from, corner
        lon = sorted(min(180.0, max(-180.0, v)) for v in (p0.x(), p1.x()))
        lat = sorted(min(90.0, max(-90.0, v)) for v in (p0.y(), p1.y()))
        return lon[0], lat[0], lon[1], lat[1]

    def _finish_box(self, box, moved) -> None:
        self._rubber_item.setVisible(False)
        if abs(moved.x()) < MIN_DRAW_PX or abs(moved.y()) < MIN_DRAW_PX or box[0] >= box[2] or box[1] >= box[3]:
            return
        self.set_draw_mode(False)  # one box drawn: a drag pans the map again (the button draws another)
        self.select_area(box)

    def eventFilter(self, obj, event) -> bool:  # noqa: N802 (Qt name)
        if obj is self.plot and event.type() == QEvent.Type.KeyPress and event.key() == Qt.Key.Key_Escape:
            if self._drag == "drawing" or self._draw_mode:
                self.cancel_drawing()
                return True
        return super().eventFilter(obj, event)

    def _mouse_clicked(self, ev) -> None:
        if ev.button() != Qt.MouseButton.LeftButton or ev.double():
            return
        ll = self._scene_to_lonlat(ev.scenePos())
        if ll is None or not -90.0 <= ll[1] <= 90.0:
            return
        ev.accept()
        self.click_lonlat(*ll)

    # ------------------------------------------------------------------ overlap choice

    def _offer_overlap_menu(self, found: list[str]) -> None:
        """Pop a non-blocking menu of the overlapping tiles beside the point; the nearest is already selected."""
        self._close_overlap_menu()
        menu = QMenu(self)
        header = menu.addAction(f"{len(found)} tiles overlap here:")
        header.setEnabled(False)
        for i, tid in enumerate(found):
            action = QAction(f"{tid}   (under the click)" if i == 0 else tid, menu)
            action.setData(tid)
            action.setCheckable(True)
            action.setChecked(i == 0)
            action.triggered.connect(functools.partial(self._overlap_chosen, tid))
            menu.addAction(action)
        self.overlap_menu = menu
        lon, lat = self._last_click
        pos = self.view.mapViewToScene(QPointF(lon, lat))
        global_pos = self.plot.mapToGlobal(self.plot.mapFromScene(pos)) + QPoint(8, 8)
        menu.popup(global_pos, menu.actions()[1])
        menu.setActiveAction(menu.actions()[1])
        return None

    def _close_overlap_menu(self) -> None:
        if self.overlap_menu is not None:
            self.overlap_menu.close()
            self.overlap_menu.deleteLater()
            self.overlap_menu = None

    def hideEvent(self, event) -> None:  # noqa: N802 (Qt name)
        self._close_overlap_menu()
        super().hideEvent(event)

    def _overlap_chosen(self, tile_id: str) -> None:
        self.select_tile(tile_id, zoom=False)
