"""Benchmark: areas streamed from full-size COGs over a slow, distant link, vs odc-stac on the same link and data and
vs the old way, each timed from the command.

    .venv/bin/pip install -e '.[test,bench]'                         # odc-stac and pystac (not the product's)
    .venv/bin/python tests/benchmarks/bench_area.py                  # the issues' benchmark (~25 min)
    .venv/bin/python tests/benchmarks/bench_area.py --skip-old-way   # legs (a)-(c), (e) and odc-stac's only
    .venv/bin/python tests/benchmarks/bench_area.py --odc-all        # odc-stac in each of its configurations
    .venv/bin/python tests/benchmarks/bench_area.py --quick          # a smoke run in about a minute
    .venv/bin/python tests/benchmarks/bench_area.py --quick --before 3085328   # legs (a)-(c) of that commit too

Targets (issue 19): the 10 m composite (b) <= 1.2x the link's transfer floor for the bytes it fetches and >= 1.5x
faster than odc-stac's (ob); the 80 m preview (a) ahead of odc-stac's (oa). (Issue 10's are in the first table.)

Disk: ~4.5 GB of generated scenes kept in --cache (three tiles), ~15 GB of moto's temporary files while it runs,
~5 GB for the old way's download (in a temporary folder, removed at the end).

The archive: ``--dates`` (10) L2A scenes of two tiles that share an edge, 33UUP and its east neighbour 33UVP, and
of its west neighbour across the UTM zone edge, 32UQU (zone 32), which overlaps 33UUP by much more than the ~10 km
of tiles of one zone: 33UUP's centre, where areas (a) and (b) are, lies inside 32UQU too, as in the real bucket
(the same dates: one acquisition over the three tiles). They are all in the ``sentinel-cogs`` layout, written like
the real bucket by ``archive.write_scene`` (DEFLATE with predictor 2, 1024 px blocks, internal overviews, SCL at
half the 10 m size) at ``--size`` px a side (10980: the real 10 m grid). The pixels look like imagery to the
compressor (a smooth ground pattern continuous across the tiles plus uniform noise of 0..63, a cloud band on the
SCL) so a band file is ~169 MB, within the real bucket's 100-230 MB.

Generating a full-size scene takes ~30 s, so ``--variants`` (3) distinct scenes per tile are generated once into
``--cache`` (default /tmp/s2bench-area, reused across runs, keyed by size and variant) and reused across dates:
date i serves variant i % variants. Every date's objects are still distinct: each is uploaded with a few bytes
naming its key appended after the TIFF's data (readers ignore them), so objects differ in content, size and ETag
and no cache keyed by ETag can serve one date for another. Metadata (tileinfo_metadata.json, the STAC item, the
thumbnail) is written for every date.

The server: moto's standalone server in its own process (so it does not share our GIL), loaded once per run
with all dates of the three tiles (15.3 GB at full size, ~150 s). moto keeps objects over ~5 MB in temporary files on
disk (SpooledTemporaryFile under $TMPDIR), not in memory; its resident memory peaks at ~4 GB while loading (the
request bodies) and the run prints it. In front of it, ``ThrottledProxy``: one shared link of ``--rate-mbit``
(100) Mbit/s for all connections together (``--per-connection``: that rate for each connection instead, as
before) and ``--latency-ms`` (40) added before every request (no TCP/TLS handshakes are modelled).

The legs, each the ``s2desktop`` command in a subprocess, timed from its start to its exit (the written COG),
with the bytes and requests that crossed the proxy; ``S2DESKTOP_HOME`` is a fresh folder per leg (cold metadata
and fetch caches), except (e) which reuses (b)'s:

  (a) a 10 x 10 km area at the centre of 33UUP at 80 m: the preview (overview bytes only)
  (b) the same area at 10 m (the tile's own pixels)
  (e) (b) again with (b)'s cache folder: what a second run fetches
  (c) a 10 x 10 km area straddling the 33UUP/33UVP edge at 10 m: in both tiles (it reaches a little past the
      ~9.8 km overlap on both sides), each acquisition a mosaic of the two
  (d) the old way: ``s2desktop download`` of the whole B02/B03/B04/SCL files of 33UUP's dates, then
      ``s2desktop composite --tile`` of the tile from them (``--skip-old-way`` leaves it out: ~6 min at 100 Mbit/s)

odc-stac's legs (``tests/benchmarks/bench_area_odc.py``, in a fresh process each, timed from its start to its exit
like the others, through the same proxy), after s2desktop's: (oa), (ob), (oc) are ``odc.stac.load`` of B02, B03, B04
and SCL + the masked median of (a), (b), (c) -- the same computation: SCL classes 0, 1, 3, 8, 9, 10 and nodata 0
masked, the -1000 offset of baseline >= 04.00 (the archive's 05.09) applied as s2desktop does (DN - 1000, at least
1), the median of the valid dates rounded half up, s2desktop's resampling (bilinear where the grids do not align,
SCL nearest) -- on s2desktop's output grid (the leg's output's CRS, transform and size), written as a COG by
odc-geo. Its items come with one GET through the proxy of a FeatureCollection put on the server (a STAC API search's
page; s2desktop's search crosses the link too), in earth-search's shape, built from the archive's: ``s3://`` hrefs
read by GDAL's /vsis3/ at the proxy, the projection extension (epsg, shape, transform) so it opens no header to
plan, SCL nodata 0; the scenes s2desktop reads (33UUP's for (a), (b); 33UUP's and 33UVP's for (c), fused per solar
day, the nearer tile first as s2desktop's mosaic does; 32UQU is not given to it). Its configuration: odc-stac's
``cloud_defaults`` (no directory listings) plus consecutive ranges merged, HTTP/2 multiplexing (the proxy speaks
HTTP/1.1, so unused), the VSI cache (odc-stac turns it off around its pixel reads) and a 512 MB block cache; then
``pool=`` 8, 16 or 32 threads, or Dask chunks of 1024 or 2048 px on 16 threads (``--odc-config``; the default,
ODC_BEST, was the fastest on the quick run; ``--odc-all`` runs each, a leg each, and judges the targets against the
fastest). Without odc-stac installed the run says how to install it and leaves its legs out (``--skip-odc`` too).
The side-by-side table gives each tool's seconds, MB, requests and seconds over the link floor of its own bytes,
s2desktop's speed-up and the targets; a line per leg compares the two outputs over the pixels both have (equal,
within 3 DN): odc-stac fills its whole grid while s2desktop's output is clipped to the area's polygon (the bbox
drawn in UTM), so "only odc-stac" counts the pixels outside it. Then odc-stac's phases (imports, search, load,
median, write) by its own clock.

"% whole" is the share of the whole B02/B03/B04/SCL objects of the dates of the tile(s) a leg covers (33UUP
for (a), (b), (e), (d); 33UUP and 33UVP for (c)); "tiles read" the tiles whose band objects a leg read from.

``--before REV`` runs legs (a)-(c) with the code of git revision REV too (its ``s2desktop`` exported by ``git
archive`` into the work folder), each in a fresh home, and prints both side by side: e.g. the mosaic before
issue 22, which read 32UQU's windows for (a) and (b) as well (name order) and took every pixel from them.
Targets (issue 10): preview < 10 s, 10 m composite < 60 s, bytes fetched < 5 % of the whole files. Two more
tables say where the time went, from the proxy's record of every request: seconds with a request in flight vs
none (start-up, search, compositing, writing), requests in flight at once, time to the first reply byte (the
added latency + moto's time); and what was asked for: HEADs, ranged GETs, the objects read, the bytes of all
ranges vs their union per object (the difference was fetched more than once, e.g. by two processes).

Figures depend on this machine and on moto, which reads the whole object for every ranged GET (0.13-0.2 s for
a 169 MB object here, against ~5 ms for a small one; the run measures it): compare ratios, not seconds, with
the real bucket. At ``--size`` below 10980 the "10 m" legs run at the tile's own resolution (109800 / size m).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.benchmarks.bench_area_odc import CONFIGS as ODC_CONFIGS  # noqa: E402
from tests.benchmarks.bench_download import SERVER, _client  # noqa: E402
from tests.fixtures_s3 import ThrottledProxy  # noqa: E402

BUCKET = "sentinel-cogs"
TILES = ("33UUP", "33UVP")  # east neighbours in UTM zone 33: 33UVP starts 9.84 km west of 33UUP's east edge
NEIGHBOUR = "32UQU"  # zone 32, west: its footprint holds 33UUP's centre (areas (a), (b))
ALL_TILES = (*TILES, NEIGHBOUR)
BANDS = ("B02", "B03", "B04", "SCL")
DAY0 = dt.date(2023, 7, 1)
EVERY = 3  # days between dates
NOISE = 64  # uniform noise 0..63 on the ground pattern: ~160 MB per 10980 px band COG
SIDE = 10_000  # m: the areas are 10 x 10 km
PREVIEW_M = 80
TARGETS = {"preview": 10.0, "full": 60.0, "share": 5.0}
# odc-stac's fastest on the quick run (6 runs of --quick --odc-all on a busy 2-core machine). Legs (a)-(c) summed,
# wall seconds over the first 4: threads-32 45.9, threads-8 47.2, threads-16 49.6, dask-2048 50.7, dask-1024 51.3;
# its own load + median phases over the last 2 (the imports' noise left out): threads-32 9.96, threads-16 10.41,
# threads-8 10.86, dask-1024 11.54, dask-2048 13.58
ODC_BEST = "threads-32"
ODC_TARGETS = {"floor": 1.2, "speedup": 1.5}  # issue 19: (b) <= 1.2x its link floor and >= 1.5x faster than odc
STAC_EXTENSIONS = ["https://stac-extensions.github.io/projection/v1.1.0/schema.json",  # as earth-search's items
                   "https://stac-extensions.github.io/raster/v1.1.0/schema.json"]


# --- the scenes ----------------------------------------------------------------------------------------------


def _variant(tile: str, index: int, size: int, dest: str) -> str:
    """One distinct scene of ``tile`` (B02, B03, B04, SCL) written by archive.write_scene; the band files moved to
    ``dest``. Runs in a pool process (~2 GB of memory at full size)."""
    import numpy as np
    from affine import Affine

    from s2desktop.core import archive, tiles

    f = tiles.footprint(tile)
    left, _, _, top = f.utm_bounds
    res = tiles.TILE_SIZE_M / size
    gx = left / res + np.arange(size)  # the ground is a function of the map position: continuous across tiles
    gy = top / res - np.arange(size)
    ground = (800 + 600 * np.outer(np.cos(gy / 131.0).astype(np.float32), np.sin(gx / 97.0).astype(np.float32)))
    ground = ground.astype(np.uint16)
    noise = np.random.default_rng(index).integers(0, NOISE, (size, size), dtype=np.uint16)
    bands = {b: ground + noise + np.uint16(300 * i) for i, b in enumerate(BANDS[:3])}
    del ground, noise
    half = size // 2
    scl = np.full((half, half), 4, np.uint8)  # vegetation, with a band of cloud and its shadow that moves per variant
    row = (index * 37 % 80 + 10) * half // 100
    scl[row: row + half // 10] = 9
    scl[row + half // 10: row + half // 8] = 3
    tmp = Path(dest + ".part")
    shutil.rmtree(tmp, ignore_errors=True)
    prefix = archive.write_scene(tmp, "cogs", tile, DAY0, 0, bands, crs=f.epsg,
                                 transform=Affine(res, 0, left, 0, -res, top), baseline="05.09", scl=scl)
    out = tmp / "bands"
    out.mkdir()
    for b in BANDS:
        (tmp / prefix / f"{b}.tif").rename(out / f"{b}.tif")
    out.rename(dest)
    shutil.rmtree(tmp)
    return dest


def ensure_variants(cache: Path, size: int, variants: int) -> dict[str, list[Path]]:
    """{tile: [folder of B02/B03/B04/SCL.tif per variant]}, generating the missing ones (two processes)."""
    import multiprocessing

    folders = {t: [cache / f"{size}px" / t / f"v{i}" for i in range(variants)] for t in ALL_TILES}
    todo = [(t, i, size, str(p)) for t in ALL_TILES for i, p in enumerate(folders[t]) if not p.is_dir()]
    if todo:
        print(f"generating {len(todo)} scene(s) of {size} px into {cache} (once; ~30 s each at 10980 px) ...",
              flush=True)
        for p in {Path(d).parent for *_, d in todo}:
            p.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
            for dest in pool.map(_variant, *zip(*todo)):
                print(f"  {Path(dest).relative_to(cache)} after {time.perf_counter() - t0:.0f} s", flush=True)
    return folders


def _dates(n: int) -> list[dt.date]:
    return [DAY0 + dt.timedelta(days=EVERY * i) for i in range(n)]


def _metadata(root: Path, tile: str, date: dt.date) -> tuple[str, list[Path]]:
    """The scene's key prefix and its metadata files (tileinfo_metadata.json, STAC item, thumbnail), written by
    write_scene for tiny bands on the same footprint (the band files come from the variants)."""
    import numpy as np
    from affine import Affine

    from s2desktop.core import archive, tiles

    f = tiles.footprint(tile)
    left, _, _, top = f.utm_bounds
    tiny = {b: np.full((8, 8), 1000 + 300 * i, np.uint16) for i, b in enumerate(BANDS[:3])}
    prefix = archive.write_scene(root, "cogs", tile, date, 0, tiny, crs=f.epsg,
                                 transform=Affine(tiles.TILE_SIZE_M / 8, 0, left, 0, -tiles.TILE_SIZE_M / 8, top),
                                 baseline="05.09", scl=np.full((4, 4), 4, np.uint8))
    return prefix, [p for p in (root / prefix).iterdir() if p.suffix != ".tif"]


def upload(client, folders: dict[str, list[Path]], dates: list[dt.date], scratch: Path,
           prefixes: dict | None = None) -> dict[str, int]:
    """Every date of every tile onto the server; {key: size} of the band and SCL objects. prefixes: filled with
    {(tile, date): the scene's key prefix} (its metadata is under ``scratch`` / prefix)."""
    jobs = []
    for tile in ALL_TILES:
        for i, date in enumerate(dates):
            prefix, meta = _metadata(scratch, tile, date)
            if prefixes is not None:
                prefixes[tile, date] = prefix
            jobs += [(f"{prefix}/{p.name}", p, b"") for p in meta]
            for band in BANDS:
                key = f"{prefix}/{band}.tif"
                jobs.append((key, folders[tile][i % len(folders[tile])] / f"{band}.tif", f"\n{key}\n".encode()))
    return dict(_put_all(client, jobs))


def _put_all(client, jobs):
    """(key, size) of the objects put that have a suffix (the band files)."""

    def put(job):
        key, path, suffix = job
        body = path.read_bytes() + suffix
        client.put_object(Bucket=BUCKET, Key=key, Body=body, ACL="public-read")
        return key, len(body)

    with ThreadPoolExecutor(4) as pool:
        yield from ((key, n) for (key, n), (_, _, suffix) in zip(pool.map(put, jobs), jobs) if suffix)


# --- the areas -----------------------------------------------------------------------------------------------


def bbox_around(tile: str, x: float, y: float) -> str:
    """'W,S,E,N' (lon/lat) enclosing the SIDE x SIDE m square centred on (x, y) in the tile's UTM zone."""
    from rasterio.warp import transform_bounds

    from s2desktop.core import tiles

    w, s, e, n = transform_bounds(f"EPSG:{tiles.footprint(tile).epsg}", "EPSG:4326", x - SIDE / 2, y - SIDE / 2,
                                  x + SIDE / 2, y + SIDE / 2, densify_pts=21)
    return f"{w:.6f},{s:.6f},{e:.6f},{n:.6f}"


def areas() -> tuple[str, str]:
    """The one-tile area (the centre of 33UUP) and the two-tile one (centred on the middle of the overlap)."""
    from s2desktop.core import tiles

    a, b = (tiles.footprint(t).utm_bounds for t in TILES)
    cy = (a[1] + a[3]) / 2
    return bbox_around(TILES[0], (a[0] + a[2]) / 2, cy), bbox_around(TILES[0], (b[0] + a[2]) / 2, cy)


# --- the legs ------------------------------------------------------------------------------------------------


@dataclass
class Leg:
    name: str
    label: str
    seconds: float
    fetched: int
    requests: int
    whole: int  # bytes of the whole files of the dates of the tiles the leg covers
    timings: list  # the proxy's (start, first reply byte, last reply byte) of the leg's requests
    target: str = ""

    @property
    def share(self) -> float:
        return 100 * self.fetched / self.whole

    @property
    def tiles_read(self) -> str:
        """The tiles whose band or SCL objects the leg read from (headers or windows)."""
        read = {t for *_, line, _header in self.timings for t in ALL_TILES if f"_{t}_" in line and ".tif" in line}
        return ",".join(sorted(read)) or "-"

    def breakdown(self) -> dict:
        """Seconds with at least one request in flight, the mean number in flight then, and the time to the
        first reply byte (the added latency + the server's time) per request."""
        spans = sorted((s, max(x for x in (s, f, e) if x is not None)) for s, f, e, *_ in self.timings)
        busy, end = 0.0, None
        for s, e in spans:
            if end is None or s > end:
                busy, end = busy + e - s, e
            elif e > end:
                busy, end = busy + e - end, e
        ttfb = sorted(f - s for s, f, *_ in self.timings if f is not None) or [0.0]
        return {"busy": busy, "in_flight": sum(e - s for s, e in spans) / busy if busy else 0.0,
                "ttfb_mean": sum(ttfb) / len(ttfb), "ttfb_median": ttfb[len(ttfb) // 2],
                "waiting": sum(ttfb)}

    def asked(self) -> dict:
        """What the requests asked for: HEADs, ranged GETs, other requests (listings, whole small objects), the
        objects read by range, and the bytes of all ranges vs of their union per object (the rest: read again)."""
        heads = other = 0
        ranges: dict[str, list] = {}
        for *_, line, header in self.timings:
            method, path = (line.split(" ") + [""])[:2]
            m = re.fullmatch(r"bytes=(\d+)-(\d+)", header or "")
            if method == "HEAD":
                heads += 1
            elif method == "GET" and m:
                ranges.setdefault(path, []).append((int(m[1]), int(m[2]) + 1))
            else:
                other += 1
        distinct = 0
        for spans in ranges.values():
            end = -1
            for a, b in sorted(spans):
                distinct += max(0, b - max(a, end))
                end = max(end, b)
        return {"heads": heads, "ranged": sum(map(len, ranges.values())), "other": other, "objects": len(ranges),
                "asked": sum(b - a for spans in ranges.values() for a, b in spans), "distinct": distinct}


class Runner:
    def __init__(self, proxy: ThrottledProxy, work: Path):
        self.proxy, self.work = proxy, work

    def home(self, name: str) -> Path:
        return self.work / f"home-{name}"

    def command(self, name: str, args: list[str], home: str, code: Path = REPO) -> tuple[float, int, int, list]:
        """Runs ``python -m s2desktop *args`` (the package in ``code``); seconds, bytes, requests and request
        timings through the proxy."""
        env = dict(os.environ, S2DESKTOP_HOME=str(self.home(home)), PYTHONPATH=str(code),
                   AWS_EC2_METADATA_DISABLED="true", AWS_CONFIG_FILE=os.devnull,
                   AWS_SHARED_CREDENTIALS_FILE=os.devnull)
        (self.work / f"{name}.argv").write_text("\n".join(args))
        return self._timed(name, [sys.executable, "-m", "s2desktop", *args], env)

    def odc(self, name: str, args: list[str]) -> tuple[float, int, int, list]:
        """Runs odc-stac's leg (bench_area_odc.py ``*args``) with the moto credentials: as `command`."""
        env = dict(os.environ, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_REGION="us-east-1",
                   AWS_EC2_METADATA_DISABLED="true", AWS_CONFIG_FILE=os.devnull,
                   AWS_SHARED_CREDENTIALS_FILE=os.devnull)
        return self._timed(name, [sys.executable, str(Path(__file__).with_name("bench_area_odc.py")), *args], env)

    def _timed(self, name: str, cmd: list[str], env: dict) -> tuple[float, int, int, list]:
        log = self.work / f"{name}.log"
        b0, r0, n0 = self.proxy.bytes_sent, self.proxy.requests, len(self.proxy.timings)
        t0 = time.perf_counter()
        with log.open("w") as out:
            rc = subprocess.run(cmd, env=env, stdout=out, stderr=out, cwd=self.work).returncode
        seconds = time.perf_counter() - t0
        if rc:
            sys.exit(f"leg {name} failed (exit {rc}):\n{log.read_text()[-3000:]}")
        time.sleep(0.5)  # the proxy records a request when its connection closes
        return seconds, self.proxy.bytes_sent - b0, self.proxy.requests - r0, self.proxy.timings[n0:]


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=10980, help="px a side of a 10 m band (default 10980)")
    ap.add_argument("--dates", type=int, default=10)
    ap.add_argument("--variants", type=int, default=3, help="distinct scenes generated per tile (default 3)")
    ap.add_argument("--rate-mbit", type=float, default=100.0)
    ap.add_argument("--latency-ms", type=float, default=40.0)
    ap.add_argument("--per-connection", action="store_true", help="the rate per connection, not one shared link")
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "s2bench-area",
                    help="where generated scenes are kept between runs (default: $TMPDIR/s2bench-area)")
    ap.add_argument("--skip-old-way", action="store_true", help="leave out (d), the whole-file download")
    ap.add_argument("--quick", action="store_true", help="a smoke run: --size 2745 --dates 3 --variants 1")
    ap.add_argument("--before", metavar="REV", help="also run legs (a)-(c) with git revision REV's code")
    ap.add_argument("--odc-config", choices=ODC_CONFIGS, default=ODC_BEST,
                    help=f"how odc-stac's legs load (default {ODC_BEST}: the best on the quick run)")
    ap.add_argument("--odc-all", action="store_true", help="odc-stac's legs in every configuration, each a leg")
    ap.add_argument("--skip-odc", action="store_true", help="leave out odc-stac's legs")
    ap.add_argument("--keep", type=Path, help="copy the legs' outputs, logs and odc-stac's items into this folder")
    return ap.parse_args()


