"""Any Sentinel-2 bands: names and presets, 20 m / 60 m bands on the 10 m grid, band names in the output; a
six-band composite from the L2A test server and from an area streamed from COGs against a numpy reference."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.features import geometry_mask
from rasterio.transform import from_origin
from rasterio.windows import from_bounds

from s2desktop.core import archive, areas, layouts
from s2desktop.core.bands import ALL, PRESETS, RESAMPLING, parse_bands
from s2desktop.core.compositing import composite
from s2desktop.core.compositing.rules import reference_median
from s2desktop.core.errors import InvalidInputError
from s2desktop.core.pipeline import CompositeOptions, Job, Request, SourceSpec
from s2desktop.core.stack import Observation, RasterRef, Stack
from tests.fixtures_rasters import write_band
from tests.fixtures_s3 import SIZE, TILE, TRANSFORM

SIX = ("B02", "B03", "B04", "B08", "B11", "B12")
MASKED = (0, 1, 3, 8, 9, 10)
JULY = dict(start=dt.date(2023, 7, 1), end=dt.date(2023, 7, 31))
EARLY_JULY = dict(start=dt.date(2023, 6, 1), end=dt.date(2023, 7, 10))  # COGs: one scene a date (an area merges
# the scenes of one date and orbit into one observation)


# --- names and presets ------------------------------------------------------------------------------------------


def test_presets_names_and_their_spellings():
    assert parse_bands("true-colour") == ("B04", "B03", "B02") == parse_bands("TRUE-COLOR")
    assert parse_bands("false-colour") == ("B08", "B04", "B03")
    assert parse_bands("swir") == ("B12", "B8A", "B04")
    assert parse_bands("all") == ALL and len(ALL) == 12 and "B10" not in ALL
    assert ALL.index("B8A") == ALL.index("B08") + 1 and ALL[-2:] == ("B11", "B12")  # wavelength order
    assert parse_bands("b2, B3,b04 ,b8a,B12") == ("B02", "B03", "B04", "B8A", "B12")  # order kept, as given
    assert parse_bands("false-colour,B02,b8") == ("B08", "B04", "B03", "B02")  # a band given twice: once
    assert parse_bands(["B10"]) == ("B10",)  # named: Level-1C's cirrus band
    assert set(PRESETS) == {"true-colour", "false-colour", "swir", "all"}


@pytest.mark.parametrize("text, message", [
    ("B13", "'B13' is not a Sentinel-2 band: give B01-B12, B8A or a preset (true-colour, false-colour, swir, all)"),
    ("B04,red", "'red' is not a Sentinel-2 band"),
    ("TCI", "'TCI' is not a Sentinel-2 band"),  # a product file, not a band to composite
    (" , ", "no bands given"),
])
def test_a_bad_band_list_is_one_line(text, message):
    with pytest.raises(InvalidInputError, match=re.escape(message)) as err:
        parse_bands(text)
    assert "\n" not in str(err.value)


def test_downloads_take_presets_and_product_files():
    from s2desktop.core.download import parse_bands as download_bands

    assert download_bands("swir,TCI,scl") == ["B12", "B8A", "B04", "TCI", "SCL"]
    with pytest.raises(InvalidInputError, match=re.escape("'B00' is not a Sentinel-2 band: give B01-B12, B8A, TCI")):
        download_bands("B00")


def test_a_request_holds_band_names_checked_before_any_work(tmp_path):
    assert Request(bands="false-colour", composite=CompositeOptions(str(tmp_path / "o.tif"))).bands == (
        "B08", "B04", "B03")
    assert Request().bands == ("B04", "B03", "B02")
    with pytest.raises(InvalidInputError, match="'TCI' is not a Sentinel-2 band"):
        Request(bands=("TCI",), composite=CompositeOptions(str(tmp_path / "o.tif")))
    assert Request(bands=("TCI",)).bands == ("TCI",)  # downloads only: a product file is fine


def test_the_command_line_refuses_bad_bands_in_one_line(capsys, tmp_path):
    from s2desktop.cli import main

    base = ["composite", "--tile", TILE, "--start", "2023-07-01", "--end", "2023-07-31", "-o", str(tmp_path / "o.tif")]
    assert main([*base, "--bands", "B04,B99"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'B99' is not a Sentinel-2 band" in err
    assert main(["composite", "--red", "r.tif", "--green", "g.tif", "--blue", "b.tif", "--bands", "swir", "-o",
                 str(tmp_path / "o.tif")]) == 2
    assert "files mode composites the --red, --green and --blue files" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())  # nothing started


# --- the compositor: bands of three resolutions on the finest grid --------------------------------------------


def _multires_stack(tmp_path: Path, dates: int = 3):
    """Bands at 10 m (96 px), 20 m (48 px) and 60 m (16 px) over the same ground, tiled in 16 px blocks, with
    nodata edges and random values: -> (Stack, {band: (dates, h, w) arrays as written})."""
    rng = np.random.default_rng(18)
    spec = {"B04": 10, "B11": 20, "B08": 10, "B09": 60}  # output order: a coarse band among the fine ones
    arrays = {}
    obs = []
    for band, res in spec.items():
        n = 960 // res
        a = rng.integers(1, 5000, (dates, n, n)).astype(np.uint16)
        a[:, :, : n // 8] = 0  # a nodata edge on the west, wider at 60 m
        a[1, n // 2:, :] = 0  # date 2: no data in the south half
        arrays[band] = a
    for d in range(dates):
        rasters = {}
        for band, res in spec.items():
            path = write_band(tmp_path / f"{band}_{d}.tif", arrays[band][d], block=16, res=res)
            rasters[band] = RasterRef(str(path), band)
        obs.append(Observation(date=f"2023-07-0{d + 1}", rasters=rasters, offset=-1000 if d == 1 else 0))
    return Stack(tuple(obs), tuple(spec)), arrays


def _reference(arrays: dict, bands, offsets, size: int, scale: int = 1, masks=None):
    """Nearest neighbour: each coarse pixel repeated over the fine pixels it covers; then the joint validity,
    the harmonisation and the median with the project's rounding; decimated by picking the pixel under each
    output pixel's centre for scale > 1."""
    planes = []
    for band in bands:
        a = arrays[band]
        k = size // a.shape[-1]
        planes.append(np.repeat(np.repeat(a, k, axis=-2), k, axis=-1))
    data = np.stack(planes)  # (bands, dates, h, w)
    valid = (data != 0).all(axis=0)
    if masks is not None:
        valid &= ~masks
    for d, off in enumerate(offsets):
        if off:
            data[:, d] = np.where(data[:, d] == 0, 0, np.maximum(data[:, d], 1001) - 1000)
    if scale > 1:
        c = scale // 2
        data, valid = data[:, :, c::scale, c::scale], valid[:, c::scale, c::scale]
    return np.stack([reference_median(data[b], valid) for b in range(len(bands))]), valid.sum(axis=0)


