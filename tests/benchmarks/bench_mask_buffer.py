"""Benchmark of the mask buffer side by side: a composite with --mask-buffer 0, 20 and 100 m (a script, not a test).

    .venv/bin/python tests/benchmarks/bench_mask_buffer.py                   # 2048 x 2048, 10 dates, 2 workers
    .venv/bin/python tests/benchmarks/bench_mask_buffer.py --size 1024 --rounds 1

Inputs: per date three 10 m bands (tiled GeoTIFFs, 512 px blocks, a smooth field plus noise) and a 20 m scene
classification with cloud blobs (~15 % of the pixels, classes 8, 9, 3), generated once into --cache.

Prints:
 (a) the composite's wall time per buffer, the buffers run in turn round after round (a busy neighbour slows all
     alike); per buffer the best round and its ratio to no buffer;
 (b) `qimasks.dilate` alone on one 1024 x 1024 window with its halo, against the plain (2r + 1)^2 shifted ORs.
The machine may be shared: figures are noisy; run twice before drawing conclusions.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

BUFFERS = (0, 20, 100)


def make_inputs(cache: Path, size: int, dates: int):
    """-> (red, green, blue, scl) path lists, written once."""
    import rasterio
    from rasterio.transform import from_origin

    cache.mkdir(parents=True, exist_ok=True)
    profile = dict(driver="GTiff", tiled=True, blockxsize=512, blockysize=512, compress="deflate", count=1,
                   crs="EPSG:32633")
    out = {k: [] for k in ("red", "green", "blue", "scl")}
    for d in range(dates):
        rng = np.random.default_rng(d)
        coarse = rng.random((size // 64 + 2, size // 64 + 2))
        field = np.kron(coarse, np.ones((64, 64)))[:size, :size]
        for i, band in enumerate(("red", "green", "blue")):
            path = cache / f"{band}{d}.tif"
            if not path.exists():
                data = (800 + 2000 * field + 300 * i + rng.integers(0, 100, (size, size))).astype(np.uint16)
                with rasterio.open(path, "w", width=size, height=size, dtype="uint16",
                                   transform=from_origin(300000, 5000000, 10, 10), **profile) as ds:
                    ds.write(data, 1)
            out[band].append(path)
        path = cache / f"scl{d}.tif"
        if not path.exists():
            half = size // 2
            blobs = np.kron(rng.random((half // 16 + 1, half // 16 + 1)), np.ones((16, 16)))[:half, :half]
            scl = np.full((half, half), 4, np.uint8)
            scl[blobs > 0.85] = 9
            scl[(blobs > 0.80) & (blobs <= 0.85)] = 8
            scl[(blobs > 0.77) & (blobs <= 0.80)] = 3
            with rasterio.open(path, "w", width=half, height=half, dtype="uint8",
                               transform=from_origin(300000, 5000000, 20, 20), **profile) as ds:
                ds.write(scl, 1)
        out["scl"].append(path)
    return out


def composite_times(inputs, workers: int, rounds: int, tmp: Path) -> dict[int, float]:
    from s2desktop.core.compositing import composite
    from s2desktop.core.stack import from_files

    stack = from_files(inputs["red"], inputs["green"], inputs["blue"], offsets=0, scl=inputs["scl"])
    best = {b: math.inf for b in BUFFERS}
    for r in range(rounds):
        for b in BUFFERS:
            out = tmp / f"c{b}_{r}.tif"
            t0 = time.perf_counter()
            composite(stack, out, workers=workers, mask_buffer=b)
            best[b] = min(best[b], time.perf_counter() - t0)
            out.unlink()
    return best


def plain_dilate(mask: np.ndarray, r: int) -> np.ndarray:
    """The (2r + 1)^2 shifted ORs of a disk: the reference the row-span dilation replaced."""
    out, (h, w) = mask.copy(), mask.shape
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            if (dx or dy) and dx * dx + dy * dy <= r * r:
                ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
                xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
                out[yd, xd] |= mask[ys, xs]
    return out


def kernel_times(repeat: int = 5) -> list[tuple[int, float, float]]:
    from s2desktop.core.qimasks import dilate

    rng = np.random.default_rng(0)
    rows = []
    for metres in (20, 100, 300):
        r = metres // 10
        mask = np.kron(rng.random((1024 // 16 + 3, 1024 // 16 + 3)) > 0.85, np.ones((16, 16), bool))
        mask = np.ascontiguousarray(mask[: 1024 + 2 * r, : 1024 + 2 * r])
        t_new = min(_timed(lambda: dilate(mask, metres, 10)) for _ in range(repeat))
        t_old = min(_timed(lambda: plain_dilate(mask, r)) for _ in range(repeat))
        assert (dilate(mask, metres, 10) == plain_dilate(mask, r)).all()
        rows.append((metres, t_new, t_old))
    return rows


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=2048)
    ap.add_argument("--dates", type=int, default=10)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "s2desktop-bench-mask-buffer")
    a = ap.parse_args()
    inputs = make_inputs(a.cache / f"{a.size}_{a.dates}", a.size, a.dates)
    with tempfile.TemporaryDirectory() as tmp:
        best = composite_times(inputs, a.workers, a.rounds, Path(tmp))
    print(f"(a) composite {a.size} x {a.size} px, {a.dates} dates, {a.workers} workers, best of {a.rounds}, "
          f"cores {os.cpu_count()}")
    for b, t in best.items():
        print(f"    --mask-buffer {b:>3} m  {t:6.2f} s  {t / best[0]:5.2f} x no buffer")
    print("(b) dilate one 1024 x 1024 window (+ halo): row spans vs (2r + 1)^2 shifted ORs")
    for metres, t_new, t_old in kernel_times():
        print(f"    {metres:>3} m ({metres // 10:>2} px)  {1000 * t_new:7.1f} ms  vs  {1000 * t_old:7.1f} ms"
              f"  ({t_old / t_new:4.1f} x)")


if __name__ == "__main__":
    main()
