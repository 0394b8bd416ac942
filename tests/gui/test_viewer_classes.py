"""A scene classification (SCL) opens in its class colours, with a legend and class names in the readout, and
exports that way; the next ordinary raster goes back to a stretch."""

from __future__ import annotations

import numpy as np
import rasterio

from s2desktop.core.render import SCL_CLASSES
from tests.fixtures_rasters import write_band


def test_scl_opens_in_class_colours_and_exports_them(qtbot, main_window, raster_stack, tmp_path):
    w = main_window
    v = w.viewer
    classes = np.full((120, 160), 4, dtype=np.uint8)  # vegetation, a cloud block, water, a nodata strip
    classes[20:60, 30:90] = 9
    classes[80:110, 100:150] = 6
    classes[:, :10] = 0
    scl = write_band(tmp_path / "T33UUP_20230714_SCL_20m.tif", classes, block=32, res=20.0)

    with qtbot.waitSignal(v.rendered, timeout=20000):
        w.open_raster(scl)
    assert v.stretch.currentData() == "classes"
    assert v.legend.isVisible() and not v.gamma.isVisible()
    legend = v.legend.text().replace("&nbsp;", " ")
    assert "Vegetation" in legend and "Cloud, high probability" in legend and "Water" in legend
    assert "Snow" not in legend  # only the classes present
    rgba = v.image_rgba
    h, w_ = rgba.shape[:2]
    at = lambda r, c: tuple(rgba[int(r * h / 120), int(c * w_ / 160)])  # noqa: E731
    assert at(40, 60) == (*SCL_CLASSES[9][1], 255)
    assert at(95, 120) == (*SCL_CLASSES[6][1], 255)
    assert at(5, 150) == (*SCL_CLASSES[4][1], 255)
    assert at(50, 5)[3] == 0  # class 0: transparent
    px = v.pixel_at(60.5, 40.5)
    assert v.readout_text(px).split("\n")[0].endswith("values [9 Cloud, high probability]")

    out = tmp_path / "scl_rendered.tif"
    job = w.export("geotiff", out)
    qtbot.waitUntil(job.done.is_set, timeout=20000)
    with rasterio.open(out) as ds:
        got = ds.read()
    assert tuple(got[:, 40, 60]) == (*SCL_CLASSES[9][1], 255) and got[3, 50, 5] == 0

    # an ordinary raster afterwards is stretched again
    stack = raster_stack(dates=1, size=64)
    with qtbot.waitSignal(v.rendered, timeout=20000):
        w.open_raster(stack.red[0])
    assert v.stretch.currentData() == "percentile" and not v.legend.isVisible()
