"""Benchmark: our downloader vs boto3's default download_file, and list requests of a search vs a full listing.

    .venv/bin/python tests/benchmarks/bench_download.py [--objects 9] [--size-mb 100]

1. Throughput. A local S3 server (moto's standalone server, in its own process so it does not share our GIL)
   holds 3 scenes x 3 bands of ~100 MB each in the L1C layout. We time ``search + plan + download_all`` (what
   ``s2desktop download`` runs: 4 files at once, 16 MiB ranged parts, 8 parts at once per file, verification)
   against boto3's ``download_file`` with its default TransferConfig run one file after another, and print both
   aggregate MB/s and the ratio. Caveat: moto reads the whole object for every ranged GET, so its throughput says
   nothing about real S3; the machine may also be shared.
2. Requests. A tile with eight years of history (one scene every 5 days, keys only) on an in-process server:
   list requests of a one-year and a one-month search vs listing the whole tile prefix. Each scene holds the
   keys of a real L1C scene of baseline 02.06 (87, from ../shared/s2-real's key lists) where that folder is
   beside the checkout, else a 30-key stand-in.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

SERVER = (
    "import logging, threading\n"
    "logging.getLogger('werkzeug').setLevel(logging.WARNING)\n"
    "from moto.server import ThreadedMotoServer\n"
    "s = ThreadedMotoServer(ip_address='127.0.0.1', port=0, verbose=False)\n"
    "s.start()\n"
    "print(s.get_host_and_port()[1], flush=True)\n"
    "threading.Event().wait()\n"
)
BUCKET = "sentinel-s2-l1c"


def _client(endpoint):
    import boto3

    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing",
                        aws_secret_access_key="testing")


def throughput(objects: int, size_mb: int) -> None:
    from s2desktop.core import catalog, download
    from s2desktop.core.sources import resolve_source

    proc = subprocess.Popen([sys.executable, "-c", SERVER], stdout=subprocess.PIPE, text=True)
    try:
        endpoint = f"http://127.0.0.1:{proc.stdout.readline().strip()}"
        client = _client(endpoint)
        client.create_bucket(Bucket=BUCKET)
        payload = bytearray(os.urandom(size_mb * 1_000_000))
        bands = ["B02", "B03", "B04"]
        n_scenes = -(-objects // len(bands))
        keys = []
        t = time.monotonic()
        for i in range(n_scenes):
            prefix = f"tiles/33/U/UP/2023/7/{4 + 10 * i}/0"
            client.put_object(Bucket=BUCKET, Key=f"{prefix}/tileInfo.json",
                              Body=b'{"productName": "S2B_MSIL1C_20230704T100559_N0509_R022_T33UUP_20230704T121150",'
                                   b' "cloudyPixelPercentage": 1.0, "dataCoveragePercentage": 100.0}')
            for band in bands:
                if len(keys) == objects:
                    break
                payload[:16] = hashlib.md5(f"{prefix}{band}".encode()).digest()  # distinct objects
                key = f"{prefix}/{band}.jp2"
                client.put_object(Bucket=BUCKET, Key=key, Body=bytes(payload))
                keys.append(key)
        total = len(keys) * len(payload)
        print(f"seeded {len(keys)} objects x {size_mb} MB in {time.monotonic() - t:.1f} s (server pid {proc.pid})")

        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                              S2DESKTOP_HOME=str(tmp / "home"))
            # boto3 defaults, one file after another
            t = time.monotonic()
            for i, key in enumerate(keys):
                client.download_file(BUCKET, key, str(tmp / f"seq_{i}.jp2"), ExtraArgs={"RequestPayer": "requester"})
            seq_s = time.monotonic() - t
            for p in tmp.glob("seq_*.jp2"):
                p.unlink()
            # ours: search + plan + download_all (what `s2desktop download` runs)
            source = resolve_source("l1c", endpoint_url=endpoint)
            t = time.monotonic()
            scenes = catalog.search(source, "33UUP", "2023-07-01", "2023-07-31")
            tasks = [tk for tk in download.plan(scenes, bands, tmp / "out")][:objects]
            results = download.download_all(source, tasks)
            ours_s = time.monotonic() - t
            assert sum(r.bytes_transferred for r in results) == total, "byte count mismatch"
            assert all("md5" in r.verified for r in results)
        mb = total / 1e6
        print()
        print(f"{'method':52} {'seconds':>8} {'MB/s':>8}")
        print(f"{'boto3 download_file, default config, sequential':52} {seq_s:8.1f} {mb / seq_s:8.1f}")
        print(f"{'s2desktop download (4 files x 8 parts, verified)':52} {ours_s:8.1f} {mb / ours_s:8.1f}")
        print(f"ratio s2desktop / boto3 sequential: {seq_s / ours_s:.2f}x  ({mb:.0f} MB in total)")
    finally:
        proc.terminate()
        proc.wait(10)


def _scene_key_names() -> list[str]:
    """Key names inside one scene folder: a real L1C scene's where ../shared/s2-real is there."""
    keylist = (Path(__file__).resolve().parents[3] / "shared" / "s2-real" / "metadata"
               / "sentinelhub-py_aws_safe_keylists" / "L1C_02.06.csv")
    if keylist.is_file():
        names = []
        for line in keylist.read_text().splitlines():
            key = line.split(";", 1)[0]  # s3://sentinel-s2-l1c/tiles/59/H/NA/2015/12/17/0/B01.jp2
            parts = key.split("/")
            if len(parts) > 11 and parts[3] == "tiles":
                names.append("/".join(parts[11:]))
        if "tileInfo.json" not in names:
            names.append("tileInfo.json")
        return sorted(set(names))
    return [f"B{i:02d}.jp2" for i in range(1, 13)] + ["B8A.jp2", "TCI.jp2", "tileInfo.json",
            "productInfo.json", "metadata.xml", "preview.jpg"] + [f"qi/MSK_{i}.gml" for i in range(12)]


