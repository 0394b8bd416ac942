"""Benchmark of the demo archive's first run: generating it whole, side by side with writing its scenes' L1C cloud
masks alone (a script, not a test).

    .venv/bin/python tests/benchmarks/bench_demo_archive.py                 # full size (1098 px), 2 rounds
    .venv/bin/python tests/benchmarks/bench_demo_archive.py --size 512 --rounds 1

Prints per round the wall time of ``ensure_demo_archive`` into an empty folder (what a user's first run waits for)
and of ``archive.write_qi_mask`` for all 10 scenes (MSK_CLOUDS_B00.gml before baseline 04.00, MSK_CLASSI_B00.jp2
from then on, as the archive writes them), then the best of each and the masks' share of the whole. The machine may
be shared: figures are noisy; run twice before drawing conclusions.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))


def _archive_seconds(work: Path, size: int) -> float:
    from s2desktop.core import demo

    root = work / "demo-archive"
    t0 = time.perf_counter()
    demo.ensure_demo_archive(root, size=size)
    seconds = time.perf_counter() - t0
    shutil.rmtree(root)
    return seconds


def _masks_seconds(work: Path, size: int) -> float:
    from s2desktop.core import archive, demo

    _ground, crs, transform = demo._read_ground(size)
    scenes = demo.demo_scenes(size)
    t0 = time.perf_counter()
    for s in scenes:
        archive.write_qi_mask(work / "masks" / s.date.isoformat(), s.baseline, demo._qi_mask(s), crs=crs,
                              transform=transform)
    seconds = time.perf_counter() - t0
    shutil.rmtree(work / "masks")
    return seconds


def main(argv=None) -> int:
    from s2desktop.core import demo

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=demo.DEMO_SIZE)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args(argv)
    whole, masks = [], []
    with tempfile.TemporaryDirectory(prefix="bench-demo-") as tmp:
        for r in range(args.rounds):
            whole.append(_archive_seconds(Path(tmp), args.size))
            masks.append(_masks_seconds(Path(tmp), args.size))
            print(f"round {r + 1}: archive {whole[-1]:6.2f} s   its cloud masks alone {masks[-1]:6.3f} s")
    print(f"best: archive {min(whole):.2f} s, cloud masks {min(masks):.3f} s = {min(masks) / min(whole):.1%} of the "
          f"first run ({args.size} px, {len(demo.DEMO_DATES)} dates)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
