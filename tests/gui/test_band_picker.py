"""The viewer's band combination, on real rasters in the real window: presets by the bands' descriptions, any
three bands by index, for any multi-band raster; the thumbnail and the export follow what is shown."""

from __future__ import annotations

import numpy as np
import rasterio

from s2desktop.core.display_bands import band_name, default_indexes, preset_indexes
from tests.fixtures_rasters import write_band

SIX = ("B02", "B03", "B04", "B08", "B11", "B12")  # the six-band composite


def _raster(path, descriptions, size=64):
    """One band per description, band i (1-based) holding 1000 * i plus a noise of its own, so each band is told
    apart (by its values, and by its pattern once rendered)."""
    rng = np.random.default_rng(len(descriptions))
    data = np.stack([1000 * (i + 1) + rng.integers(0, 500, (size, size)) for i in range(len(descriptions))])
    data = data.astype(np.uint16)
    write_band(path, data)
    with rasterio.open(path, "r+") as ds:
        for i, d in enumerate(descriptions, 1):
            if d:
                ds.set_band_description(i, d)
    return path, data


def _wait_rendered(qtbot, w, act, bands=None):
    """Do ``act`` and wait until the viewer has rendered ``bands`` (any, when None): a render of the raster
    before it, finishing late, does not count."""
    shown = []
    w.viewer.rendered.connect(lambda: shown.append(w.viewer.bands))
    act()
    qtbot.waitUntil(lambda: bool(shown) and (bands is None or tuple(bands) in shown), timeout=20000)


def _pick(combo, data) -> None:
    """Choose an item as the user does: the current index, then the activated signal."""
    i = combo.findData(data)
    assert i >= 0
    combo.setCurrentIndex(i)
    combo.activated.emit(i)


def test_a_named_six_band_raster_opens_in_true_colour_and_shows_false_colour_on_request(qtbot, main_window,
                                                                                         tmp_path):
    w, v = main_window, main_window.viewer
    path, data = _raster(tmp_path / "six.tif", SIX)
    _wait_rendered(qtbot, w, lambda: w.open_raster(path), (3, 2, 1))
    picker = v.band_picker
    assert picker.isVisible() and v.bands == (3, 2, 1) and picker.preset.currentData() == "true-colour"
    np.testing.assert_array_equal(v.data, data[[2, 1, 0]])
    swir = picker.preset.findData("swir")  # B8A is not in this raster: shown, not offered
    assert not picker.preset.model().item(swir).isEnabled()

    v.vb.setRange(xRange=(10, 30), yRange=(10, 30), padding=0)
    zoomed = v.vb.viewRange()
    _wait_rendered(qtbot, w, lambda: _pick(picker.preset, "false-colour"), (4, 3, 2))
    assert v.bands == (4, 3, 2) and [c.currentData() for c in picker.channels] == [4, 3, 2]
    np.testing.assert_array_equal(v.data, data[[3, 2, 1]])
    (x0, x1), (y0, y1) = v.vb.viewRange()  # other bands of the same raster: the view stays where it was (its
    assert np.allclose([(x0 + x1) / 2, y0, y1], [sum(zoomed[0]) / 2, *zoomed[1]], atol=0.5)  # width: the widget's
    qtbot.waitUntil(lambda: (w.thumbnail.made_with or {}).get("bands") == (4, 3, 2), timeout=20000)

    _wait_rendered(qtbot, w, lambda: _pick(picker.channels[0], 6), (6, 3, 2))  # R: B12, by hand
    assert v.bands == (6, 3, 2) and picker.preset.currentData() == "custom"
    np.testing.assert_array_equal(v.data, data[[5, 2, 1]])


def test_any_multi_band_raster_takes_any_three_bands_and_exports_them(qtbot, main_window, tmp_path):
    w, v = main_window, main_window.viewer
    path, data = _raster(tmp_path / "four.tif", [None, "near infrared", None, None])
    _wait_rendered(qtbot, w, lambda: w.open_raster(path))
    picker = v.band_picker
    assert picker.isVisible() and v.bands == (1, 2, 3) and picker.preset.currentData() == "custom"
    assert not any(picker.preset.model().item(i).isEnabled() for i in range(picker.preset.count() - 1))
    assert picker.channels[0].itemText(1) == "2 · near infrared"
    _wait_rendered(qtbot, w, lambda: picker.choose((2, 4, 1)), (2, 4, 1))
    np.testing.assert_array_equal(v.data, data[[1, 3, 0]])

    out = tmp_path / "shown.tif"
    worker = w.export("geotiff", out)
    qtbot.waitUntil(lambda: worker.done.is_set(), timeout=20000)
    with rasterio.open(out) as ds:  # the rendered export: band 2 in red, so red follows band 2's pattern
        red = ds.read(1).ravel().astype(float)
    assert np.corrcoef(red, data[1].ravel())[0, 1] > 0.95 and abs(np.corrcoef(red, data[0].ravel())[0, 1]) < 0.2


def test_a_single_band_raster_has_no_band_combination(qtbot, main_window, tmp_path):
    w = main_window
    path, _ = _raster(tmp_path / "one.tif", ["B04"])
    _wait_rendered(qtbot, w, lambda: w.open_raster(path))
    assert not w.viewer.band_picker.isVisible() and w.viewer.bands == (1,)


def test_band_names_are_read_from_descriptions():
    assert [band_name(d) for d in ("red (B04)", "b8a", "B12 swir", "B1", "B10", "band 4", None)] == \
        ["B04", "B8A", "B12", "B01", "B10", None, None]
    assert preset_indexes("false-colour", SIX) == (4, 3, 2) and preset_indexes("swir", SIX) is None
    assert default_indexes(6, SIX) == (3, 2, 1) and default_indexes(4, [None] * 4) == (1, 2, 3)
    assert default_indexes(1, ["SCL"]) == (1,)
