"""An area composited straight from COGs on the S3 test server (checked tile ranges, nothing downloaded whole)."""

from __future__ import annotations

import datetime as dt
import json
import re

import numpy as np
import pytest
import rasterio
from rasterio.features import geometry_mask
from rasterio.warp import transform_bounds
from rasterio.windows import from_bounds

from s2desktop.core import areas, streaming
from s2desktop.core.pipeline import CompositeOptions, Job, Request, SourceSpec
from tests.fixtures_s3 import EPSG, TRANSFORM, ThrottledProxy
from tests.helpers import constant_cog_scene, files_under, upload_public

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
        for key in ("BASELINES", "OFFSETS_RED"):
            assert ds.tags()[key] == tile.tags()[key], key
        assert ds.tags()["BASELINES"] not in ("", "unknown")
        assert tile.tags()["OFFSET_SOURCES"] == "scene metadata,scene metadata"  # the search read the baselines
        assert ds.tags()["OFFSET_SOURCES"] == "streamed,streamed"  # nothing was downloaded
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


# 33UUP (zone 33) and 32UQU (zone 32) on two dates, the same passes; 915 m pixels with a texture, so that a
# resampled pixel differs from its source: 33UUP's values are 1000..1096, 32UQU's 5000..5096.
OVERLAP_DATES = (dt.date(2023, 7, 1), dt.date(2023, 7, 4))
IN_BOTH = "12.95,48.15,13.10,48.30"  # near 33UUP's centre, and inside 32UQU too (~10 km from its east edge)


def _overlap_bucket(seeded, bucket, tmp_path, layout="cogs"):
    root = tmp_path / f"bucket-{layout}"
    for date in OVERLAP_DATES:
        for tile in ("33UUP", "32UQU"):
            constant_cog_scene(root, tile, date, 1000 if tile == "33UUP" else 5000, n=120, texture=1, layout=layout)
    upload_public(seeded, bucket, root)


def _overlap_area(endpoint, bucket, bbox, out, crs=None, scenes=None):
    """The area's composite on ``crs``'s grid at the scenes' own 915 m: -> (pixels inside the area, tags,
    job result)."""
    area = areas.parse_bbox(bbox)
    result = Job(Request(SourceSpec("cogs", endpoint_url=endpoint, bucket=bucket), area=area,
                         resolution=109800 / 120, crs=crs, start=OVERLAP_DATES[0], end=OVERLAP_DATES[-1],
                         scenes=scenes, cache_dir=out.parent / f"cache-{out.stem}",
                         composite=CompositeOptions(str(out), workers=0))).run()
    with rasterio.open(out) as ds:
        red = ds.read(1)
        inside = geometry_mask([areas.geometry_in(area, ds.crs.to_string())], out_shape=red.shape,
                               transform=ds.transform, invert=True)
        return red, inside, ds.tags(), result


def _tif_requests(proxy, tile):
    """Requests the proxy saw for band files of ``tile`` (headers and windows; not the search's metadata)."""
    folder = f"/{tile[:2]}/{tile[2]}/{tile[3:]}/"
    return [line for line in proxy.asked if folder in line and ".tif" in line]


def test_in_a_tile_overlap_the_tile_of_the_grids_zone_wins_and_the_covered_tile_is_not_fetched(
        seeded_s3, scratch_bucket, tmp_path):
    """An area inside both 33UUP and 32UQU: on a zone-33 grid every pixel is 33UUP's, unresampled -- the
    composite equals the one made from 33UUP's scenes alone -- and not a byte of 32UQU's COGs is asked for;
    on a zone-32 grid the same holds the other way round. (It used to take 32UQU, the first by name, warped.)"""
    _overlap_bucket(seeded_s3, scratch_bucket, tmp_path)
    proxy = ThrottledProxy(seeded_s3.endpoint, rate=0)
    try:
        red33, inside33, _tags, result = _overlap_area(proxy.endpoint, scratch_bucket, IN_BOTH,
                                                       tmp_path / "zone33.tif")
        assert {s.tile for s in result.scenes} == {"33UUP"} and len(result.inputs.observations) == 2
        assert _tif_requests(proxy, "33UUP") and not _tif_requests(proxy, "32UQU")
        proxy.asked.clear()
        red32, inside32, _tags, _result = _overlap_area(proxy.endpoint, scratch_bucket, IN_BOTH,
                                                        tmp_path / "zone32.tif", crs="EPSG:32632")
        assert _tif_requests(proxy, "32UQU") and not _tif_requests(proxy, "33UUP")
    finally:
        proxy.close()
    assert inside33.sum() >= 100 and inside32.sum() >= 100
    assert (1000 <= red33[inside33]).all() and (red33[inside33] <= 1096).all()  # 33UUP's values only
    assert (5000 <= red32[inside32]).all() and (red32[inside32] <= 5096).all()  # 32UQU's values only
    for tile, crs, red in (("33UUP", None, red33), ("32UQU", "EPSG:32632", red32)):
        alone = [s for s in Job(Request(_cogs(seeded_s3, scratch_bucket), area=areas.parse_bbox(IN_BOTH),
                                        start=OVERLAP_DATES[0], end=OVERLAP_DATES[-1])).search() if s.tile == tile]
        only, _inside, _tags, _result = _overlap_area(seeded_s3.endpoint, scratch_bucket, IN_BOTH,
                                                      tmp_path / f"{tile}-only.tif", crs=crs, scenes=tuple(alone))
        np.testing.assert_array_equal(red, only)  # pixel for pixel the tile's own composite


