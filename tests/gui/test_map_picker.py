"""The map picker: real widgets, offscreen; clicks go through the same code path as the mouse."""

import os
from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QColor, QImage, QPainter

from s2desktop.core.errors import InvalidTileError, NotFoundError
from s2desktop.core.tiles import footprint, tiles_at
from s2desktop.gui.map_picker import GRID_MAX_SPAN, MapPicker

VIENNA = (16.3738, 48.2082)  # in 33UWP and 33UXP
FEHMARN = (11.886, 54.944)  # in 32UPF, 32UPG, 33UUA, 33UUB


@pytest.fixture
def picker(qtbot):
    w = MapPicker()
    qtbot.addWidget(w)
    w.resize(900, 560)
    w.show()
    qtbot.waitExposed(w)
    return w


def _viewport_pos(picker, lon, lat) -> QPoint:
    scene = picker.view.mapViewToScene(QPointF(lon, lat))
    return picker.plot.mapFromScene(scene)


def _widget_pos(picker, lon, lat) -> QPoint:
    return picker.plot.mapTo(picker, _viewport_pos(picker, lon, lat))


def test_click_selects_the_tile_containing_the_point(picker, qtbot):
    with qtbot.waitSignal(picker.tileSelected, timeout=2000) as blocker:
        assert picker.click_lonlat(5.7331, 58.9700) == "32VLL"  # Stavanger (Norway's zone 32 exception)
    assert blocker.args == ["32VLL"]
    assert picker.selected_tile == "32VLL"
    assert picker._select_item.isVisible()
    rect = picker._select_item.path().boundingRect()
    lon0, lat0, lon1, lat1 = footprint("32VLL").bbox
    assert rect.left() == pytest.approx(lon0, abs=1e-4) and rect.right() == pytest.approx(lon1, abs=1e-4)
    assert rect.top() == pytest.approx(lat0, abs=1e-4) and rect.bottom() == pytest.approx(lat1, abs=1e-4)


def test_click_where_tiles_overlap_offers_the_choice(picker, qtbot):
    offered, selected = [], []
    picker.tileSelected.connect(selected.append)
    picker.choose_overlap = lambda tiles: offered.append(tiles) or tiles[2]
    with qtbot.waitSignal(picker.overlapOffered, timeout=2000) as blocker:
        chosen = picker.click_lonlat(*FEHMARN)
    expected = tiles_at(*FEHMARN)
    assert sorted(expected) == ["32UPF", "32UPG", "33UUA", "33UUB"]
    assert blocker.args == [expected] and offered == [expected]  # nearest centre first
    assert chosen == expected[2] and picker.selected_tile == expected[2]
    assert selected == [expected[2]]  # one selection, the chosen one


def test_overlap_chooser_declining_keeps_the_nearest(picker):
    picker.choose_overlap = lambda tiles: None
    assert picker.click_lonlat(*FEHMARN) == tiles_at(*FEHMARN)[0] == "32UPF"


def test_default_overlap_menu_preselects_the_nearest_and_switches(picker, qtbot):
    with qtbot.waitSignal(picker.tileSelected, timeout=2000) as first:
        picker.click_lonlat(*VIENNA)
    assert first.args == ["33UWP"]  # the nearest centre, selected at once (the menu does not block)
    menu = picker.overlap_menu
    assert menu is not None and menu.isVisible()
    tile_actions = [a for a in menu.actions() if a.data()]
    assert [a.data() for a in tile_actions] == ["33UWP", "33UXP"]
    assert tile_actions[0].isChecked() and not tile_actions[1].isChecked()
    assert menu.activeAction() is tile_actions[0]
    with qtbot.waitSignal(picker.tileSelected, timeout=2000) as second:
        tile_actions[1].trigger()
    assert second.args == ["33UXP"] and picker.selected_tile == "33UXP"
    menu.close()


def test_a_real_mouse_click_selects(picker, qtbot):
    picker.select_tile("32VLL")  # zooms in; 32VLM (north) and 32VML (east) are in view
    qtbot.waitUntil(lambda: picker.grid_visible, timeout=2000)
    lon, lat = footprint("32VML").centre
    with qtbot.waitSignal(picker.tileSelected, timeout=2000) as blocker:
        qtbot.mouseClick(picker.plot.viewport(), Qt.MouseButton.LeftButton, pos=_viewport_pos(picker, lon, lat))
    assert blocker.args == ["32VML"]


