"""Benchmark: a full-tile composite of local COG inputs against their read floor, side by side in one run.

    .venv/bin/python tests/benchmarks/bench_cog_inputs.py               # 10980 px, 5 dates x 3 bands
    .venv/bin/python tests/benchmarks/bench_cog_inputs.py --size 2048   # quick run while developing

Inputs are L2A scenes of tile 33UUP in the ``sentinel-cogs`` layout, written by the archive writer like the real
bucket (DEFLATE, predictor 2, 1024 px blocks, internal overviews, baseline 05.09 so the DN offset applies): a
smooth field plus noise (~9 bits of entropy per pixel, like real texture) and a slanted nodata edge that differs
per date. They are generated once into --cache (default /tmp/s2bench-cogs, reused across runs).

Each round measures, one after the other:
 (a) read floor: wall time to read the 15 files once, window by window (their 1024 px blocks), on a pool of all
     cores, no compute, no write (the pool is started before the clock starts)
 (b) `s2desktop composite --red ... --green ... --blue ...` wall time (the whole CLI process), and when its
     phases ended (windows, overviews, COG copy) from its progress lines
and prints (b)/(a) per round and the median over the rounds, with the target (b) <= 1.3 x (a). Each also gets
its CPU seconds (all its processes, start-up included; for (a) the pool's start too): on a shared machine the
wall times swing with the others' load, the CPU ratio much less. With --also DIR the composite of another
checkout (e.g. the code before a change) is timed in the same rounds against the same floor.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.benchmarks.bench_composite import decode_floor  # noqa: E402

TILE = "33UUP"
BANDS = ("B04", "B03", "B02")  # red, green, blue


def make_inputs(cache: Path, size: int, dates: int) -> list[list[Path]]:
    """-> paths[band][date] of the cached scenes (written once; a scene is complete when its metadata is)."""
    from s2desktop.core import archive, layouts

    root = cache / f"cogs-{size}"
    paths: list[list[Path]] = [[] for _ in BANDS]
    for d in range(dates):
        date = dt.date(2023, 7, 1) + dt.timedelta(days=3 * d)  # the same dates as before up to 11; 40 fit
        folder = root / archive.scene_prefix("cogs", TILE, date)
        if not (folder / layouts.METADATA_NAMES["cogs"]).exists():
            _write_scene(root, size, d, date)
        for b, band in enumerate(BANDS):
            paths[b].append(folder / layouts.band_relpath("cogs", band))
    return paths


def _write_scene(root: Path, size: int, d: int, date: dt.date) -> None:
    import numpy as np
    from affine import Affine
    from rasterio.env import Env

    from s2desktop.core import archive, layouts, tiles

    t0 = time.perf_counter()
    f = tiles.footprint(TILE)
    transform = Affine(109800 / size, 0, f.utm_bounds[0], 0, -109800 / size, f.utm_bounds[3])
    rng = np.random.default_rng(d)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    field = 2500 + 800 * np.sin(6 * xx + d) * np.cos(4 * yy) + 300 * xx
    del xx, yy
    edge = np.arange(size)[None, :] > (size - 1 - (d * size // 8) - np.arange(size)[:, None] // 4)
    bands = {}
    for i, band in enumerate(BANDS):
        arr = (field + 200 * i + rng.integers(-256, 256, (size, size))).clip(1, 32767).astype(np.uint16)
        arr[edge] = 0
        bands[band] = arr
    del field
    with Env(GDAL_NUM_THREADS="ALL_CPUS"):
        archive.write_scene(root, "cogs", TILE, date, 0, bands, crs=f.epsg, transform=transform, baseline="05.09")
    folder = root / archive.scene_prefix("cogs", TILE, date)
    mib = sum((folder / layouts.band_relpath("cogs", b)).stat().st_size for b in BANDS) / 2**20
    print(f"  generated scene {d + 1} ({mib:.0f} MiB of bands) in {time.perf_counter() - t0:.0f} s", flush=True)


def run_composite(args: list[str], repo: Path = REPO) -> tuple[float, dict[str, float]]:
    """Run `s2desktop composite ...` of the checkout `repo` -> (wall seconds, {phase: seconds from the start when
    it began})."""
    env = dict(os.environ, PYTHONPATH=str(repo))
    t = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "s2desktop", "composite", *args], env=env, cwd=repo,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # -m: cwd comes first
    phases: dict[str, float] = {}
    for line in proc.stderr:  # "composite: <phase message> (100%)" when the windows are done
        if line.startswith("composite: ") and "/" not in line.split("(")[0]:
            phases.setdefault(line[len("composite: "):].rsplit(" (", 1)[0], time.perf_counter() - t)
    out, _ = proc.communicate()
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"composite failed ({proc.returncode})")
    return wall, phases


def _phase_line(wall: float, phases: dict[str, float]) -> str:
    marks = sorted(phases.items(), key=lambda kv: kv[1])
    parts, last, label = [], 0.0, "start + windows"
    for name, t in marks:
        parts.append(f"{label} {t - last:.1f} s")
        last, label = t, name
    parts.append(f"{label} {wall - last:.1f} s")
    return "; ".join(parts)


def _children_cpu() -> float:
    """CPU seconds (user + system) of the child processes this one has waited for (Unix)."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _measured(fn, *args, **kwargs):
    """-> (fn's result, the CPU seconds of the processes it started and waited for)."""
    before = _children_cpu()
    result = fn(*args, **kwargs)
    return result, _children_cpu() - before


