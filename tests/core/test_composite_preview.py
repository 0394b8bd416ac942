"""A composite's finished windows at the preview's size (`core.progress.WindowPixels` on its Progress events):
one per window, placed so that together they are the finished output decimated the same way, read back with
rasterio -- the COG's own overview level where the windows compute it exactly, else its pixels strided."""

import pickle

import numpy as np
import pytest
import rasterio

from s2desktop.core.compositing import composite
from s2desktop.core.progress import PREVIEW_SIDE, Throttle
from s2desktop.core.stack import from_files


def _assemble(events):
    """The preview image from the events' pieces, and how many pieces cover each of its pixels."""
    first = events[0].pixels
    image = np.zeros((len(first.bands), first.height, first.width), np.uint16)
    cover = np.zeros((first.height, first.width), np.uint8)
    for e in events:
        p = e.pixels
        _, h, w = p.pixels.shape
        image[:, p.row:p.row + h, p.col:p.col + w] = p.pixels
        cover[p.row:p.row + h, p.col:p.col + w] += 1
    return image, cover


def _decimated(path, factor: int, resampling: str) -> np.ndarray:
    """The output at 1/factor: its overview of that level (GDAL's average), or every factor-th pixel."""
    if factor == 1 or resampling == "nearest":
        with rasterio.open(path) as ds:
            return ds.read()[:, ::factor, ::factor]
    with rasterio.open(path, overview_level=int(np.log2(factor)) - 1) as ds:
        return ds.read()


@pytest.mark.parametrize("size, window, factor, resampling", [
    (300, 128, 1, "average"),  # small: the full resolution, as the windows hand it back
    (900, 512, 1, "average"),  # windows of whole tiles: the full resolution, a copy beside its tiles
    (2100, 512, 4, "average"),  # the level is one the windows compute exactly: the COG's own overview
    (1027, 256, 2, "nearest"),  # a 3 px edge window: the level is GDAL's across windows, strided here
])
def test_one_event_per_window_together_the_decimated_output(raster_stack, tmp_path, size, window, factor,
                                                            resampling):
    st = raster_stack(dates=3, size=size, block=128, scl=True)
    out, seen = tmp_path / "c.tif", []
    res = composite(from_files(st.red, st.green, st.blue, scl=st.scl), out, workers=2, window_size=window,
                    progress=seen.append)
    events = [e for e in seen if e.pixels is not None]
    assert len(events) == res.windows > 1 and [e.items_done for e in events] == list(range(1, res.windows + 1))
    px = events[0].pixels
    assert (px.factor, px.resampling, px.bands) == (factor, resampling, ("B04", "B03", "B02"))
    assert (px.out_height, px.out_width) == (size, size) and px.height == px.width == -(-size // factor)
    assert max(px.height, px.width) <= PREVIEW_SIDE
    assert all(e.pixels.pixels.dtype == np.uint16 for e in events)
    image, cover = _assemble(events)
    assert (cover == 1).all()  # every preview pixel from exactly one window
    expected = _decimated(out, factor, resampling)
    assert expected.any()
    np.testing.assert_array_equal(image, expected)


def test_window_events_cross_a_process_queue_and_pass_the_throttle(raster_stack, tmp_path):
    st = raster_stack(dates=2, size=600, block=128)
    seen = []
    throttle = Throttle(lambda e: seen.append(pickle.loads(pickle.dumps(e))), rate=0.001)  # one event per 1000 s
    res = composite(from_files(st.red, st.green, st.blue), tmp_path / "c.tif", workers=0, window_size=128,
                    progress=throttle)
    painted = [e.pixels for e in seen if e.pixels is not None]
    assert len(painted) == res.windows  # the throttle drops plain progress, never a window's pixels
    assert all(p.pixels.flags.c_contiguous and p.pixels.shape[0] == 3 for p in painted)
    assert max(len(pickle.dumps(p)) for p in painted) < 3 * 128 * 128 * 2 + 1024