def test_a_jpeg2000_area_in_a_tile_overlap_downloads_only_the_tile_it_takes(seeded_s3, scratch_bucket, tmp_path):
    """From the JPEG 2000 source the covered tile's files are not downloaded either (whole tiles, there)."""
    _overlap_bucket(seeded_s3, scratch_bucket, tmp_path, layout="l2a")
    out = tmp_path / "jp2.tif"
    result = Job(Request(SourceSpec("l2a", endpoint_url=seeded_s3.endpoint, bucket=scratch_bucket),
                         area=areas.parse_bbox(IN_BOTH), resolution=109800 / 120, start=OVERLAP_DATES[0],
                         end=OVERLAP_DATES[-1], download_dir=tmp_path / "dl", mask="none",
                         composite=CompositeOptions(str(out), workers=0))).run()
    assert {d.task.scene.tile for d in result.downloads} == {"33UUP"} and len(result.downloads) == 2 * 3
    on_disk = files_under(tmp_path / "dl")
    assert any("33UUP" in f for f in on_disk) and not any("32UQU" in f for f in on_disk), on_disk
    with rasterio.open(out) as ds:
        red = ds.read(1)
    assert red.any() and set(np.unique(red[red > 0]).tolist()) <= set(range(1000, 1097))


def test_across_a_tile_edge_each_pixel_is_the_zones_tile_where_it_has_data_then_the_other(seeded_s3, scratch_bucket,
                                                                                           tmp_path):
    """An area across 33UUP's west edge on a zone-33 grid: east of the edge 33UUP's pixels (though 32UQU sorts
    first and has data there too), west of it 32UQU's, warped; both tiles fetched, and the tags say so."""
    _overlap_bucket(seeded_s3, scratch_bucket, tmp_path)
    red, inside, tags, result = _overlap_area(seeded_s3.endpoint, scratch_bucket, "12.10,48.00,12.50,48.30",
                                              tmp_path / "edge.tif")
    assert {s.tile for s in result.scenes} == {"33UUP", "32UQU"}
    values = red[inside]
    assert 0 not in values, "a seam of nodata inside the area"
    from_33, from_32 = (values >= 1000) & (values <= 1096), (values >= 5000) & (values <= 5096)
    assert (from_33 | from_32).all() and from_33.sum() >= 50 and from_32.sum() >= 50
    cols = np.indices(red.shape)[1]
    assert cols[inside & (red < 5000)].min() > cols[inside & (red >= 5000)].max() - 2  # 33UUP east, 32UQU west
    with rasterio.open(tmp_path / "edge.tif") as ds:
        origin, res = (ds.transform.c, ds.transform.f), ds.res[0]
    assert tags["TILE"] == "32UQU,33UUP"  # every tile, not the first scene's
    assert tags["AREA"] == "bbox 12.1,48,12.5,48.3" and tags["AREA_BOUNDS"] == "12.100000,48.000000,12.500000,48.300000"
    assert re.fullmatch(r"[0-9a-f]{64}", tags["AREA_GEOMETRY_SHA256"])
    assert tags["GRID_CRS"] == "EPSG:32633" and float(tags["GRID_RESOLUTION"]) == pytest.approx(res)
    assert tuple(map(float, tags["GRID_ORIGIN"].split(","))) == pytest.approx(origin, abs=1e-3)
    assert tags["GRID_SIZE"] == f"{red.shape[1]}x{red.shape[0]}"
    assert tags["OFFSET_SOURCES"] == "streamed,streamed"


