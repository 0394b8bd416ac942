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


# -- 3. readouts that follow ----------------------------------------------------------------------------------


def test_attributes_show_bounds_as_plain_coordinates(qtbot, tmp_path):
    from s2desktop.core.rasterinfo import raster_info
    from s2desktop.gui.viewer import AttributesPanel

    path = write_band(tmp_path / "b.tif", np.ones((100, 100), np.uint16),
                      transform=from_origin(199980.0, 2800020.0, 1098.0, 1098.0))
    panel = AttributesPanel()
    qtbot.addWidget(panel)
    panel.set_info(raster_info(path))
    assert panel.value_of("bounds") == "199980.0, 2690220.0, 309780.0, 2800020.0"
    assert "e+" not in panel.value_of("transform")