def main() -> int:
    args = parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a killed benchmark still stops its server
    if args.quick:
        args.size, args.dates, args.variants = 2745, 3, 1
    res = 109800 / args.size
    dates = _dates(args.dates)
    span = ["--start", dates[0].isoformat(), "--end", dates[-1].isoformat()]

    folders = ensure_variants(args.cache, args.size, args.variants)
    proc = subprocess.Popen([sys.executable, "-c", SERVER], stdout=subprocess.PIPE, text=True)
    try:
        endpoint = f"http://127.0.0.1:{proc.stdout.readline().strip()}"
        client = _client(endpoint)
        client.create_bucket(Bucket=BUCKET)
        with tempfile.TemporaryDirectory(prefix="s2bench-area-") as tmp:
            work = Path(tmp)
            t0 = time.perf_counter()
            prefixes: dict = {}
            sizes = upload(client, folders, dates, work / "meta", prefixes)
            loaded = sum(sizes.values())
            rss = int(subprocess.run(["ps", "-o", "rss=", "-p", str(proc.pid)], capture_output=True,
                                     text=True).stdout or 0) * 1024
            print(f"loaded {len(sizes)} band/SCL objects, {loaded / 1e9:.2f} GB, into moto in "
                  f"{time.perf_counter() - t0:.0f} s; moto's resident memory {rss / 1e6:.0f} MB", flush=True)
            moto_range_cost(client, sizes)
            warm(client, [k for k in sizes if any(f"_{t}_" in k for t in TILES[:2])])

            whole = {t: sum(n for key, n in sizes.items() if f"_{t}_" in key) for t in TILES}
            rate = int(args.rate_mbit * 1e6 / 8)
            proxy = ThrottledProxy(endpoint, rate=rate, latency=args.latency_ms / 1000,
                                   total_rate=None if args.per_connection else rate)
            one, two = areas()
            src = ["--source", "cogs", "--endpoint-url", proxy.endpoint]
            print(f"machine: {os.cpu_count()} cores; {args.dates} dates of {' and '.join(TILES)}, {args.size} px "
                  f"({res:g} m), {args.variants} distinct scene(s) per tile; band + SCL files of one tile: "
                  f"{whole[TILES[0]] / 1e9:.2f} GB; link {args.rate_mbit:g} Mbit/s "
                  f"{'per connection' if args.per_connection else 'shared'}, +{args.latency_ms:g} ms per request")
            print(f"areas: one tile --bbox {one}; two tiles --bbox {two}", flush=True)

            run = Runner(proxy, work)
            legs = []

            def leg(name, label, argv, home, tiles_in, target="", code=REPO, odc=False):
                seconds, fetched, requests, timings = (run.odc(name, argv) if odc else
                                                       run.command(name, argv, home, code))
                legs.append(Leg(name, label, seconds, fetched, requests, sum(whole[t] for t in tiles_in), timings,
                                target))
                print(f"  {name}: {seconds:.1f} s, {fetched / 1e6:.1f} MB, {requests} requests, tiles read "
                      f"{legs[-1].tiles_read}{_output(work, argv)}", flush=True)

            area = ["composite", "--bbox", one, *span, *src]
            leg("a", f"10 km area, {PREVIEW_M} m preview", [*area, "--resolution", str(PREVIEW_M), "-o", "a.tif"],
                "a", TILES[:1], f"< {TARGETS['preview']:g} s")
            leg("b", f"10 km area, {res:g} m", [*area, "--resolution", f"{res:g}", "-o", "b.tif"], "b", TILES[:1],
                f"< {TARGETS['full']:g} s")
            leg("e", "(b) again, (b)'s cache", [*area, "--resolution", f"{res:g}", "-o", "e.tif"], "b",
                TILES[:1])
            leg("c", f"10 km area over 2 tiles, {res:g} m", ["composite", "--bbox", two, *span, *src,
                "--resolution", f"{res:g}", "-o", "c.tif"], "c", TILES, f"< {TARGETS['full']:g} s")
            configs = odc_configs(args)
            if configs:
                items = {t: stac_items(work / "meta", prefixes, folders, dates, t) for t in TILES}
                odc_legs(leg, client, work, items, proxy.endpoint.removeprefix("http://"), configs)
            if not args.skip_old_way:
                tile = ["--tile", TILES[0], *span, *src, "--out-dir", "dl"]
                leg("d1", "old way: download whole files", ["download", *tile, "--bands", ",".join(BANDS)], "d",
                    TILES[:1])
                leg("d2", "old way: composite the tile", ["composite", *tile, "-o", "d.tif"], "d", TILES[:1])
            if args.before:
                code = export(args.before, work / "before")
                for g in [g for g in legs if g.name in ("a", "b", "c")]:
                    argv = [*_argv_of(work, g.name)[:-1], f"{g.name}-before.tif"]
                    leg(f"{g.name}-before", f"{g.label} ({args.before})", argv, f"{g.name}-before", [], code=code)
                    legs[-1].whole = g.whole
            proxy.close()
            report(legs, args, work)
            if args.keep:
                keep(work, args.keep)
    finally:
        proc.terminate()
        proc.wait(30)
    return 0


