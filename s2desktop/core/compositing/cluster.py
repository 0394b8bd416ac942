"""The windows on a Dask cluster (`dask.distributed`), the other executor beside the local spawn pool.

    scheduler="tcp://HOST:8786"   a running scheduler (its workers need s2desktop and read the same inputs)
    scheduler="local"             a LocalCluster of `workers` processes x 1 thread, started and closed here

A window task is a plain value and its function pure (same task, same tiles), so the cluster reruns the windows
of a worker lost mid-job elsewhere by itself. Tasks are submitted with a bounded number in flight (2 per worker
thread) under keys unique to this job; their tiles come back as each finishes, in the order they finish, and go
to `on_result` like the pool's. Cancel, an error or Ctrl-C cancels every task of the job still on the cluster
(running ones end with their window: a thread cannot be stopped) and closes the client, and a LocalCluster.

Dask is optional (`pip install 's2desktop[dask]'`); without it a scheduler is refused in one line.
"""

from __future__ import annotations

import os
import time
import uuid
from typing import Any, Callable, Iterable

from s2desktop.core.compositing.pool import CANCELLED, Feed
from s2desktop.core.errors import InvalidInputError, RasterError, S2Error
from s2desktop.core.progress import check_cancel

ENV_SCHEDULER = "DASK_SCHEDULER_ADDRESS"
INSTALL = "pip install 's2desktop[dask]'"
_IN_FLIGHT_PER_THREAD = 2
_CONNECT_TIMEOUT = "10s"


def scheduler_from_env(given: str | None) -> str | None:
    """What a front end runs on: the scheduler given, else $DASK_SCHEDULER_ADDRESS, else None (the pool)."""
    return given or os.environ.get(ENV_SCHEDULER) or None


def check_scheduler(value: str | None) -> str | None:
    """The scheduler as the plan keeps it ('local', an address, or None: the local pool); InvalidInputError in
    one line for a malformed one or when Dask is not installed."""
    if value is None or not str(value).strip():
        return None
    value = str(value).strip()
    if value != "local" and "://" not in value:
        raise InvalidInputError(f"scheduler {value!r}: give 'local' or an address such as tcp://HOST:8786")
    check_dask()
    return value


def check_dask() -> None:
    """InvalidInputError in one line when dask.distributed is not installed: looked up, not imported (the
    window checks a scheduler as it is typed, on its GUI thread; importing distributed takes about a second)."""
    import importlib.util

    if importlib.util.find_spec("distributed") is None:
        raise InvalidInputError(f"a Dask scheduler needs dask.distributed: {INSTALL}")


def run_on_cluster(tasks: Iterable, scheduler: str, fn: Callable, args: tuple, on_result: Callable[[Any], None],
                   cancel, workers: int, arrivals=None) -> None:
    """Run `fn(task, *args)` for every task on the cluster, each once its inputs are in (`pool.Feed`);
    `on_result(result)` in this thread as each finishes. workers: the LocalCluster's processes (scheduler 'local'). Raises S2Error subclasses
    (CancelledError when cancelled); nothing of the job is left on the cluster when this returns."""
    check_dask()
    from distributed import Client, LocalCluster

    cluster = None
    try:
        if scheduler == "local":
            cluster = LocalCluster(n_workers=max(1, workers), threads_per_worker=1, processes=True,
                                   dashboard_address=":0")
        client = _connect(Client, cluster or scheduler)
        try:
            _submit_all(client, Feed(tasks, arrivals), fn, args, on_result, cancel)
        finally:
            client.close()
    finally:
        if cluster is not None:
            cluster.close()


_AGAIN = object()
_GATHER_ATTEMPTS = 20  # a window's tiles lost on their way back this many times: the job fails


def _gathered(fut, attempts: dict):
    """A finished window's tiles; `_AGAIN` when they were lost with their worker before they came back (the
    cluster computes them again: the window's own failure is the only error status); its failure as an S2Error
    with a one-line message."""
    try:
        return fut.result()
    except S2Error:
        raise
    except Exception as exc:
        attempts[fut.key] = attempts.get(fut.key, 0) + 1
        if fut.status not in ("error", "cancelled") and attempts[fut.key] < _GATHER_ATTEMPTS:
            time.sleep(0.1)  # the client learns of the loss, then waits on the window again
            return _AGAIN
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise RasterError(f"compositing failed: {type(exc).__name__}: {first}") from None


def _connect(Client, target):
    try:
        return Client(target, timeout=_CONNECT_TIMEOUT)
    except (OSError, TimeoutError) as exc:
        raise RasterError(f"cannot reach the Dask scheduler at {target}: {str(exc).splitlines()[0]}") from None


def _submit_all(client, feed: Feed, fn: Callable, args: tuple, on_result, cancel) -> None:
    """Every task with at most 2 per worker thread in flight; results as they finish; on any exit but the
    normal one the job's futures are cancelled on the cluster."""
    from distributed import wait

    job = uuid.uuid4().hex[:8]
    limit = max(2, _IN_FLIGHT_PER_THREAD * sum(client.nthreads().values()))
    pending: set = set()
    attempts: dict = {}
    clean = False
    try:
        while True:
            check_cancel(cancel, CANCELLED)
            while len(pending) < limit and (task := feed.next()) is not None:
                pending.add(client.submit(fn, task, *args, key=f"s2window-{job}-{task.index}", pure=False))
            if not pending:
                if not feed:
                    break
                feed.wait()
                continue
            try:
                done, pending = wait(pending, timeout=0.1, return_when="FIRST_COMPLETED")
            except TimeoutError:
                continue
            pending = set(pending)
            for fut in done:
                result = _gathered(fut, attempts)
                if result is _AGAIN:
                    pending.add(fut)
                else:
                    on_result(result)
        clean = True
    finally:
        if not clean and pending:
            client.cancel(list(pending), force=True)
