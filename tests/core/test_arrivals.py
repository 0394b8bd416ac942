"""An area's windows composited while the rest of it is still arriving (core.arrivals): the COGs' rows of tiles
fetched northernmost first through a slow link, each output window run as soon as the rows it reads are in --
and the output the same as when every row was there first."""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.warp import transform_bounds

from s2desktop.core import areas, fetch, tiles
from s2desktop.core.errors import CancelledError
from s2desktop.core.pipeline import CompositeOptions, Job, Request, SourceSpec, run_composite
from s2desktop.core.progress import CancelToken
from tests.fixtures_s3 import ThrottledProxy
from tests.helpers import constant_cog_scene, upload_public

DAYS = (dt.date(2023, 7, 1), dt.date(2023, 7, 6))
N = 2196  # 50 m pixels: the COGs' full resolution is 3 rows of 1024 px tiles


def _box(km0: float, km1: float):
    """A square from km0 to km1 inside 33UUP's top-left corner (its first row of tiles holds the first 51 km)."""
    f = tiles.footprint("33UUP")
    left, top = f.utm_bounds[0], f.utm_bounds[3]
    bounds = transform_bounds(f"EPSG:{f.epsg}", "EPSG:4326", left + km0 * 1000, top - km1 * 1000,
                              left + km1 * 1000, top - km0 * 1000)
    return areas.parse_bbox(",".join(f"{v:.6f}" for v in bounds))


@pytest.fixture
def scenes_bucket(seeded_s3, scratch_bucket, tmp_path):
    root = tmp_path / "bucket"
    for i, day in enumerate(DAYS):
        constant_cog_scene(root, "33UUP", day, 1000 + 100 * i, n=N, texture=3)
    upload_public(seeded_s3, scratch_bucket, root)
    return scratch_bucket


def _request(endpoint, bucket, tmp_path, out: str, **kw) -> Request:
    kw = {"cache_dir": tmp_path / "cache", **kw}
    return Request(SourceSpec("cogs", endpoint_url=endpoint, bucket=bucket), area=_box(1, 60), resolution=50,
                   start=DAYS[0], end=DAYS[-1],
                   composite=CompositeOptions(str(tmp_path / out), workers=2, window_size=512), **kw)


def _pixels(path: Path) -> np.ndarray:
    with rasterio.open(path) as ds:
        return ds.read()


def test_the_first_windows_are_composited_while_the_last_rows_are_still_arriving(seeded_s3, scenes_bucket,
                                                                                  tmp_path, monkeypatch):
    # 3 connections for 12 rows (a large area has hundreds of rows for its 24): rows come in order, north first
    monkeypatch.setattr(fetch, "CONNECTIONS", 3)
    proxy = ThrottledProxy(seeded_s3.endpoint, rate=256 << 10, total_rate=256 << 10)  # 256 KiB/s: seconds of rows
    try:
        events = []
        Job(_request(proxy.endpoint, scenes_bucket, tmp_path, "out.tif"), progress=events.append).run()
    finally:
        proxy.close()
    stages = [e.stage for e in events if e.stage in ("fetch", "composite")]
    assert "composite" in stages and "fetch" not in stages[stages.index("composite"):]  # one stage after the other
    first = next(e for e in events if e.stage == "composite")
    # the window count held back while the rows arrived: the top row of windows was done before the last row came
    assert 0 < first.items_done < first.items_total, first
    assert "composited while fetching" in first.message
    early = [e.pixels for e in events[:events.index(first)] if e.pixels is not None]
    assert early and all(e.stage == "fetch" for e in events if e.pixels is not None and e in events[:events.index(first)])
    # the windows done while fetching reached the front ends at once (a preview paints them), on fetch events

    # the same area with every row in before any window runs (the blocking way explain uses): the same pixels
    request = _request(seeded_s3.endpoint, scenes_bucket, tmp_path, "again.tif", cache_dir=tmp_path / "cold")
    (tmp_path / "scratch").mkdir()
    area = Job(request).area_inputs(None, tmp_path / "scratch")
    assert area.arrivals.finished.is_set()  # every row in before the composite starts
    run_composite(area.inputs, area.options)
    out, again = _pixels(tmp_path / "out.tif"), _pixels(tmp_path / "again.tif")
    np.testing.assert_array_equal(out, again)
    assert (out > 0).mean() > 0.9 and out.max() > 1000  # the dates' values (1000 + texture, 1100 + texture)

    # a second run from the first one's cache: every row cached, each COG's whole piece remembered (not its
    # last row: a second run once composited only the bottom of the area), the same pixels
    events = []
    Job(_request(seeded_s3.endpoint, scenes_bucket, tmp_path, "cached.tif"), progress=events.append).run()
    fetched = next(e for e in events if e.stage == "fetch")
    assert fetched.bytes_total == 0 and "already cached" in fetched.message
    np.testing.assert_array_equal(out, _pixels(tmp_path / "cached.tif"))


def test_cancel_while_rows_arrive_and_windows_run_leaves_no_output_and_no_fetch_running(seeded_s3, scenes_bucket,
                                                                                         tmp_path, monkeypatch):
    monkeypatch.setattr(fetch, "CONNECTIONS", 3)
    proxy = ThrottledProxy(seeded_s3.endpoint, rate=128 << 10, total_rate=128 << 10)
    cancel = CancelToken()

    def progress(event):
        if event.stage == "fetch" and event.items_done >= 7:  # the first row of every COG is in: windows run
            cancel.set()

    try:
        with pytest.raises(CancelledError):
            Job(_request(proxy.endpoint, scenes_bucket, tmp_path, "out.tif"), progress, cancel).run()
    finally:
        proxy.close()
    assert not list(tmp_path.glob("out*"))  # no output, no count layer, no record
    assert not [t for t in threading.enumerate() if t.name == "s2desktop-arrivals" and t.is_alive()]
    assert not [p for p in (tmp_path / "cache").rglob("*") if p.name.startswith(".")]  # nothing half-written
