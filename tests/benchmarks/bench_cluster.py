"""Benchmark: the composite on a Dask LocalCluster (2 workers x 1 thread) against the local spawn pool, side by side.

    .venv/bin/python tests/benchmarks/bench_cluster.py               # 10980 px, 5 dates of local COGs
    .venv/bin/python tests/benchmarks/bench_cluster.py --size 4096   # quicker
    .venv/bin/python tests/benchmarks/bench_cluster.py --size 2048 --rounds 0 --memory-dates 10,40  # memory only

The inputs are bench_cog_inputs.py's (generated once into --cache). Each round runs, one after the other and in
this process, `composite(...)` on the pool (workers=2) and on a LocalCluster of 2 processes x 1 thread started
before the clock (as a running scheduler is), and prints both wall times, their ratio (target: the cluster's
overhead under 10 %), and the peak resident memory of each Dask worker over the job (ru_maxrss of the worker
process, read on the worker). The outputs are compared pixel for pixel.

Then the memory of a worker by the number of dates (--memory-dates, default 10 and 40; target: under 1 GiB
each): for each count, a fresh LocalCluster of 2 x 1 thread (ru_maxrss is a process's lifetime peak) composites
that many dates, and each worker's peak resident memory is printed beside the plan's figure for a worker
(`estimate`, what `--dry-run` prints) and the worker's resident memory before the job (Python, numpy, rasterio
and Dask loaded).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.benchmarks.bench_cog_inputs import make_inputs  # noqa: E402


def _cpu_self() -> float:
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _cpu_children() -> float:
    import resource

    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _peak_rss_mib() -> float:
    """This process's peak resident memory: VmHWM, the high-water mark of its own address space. Not ru_maxrss:
    on Linux that also keeps the peak of the image a process replaced at exec, so a worker spawned by a parent
    holding 4 GB (this script, after generating the inputs) reports 4 GB before it has done anything."""
    try:
        with open("/proc/self/status") as fh:
            return next(int(line.split()[1]) for line in fh if line.startswith("VmHWM:")) / 1024  # kB
    except (OSError, StopIteration):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _rss_mib() -> float:
    import psutil

    return psutil.Process().memory_info().rss / (1 << 20)


def _same(a: Path, b: Path) -> bool:
    import numpy as np
    import rasterio

    with rasterio.open(a) as x, rasterio.open(b) as y:
        return bool(np.array_equal(x.read(), y.read()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=10980)
    ap.add_argument("--dates", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--memory-dates", default="10,40", help="date counts of the memory runs ('' for none)")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/s2bench-cogs"))
    opts = ap.parse_args()
    if opts.rounds:
        side_by_side(opts)
    for dates in [int(v) for v in opts.memory_dates.split(",") if v.strip()]:
        worker_memory(opts, dates)


def worker_memory(opts, dates: int) -> None:
    """One composite of `dates` dates on a fresh LocalCluster: each worker's peak memory against the plan's."""
    from distributed import Client, LocalCluster

    from s2desktop.core.compositing import composite
    from s2desktop.core.compositing.estimate import estimate
    from s2desktop.core.compositing.plan import make_plan
    from s2desktop.core.stack import from_files

    stack = from_files(*make_inputs(opts.cache, opts.size, dates), mask="none")
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster, \
            Client(cluster) as client, tempfile.TemporaryDirectory(prefix="s2bench-cluster-") as tmp:
        planned = estimate(make_plan(stack, Path(tmp) / "plan.tif", workers=2)).worker_bytes / (1 << 20)
        before = sorted(client.run(_rss_mib).values())
        t = time.perf_counter()
        composite(stack, Path(tmp) / "dask.tif", workers=2, overwrite=True, scheduler=cluster.scheduler_address)
        took = time.perf_counter() - t
        peaks = sorted(client.run(_peak_rss_mib).values())
    print(f"{dates} dates of {opts.size}^2 x 3 bands on a LocalCluster (2 x 1 thread) in {took:.1f} s: peak "
          f"memory per worker {', '.join(f'{p:.0f}' for p in peaks)} MiB (before the job "
          f"{', '.join(f'{b:.0f}' for b in before)} MiB; the plan: {planned:.0f} MiB per worker); under 1 GiB: "
          f"{max(peaks) < 1024}", flush=True)


def side_by_side(opts) -> None:
    """The pool and the LocalCluster, round after round on the same inputs: wall and CPU time, identical pixels."""
    from distributed import Client, LocalCluster

    from s2desktop.core.compositing import composite
    from s2desktop.core.stack import from_files

    paths = make_inputs(opts.cache, opts.size, opts.dates)
    stack = from_files(*paths, mask="none")
    print(f"inputs: {opts.dates} dates x 3 bands of {opts.size}^2 COGs; 2 workers", flush=True)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster, \
            Client(cluster) as client, tempfile.TemporaryDirectory(prefix="s2bench-cluster-") as tmp:
        ratios = []
        for r in range(opts.rounds):
            t, cpu = time.perf_counter(), _cpu_self() + _cpu_children()
            composite(stack, Path(tmp) / "pool.tif", workers=2, overwrite=True)
            pool, pool_cpu = time.perf_counter() - t, _cpu_self() + _cpu_children() - cpu
            workers_cpu = sum(client.run(_cpu_self).values())
            t, cpu = time.perf_counter(), _cpu_self()
            composite(stack, Path(tmp) / "dask.tif", workers=2, overwrite=True, scheduler=cluster.scheduler_address)
            dask = time.perf_counter() - t
            dask_cpu = _cpu_self() - cpu + sum(client.run(_cpu_self).values()) - workers_cpu
            peaks = sorted(client.run(_peak_rss_mib).values())
            ratios.append(dask / pool)
            print(f"round {r + 1}: pool {pool:.1f} s ({pool_cpu:.1f} CPU-s), LocalCluster {dask:.1f} s "
                  f"({dask_cpu:.1f} CPU-s, this process's scheduler included): {dask / pool:.2f}x; peak memory "
                  f"per Dask worker {', '.join(f'{p:.0f}' for p in peaks)} MiB; identical: "
                  f"{_same(Path(tmp) / 'pool.tif', Path(tmp) / 'dask.tif')}", flush=True)
        print(f"LocalCluster / pool, median over {len(ratios)} round(s): {statistics.median(ratios):.2f} "
              "(target: <= 1.10)")


if __name__ == "__main__":
    main()