# --- odc-stac on the same link and data --------------------------------------------------------------------


def odc_configs(args) -> list[str]:
    """The configurations odc-stac's legs run in; none (and one line saying how to install it) without it."""
    if args.skip_odc:
        return []
    try:
        import odc.stac  # noqa: F401
        import pystac  # noqa: F401
    except ImportError:
        print("odc-stac legs skipped: odc-stac is not installed (pip install -e '.[bench]')", flush=True)
        return []
    return list(ODC_CONFIGS) if args.odc_all else [args.odc_config]


def stac_items(meta: Path, prefixes: dict, folders: dict[str, list[Path]], dates: list[dt.date],
               tile: str) -> list[dict]:
    """The tile's STAC items (every date) as earth-search serves them, for odc-stac: the archive's item with its
    B02/B03/B04/SCL assets as ``s3://`` hrefs and the projection extension of the band files on the server (the
    archive's item describes the tiny rasters `_metadata` wrote), SCL's nodata 0, the tile's footprint."""
    import json

    import rasterio

    from s2desktop.core import tiles

    f = tiles.footprint(tile)
    out = []
    for i, date in enumerate(dates):
        prefix = prefixes[tile, date]
        item = json.loads((meta / prefix / f"{prefix.rsplit('/', 1)[-1]}.json").read_text())
        assets = {}
        for key, band in (("blue", "B02"), ("green", "B03"), ("red", "B04"), ("scl", "SCL")):
            with rasterio.open(folders[tile][i % len(folders[tile])] / f"{band}.tif") as ds:
                shape, transform = [ds.height, ds.width], list(ds.transform)[:6]
            bands = item["assets"][key].get("raster:bands") or [{"nodata": 0, "data_type": "uint8"}]
            assets[key] = {**item["assets"][key], "href": f"s3://{BUCKET}/{prefix}/{band}.tif", "proj:shape": shape,
                           "proj:transform": transform, "raster:bands": bands}
        item.update(assets=assets, geometry={"type": "Polygon", "coordinates": [f.ring.tolist()]},
                    bbox=list(f.bbox), stac_extensions=STAC_EXTENSIONS)
        out.append(item)
    return out