@pytest.mark.parametrize("scale, workers", [(1, 0), (2, 2)])
def test_bands_of_10_20_and_60_m_on_the_10_m_grid_equal_the_reference(tmp_path, scale, workers):
    stack, arrays = _multires_stack(tmp_path)
    out, count = tmp_path / "six.tif", tmp_path / "n.tif"
    res = composite(stack, out, workers=workers, scale=scale, count_path=count, window_size=32)
    assert res.windows > 4  # windows inside the 60 m pixels: fractional windows on the coarse bands
    want, want_count = _reference(arrays, stack.bands, [0, -1000, 0], 96, scale)
    with rasterio.open(out) as ds, rasterio.open(count) as cnt:
        assert (ds.count, ds.width) == (4, 96 // scale) and ds.res == (10.0 * scale, 10.0 * scale)
        np.testing.assert_array_equal(ds.read(), want)
        np.testing.assert_array_equal(cnt.read(1), want_count)
        assert ds.descriptions == ("B04", "B11", "B08", "B09")
        assert ds.tags(2) == {"BAND": "B11", "BAND_DESCRIPTION": "SWIR 1 1610 nm", "CENTRAL_WAVELENGTH_NM": "1610",
                              "NATIVE_RESOLUTION_M": "20"}
        assert ds.tags(4)["BAND_DESCRIPTION"] == "water vapour 945 nm"
        assert ds.tags(3, ns="IMAGERY") == {"CENTRAL_WAVELENGTH_UM": "0.842", "FWHM_UM": "0.115"}  # GDAL's own
        tags = ds.tags()
    assert tags["BANDS"] == "B04,B11,B08,B09" and tags["OFFSETS_B09"] == "0,-1000,0"
    assert tags["BAND_RESAMPLING"] == f"B11 (x2), B09 (x6) upsampled to the output grid by {RESAMPLING}"
    assert tags["SOURCES_B11"] == "B11_0.tif,B11_1.tif,B11_2.tif" and "SOURCES_RED" not in tags


def test_a_band_file_off_its_bands_grid_is_named(tmp_path):
    stack, arrays = _multires_stack(tmp_path, dates=3)  # the band's grid: the one most of its files share
    odd = write_band(tmp_path / "odd.tif", arrays["B11"][0][:40, :40], block=16, res=24)
    first = stack.observations[0]
    bad = Observation(date=first.date, rasters={**first.rasters, "B11": RasterRef(str(odd), "B11")})
    from s2desktop.core.errors import RasterError

    with pytest.raises(RasterError, match=r"odd\.tif: is 40x40 px, the others 48x48 \(first: B11_1\.tif\)"):
        composite(Stack((bad,) + stack.observations[1:], stack.bands), tmp_path / "o.tif", workers=0)
    shifted = write_band(tmp_path / "shifted.tif", arrays["B11"][0], block=16, res=20,
                         transform=from_origin(300020.0, 5000040.0, 20, 20))
    bad = Observation(date=first.date, rasters={**first.rasters, "B11": RasterRef(str(shifted), "B11")})
    with pytest.raises(RasterError, match=r"shifted\.tif: georeferencing"):
        composite(Stack((bad,) + stack.observations[1:], stack.bands), tmp_path / "o.tif", workers=0)
    assert not list(tmp_path.glob("*o.tif*"))


def test_real_bands_of_three_resolutions_whose_sizes_are_not_whole_multiples(shared_real, tmp_path):
    """The real 55JGF L1C bands, downsampled by their packager: 439 px at 10 m, 219 px at 20 m, 73 px at 60 m
    over the same extent. Each output pixel takes the band's pixel under its centre."""
    folder = shared_real / "aws_tiles/l1c_T55JGF_20180617_N0206/tiles/55/J/GF/2018/6/17/0"
    bands = ("B12", "B04", "B01")
    obs = Observation(date="2018-06-17", rasters={b: RasterRef(str(folder / f"{b}.jp2"), b) for b in bands})
    out = tmp_path / "real.tif"
    composite(Stack((obs,), bands), out, workers=0, window_size=128)
    planes = []
    for b in bands:
        with rasterio.open(folder / f"{b}.jp2") as ds:
            a = ds.read(1)
        idx = np.floor((np.arange(439) + 0.5) * a.shape[0] / 439).astype(int)  # the pixel under each centre
        planes.append(a[idx][:, idx])
    want = np.stack(planes)
    want[:, (want == 0).any(axis=0)] = 0  # valid in every band
    with rasterio.open(out) as ds:
        assert ds.shape == (439, 439) and ds.descriptions == bands
        np.testing.assert_array_equal(ds.read(), want)
        assert "B12 (x2.00457), B01 (x6.0137) upsampled" in ds.tags()["BAND_RESAMPLING"]


# --- end to end: the L2A test server and an area streamed from COGs -------------------------------------------


def _scene_reference(root: Path, layout: str, scenes, bands=SIX):
    """The six-band composite of ``scenes`` [(date, seq, baseline)] read from the bucket's own files, whole:
    20 m bands and the SCL repeated 2 x 2, SCL classes masked, offset -1000 from baseline 04.00."""
    arrays = {b: [] for b in bands}
    masks, offsets = [], []
    for date, seq, baseline in scenes:
        folder = root / archive.scene_prefix(layout, TILE, dt.date.fromisoformat(date), seq)
        for b in bands:
            with rasterio.open(folder / layouts.band_relpath(layout, b)) as ds:
                arrays[b].append(ds.read(1))
        with rasterio.open(folder / layouts.band_relpath(layout, "SCL")) as ds:
            masks.append(np.isin(ds.read(1).repeat(2, 0).repeat(2, 1), MASKED))
        offsets.append(-1000 if baseline >= "04.00" else 0)
    arrays = {b: np.stack(a) for b, a in arrays.items()}
    return _reference(arrays, bands, offsets, SIZE, masks=np.stack(masks))


def _scenes(seeded, layout, dates):
    return [(d, s, base) for d, s, _c, _v, base in seeded.scenes[layout] if dates["start"].isoformat() <= d <=
            dates["end"].isoformat()]


def test_a_six_band_tile_composite_from_the_l2a_server_equals_the_reference(seeded_s3, tmp_path, capsys):
    from s2desktop.cli import main

    out, count = tmp_path / "six.tif", tmp_path / "n.tif"
    assert main(["composite", "--source", "l2a", "--endpoint-url", seeded_s3.endpoint, "--tile", TILE,
                 "--start", "2023-07-01", "--end", "2023-07-31", "--bands", "b2,B03,b4,B8,b11,B12",
                 "--out-dir", str(tmp_path / "dl"), "--workers", "2", "--count", str(count), "-o", str(out)]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    scenes = _scenes(seeded_s3, "l2a", JULY)
    want, want_count = _scene_reference(seeded_s3.roots["l2a"], "l2a", scenes)
    assert want_count.max() == len(scenes) and (want_count == 0).any()  # masked, edges and all
    with rasterio.open(out) as ds, rasterio.open(count) as cnt:
        np.testing.assert_array_equal(ds.read(), want)
        np.testing.assert_array_equal(cnt.read(1), want_count)
        assert ds.descriptions == SIX and ds.tags(5)["BAND_DESCRIPTION"] == "SWIR 1 1610 nm"
        assert "B11 (x2), B12 (x2) upsampled" in ds.tags()["BAND_RESAMPLING"]
    fetched = {p.parent.name for p in (tmp_path / "dl").glob("*/*.jp2")}
    assert fetched == {"blue", "green", "red", "B08", "B11", "B12", "SCL"}  # the bands asked for, and the masks


def _area(col0, row0, col1, row1):
    """The area just inside pixels [col0, col1) x [row0, row1) of the fixture tile."""
    from rasterio.warp import transform_bounds

    left, top = TRANSFORM * (col0 + 0.5, row0 + 0.5)
    right, bottom = TRANSFORM * (col1 - 0.5, row1 - 0.5)
    box = transform_bounds("EPSG:32633", "EPSG:4326", left, bottom, right, top)
    return areas.parse_bbox(",".join(f"{v:.6f}" for v in box))


def test_a_six_band_area_streamed_from_cogs_equals_the_reference(seeded_s3, tmp_path):
    area = _area(10, 0, 41, 7)  # odd edges: the area starts inside a 20 m pixel
    out = tmp_path / "area.tif"
    result = Job(Request(SourceSpec("cogs", endpoint_url=seeded_s3.endpoint), area=area, resolution=TRANSFORM.a,
                         bands=SIX, **EARLY_JULY, cache_dir=tmp_path / "cache",
                         composite=CompositeOptions(str(out), workers=0))).run()
    assert result.downloads == () and result.inputs.bands == SIX
    want, _ = _scene_reference(seeded_s3.roots["cogs"], "cogs", _scenes(seeded_s3, "cogs", EARLY_JULY))
    with rasterio.open(out) as ds:
        win = from_bounds(*ds.bounds, transform=TRANSFORM).round_offsets().round_lengths()
        r0, c0 = int(win.row_off), int(win.col_off)
        got = ds.read()
        inside = geometry_mask([areas.geometry_in(area, ds.crs.to_string())], out_shape=ds.shape,
                               transform=ds.transform, invert=True)
        assert ds.descriptions == SIX and "B11, B12 upsampled" in ds.tags()["BAND_RESAMPLING"]
    pad = np.pad(want, ((0, 0), (16, 16), (16, 16)))  # the area's grid reaches a little past the tile's edge
    part = pad[:, r0 + 16:r0 + 16 + got.shape[1], c0 + 16:c0 + 16 + got.shape[2]]
    assert inside.sum() >= 30 * 6 and got[:, inside].any()
    np.testing.assert_array_equal(got[:, inside], part[:, inside])
    assert (got[:, ~inside] == 0).all()


def test_dry_runs_list_the_bands_of_a_preset_and_their_cost(seeded_s3, capsys, tmp_path):
    from s2desktop.cli import main

    day = ["--tile", TILE, "--start", "2023-07-14", "--end", "2023-07-14", "--endpoint-url", seeded_s3.endpoint,
           "--out-dir", str(tmp_path / "dl")]
    assert main(["download", *day, "--bands", "false-colour", "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("3 scene(s), 9 file(s) from s3://sentinel-s2-l1c") and "US$" in lines[1]
    assert sorted({line.split()[0].rsplit("/", 1)[1] for line in lines[2:]}) == ["B03.jp2", "B04.jp2", "B08.jp2"]
    out = tmp_path / "swir.tif"
    assert main(["composite", *day, "--source", "l2a", "--bands", "SWIR", "--dry-run", "-o", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    at = next(i for i, line in enumerate(lines) if " scene(s), " in line)  # after the plan's figures
    assert lines[at].startswith("2 scene(s), 8 file(s) from s3://sentinel-s2-l2a")  # 3 bands and the SCL each
    keys = {line.split()[0].split("/", 8)[-1] for line in lines[at + 2:]}
    assert keys == {"R20m/B12.jp2", "R20m/B8A.jp2", "R10m/B04.jp2", "R20m/SCL.jp2"}
    assert not (tmp_path / "dl").exists() and not out.exists()  # nothing fetched, nothing written


def test_an_area_asking_for_a_band_its_scenes_lack_says_so_before_fetching(seeded_s3, tmp_path):
    box = _area(10, 0, 41, 7)
    events = []
    with pytest.raises(InvalidInputError, match=r"band B10 is not in scene 33UUP_2023-06-30_0 \(it has: B02, B03"):
        Job(Request(SourceSpec("cogs", endpoint_url=seeded_s3.endpoint), area=box, bands=("B04", "B10"),
                    **EARLY_JULY, cache_dir=tmp_path / "cache",
                    composite=CompositeOptions(str(tmp_path / "o.tif"), workers=0)), progress=events.append).run()
    assert not any(e.stage == "fetch" for e in events) and not (tmp_path / "cache").exists()


def test_a_plan_of_other_bands_composites_the_scenes_that_have_them_all(seeded_s3, tmp_path):
    from s2desktop.core.errors import NotFoundError

    job = Job(Request(SourceSpec("l2a", endpoint_url=seeded_s3.endpoint), tile=TILE, bands="false-colour",
                      **JULY, download_dir=tmp_path / "dl",
                      composite=CompositeOptions(str(tmp_path / "o.tif"), workers=0)))
    plan = job.plan()
    assert plan.bands == ("B08", "B04", "B03") and {t.band for t in plan.tasks} == {"B08", "B04", "B03", "SCL"}
    with pytest.raises(NotFoundError, match="none of the scenes has its B08, B04, B03 bands downloaded"):
        plan.inputs()
    job.download(plan)
    first = plan.scenes[0].scene_id
    next(t for t in plan.tasks if t.scene.scene_id == first and t.band == "B08").dest.unlink()  # one band gone
    stack = plan.inputs()
    assert stack.bands == ("B08", "B04", "B03") and len(stack.observations) == len(plan.scenes) - 1
    assert all(set(o.rasters) == {"B08", "B04", "B03"} and o.mask is not None for o in stack.observations)
