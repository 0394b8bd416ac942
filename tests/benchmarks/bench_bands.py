"""Benchmark: a six-band composite (B02, B03, B04, B08 at 10 m; B11, B12 at 20 m) against the RGB one, per band,
side by side in one run (a script that prints, not a test).

    .venv/bin/python tests/benchmarks/bench_bands.py               # 10980 px, 5 dates (the inputs: minutes)
    .venv/bin/python tests/benchmarks/bench_bands.py --size 2048   # a quick run

The 10 m inputs are bench_composite's (lossless OpenJPEG, 1024 px tiles, ~9 bits of entropy, a nodata edge per
date; one file per date opened as a separate dataset per band, so every band decodes it); the 20 m ones are the
same kind at half the size (--block20: their JPEG 2000 tile size). Both composites run in this process's
compositor with the same workers, alternately, --repeat times each; the best of each is kept. Prints each
composite's wall time, its time per band, and the ratio six-band per band / RGB per band (the issue's target:
no more than 1).
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

from tests.benchmarks.bench_composite import make_inputs  # noqa: E402

TEN = ("B02", "B03", "B04", "B08")
TWENTY = ("B11", "B12")


def make_20m_inputs(cache: Path, size: int, dates: int, block: int) -> list[Path]:
    """Per date a 20 m band: the 10 m field at half the size (plus its own noise), same nodata edge."""
    import rasterio
    from rasterio.enums import Resampling

    out = []
    for p in make_inputs(cache, size, dates):
        q = cache / f"{p.stem}_20m_{block}.jp2"
        out.append(q)
        if q.exists():
            continue
        with rasterio.open(p) as src:
            half = src.read(1, out_shape=(size // 2, size // 2), resampling=Resampling.nearest)
            profile = dict(driver="JP2OpenJPEG", width=size // 2, height=size // 2, count=1, dtype="uint16",
                           crs=src.crs, transform=src.transform * src.transform.scale(2))
        noise = np.random.default_rng(size).integers(0, 64, half.shape).astype(np.uint16)
        half = np.where(half == 0, 0, half + noise).astype(np.uint16)
        tmp = q.with_suffix(".tmp.jp2")
        with rasterio.Env(GDAL_NUM_THREADS="ALL_CPUS"):
            with rasterio.open(tmp, "w", QUALITY="100", REVERSIBLE="YES", BLOCKXSIZE=str(block),
                               BLOCKYSIZE=str(block), NBITS="15", **profile) as dst:
                dst.write(half, 1)
        os.replace(tmp, q)
    return out


def stack_of(bands, ten: list[Path], twenty: list[Path]):
    from s2desktop.core.stack import Observation, RasterRef, Stack

    obs = []
    for d, (p10, p20) in enumerate(zip(ten, twenty)):
        rasters = {b: RasterRef(str(p20 if b in TWENTY else p10), b) for b in bands}
        obs.append(Observation(date=f"2023-07-{d + 1:02d}", rasters=rasters))
    return Stack(tuple(obs), tuple(bands))


def timed(stack, folder: Path, workers: int) -> float:
    from s2desktop.core.compositing import composite

    out = folder / f"{len(stack.bands)}.tif"
    t = time.perf_counter()
    composite(stack, out, workers=workers, overwrite=True)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=10980)
    ap.add_argument("--dates", type=int, default=5)
    ap.add_argument("--block20", type=int, default=1024, help="tile size of the 20 m JPEG 2000s (default 1024)")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/s2bench"))
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--repeat", type=int, default=2)
    opts = ap.parse_args()
    print(f"machine: {os.cpu_count()} cores; {opts.dates} dates, 10 m bands {opts.size} px (1024 tiles), 20 m "
          f"bands {opts.size // 2} px ({opts.block20} tiles); workers {opts.workers}", flush=True)
    ten = make_inputs(opts.cache, opts.size, opts.dates)
    twenty = make_20m_inputs(opts.cache, opts.size, opts.dates, opts.block20)
    rgb = stack_of(("B04", "B03", "B02"), ten, twenty)
    six = stack_of(TEN[:3] + ("B08",) + TWENTY, ten, twenty)
    best = {3: float("inf"), 6: float("inf")}
    with tempfile.TemporaryDirectory(dir=opts.cache) as tmp:
        for i in range(opts.repeat):
            for stack in (rgb, six) if i % 2 == 0 else (six, rgb):
                n = len(stack.bands)
                s = timed(stack, Path(tmp), opts.workers)
                best[n] = min(best[n], s)
                print(f"  run {i + 1}: {n} bands {s:.1f} s ({s / n:.2f} s a band)", flush=True)
    per3, per6 = best[3] / 3, best[6] / 6
    print(f"RGB (B04,B03,B02): {best[3]:.1f} s, {per3:.2f} s a band\n"
          f"six (B02,B03,B04,B08 + B11,B12 at 20 m): {best[6]:.1f} s, {per6:.2f} s a band\n"
          f"per band, six / RGB: {per6 / per3:.2f} (target <= 1)", flush=True)


if __name__ == "__main__":
    main()
