"""core.threads: the waiting thread hears a Ctrl-C taken by a worker thread, and stops the calls not yet run."""

import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from s2desktop.core.threads import WAKE_INTERVAL, map_in_slices


def test_results_come_back_in_order():
    with ThreadPoolExecutor(4) as pool:
        assert map_in_slices(pool, lambda x: (time.sleep(0.05 * (5 - x)), x * x)[1], range(5)) == [0, 1, 4, 9, 16]


def test_ctrl_c_taken_by_a_worker_thread_is_raised_in_the_caller_at_once():
    started = []

    def work(i):
        started.append(i)
        if i == 0:  # SIGINT to this worker thread: Python flags it for the main thread and carries on here
            signal.pthread_kill(threading.get_ident(), signal.SIGINT)
        time.sleep(3)
        return i

    with ThreadPoolExecutor(2) as pool:
        t0 = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            map_in_slices(pool, work, range(20))
        waited = time.monotonic() - t0
    assert waited < 1 + WAKE_INTERVAL, f"the Ctrl-C was raised after {waited:.1f} s"
    assert len(started) <= 4  # the calls that had not started never ran


def test_the_first_error_stops_the_rest():
    ran = []

    def work(i):
        ran.append(i)
        if i == 1:
            raise ValueError("listing 1 failed")
        time.sleep(0.2)
        return i

    with ThreadPoolExecutor(2) as pool, pytest.raises(ValueError, match="listing 1 failed"):
        map_in_slices(pool, work, range(50))
    assert len(ran) < 10