def test_hover_names_the_tiles_under_the_cursor(picker, qtbot):
    with qtbot.waitSignal(picker.hovered, timeout=2000) as blocker:
        text = picker.hover_lonlat(*VIENNA)
    assert text == "Tiles 33UWP, 33UXP" == picker.hover_text
    assert blocker.args == ["33UWP, 33UXP"]
    assert picker.coords_label.text() == "48.2082° N, 16.3738° E"
    assert picker.plot.toolTip() == "33UWP, 33UXP"
    assert picker.hover_lonlat(-179.99, -16.8) == "Tile 1KAB"
    assert picker.coords_label.text() == "16.8000° S, 179.9900° W"
    assert picker.hover_lonlat(0.0, 89.0) == ""  # the polar cap has no tiles


def test_a_real_mouse_move_updates_the_readout(picker, qtbot):
    picker.select_tile("33UWP")
    lon, lat = footprint("33UWP").centre
    qtbot.mouseMove(picker.plot.viewport(), _viewport_pos(picker, lon, lat))
    qtbot.waitUntil(lambda: picker.hover_text == "Tile 33UWP", timeout=2000)
    # the hovered tile is outlined once the (throttled) grid is shown
    qtbot.waitUntil(lambda: picker._hover_item.isVisible(), timeout=2000)
    rect = picker._hover_item.path().boundingRect()
    assert rect.left() == pytest.approx(footprint("33UWP").bbox[0], abs=1e-4)


def test_grid_hidden_zoomed_out_and_shown_zoomed_in(picker, qtbot):
    assert picker.view_span() > GRID_MAX_SPAN
    assert not picker.grid_visible and picker.visible_tiles == []
    assert "Zoom in" in picker.hint_label.text()
    picker.view.setRange(xRange=(12.0, 20.0), yRange=(46.0, 50.0), padding=0.0)
    qtbot.waitUntil(lambda: picker.grid_visible, timeout=2000)  # via the throttled range-changed handler
    tiles = picker.visible_tiles
    assert "33UWP" in tiles and "33UXP" in tiles and "12SYJ" not in tiles
    assert 20 < len(tiles) < 400
    assert len(picker._grid_curve.xData) == 5 * len(tiles)
    assert picker.hint_label.text() == ""
    assert any(t.isVisible() and t.toPlainText() == "33UWP" for t in picker._labels)
    picker.zoom_world()
    qtbot.waitUntil(lambda: not picker.grid_visible, timeout=2000)
    assert picker.visible_tiles == [] and not any(t.isVisible() for t in picker._labels)


def test_select_tile_zooms_to_it(picker, qtbot):
    with qtbot.waitSignal(picker.tileSelected, timeout=2000) as blocker:
        assert picker.select_tile(" t55jgf ") == "55JGF"
    assert blocker.args == ["55JGF"]
    (x0, x1), (y0, y1) = picker.view.viewRange()
    lon0, lat0, lon1, lat1 = footprint("55JGF").bbox
    assert x0 < lon0 and lon1 < x1 and y0 < lat0 and lat1 < y1
    assert x1 - x0 < GRID_MAX_SPAN
    qtbot.waitUntil(lambda: "55JGF" in picker.visible_tiles, timeout=2000)
    # selecting the same tile again changes nothing and emits nothing
    emitted = []
    picker.tileSelected.connect(emitted.append)
    picker.select_tile("55JGF", zoom=False)
    assert emitted == []


def test_select_tile_errors_are_the_cores(picker):
    with pytest.raises(InvalidTileError, match="^zone 61 is out of range 1-60$"):
        picker.select_tile("61UUP")
    with pytest.raises(NotFoundError, match="not in the Sentinel-2 tiling grid"):
        picker.select_tile("31NAA")
    assert picker.selected_tile is None


def test_antimeridian(picker, qtbot):
    picker.select_tile("1KAB")
    (x0, x1), _ = picker.view.viewRange()
    assert x0 < 179.3 and x1 > 180.3
    assert picker.click_lonlat(-179.99, -16.8) == "1KAB"
    # a view west of the antimeridian draws the tiles stored east of it, shifted by -360
    picker.view.setRange(xRange=(-182.0, -176.0), yRange=(-18.0, -15.0), padding=0.0)
    qtbot.waitUntil(lambda: "1KAB" in picker.visible_tiles and "60KYG" in picker.visible_tiles, timeout=2000)
    assert picker._grid_curve.xData.min() < -180.5


