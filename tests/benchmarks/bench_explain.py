"""Benchmark of `explain` (the pixel inspector's work): one pixel of a 20-date composite of local files, read
again from its inputs (a script, not a test).

    .venv/bin/python tests/benchmarks/bench_explain.py                 # 2048 x 2048, 20 dates, 12 pixels
    .venv/bin/python tests/benchmarks/bench_explain.py --size 4096 --pixels 20

Inputs: bench_rules' uint16 lossless JPEG 2000 files (1024 x 1024 tiles, like Sentinel-2's; one file per band
and date), generated once into --cache, and the same pixels as tiled GeoTIFFs (512 px blocks, DEFLATE) made
from them with GDAL. Each set is composited once (files mode, the median); then `explain` runs on --pixels
random pixels, the pixel alone and with the 64 x 64 px chips the inspector shows, in turn, so a busy neighbour
slows both alike: a first click (nothing kept open: every tile it needs decoded) and the next click 3 px away
(the datasets kept open between explains still hold those tiles decoded).

Prints per input format the median and the slowest explain time (wall seconds), the median CPU seconds of the
process (what a loaded machine does not inflate as much), and the median's ratio to the target (1 s for 20 dates of local files). Reading one pixel of a JPEG 2000 decodes its whole 1024 px tile once
per band and date (60 tiles for 20 dates): that, not the rest, is the cost. The machine may be shared: run twice.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.benchmarks.bench_rules import make_inputs  # noqa: E402

TARGET = 1.0  # s, 20 dates of local files


def as_geotiffs(files: list[list[Path]], cache: Path) -> list[list[Path]]:
    """The same bands as tiled GeoTIFFs (512 px, DEFLATE), made once."""
    import rasterio
    from rasterio.shutil import copy as rio_copy

    out = []
    for paths in files:
        tifs = []
        for p in paths:
            t = cache / (p.stem + ".tif")
            if not t.exists():
                with rasterio.open(p) as src:
                    rio_copy(src, t, driver="GTiff", tiled=True, blockxsize=512, blockysize=512, compress="deflate")
            tifs.append(t)
        out.append(tifs)
    return out


def composite(files: list[list[Path]], out: Path, workers: int) -> Path:
    from s2desktop.core.pipeline import CompositeOptions, run_composite
    from s2desktop.core.stack import from_files

    stack = from_files(*files, offsets=0, mask="none")
    t = time.perf_counter()
    run_composite(stack, CompositeOptions(str(out), workers=workers, overwrite=True))
    print(f"  composite of {len(files[0])} dates into {out.name}: {time.perf_counter() - t:.1f} s", flush=True)
    return out


def time_explain(out: Path, pixels: list[tuple[int, int]], chips: bool) -> dict[str, list[tuple[float, float]]]:
    """{'first click': [(wall s, CPU s)], 'next click': [...]} per pixel: the first with nothing kept open
    (every tile decoded), the next 3 px away (the tiles still decoded in the kept datasets)."""
    from s2desktop.core.explain import explain, forget

    times: dict[str, list] = {"first click": [], "next click": []}
    for row, col in pixels:
        forget()
        for what, px in (("first click", (row, col)), ("next click", (max(0, row - 3), max(0, col - 3)))):
            t, c = time.perf_counter(), time.process_time()
            why = explain(out, pixel=px, chips=chips)
            times[what].append((time.perf_counter() - t, time.process_time() - c))
            assert why.recomputed == why.value, (px, why.value, why.recomputed)  # the explanation holds
    return times


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=2048)
    ap.add_argument("--dates", type=int, default=20)
    ap.add_argument("--pixels", type=int, default=12)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "s2desktop-bench-rules")
    args = ap.parse_args(argv)
    print(f"inputs: {args.dates} dates x 3 bands, {args.size} x {args.size} px, in {args.cache}", flush=True)
    jp2 = make_inputs(args.cache, args.size, args.dates)
    sets = {"JPEG 2000": jp2, "GeoTIFF": as_geotiffs(jp2, args.cache)}
    rng = np.random.default_rng(0)
    pixels = [tuple(int(v) for v in rng.integers(0, args.size, 2)) for _ in range(args.pixels)]
    with tempfile.TemporaryDirectory() as tmp:
        outs = {name: composite(files, Path(tmp) / f"{name.split()[0].lower()}.tif", args.workers)
                for name, files in sets.items()}
        results: dict[tuple[str, bool, str], list[tuple[float, float]]] = {}
        for chips in (False, True):  # the formats in turn, pixel by pixel
            for name, out in outs.items():
                for what, times in time_explain(out, pixels, chips).items():
                    results[(name, chips, what)] = times
    print(f"\nexplain, {args.dates} dates of local files, {args.pixels} pixels (target {TARGET:g} s), load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores:")
    print(f"  {'inputs':10}  {'chips':5}  {'click':11}  {'median s':>8}  {'slowest s':>9}  {'CPU s':>6}  "
          f"{'median / target':>15}")
    for (name, chips, what), times in results.items():
        med = statistics.median(t for t, _c in times)
        cpu = statistics.median(c for _t, c in times)
        print(f"  {name:10}  {'yes' if chips else 'no':5}  {what:11}  {med:8.3f}  {max(t for t, _c in times):9.3f}  {cpu:6.3f}  "
              f"{med / TARGET:15.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
