"""Benchmark: an area streamed from COGs vs the old way (download whole files, then composite), side by side.

    .venv/bin/python tests/benchmarks/bench_area.py [--size 5490] [--dates 5] [--rate-mbit 100]

A local S3 server (moto, in its own process) holds ``--dates`` L2A scenes of tile 33UUP in the ``sentinel-cogs``
layout, written like the real bucket (DEFLATE, 1024 px blocks, internal overviews, SCL at half resolution),
``--size`` px a side (5490: the real 20 m grid; 10980 is the full 10 m size but takes minutes to generate). A
throttling proxy in front of it serves each connection at ``--rate-mbit``. We time from the job's start to the
written COG and count the bytes that crossed the proxy for:

  (a) a 10 x 10 km area at 80 m (a preview: overview bytes only),
  (b) the same area at the tile's own resolution,
  (c) the old way: download the whole band and SCL files of those scenes, then composite the tile.

Figures depend on the machine and on moto (which reads a whole object for every ranged GET): compare the
ratios, not the seconds, with the real bucket.
"""

from __future__ import annotations

import argparse
import datetime as dt
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.benchmarks.bench_download import SERVER, _client  # noqa: E402
from tests.fixtures_s3 import ThrottledProxy  # noqa: E402

BUCKET = "sentinel-cogs"
TILE = "33UUP"


def _seed(root: Path, size: int, dates: int) -> None:
    import numpy as np
    from affine import Affine

    from s2desktop.core import archive, tiles

    f = tiles.footprint(TILE)
    transform = Affine(109800 / size, 0, f.utm_bounds[0], 0, -109800 / size, f.utm_bounds[3])
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0:size, 0:size]
    ground = (800 + 600 * np.sin(xx / 97.0) * np.cos(yy / 131.0)).astype(np.uint16)
    for d in range(dates):
        t0 = time.perf_counter()
        noise = rng.integers(0, 200, (size, size), dtype=np.uint16)
        bands = {b: ground + noise + 300 * i for i, b in enumerate(("B02", "B03", "B04"))}
        scl = np.full((size // 2, size // 2), 4, np.uint8)
        scl[: size // 8] = 9  # a cloud band
        archive.write_scene(root, "cogs", TILE, dt.date(2023, 7, 1 + 3 * d), 0, bands, crs=f.epsg,
                            transform=transform, baseline="05.09", scl=scl)
        print(f"  generated scene {d + 1}/{dates} in {time.perf_counter() - t0:.0f} s", flush=True)


def _area():
    from s2desktop.core import areas, tiles

    lon, lat = tiles.footprint(TILE).centre  # a 10 x 10 km box at the tile's centre
    dlat, dlon = 0.045, 0.045 / max(0.2, __import__("math").cos(__import__("math").radians(lat)))
    return areas.parse_bbox(f"{lon - dlon:.5f},{lat - dlat:.5f},{lon + dlon:.5f},{lat + dlat:.5f}")


def _timed(label: str, proxy: ThrottledProxy, fn) -> tuple[float, int]:
    before = proxy.bytes_sent
    t0 = time.perf_counter()
    fn()
    seconds, fetched = time.perf_counter() - t0, proxy.bytes_sent - before
    print(f"{label:44} {seconds:7.1f} s  {fetched / 1e6:9.1f} MB fetched", flush=True)
    return seconds, fetched


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=5490)
    ap.add_argument("--dates", type=int, default=5)
    ap.add_argument("--rate-mbit", type=float, default=100.0)
    args = ap.parse_args()

    from s2desktop.core.pipeline import CompositeOptions, Job, Request, SourceSpec
    from tests.fixtures_s3 import _upload_tree

    proc = subprocess.Popen([sys.executable, "-c", SERVER], stdout=subprocess.PIPE, text=True)
    try:
        endpoint = f"http://127.0.0.1:{proc.stdout.readline().strip()}"
        client = _client(endpoint)
        client.create_bucket(Bucket=BUCKET)
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            print(f"seeding {args.dates} scenes of {args.size} px ...", flush=True)
            _seed(tmp / "bucket", args.size, args.dates)
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(4) as pool:
                _upload_tree(client, BUCKET, tmp / "bucket", pool, public=True)
            whole = sum(o["Size"] for p in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
                        for o in p.get("Contents", []) if o["Key"].endswith(("/B02.tif", "/B03.tif", "/B04.tif",
                                                                               "/SCL.tif")))
            proxy = ThrottledProxy(endpoint, rate=int(args.rate_mbit * 1e6 / 8))
            source = SourceSpec("cogs", endpoint_url=proxy.endpoint)
            dates = dict(start=dt.date(2023, 7, 1), end=dt.date(2023, 8, 31))
            area, res = _area(), 109800 / args.size
            print(f"machine: 2 cores; {args.dates} dates of {TILE} at {res:g} m; {whole / 1e6:.0f} MB of band + SCL "
                  f"files; proxy {args.rate_mbit:g} Mbit/s per connection; area {area.name}")

            def run(request):
                return lambda: Job(request).run()

            a = _timed("(a) area, 80 m preview (streamed)", proxy, run(Request(
                source, area=area, resolution=80, **dates, composite=CompositeOptions(str(tmp / "a.tif")))))
            b = _timed(f"(b) area, {res:g} m (streamed)", proxy, run(Request(
                source, area=area, resolution=res, **dates, composite=CompositeOptions(str(tmp / "b.tif")))))
            c = _timed("(c) old way: download whole files, composite", proxy, run(Request(
                source, tile=TILE, download_dir=tmp / "dl", **dates, composite=CompositeOptions(str(tmp / "c.tif")))))
            print(f"bytes fetched: (a) {100 * a[1] / whole:.2f} %, (b) {100 * b[1] / whole:.2f} % of the whole files; "
                  f"time: (c)/(a) {c[0] / a[0]:.1f}x, (c)/(b) {c[0] / b[0]:.1f}x")
            proxy.close()
    finally:
        proc.terminate()
    return 0


if __name__ == "__main__":
    sys.exit(main())
