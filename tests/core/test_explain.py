"""`explain`: a composite's pixel read again from the composite's own inputs, each date's fate and value, on the
constructed history of tests/fixtures_history.py (cloud by SCL 9, nodata, a 04.00 offset, outside the footprint,
an L1C MSK_CLASSI cloud); then a tile from the L2A test server and an area streamed from COGs (from its cache)."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest
import rasterio
from rasterio.warp import transform_bounds

from s2desktop.cli import main
from s2desktop.core import areas
from s2desktop.core.explain import Reason, explain
from s2desktop.core.pipeline import CompositeOptions, Job, Request, SourceSpec
from tests.fixtures_history import EXPECTED, PIXEL, USED_VALUES, history_composite
from tests.fixtures_s3 import EPSG, TRANSFORM


def _half_up(x) -> np.ndarray:
    return np.floor(np.asarray(x, dtype=np.float64) + 0.5).astype(np.int64)


def _medoid(values: np.ndarray) -> int:
    d = np.sqrt(((values[:, None, :] - values[None, :, :]) ** 2).sum(axis=2)).sum(axis=1)
    return int(np.argmin(d))  # ties: the earlier date


RULES = {
    "median": lambda v: _half_up(np.median(v, axis=0)),
    "quantile:25": lambda v: _half_up(np.percentile(v, 25, axis=0)),
    "medoid": lambda v: v[_medoid(v)],
}


@pytest.mark.parametrize("method", list(RULES))
def test_explain_json_gives_each_dates_fate_and_the_rule_explains_the_value(tmp_path, capsys, method):
    out, stack = history_composite(tmp_path, method)
    assert main(["explain", str(out), "--pixel", f"{PIXEL[0]},{PIXEL[1]}", "--json"]) == 0
    why = json.loads(capsys.readouterr().out)
    assert [d["date"] for d in why["dates"]] == list(stack.dates)
    for d, (reasons, mask_class, values) in zip(why["dates"], EXPECTED):
        assert d["reasons"] == reasons, d["date"]
        assert d["reason"] == sum(why["reason_bits"][r] for r in reasons)
        if mask_class:
            assert d["mask_class"] == mask_class
        if values:
            assert tuple(d["values"]) == values, d["date"]
    expected = RULES[method](USED_VALUES)
    assert why["value"] == why["recomputed"] == expected.tolist()  # the composite's value is the rule's
    assert why["count"] == why["used"] == len(USED_VALUES)
    if method == "medoid":
        used = [d["date"] for d in why["dates"] if "USED" in d["reasons"]]
        assert why["chosen_date"] == used[_medoid(USED_VALUES)]
        assert [d["chosen"] for d in why["dates"]].count(True) == 1
    else:
        assert why["chosen_date"] is None


def test_the_pixel_by_lonlat_or_xy_is_the_same_and_the_table_names_the_classes(tmp_path, capsys):
    out, _stack = history_composite(tmp_path)
    with rasterio.open(out) as ds:
        x, y = ds.xy(*PIXEL)
    by_xy = explain(out, xy=(x, y))
    by_lonlat = explain(out, lonlat=(by_xy.lon, by_xy.lat))
    assert (by_xy.row, by_xy.col) == (by_lonlat.row, by_lonlat.col) == PIXEL
    assert main(["explain", str(out), "--xy", f"{x},{y}"]) == 0
    table = capsys.readouterr().out
    assert "MASKED (SCL 9: cloud high probability)" in table and "opaque clouds" in table
    assert "USED+OFFSET_APPLIED" in table and "OUTSIDE_FOOTPRINT" in table
    assert main(["explain", str(out), "--pixel", "64,0"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "outside median.tif" in err
    (tmp_path / "median.json").unlink()
    assert main(["explain", str(out), "--pixel", "1,1"]) == 2
    assert "no provenance record" in capsys.readouterr().err


def test_chips_show_each_date_around_the_pixel(tmp_path):
    out, _stack = history_composite(tmp_path)
    why = explain(out, pixel=PIXEL, chips=True)
    chips = [d.chip for d in why.dates]
    assert all(c.shape == (64, 64, 3) and c.dtype == np.uint8 for c in chips)
    centre = [tuple(c[32, 32]) for c in chips]  # the pixel itself: the bright dates are white there
    assert centre[1] == (255, 255, 255) and centre[0] != (255, 255, 255)


def _assert_explains_the_count_and_value(out, pixels):
    with rasterio.open(out) as ds:
        data = ds.read()
    for row, col in pixels:
        why = explain(out, pixel=(row, col))
        assert why.value == tuple(int(v) for v in data[:, row, col])
        assert why.recomputed == why.value and why.count == why.used


def test_a_tile_from_the_l2a_server_is_explained_from_its_downloads(seeded_s3, tmp_path):
    out = tmp_path / "tile.tif"
    Job(Request(SourceSpec("l2a", endpoint_url=seeded_s3.endpoint), tile="33UUP", download_dir=tmp_path / "dl",
                start=dt.date(2023, 7, 1), end=dt.date(2023, 7, 31),
                composite=CompositeOptions(str(out), workers=0))).run()
    _assert_explains_the_count_and_value(out, [(0, 0), (10, 40), (33, 21), (63, 63)])
    why = explain(out, pixel=(10, 40))
    assert {Reason.MASKED, Reason.USED} & {r for d in why.dates for r in Reason if r in d.reason}


def test_an_area_streamed_from_cogs_is_explained_from_the_area_cache(seeded_s3, tmp_path):
    left, top = TRANSFORM * (10.5, 0.5)  # pixels [10, 40) x [0, 12) of the fixture tile
    right, bottom = TRANSFORM * (39.5, 11.5)
    area = areas.parse_bbox(",".join(f"{v:.6f}" for v in transform_bounds(f"EPSG:{EPSG}", "EPSG:4326", left,
                                                                          bottom, right, top)))
    out = tmp_path / "area.tif"
    Job(Request(SourceSpec("cogs", endpoint_url=seeded_s3.endpoint), area=area, resolution=TRANSFORM.a,
                start=dt.date(2023, 6, 1), end=dt.date(2023, 7, 20), cache_dir=tmp_path / "cache",
                composite=CompositeOptions(str(out), workers=0))).run()
    with rasterio.open(out) as ds:
        h, w = ds.shape
    # the server's address in the record made unreachable: the pixels come from the area cache alone
    record = tmp_path / "area.json"
    doc = json.loads(record.read_text())
    doc["properties"]["s2desktop:recipe"]["request"]["source"]["endpoint_url"] = "http://127.0.0.1:9"
    record.write_text(json.dumps(doc))
    _assert_explains_the_count_and_value(out, [(h // 2, w // 2), (0, 0), (h - 1, w - 1)])


@pytest.mark.parametrize("driver", ["GTiff", "JP2OpenJPEG"])
def test_a_reduced_resolution_composite_is_explained_from_the_same_decimated_reads(tmp_path, driver):
    """--scale 4 of a size that does not divide by 4 (fractional source windows): each explained pixel is
    the composite's, and the rule applied to its used dates gives it."""
    from s2desktop.core.pipeline import run_composite
    from s2desktop.core.stack import from_files
    from tests.fixtures_rasters import make_stack

    st = make_stack(tmp_path / "in", dates=4, size=151, scl=True, driver=driver)
    out = tmp_path / "quarter.tif"
    run_composite(from_files(st.red, st.green, st.blue), CompositeOptions(str(out), workers=0, scale=4,
                                                                          window_size=64))
    with rasterio.open(out) as ds:
        h, w = ds.shape
    _assert_explains_the_count_and_value(out, [(0, 0), (h // 2, w // 3), (h - 1, w - 1), (3, w - 2)])


def test_explain_and_from_follow_the_mask_buffer_and_classes_the_composite_used(tmp_path, capsys):
    """A pixel 3 px from date 1's SCL cloud (class 9, 2 x 2 px at PIXEL): masked with a 30 m buffer, kept without
    one; with --mask-classes leaving out 9 the cloud itself is used. explain and --from read both from the record."""
    row, col = PIXEL[0] - 3, PIXEL[1]
    buffered, _stack = history_composite(tmp_path / "buffered", mask_buffer=30.0)
    plain, _stack = history_composite(tmp_path / "plain")
    fates = {}
    for name, out in (("buffered", buffered), ("plain", plain)):
        assert main(["explain", str(out), "--pixel", f"{row},{col}", "--json"]) == 0
        fates[name] = json.loads(capsys.readouterr().out)["dates"][1]["reasons"]
    assert "MASKED" in fates["buffered"] and "MASKED" not in fates["plain"]
    again = tmp_path / "again.tif"
    assert main(["composite", "--from", str(buffered.with_suffix(".json")), "-o", str(again)]) == 0
    capsys.readouterr()
    with rasterio.open(buffered) as a, rasterio.open(again) as b:
        assert np.array_equal(a.read(), b.read())
    no9, _stack = history_composite(tmp_path / "no9", mask_classes=(3, 8, 10))
    assert main(["explain", str(no9), "--pixel", f"{PIXEL[0]},{PIXEL[1]}", "--json"]) == 0
    assert "USED" in json.loads(capsys.readouterr().out)["dates"][1]["reasons"]


# --- chips of the bands shown ----------------------------------------------------------------------------------

SIX = ("B02", "B03", "B04", "B08", "B11", "B12")


def _six_band_composite(tmp_path):
    """Files of six bands (10 m: B02-B08, 96 px; 20 m: B11, B12, 48 px), 3 dates of random values, composited
    with its record: -> (the composite, {band: (dates, h, w) arrays as written})."""
    from s2desktop.core.pipeline import run_composite
    from s2desktop.core.stack import Observation, RasterRef, Stack
    from tests.fixtures_rasters import write_band

    rng = np.random.default_rng(20)
    arrays = {}
    for b in SIX:
        n = 48 if b in ("B11", "B12") else 96
        arrays[b] = rng.integers(300, 4000, (3, n, n)).astype(np.uint16)
    obs = tuple(Observation(date=f"2023-07-0{d + 1}", rasters={
        b: RasterRef(str(write_band(tmp_path / f"{b}_{d}.tif", arrays[b][d], block=16,
                                    res=20 if b in ("B11", "B12") else 10)), b) for b in SIX}) for d in range(3))
    out = tmp_path / "six.tif"
    run_composite(Stack(obs, SIX), CompositeOptions(str(out), workers=0, window_size=32))
    return out, arrays


def _chip_centre(arrays, bands, d: int, row: int, col: int) -> np.ndarray:
    """What a chip's centre pixel shows of ``bands`` on date d: the true colour stretch of their values there."""
    from s2desktop.core.render import truecolor

    v = np.array([arrays[b][d, row // 2, col // 2] if b in ("B11", "B12") else arrays[b][d, row, col]
                  for b in bands], np.uint16).reshape(3, 1, 1)
    return truecolor(v, np.ones((1, 1), bool))[:, 0, 0]


@pytest.mark.parametrize("asked, shown", [(None, ("B04", "B03", "B02")),  # true colour by the bands' names
                                          ((4, 3, 2), ("B08", "B04", "B03")),  # the viewer's false colour
                                          ((6, 4, 3), ("B12", "B08", "B04")),  # 20 m bands onto the grid
                                          ((1, 2, 9), ("B04", "B03", "B02"))])  # not the stack's: true colour
def test_chips_show_the_bands_asked_for_else_true_colour_by_name(tmp_path, asked, shown):
    out, arrays = _six_band_composite(tmp_path)
    row, col = 41, 57
    why = explain(out, pixel=(row, col), chips=True, chip_bands=asked)
    assert why.chip_bands == shown
    for d, date in enumerate(why.dates):
        half = date.chip.shape[0] // 2
        np.testing.assert_array_equal(date.chip[half, half], _chip_centre(arrays, shown, d, row, col))
        np.testing.assert_array_equal(date.chip[half + 1, half - 2],
                                      _chip_centre(arrays, shown, d, row + 1, col - 2))


def test_chip_bands_fall_back_to_the_first_three_without_true_colours_names():
    from s2desktop.core.explain import _chip_bands

    assert _chip_bands(("B08", "B11", "B12", "B8A"), None) == (0, 1, 2)
    assert _chip_bands(SIX, None) == (2, 1, 0)
    assert _chip_bands(("B08",), None) == (0, 0, 0)  # one band: grey
    assert _chip_bands(SIX, (4, 3, 2)) == (3, 2, 1)
