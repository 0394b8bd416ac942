"""The offline demo without a window: the one job (search -> download -> composite) on the demo archive, then
two true-colour PNGs, the composite and the cloudiest input date, to compare.

A front end like the command line and the window: it builds a request, runs :class:`core.pipeline.Job` and
passes the job's progress events on; only the PNGs are its own.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from s2desktop.core import demo, render
from s2desktop.core.fsutil import ensure_writable_dir
from s2desktop.core.pipeline import CompositeOptions, Job, Request, SourceSpec
from s2desktop.core.progress import Progress, ProgressFn, emit
from s2desktop.core.rasterinfo import read_overview

__all__ = ["run_headless_demo", "demo_request"]


def demo_request(out_dir: Path, workers: int | None = None, source: SourceSpec | None = None) -> Request:
    """The demo's request: its tile and dates, the downloads and the composite in ``out_dir``."""
    output = out_dir / f"composite_{demo.DEMO_TILE}_{demo.DEMO_START}_{demo.DEMO_END}.tif"
    return Request(source=source or SourceSpec("demo"), tile=demo.DEMO_TILE, start=demo.DEMO_START,
                   end=demo.DEMO_END, download_dir=out_dir,
                   composite=CompositeOptions(output=str(output), workers=workers, overwrite=True))


def run_headless_demo(out_dir, progress: ProgressFn | None = None, *, source: SourceSpec | None = None,
                      workers: int | None = None, png_size: int = 1024) -> dict:
    """Run the demo job into ``out_dir`` and render its PNGs; -> a summary dict (scenes, outputs, timings).

    ``out_dir`` receives the downloads (``red/``, ``green/``, ``blue/``, ``metadata/`` and the scenes' L1C cloud
    masks in ``MSKCLOUDS/`` and ``MSKCLASSI/``), the composite GeoTIFF,
    ``composite.png`` (true colour) and ``cloudiest-date.png`` (the input with most clouds, for comparison).
    """
    out_dir = ensure_writable_dir(Path(out_dir).expanduser().resolve())
    clock = _StageClock(progress)
    job = Job(demo_request(out_dir, workers, source), progress=clock)
    result = job.run()
    clock.close()
    timings = clock.seconds
    t = time.perf_counter()
    png = render.save_png(render.thumbnail(result.composite.path, png_size, "truecolor"), out_dir / "composite.png")
    cloudiest = max(range(len(result.scenes)), key=lambda i: result.scenes[i].cloud_cover or 0)
    scene = result.scenes[cloudiest]
    obs = result.inputs.observations[cloudiest]
    before = _true_colour_png([obs.rasters[b].path for b in result.inputs.bands], out_dir / "cloudiest-date.png",
                              obs.offset, png_size)
    timings["render"] = time.perf_counter() - t
    emit(progress, Progress("render", 1, 1, message=f"rendered: {png} (the composite) and {before} "
                                                    f"({scene.date}, {scene.cloud_cover:.0f} % cloud)"))
    fetched = sum(r.status == "downloaded" for r in result.downloads)
    return {
        "tile": demo.DEMO_TILE, "start": demo.DEMO_START.isoformat(), "end": demo.DEMO_END.isoformat(),
        "source": job.source.describe(),
        "archive": str(job.source.root) if job.source.root is not None else None,
        "scenes": [s.to_dict() for s in result.scenes],
        "downloaded": fetched, "skipped": len(result.downloads) - fetched,
        "out_dir": str(out_dir), "composite": str(result.composite.path), "png": str(png),
        "cloudiest_png": str(before),
        "baselines": list(result.composite.baselines), "offsets": list(result.composite.offsets),
        "seconds": {k: round(v, 2) for k, v in timings.items()},
    }


class _StageClock:
    """Passes events on and notes how long each stage took, from its first event to the next stage's."""

    def __init__(self, progress: ProgressFn | None):
        self.progress = progress
        self.seconds: dict[str, float] = {}
        self.stage, self.t = None, time.perf_counter()

    def __call__(self, event: Progress) -> None:
        if event.stage != self.stage:
            self.close()
            self.stage = event.stage
        emit(self.progress, event)

    def close(self) -> None:
        now = time.perf_counter()
        if self.stage is not None:
            self.seconds[self.stage] = self.seconds.get(self.stage, 0.0) + now - self.t
        self.stage, self.t = None, now


def _true_colour_png(paths, path: Path, offset: int, size: int) -> Path:
    """A true-colour PNG (reflectance x 2.5, the Sentinel Hub look) of three single-band files."""
    chans, valid = [], None
    for p in paths:
        data, v, _info = read_overview(p, size)
        chans.append(data[0])
        valid = v if valid is None else valid & v
    u8 = render.truecolor(np.stack(chans), valid, offset=offset)
    return render.save_png(render.to_rgba(u8, valid), path)
