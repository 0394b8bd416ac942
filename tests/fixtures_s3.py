"""A real S3 server on 127.0.0.1 (moto's standalone server over HTTP), seeded with small Sentinel-2 scenes.

Fixtures:
- ``s3_server``   (session) endpoint URL of the server (port 0 -> the real port read back).
- ``seeded``      (session) the buckets written once: ``sentinel-s2-l1c``, ``sentinel-s2-l2a``,
                  ``sentinel-cogs`` with synthetic scenes from archive.write_scene (64 px bands, real JP2/COG,
                  nodata edges, realistic tileInfo.json, previews) across month and year boundaries with several
                  sequences per day, the real 55JGF scene when ../shared/s2-real is present, and
                  ``s2-many-prefixes`` with 1,100 year prefixes (keys only) to exercise pagination.
- ``seeded_s3``   (function) the same, with fake AWS credentials in the environment (the autouse fixture clears
                  them); tests that change objects use ``scratch_bucket`` instead so nothing leaks between tests.
- ``slow_s3``     (function) ``seeded_s3`` reached through ``ThrottledProxy``: downloads take seconds, so a test
                  can cancel or close partway through a file however fast the machine is.
- ``RequestRecorder(client)`` records every S3 operation and its API parameters through botocore's
                  ``before-parameter-build`` event: list request counts, RequestPayer checks.

No boto3 patching: everything goes over HTTP to the server.
"""

from __future__ import annotations

import datetime as dt
import dataclasses
import logging
import socket
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import numpy as np
import pytest
from affine import Affine
from botocore.config import Config

from s2desktop.core import archive

TILE = "33UUP"
EPSG = 32633
SIZE = 64
TRANSFORM = Affine(109800 / SIZE, 0, 300000, 0, -109800 / SIZE, 5400000)  # 33UUP's place in the real grid
REAL_55JGF = "aws_tiles/l1c_T55JGF_20180617_N0206"

# (date, seq, cloud, coverage, baseline)
L1C_SCENES = [
    ("2022-12-30", 0, 10.0, 100.0, "05.09"),
    ("2022-12-31", 0, 55.5, 100.0, "05.09"),
    ("2023-01-02", 0, 0.0, 100.0, "05.09"),
    ("2023-01-02", 1, 20.0, 35.0, "05.09"),
    ("2023-01-10", 0, 95.0, 100.0, "05.09"),
    ("2023-02-01", 0, 5.0, 100.0, "05.09"),
    ("2023-07-04", 0, 12.0, 100.0, "05.09"),
    ("2023-07-14", 0, 0.5, 100.0, "05.09"),
    ("2023-07-14", 1, 30.0, 60.0, "05.09"),
    ("2023-07-14", 2, 70.0, 20.0, "05.09"),
    ("2023-07-31", 0, 3.0, 100.0, "05.09"),
    ("2023-08-01", 0, 40.0, 100.0, "05.09"),
    ("2023-10-12", 0, 8.0, 100.0, "05.09"),
    ("2024-01-05", 0, 1.0, 100.0, "05.10"),
    ("2021-06-15", 0, 2.0, 100.0, "03.00"),
]
L2A_SCENES = [
    ("2023-07-04", 0, 12.0, 100.0, "05.09"),
    ("2023-07-14", 0, 0.5, 100.0, "05.09"),
    ("2023-07-14", 1, 30.0, 60.0, "05.09"),
    ("2023-08-01", 0, 40.0, 100.0, "05.09"),
]
COG_SCENES = [
    ("2023-06-30", 0, 9.0, 100.0, "05.09"),
    ("2023-07-04", 0, 12.0, 100.0, "05.09"),
    ("2023-07-14", 0, 0.5, 100.0, "05.09"),
    ("2023-07-14", 1, 30.0, 60.0, "05.09"),
    ("2023-10-12", 0, 8.0, 100.0, "05.09"),
]
BUCKETS = {"l1c": "sentinel-s2-l1c", "l2a": "sentinel-s2-l2a", "cogs": "sentinel-cogs"}
MANY_BUCKET = "s2-many-prefixes"
MANY_YEARS = range(1000, 2100)


