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


def test_an_area_from_cogs_takes_the_classes_and_the_buffer_chosen(tmp_path):
    """Two dates on a local COG mirror: date 0's SCL has a cloud shadow (3), date 1's a cloud (9); masking class 3
    with a one-pixel buffer leaves the cloud in and grows the shadow, on the area's own grid."""
    import datetime as dt

    from affine import Affine
    from rasterio.warp import transform_bounds

    from s2desktop.core import archive, areas, tiles
    from s2desktop.core.pipeline import CompositeOptions, Job, Request, SourceSpec

    n, f = 60, tiles.footprint("33UUP")
    pix = 109800 / n
    transform = Affine(pix, 0, f.utm_bounds[0], 0, -pix, f.utm_bounds[3])
    boxes = [(10, 18, 20, 28), (30, 38, 30, 38)]  # tile pixels of date 0's shadow, date 1's cloud (even: 20 m SCL)
    days = [dt.date(2023, 7, 1), dt.date(2023, 7, 6)]
    root = tmp_path / "cogs"
    for d, (day, (r0, r1, c0, c1), cls) in enumerate(zip(days, boxes, (3, 9))):
        bands = {b: np.full((n, n), 1000 * (d + 1), np.uint16) for b in ("B02", "B03", "B04")}
        scl = np.full((n // 2, n // 2), 4, np.uint8)
        scl[r0 // 2:r1 // 2, c0 // 2:c1 // 2] = cls
        archive.write_scene(root, "cogs", "33UUP", day, 0, bands, crs=f.epsg, transform=transform, baseline="02.09",
                            cloud_cover=1.0, data_coverage=100.0, scl=scl)
    left, top = transform * (5.5, 5.5)
    right, bottom = transform * (49.5, 49.5)
    area = areas.parse_bbox(",".join(f"{v:.6f}" for v in transform_bounds(f"EPSG:{f.epsg}", "EPSG:4326", left,
                                                                          bottom, right, top)))
    out, count = tmp_path / "a.tif", tmp_path / "a_n.tif"
    Job(Request(SourceSpec(str(root)), area=area, resolution=pix, start=days[0], end=days[-1],
                composite=CompositeOptions(str(out), workers=0, count_path=str(count), mask_classes=(3,),
                                           mask_buffer=pix))).run()
    with rasterio.open(count) as c, rasterio.open(out) as ds:
        counts, tf, tags = c.read(1), c.transform, ds.tags()
    col0, row0 = (tf.c - transform.c) / pix, (transform.f - tf.f) / pix
    assert col0 == round(col0) and row0 == round(row0)  # the area's pixels are the tile's
    rows, cols = np.mgrid[0:counts.shape[0], 0:counts.shape[1]]
    rows, cols = rows + int(row0), cols + int(col0)
    r0, r1, c0, c1 = boxes[0]
    dy = np.maximum(0, np.maximum(r0 - rows, rows - (r1 - 1)))
    dx = np.maximum(0, np.maximum(c0 - cols, cols - (c1 - 1)))
    shadow = dy * dy + dx * dx <= 1  # the shadow and one pixel around it (a disk: no corners)
    inside = counts > 0
    assert inside.mean() > 0.8 and (shadow & inside).sum() > (r1 - r0) * (c1 - c0)
    np.testing.assert_array_equal(counts[inside], np.where(shadow, 1, 2)[inside])
    assert tags["MASK_CLASSES"] == "3 cloud-shadow" and tags["MASK_BUFFER"].startswith(f"{pix:g} m")


def test_a_stack_keeps_only_the_masks_the_choice_takes(tmp_path):
    from s2desktop.core.stack import with_mask_choice

    stack = _stack(tmp_path / "s")
    assert stack.masked == 3
    assert with_mask_choice(stack, "auto").masked == 3 and with_mask_choice(stack, "scl") == stack
    assert with_mask_choice(stack, "qi").masked == 0 and with_mask_choice(stack, "none").masked == 0
    assert with_mask_choice(stack, "none").observations[0].rasters == stack.observations[0].rasters
    with pytest.raises(InvalidInputError, match="is not one of"):
        with_mask_choice(stack, "clouds")