def test_a_coarse_preview_says_its_resolution(seeded_s3, tmp_path):
    """An area at 4 x the tile's pixel, composited at --scale 2: its tags give the pixel it has (8 x) in metres
    and over the 10 m bands' (it used to say SCALE=1); the count raster says the same."""
    area = areas.parse_bbox(",".join(f"{v:.6f}" for v in _lonlat_box(0, 0, 64, 40)))
    out, count = tmp_path / "preview.tif", tmp_path / "count.tif"
    Job(Request(_cogs(seeded_s3), area=area, resolution=4 * TRANSFORM.a, **JULY, cache_dir=tmp_path / "cache",
                composite=CompositeOptions(str(out), workers=0, scale=2, count_path=str(count)))).run()
    for path in (out, count):
        with rasterio.open(path) as ds:
            tags, res = ds.tags(), ds.res[0]
        assert res == pytest.approx(8 * TRANSFORM.a)
        assert tags["RESOLUTION"] == f"{res:g} m" and float(tags["SCALE"]) == pytest.approx(res / 10)
        assert tags["AREA"] == area.name and float(tags["GRID_RESOLUTION"]) == pytest.approx(4 * TRANSFORM.a)


def test_the_mosaic_order_and_the_tiles_left_out_follow_zone_then_data_footprint():
    """prioritise(), on scene values alone: the grid's zone first, a covered tile left out -- unless the first
    tile's data is known not to cover the area (a data geometry, or coverage under 100 % with none)."""
    from s2desktop.core.catalog import Scene

    def scene(tile, coverage=100.0, geometry=None):
        return Scene(tile, dt.date(2023, 7, 1), 0, 1.0, coverage, "05.09",
                     f"S2B_MSIL2A_20230701T100559_N0509_R022_T{tile}_x", f"p/{tile}", data_geometry=geometry)

    def order(scenes, crs=None):
        area = areas.parse_bbox(IN_BOTH)
        grid = areas.output_grid(area, 100, crs)
        (acq,) = streaming.prioritise(streaming.acquisitions(scenes), grid, areas.geometry_in(area, grid.crs))
        return [s.tile for s in acq.scenes]

    def utm_box(west, east):  # a data geometry in 33UUP's zone, full height, as tileInfo.json gives it
        ring = [[west, 5290300], [east, 5290300], [east, 5399900], [west, 5399900], [west, 5290300]]
        return {"type": "Polygon", "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG:8.8.1:32633"}},
                "coordinates": [ring]}

    both = [scene("32UQU"), scene("33UUP")]
    assert order(both) == ["33UUP"] and order(both, "EPSG:32632") == ["32UQU"]
    assert order([scene("32UQU"), scene("33UUP", coverage=60.0)]) == ["33UUP", "32UQU"]  # its data unknown
    # 33UUP's data (x 347-358 km under the area) in part of the area: both, 33UUP first; all of it: 33UUP alone
    assert order([scene("32UQU"), scene("33UUP", 60.0, utm_box(300100, 352000))]) == ["33UUP", "32UQU"]
    assert order([scene("32UQU"), scene("33UUP", 60.0, utm_box(330000, 409700))]) == ["33UUP"]
    # a scene whose data does not reach the area adds nothing: left out, whatever its rank
    assert order([scene("32UQU"), scene("33UUP", 60.0, utm_box(300100, 330000))]) == ["32UQU"]
    assert order([scene("33UUP"), scene("33UVP", coverage=10.0)]) == ["33UUP"]


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


def test_an_areas_dry_run_says_the_bytes_the_run_fetches(seeded_s3, tmp_path):
    area = areas.parse_bbox(",".join(f"{v:.6f}" for v in _lonlat_box(10, 0, 40, 6)))
    request = Request(_cogs(seeded_s3), area=area, resolution=TRANSFORM.a, download_dir=tmp_path / "dl", **JULY,
                      cache_dir=tmp_path / "cache", composite=CompositeOptions(str(tmp_path / "a.tif"), workers=2))
    cost, plan = Job(request).estimate()
    assert not (tmp_path / "a.tif").exists() and not list((tmp_path / "cache").rglob("*.tif"))
    assert plan.dates == 2 and plan.windows == 1 and plan.workers == 2
    events = []
    result = Job(request, progress=events.append).run()
    fetched = [e for e in events if e.stage == "fetch" and e.bytes_total]
    assert cost.bytes == fetched[0].bytes_total > 0 and cost.requests >= 1
    with rasterio.open(result.composite.path) as ds:
        assert (ds.height, ds.width) == (plan.height, plan.width)
    again, _ = Job(request).estimate()
    assert again.bytes == 0  # all in the cache now