def fake_credentials(monkeypatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")


def admin_client(endpoint: str):
    """A client for seeding/inspecting the server (explicit fake keys, path-style)."""
    return boto3.client(
        "s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(s3={"addressing_style": "path"}, max_pool_connections=16, retries={"mode": "standard"}),
    )


def synthetic_bands(seed: int, size: int = SIZE) -> dict[str, np.ndarray]:
    """Smooth-ish uint16 reflectances with a nodata (0) wedge on the west edge, like an orbit edge: B02, B03, B04,
    B08 at ``size`` px (10 m), B11, B12, B8A at half of it (20 m)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    base = 800 + 40 * ((xx + yy) % 16) + rng.integers(0, 200, (size, size))
    edge = xx < (size // 5 + yy // 8)
    out = {}
    for i, band in enumerate(("B02", "B03", "B04", "B08")):
        a = (base + 300 * i).astype(np.uint16)
        a[edge] = 0
        out[band] = a
    # 20 m bands (half the size), each its own pattern of the 10 m values (no random draw: the 10 m bands stay
    # as they always were); B12 and B8A for six-band and SWIR composites
    for band, rows, cols, add in (("B11", 0, 0, 1500), ("B12", 1, 1, 900), ("B8A", 0, 1, 2500)):
        a = (base[rows::2, cols::2] + add).astype(np.uint16)
        a[edge[rows::2, cols::2]] = 0
        out[band] = a
    return out


@dataclass
class Seeded:
    endpoint: str
    roots: dict  # layout -> local folder holding the same bucket layout that was uploaded
    buckets: dict = field(default_factory=lambda: dict(BUCKETS))
    scenes: dict = field(default_factory=dict)  # layout -> list of (date, seq, cloud, coverage, baseline)
    real_55jgf: bool = False
    many_bucket: str = MANY_BUCKET

    def client(self):
        return admin_client(self.endpoint)


class ThrottledProxy:
    """A TCP proxy on 127.0.0.1 in front of the S3 test server that forwards the server's replies at most `rate`
    bytes per second per connection (requests go through unthrottled). Real sockets and real HTTP, only slower.

    ``latency`` (seconds, default 0) holds back the first bytes of every request for that long: the first chunk a
    client sends on a new connection, and the first it sends after the server has answered (the next request on
    a kept-alive connection), so each request/response round trip costs at least ``latency`` more, like a
    distant server. It does not model TCP/TLS handshakes (a new connection costs no extra round trips).
    ``total_rate`` (bytes per second, default None: no limit) caps the replies of all connections together, like
    one user's link: with it, many parallel connections are no faster than the link, and a chunk of a reply is
    forwarded once its time on the link is over (without it, a chunk is forwarded at once and the connection
    then waits, so a reply smaller than one chunk, rate / 50 bytes, is not slowed at all).

    ``timings`` holds (start, first reply byte, last reply byte, request line, Range header) of every finished
    request, times in ``time.monotonic()`` seconds (None for a request never answered): a benchmark can tell
    waiting from moving bytes, and see what was asked for."""

    def __init__(self, target: str, rate: int, latency: float = 0.0, total_rate: int | None = None):
        host, port = target.removeprefix("http://").rsplit(":", 1)
        self._target = (host, int(port))
        self._rate = rate
        self._latency = latency
        self._total_rate = total_rate
        self._link_free_at = 0.0  # monotonic time at which the shared link has sent everything booked so far
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self.bytes_sent = 0  # server -> client, over all connections (what a client fetched)
        self.requests = 0  # requests begun (a client's bytes after a reply, or the first on a connection)
        self.timings: list[tuple[float, float | None, float | None, str, str | None]] = []
        self.asked: list[str] = []  # the request line of every request begun, as it begins (answered or not)
        self.endpoint = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        threading.Thread(target=self._accept, name="throttled-proxy", daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:  # closed
                return
            try:
                upstream = socket.create_connection(self._target)
            except OSError:  # the server is gone: so is this connection
                client.close()
                continue
            with self._lock:
                self._sockets |= {client, upstream}
            exchange = [None] * 5  # this connection's request under way: start, first and last reply byte, head
            for src, dst, reply in ((client, upstream, False), (upstream, client, True)):
                threading.Thread(target=self._pipe, args=(src, dst, reply, exchange), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, reply: bool, exchange: list) -> None:
        rate = self._rate if reply else None
        chunk = max(4096, rate // 50) if rate else 256 * 1024
        try:
            while data := src.recv(chunk):
                if not reply and (exchange[0] is None or exchange[1] is not None):  # the first bytes of a request
                    with self._lock:
                        self.requests += 1
                        self._finish(exchange)
                        exchange[:] = [time.monotonic(), None, None, *_request_head(data)]
                        self.asked.append(exchange[3])
                    if self._latency:
                        time.sleep(self._latency)
                elif reply and exchange[1] is None:
                    exchange[1] = time.monotonic()
                if not rate:
                    dst.sendall(data)
                    continue
                with self._lock:
                    self.bytes_sent += len(data)
                if self._total_rate:  # a link delivers a chunk once it has gone through
                    time.sleep(max(len(data) / rate, self._book_link(len(data))))
                    dst.sendall(data)
                else:  # send, then keep the connection quiet for as long
                    dst.sendall(data)
                    time.sleep(len(data) / rate)
                exchange[2] = time.monotonic()
        except OSError:
            pass
        if reply:
            with self._lock:
                self._finish(exchange)
        for s in (src, dst):  # one side is done: so is the connection
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _finish(self, exchange: list) -> None:
        if exchange[0] is not None:
            self.timings.append(tuple(exchange))
            exchange[0] = None

    def _book_link(self, n: int) -> float:
        """Books ``n`` bytes on the shared link (``total_rate``); the seconds until they have gone through it."""
        with self._lock:
            now = time.monotonic()
            self._link_free_at = max(now, self._link_free_at) + n / self._total_rate
            return self._link_free_at - now

    def close(self) -> None:
        self._listener.close()
        with self._lock:
            for s in self._sockets:
                s.close()


def _request_head(data: bytes) -> tuple[str, str | None]:
    """The request line and the Range header of the first bytes of an HTTP request."""
    lines = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    ranges = [v.strip() for k, _, v in (h.partition(":") for h in lines[1:]) if k.strip().lower() == "range"]
    return lines[0], ranges[0] if ranges else None


class RequestRecorder:
    """Records (operation, params) of every request a botocore client makes."""

    def __init__(self, client):
        self.calls: list[tuple[str, dict]] = []
        self._lock = threading.Lock()
        self._client = client
        client.meta.events.register("before-parameter-build.s3", self._record)

    def _record(self, params, model, **kwargs):
        with self._lock:
            self.calls.append((model.name, dict(params)))

    def count(self, operation: str) -> int:
        with self._lock:
            return sum(1 for name, _ in self.calls if name == operation)

    def ops(self, operation: str) -> list[dict]:
        with self._lock:
            return [p for name, p in self.calls if name == operation]

    def clear(self) -> None:
        with self._lock:
            self.calls.clear()

    def close(self) -> None:
        self._client.meta.events.unregister("before-parameter-build.s3", self._record)


def _upload_tree(client, bucket: str, root: Path, pool, public: bool = False) -> None:
    files = [p for p in root.rglob("*") if p.is_file()]
    extra = {"ACL": "public-read"} if public else None  # the COG bucket is public: unsigned GETs must work
    list(pool.map(lambda p: client.upload_file(str(p), bucket, p.relative_to(root).as_posix(), ExtraArgs=extra),
                  files))


@pytest.fixture(scope="session")
def s3_server():
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one INFO line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture(scope="session")
def seeded(s3_server, tmp_path_factory) -> Seeded:
    from tests.conftest import SHARED

    base = tmp_path_factory.mktemp("buckets")
    roots = {layout: base / bucket for layout, bucket in BUCKETS.items()}
    spec = {"l1c": L1C_SCENES, "l2a": L2A_SCENES, "cogs": COG_SCENES}
    for layout, scenes in spec.items():
        for i, (date, seq, cloud, cover, baseline) in enumerate(scenes):
            bands = synthetic_bands(i + 7 * seq)
            scl = None
            if layout != "l1c":
                scl = (bands["B04"][::2, ::2] % 12).astype(np.uint8)
                scl[bands["B04"][::2, ::2] == 0] = 0
            archive.write_scene(
                roots[layout], layout, TILE, dt.date.fromisoformat(date), seq, bands, crs=EPSG,
                transform=TRANSFORM, baseline=baseline, cloud_cover=cloud, data_coverage=cover, scl=scl,
            )
    client = admin_client(s3_server)
    real = SHARED / REAL_55JGF
    with ThreadPoolExecutor(8) as pool:
        for layout, bucket in BUCKETS.items():
            client.create_bucket(Bucket=bucket)
            _upload_tree(client, bucket, roots[layout], pool, public=layout == "cogs")
        if real.is_dir():
            _upload_tree(client, BUCKETS["l1c"], real, pool)
        client.create_bucket(Bucket=MANY_BUCKET)
        # 1,100 tiny keys: written straight into the in-process server's store (1,100 PUTs over HTTP take
        # ~6 s on this shared machine); every read in the tests still goes over HTTP.
        backend = _backend_of(MANY_BUCKET)
        for y in MANY_YEARS:
            backend.put_object(MANY_BUCKET, f"tiles/{TILE[:2]}/U/UP/{y}/7/14/0/tileInfo.json", b"{}")
    return Seeded(s3_server, roots, scenes=spec, real_55jgf=real.is_dir())


@pytest.fixture
def seeded_s3(seeded, monkeypatch) -> Seeded:
    fake_credentials(monkeypatch)
    return seeded


@pytest.fixture
def slow_s3(seeded_s3):
    """`seeded_s3` through a proxy that serves 2 MiB/s per connection: a 64 MiB file takes seconds."""
    proxy = ThrottledProxy(seeded_s3.endpoint, rate=2 * 1024 * 1024)
    yield dataclasses.replace(seeded_s3, endpoint=proxy.endpoint)
    proxy.close()


@pytest.fixture
def scratch_bucket(seeded_s3):
    """A fresh, empty bucket for tests that write or corrupt objects; deleted afterwards."""
    client = seeded_s3.client()
    name = f"scratch-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=name)
    yield name
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=name):
        for obj in page.get("Contents", []):
            client.delete_object(Bucket=name, Key=obj["Key"])
    client.delete_bucket(Bucket=name)


def _backend_of(bucket: str):
    from moto.s3.models import s3_backends

    for account in s3_backends.values():
        for backend in account.values():
            if bucket in backend.buckets:
                return backend
    raise KeyError(bucket)


def corrupt_object(bucket: str, key: str, offset: int = 100) -> None:
    """Flip one byte of a stored object *inside the server*, keeping its recorded ETag and checksums: the server
    then serves bytes that do not match the object's ETag (bit rot, a broken mirror)."""
    from moto.s3.models import s3_backends

    for account in s3_backends.values():
        for backend in account.values():
            b = backend.buckets.get(bucket)
            if b is not None and key in b.keys:
                obj = b.keys[key]
                etag = obj.etag  # computes and stores the ETag of the good bytes first
                data = bytearray(obj.value)
                data[offset] ^= 0xFF
                obj.value = bytes(data)
                assert obj.etag == etag
                return
    raise KeyError(f"{bucket}/{key} not on the server")
