"""Search against the real S3 test server (all three layouts) and local mirror folders."""

import datetime as dt
import json

import pytest

from s2desktop.core import catalog
from s2desktop.core.errors import InvalidInputError, InvalidTileError, NotFoundError
from s2desktop.core.sources import resolve_source
from tests.fixtures_s3 import MANY_BUCKET, TILE, RequestRecorder
from tests.helpers import s3_source as _source


def _expected(seeded, layout, start, end):
    out = []
    for date, seq, cloud, cover, baseline in seeded.scenes[layout]:
        d = dt.date.fromisoformat(date)
        if dt.date.fromisoformat(start) <= d <= dt.date.fromisoformat(end):
            out.append((d, seq, cloud, cover, baseline))
    return sorted(out)


@pytest.mark.parametrize("layout", ["l1c", "l2a", "cogs"])
def test_search_finds_every_acquisition_in_range(seeded_s3, layout):
    src = _source(seeded_s3, layout)
    rec = RequestRecorder(src.store.client)
    stats = {}
    scenes = catalog.search(src, "T33UUP", "2023-07-01", "2023-08-31", stats=stats)
    exp = _expected(seeded_s3, layout, "2023-07-01", "2023-08-31")
    assert [(s.date, s.sequence) for s in scenes] == [(d, q) for d, q, *_ in exp]
    for s, (_d, _q, cloud, cover, baseline) in zip(scenes, exp):
        assert s.cloud_cover == cloud and s.data_coverage == cover and s.baseline == baseline
        assert s.tile == TILE and s.product_name and f"_T{TILE}_" in s.product_name
        assert {"B02", "B03", "B04", "B08", "B11"} <= set(s.bands)
        assert all(k.startswith(s.prefix + "/") for k in s.bands.values())
        assert s.preview and s.preview.startswith(s.prefix + "/")
        assert s.data_geometry["type"] == "Polygon"
    if layout == "l2a":
        assert scenes[0].bands["B04"].endswith("/R10m/B04.jp2")
        assert scenes[0].bands["B11"].endswith("/R20m/B11.jp2")
        assert scenes[0].bands["SCL"].endswith("/R20m/SCL.jp2")
    if layout == "cogs":
        assert scenes[0].bands["B04"].endswith(".tif")
    # listing: tile -> years -> months -> days (+1 listing per day with data); never the whole tile
    lists = rec.ops("ListObjectsV2")
    assert all(p.get("Delimiter") == "/" or p["Prefix"].count("/") >= 6 for p in lists)
    assert stats["list_requests"] == len(lists) == (3 if layout == "cogs" else 4)  # tile, year, whole months
    # requester pays: every request to the L1C/L2A buckets carries RequestPayer, the public bucket's don't
    for name, params in rec.calls:
        assert (params.get("RequestPayer") == "requester") == (layout != "cogs"), name
    assert stats["metadata_gets"] == len(scenes) and stats["metadata_cached"] == 0


def test_repeat_search_makes_no_metadata_gets(seeded_s3):
    src = _source(seeded_s3, "l1c")
    first = catalog.search(src, "33UUP", "2022-12-01", "2023-02-28")
    rec = RequestRecorder(src.store.client)
    stats = {}
    again = catalog.search(src, "33UUP", "2022-12-01", "2023-02-28", stats=stats)
    assert again == first and len(again) == 6
    assert rec.count("GetObject") == 0 and stats["metadata_cached"] == 6
    # a changed object (new ETag) is fetched again
    client = seeded_s3.client()
    key = first[0].metadata_key
    doc = json.loads(client.get_object(Bucket="sentinel-s2-l1c", Key=key)["Body"].read())
    doc["cloudyPixelPercentage"] = 11.0
    client.put_object(Bucket="sentinel-s2-l1c", Key=key, Body=json.dumps(doc).encode())
    try:
        rec.clear()
        third = catalog.search(src, "33UUP", "2022-12-01", "2023-02-28")
        assert rec.count("GetObject") == 1 and third[0].cloud_cover == 11.0
    finally:
        doc["cloudyPixelPercentage"] = 10.0
        client.put_object(Bucket="sentinel-s2-l1c", Key=key, Body=json.dumps(doc).encode())


def test_ranges_across_years_months_and_numeric_order(seeded_s3):
    src = _source(seeded_s3, "l1c")
    rec = RequestRecorder(src.store.client)
    scenes = catalog.search(src, "33uup", "2022-12-31", "2023-01-02")
    assert [s.scene_id for s in scenes] == ["33UUP_2022-12-31_0", "33UUP_2023-01-02_0", "33UUP_2023-01-02_1"]
    # partial months: only the days in range are entered (tile, 2 years, 2 months, 2 day lists, 2 days)
    day_lists = [p["Prefix"] for p in rec.ops("ListObjectsV2") if "Delimiter" not in p]
    assert sorted(day_lists) == ["tiles/33/U/UP/2022/12/31/", "tiles/33/U/UP/2023/1/2/"]
    assert rec.count("ListObjectsV2") == 1 + 2 + 2 + 2
    year = catalog.search(src, "33UUP", "2023-01-01", "2023-12-31")
    dates = [s.date for s in year]
    assert dates == sorted(dates) and dt.date(2023, 10, 12) in dates and dt.date(2023, 2, 1) in dates
    assert len(year) == 11
    # inclusive bounds, single day
    assert [s.sequence for s in catalog.search(src, "33UUP", "2023-07-14", "2023-07-14")] == [0, 1, 2]


