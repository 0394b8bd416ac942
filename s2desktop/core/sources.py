"""Where scenes come from: the three AWS bucket layouts, or a local folder holding one of them.

A :class:`Source` names the layout and owns one *store*. Both stores (S3 and a local folder) have the same small
interface, so the catalog and the downloader are written once:

- ``list_prefixes(prefix) -> list[str]``     child "folders" (delimiter '/'), every page, full prefixes ending '/'
- ``list_objects(prefix) -> list[ObjectInfo]`` every key under a prefix (no delimiter), every page
- ``get_bytes(key) -> bytes``                 a small object (metadata, previews)
- ``head(key) -> ObjectInfo``                 size, ETag, checksums, part size/count if the server tells
- ``download(key, fileobj, progress, cancel, etag)`` the whole object into an open binary file
- ``get_range(key, start, length, etag, cancel) -> bytes`` part of an object (S3 only: an area's COG tiles)
- ``stats``                                   request counters ({'list': n, 'get': n, 'head': n})

Requester-pays buckets get ``RequestPayer='requester'`` on every request (lists, HEADs and GETs).
"""

from __future__ import annotations

import os
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from s2desktop.core import layouts
from s2desktop.core.errors import CancelledError, InvalidInputError, NetworkError, NotFoundError
from s2desktop.core.progress import check_cancel

__all__ = ["Source", "ObjectInfo", "S3Store", "LocalStore", "resolve_source", "SOURCES", "detect_layout"]

# name: (bucket, region, layout, requester_pays, unsigned)
SOURCES = {
    "l1c": ("sentinel-s2-l1c", "eu-central-1", "l1c", True, False),
    "l2a": ("sentinel-s2-l2a", "eu-central-1", "l2a", True, False),
    "cogs": ("sentinel-cogs", "us-west-2", "cogs", False, True),
}

# Transfer tuning shared by the client pool size and the downloader (download.transfer_budget splits it).
DEFAULT_WORKERS = 4  # files at once
PART_CONCURRENCY = 8  # ranged GETs at once within one file, at most
CONNECTIONS = DEFAULT_WORKERS * PART_CONCURRENCY  # ranged GETs at once over all files, whatever the workers
CLIENT_POOL = CONNECTIONS + 16  # the S3 client's connection pool: the transfers plus searches and previews
RANGE_CHUNK = 256 << 10  # a ranged GET's body is read this much at a time (cancel is checked between)


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    etag: str | None = None  # without quotes
    checksums: dict = field(default_factory=dict, compare=False, hash=False)  # {'SHA256': b64, ...}
    checksum_type: str | None = None  # 'FULL_OBJECT' | 'COMPOSITE' | None
    parts_count: int | None = None
    part_size: int | None = None  # content length of part 1 when the server answered PartNumber=1


class _Counter:
    def __init__(self):
        self._lock = threading.Lock()
        self.counts = {"list": 0, "get": 0, "head": 0}

    def add(self, kind: str, n: int = 1) -> None:
        with self._lock:
            self.counts[kind] = self.counts.get(kind, 0) + n

    def snapshot(self) -> dict:
        with self._lock:
            return dict(self.counts)


def _strip_etag(etag: str | None) -> str | None:
    return etag.strip('"') if etag else None


