"""The window as an analyst meets it: the map has the room until there is an image, the image opens whole and
in natural colours, and every readout (map label, pixel readout, thumbnail, attributes) follows what is shown."""

from __future__ import annotations

import numpy as np
import pytest
from rasterio.transform import from_origin

from tests.fixtures_rasters import write_band

GREY = (slice(40, 60), slice(40, 60))  # a neutral patch: R = G = B


def _rgb_raster(path, size=120):
    """3 bands uint16 over a grey ramp, each band with its own offset (R < G < B, like haze), and a neutral
    grey patch where R = G = B."""
    yy, xx = np.mgrid[0:size, 0:size]
    ramp = 1000 + 15 * xx + 5 * yy
    data = np.stack([ramp, ramp + 400, ramp + 800]).astype(np.uint16)
    data[:, GREY[0], GREY[1]] = 2200
    return write_band(path, data)


def _open(qtbot, w, path):
    with qtbot.waitSignal(w.viewer.rendered, timeout=20000):
        w.open_raster(str(path))


def _range_covers(vb, width, height) -> bool:
    (x0, x1), (y0, y1) = vb.viewRange()
    return x0 <= 0.5 and x1 >= width - 0.5 and y0 <= 0.5 and y1 >= height - 0.5


# -- 1. map first ---------------------------------------------------------------------------------------------


def test_the_map_has_the_room_until_a_raster_opens(qtbot, main_window, tmp_path):
    w = main_window
    w.resize(1280, 800)
    qtbot.waitUntil(lambda: w.map.isVisible())
    central = w.centralWidget()
    assert w.map.height() >= central.height() / 2
    assert not w.viewer.isVisible()

    _open(qtbot, w, _rgb_raster(tmp_path / "rgb.tif"))
    assert w.viewer.isVisible() and w.viewer.glw.height() >= central.height() / 2
    w.show_map()  # still reachable (its tab)
    assert w.map.isVisible() and w.map.height() >= central.height() / 2
    w.show_image()
    assert w.viewer.isVisible()


def test_a_restored_tile_is_selected_and_zoomed_on_the_map(qtbot, gui_settings):
    from s2desktop.core.tiles import footprint
    from s2desktop.gui import settings as st
    from s2desktop.gui.main_window import MainWindow

    st.settings().setValue(st.LAST_TILE, "33UUP")
    w = MainWindow()
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    assert w.source_panel.tile_id() == "33UUP"
    assert w.map.selected_tile == "33UUP"
    lon0, lat0, lon1, lat1 = footprint("33UUP").bbox
    (x0, x1), (y0, y1) = w.map.view.viewRange()
    assert x0 <= lon0 and x1 >= lon1 and y0 <= lat0 and y1 >= lat1  # the tile in view...
    assert x1 - x0 < 6 * (lon1 - lon0)  # ...and the view around it, not the world
    w.close()


# -- 2. natural colours by default ----------------------------------------------------------------------------


def test_an_rgb_composite_opens_with_its_colour_balance_kept(qtbot, main_window, tmp_path):
    w, v = main_window, main_window.viewer
    _open(qtbot, w, _rgb_raster(tmp_path / "rgb.tif"))
    r, g, b = (int(c) for c in v.image_rgba[50, 50, :3])
    assert max(r, g, b) - min(r, g, b) <= 3, f"grey rendered as {r, g, b} with {v.stretch.currentData()}"
    assert 40 < r < 215  # and neither black nor white
    # in natural colour: reflectance (DN / 10000) x 2.5, as Sentinel Hub shows the ground, the same for every band
    assert v.stretch.currentData() == "truecolor"
    assert np.unique(v.image_rgba[GREY[0], GREY[1], :3]).tolist() == [round(2200 / 10000 * 2.5 * 255)]
    assert v.image_rgba[0, 0, 2] == round((1000 + 800) / 10000 * 2.5 * 255)

    # the per-band cut (still offered) is what turned grey into a colour
    with qtbot.waitSignal(v.rendered, timeout=10000):
        v.stretch.setCurrentIndex(v.stretch.findData("percentile"))
    r, g, b = (int(c) for c in v.image_rgba[50, 50, :3])
    assert max(r, g, b) - min(r, g, b) > 20


def test_single_band_rasters_keep_the_per_band_cut(qtbot, main_window, raster_stack, tmp_path):
    w, v = main_window, main_window.viewer
    _open(qtbot, w, _rgb_raster(tmp_path / "rgb.tif"))
    _open(qtbot, w, raster_stack(dates=1, size=100).red[0])
    assert v.stretch.currentData() == "percentile"


def test_the_histogram_marks_each_bands_cut_when_the_cuts_differ(qtbot, main_window, tmp_path):
    w, v = main_window, main_window.viewer
    _open(qtbot, w, _rgb_raster(tmp_path / "rgb.tif"))
    assert len(set(v.levels)) == 1  # one cut shared by the three bands: the region shows it
    assert v.region.getRegion() == pytest.approx(v.levels[0])
    assert not any(m.isVisible() for m in v.cut_marks)

    with qtbot.waitSignal(v.rendered, timeout=10000):
        v.stretch.setCurrentIndex(v.stretch.findData("percentile"))
    assert len(set(v.levels)) == 3
    shown = [m.value() for m in v.cut_marks if m.isVisible()]
    assert sorted(shown) == pytest.approx(sorted(x for lv in v.levels for x in lv))


