"""Areas streamed from COGs over a hostile network, and a window cache that is damaged between runs.

The COGs of three dates of 33UUP (1098 px, 1024 px DEFLATE tiles, overviews, SCL) go into a scratch bucket on the
S3 test server; every run reaches it through a FaultProxy that flips bytes in header and tile ranges, truncates,
resets and stalls them. Each run either writes exactly the clean pixels -- those of a run without faults -- or
fails in one line and writes no output; the next clean run writes the clean pixels. 0 wrong outputs.
"""

from __future__ import annotations

import datetime as dt
import signal
import subprocess
import threading
import time

import numpy as np
import pytest
import rasterio
from affine import Affine
from pathlib import Path

from s2desktop.core import archive, areas
from s2desktop.core.errors import CancelledError, S2Error
from s2desktop.core.pipeline import CompositeOptions, Job, Request, SourceSpec
from s2desktop.core.progress import CancelToken
from tests.fixtures_faults import FaultProxy
from tests.helpers import upload_public

N = 1098
TRANSFORM = Affine(100, 0, 300000, 0, -100, 5400000)  # 33UUP's place in the grid, at 100 m
REPO = Path(__file__).resolve().parents[2]
DATES = [dt.date(2023, 7, d) for d in (2, 7, 12)]
BOX = areas.parse_bbox("12.45,48.35,12.75,48.55")  # ~22 x 22 km inside 33UUP, across its tiles' edges


