"""How a mask is applied: the SCL classes masked (--mask-classes) and the buffer grown around the masked area
(--mask-buffer), on real composites of constructed rasters against a numpy reference."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio

from s2desktop.core import maskrules
from s2desktop.core.compositing import composite
from s2desktop.core.errors import InvalidInputError
from s2desktop.core.stack import from_files
from tests.fixtures_rasters import write_band

N = 64  # px at 10 m; blocks and windows of 32 px: the cloud sits just across a window edge
VALUES = (1000, 2000, 3000)  # date d's every band; the median of all three is 2000
CLOUD = (10, 14, 33, 37)  # rows r0:r1, cols c0:c1 of class 9 on date 0: cols 33-36, right of the window edge at 32
SHADOW = (40, 44, 5, 9)  # class 3 on date 0


def _stack(root, cloud_class: int = 9):
    """Three dates of constant values; date 0's SCL (at 10 m) holds a cloud and a cloud shadow."""
    root.mkdir(parents=True, exist_ok=True)
    files = {b: [] for b in ("red", "green", "blue")}
    scl = []
    for d, v in enumerate(VALUES):
        for b in files:
            files[b].append(write_band(root / f"{b}{d}.tif", np.full((N, N), v, np.uint16), block=32))
        classes = np.full((N, N), 4, np.uint8)  # vegetation
        if d == 0:
            r0, r1, c0, c1 = CLOUD
            classes[r0:r1, c0:c1] = cloud_class
            r0, r1, c0, c1 = SHADOW
            classes[r0:r1, c0:c1] = 3
        scl.append(write_band(root / f"scl{d}.tif", classes, block=32))
    return from_files(files["red"], files["green"], files["blue"], offsets=0, scl=scl)


def _within(box, pixels: int) -> np.ndarray:
    """Pixels whose centre is within ``pixels`` of the box's (the reference: distances, no dilation code)."""
    r0, r1, c0, c1 = box
    yy, xx = np.mgrid[0:N, 0:N]
    dy = np.maximum(0, np.maximum(r0 - yy, yy - (r1 - 1)))
    dx = np.maximum(0, np.maximum(c0 - xx, xx - (c1 - 1)))
    return dy * dy + dx * dx <= pixels * pixels


def _composite(tmp_path, name, **kw):
    out, count = tmp_path / f"{name}.tif", tmp_path / f"{name}_n.tif"
    composite(_stack(tmp_path / name), out, workers=0, window_size=32, count_path=count, **kw)
    with rasterio.open(out) as ds, rasterio.open(count) as c:
        return ds.read(1), c.read(1), ds.tags()


@pytest.mark.parametrize("buffer, pixels", [(0, 0), (20, 2), (25, 2), (30, 3)])
def test_a_buffer_grows_the_masked_area_by_whole_pixels_across_window_edges(tmp_path, buffer, pixels):
    red, count, tags = _composite(tmp_path, f"b{buffer}", mask_buffer=buffer)
    masked = _within(CLOUD, pixels) | _within(SHADOW, pixels)
    np.testing.assert_array_equal(count, np.where(masked, 2, 3))
    np.testing.assert_array_equal(red, np.where(masked, 2500, 2000))
    assert tags["MASK_BUFFER"].startswith(f"{buffer:g} m")
    if buffer == 20:  # exactly two pixels: the cloud's columns 33-36 reach column 31, in the window to its left
        r0, r1, c0, c1 = CLOUD
        assert masked[r0:r1, c0 - 2].all() and c0 - 2 < 32 <= c0  # the reference reaches across the edge
        assert count[r0, c0 - 2] == 2 and count[r0, c0 - 3] == 3 and count[r0 - 2, c0] == 2 and count[r0 - 3, c0] == 3
        assert count[r0 - 2, c0 - 2] == 3  # a disk: the corner 2.8 px away diagonally stays clear


def test_the_classes_masked_are_the_ones_chosen(tmp_path):
    red, count, tags = _composite(tmp_path, "shadows", mask_classes=(3,))
    np.testing.assert_array_equal(count, np.where(_within(SHADOW, 0), 2, 3))  # the cloud is kept, as asked
    assert tags["MASK"].startswith("SCL classes 3 masked") and tags["MASK_CLASSES"] == "3 cloud-shadow"
    red, count, tags = _composite(tmp_path, "named", mask_classes="cloud-high, cirrus")
    np.testing.assert_array_equal(count, np.where(_within(CLOUD, 0), 2, 3))
    assert tags["MASK_CLASSES"] == "9 cloud-high, 10 cirrus"


@pytest.mark.parametrize("text, expected", [("3,8,9,10", (3, 8, 9, 10)), ("10, 3 ,3", (3, 10)),
                                            ("Cloud_Shadow,cloud-medium,CLOUD-HIGH,cirrus", (3, 8, 9, 10)),
                                            ((0, "snow"), (0, 11))])
def test_mask_classes_are_read_by_number_or_name(text, expected):
    assert maskrules.parse_classes(text) == expected


@pytest.mark.parametrize("text, says", [("3,12", "'12' is not an SCL class"), ("clouds", "'clouds' is not"),
                                        ("", "no mask classes given"), ("-1", "'-1' is not")])
def test_bad_mask_classes_are_one_line_errors(text, says):
    with pytest.raises(InvalidInputError, match=says) as err:
        maskrules.parse_classes(text)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("value", [-1, "ten", float("nan"), 5001])
def test_a_bad_buffer_is_a_one_line_error(tmp_path, value):
    with pytest.raises(InvalidInputError, match="mask buffer") as err:
        composite(_stack(tmp_path / "s"), tmp_path / "o.tif", workers=0, mask_buffer=value)
    assert "\n" not in str(err.value) and not (tmp_path / "o.tif").exists()