def list_requests() -> None:
    import logging

    from moto.s3.models import s3_backends
    from moto.server import ThreadedMotoServer

    from s2desktop.core import catalog
    from s2desktop.core.sources import resolve_source

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    endpoint = "http://127.0.0.1:%d" % server.get_host_and_port()[1]
    try:
        client = _client(endpoint)
        client.create_bucket(Bucket=BUCKET)
        backend = next(b for acct in s3_backends.values() for b in acct.values() if BUCKET in b.buckets)
        names = _scene_key_names()
        day = dt.date(2016, 1, 1)
        n_keys = 0
        while day.year <= 2023:
            prefix = f"tiles/33/U/UP/{day.year}/{day.month}/{day.day}/0"
            body = (b'{"productName": "S2A_MSIL1C_20200101T100000_N0209_R022_T33UUP_20200101T120000",'
                    b' "cloudyPixelPercentage": 10.0}')
            for name in names:  # written straight into the in-process server: 17,000 PUTs over HTTP are slow
                backend.put_object(BUCKET, f"{prefix}/{name}", body if name == "tileInfo.json" else b"")
                n_keys += 1
            day += dt.timedelta(days=5)
        os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
        with tempfile.TemporaryDirectory() as tmp:
            os.environ["S2DESKTOP_HOME"] = tmp
            source = resolve_source("l1c", endpoint_url=endpoint)
            rows = []
            for label, a, b in [("one-year search (2022)", "2022-01-01", "2022-12-31"),
                                ("one-month search (2022-07)", "2022-07-01", "2022-07-31"),
                                ("ten-day search (2022-07-10..19)", "2022-07-10", "2022-07-19")]:
                stats = {}
                scenes = catalog.search(source, "33UUP", a, b, stats=stats)
                rows.append((label, stats["list_requests"], len(scenes)))
            pages = 0
            for _page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix="tiles/33/U/UP/"):
                pages += 1
        print()
        print(f"tile with 8 years of history: {n_keys} keys ({n_keys // len(names)} scenes x {len(names)} keys)")
        print(f"{'listing':40} {'list requests':>14} {'scenes':>7}")
        for label, n, s in rows:
            print(f"{label:40} {n:14d} {s:7d}")
        print(f"{'whole tile prefix (no delimiter)':40} {pages:14d}")
    finally:
        server.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--objects", type=int, default=9)
    ap.add_argument("--size-mb", type=int, default=100)
    args = ap.parse_args()
    throughput(args.objects, args.size_mb)
    list_requests()


if __name__ == "__main__":
    main()
