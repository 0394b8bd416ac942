"""What a window's preview pixels cost (a script, not a test): the window task with and without them, side by side.

    .venv/bin/python tests/benchmarks/bench_window_pixels.py [--rounds 20]

For a full 10980 px tile at 10 m (1024 px windows: the preview's level, 1/16, is one the windows cannot compute
exactly, so the task adds a strided copy) and a 2745 px quick preview (1/4: a level the windows hand back anyway)
it times `tiles.window_tiles` (and the strided copy alone) on one 1024 x 1024 window of 3 bands -- encoding its
tiles, the work the preview rides on -- with `preview_level` and without, interleaved round after round (a busy
neighbour slows both alike), and prints the best round of each, their ratio, and the preview's bytes per window
and per composite (what crosses the window's process queue).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from rasterio.windows import Window  # noqa: E402

from s2desktop.core.compositing.plan import _plan_windows  # noqa: E402
from s2desktop.core.compositing.tiles import Layer, Pyramid, preview_copy, window_tiles  # noqa: E402
from s2desktop.core.progress import PREVIEW_SIDE  # noqa: E402

LAYERS = (Layer("values", 3, "uint16", 0), Layer("count", 1, "uint8", None))


def case(name: str, size: int, scale: int, rounds: int) -> None:
    _step, shape, cells = _plan_windows(size, size, (1024, 1024), scale, 1024)
    pyramid = Pyramid.of(shape, [out for _src, out in cells], "ZSTD")
    level = pyramid.preview_level(PREVIEW_SIDE)
    out = next(o for _s, o in cells if o.width == o.height == max(o.width for _s, o in cells))
    rng = np.random.default_rng(0)
    h, w = int(out.height), int(out.width)
    values = (600 + 400 * rng.random((3, h, w))).astype(np.uint16)
    arrays = {LAYERS[0]: values, LAYERS[1]: np.full((1, h, w), 7, np.uint8)}
    best = {None: float("inf"), level: float("inf")}
    for _ in range(rounds):
        for lv in best:
            t0 = time.perf_counter()
            res = window_tiles(0, pyramid, out, arrays, preview_level=lv)
            best[lv] = min(best[lv], time.perf_counter() - t0)
    copy = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        preview_copy(values, out, level)
        copy = min(copy, time.perf_counter() - t0)
    found = res.preview_pixels(level)
    kind = found[3] if found else "-"
    extra = res.preview[3].nbytes if res.preview is not None else 0
    total = 3 * 2 * np.prod(pyramid.shape(level))
    print(f"{name}: output {shape[1]} x {shape[0]} px, {len(cells)} windows of {w} px; preview level {level} "
          f"(1/{2 ** level}, {kind}), {pyramid.shape(level)[1]} px a side")
    print(f"  window task: {best[None] * 1e3:.1f} ms without, {best[level] * 1e3:.1f} ms with the preview: "
          f"{best[level] / best[None]:.3f}x (the strided copy alone: {copy * 1e3:.3f} ms); the task hands back "
          f"{extra} bytes more ({extra / max(1, res.nbytes - extra):.2%} of its result); "
          f"{total / 2 ** 20:.1f} MiB of preview per composite")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=20)
    args = ap.parse_args(argv)
    case("full tile, 10 m", 10980, 1, args.rounds)
    case("quick preview, 1/4", 10980, 4, args.rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