def odc_legs(leg, client, work: Path, items: dict[str, list[dict]], endpoint: str, configs: list[str]) -> None:
    """odc-stac's legs (oa), (ob), (oc) on the grid of s2desktop's (a), (b), (c): its output's CRS, transform and
    size; the items of the tiles the area needs, the nearer tile first (s2desktop's mosaic order), as one
    FeatureCollection on the server that the leg GETs through the proxy (a STAC API search: one request a page,
    as s2desktop's own search goes through the link)."""
    import json

    import rasterio

    for name, tiles_in in (("a", TILES[:1]), ("b", TILES[:1]), ("c", TILES)):
        with rasterio.open(work / f"{name}.tif") as ds:
            grid = ["--crs", ds.crs.to_string(), "--transform", ",".join(f"{v!r}" for v in list(ds.transform)[:6]),
                    "--shape", f"{ds.height},{ds.width}"]
            order = sorted(tiles_in, key=lambda t: (_distance(t, ds.bounds), t))
        found = json.dumps({"type": "FeatureCollection", "features": [it for t in order for it in items[t]]})
        (work / f"items-{name}.json").write_text(found)
        client.put_object(Bucket=BUCKET, Key=f"search/{name}.json", Body=found.encode(), ACL="public-read")
        for config in configs:
            odc = f"o{name}" if len(configs) == 1 else f"o{name}-{config}"
            leg(odc, f"odc-stac ({name}), {config}", ["--items", f"http://{endpoint}/{BUCKET}/search/{name}.json",
                *grid, "--config", config, "--endpoint", endpoint, "-o", f"{odc}.tif"], odc, tiles_in, odc=True)


