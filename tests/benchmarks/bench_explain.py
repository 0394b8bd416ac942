"""Benchmark of `explain` (the pixel inspector's work): one pixel of a 20-date composite of local files, read
again from its inputs (a script, not a test).

    .venv/bin/python tests/benchmarks/bench_explain.py                 # 2048 x 2048, 20 dates, 12 pixels
    .venv/bin/python tests/benchmarks/bench_explain.py --size 4096 --pixels 20

Inputs: bench_rules' uint16 lossless JPEG 2000 files (1024 x 1024 tiles, like Sentinel-2's; one file per band
and date), generated once into --cache, and the same pixels as tiled GeoTIFFs (512 px blocks, DEFLATE) made
from them with GDAL. Each set is composited once (files mode, the median); then `explain` runs on --pixels
random pixels, the pixel alone and with the 64 x 64 px chips the inspector shows, in turn, so a busy neighbour
slows both alike: a first click (nothing kept open: every tile it needs decoded) and the next click 3 px away
(the datasets kept open between explains still hold those tiles decoded). Then an area streamed from COGs on a
local S3 server (moto, in this process; --dates scenes of --area-size px with clouds in their SCL): composited by
the job into the area cache, then explained from it (its stack rebuilt from the cache at each click).

Prints per input format the median and the slowest explain time (wall seconds), the median CPU seconds of the
process (what a loaded machine does not inflate as much), and the median's ratio to the target (1 s for 20
dates of local files). JPEG 2000 is read through OpenJPEG's decode area (core.jp2area: the code-blocks around
the pixel); "JP2 (GDAL)" reads the same files with GDAL alone, which decodes the pixel's whole 1024 px tile
once per band and date (60 tiles for 20 dates), as explain did before. "JP2 + SCL" is the same bands masked by
a 20 m JPEG 2000 SCL per date (another 20 tiles for GDAL), "SCL (GDAL)" it by GDAL alone. The machine may be
shared: run twice.
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


def scl_files(cache: Path, size: int, dates: int) -> list[Path]:
    """One scene classification per date at 20 m (size / 2 px, uint8, lossless JPEG 2000 in 1024 px tiles, as
    Sentinel-2's): class 9 (cloud) over a disc that drifts from date to date, 4 (vegetation) elsewhere."""
    import rasterio
    from rasterio.transform import from_origin

    out = []
    n = size // 2
    yy, xx = np.mgrid[0:n, 0:n]
    for d in range(dates):
        p = cache / f"33UUP_2023-07-{d + 1:02d}_0_SCL_{size}.jp2"
        out.append(p)
        if p.exists():
            continue
        cloud = np.hypot(yy - n * (0.2 + 0.03 * d), xx - n * (0.3 + 0.02 * d)) < n / 5
        res = 20 * 10980 / size
        tmp = p.with_suffix(".tmp.jp2")
        with rasterio.open(tmp, "w", driver="JP2OpenJPEG", width=n, height=n, count=1, dtype="uint8",
                           crs="EPSG:32633", transform=from_origin(300000, 5000040, res, res), QUALITY="100",
                           REVERSIBLE="YES", BLOCKXSIZE="1024", BLOCKYSIZE="1024") as dst:
            dst.write(np.where(cloud, 9, 4).astype(np.uint8), 1)
        os.replace(tmp, p)
    return out


def composite(files: list[list[Path]], out: Path, workers: int, scl: list[Path] | None = None) -> Path:
    from s2desktop.core.pipeline import CompositeOptions, run_composite
    from s2desktop.core.stack import from_files

    stack = from_files(*files, offsets=0, mask="auto" if scl else "none", scl=scl)
    t = time.perf_counter()
    run_composite(stack, CompositeOptions(str(out), workers=workers, overwrite=True))
    print(f"  composite of {len(files[0])} dates into {out.name}: {time.perf_counter() - t:.1f} s", flush=True)
    return out


def time_explain(out: Path, pixels: list[tuple[int, int]], chips: bool,
                 gdal_only: bool = False) -> dict[str, list[tuple[float, float]]]:
    """{'first click': [(wall s, CPU s)], 'next click': [...]} per pixel: the first with nothing kept open
    (every tile decoded), the next 3 px away (the tiles still decoded in the kept datasets). gdal_only: JPEG
    2000 read by GDAL alone (whole tiles), as before core.jp2area."""
    from s2desktop.core import explain as explain_mod
    from s2desktop.core.explain import explain, forget

    reader = explain_mod._JP2.reader
    if gdal_only:
        explain_mod._JP2.reader = lambda: None
    times: dict[str, list] = {"first click": [], "next click": []}
    try:
        for row, col in pixels:
            forget()
            for what, px in (("first click", (row, col)), ("next click", (max(0, row - 3), max(0, col - 3)))):
                t, c = time.perf_counter(), time.process_time()
                why = explain(out, pixel=px, chips=chips)
                times[what].append((time.perf_counter() - t, time.process_time() - c))
                assert why.recomputed == why.value, (px, why.value, why.recomputed)  # the explanation holds
    finally:
        explain_mod._JP2.reader = reader
    return times


def area_from_cache(work: Path, dates: int, size: int, pixels: int) -> dict[str, list[tuple[float, float]]]:
    """An area streamed from COGs on a local S3 server (moto, in this process): ``dates`` L2A scenes of 33UUP at
    ``size`` px a side with drifting clouds in their SCL, composited by the job (windows into the area cache),
    then explained: {'first click': ..., 'next click': ...} as for files (an area's stack is rebuilt from the
    cache at every click: nothing is kept open)."""
    import datetime as dt
    from concurrent.futures import ThreadPoolExecutor

    from affine import Affine
    from moto.server import ThreadedMotoServer

    from s2desktop.core import archive, areas, tiles
    from s2desktop.core.pipeline import CompositeOptions, Job, Request, SourceSpec
    from tests.fixtures_s3 import _upload_tree, admin_client

    fp = tiles.footprint("33UUP")
    res = 109800 / size
    rng = np.random.default_rng(3)
    days = [dt.date(2023, 5, 1) + dt.timedelta(days=5 * i) for i in range(dates)]
    yy, xx = np.mgrid[0:size, 0:size]
    for day in days:
        cloud = (np.hypot(yy - rng.integers(0, size), xx - rng.integers(0, size)) < size / 6)
        ground = 1200 + 300 * np.sin(xx / 40) * np.cos(yy / 30) + rng.integers(0, 64, (size, size))
        img = np.where(cloud, 6000, ground).astype(np.uint16)
        archive.write_scene(work / "bucket", "cogs", "33UUP", day, 0, {b: img for b in ("B04", "B03", "B02")},
                            crs=fp.epsg, transform=Affine(res, 0, fp.utm_bounds[0], 0, -res, fp.utm_bounds[3]),
                            baseline="05.09", cloud_cover=10.0, data_coverage=100.0,
                            scl=np.where(cloud[::2, ::2], 9, 4).astype(np.uint8))
    import logging

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        client = admin_client(endpoint)
        client.create_bucket(Bucket="sentinel-cogs")
        with ThreadPoolExecutor(4) as pool:
            _upload_tree(client, "sentinel-cogs", work / "bucket", pool, public=True)
        lon, lat = fp.centre
        area = areas.parse_bbox(f"{lon - 0.15},{lat - 0.1},{lon + 0.15},{lat + 0.1}")
        out = work / "area.tif"
        t = time.perf_counter()
        Job(Request(SourceSpec("cogs", endpoint_url=endpoint), area=area, resolution=res, start=days[0],
                    end=days[-1], cache_dir=work / "cache", composite=CompositeOptions(str(out), workers=0))).run()
        print(f"  area of {dates} dates streamed into {out.name}: {time.perf_counter() - t:.1f} s", flush=True)
        import rasterio

        with rasterio.open(out) as ds:
            h, w = ds.shape
        picks = [(int(r), int(c)) for r, c in zip(rng.integers(3, h - 3, pixels), rng.integers(3, w - 3, pixels))]
        return time_explain(out, picks, chips=False)
    finally:
        server.stop()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=2048)
    ap.add_argument("--dates", type=int, default=20)
    ap.add_argument("--pixels", type=int, default=12)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "s2desktop-bench-rules")
    ap.add_argument("--area-size", type=int, default=1098, help="px a side of the area leg's COG scenes")
    args = ap.parse_args(argv)
    print(f"inputs: {args.dates} dates x 3 bands, {args.size} x {args.size} px, in {args.cache}", flush=True)
    jp2 = make_inputs(args.cache, args.size, args.dates)
    sets = {"JPEG 2000": jp2, "GeoTIFF": as_geotiffs(jp2, args.cache)}
    rng = np.random.default_rng(0)
    pixels = [tuple(int(v) for v in rng.integers(0, args.size, 2)) for _ in range(args.pixels)]
    with tempfile.TemporaryDirectory() as tmp:
        outs = {name: composite(files, Path(tmp) / f"{name.split()[0].lower()}.tif", args.workers)
                for name, files in sets.items()}
        outs["JP2 + SCL"] = composite(jp2, Path(tmp) / "scl.tif", args.workers,
                                      scl_files(args.cache, args.size, args.dates))
        results: dict[tuple[str, bool, str], list[tuple[float, float]]] = {}
        legs = [*outs.items(), ("JP2 (GDAL)", outs["JPEG 2000"]),  # whole tiles, as before core.jp2area
                ("SCL (GDAL)", outs["JP2 + SCL"])]
        for chips in (False, True):  # the formats in turn, pixel by pixel
            for name, out in legs:
                for what, times in time_explain(out, pixels, chips, gdal_only="GDAL" in name).items():
                    results[(name, chips, what)] = times
        for what, times in area_from_cache(Path(tmp), args.dates, args.area_size, args.pixels).items():
            results[("area cache", False, what)] = times
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
