"""Every composite writes its provenance record (OUT.json, a STAC Item) and `composite --from OUT.json` makes it
again, pixel for pixel -- for loose files, a tile from the L2A test server and an area streamed from COGs; an
input that is gone or changed is refused in one line naming it."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest
import rasterio

from s2desktop.cli import main
from s2desktop.core import areas, provenance
from s2desktop.core.errors import InvalidInputError
from s2desktop.core.pipeline import CompositeOptions, Job, Request, SourceSpec, rerun
from tests.fixtures_rasters import make_stack
from tests.helpers import constant_cog_scene, upload_public

JULY = dict(start=dt.date(2023, 7, 1), end=dt.date(2023, 7, 31))


def _pixels(path):
    with rasterio.open(path) as ds:
        return ds.read(), ds.transform, ds.crs


def _assert_same(a, b):
    pa, ta, ca = _pixels(a)
    pb, tb, cb = _pixels(b)
    assert ta == tb and ca == cb
    np.testing.assert_array_equal(pa, pb)
    assert pa.any()


def _files_args(st):
    return ["--red", *map(str, st.red), "--green", *map(str, st.green), "--blue", *map(str, st.blue)]


def test_files_mode_writes_a_stac_record_and_from_makes_it_again(tmp_path, capsys):
    st = make_stack(tmp_path / "in", dates=4, size=150, scl=True, baselines=["03.01", "03.01", "04.00", "04.00"])
    out = tmp_path / "out.tif"
    assert main(["composite", *_files_args(st), "--workers", "0", "--method", "quantile:25", "-o", str(out)]) == 0
    assert "its record" in capsys.readouterr().out
    item = json.loads((tmp_path / "out.json").read_text())
    assert item["type"] == "Feature" and item["stac_version"] == "1.0.0"
    assert {e.rsplit("/", 3)[1] for e in item["stac_extensions"]} == {"projection", "raster", "processing"}
    props = item["properties"]
    assert props["datetime"] is None and props["start_datetime"][:10] == "2023-07-01" < props["end_datetime"]
    assert item["links"] == [] and item["geometry"]["type"] == "Polygon" and item["id"] == "out"
    w, s, e, n = item["bbox"]
    assert -180 <= w < e <= 180 and -90 <= s < n <= 90
    with rasterio.open(out) as ds:
        assert props["proj:epsg"] == ds.crs.to_epsg() and props["proj:shape"] == list(ds.shape)
        assert props["proj:transform"] == list(ds.transform)[:6]
    assert props["s2desktop:rule"] == "quantile:25" and props["s2desktop:bands"] == ["B04", "B03", "B02"]
    assert props["s2desktop:command"][:2] == ["s2desktop", "composite"] and "quantile:25" in props["processing:lineage"]
    assert props["processing:software"]["s2desktop"]
    obs = props["s2desktop:observations"]
    assert [o["offset"] for o in obs] == [0, 0, -1000, -1000] and [o["baseline"] for o in obs][2] == "04.00"
    assert obs[0]["mask"]["class_names"][4] == "cloud high probability"
    inputs = obs[0]["inputs"]
    assert {i["band"] for i in inputs} == {"B04", "B03", "B02", "SCL"}
    red = next(i for i in inputs if i["band"] == "B04")
    assert red["size"] == st.red[0].stat().st_size and red["sha256"] == provenance.sha256_of(st.red[0])
    assert item["assets"]["count"]["href"] == "out_count.tif" and (tmp_path / "out_count.tif").is_file()

    again = tmp_path / "again.tif"
    assert main(["composite", "--from", str(tmp_path / "out.json"), "--workers", "0", "-o", str(again)]) == 0
    _assert_same(out, again)
    with rasterio.open(again) as ds:
        assert ds.tags()["METHOD"] == "quantile:25"  # the record's rule, not the command line's default


def test_a_changed_or_missing_input_is_refused_in_one_line_naming_it(tmp_path, capsys):
    st = make_stack(tmp_path / "in", dates=3, size=100)
    out = tmp_path / "out.tif"
    assert main(["composite", *_files_args(st), "--workers", "0", "-o", str(out)]) == 0
    capsys.readouterr()
    record = str(tmp_path / "out.json")
    data = bytearray(st.green[1].read_bytes())
    data[-1] ^= 0xFF  # same size, other content
    st.green[1].write_bytes(bytes(data))
    assert main(["composite", "--from", record, "-o", str(tmp_path / "a.tif")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(st.green[1].resolve()) in err and "SHA-256" in err
    with open(st.blue[0], "ab") as fh:
        fh.write(b"more")
    assert main(["composite", "--from", record, "-o", str(tmp_path / "a.tif")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(st.blue[0].resolve()) in err and "bytes" in err
    st.blue[0].unlink()
    assert main(["composite", "--from", record, "-o", str(tmp_path / "a.tif")]) == 2
    assert "is gone" in capsys.readouterr().err
    assert not (tmp_path / "a.tif").exists() and not (tmp_path / "a.json").exists()  # nothing written


def test_a_tile_from_the_l2a_server_is_made_again_from_its_record(seeded_s3, tmp_path):
    out = tmp_path / "tile.tif"
    source = SourceSpec("l2a", endpoint_url=seeded_s3.endpoint)
    Job(Request(source, tile="33UUP", download_dir=tmp_path / "dl", **JULY,
                composite=CompositeOptions(str(out), workers=0, method="medoid"))).run()
    rec = provenance.read_record(out)
    assert rec.mode == "stack"
    keys = [i for i in rec.inputs() if i["band"] == "SCL"]
    assert keys and all(i["key"].endswith("SCL.jp2") and i["etag"] for i in keys)  # object and ETag
    again = tmp_path / "again.tif"
    rerun(rec.path, CompositeOptions(str(again), workers=0))
    _assert_same(out, again)
    # a downloaded input replaced by other bytes of the same size: no longer its object's verified download
    red = next(i for i in rec.inputs() if i["band"] == "B04")
    data = bytearray(open(red["path"], "rb").read())
    data[200] ^= 0xFF
    open(red["path"], "wb").write(bytes(data))
    with pytest.raises(InvalidInputError, match=f"input {red['path']} changed: no longer the verified download"):
        rerun(rec.path, CompositeOptions(str(tmp_path / "x.tif"), workers=0))


def test_an_area_streamed_from_cogs_is_made_again_and_a_new_etag_refused(seeded_s3, scratch_bucket, tmp_path):
    root = tmp_path / "bucket"
    days = [dt.date(2023, 7, d) for d in (1, 3, 5)]
    for day, value in zip(days, (1000, 3000, 2000)):
        constant_cog_scene(root, "33UUP", day, value, texture=1)
    upload_public(seeded_s3, scratch_bucket, root)
    source = SourceSpec("cogs", endpoint_url=seeded_s3.endpoint, bucket=scratch_bucket)
    area = areas.parse_bbox("12.20,48.10,12.40,48.25")
    out = tmp_path / "area.tif"
    Job(Request(source, area=area, resolution=500, start=days[0], end=days[-1], cache_dir=tmp_path / "cache",
                composite=CompositeOptions(str(out), workers=0))).run()
    rec = provenance.read_record(tmp_path / "area.json")
    assert rec.mode == "area" and rec.props["s2desktop:area"]["name"] == area.name
    assert all(i["key"] and i["etag"] and i["size"] for i in rec.inputs())
    again = tmp_path / "again.tif"
    assert main(["composite", "--from", str(rec.path), "--workers", "0", "-o", str(again)]) == 0
    _assert_same(out, again)
    # one band of one scene uploaded again with other content: a new ETag
    key = next(i["key"] for i in rec.inputs() if i["band"] == "B03")
    seeded_s3.client().put_object(Bucket=scratch_bucket, Key=key, Body=(root / key).read_bytes() + b"\0")
    with pytest.raises(InvalidInputError, match=f"input {key} changed: ETag"):
        rerun(rec.path, CompositeOptions(str(tmp_path / "x.tif"), workers=0))


def test_a_record_that_cannot_be_written_is_said_before_anything_is_composited(tmp_path, capsys):
    st = make_stack(tmp_path / "in", dates=2, size=64)
    (tmp_path / "out.json").mkdir()  # in the way of the record
    assert main(["composite", *_files_args(st), "--workers", "0", "-o", str(tmp_path / "out.tif")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "provenance record" in err and "is a folder" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in", "out.json"]  # no composite, no count


def test_a_medoid_with_its_date_band_is_made_again_with_it(tmp_path):
    st = make_stack(tmp_path / "in", dates=3, size=80, scl=True)
    out = tmp_path / "m.tif"
    assert main(["composite", *_files_args(st), "--workers", "0", "--method", "medoid", "--date-band",
                 "-o", str(out)]) == 0
    assert provenance.read_record(out).item["assets"]["dates"]["href"] == "m_dates.tif"
    assert main(["composite", "--from", str(tmp_path / "m.json"), "--workers", "0", "-o",
                 str(tmp_path / "again.tif")]) == 0
    _assert_same(out, tmp_path / "again.tif")
    _assert_same(tmp_path / "m_dates.tif", tmp_path / "again_dates.tif")
    _assert_same(tmp_path / "m_count.tif", tmp_path / "again_count.tif")
