"""The compositor: plan -> windows (on a spawn pool, or in this process) -> COG -> rename.

    result = composite(stack, "out.tif", workers=2, scale=1, progress=print, cancel=threading.Event())

`stack` is a `core.stack.Stack`: the observations (their rasters, masks, offsets, footprints) in date order.

`progress` receives `s2desktop.core.progress.Progress` events of stage "composite": items are windows (one event
at 0, one per finished window, carrying that window's pixels at the preview's size: `WindowPixels`, for a window
to paint before the output is written), then one event per phase after the windows, with its message.

Every check happens first (`plan`), before any decoding; the windows are block-aligned so each compressed
block is decoded once (`plan`); workers decode, mask and reduce them (`window`, `rules`) on a spawn pool with
bounded work in flight (`pool`) and hand back the output's tiles already compressed (`tiles`); the parent spills
them to a temporary file as they arrive, builds the small overview levels and assembles the COG under a
temporary name, renamed on success (`cog`). On an error, cancel or Ctrl-C the pool is torn down and every
temporary file removed.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from s2desktop.core.compositing import cog
from s2desktop.core.compositing.cluster import run_on_cluster
from s2desktop.core.compositing.plan import SCL_MASKED_CLASSES, TARGET_WINDOW, CompositePlan, make_plan
from s2desktop.core.compositing.pool import CANCELLED, Feed, _run_pool
from s2desktop.core.compositing.tiles import WindowTiles
from s2desktop.core.compositing.window import (
    _close_worker,
    _init_worker,
    _process_window,
    _process_window_on_cluster,
)
from s2desktop.core.display_bands import default_indexes
from s2desktop.core.errors import output_error
from s2desktop.core.methods import Median, Rule
from s2desktop.core.progress import PREVIEW_SIDE, Progress, ProgressFn, WindowPixels, check_cancel, emit
from s2desktop.core.stack import Stack


@dataclass
class CompositeResult:
    path: Path
    count_path: Path | None
    width: int
    height: int
    dates: int
    windows: int
    seconds: float
    scale: int
    offsets: list[int]
    baselines: list[str | None]
    masked_dates: int
    tags: dict[str, str] = field(default_factory=dict)
    method: str = "median"  # the rule's spelling (rules.parse_method)
    date_path: Path | None = None  # the medoid's date band, when written


def composite(stack: Stack, output, *, workers: int | None = None, scale: int = 1, count_path=None,
              overwrite: bool = False, progress: ProgressFn | None = None, cancel=None,
              window_size: int = TARGET_WINDOW, compress: str = "ZSTD", clip: dict | None = None,
              tags: dict | None = None, method: Rule | str = Median(), date_path=None,
              mask_classes=SCL_MASKED_CLASSES, mask_buffer: float = 0.0,
              scheduler: str | None = None, arrivals=None) -> CompositeResult:
    """Temporal composite (the median, or another rule) of a stack's co-registered observations into a COG.

    Each observation's bands are harmonised by its offset and masked by its mask raster when it has one: an
    SCL's ``mask_classes`` (default 0, 1, 3, 8, 9, 10; numbers or names, `core.maskrules`), an L1C cloud mask's
    opaque clouds and cirrus; ``mask_buffer`` metres around the masked area are masked too. workers: processes in the pool (None: all cores; 0: run in this process, for
    debugging). scale: 1, 2, 4 or 8. progress(Progress event) as above; cancel: any object with is_set()
    (threading/multiprocessing Event). compress: 'ZSTD' (default, fast) or 'DEFLATE' (for old libtiff-only
    readers), both with predictor 2. clip: a GeoJSON (Multi)Polygon in the inputs' CRS outside which the
    composite is nodata. tags: GeoTIFF tags the caller knows better (an area's: TILE, AREA, GRID_*, SCALE): over
    the compositor's. method: the rule, a value or its spelling ('median' (default), 'quantile:P', 'medoid',
    'geomedian'). date_path: with the medoid, also write the date of each pixel's observation there (days since
    1970-01-01). scheduler: run the windows on a Dask cluster instead of the spawn pool: a scheduler's address
    ('tcp://HOST:8786') or 'local' (a LocalCluster of `workers` processes; `cluster`). arrivals: the inputs are
    still arriving (`core.arrivals`: an area's windows on their way): each window runs once its inputs are in,
    and the plan does not read them ahead (the fetch checks every tile it brings). Raises S2Error subclasses
    with one-line messages; CancelledError when cancelled (no output left).
    """
    t0 = time.perf_counter()
    plan = make_plan(stack, output, workers=workers, scale=scale, count_path=count_path, overwrite=overwrite,
                     window_size=window_size, compress=compress, clip=clip, tags=tags, method=method,
                     date_path=date_path, mask_classes=mask_classes, mask_buffer=mask_buffer,
                     scheduler=scheduler, probe=arrivals is None)
    temps = cog.temporaries(cog.plan_outputs(plan))
    try:
        _write_cogs(plan, temps, progress, cancel, arrivals)
        check_cancel(cancel, CANCELLED)
        cog.publish(temps)
    except OSError as exc:
        raise output_error(exc, plan.output, "choose another output folder") from None
    finally:
        cog.remove(temps)
    return _result(plan, time.perf_counter() - t0)


def _write_cogs(plan: CompositePlan, temps: cog.Temporaries, progress, cancel, arrivals=None) -> None:
    """Every window's tiles into the spill file(s), then the small overview levels, then the COG(s)."""
    with cog.parent_env():
        writer = cog.CogWriter(plan.inputs.pyramid, temps, cog.template_tags(plan))
        display = [i - 1 for i in default_indexes(len(plan.stack.bands), plan.stack.bands)]
        try:
            done = 0

            def on_result(result) -> None:
                nonlocal done
                writer.add(result)
                done += 1
                _report(progress, plan, done, pixels=_window_pixels(plan, result, display))

            _report(progress, plan, 0)
            _run_windows(plan, on_result, cancel, arrivals)
            check_cancel(cancel, CANCELLED)
            _report(progress, plan, done, "building overviews")
            writer.build_levels()
            check_cancel(cancel, CANCELLED)
            _report(progress, plan, done, "writing the Cloud-Optimised GeoTIFF")
            writer.write_cogs()
        finally:
            writer.close()


def _run_windows(plan: CompositePlan, on_result, cancel, arrivals=None) -> None:
    """Every window of the plan, each once its inputs are in (`arrivals`), `on_result(its tiles)` after each: on
    a Dask cluster, a spawn pool, or here with workers=0 (debugging)."""
    if plan.scheduler:
        run_on_cluster(plan.tasks, plan.scheduler, _process_window_on_cluster, (plan.threads,), on_result, cancel,
                       workers=plan.workers or (os.cpu_count() or 1), arrivals=arrivals)
        return
    if plan.workers:
        _run_pool(plan.tasks, plan.workers, _process_window, on_result, cancel, initializer=_init_worker,
                  initargs=(plan.threads, os.getpid()), arrivals=arrivals)
        return
    _init_worker(plan.threads)
    try:
        feed = Feed(plan.tasks, arrivals)
        while feed:
            check_cancel(cancel, CANCELLED)
            task = feed.next()
            if task is None:
                feed.wait()
            else:
                on_result(_process_window(task))
    finally:
        _close_worker()


def _report(progress: ProgressFn | None, plan: CompositePlan, windows_done: int, message: str = "",
            pixels: WindowPixels | None = None) -> None:
    emit(progress, Progress(stage="composite", items_done=windows_done, items_total=len(plan.tasks),
                            message=message, pixels=pixels))


def _window_pixels(plan: CompositePlan, result: WindowTiles, display: list[int]) -> WindowPixels | None:
    """A finished window's display bands at the preview's size, placed in the preview (from its pieces, or the
    copy the task made of them: `tiles.window_tiles`)."""
    pyramid = plan.inputs.pyramid
    level = pyramid.preview_level(PREVIEW_SIDE)
    found = result.preview_pixels(level)
    if found is None:
        return None
    row, col, arr, resampling = found
    (height, width), (out_h, out_w) = pyramid.shape(level), plan.out_shape
    return WindowPixels(np.ascontiguousarray(arr[display]), row, col, height, width, 2 ** level, out_h, out_w,
                        tuple(plan.stack.bands[i] for i in display), resampling)


def _result(plan: CompositePlan, seconds: float) -> CompositeResult:
    out_h, out_w = plan.out_shape
    return CompositeResult(
        path=plan.output, count_path=plan.count_path, width=out_w, height=out_h, dates=plan.dates,
        windows=len(plan.tasks), seconds=seconds, scale=plan.scale, offsets=list(plan.inputs.offsets),
        baselines=[o.baseline for o in plan.stack.observations], masked_dates=plan.masked_dates, tags=plan.tags,
        method=plan.rule.label, date_path=plan.date_path,
    )
