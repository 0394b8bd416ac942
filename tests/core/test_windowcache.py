"""The window cache's bookkeeping: keys, least-recently-used trimming, leftovers of killed runs."""

from __future__ import annotations

import os
import time

from s2desktop.core.windowcache import STALE_TEMP_S, WindowCache


def _entry(cache: WindowCache, name: str, size: int, age_s: float):
    path = cache.path(name, "etag-1")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    t = time.time() - age_s
    os.utime(path, (t, t))
    return path


def test_an_entry_is_keyed_by_what_it_holds_and_its_etag(tmp_path):
    cache = WindowCache(tmp_path, limit=1000)
    assert cache.path("/vsis3/b/k.tif?w", "e1") != cache.path("/vsis3/b/k.tif?w", "e2")  # a changed object
    assert cache.path("/vsis3/b/k.tif?w", "e1") != cache.path("/vsis3/b/k.tif?v", "e1")  # another window
    assert cache.path("/vsis3/b/k.tif?w", None) is None  # no ETag: never cached
    assert WindowCache(tmp_path, limit=0).path("/vsis3/b/k.tif?w", "e1") is None  # limit 0: caching off


def test_trim_removes_the_least_recently_used_first_and_a_hit_counts_as_a_use(tmp_path):
    cache = WindowCache(tmp_path, limit=250)
    old, middle, new = (_entry(cache, n, 100, age) for n, age in (("old", 300), ("middle", 200), ("new", 100)))
    assert cache.hit(old)  # used just now: the youngest
    assert cache.trim() == 100
    assert old.exists() and not middle.exists() and new.exists()
    assert cache.trim(room=100) == 100  # room for 100 more bytes: one more goes, the least recently used
    assert old.exists() and not new.exists() and cache.size() == 100


def test_trim_removes_what_a_killed_run_left_half_written(tmp_path):
    cache = WindowCache(tmp_path, limit=10_000)
    kept = _entry(cache, "whole", 10, 0)
    stale, fresh = kept.with_name(".stale.tif.1234.part"), kept.with_name(".fresh.tif.5678.part")
    for p in (stale, fresh):
        p.write_bytes(b"half")
    t = time.time() - STALE_TEMP_S - 10
    os.utime(stale, (t, t))
    cache.trim()
    assert kept.exists() and fresh.exists() and not stale.exists()  # a fresh one may be another run's, writing
    assert not cache.hit(stale) and cache.size() == 10

