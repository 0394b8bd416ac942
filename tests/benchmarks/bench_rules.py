"""Benchmark of the compositor's rules side by side: time per rule relative to the median (a script, not a test).

    .venv/bin/python tests/benchmarks/bench_rules.py                    # 4096 x 4096, 10 dates, 2 workers
    .venv/bin/python tests/benchmarks/bench_rules.py --size 2048 --rounds 1

Inputs are like bench_composite's (uint16 lossless JP2s, 1024 x 1024 tiles, a smooth field plus noise, a slanted
nodata edge per date), with each band of a date its own file (its own seed), so the medoid and the geometric
median see points that differ across the bands. They are generated once into --cache and reused.

Prints:
 (a) `s2desktop composite --method RULE` wall time for each rule, the rules run in turn round after round (so a
     busy neighbour on a shared machine slows all of them alike); per rule the best round, and its ratio to
     the median's best round, with the targets: quantile <= 1.05 x, medoid <= 2 x, geomedian <= 3 x the median
 (b) the rules' kernels alone on one dates x 1024 x 1024 window (3 bands, 15 % of the observations masked),
     relative to the median's kernel.
The machine may be shared: figures are noisy; run twice before drawing conclusions.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.benchmarks.bench_composite import run_cli  # noqa: E402

RULES = ("median", "quantile:25", "medoid", "geomedian")
TARGETS = {"quantile:25": 1.05, "medoid": 2.0, "geomedian": 3.0}


def make_inputs(cache: Path, size: int, dates: int) -> list[list[Path]]:
    """[band][date] JP2 files like bench_composite's, one per band and date."""
    import rasterio
    from rasterio.transform import from_origin

    cache.mkdir(parents=True, exist_ok=True)
    out = []
    for b, name in enumerate(("B04", "B03", "B02")):
        paths = []
        for d in range(dates):
            p = cache / f"33UUP_2023-07-{d + 1:02d}_0_{name}_{size}.jp2"
            paths.append(p)
            if p.exists():
                continue
            rng = np.random.default_rng(100 * b + d)
            yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
            field = 1500 - 300 * b + 800 * np.sin(6 * xx + d) * np.cos(4 * yy) + 300 * xx
            arr = (field + rng.integers(-256, 256, (size, size))).clip(1, 32767).astype(np.uint16)
            edge = np.arange(size)[None, :] > (size - 1 - (d * size // 16) - np.arange(size)[:, None] // 4)
            arr[edge] = 0
            res = 10 * 10980 / size
            tmp = p.with_suffix(".tmp.jp2")
            with rasterio.Env(GDAL_NUM_THREADS="ALL_CPUS"):
                with rasterio.open(tmp, "w", driver="JP2OpenJPEG", width=size, height=size, count=1, dtype="uint16",
                                   crs="EPSG:32633", transform=from_origin(300000, 5000040, res, res), QUALITY="100",
                                   REVERSIBLE="YES", BLOCKXSIZE="1024", BLOCKYSIZE="1024", NBITS="15") as dst:
                    dst.write(arr, 1)
            os.replace(tmp, p)
            print(f"  generated {p.name}", flush=True)
        out.append(paths)
    return out


def composites(files: list[list[Path]], workers: int, rounds: int, tmp: Path) -> dict[str, list[float]]:
    """Wall seconds of `s2desktop composite --method RULE` per rule, the rules in turn, `rounds` times."""
    red, green, blue = files
    common = ["--red", *map(str, red), "--green", *map(str, green), "--blue", *map(str, blue),
              "--workers", str(workers), "--mask", "none", "--offset", "0", "--overwrite"]
    times: dict[str, list[float]] = {r: [] for r in RULES}
    for i in range(rounds):
        for rule in RULES:
            wall, _rss = run_cli([*common, "--method", rule, "-o", str(tmp / "c.tif")])
            times[rule].append(wall)
            print(f"  round {i + 1}: {rule:12s} {wall:6.1f} s", flush=True)
    return times


def kernels(dates: int) -> dict[str, float]:
    """Best-of-3 seconds of each rule's kernel on one window."""
    from s2desktop.core.compositing.rules import reduce
    from s2desktop.core.methods import parse_method

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:1024, 0:1024] / 1024
    stacks = np.stack([np.stack([(1500 - 300 * b + 800 * np.sin(6 * xx + d) + rng.integers(-256, 256, xx.shape))
                                 .astype(np.uint16) for d in range(dates)]) for b in range(3)])
    valid = rng.random((dates, 1024, 1024)) > 0.15
    best = {}
    for rule in RULES:
        r = parse_method(rule)
        best[rule] = min(_timed(reduce, r, stacks, valid) for _ in range(3))
    return best


def _timed(f, *a) -> float:
    t = time.perf_counter()
    f(*a)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=4096)
    ap.add_argument("--dates", type=int, default=10)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--cache", type=Path, default=Path("/tmp/s2bench-rules"))
    ap.add_argument("--skip", default="", help="comma list of parts to skip: a,b")
    opts = ap.parse_args()
    skip = set(opts.skip.split(","))
    print(f"machine: {os.cpu_count()} cores; {opts.dates} dates x 3 bands of {opts.size}^2 uint16 JP2, 1024 "
          f"blocks; workers {opts.workers}; {opts.rounds} round(s)", flush=True)
    if "a" not in skip:
        files = make_inputs(opts.cache, opts.size, opts.dates)
        with tempfile.TemporaryDirectory(dir=opts.cache) as tmp:
            times = composites(files, opts.workers, opts.rounds, Path(tmp))
        base = min(times["median"])
        for rule in RULES:
            t = min(times[rule])
            target = f" (target <= {TARGETS[rule]:g} x)" if rule in TARGETS else ""
            print(f"(a) {rule:12s} composite {t:6.1f} s best of {len(times[rule])}: {t / base:.2f} x the "
                  f"median{target}", flush=True)
    if "b" not in skip:
        k = kernels(opts.dates)
        for rule in RULES:
            print(f"(b) {rule:12s} kernel {k[rule] * 1000:7.0f} ms on one {opts.dates} x 1024 x 1024 window: "
                  f"{k[rule] / k['median']:.1f} x the median's", flush=True)


if __name__ == "__main__":
    main()