def test_max_cloud_filters(seeded_s3):
    src = _source(seeded_s3, "l1c")
    scenes = catalog.search(src, "33UUP", "2023-07-01", "2023-07-31", max_cloud=30)
    assert [(s.date.day, s.sequence) for s in scenes] == [(4, 0), (14, 0), (14, 1), (31, 0)]
    assert all(s.cloud_cover <= 30 for s in scenes)


def test_empty_result_is_not_an_error(seeded_s3):
    src = _source(seeded_s3, "l1c")
    assert catalog.search(src, "33UUP", "2019-01-01", "2019-12-31") == []
    assert catalog.search(src, "32TNS", "2023-01-01", "2023-12-31") == []


def test_pagination_past_1000_prefixes(seeded_s3):
    src = _source(seeded_s3, "l1c", bucket=MANY_BUCKET)
    rec = RequestRecorder(src.store.client)
    assert len(src.store.list_prefixes("tiles/33/U/UP/")) == 1100
    assert rec.count("ListObjectsV2") == 2
    rec.clear()
    scenes = catalog.search(src, "33UUP", "2099-07-01", "2099-07-31")
    assert [s.scene_id for s in scenes] == ["33UUP_2099-07-14_0"]
    assert scenes[0].cloud_cover is None  # '{}' metadata: kept, values unknown


def test_real_55jgf_scene(seeded_s3):
    if not seeded_s3.real_55jgf:
        pytest.skip("../shared/s2-real is absent")
    src = _source(seeded_s3, "l1c")
    (scene,) = catalog.search(src, "55JGF", "2018-06-01", "2018-06-30")
    assert scene.baseline == "02.06" and scene.cloud_cover == 41.2 and scene.data_coverage == 82.68
    assert scene.product_name == "S2B_MSIL1C_20180617T001109_N0206_R073_T55JGF_20180617T013729"
    assert set(scene.bands) >= {"B01", "B02", "B03", "B04", "B8A", "B12", "TCI"}
    assert scene.preview.endswith("/preview.jpg")
    assert catalog.fetch_preview(src, scene)[:3] == b"\xff\xd8\xff"
    assert scene.to_dict()["date"] == "2018-06-17"
    json.dumps(scene.to_dict())


def test_fetch_preview_is_cached_and_converts_jp2(seeded_s3):
    src = _source(seeded_s3, "l2a")
    scene = catalog.search(src, "33UUP", "2023-07-14", "2023-07-14")[0]
    assert scene.preview.endswith("qi/L2A_PVI.jp2")
    jpeg = catalog.fetch_preview(src, scene)
    assert jpeg[:3] == b"\xff\xd8\xff"
    rec = RequestRecorder(src.store.client)
    assert catalog.fetch_preview(src, scene) == jpeg
    assert rec.count("GetObject") == 0


@pytest.mark.parametrize("layout", ["l1c", "l2a", "cogs"])
def test_local_mirror_folder(seeded_s3, layout):
    src = resolve_source(str(seeded_s3.roots[layout]))
    assert src.is_local and src.layout == layout
    scenes = catalog.search(src, "33UUP", "2023-07-01", "2023-07-31")
    exp = _expected(seeded_s3, layout, "2023-07-01", "2023-07-31")
    assert [(s.date, s.sequence, s.cloud_cover) for s in scenes] == [(d, q, c) for d, q, c, *_ in exp]
    # parent folder holding the bucket folder works too
    assert resolve_source(str(seeded_s3.roots[layout].parent)).is_local


def test_bad_input_errors(seeded_s3, tmp_path):
    src = _source(seeded_s3, "l1c")
    with pytest.raises(InvalidTileError, match="zone 61 is out of range"):
        catalog.search(src, "61UUP", "2023-01-01", "2023-01-02")
    with pytest.raises(InvalidInputError, match="is not a date of the form YYYY-MM-DD"):
        catalog.search(src, "33UUP", "2023-1-1", "2023-01-02")
    with pytest.raises(InvalidInputError, match="not a valid date"):
        catalog.search(src, "33UUP", "2023-02-30", "2023-03-02")
    with pytest.raises(InvalidInputError, match="is after end date"):
        catalog.search(src, "33UUP", "2023-03-01", "2023-02-01")
    with pytest.raises(NotFoundError, match="no Sentinel-2 bucket layout"):
        resolve_source(str(tmp_path))
    with pytest.raises(InvalidInputError, match="unknown source"):
        resolve_source("l3x")
