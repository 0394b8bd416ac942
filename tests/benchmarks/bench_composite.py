"""Benchmark of the compositor on synthetic full-size Sentinel-2-like inputs (a script that prints, not a test).

    .venv/bin/python tests/benchmarks/bench_composite.py              # 10980 x 10980, 5 dates x 3 bands
    .venv/bin/python tests/benchmarks/bench_composite.py --size 2048  # quick run while developing

Inputs are like real S2 10 m JP2s: uint16, lossless OpenJPEG, 1024 x 1024 tiles, reduced-resolution levels,
~9 bits of entropy per pixel (a smooth field plus noise, like real texture) and a slanted nodata edge that
differs per date. Five distinct date files are generated once into --cache (default /tmp/s2bench, reused across
runs) and used for all three bands (each band opens them as separate datasets, so every band decodes them).

Prints:
 (a) decode floor: wall time to read every input once (all blocks, pool of all cores, no compute, no write)
 (b) `s2desktop composite` wall time and peak RSS of its whole process tree (sampled every 50 ms)
 (c) the same with --scale 4
 (d) the median kernel against np.nanmedian on one 5 x 1024 x 1024 window
with the targets: (b) <= 1.15 x (a), peak RSS <= 1.5 GiB, (c) >= 5x faster than (b), (d) >= 3x faster.
The machine may be shared: figures are noisy; run twice before drawing conclusions.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))


def make_inputs(cache: Path, size: int, dates: int) -> list[Path]:
    import rasterio
    from rasterio.transform import from_origin

    cache.mkdir(parents=True, exist_ok=True)
    paths = []
    for d in range(dates):
        p = cache / f"33UUP_2023-07-{d + 1:02d}_0_B04_{size}.jp2"
        paths.append(p)
        if p.exists():
            continue
        t = time.perf_counter()
        rng = np.random.default_rng(d)
        yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
        field = 1500 + 800 * np.sin(6 * xx + d) * np.cos(4 * yy) + 300 * xx
        arr = (field + rng.integers(-256, 256, (size, size))).clip(1, 32767).astype(np.uint16)
        del field, xx
        edge = np.arange(size)[None, :] > (size - 1 - (d * size // 8) - np.arange(size)[:, None] // 4)
        arr[edge] = 0
        profile = dict(driver="JP2OpenJPEG", width=size, height=size, count=1, dtype="uint16",
                       crs="EPSG:32633", transform=from_origin(300000, 5000040, 10 * 10980 / size, 10 * 10980 / size))
        tmp = p.with_suffix(".tmp.jp2")
        with rasterio.Env(GDAL_NUM_THREADS="ALL_CPUS"):
            with rasterio.open(tmp, "w", QUALITY="100", REVERSIBLE="YES", BLOCKXSIZE="1024", BLOCKYSIZE="1024",
                               NBITS="15", **profile) as dst:
                dst.write(arr, 1)
        os.replace(tmp, p)
        print(f"  generated {p.name} ({p.stat().st_size / 2**20:.0f} MiB) in {time.perf_counter() - t:.0f} s",
              flush=True)
    return paths


_DS = {}


def _init_reader(paths, threads):
    import rasterio

    env = rasterio.Env(GDAL_CACHEMAX=64, GDAL_NUM_THREADS=str(threads))
    env.__enter__()
    _DS["env"] = env
    _DS["ds"] = [rasterio.open(p) for p in paths]


def _read_window(task):
    from rasterio.windows import Window

    i, r, c, h, w = task
    a = _DS["ds"][i].read(1, window=Window(c, r, w, h))
    return int(a[0, 0])


def decode_floor(files: list[Path], workers: int) -> float:
    import rasterio

    with rasterio.open(files[0]) as ds:
        H, W = ds.height, ds.width
        bh, bw = ds.block_shapes[0]
    tasks = [(i, r, c, min(bh, H - r), min(bw, W - c))
             for r in range(0, H, bh) for c in range(0, W, bw) for i in range(len(files))]
    ctx = multiprocessing.get_context("spawn")
    threads = max(1, (os.cpu_count() or 1) // workers)
    with cf.ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_reader,
                                initargs=([str(f) for f in files], threads)) as pool:
        list(pool.map(_read_window, tasks[: workers]))  # warm the pool up (spawn + imports + opens)
        t = time.perf_counter()
        list(pool.map(_read_window, tasks, chunksize=1))
        return time.perf_counter() - t


def run_cli(args: list[str]) -> tuple[float, float]:
    """Run `s2desktop composite ...`; -> (wall seconds, peak RSS of the process tree in bytes)."""
    import psutil

    env = dict(os.environ, PYTHONPATH=str(REPO))
    t = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "s2desktop", "composite", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = 0
    ps = psutil.Process(proc.pid)
    while proc.poll() is None:
        total = 0
        try:
            for p in [ps, *ps.children(recursive=True)]:
                try:
                    total += p.memory_info().rss
                except psutil.Error:
                    pass
        except psutil.Error:
            pass
        peak = max(peak, total)
        time.sleep(0.05)
    wall = time.perf_counter() - t
    out, err = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"composite failed ({proc.returncode}): {err.strip().splitlines()[-1:]}")
    return wall, peak


def kernel_vs_nanmedian(dates: int = 5) -> tuple[float, float]:
    from s2desktop.core.compositing.rules import median_stack, reference_median

    rng = np.random.default_rng(0)
    s = rng.integers(1, 10000, (dates, 1024, 1024)).astype(np.uint16)
    s[rng.random(s.shape) < 0.15] = 0
    s[:, :, :100] = 0
    assert (median_stack(s) == reference_median(s)).all()
    best_k = min(_timed(median_stack, s) for _ in range(3))
    best_n = min(_timed(reference_median, s) for _ in range(2))
    return best_k, best_n


def _timed(f, *a) -> float:
    t = time.perf_counter()
    f(*a)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=10980)
    ap.add_argument("--dates", type=int, default=5)
    ap.add_argument("--cache", type=Path, default=Path("/tmp/s2bench"))
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--skip", default="", help="comma list of parts to skip: a,b,c,d")
    opts = ap.parse_args()
    skip = set(opts.skip.split(","))
    print(f"machine: {os.cpu_count()} cores; inputs {opts.dates} dates x 3 bands of {opts.size}^2 uint16 JP2, "
          f"1024 blocks; workers {opts.workers}", flush=True)
    files = make_inputs(opts.cache, opts.size, opts.dates)
    inputs = files * 3
    floor = comp = comp4 = None
    if "a" not in skip:
        floor = decode_floor(inputs, opts.workers)
        print(f"(a) decode floor: {floor:.1f} s to read {len(inputs)} inputs once", flush=True)
    with tempfile.TemporaryDirectory(dir=opts.cache) as tmp:
        common = ["--red", *map(str, files), "--green", *map(str, files), "--blue", *map(str, files),
                  "--workers", str(opts.workers), "--mask", "none", "--offset", "0"]
        if "b" not in skip:
            comp, rss = run_cli([*common, "-o", str(Path(tmp) / "c1.tif")])
            line = f"(b) composite: {comp:.1f} s wall, peak RSS {rss / 2**30:.2f} GiB (target <= 1.5 GiB)"
            if floor:
                line += f"; {comp / floor:.2f} x the decode floor (target <= 1.15)"
            print(line, flush=True)
        if "c" not in skip:
            comp4, rss4 = run_cli([*common, "--scale", "4", "-o", str(Path(tmp) / "c4.tif")])
            line = f"(c) composite --scale 4: {comp4:.1f} s wall, peak RSS {rss4 / 2**30:.2f} GiB"
            if comp:
                line += f"; {comp / comp4:.1f}x faster than (b) (target >= 5x)"
            print(line, flush=True)
    if "d" not in skip:
        k, n = kernel_vs_nanmedian(opts.dates)
        print(f"(d) median kernel {k * 1000:.0f} ms vs np.nanmedian {n * 1000:.0f} ms on one {opts.dates} x "
              f"1024 x 1024 window: {n / k:.1f}x faster (target >= 3x)", flush=True)


if __name__ == "__main__":
    main()