class S3Store:
    """An S3 bucket (AWS or an S3-compatible endpoint)."""

    is_local = False

    def __init__(self, bucket: str, *, region: str | None, profile: str | None, endpoint_url: str | None,
                 requester_pays: bool, unsigned: bool, max_pool_connections: int | None = None):
        from s2desktop.core import s3

        self.bucket = bucket
        self.endpoint_url = endpoint_url
        self.requester_pays = requester_pays
        self._counter = _Counter()
        self.client = s3.make_client(
            region=region, profile=profile, endpoint_url=endpoint_url, unsigned=unsigned,
            require_credentials=requester_pays, bucket=bucket,
            max_pool_connections=max_pool_connections or CLIENT_POOL,
        )

    # --- helpers ---
    @property
    def stats(self) -> dict:
        return self._counter.snapshot()

    @property
    def extra(self) -> dict:
        """Arguments every request carries (RequestPayer for requester-pays buckets)."""
        return {"RequestPayer": "requester"} if self.requester_pays else {}

    def _error(self, exc, key=None):
        from s2desktop.core.s3 import translate_error

        return translate_error(exc, bucket=self.bucket, key=key, endpoint=self.endpoint_url)

    def url(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    # --- interface ---
    def _pages(self, prefix: str, delimiter: str | None):
        """Every page of a ListObjectsV2 listing (boto3's paginator); each page is one request, counted."""
        kwargs = {"Bucket": self.bucket, "Prefix": prefix, **self.extra}
        if delimiter:
            kwargs["Delimiter"] = delimiter
        pages = iter(self.client.get_paginator("list_objects_v2").paginate(**kwargs))
        while True:
            try:
                page = next(pages)
            except StopIteration:
                return
            except Exception as exc:  # botocore raises many types; translate them all
                self._counter.add("list")  # a failed request is still a request
                raise self._error(exc) from exc
            self._counter.add("list")
            yield page

    def list_prefixes(self, prefix: str) -> list[str]:
        out: list[str] = []
        for page in self._pages(prefix, "/"):
            out.extend(p["Prefix"] for p in page.get("CommonPrefixes", []) or [])
        return out

    def list_objects(self, prefix: str) -> list[ObjectInfo]:
        out: list[ObjectInfo] = []
        for page in self._pages(prefix, None):
            for obj in page.get("Contents", []) or []:
                out.append(ObjectInfo(obj["Key"], int(obj["Size"]), _strip_etag(obj.get("ETag"))))
        return out

    def get_bytes(self, key: str) -> bytes:
        """A small object (metadata, a preview) whole.

        botocore retries a request, but not a body that breaks off while it is read (a reset, a body cut short
        of its Content-Length), so the read is tried again here, with back-off, AWS_MAX_ATTEMPTS times in all;
        then a one-line NetworkError.
        """
        from s2desktop.core.s3 import BODY_ERRORS, backoff, max_attempts

        attempts = max_attempts()
        for attempt in range(1, attempts + 1):
            self._counter.add("get")
            try:
                body = self.client.get_object(Bucket=self.bucket, Key=key, **self.extra)["Body"]
            except Exception as exc:  # botocore raises many types (after its own retries); translate them all
                raise self._error(exc, key) from exc
            try:
                return body.read()
            except BODY_ERRORS:
                if attempt == attempts:
                    raise NetworkError(f"{self.url(key)}: the transfer broke off (connection reset or body cut short) "
                                       f"{attempts} times; check the network and try again") from None
                time.sleep(backoff(attempt))
        raise AssertionError("unreachable")

    def get_range(self, key: str, start: int, length: int, *, etag: str | None = None, cancel=None) -> bytes:
        """``length`` bytes of an object from ``start``: a ranged GET, pinned to ``etag`` when given.

        botocore retries the request; a body that breaks off, comes short or stalls past the read timeout is
        fetched again here, AWS_MAX_ATTEMPTS times in all, like a download's part; then a one-line NetworkError
        ending with what went wrong the last time. The body is read in chunks: a set ``cancel`` stops the read
        at the next one (CancelledError)."""
        from s2desktop.core.s3 import BODY_ERRORS, backoff, max_attempts

        attempts, last = max_attempts(), ""
        span = f"bytes={start}-{start + length - 1}"
        extra = {**self.extra, **({"IfMatch": f'"{etag}"'} if etag else {})}
        for attempt in range(1, attempts + 1):
            check_cancel(cancel, "cancelled")
            self._counter.add("get")
            try:
                body = self.client.get_object(Bucket=self.bucket, Key=key, Range=span, **extra)["Body"]
            except Exception as exc:  # botocore raises many types (after its own retries); translate them all
                raise self._error(exc, key) from exc
            try:
                data = _read_body(body, length, cancel)
            except BODY_ERRORS as exc:
                last = _one_line(exc)
            else:
                if len(data) == length:
                    return data
                last = f"got {len(data)} bytes, expected {length}"
            if attempt < attempts:
                time.sleep(backoff(attempt))
        raise NetworkError(f"{self.url(key)} {span}: the transfer failed {attempts} times; the last time: {last}")

    def head(self, key: str, *, part_number: int | None = None) -> ObjectInfo:
        self._counter.add("head")
        kwargs = {"Bucket": self.bucket, "Key": key, "ChecksumMode": "ENABLED", **self.extra}
        if part_number:
            kwargs["PartNumber"] = part_number
        try:
            resp = self.client.head_object(**kwargs)
        except Exception as exc:
            raise self._error(exc, key) from exc
        checksums = {
            name[len("Checksum"):]: resp[name]
            for name in ("ChecksumCRC32", "ChecksumCRC32C", "ChecksumSHA1", "ChecksumSHA256", "ChecksumCRC64NVME")
            if resp.get(name)
        }
        size = int(resp["ContentLength"])
        parts = resp.get("PartsCount")
        return ObjectInfo(
            key, size, _strip_etag(resp.get("ETag")), checksums, resp.get("ChecksumType"),
            int(parts) if parts else None, size if part_number and parts else None,
        )

    def download(self, key: str, fileobj, *, progress=None, cancel=None, etag: str | None = None,
                 transfer_config=None) -> None:
        """Ranged, concurrent GETs through s3transfer into ``fileobj`` (seekable, opened 'wb').

        ``progress(delta_bytes)`` comes from s3transfer's threads and can be negative when a part is retried.
        ``cancel`` (an Event) cancels the transfer future; in-flight parts stop at their next 256 KiB chunk.
        """
        from s3transfer.exceptions import CancelledError as TransferCancelled
        from s3transfer.manager import TransferManager
        from s3transfer.subscribers import BaseSubscriber

        class _Progress(BaseSubscriber):
            def on_progress(self, future, bytes_transferred, **kwargs):
                if progress is not None:
                    progress(bytes_transferred)

        # s3transfer pins every ranged part to the ETag of the first response (IfMatch) itself; the caller
        # verifies the whole file against the ETag it listed, so a changed object cannot slip through.
        extra = dict(self.extra)
        self._counter.add("get")
        manager = TransferManager(self.client, transfer_config)
        cancelled = False
        try:
            future = manager.download(self.bucket, key, fileobj, extra_args=extra, subscribers=[_Progress()])
            if cancel is None:
                future.result()
            else:
                while not future.done():
                    if cancel.wait(0.05):
                        cancelled = True
                        future.cancel()
                        break
                future.result()
        except TransferCancelled:
            cancelled = True
        except (CancelledError, OSError):
            raise  # OSError: writing the file failed (disk full, permissions): the caller words it
        except Exception as exc:
            if cancelled or (cancel is not None and cancel.is_set()):
                cancelled = True
            else:
                raise self._error(exc, key) from exc
        finally:
            manager.shutdown(cancel=cancelled)
        if cancelled:
            raise CancelledError(f"download of {self.url(key)} cancelled")


def _read_body(body, length: int, cancel) -> bytes:
    """A response body read in 256 KiB chunks, checking ``cancel`` between them; closed in any case."""
    chunks, got = [], 0
    try:
        while got < length:
            check_cancel(cancel, "cancelled")
            chunk = body.read(min(RANGE_CHUNK, length - got))
            if not chunk:
                break
            chunks.append(chunk)
            got += len(chunk)
    finally:
        body.close()
    return b"".join(chunks)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


class LocalStore:
    """A local folder that mirrors a bucket: keys are POSIX paths relative to ``root``."""

    is_local = True

    def __init__(self, root: Path):
        self.root = Path(root).resolve()
        self.bucket = None
        self.requester_pays = False
        self._counter = _Counter()

    @property
    def stats(self) -> dict:
        return self._counter.snapshot()

    def url(self, key: str) -> str:
        return str(self.root / key)

    def _path(self, key: str) -> Path:
        """The file of a key; a key that would leave the folder ('..', absolute) is refused."""
        rel = PurePosixPath(key)
        if rel.is_absolute() or any(part in ("..", "") for part in rel.parts) or "\\" in key:
            raise NotFoundError(f"key {key!r} is not inside the local source {self.root}")
        path = (self.root / rel).resolve()
        if path != self.root and self.root not in path.parents:
            raise NotFoundError(f"key {key!r} is not inside the local source {self.root}")
        return path

    @staticmethod
    def _etag(st: os.stat_result) -> str:
        # Stands in for an ETag: changes when the file does (size or modification time).
        return f"{st.st_size:x}-{st.st_mtime_ns:x}"

    def list_prefixes(self, prefix: str) -> list[str]:
        self._counter.add("list")
        folder = self._path(prefix.rstrip("/")) if prefix.strip("/") else self.root
        if not folder.is_dir():
            return []
        base = prefix if prefix.endswith("/") or not prefix else prefix + "/"
        return [f"{base}{e.name}/" for e in os.scandir(folder) if e.is_dir()]

    def list_objects(self, prefix: str) -> list[ObjectInfo]:
        self._counter.add("list")
        folder = self._path(prefix.rstrip("/")) if prefix.strip("/") else self.root
        if not folder.is_dir():
            return []
        out = []
        for dirpath, _dirs, files in os.walk(folder):
            for name in files:
                p = Path(dirpath) / name
                st = p.stat()
                out.append(ObjectInfo(p.relative_to(self.root).as_posix(), st.st_size, self._etag(st)))
        return out

    def get_bytes(self, key: str) -> bytes:
        self._counter.add("get")
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise NotFoundError(f"{self.root / key} does not exist") from None

    def head(self, key: str, *, part_number: int | None = None) -> ObjectInfo:
        self._counter.add("head")
        try:
            st = self._path(key).stat()
        except FileNotFoundError:
            raise NotFoundError(f"{self.root / key} does not exist") from None
        return ObjectInfo(key, st.st_size, self._etag(st))

    def download(self, key: str, fileobj, *, progress=None, cancel=None, etag: str | None = None,
                 transfer_config=None) -> None:
        self._counter.add("get")
        try:
            src = open(self._path(key), "rb")
        except FileNotFoundError:
            raise NotFoundError(f"{self.root / key} does not exist") from None
        with src:
            while True:
                if cancel is not None and cancel.is_set():
                    raise CancelledError(f"copy of {self.root / key} cancelled")
                chunk = src.read(4 << 20)
                if not chunk:
                    break
                fileobj.write(chunk)
                if progress is not None:
                    progress(len(chunk))


@dataclass
class Source:
    """A place scenes come from. ``store`` is created once (thread-safely) on first use."""

    name: str
    layout: str  # 'l1c' | 'l2a' | 'cogs'
    bucket: str | None = None
    region: str | None = None
    requester_pays: bool = False
    unsigned: bool = False
    endpoint_url: str | None = None
    profile: str | None = None
    root: Path | None = None  # local folders

    def __post_init__(self):
        self._lock = threading.Lock()
        self._store = None

    @property
    def is_local(self) -> bool:
        return self.root is not None

    @property
    def store(self):
        with self._lock:
            if self._store is None:
                if self.root is not None:
                    self._store = LocalStore(self.root)
                else:
                    self._store = S3Store(
                        self.bucket, region=self.region, profile=self.profile, endpoint_url=self.endpoint_url,
                        requester_pays=self.requester_pays, unsigned=self.unsigned,
                    )
            return self._store

    @property
    def cache_id(self) -> str:
        """Identifies the storage (for on-disk caches): endpoint + bucket, or the folder."""
        if self.root is not None:
            return f"local:{self.root}"
        return f"{self.endpoint_url or 'aws'}|{self.bucket}"

    def describe(self) -> str:
        if self.root is not None:
            return f"local folder {self.root} ({self.layout} layout)"
        where = f" at {self.endpoint_url}" if self.endpoint_url else ""
        return f"s3://{self.bucket}{where} ({self.layout} layout)"


def detect_layout(root: Path) -> tuple[Path, str]:
    """Find the bucket layout held by a local folder -> (bucket root, layout).

    ``root`` is the bucket root itself (holding ``tiles/`` or ``sentinel-s2-l2a-cogs/``) or a folder with
    bucket-named subfolders (``sentinel-s2-l1c/tiles/...``). L1C and L2A share ``tiles/``: a scene folder with
    ``R10m/`` means L2A.
    """
    candidates = [root] + sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    for base in candidates:
        if (base / layouts.COG_ROOT).is_dir():
            return base, "cogs"
        tiles = base / layouts.TILES_ROOT
        if tiles.is_dir():
            scene = _first_scene(tiles)
            if scene is None:
                return base, "l2a" if "l2a" in base.name.lower() else "l1c"
            l2a = any((scene / res).is_dir() for res in layouts.RESOLUTION_FOLDERS)
            return base, "l2a" if l2a else "l1c"
    raise NotFoundError(
        f"no Sentinel-2 bucket layout in {root} (expected {layouts.TILES_ROOT}/<zone>/<band>/<square>/... or "
        f"{layouts.COG_ROOT}/...)"
    )


def _first_scene(tiles: Path) -> Path | None:
    """tiles/{zone}/{band}/{sq}/{yyyy}/{m}/{d}/{seq}: follow the first numeric/alpha entries 7 levels down."""
    level = [tiles]
    for _depth in range(7):
        nxt = []
        for folder in level[:1]:
            try:
                nxt = sorted(p for p in folder.iterdir() if p.is_dir())
            except OSError:
                return None
        if not nxt:
            return None
        level = nxt
    return level[0]


def resolve_source(name: str, endpoint_url: str | None = None, bucket: str | None = None,
                   profile: str | None = None) -> Source:
    """'l1c' | 'l2a' | 'cogs' | a local folder path -> Source. (The demo archive is a local folder: the caller
    resolves 'demo' to it, see core.pipeline.SourceSpec.)"""
    key = (name or "l1c").strip()
    if key.lower() in SOURCES:
        default_bucket, region, layout, rp, unsigned = SOURCES[key.lower()]
        if bucket is not None and not re.fullmatch(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]", bucket):
            raise InvalidInputError(f"'{bucket}' is not a valid bucket name")
        return Source(
            name=key.lower(), layout=layout, bucket=bucket or default_bucket, region=region, requester_pays=rp,
            unsigned=unsigned, endpoint_url=endpoint_url, profile=profile,
        )
    path = Path(key).expanduser()
    if path.is_dir():
        base, layout = detect_layout(path)
        return Source(name=str(path), layout=layout, root=base.resolve())
    if path.exists():
        raise InvalidInputError(f"source {key!r} is a file; give a folder that holds a bucket layout")
    if os.sep in key or key.startswith(".") or "/" in key:
        raise NotFoundError(f"source folder {key!r} does not exist")
    raise InvalidInputError(f"unknown source {key!r}: use l1c, l2a, cogs, demo or the path of a local mirror folder")