# -- 3. readouts that follow ----------------------------------------------------------------------------------


def test_a_typed_tile_is_highlighted_and_labelled_on_the_map(qtbot, main_window):
    w, m = main_window, main_window.map
    qtbot.keyClicks(w.source_panel.tile, "33uup")
    assert m.selected_tile == "33UUP" and m._select_item.isVisible()
    assert "33UUP" in m.tile_label.text()
    qtbot.waitUntil(lambda: any(t.isVisible() and t.textItem.toPlainText() == "33UUP" for t in m._labels))

    w.source_panel.tile.clear()  # the field no longer names a tile: neither does the map
    assert m.selected_tile is None and not m._select_item.isVisible()
    assert "33UUP" not in m.tile_label.text()
    qtbot.keyClicks(w.source_panel.tile, "33UIP")  # well-formed, but not in the grid
    assert m.selected_tile is None and "does not exist" in w.source_panel.tile_error.text()


def test_the_pixel_readout_clears_when_another_raster_opens(qtbot, main_window, raster_stack, tmp_path):
    from s2desktop.gui.viewer import READOUT_EMPTY

    w, v = main_window, main_window.viewer
    _open(qtbot, w, _rgb_raster(tmp_path / "rgb.tif"))
    v.readout.setText(v.readout_text(v.pixel_at(10, 10)))
    assert v.readout.text() != READOUT_EMPTY
    _open(qtbot, w, raster_stack(dates=1, size=100).red[0])
    assert v.readout.text() == READOUT_EMPTY


def test_the_thumbnail_follows_the_stretch(qtbot, main_window, tmp_path):
    w, v, t = main_window, main_window.viewer, main_window.thumbnail
    with qtbot.waitSignal(t.thumbnailReady, timeout=20000):
        _open(qtbot, w, _rgb_raster(tmp_path / "rgb.tif"))
    first = t.rgba.copy()
    with qtbot.waitSignal(t.thumbnailReady, timeout=20000):
        v.stretch.setCurrentIndex(v.stretch.findData("minmax"))
    assert not np.array_equal(first, t.rgba)
    assert t.made_with == v.stretch_params()


def test_a_new_raster_opens_whole_from_its_first_frame(qtbot, main_window, raster_stack, tmp_path):
    w, v = main_window, main_window.viewer
    _open(qtbot, w, raster_stack(dates=1, size=60).red[0])
    big = _rgb_raster(tmp_path / "big.tif", size=480)
    seen = []  # whether the whole raster is in view at each step the user could see
    v.loaded.connect(lambda *_: seen.append(("loaded", _range_covers(v.vb, 480, 480))))
    v.rendered.connect(lambda: seen.append(("rendered", _range_covers(v.vb, 480, 480))))
    _open(qtbot, w, big)
    assert seen and all(ok for _step, ok in seen), seen
    (x0, x1), (y0, y1) = v.vb.viewRange()
    assert min(x1 - x0, y1 - y0) < 480 * 1.1  # fitted (aspect locked: one side tight), not zoomed out


def test_attributes_show_bounds_as_plain_coordinates(qtbot, tmp_path):
    from PySide6.QtCore import Qt

    from s2desktop.core.rasterinfo import raster_info
    from s2desktop.gui.viewer import AttributesPanel

    path = write_band(tmp_path / "b.tif", np.ones((100, 100), np.uint16),
                      transform=from_origin(199980.0, 2800020.0, 1098.0, 1098.0))
    panel = AttributesPanel()
    qtbot.addWidget(panel)
    panel.set_info(raster_info(path))
    assert panel.value_of("bounds") == "199980.0, 2690220.0, 309780.0, 2800020.0"
    assert "e+" not in panel.value_of("transform")


def test_the_attributes_read_a_fractional_pixel_size_in_four_decimals(qtbot, tmp_path):
    """A quick preview of a 1098 px tile is 275 px over 109.8 km: its pixel size read 399.27272727272725."""
    from PySide6.QtCore import Qt

    from s2desktop.core.rasterinfo import raster_info
    from s2desktop.gui.viewer import AttributesPanel
    from tests.fixtures_rasters import write_band

    path = write_band(tmp_path / "preview.tif", np.ones((3, 8, 8), np.uint16), res=109800 / 275)
    panel = AttributesPanel()
    qtbot.addWidget(panel)
    panel.set_info(raster_info(path))
    assert panel.value_of("resolution") == "399.2727, 399.2727"
    assert "399.27272727272" in panel.findItems("resolution", Qt.MatchFlag.MatchExactly, 0)[0].toolTip(1)
    assert panel.value_of("width") == "8"
