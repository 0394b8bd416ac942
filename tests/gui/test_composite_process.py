"""The window's composite process entry (`gui.composite_process.run`), in a real spawned process: it runs the
job's composite step and speaks the core's event dataclasses on its queue; killed or terminated, it leaves no
workers and no files."""

from __future__ import annotations

import multiprocessing
import queue
import time
from dataclasses import replace

import psutil
import pytest

from s2desktop.core.pipeline import CompositeOptions
from s2desktop.core.progress import Cancelled, Failed, Finished, Progress
from s2desktop.core.stack import RasterRef, Stack
from s2desktop.gui.composite_process import run
from tests.fixtures_gui import inputs_of


def _start(inputs, options):
    ctx = multiprocessing.get_context("spawn")
    q, ev = ctx.Queue(), ctx.Event()
    proc = ctx.Process(target=run, args=(q, ev, inputs, options), daemon=False)
    proc.start()
    return proc, q, ev


def _drain(q, until_terminal: bool = True, timeout: float = 60) -> list:
    msgs = []
    while True:
        try:
            msg = q.get(timeout=timeout if until_terminal else 1)
        except queue.Empty:
            return msgs
        msgs.append(msg)
        if until_terminal and isinstance(msg, (Finished, Failed, Cancelled)):
            return msgs


def test_the_process_sends_progress_events_then_finished(raster_stack, tmp_path):
    st = raster_stack(dates=3)
    proc, q, _ev = _start(inputs_of(st), CompositeOptions(str(tmp_path / "gui.tif"), workers=1))
    msgs = _drain(q)
    proc.join(30)
    assert proc.exitcode == 0
    assert msgs[-1] == Finished(str(tmp_path / "gui.tif")) and (tmp_path / "gui.tif").is_file()
    events = msgs[:-1]
    assert events and all(isinstance(m, Progress) and m.stage == "composite" for m in events)
    assert events[-1].items_done == events[-1].items_total > 0


def test_errors_and_cancel_come_back_as_events(raster_stack, tmp_path):
    st = raster_stack(dates=2)
    good = inputs_of(st)
    first = good.observations[0]
    gone = replace(first, rasters={**first.rasters, "B03": RasterRef(str(tmp_path / "gone_B03.tif"), "B03")})
    bad = Stack((gone,) + good.observations[1:])
    proc, q, _ev = _start(bad, CompositeOptions(str(tmp_path / "o.tif"), workers=0))
    (failed,) = [m for m in _drain(q) if not isinstance(m, Progress)]
    proc.join(30)
    assert isinstance(failed, Failed) and "gone_B03.tif: no such file" in failed.message
    assert "\n" not in failed.message and "Traceback" in failed.details
    proc, q, ev = _start(good, CompositeOptions(str(tmp_path / "o.tif"), workers=0))
    ev.set()
    assert isinstance(_drain(q)[-1], Cancelled)
    proc.join(30)
    assert not (tmp_path / "o.tif").exists()


def _start_with_pool(raster_stack, output):
    """A few-second composite on a pool of two."""
    st = raster_stack(dates=4, size=1536, block=256)
    return _start(inputs_of(st), CompositeOptions(str(output), workers=2, window_size=256))


def _wait_for_pool(proc) -> list:
    """The composite process's two pool workers, once both are up; skips the test if it finished first."""
    ps = psutil.Process(proc.pid)
    deadline = time.monotonic() + 30
    kids = []
    while time.monotonic() < deadline and proc.is_alive():
        kids = [k for k in ps.children(recursive=True) if "resource_tracker" not in " ".join(k.cmdline())]
        if len(kids) >= 2:
            break
        time.sleep(0.05)
    if not proc.is_alive():
        pytest.skip("the composite finished before it could be stopped")
    return kids


def test_pool_workers_exit_when_the_process_is_killed(raster_stack, tmp_path):
    """The composite process killed outright (kill -9): its pool workers do not linger as orphans."""
    proc, q, _ev = _start_with_pool(raster_stack, tmp_path / "gui.tif")
    assert isinstance(q.get(timeout=60), Progress)
    kids = _wait_for_pool(proc)
    proc.kill()
    proc.join(10)
    _gone, alive = psutil.wait_procs(kids, timeout=15)
    assert not alive


def test_terminated_process_cleans_up(raster_stack, tmp_path):
    """Process.terminate() (SIGTERM): no temporaries, no output, no workers, and a Cancelled event."""
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    proc, q, _ev = _start_with_pool(raster_stack, out_dir / "gui.tif")
    assert isinstance(q.get(timeout=60), Progress)
    kids = _wait_for_pool(proc)
    proc.terminate()
    proc.join(30)
    msgs = _drain(q, until_terminal=False)
    if msgs and isinstance(msgs[-1], Finished):
        pytest.skip("finished before the signal arrived")
    assert isinstance(msgs[-1], Cancelled)
    assert list(out_dir.iterdir()) == []
    _gone, alive = psutil.wait_procs(kids, timeout=15)
    assert not alive
