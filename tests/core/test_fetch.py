"""An area's windows fetched from COGs on the S3 test server (through a proxy that counts the bytes), and the
on-disk cache that keeps them: a second run fetches nothing, a changed object is fetched again, a cancel leaves
no half-written window."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import numpy as np
import pytest
import rasterio

from s2desktop.core import areas, fetch
from s2desktop.core.errors import CancelledError
from s2desktop.core.pipeline import CompositeOptions, Job, Request, SourceSpec
from s2desktop.core.progress import CancelToken
from tests.fixtures_s3 import ThrottledProxy
from tests.helpers import constant_cog_scene, upload_public

DAY = dt.date(2023, 7, 1)
BOX = areas.parse_bbox("12.60,47.95,12.80,48.05")  # inside 33UUP (and no other tile's scenes in the bucket)


@pytest.fixture
def proxy(seeded_s3):
    p = ThrottledProxy(seeded_s3.endpoint, rate=256 << 20)  # fast: here it only counts the bytes
    yield p
    p.close()


def _request(proxy, bucket, tmp_path, **kw) -> Request:
    fields = dict(area=BOX, resolution=200, start=DAY, end=DAY, cache_dir=tmp_path / "cache",
                  composite=CompositeOptions(str(tmp_path / "out.tif"), workers=0))
    return Request(SourceSpec("cogs", endpoint_url=proxy.endpoint, bucket=bucket), **{**fields, **kw})


def _red(path):
    with rasterio.open(path) as ds:
        return ds.read(1)


def test_a_second_run_over_the_same_area_fetches_nothing(seeded_s3, scratch_bucket, proxy, tmp_path):
    root = tmp_path / "bucket"
    constant_cog_scene(root, "33UUP", DAY, 1234, n=549)  # 200 m pixels
    upload_public(seeded_s3, scratch_bucket, root)
    request = _request(proxy, scratch_bucket, tmp_path)
    scenes = Job(request).search()
    start = proxy.bytes_sent
    Job(request).run_area(scenes)
    first = proxy.bytes_sent - start
    events = []
    Job(replace(request, composite=replace(request.composite, output=str(tmp_path / "again.tif"))),
        progress=events.append).run_area(scenes)
    assert first > 0 and proxy.bytes_sent - start == first  # not one byte the second time, not even a header
    fetch = [e for e in events if e.stage == "fetch"]
    assert fetch[0].bytes_total == 0 and "all 3 window(s) already cached" in fetch[0].message
    np.testing.assert_array_equal(_red(tmp_path / "out.tif"), _red(tmp_path / "again.tif"))
    assert set(np.unique(_red(tmp_path / "again.tif"))) == {0, 1234}  # the box, nodata around it


def test_a_changed_object_is_fetched_again_not_served_from_the_cache(seeded_s3, scratch_bucket, proxy, tmp_path):
    """The cache is keyed by ETag, and every range is pinned to the ETag the search listed."""
    root = tmp_path / "bucket"
    constant_cog_scene(root, "33UUP", DAY, 1000, n=549)
    upload_public(seeded_s3, scratch_bucket, root)
    request = _request(proxy, scratch_bucket, tmp_path)
    Job(request).run()
    constant_cog_scene(root, "33UUP", DAY, 2000, n=549)  # the same keys, new content: new ETags
    upload_public(seeded_s3, scratch_bucket, root)
    Job(replace(request, composite=replace(request.composite, output=str(tmp_path / "new.tif")))).run()
    assert set(np.unique(_red(tmp_path / "out.tif"))) == {0, 1000}
    assert set(np.unique(_red(tmp_path / "new.tif"))) == {0, 2000}


def test_a_cancel_during_the_fetch_leaves_no_output_and_no_half_window(seeded_s3, scratch_bucket, proxy, tmp_path):
    root = tmp_path / "bucket"
    for day in range(1, 6):
        constant_cog_scene(root, "33UUP", dt.date(2023, 7, day), 100 * day, n=1098)
    upload_public(seeded_s3, scratch_bucket, root)
    token = CancelToken()

    def on_event(event):
        if event.stage == "fetch" and event.bytes_done:
            token.set()  # as soon as the first bytes arrive

    request = replace(_request(proxy, scratch_bucket, tmp_path, resolution=100), end=dt.date(2023, 7, 5))
    with pytest.raises(CancelledError):
        Job(request, progress=on_event, cancel=token).run()
    assert not (tmp_path / "out.tif").exists()
    left = [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]
    assert not [p for p in left if p.name.startswith(".")]  # no temporary (half-written) window
    for p in left:
        if p.suffix == ".tif":
            with rasterio.open(p) as ds:
                assert ds.read(1).all()  # a cached window is a whole one


def test_the_cache_stays_within_its_limit(seeded_s3, scratch_bucket, proxy, tmp_path):
    root = tmp_path / "bucket"
    constant_cog_scene(root, "33UUP", DAY, 1000, n=549)
    upload_public(seeded_s3, scratch_bucket, root)
    Job(_request(proxy, scratch_bucket, tmp_path, cache_limit=1)).run()
    assert (tmp_path / "out.tif").is_file()
    assert sum(p.stat().st_size for p in (tmp_path / "cache").rglob("*") if p.is_file()) <= 1


def test_a_window_s_tiles_are_fetched_in_runs_of_consecutive_bytes():
    from s2desktop.core.cogtiles import CogHeader, Level

    level = Level(4096, 2048, 1024, 1024, offsets=(1000, 3008, 5016, 9000, 20000, 30008, 40000, 60000),
                  counts=(2000, 2000, 1000, 1000, 10000, 5000, 0, 7), transform=(10, 0, 0, 0, -10, 0))
    header = CogHeader(99999, "uint16", 8, 2, 32633, False, (), None, None, "0", (level,))
    piece = fetch.Piece("k", "e", header, 0, (1024, 0, 3072, 2048))  # tiles 1-3 of both tile rows
    # close together (less than fetch.GAP apart): one GET; far apart: two
    assert [[off for _p, off, _n in run] for run in fetch.ranges(piece)] == [[3008, 5016, 9000], [30008], [60000]]
    assert piece.nbytes == 2000 + 1000 + 1000 + 5000 + 0 + 7  # the sparse tile (0 bytes) is not fetched