@pytest.fixture(scope="module")
def cog_bucket(seeded, tmp_path_factory):
    """The three dates' COGs in a bucket of their own (module-scoped: written once)."""
    root = tmp_path_factory.mktemp("faults-bucket")
    rng = np.random.default_rng(5)
    for i, day in enumerate(DATES):
        bands = {b: rng.integers(500 + 100 * i, 3000, (N, N), dtype=np.uint16) for b in ("B02", "B03", "B04")}
        scl = np.full((N // 2, N // 2), 4, np.uint8)
        scl[100 * i: 100 * i + 80, 200:300] = 9  # a cloud, somewhere else each date
        archive.write_scene(root, "cogs", "33UUP", day, 0, bands, crs=32633, transform=TRANSFORM,
                            baseline="05.09", cloud_cover=10.0, data_coverage=100.0, scl=scl)
    bucket = "faults-cogs"
    seeded.client().create_bucket(Bucket=bucket)
    upload_public(seeded, bucket, root)
    return bucket


@pytest.fixture
def proxy(seeded_s3, cog_bucket, monkeypatch):
    monkeypatch.setenv("S2DESKTOP_HTTP_TIMEOUT", "1")  # a stalled body is given up after 1 s (then retried)
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "3")
    p = FaultProxy(seeded_s3.endpoint)
    yield p
    p.close()


def _request(endpoint, bucket, out, cache, **kw) -> Request:
    return Request(SourceSpec("cogs", endpoint_url=endpoint, bucket=bucket), area=BOX, resolution=100,
                   start=DATES[0], end=DATES[-1], cache_dir=cache,
                   composite=CompositeOptions(str(out), workers=0), **kw)


def _pixels(path):
    with rasterio.open(path) as ds:
        return ds.read()


@pytest.fixture
def clean(seeded_s3, cog_bucket, tmp_path_factory):
    """The clean composite: no proxy, a cache of its own."""
    folder = tmp_path_factory.mktemp("clean")
    Job(_request(seeded_s3.endpoint, cog_bucket, folder / "clean.tif", folder / "cache")).run()
    return _pixels(folder / "clean.tif")


def _attempt(proxy, bucket, out, cache, **kw):
    """One run through the proxy: -> None (written) or the one-line error; never a wrong output."""
    try:
        Job(_request(proxy.endpoint, bucket, out, cache, **kw)).run()
    except S2Error as exc:
        assert "\n" not in str(exc) and not out.exists(), str(exc)
        return str(exc)
    return None


def _check_run_then_clean_rerun(proxy, bucket, tmp_path, clean_pixels, *, expect_error: str | None = None):
    cache = tmp_path / "cache"
    error = _attempt(proxy, bucket, tmp_path / "faulty.tif", cache)
    if expect_error is None:
        assert error is None
        np.testing.assert_array_equal(_pixels(tmp_path / "faulty.tif"), clean_pixels)
    else:
        assert error is not None and expect_error in error, error
    proxy.clear()
    assert _attempt(proxy, bucket, tmp_path / "again.tif", cache) is None
    np.testing.assert_array_equal(_pixels(tmp_path / "again.tif"), clean_pixels)
    assert not [p for p in cache.rglob(".*") if p.is_file()]  # no temporary left in the cache


TILE_DATA = r"^bytes=[1-9]"  # a range that does not start at 0: tiles, not the header


@pytest.mark.parametrize("fault", ["flip", "truncate", "reset", "stall"])
def test_a_damaged_tile_range_is_fetched_again_and_the_pixels_are_clean(proxy, cog_bucket, tmp_path, clean, fault):
    rule = proxy.add(fault, key=r"B04\.tif$", span=TILE_DATA, first=1, rate=30)
    _check_run_then_clean_rerun(proxy, cog_bucket, tmp_path, clean)
    assert rule.matched >= 2  # the damaged range, then its second fetch


def test_a_tile_range_damaged_every_time_fails_in_one_line_and_keeps_nothing(proxy, cog_bucket, tmp_path, clean):
    proxy.add("flip", key=r"B03\.tif$", span=TILE_DATA)
    _check_run_then_clean_rerun(proxy, cog_bucket, tmp_path, clean, expect_error="failed its check twice")


def _header_offset(cog_bucket_root_file, tag: int, byte: int) -> int:
    import tifffile

    with tifffile.TiffFile(cog_bucket_root_file) as tif:
        return tif.pages[0].tags[tag].valueoffset + byte


@pytest.fixture
def b02_file(seeded_s3, tmp_path):
    """A local copy of one of the bucket's B02 COGs (to find its header's byte offsets)."""
    from s2desktop.core.sources import resolve_source

    source = resolve_source("cogs", endpoint_url=seeded_s3.endpoint, bucket="faults-cogs")
    key = next(o.key for o in source.store.list_objects("sentinel-s2-l2a-cogs/33/U/UP/2023/7/")
               if o.key.endswith("B02.tif"))
    path = tmp_path / "B02.tif"
    path.write_bytes(source.store.get_bytes(key))
    return key, path


@pytest.mark.parametrize("tag,byte", [(33922, 3 * 8 + 5), (33550, 5)], ids=["tiepoint", "pixel-scale"])
@pytest.mark.parametrize("times", [1, 99], ids=["once", "always"])
def test_a_damaged_header_is_never_used(proxy, cog_bucket, tmp_path, clean, b02_file, tag, byte, times):
    key, local = b02_file
    proxy.add("flip", key=key + "$", span=r"^bytes=0-", first=times, offset=_header_offset(local, tag, byte))
    _check_run_then_clean_rerun(proxy, cog_bucket, tmp_path, clean,
                                expect_error=None if times == 1 else "does not place it on tile 33UUP")


@pytest.mark.parametrize("damage", ["flip", "truncate", "empty"])
def test_a_damaged_cache_entry_is_fetched_again(proxy, cog_bucket, tmp_path, clean, damage):
    cache = tmp_path / "cache"
    assert _attempt(proxy, cog_bucket, tmp_path / "first.tif", cache) is None
    entries = sorted(p for p in cache.rglob("*.tif"))
    for p in entries[::2]:
        data = bytearray(p.read_bytes())
        if damage == "flip":
            data[len(data) // 2] ^= 0x01
        p.write_bytes(bytes(data[: len(data) // 2] if damage == "truncate" else b"" if damage == "empty" else data))
    start = len(proxy.requests)
    assert _attempt(proxy, cog_bucket, tmp_path / "second.tif", cache) is None
    np.testing.assert_array_equal(_pixels(tmp_path / "second.tif"), clean)
    assert len(proxy.requests) - start >= len(entries[::2])  # the damaged ones came again


def test_a_full_cache_disk_keeps_nothing_partial_and_the_runs_stay_clean(proxy, cog_bucket, tmp_path, clean,
                                                                         small_disk):
    events = []
    for i in range(2):
        Job(_request(proxy.endpoint, cog_bucket, tmp_path / f"run{i}.tif", small_disk), progress=events.append).run()
        np.testing.assert_array_equal(_pixels(tmp_path / f"run{i}.tif"), clean)
    assert any("is full" in e.message for e in events), [e.message for e in events if e.message]
    assert not [p for p in small_disk.rglob(".*") if p.is_file()]
    for p in small_disk.rglob("*.tif"):  # whatever was published is whole
        with rasterio.open(p) as ds:
            ds.read()


def test_a_cache_smaller_than_the_area_works_every_time(proxy, cog_bucket, tmp_path, clean):
    cache = tmp_path / "cache"
    for i in range(3):
        events = []
        Job(_request(proxy.endpoint, cog_bucket, tmp_path / f"run{i}.tif", cache, cache_limit=200_000),
            progress=events.append).run()
        np.testing.assert_array_equal(_pixels(tmp_path / f"run{i}.tif"), clean)
        assert any("exceed the area cache's limit" in e.message for e in events)
        assert sum(p.stat().st_size for p in cache.rglob("*") if p.is_file()) <= 200_000


def test_cancel_on_a_stalled_server_returns_within_two_seconds(proxy, cog_bucket, tmp_path, monkeypatch):
    monkeypatch.setenv("S2DESKTOP_HTTP_TIMEOUT", "30")
    proxy.add("stall", span=TILE_DATA, rate=60)
    token = CancelToken()
    outcome = {}

    def run():
        try:
            Job(_request(proxy.endpoint, cog_bucket, tmp_path / "out.tif", tmp_path / "cache"), cancel=token).run()
        except CancelledError:
            outcome["cancelled"] = time.monotonic()

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    deadline = time.monotonic() + 30
    while proxy.injected["stall"] == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proxy.injected["stall"], "no tile range was requested"
    time.sleep(0.5)
    t0 = time.monotonic()
    token.set()
    worker.join(5)
    assert "cancelled" in outcome and outcome["cancelled"] - t0 < 2.0
    assert not (tmp_path / "out.tif").exists()
    assert not [p for p in (tmp_path / "cache").rglob(".*") if p.is_file()]


def test_the_plain_http_endpoint_is_said_once(proxy, cog_bucket, tmp_path):
    events = []
    Job(_request(proxy.endpoint, cog_bucket, tmp_path / "out.tif", tmp_path / "cache"), progress=events.append).run()
    assert sum("is plain HTTP" in e.message for e in events) == 1


def _cli(proxy, bucket, tmp_path, *extra) -> subprocess.Popen:
    import os
    import sys

    env = {**os.environ, "S2DESKTOP_HTTP_TIMEOUT": "30", "PYTHONPATH": str(REPO)}
    lo, la, hi, ha = BOX.bounds
    argv = [sys.executable, "-m", "s2desktop", "composite", f"--bbox={lo},{la},{hi},{ha}", "--source", "cogs",
            "--endpoint-url", proxy.endpoint, "--bucket", bucket, "--start", str(DATES[0]), "--end",
            str(DATES[-1]), "--resolution", "100", "--workers", "0", "-o", str(tmp_path / "out.tif"), *extra]
    return subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=tmp_path)


def _leftovers(tmp_path) -> list:
    return [p for p in tmp_path.rglob("*") if p.is_file() and (p.name.startswith(".") or p.suffix == ".part")]


@pytest.mark.parametrize("presses", [1, 2])
def test_ctrl_c_on_a_stalled_server_exits_130_at_once_without_a_traceback(proxy, cog_bucket, tmp_path, presses):
    proxy.add("stall", span=TILE_DATA, rate=60)
    proc = _cli(proxy, cog_bucket, tmp_path)
    deadline = time.monotonic() + 60
    while proxy.injected["stall"] == 0 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    assert proxy.injected["stall"], proc.communicate()
    t0 = time.monotonic()
    for _ in range(presses):  # two presses with no gap
        proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=10)
    assert time.monotonic() - t0 < 2.0
    assert proc.returncode == 130 and "Traceback" not in err and "cancelled" in err, err
    assert not (tmp_path / "out.tif").exists() and not _leftovers(tmp_path)


def test_ctrl_c_while_the_program_starts_exits_130_without_a_traceback(proxy, cog_bucket, tmp_path):
    proc = _cli(proxy, cog_bucket, tmp_path)
    time.sleep(0.3)  # importing
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=10)
    assert proc.returncode == 130 and "Traceback" not in err, err


def test_a_world_bbox_is_refused_at_once_without_a_request(proxy, cog_bucket, tmp_path, capsys):
    from s2desktop.cli import main

    for command in ("composite", "search"):
        t0 = time.monotonic()
        extra = ["-o", str(tmp_path / "w.tif")] if command == "composite" else []
        rc = main([command, "--bbox=-180,-90,180,90", "--source", "cogs", "--endpoint-url", proxy.endpoint,
                   "--bucket", cog_bucket, "--start", "2023-07-01", "--end", "2023-07-31", *extra])
        err = capsys.readouterr().err.strip()
        assert rc == 2 and time.monotonic() - t0 < 1.0
        assert err.count("\n") == 0 and "Sentinel-2 tiles, more than the 200" in err, err
    assert proxy.requests == []