def _round(r: int, files: list[Path], args: list[str], opts) -> list[tuple[float, float]]:
    """One round: the floor, then each composite. -> [(wall ratio, CPU ratio, ratio of the time up to the raw
    file)] per composite, to the floor."""
    floor, floor_cpu = _measured(decode_floor, files, opts.workers)
    print(f"round {r + 1}: (a) read floor {floor:.1f} s wall, {floor_cpu:.1f} CPU-s ({len(files)} files once)",
          flush=True)
    ratios = []
    for label, repo in (("(b) composite", REPO), (str(opts.also), opts.also)):
        if repo is None:
            continue
        out = Path(args[args.index("-o") + 1])
        (wall, phases), cpu = _measured(run_composite, args, repo=repo)
        for p in out.parent.glob(f"{out.stem}*"):  # and its count and record: here, not by the next run's
            p.unlink()  # rename over it (freeing 600 MB of a file is not compositing)
        raw = phases.get("building overviews", wall)  # the composite up to the raw file: before its COG is written
        ratios.append((wall / floor, cpu / floor_cpu, raw / floor))
        print(f"         {label}: {wall:.1f} s wall, {cpu:.1f} CPU-s ({_phase_line(wall, phases)}); "
              f"/(a): wall {wall / floor:.2f}, CPU {cpu / floor_cpu:.2f}, up to the raw file {raw / floor:.2f}",
              flush=True)
    return ratios


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=10980)
    ap.add_argument("--dates", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=2, help="floor + composite pairs (default 2)")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/s2bench-cogs"))
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--compress", default="zstd", choices=("zstd", "deflate"))
    ap.add_argument("--also", type=Path, metavar="DIR",
                    help="also time the composite of another checkout (e.g. the code before a change) each round")
    opts = ap.parse_args()
    print(f"machine: {os.cpu_count()} cores; inputs {opts.dates} dates x 3 bands of {opts.size}^2 uint16 COGs "
          f"(DEFLATE, predictor 2, 1024 blocks, overviews); workers {opts.workers}", flush=True)
    paths = make_inputs(opts.cache, opts.size, opts.dates)
    files = [p for band in paths for p in band]
    with tempfile.TemporaryDirectory(dir=opts.cache) as tmp:
        args = ["--red", *map(str, paths[0]), "--green", *map(str, paths[1]), "--blue", *map(str, paths[2]),
                "--workers", str(opts.workers), "--mask", "none", "--compress", opts.compress,
                "-o", str(Path(tmp) / "c.tif")]
        rounds = [_round(r, files, args, opts) for r in range(opts.rounds)]
    for i, label in enumerate(["(b)/(a)", f"{opts.also}/(a)"][: len(rounds[0])]):
        wall = statistics.median(x[i][0] for x in rounds)
        cpu = statistics.median(x[i][1] for x in rounds)
        raw = statistics.median(x[i][2] for x in rounds)
        print(f"{label} median over {len(rounds)} round(s): wall {wall:.2f}, CPU {cpu:.2f} (target: wall <= 1.3); "
              f"start to the raw file (before overviews and the COG copy) {raw:.2f}")


if __name__ == "__main__":
    main()
