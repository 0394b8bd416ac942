"""The window cache's bookkeeping: keys, entries that check themselves, least-recently-used trimming that never
removes what a run counted on, and leftovers of killed runs."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from s2desktop.core.windowcache import STALE_TEMP_S, WindowCache


def _entry(cache: WindowCache, name: str, size: int, age_s: float):
    path = cache.put(cache.key(name, "etag-1"), lambda tmp: tmp.write_bytes(name.encode()[:1] * size))
    t = time.time() - age_s
    os.utime(path, (t, t))
    return path


def test_an_entry_is_keyed_by_what_it_holds_and_its_etag(tmp_path):
    cache = WindowCache(tmp_path, limit=1000)
    assert cache.key("k.tif?w", "e1") != cache.key("k.tif?w", "e2")  # a changed object
    assert cache.key("k.tif?w", "e1") != cache.key("k.tif?v", "e1")  # another window
    assert cache.key("k.tif?w", None) is None  # no ETag: never cached
    assert WindowCache(tmp_path, limit=0).key("k.tif?w", "e1") is None  # limit 0: caching off
    assert cache.get(None) is None and cache.get(cache.key("k.tif?w", "e1")) is None


@pytest.mark.parametrize("damage", ["flip", "truncate", "empty"])
def test_a_damaged_entry_is_dropped_not_used(tmp_path, damage):
    cache = WindowCache(tmp_path, limit=10_000)
    key = cache.key("k.tif?w", "e1")
    path = cache.put(key, lambda tmp: tmp.write_bytes(bytes(range(256)) * 4))
    assert cache.get(key) == path
    data = bytearray(path.read_bytes())
    if damage == "flip":
        data[500] ^= 0x01
    path.write_bytes(bytes(data[:700] if damage == "truncate" else b"" if damage == "empty" else data))
    assert cache.get(key) is None  # a miss: fetched again, never read
    assert not path.exists() and cache.dropped == 1
    again = cache.put(key, lambda tmp: tmp.write_bytes(b"fresh"))
    assert cache.get(key) == again and again.read_bytes() == b"fresh"


def test_an_entry_appears_only_complete(tmp_path):
    cache = WindowCache(tmp_path, limit=10_000)
    key = cache.key("k.tif?w", "e1")

    def fails(tmp):
        tmp.write_bytes(b"half")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        cache.put(key, fails)
    assert cache.get(key) is None and not [p for p in tmp_path.rglob("*") if p.is_file()]  # nothing, not even a temp


def test_trim_removes_the_least_recently_used_first_and_a_hit_counts_as_a_use(tmp_path):
    cache = WindowCache(tmp_path, limit=250)
    old, middle, new = (_entry(cache, n, 100, age) for n, age in (("old", 300), ("middle", 200), ("new", 100)))
    assert cache.get(cache.key("old", "etag-1")) == old  # used just now: the youngest
    assert cache.trim() == 100
    assert old.exists() and not middle.exists() and new.exists()
    assert cache.trim(room=100) == 100  # room for 100 more bytes: one more goes, the least recently used
    assert old.exists() and not new.exists() and cache.size() == 100


def test_trim_never_removes_what_the_running_job_counted(tmp_path):
    cache = WindowCache(tmp_path, limit=150)
    counted = [_entry(cache, n, 100, age) for n, age in (("a", 300), ("b", 200))]
    other = _entry(cache, "c", 100, 400)
    cache.trim(room=100, keep=counted)
    assert all(p.exists() for p in counted) and not other.exists()  # over the limit, but not at the run's cost


def test_sweep_removes_what_killed_runs_left_half_written(tmp_path):
    cache = WindowCache(tmp_path, limit=10_000)
    kept = _entry(cache, "whole", 10, 0)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    ended = kept.with_name(f".x.tif.{dead.stdout.strip()}-1a2b3c4d.part")  # its process has ended
    old = kept.with_name(".y.tif.1-5678abcd.part")  # pid 1 is alive, but the file is more than an hour old
    live = kept.with_name(f".z.tif.{os.getppid()}-0000aaaa.part")  # a live process's, written now
    for p in (ended, old, live):
        p.write_bytes(b"half")
    t = time.time() - STALE_TEMP_S - 10
    os.utime(old, (t, t))
    cache.trim()
    assert kept.exists() and live.exists() and not old.exists()
    if os.name == "posix":
        assert not ended.exists()
    assert cache.size() == 10