def _distance(tile: str, bounds) -> float:
    """From the centre of ``bounds`` (the output's, in the tile's zone) to the tile's centre, in m."""
    from s2desktop.core import tiles

    left, bottom, right, top = tiles.footprint(tile).utm_bounds
    return ((left + right - bounds.left - bounds.right) ** 2 + (bottom + top - bounds.bottom - bounds.top) ** 2) ** 0.5


def same_pixels(a: Path, b: Path) -> str:
    """How alike two R,G,B outputs on one grid are: over the pixels both have (no band 0), the share equal in
    every band and within 3 DN; and the pixels only one of them has."""
    import numpy as np
    import rasterio

    with rasterio.open(a) as x, rasterio.open(b) as y:
        if (x.shape, x.transform, x.crs) != (y.shape, y.transform, y.crs):
            return f"different grids ({x.shape} vs {y.shape})"
        p, q = x.read().astype(np.int32), y.read().astype(np.int32)
    has_p, has_q = (p > 0).all(axis=0), (q > 0).all(axis=0)
    both = has_p & has_q
    diff = np.abs(p - q).max(axis=0)[both]
    n = max(1, int(both.sum()))
    return (f"{100 * np.mean(diff == 0) if diff.size else 0:.2f} % equal, "
            f"{100 * np.mean(diff <= 3) if diff.size else 0:.2f} % within 3 DN of {n} px both have "
            f"(largest difference {int(diff.max()) if diff.size else 0} DN); "
            f"only s2desktop {int((has_p & ~has_q).sum())} px, only odc-stac {int((has_q & ~has_p).sum())} px")