def test_screenshots_show_the_world_and_the_selected_tile(picker, qtbot, tmp_path):
    out = Path(os.environ.get("S2DESKTOP_SCREENS", tmp_path))
    out.mkdir(parents=True, exist_ok=True)
    picker.hover_lonlat(*VIENNA)
    picker.select_tile("33UWP", zoom=False)
    qtbot.wait(1)  # let queued paints run
    world = picker.grab().toImage()
    # the world view: ocean at mid Atlantic, land in the Sahara
    assert _close(world.pixelColor(_widget_pos(picker, -35.0, 10.0)), QColor("#cfe0ee"))
    assert _close(world.pixelColor(_widget_pos(picker, 10.0, 23.0)), QColor("#f3f0e6"))
    picker.select_tile("33UWP")
    qtbot.waitUntil(lambda: picker.grid_visible, timeout=2000)
    picker.hover_lonlat(15.0, 47.6)
    zoomed = picker.grab().toImage()
    # the selected tile is filled orange: a pixel inside it (off the label) is warmer than plain land
    c = zoomed.pixelColor(_widget_pos(picker, 15.3, 48.6))
    assert c.red() > 230 and c.blue() < 200 and c.red() - c.blue() > 60, c.name()
    combined = QImage(world.width(), world.height() * 2, QImage.Format.Format_RGB32)
    p = QPainter(combined)
    p.drawImage(0, 0, world)
    p.drawImage(0, world.height(), zoomed)
    p.end()
    assert combined.save(str(out / "map_picker.png"))
    assert (out / "map_picker.png").stat().st_size > 20_000


def _close(a: QColor, b: QColor, tol: int = 12) -> bool:
    return abs(a.red() - b.red()) <= tol and abs(a.green() - b.green()) <= tol and abs(a.blue() - b.blue()) <= tol


def test_tile_labels_never_overlap_at_a_utm_zone_seam(picker, qtbot):
    """At the 28/29 seam (12° W) the zones' tiles overlap; labels that would collide are left out, the selected
    tile's label always wins, and no label is cut by the map's edge."""
    picker.resize(420, 200)  # as in the dock at 1280x800: tight enough for collisions
    qtbot.waitUntil(lambda: picker.plot.width() < 430, timeout=2000)
    picker.select_tile("29RKH", zoom=True)
    qtbot.waitUntil(lambda: any(t.isVisible() for t in picker._labels), timeout=2000)

    def boxes():
        out = {}
        for t in picker._labels:
            if t.isVisible():  # the text itself: the item's box less the text document's margin
                m = t.textItem.document().documentMargin() - 1
                out[t.toPlainText()] = t.sceneBoundingRect().adjusted(m, m, -m, -m)
        return out

    b = boxes()
    assert "29RKH" in b, sorted(b)
    names = sorted(b)
    for i, n in enumerate(names):
        for m in names[i + 1:]:
            assert not b[n].intersects(b[m]), (n, m)
        assert picker.view.sceneBoundingRect().contains(b[n]), n
    # the candidates did collide: some were left out rather than drawn on top of each other
    assert len(b) < len(picker._label_candidates)
    # selecting a neighbour across the seam gives that one's label priority
    seam = [c[0] for c in picker._label_candidates if c[0].startswith("28") and c[0] not in b]
    if seam:
        picker.select_tile(seam[0], zoom=False)
        assert seam[0] in boxes()


def test_a_click_on_a_tile_label_at_a_zone_seam_picks_that_tile(picker, qtbot):
    """At the 28/29 seam, 28RHN reaches over 29RKH with its centre 7 km away: a click on the 29RKH label (a few
    pixels around its centre) used to pick 28RHN, the nearest centre. The tiles of the zone under the click come
    first; among them, the nearest centre; the other zone's tile is still offered."""
    picker.resize(420, 200)  # as in the dock at 1280x800
    qtbot.waitUntil(lambda: picker.plot.width() < 430, timeout=2000)
    picker.select_tile("29RKH", zoom=True)  # as the demo opens; then the user clicks its label
    qtbot.waitUntil(lambda: any(t.isVisible() and t.toPlainText() == "29RKH" for t in picker._labels),
                    timeout=2000)
    label = next(t for t in picker._labels if t.isVisible() and t.toPlainText() == "29RKH")
    box = label.sceneBoundingRect()
    offered = []
    picker.choose_overlap = lambda found: offered.append(found) or None
    for fx, fy in ((0.2, 0.5), (0.5, 0.5), (0.8, 0.3), (0.1, 0.8)):  # across the label's text
        scene = QPointF(box.left() + fx * box.width(), box.top() + fy * box.height())
        qtbot.mouseClick(picker.plot.viewport(), Qt.MouseButton.LeftButton, pos=picker.plot.mapFromScene(scene))
        assert picker.selected_tile == "29RKH", (fx, fy, offered[-1:])
    assert "28RHN" in offered[-1]
    # west of the seam, zone 28's own tiles: a click there picks the one whose centre is nearest
    lon, lat = -12.3, 24.8
    expected = min((t for t in tiles_at(lon, lat) if t.startswith("28")),
                   key=lambda t: (footprint(t).centre[0] - lon) ** 2 + (footprint(t).centre[1] - lat) ** 2)
    assert picker.click_lonlat(lon, lat) == expected
