"""An area composited straight from COGs on the S3 test server (checked tile ranges, nothing downloaded whole)."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import rasterio
from rasterio.features import geometry_mask
from rasterio.warp import transform_bounds
from rasterio.windows import from_bounds

from s2desktop.core import areas, streaming
from s2desktop.core.pipeline import CompositeOptions, Job, Request, SourceSpec
from tests.fixtures_s3 import EPSG, TRANSFORM
from tests.helpers import constant_cog_scene, upload_public

JULY = dict(start=dt.date(2023, 6, 1), end=dt.date(2023, 7, 10))  # 06-30 and 07-04: one scene each


def _cogs(seeded, bucket=None):
    return SourceSpec("cogs", endpoint_url=seeded.endpoint, bucket=bucket)


def _lonlat_box(col0, row0, col1, row1):
    """The lon/lat box just inside pixels [col0, col1) x [row0, row1) of the fixture tile."""
    left, top = TRANSFORM * (col0 + 0.5, row0 + 0.5)
    right, bottom = TRANSFORM * (col1 - 0.5, row1 - 0.5)
    return transform_bounds(f"EPSG:{EPSG}", "EPSG:4326", left, bottom, right, top)


def _tile_then_area(source: SourceSpec, tmp_path, **area_kw):
    """The tile composite, then the composite of a small box inside it (the same download folder): -> (tile
    output, area output, area, the area job's result and events)."""
    tile_out, area_out = tmp_path / "tile.tif", tmp_path / "area.tif"
    Job(Request(source, tile="33UUP", download_dir=tmp_path / "dl", **JULY,
                composite=CompositeOptions(str(tile_out), workers=0))).run()
    area = areas.parse_bbox(",".join(f"{v:.6f}" for v in _lonlat_box(10, 0, 40, 6)))
    events = []
    result = Job(Request(source, area=area, resolution=TRANSFORM.a, download_dir=tmp_path / "dl", **JULY,
                         composite=CompositeOptions(str(area_out), workers=0), **area_kw),
                 progress=events.append).run()
    return tile_out, area_out, area, result, events


def _assert_clipped_tile(tile_out, area_out, area, dates: int):
    """The area's composite is the tile's, pixel for pixel, inside the area, and nodata outside it."""
    with rasterio.open(tile_out) as t, rasterio.open(area_out) as a:
        assert a.crs == t.crs and a.res == t.res
        win = from_bounds(*a.bounds, transform=t.transform)
        assert abs(win.col_off - round(win.col_off)) < 1e-6 > abs(win.row_off - round(win.row_off))  # pixel edges
        tile_part = t.read(window=win.round_offsets().round_lengths(), boundless=True, fill_value=0)
        area_pixels = a.read()
        assert a.tags()["MASK"].startswith("SCL classes") and f"on {dates} date(s)" in a.tags()["MASK"]
        inside = geometry_mask([areas.geometry_in(area, a.crs.to_string())], out_shape=a.shape,
                               transform=a.transform, invert=True)
    assert inside.sum() >= 30 * 5 and (~inside).sum() > 0  # the box, in a grid that covers a little more
    np.testing.assert_array_equal(area_pixels[:, inside], tile_part[:, inside])  # pixel for pixel
    assert area_pixels[:, inside].any() and (area_pixels[:, ~inside] == 0).all()  # outside the box: nodata


def test_a_streamed_area_equals_the_downloaded_tile_composite_clipped(seeded_s3, tmp_path):
    cache = tmp_path / "cache"
    tile_out, area_out, area, result, events = _tile_then_area(_cogs(seeded_s3), tmp_path, cache_dir=cache)
    assert result.downloads == ()  # nothing downloaded whole: only windows fetched
    assert result.inputs.masked == len(result.inputs.observations) > 0  # masked through the same windows
    _assert_clipped_tile(tile_out, area_out, area, dates=2)
    with rasterio.open(area_out) as ds, rasterio.open(tile_out) as tile:  # provenance: as the tile's
        assert ds.tags()["DATES"] == ",".join(result.inputs.dates) and ds.tags()["TILE"] == "33UUP"
        for key in ("BASELINES", "OFFSETS_RED", "OFFSET_SOURCES"):
            assert ds.tags()[key] == tile.tags()[key], key
        assert ds.tags()["BASELINES"] not in ("", "unknown")
    assert {e.stage for e in events} >= {"search", "plan", "fetch", "composite"}
    fetched = [e for e in events if e.stage == "fetch"]
    assert fetched[0].bytes_done == 0 and fetched[0].bytes_total > 0  # the bytes to fetch known up front
    assert fetched[-1].bytes_done == fetched[-1].bytes_total and fetched[-1].items_done == fetched[-1].items_total
    assert len(list(cache.glob("*/*.tif"))) == fetched[-1].items_total == 2 * 4  # 2 dates x B04, B03, B02, SCL


def test_a_local_cog_mirror_is_read_in_place(seeded_s3, tmp_path):
    """The same area from the bucket's files on disk: nothing fetched or cached, the same pixels."""
    mirror = SourceSpec(str(seeded_s3.roots["cogs"]))
    tile_out, area_out, area, result, events = _tile_then_area(mirror, tmp_path, cache_dir=tmp_path / "cache")
    assert not any(e.stage == "fetch" for e in events) and not (tmp_path / "cache").exists()
    _assert_clipped_tile(tile_out, area_out, area, dates=2)


def test_a_jpeg2000_area_is_downloaded_then_clipped_to_the_area(seeded_s3, tmp_path):
    tile_out, area_out, area, result, events = _tile_then_area(SourceSpec("l2a", endpoint_url=seeded_s3.endpoint),
                                                              tmp_path)
    dates = len(result.scenes)
    assert dates and len(result.downloads) == dates * 4  # B04, B03, B02, SCL of each scene
    assert all(d.status == "skipped" for d in result.downloads)  # the tile's files, downloaded once
    assert not any(e.stage == "fetch" for e in events)
    _assert_clipped_tile(tile_out, area_out, area, dates)


def test_an_area_over_two_utm_zones_is_continuous_and_counts_each_acquisition_once(seeded_s3, scratch_bucket,
                                                                                    tmp_path):
    """32UQU (zone 32) and 33UUP (zone 33) overlap around 12.3 E. Acquisition A (both tiles, 1000), B (33UUP
    only, 3000), C (32UQU only, 3000): where the tiles overlap the median of A, B, C is 3000 -- counting A twice
    would give 2000 -- and where one tile alone covers it, the median of two values, 2000."""
    root = tmp_path / "bucket"
    a, b, c = dt.date(2023, 7, 1), dt.date(2023, 7, 3), dt.date(2023, 7, 5)
    for tile, date, value in (("32UQU", a, 1000), ("33UUP", a, 1000), ("33UUP", b, 3000), ("32UQU", c, 3000)):
        constant_cog_scene(root, tile, date, value)
    upload_public(seeded_s3, scratch_bucket, root)
    area = areas.parse_bbox("12.10,48.00,12.50,48.30")  # on zone 32's grid (--crs): 33UUP is reprojected
    assert set(areas.area_tiles(area)) >= {"32UQU", "33UUP"}
    out = tmp_path / "two.tif"
    result = Job(Request(_cogs(seeded_s3, scratch_bucket), area=area, resolution=500, crs="EPSG:32632", start=a,
                         end=c,
                         composite=CompositeOptions(str(out), workers=0))).run()
    assert len(result.inputs.observations) == 3  # three acquisitions, not four scenes
    with rasterio.open(out) as ds:
        assert ds.crs.to_epsg() == 32632
        red = ds.read(1)
        mask = geometry_mask([areas.geometry_in(area, ds.crs.to_string())], out_shape=red.shape,
                             transform=ds.transform, invert=True)
    values = set(np.unique(red[mask]).tolist())
    assert 0 not in values, "a seam of nodata inside the area"
    assert values == {2000, 3000}
    # west of 33UUP's edge (~12.3 E here) only 32UQU: two acquisitions, 2000; east of it both tiles: 3000
    cols = np.indices(red.shape)[1]
    assert cols[mask & (red == 3000)].mean() > cols[mask & (red == 2000)].max() - 2


def test_acquisitions_group_the_same_pass_over_several_tiles():
    from s2desktop.core.catalog import Scene

    def scene(tile, day, orbit):
        return Scene(tile, dt.date(2023, 7, day), 0, 1.0, 100.0, "05.09",
                     f"S2B_MSIL2A_202307{day:02d}T100559_N0509_R{orbit:03d}_T{tile}_x", f"p/{tile}/{day}")

    groups = streaming.acquisitions([scene("33UUP", 1, 22), scene("32UQU", 1, 22), scene("33UUP", 1, 65),
                                     scene("33UUP", 4, 22)])
    assert [(g.date, g.orbit, len(g.scenes)) for g in groups] == [("2023-07-01", 22, 2), ("2023-07-01", 65, 1),
                                                                   ("2023-07-04", 22, 1)]


def test_the_command_line_composites_an_area_and_searches_it(seeded_s3, capsys, tmp_path):
    from s2desktop.cli import main

    box = ",".join(f"{v:.6f}" for v in _lonlat_box(10, 0, 40, 6))
    common = ["--source", "cogs", "--endpoint-url", seeded_s3.endpoint, "--start", "2023-06-01", "--end",
              "2023-07-10"]
    assert main(["search", "--bbox", box, *common, "--json"]) == 0
    out, _err = capsys.readouterr()
    assert "33UUP" in {s["tile"] for s in json.loads(out)}
    out_tif = tmp_path / "area.tif"
    assert main(["composite", "--bbox", box, *common, "--resolution", str(TRANSFORM.a), "--workers", "0",
                 "-o", str(out_tif)]) == 0
    out, err = capsys.readouterr()
    assert f"wrote {out_tif}" in out and "acquisition(s)" in err and not (tmp_path / "tmp").exists()
    assert "fetching 8 window(s)" in err  # 2 dates x B04, B03, B02, SCL
    with rasterio.open(out_tif) as ds:
        assert ds.count == 3 and ds.read(1).any()
    again = ["composite", "--bbox", box, *common, "--resolution", str(TRANSFORM.a), "--workers", "0"]
    assert main([*again, "-o", str(tmp_path / "again.tif")]) == 0
    assert "all 8 window(s) already cached: nothing to fetch" in capsys.readouterr().err
    assert main([*again, "--cache-size", "-1", "-o", str(tmp_path / "x.tif")]) == 2
    assert "--cache-size -1: give a size in GB" in capsys.readouterr().err
    for argv, message in ((["--bbox", "1,2,3"], "is not four numbers"), (["--bbox", box, "--tile", "33UUP"],
                          "give one of --tile, --bbox, --aoi"), (["--bbox", "13,47.8,12.5,48"], "is not west of")):
        assert main(["composite", *argv, *common, "-o", str(tmp_path / "x.tif")]) == 2
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1
    aoi = tmp_path / "aoi.geojson"
    aoi.write_text('{"type": "Point", "coordinates": [12.4, 47.8]}')
    assert main(["composite", "--aoi", str(aoi), *common, "-o", str(tmp_path / "x.tif")]) == 2
    assert "a Point has no area" in capsys.readouterr().err


def test_a_polygon_masks_the_pixels_outside_it(seeded_s3, tmp_path):
    w, s, e, n = _lonlat_box(10, 0, 40, 6)
    triangle = {"type": "Polygon", "coordinates": [[[w, s], [e, s], [w, n], [w, s]]]}
    aoi = tmp_path / "triangle.geojson"
    aoi.write_text(json.dumps({"type": "Feature", "properties": {}, "geometry": triangle}))
    area = areas.read_aoi(aoi)
    out = tmp_path / "tri.tif"
    Job(Request(_cogs(seeded_s3), area=area, resolution=TRANSFORM.a, **JULY,
                composite=CompositeOptions(str(out), workers=0))).run()
    with rasterio.open(out) as ds:
        data = ds.read(1)
        inside = geometry_mask([areas.geometry_in(area, ds.crs.to_string())], out_shape=data.shape,
                               transform=ds.transform, invert=True)
    assert data[inside].any() and (data[~inside] == 0).all()
    assert inside.sum() < 0.6 * inside.size  # a triangle: about half of its box


REAL_29RKH = "aws_tiles/l2a_cog_T29RKH_20200219_rio-tiler-pds/S2A_29RKH_20200219_0_L2A"


def test_the_real_29rkh_cogs_streamed_equal_their_download_clipped(shared_real, seeded_s3, scratch_bucket,
                                                                   tmp_path):
    """The real sentinel-cogs files of 29RKH (rio-tiler-pds' fixture: 100 m bands, 200 m SCL, 512 px blocks,
    overviews, its STAC item but no tileinfo_metadata.json) in the bucket's layout: an area on the tile's own
    100 m grid, streamed, is the whole-file download's composite clipped to it, pixel for pixel, masked by the
    real SCL; at 200 m it reads the files' first overview level and still equals the download read at 200 m."""
    import shutil

    prefix = "sentinel-s2-l2a-cogs/29/R/KH/2020/2/S2A_29RKH_20200219_0_L2A"
    shutil.copytree(shared_real / REAL_29RKH, tmp_path / "bucket" / prefix)
    upload_public(seeded_s3, scratch_bucket, tmp_path / "bucket")
    source = _cogs(seeded_s3, scratch_bucket)
    feb = dict(start=dt.date(2020, 2, 1), end=dt.date(2020, 2, 29))
    with rasterio.open(shared_real / REAL_29RKH / "B04.tif") as ds:
        t = ds.transform
    left, top = t * (300.5, 400.5)  # a 30 km x 20 km box in the tile's west half, clouds and clear ground
    right, bottom = t * (599.5, 599.5)
    area = areas.parse_bbox(",".join(f"{v:.6f}" for v in transform_bounds("EPSG:32629", "EPSG:4326", left,
                                                                           bottom, right, top)))
    for res, scale in ((100, 1), (200, 2)):
        tile_out, area_out = tmp_path / f"tile{res}.tif", tmp_path / f"area{res}.tif"
        Job(Request(source, tile="29RKH", download_dir=tmp_path / "dl", **feb,
                    composite=CompositeOptions(str(tile_out), workers=0, scale=scale))).run()
        events = []
        result = Job(Request(source, area=area, resolution=res, **feb, cache_dir=tmp_path / "cache",
                             composite=CompositeOptions(str(area_out), workers=0)), progress=events.append).run()
        assert result.downloads == () and any(e.stage == "fetch" for e in events)  # windows, not files
        (scene,) = result.scenes  # no tileinfo_metadata.json: the search read the folder's STAC item
        assert (scene.cloud_cover, scene.data_coverage, scene.baseline) == (4.051854, 100, "02.14")
        _assert_clipped_tile(tile_out, area_out, area, dates=1)
        with rasterio.open(area_out) as a:
            assert a.res == (res, res) and a.tags()["TILE"] == "29RKH" and a.tags()["DATES"] == "2020-02-19"
            assert a.tags()["BASELINES"] == "02.14"