def side_by_side(legs: list[Leg], link: float, work: Path) -> None:
    """Each of (a)-(c) by s2desktop and by odc-stac (every configuration run): seconds, MB, requests, each vs
    the link floor of its own bytes, s2desktop's speed-up, the issue's targets, and how alike the outputs are."""
    by = {g.name: g for g in legs}
    odc = [g for g in legs if g.name.startswith("o")]
    if not odc:
        return
    print()
    print("s2desktop vs odc-stac, the same server, link and scenes (x floor: seconds / the link's time for the "
          "leg's own bytes):")
    print(f"{'leg':4} {'config':11} {'seconds':>15} {'speed-up':>9} {'MB fetched':>17} {'requests':>13} "
          f"{'x floor':>13}  target")
    for o in odc:
        name, config = o.name[1], o.label.rsplit(", ", 1)[-1]
        s = by[name]
        up = o.seconds / s.seconds
        print(f"({name}) {config:11} {s.seconds:7.1f} {o.seconds:7.1f} {up:8.2f}x {s.fetched / 1e6:8.1f} "
              f"{o.fetched / 1e6:8.1f} {s.requests:6d} {o.requests:6d} {_floor(s, link):6.2f} {_floor(o, link):6.2f}"
              f"  {_odc_verdict(name, s, up, link)}")
    print("columns: s2desktop then odc-stac; speed-up: odc-stac's seconds / s2desktop's")
    if len({o.label.rsplit(", ", 1)[-1] for o in odc}) > 1:
        best: dict[str, Leg] = {}
        for o in odc:
            if o.name[1] not in best or o.seconds < best[o.name[1]].seconds:
                best[o.name[1]] = o
        print("against odc-stac's fastest configuration of each leg:")
        for n, o in best.items():
            print(f"  ({n}) {o.label.rsplit(', ', 1)[-1]} {o.seconds:.1f} s, s2desktop's speed-up "
                  f"{o.seconds / by[n].seconds:.2f}x  {_odc_verdict(n, by[n], o.seconds / by[n].seconds, link)}")
    alike: dict[tuple[str, str], list[str]] = {}
    for o in odc:
        alike.setdefault((o.name[1], same_pixels(work / f"{o.name[1]}.tif", work / f"{o.name}.tif")), []).append(o.name)
    for (name, text), names in alike.items():
        print(f"same computation? ({name}) vs ({', '.join(names)}): {text}")
    print("only odc-stac: pixels outside the area's polygon, to which s2desktop clips its output")
    print("odc-stac's seconds by phase (its own clock, from after the interpreter's start; with Dask the reads "
          "are in the median):")
    for o in odc:
        phases = re.findall(r"^phases: (.*)$", (work / f"{o.name}.log").read_text(), re.M)
        print(f"  ({o.name}) {phases[-1] if phases else '?'}")


