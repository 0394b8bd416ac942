"""The typed progress and cancel contract: events, throttling, rates, and cancelling one item or everything."""

from __future__ import annotations

import pickle
import threading
import time

import pytest

from s2desktop.core import progress as pg
from s2desktop.core.errors import CancelledError


def test_events_are_plain_picklable_dataclasses_with_a_fraction():
    ev = pg.Progress("download", 1, 4, 25, 100, file=pg.FileProgress("/x/red/a.jp2", 5, 10, pg.RUNNING))
    assert pickle.loads(pickle.dumps(ev)) == ev  # they cross the queue to the window's composite process
    assert ev.fraction == 0.25  # bytes win over items when the stage counts bytes
    assert pg.Progress("composite", 3, 4).fraction == 0.75
    assert pg.Progress("search").fraction == 0.0
    for terminal in (pg.Finished("/out.tif"), pg.Failed("boom", "tb"), pg.Cancelled()):
        assert pickle.loads(pickle.dumps(terminal)) == terminal


def test_cancel_token_cancels_one_item_or_all():
    token = pg.CancelToken()
    a, b = token.for_item("a"), token.for_item("b")
    assert not token.is_set() and not a.is_set()
    token.cancel_item("a")
    assert a.is_set() and not b.is_set() and not token.is_set()
    t0 = time.monotonic()
    assert a.wait(5) is True and time.monotonic() - t0 < 0.5  # returns at once when already cancelled
    assert b.wait(0.1) is False
    threading.Timer(0.1, token.set).start()
    assert b.wait(5) is True  # the whole job's cancel reaches every item
    with pytest.raises(CancelledError, match="stop"):
        pg.check_cancel(b, "stop")
    pg.check_cancel(None)
    assert pg.item_cancel(None, "x") is None
    ev = threading.Event()
    assert pg.item_cancel(ev, "x") is ev  # a plain Event cancels everything, items included


def test_throttle_passes_ends_of_stages_and_files_but_drops_bursts():
    seen: list = []
    throttle = pg.Throttle(seen.append, rate=2)
    for i in range(50):
        throttle(pg.Progress("composite", i, 100))
    assert len(seen) == 1  # the first; the rest came within half a second
    throttle(pg.Progress("composite", 100, 100))
    throttle(pg.Progress("download", file=pg.FileProgress("f", 3, 3, pg.DOWNLOADED)))
    throttle(pg.Progress("download", file=pg.FileProgress("g", 0, 3, pg.QUEUED)))
    assert [e.items_done for e in seen[-3:]][0] == 100 and len(seen) == 4


def test_rate_counts_transferred_bytes_not_files_found_on_disk():
    now = [0.0]
    rate = pg.Rate(window=5, clock=lambda: now[0])
    # 40 MB of files already there: done at once, not speed
    rate.update(pg.Progress("download", 1, 3, 40_000_000, 100_000_000,
                            file=pg.FileProgress("a", 40_000_000, 40_000_000, pg.SKIPPED)))
    for t in range(1, 6):  # then 2 MB/s
        now[0] = float(t)
        rate.update(pg.Progress("download", 1, 3, 40_000_000 + 2_000_000 * t, 100_000_000))
    assert rate.speed == pytest.approx(2_000_000)
    assert rate.seconds_left() == pytest.approx(50_000_000 / 2_000_000)


def test_rate_of_items_is_timed_from_the_start():
    now = [10.0]
    rate = pg.Rate(clock=lambda: now[0])
    rate.update(pg.Progress("composite", 0, 10))
    assert rate.seconds_left() is None  # no speed yet
    now[0] = 14.0
    rate.update(pg.Progress("composite", 2, 10))
    assert rate.speed == pytest.approx(0.5) and rate.seconds_left() == pytest.approx(16.0)
