"""What a composite will take, computed from its plan before any decoding (`composite --dry-run`).

The windows and their sizes come from the same planning as the job's (`plan._plan_windows`, `tiles.Pyramid`);
the memory of a worker is what `window._process_window` allocates for its largest window -- the stack of every
date and band, the validity, the rule's keys, the result and its encoded tiles -- plus GDAL's block cache
(`window.GDAL_CACHEMAX_MB`); the parent's is the overview levels it keeps as pixels (`Pyramid.pieces`) and the
windows in flight (a level larger than `cog.LEVEL_IN_MEMORY` counted at that: it is a file mapped into
memory, whose pages the system drops as it needs). The decoders' own buffers (OpenJPEG's for JPEG 2000) come on top.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from s2desktop.core.compositing.cog import LEVEL_IN_MEMORY
from s2desktop.core.compositing.plan import TARGET_WINDOW, CompositePlan, _layers, _plan_windows
from s2desktop.core.compositing.pool import _IN_FLIGHT_PER_WORKER
from s2desktop.core.compositing.tiles import TILE, Pyramid
from s2desktop.core.units import human_bytes

GDAL_CACHE = 64 << 20  # window.GDAL_CACHEMAX_MB (not imported: window imports the pool's process set-up)


@dataclass(frozen=True)
class CompositeEstimate:
    """A composite's size and cost, from its plan."""

    width: int
    height: int
    dates: int
    bands: int
    windows: int  # one task each
    window: tuple[int, int]  # the largest output window (h, w)
    workers: int
    levels: int  # full resolution + overviews
    tiled_levels: int  # of which the windows encode the tiles
    worker_bytes: int  # peak per worker process
    parent_bytes: int
    output_bytes: int  # uncompressed, every output and level

    def lines(self) -> list[str]:
        h, w = self.window
        in_flight = max(1, self.workers) * _IN_FLIGHT_PER_WORKER
        return [
            f"output: {self.width} x {self.height} px, {self.bands} band(s) from {self.dates} date(s), "
            f"{self.levels} level(s) ({self.levels - 1} overview(s)), {human_bytes(self.output_bytes)} before "
            "compression",
            f"windows: {self.windows} task(s) of up to {w} x {h} px, {in_flight} in flight on "
            f"{max(1, self.workers)} worker(s); the windows encode {self.tiled_levels} level(s), the parent "
            f"builds {self.levels - self.tiled_levels}",
            f"memory: {human_bytes(self.worker_bytes)} per worker (its largest window with every date, GDAL's "
            f"{GDAL_CACHE >> 20} MB block cache; a decoder's own buffers on top), "
            f"{human_bytes(self.parent_bytes)} in the parent",
        ]


def estimate(plan: CompositePlan) -> CompositeEstimate:
    """The estimate of a plan made from the inputs themselves."""
    return _estimate(plan.out_shape, [t.output for t in plan.tasks], plan.dates, plan.inputs.layers,
                     plan.inputs.pyramid, plan.workers)


def estimate_grid(shape: tuple[int, int], block: tuple[int, int], dates: int, bands: int, *, scale: int = 1,
                  window_size: int = TARGET_WINDOW, workers: int = 1, count: bool = False, date_band: bool = False,
                  compress: str = "ZSTD") -> CompositeEstimate:
    """The estimate before the inputs are on hand: from their grid (`shape`, internal `block`) as the plan
    will make its windows of it."""
    _step, out_shape, cells = _plan_windows(*shape, block, scale, window_size)
    outs = [out for _src, out in cells]
    layers = _layers(bands, "count" if count else None, "date" if date_band else None)
    return _estimate(out_shape, outs, dates, layers, Pyramid.of(out_shape, outs, compress), workers)


def _estimate(out_shape, windows, dates: int, layers, pyramid: Pyramid, workers: int) -> CompositeEstimate:
    bands = layers[0].bands
    h, w = max((int(v.height), int(v.width)) for v in windows)
    pixels = h * w
    result = sum(layer.bands * np.dtype(layer.dtype).itemsize for layer in layers) * pixels
    scratch = (bands * dates * 2 + dates + (dates + 1) * 2) * pixels  # window._process_window's stacks, valid, keys
    tiles = 2 * result + TILE * TILE * bands * 2  # the levels it reduces, its encoded tiles, one padded tile
    worker = scratch + 2 * result + tiles + GDAL_CACHE
    kept = sum(min(LEVEL_IN_MEMORY, layer.bands * np.dtype(layer.dtype).itemsize * math.prod(pyramid.shape(level)))
               for layer in layers for level in pyramid.pieces)  # a larger level is a mapped file (cog._level)
    in_flight = max(1, workers) * _IN_FLIGHT_PER_WORKER * tiles
    output = sum(layer.bands * np.dtype(layer.dtype).itemsize * math.prod(pyramid.shape(level))
                 for layer in layers for level in range(pyramid.levels))
    return CompositeEstimate(width=out_shape[1], height=out_shape[0], dates=dates, bands=bands,
                             windows=len(windows), window=(h, w), workers=workers, levels=pyramid.levels,
                             tiled_levels=pyramid.tiled, worker_bytes=worker, parent_bytes=kept + in_flight,
                             output_bytes=output)