def _floor(g: Leg, link: float) -> float:
    return g.seconds / (g.fetched / link) if g.fetched else float("inf")


def _odc_verdict(name: str, s: Leg, up: float, link: float) -> str:
    """Issue 19's targets: (b) <= 1.2x its link floor and >= 1.5x faster than odc-stac; (a) ahead of it."""
    if name == "a":
        return f"ahead of odc-stac {'met' if up > 1 else 'MISSED'}"
    if name == "b":
        floor, speed = ODC_TARGETS["floor"], ODC_TARGETS["speedup"]
        return (f"<= {floor:g}x floor {'met' if _floor(s, link) <= floor else 'MISSED'}; >= {speed:g}x faster "
                f"{'met' if up >= speed else 'MISSED'}")
    return ""


def keep(work: Path, dest: Path) -> None:
    """The legs' outputs and logs and odc-stac's items, copied into ``dest`` (the work folder is removed)."""
    dest.mkdir(parents=True, exist_ok=True)
    for p in [*work.glob("*.tif"), *work.glob("*.log"), *work.glob("items-*.json")]:
        shutil.copy2(p, dest)


def _argv_of(work: Path, name: str) -> list[str]:
    """The arguments leg ``name`` ran with."""
    return (work / f"{name}.argv").read_text().split("\n")


def export(rev: str, dest: Path) -> Path:
    """Revision ``rev``'s package and resources, from ``git archive``, into ``dest``: a PYTHONPATH for it."""
    dest.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(REPO), "archive", rev, "s2desktop", "resources"], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


def _output(work: Path, argv: list[str]) -> str:
    """', output W x H px, V % valid' for a composite leg (a check that it wrote what it should)."""
    import numpy as np
    import rasterio

    if "-o" not in argv:
        return ""
    with rasterio.open(work / argv[argv.index("-o") + 1]) as ds:
        valid = ds.read(1, out_shape=(min(ds.height, 1024), min(ds.width, 1024))) > 0
        return f", output {ds.width} x {ds.height} px at {ds.res[0]:g} m, {100 * np.mean(valid):.1f} % valid"


def moto_range_cost(client, sizes: dict[str, int]) -> None:
    """moto reads the whole object for a ranged GET: 1 MB of the largest object vs of the smallest (an SCL),
    straight from moto (no proxy)."""
    out = []
    for key in (max(sizes, key=sizes.get), min(sizes, key=sizes.get)):
        n = min(1 << 20, sizes[key] // 5)
        times = []
        for i in range(5):
            t0 = time.perf_counter()
            client.get_object(Bucket=BUCKET, Key=key, Range=f"bytes={i * n}-{(i + 1) * n - 1}")["Body"].read()
            times.append(time.perf_counter() - t0)
        out.append(f"{sorted(times)[2] * 1000:.0f} ms for {n / 1e6:.2f} MB of a {sizes[key] / 1e6:.1f} MB object")
    print(f"moto, no proxy, a ranged GET (median of 5): {out[0]}; {out[1]}", flush=True)


def warm(client, keys: list[str]) -> None:
    """A byte of every object the legs read, straight from moto (not timed, not through the proxy): moto reads a
    whole object from its spool file for any ranged GET, and the first leg to touch an object would pay for that
    file coming from disk into the page cache -- so the leg run first (a) was ~2 s slower than the same leg later,
    and odc-stac's legs, run after s2desktop's, read warm objects."""
    t0 = time.perf_counter()
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda k: client.get_object(Bucket=BUCKET, Key=k, Range="bytes=0-0")["Body"].read(), keys))
    print(f"warmed moto's copies of the {len(keys)} objects the legs read in {time.perf_counter() - t0:.0f} s "
          "(untimed)", flush=True)


def report(legs: list[Leg], args, work: Path) -> None:
    """The table of the legs against the targets, the ratios, then where each leg's time went."""
    by = {g.name: g for g in legs}
    link = args.rate_mbit * 1e6 / 8
    print()
    print(f"{'leg':4} {'':34} {'seconds':>8} {'MB fetched':>11} {'% whole':>8} {'requests':>9} {'link floor s':>13}"
          f" {'tiles read':>18}  target")
    now = [g for g in legs if not g.name.endswith("-before") and not g.name.startswith("o")]
    for g in now:
        print(f"({g.name}) {g.label:34} {g.seconds:8.1f} {g.fetched / 1e6:11.1f} {g.share:8.2f} {g.requests:9d} "
              f"{g.fetched / link:13.1f} {g.tiles_read:>18}  {_verdict(g)}")
    if "d1" in by:
        d = by["d1"].seconds + by["d2"].seconds
        fetched = by["d1"].fetched + by["d2"].fetched
        print(f"(d)  {'old way, download + composite':34} {d:8.1f} {fetched / 1e6:11.1f} "
              f"{100 * fetched / by['d1'].whole:8.2f} {by['d1'].requests + by['d2'].requests:9d} "
              f"{fetched / link:13.1f}")
        print(f"old way / streamed: time (d)/(a) {d / by['a'].seconds:.1f}x, (d)/(b) {d / by['b'].seconds:.1f}x; "
              f"bytes (d)/(a) {fetched / max(1, by['a'].fetched):.0f}x, (d)/(b) {fetched / max(1, by['b'].fetched):.0f}x")
    print(f"second run (e) fetched {by['e'].fetched / 1e6:.1f} MB = "
          f"{100 * by['e'].fetched / max(1, by['b'].fetched):.1f} % of (b)'s, in {by['e'].seconds / by['b'].seconds:.2f}x "
          f"its time; two tiles (c) / one tile (b): {by['c'].seconds / by['b'].seconds:.2f}x time, "
          f"{by['c'].fetched / max(1, by['b'].fetched):.2f}x bytes")
    if any(g.name.endswith("-before") for g in legs):
        _compare(by, args.before)
    side_by_side(legs, link, work)
    print()
    w = max(len(g.name) + 2 for g in legs)
    print(f"where the time goes ({args.latency_ms:g} ms added per request; 'first byte' = that latency + moto's time):")
    print(f"{'leg':{w}} {'seconds':>8} {'network busy s':>15} {'other s':>8} {'in flight':>10} {'first byte ms':>14}"
          f" {'median':>7} {'sum of waits s':>15}")
    for g in legs:
        b = g.breakdown()
        print(f"{'(' + g.name + ')':{w}} {g.seconds:8.1f} {b['busy']:15.1f} {g.seconds - b['busy']:8.1f} "
              f"{b['in_flight']:10.1f} "
              f"{1000 * b['ttfb_mean']:14.0f} {1000 * b['ttfb_median']:7.0f} {b['waiting']:15.1f}")
    print("'network busy': at least one request in flight; 'other': none in flight (start-up, search, compositing, "
          "writing); 'in flight': mean requests at once while busy")
    print()
    print(f"{'leg':{w}} {'HEAD':>5} {'ranged GET':>11} {'other':>6} {'objects':>8} {'MB in ranges':>13} "
          f"{'MB distinct':>12} {'read again':>11}")
    for g in legs:
        q = g.asked()
        again = 100 * (q["asked"] - q["distinct"]) / q["asked"] if q["asked"] else 0.0
        print(f"{'(' + g.name + ')':{w}} {q['heads']:5d} {q['ranged']:11d} {q['other']:6d} {q['objects']:8d} "
              f"{q['asked'] / 1e6:13.1f} "
              f"{q['distinct'] / 1e6:12.1f} {again:10.0f}%")
    print("'other': listings and whole small objects (metadata); 'objects': objects read by range; ranges as asked "
          "(one past an object's end counts in full); 'MB distinct': their union per object; 'read again': asked "
          "more than once (by any process)")


def _compare(by: dict, rev: str) -> None:
    """Legs (a)-(c) with revision ``rev``'s code and with this one, side by side."""
    print()
    print(f"{rev} vs this code (each leg in a fresh home, the same server and link):")
    print(f"{'leg':4} {'seconds':>15} {'ratio':>6} {'MB fetched':>17} {'ratio':>6} {'requests':>13} "
          f"{'tiles read':>30}")
    for name in ("a", "b", "c"):
        old, new = by.get(f"{name}-before"), by.get(name)
        if old is None or new is None:
            continue
        print(f"({name}) {old.seconds:7.1f} {new.seconds:7.1f} {new.seconds / old.seconds:6.2f} "
              f"{old.fetched / 1e6:8.1f} {new.fetched / 1e6:8.1f} {new.fetched / max(1, old.fetched):6.2f} "
              f"{old.requests:6d} {new.requests:6d} {old.tiles_read:>18} -> {new.tiles_read}")
    print("ratio: this code / " + rev + " (below 1: less)")


def _verdict(g: Leg) -> str:
    out = []
    if g.target:
        out.append(f"{g.target} {'met' if g.seconds < float(g.target.split()[1]) else 'MISSED'}")
    if g.name in ("a", "b", "c"):
        out.append(f"bytes < {TARGETS['share']:g} % {'met' if g.share < TARGETS['share'] else 'MISSED'}")
    return "; ".join(out)


if __name__ == "__main__":
    sys.exit(main())
