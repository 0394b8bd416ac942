"""Download band files to disk: concurrent, verified, resumable, cancellable.

Layout of an output folder (the original design's)::

    out/blue/33UUP_2023-07-14_0_B02.jp2      B02 -> blue/, B03 -> green/, B04 -> red/, others -> <band>/
    out/metadata/33UUP_2023-07-14_0.json     tileInfo.json + our summary keys (baseline, cloud cover, ...)
    out/metadata/verified/<file name>.json   what was verified, against which ETag (see "Skipping" below)

One object -> one file:
- s3transfer's TransferManager fetches it with concurrent ranged GETs (16 MiB parts), pinned to the listed ETag
  (IfMatch) so parts cannot mix versions. Files run in parallel in :func:`download_all`; :func:`transfer_budget`
  splits one connection budget between files and parts (files x parts <= sources.CONNECTIONS).
- Bytes go to a hidden temp name in the destination folder (fsutil.atomic_path) and are renamed only after
  verification: size;
  MD5 when the ETag is a plain MD5; the multipart ETag (md5 of the part md5s + '-N') when the part size is known
  (HEAD PartNumber=1) or one of the common part sizes reproduces it; the S3 full-object checksum (SHA256, SHA1,
  CRC32; CRC32C/CRC64NVME when awscrt is installed) when the object has one. All digests come from one read.
  A mismatch deletes the file and retries once, then raises IntegrityError.
- Cancel (an Event, or a CancelToken that can also cancel one file) cancels the transfer future; s3transfer stops
  each part at its next 256 KiB chunk, so all transfers stop within a fraction of a second and the temp file is
  removed: nothing partial under a final name.
- Progress: typed events (core.progress) with this file's bytes and state and, from download_all, the totals
  over all files in bytes planned from the listing.
- Keys never become paths: the destination is built from the validated tile, date, sequence and band only.

Skipping: re-hashing every finished 1 GB band on each run would be slow, so after verifying a file we record
(key, ETag, size, mtime_ns) in ``metadata/verified/``. A later run skips the file when that record still matches
the file on disk *and* the ETag the search listing returned -- no request and no hashing. A file without a record
(copied in, older tool) is verified once against a HEAD and then recorded; a changed object (new ETag) or a
touched file is fetched again.
"""

from __future__ import annotations

import base64
import glob
import hashlib
import json
import logging
import os
import re
import threading
import time
import zlib
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath

from s2desktop.core import bands as band_names
from s2desktop.core import scenefiles
from s2desktop.core.catalog import Scene, fetch_metadata
from s2desktop.core.errors import (
    NOT_WRITABLE, CancelledError, IntegrityError, InvalidInputError, OutputError, S2Error, output_error,
)
from s2desktop.core.fsutil import atomic_path, ensure_writable_dir, write_json_atomic
from s2desktop.core.layouts import QI_BANDS
from s2desktop.core.progress import (
    CANCELLED, DOWNLOADED, FAILED, FILE_DONE_STATES, QUEUED, RUNNING, SKIPPED, FileProgress, Progress, check_cancel,
    item_cancel,
)
from s2desktop.core.scenefiles import BAND_FOLDERS  # noqa: F401  (download.BAND_FOLDERS stays importable)
from s2desktop.core.sources import CONNECTIONS, DEFAULT_WORKERS, PART_CONCURRENCY
from s2desktop.core.threads import WAKE_INTERVAL

__all__ = [
    "BAND_FOLDERS", "DEFAULT_BANDS", "DownloadTask", "DownloadResult", "plan", "download_one", "download_all",
    "read_scene_metadata", "write_scene_metadata", "parse_bands", "transfer_budget", "is_verified", "UNVERIFIED",
]

log = logging.getLogger(__name__)

DEFAULT_BANDS = ("B02", "B03", "B04")
MiB = 1 << 20
MULTIPART_THRESHOLD = 16 * MiB
MULTIPART_CHUNKSIZE = 16 * MiB
IO_CHUNKSIZE = 256 * 1024
COMMON_PART_SIZES = [8 * MiB, 16 * MiB, 5 * MiB, 15 * MiB, 32 * MiB, 64 * MiB, 50 * MiB, 100 * MiB, 128 * MiB,
                     256 * MiB, 512 * MiB]
PROGRESS_INTERVAL = 0.1  # seconds between progress callbacks (~10 per second)
MAX_PART_CANDIDATES = 64  # part sizes tried against a multipart ETag whose part size the server does not tell
UNVERIFIED = "unverified"  # a file whose content nothing could check: kept, reported, re-checked next time
STALE_TEMP_SECONDS = 60  # a download's temporary file untouched this long was left by a killed run
FETCH_ATTEMPTS = 3  # downloads of one file: a mismatch, or an unverifiable file not yet seen twice, fetches again


@dataclass(frozen=True)
class DownloadTask:
    scene: Scene
    band: str
    key: str
    dest: Path
    size: int | None = None  # from the listing, when known
    etag: str | None = None

    @property
    def out_dir(self) -> Path:
        return self.dest.parent.parent


@dataclass(frozen=True)
class DownloadResult:
    task: DownloadTask
    status: str  # 'downloaded' | 'skipped'
    path: Path
    size: int
    bytes_transferred: int
    verified: str  # how the file was checked: 'md5', 'multipart-md5', 'sha256', 'size', ... joined by '+'
    seconds: float


class _Mismatch(Exception):
    pass


def parse_bands(bands) -> list[str]:
    """'B02,b03, B04', a preset ('false-colour') or a list -> ['B02', 'B03', 'B04'] (validated, order kept, no
    duplicates; the product files TCI, SCL, AOT, WVP too): `core.bands.parse_bands`."""
    return list(band_names.parse_bands(bands if bands else DEFAULT_BANDS, products=True))


def _inside(path: Path, folder: Path) -> bool:
    p, f = os.path.abspath(path), os.path.abspath(folder)
    return os.path.commonpath([p, f]) == f


def plan(scenes, bands, out_dir) -> list[DownloadTask]:
    """One task per scene and band: ``out/red/33UUP_2023-07-14_0_B04.jp2``. Keys only give the extension."""
    out_dir = Path(out_dir)
    tasks = []
    items = [b.strip() for b in bands.split(",")] if isinstance(bands, str) else list(bands)
    masks = [b for b in items if b in QI_BANDS]  # an L1C cloud mask: a file of the scene, not a band to choose
    names = (parse_bands([b for b in items if b not in QI_BANDS]) if len(masks) < len(items) else []) + masks
    for scene in scenes:
        for band in names:
            key = scene.bands.get(band)
            if key is None:
                have = ", ".join(sorted(scene.bands)) or "none"
                raise InvalidInputError(f"band {band} is not in scene {scene.scene_id} (it has: {have})")
            ext = PurePosixPath(key).suffix.lower()
            if not re.fullmatch(r"\.[a-z0-9]{1,5}", ext):
                ext = ".bin"
            dest = scenefiles.band_path(out_dir, scene.scene_id, band, ext)
            if not _inside(dest, out_dir):  # cannot happen with validated parts; belt and braces
                raise OutputError(f"refusing to write {dest} outside {out_dir}")
            size, etag = (scene.objects or {}).get(key, (None, None))
            tasks.append(DownloadTask(scene, band, key, dest, size, etag))
    return tasks


# --- scene metadata beside the downloads ----------------------------------------------------------------------


def write_scene_metadata(source, scene: Scene, out_dir) -> Path:
    """``{out_dir}/metadata/{scene_id}.json``: tileInfo.json content plus our summary keys."""
    path = scenefiles.metadata_path(out_dir, scene.scene_id)
    if path.exists():
        return path
    doc = dict(fetch_metadata(source, scene) or {})
    doc.update(
        tile=scene.tile, date=scene.date.isoformat(), sequence=scene.sequence, baseline=scene.baseline,
        product_name=scene.product_name, cloud_cover=scene.cloud_cover, data_coverage=scene.data_coverage,
        prefix=scene.prefix, source=source.describe(),
    )
    write_json_atomic(path, doc)
    return path


def read_scene_metadata(band_file) -> dict | None:
    """The metadata json of a downloaded band file (found from its name), or None."""
    path = scenefiles.metadata_path_of(band_file)
    if path is None:
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


# --- verification ---------------------------------------------------------------------------------------------


def _read_record(dest: Path) -> dict | None:
    try:
        return json.loads(scenefiles.verified_record_path(dest).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _write_record(dest: Path, key: str, etag: str | None, method: str) -> None:
    st = dest.stat()
    try:
        write_json_atomic(scenefiles.verified_record_path(dest), {"key": key, "etag": etag, "size": st.st_size,
                                                "mtime_ns": st.st_mtime_ns, "verified": method})
    except OSError as exc:  # without the record the file is re-verified next time; not fatal
        log.warning("could not record verification of %s: %s", dest, exc)


def _crc_hasher(name: str):
    if name == "CRC32":
        class _Crc32:
            def __init__(self):
                self.v = 0

            def update(self, b):
                self.v = zlib.crc32(b, self.v)

            def digest(self):
                return self.v.to_bytes(4, "big")

        return _Crc32()
    if name == "SHA256":
        return hashlib.sha256()
    if name == "SHA1":
        return hashlib.sha1()
    try:  # CRC32C / CRC64NVME need awscrt (optional)
        from botocore.httpchecksum import CrtCrc32cChecksum, CrtCrc64NvmeChecksum  # noqa: F401

        cls = {"CRC32C": CrtCrc32cChecksum, "CRC64NVME": CrtCrc64NvmeChecksum}[name]
        obj = cls()

        class _Wrap:
            def update(self, b):
                obj.update(b)

            def digest(self):
                return obj.digest()

        return _Wrap()
    except Exception:
        return None


def _part_sizes(size: int, parts: int, known: int | None) -> list[int]:
    """Part sizes that could have made a multipart ETag of ``parts`` parts for ``size`` bytes.

    The server's answer when it gave one; else every 1 MiB multiple that cuts ``size`` into exactly ``parts``
    parts ((parts - 1) x ps < size <= parts x ps) -- the part sizes clients use are whole MiB -- when there are
    at most MAX_PART_CANDIDATES of them, else the common ones in that range.
    """
    if known:
        return [known]
    if parts == 1:
        return [-(-max(size, 1) // MiB) * MiB]
    lo, hi = -(-size // parts), (size - 1) // (parts - 1)
    fitting = list(range(-(-lo // MiB) * MiB, hi + 1, MiB))
    if len(fitting) > MAX_PART_CANDIDATES:
        fitting = [ps for ps in COMMON_PART_SIZES if lo <= ps <= hi]
    return fitting


def _full_object_checks(info, multipart: bool) -> dict:
    """{name: (hasher, expected b64)} for the S3 checksums that cover the whole object."""
    # A checksum covers the whole file when the server says FULL_OBJECT, or (older servers, no type given)
    # when the object was not uploaded in parts; a multipart object's checksum may be composite.
    full_object = info.checksum_type == "FULL_OBJECT" or (info.checksum_type is None and not multipart)
    checks = {}
    for name, value in (info.checksums or {}).items():
        hasher = _crc_hasher(name) if full_object and "-" not in value else None
        if hasher is not None:
            checks[name] = (hasher, value)
    return checks


def _verify(path: Path, info, *, local: bool) -> tuple[str, str]:
    """Check a file against the object's size, ETag and checksums in one read.

    -> (what was checked, e.g. 'md5', 'multipart-md5+sha256', or UNVERIFIED when nothing but the size could be
    checked; the file's own MD5). _Mismatch when a check fails. A local mirror's files are checked by size.
    """
    size = path.stat().st_size
    if size != info.size:
        raise _Mismatch(f"size {size} bytes, expected {info.size}")
    if local:  # a mirror on this machine: nothing was transferred
        return "size", ""
    etag = (info.etag or "").lower()
    plain = re.fullmatch(r"[0-9a-f]{32}", etag)
    multipart = re.fullmatch(r"([0-9a-f]{32})-(\d+)", etag)
    candidates = {ps: [] for ps in _part_sizes(size, int(multipart.group(2)), info.part_size)} if multipart else {}
    checks = _full_object_checks(info, bool(multipart))
    whole = hashlib.md5()
    part_state = {ps: [hashlib.md5(), 0] for ps in candidates}
    with open(path, "rb") as fh:
        while block := fh.read(MiB):
            whole.update(block)
            for hasher, _v in checks.values():
                hasher.update(block)
            for ps, state in part_state.items():  # every candidate part size is a multiple of 1 MiB
                state[0].update(block)
                state[1] += len(block)
                if state[1] >= ps:
                    candidates[ps].append(state[0].digest())
                    part_state[ps] = [hashlib.md5(), 0]
    methods = []
    if plain:
        if whole.hexdigest() != etag:
            raise _Mismatch(f"MD5 {whole.hexdigest()} does not match the ETag {etag}")
        methods.append("md5")
    if multipart:
        for ps, state in part_state.items():
            if state[1]:
                candidates[ps].append(state[0].digest())
        if any(f"{hashlib.md5(b''.join(d)).hexdigest()}-{len(d)}" == etag for d in candidates.values()):
            methods.append("multipart-md5")
        elif info.part_size:
            raise _Mismatch(f"multipart ETag {etag} does not match ({info.part_size} byte parts)")
    for name, (hasher, value) in checks.items():
        got = base64.b64encode(hasher.digest()).decode()
        if got != value:
            raise _Mismatch(f"{name} checksum {got} does not match {value}")
        methods.append(name.lower())
    return "+".join(methods) or UNVERIFIED, whole.hexdigest()


# --- one file -------------------------------------------------------------------------------------------------


class _FileProgress:
    """Byte deltas from s3transfer threads (may be negative on a retried part) -> this file's Progress events,
    at most ~10 a second (a state change always passes)."""

    def __init__(self, callback, name: str, total: int):
        self.callback = callback
        self.name = name
        self.total = total
        self.done = 0
        self._lock = threading.Lock()
        self._last = 0.0

    def event(self, state: str = RUNNING, message: str = "") -> Progress:
        with self._lock:
            done, total = min(self.done, self.total), self.total
        finished = state in FILE_DONE_STATES
        return Progress("download", int(finished), 1, done, total,
                        file=FileProgress(self.name, done, total, state, message))

    def reset(self, total: int) -> None:
        with self._lock:
            self.total, self.done = total, 0
        self.emit()

    def __call__(self, delta: int) -> None:
        with self._lock:
            self.done = max(0, self.done + delta)
            now = time.monotonic()
            if now - self._last < PROGRESS_INTERVAL:
                return
            self._last = now
        self.emit()

    def emit(self, state: str = RUNNING, message: str = "", done: int | None = None) -> None:
        if done is not None:
            with self._lock:
                self.done = done
        if self.callback is not None:
            self.callback(self.event(state, message))


def _transfer_config(part_concurrency: int):
    from s3transfer.manager import TransferConfig

    return TransferConfig(
        multipart_threshold=MULTIPART_THRESHOLD,
        multipart_chunksize=MULTIPART_CHUNKSIZE,
        max_request_concurrency=part_concurrency,
        max_submission_concurrency=2,
        io_chunksize=IO_CHUNKSIZE,
        num_download_attempts=5,
    )


def _os_error(exc: OSError, dest: Path) -> S2Error:
    if exc.errno in NOT_WRITABLE:
        return output_error(exc, dest, "pick a writable folder with --out")
    return output_error(exc, dest, "use --out elsewhere")


def download_one(source, task: DownloadTask, progress=None, cancel=None, *,
                 part_concurrency: int = PART_CONCURRENCY) -> DownloadResult:
    """Fetch one band file to ``task.dest`` (or skip it when already verified). Thread-safe.

    ``progress(event)`` receives this file's :class:`Progress` events (``event.file`` is set) at most ~10 times
    a second from transfer threads, and one with the final state. ``cancel`` is an Event (or a CancelToken's
    item view); when set, CancelledError is raised within ~1 s and no file is left behind.
    """
    t0 = time.monotonic()
    store = source.store
    dest = Path(task.dest)
    if not _inside(dest, task.out_dir):
        raise OutputError(f"refusing to write {dest} outside {task.out_dir}")
    check_cancel(cancel, "download cancelled")
    try:
        ensure_writable_dir(dest.parent)
        write_scene_metadata(source, task.scene, task.out_dir)
    except OSError as exc:
        raise _os_error(exc, dest) from None
    reporter = _FileProgress(progress, str(dest), task.size or 0)
    info = None
    if dest.exists():
        skipped, info = _already_there(store, task, dest)
        if skipped is not None:
            reporter.total = skipped.size
            reporter.emit(SKIPPED, _unverified_note(skipped), done=skipped.size)
            return replace(skipped, seconds=time.monotonic() - t0)
    info = info or _head(store, task.key)
    _remove_stale_temps(dest)
    reporter.reset(info.size)
    result = _fetch(store, task, dest, info, reporter, cancel, part_concurrency)
    reporter.emit(DOWNLOADED, _unverified_note(result), done=info.size)
    return replace(result, seconds=time.monotonic() - t0)


def _unverified_note(result: DownloadResult) -> str:
    if result.verified != UNVERIFIED:
        return ""
    return ("unverified: the server's ETag and checksums give nothing to check the content against "
            "(size checked only)")


def _record_holds(rec: dict | None, key: str, etag: str | None, size: int | None, st: os.stat_result) -> bool:
    """A verification record that still vouches for the file: same object and ETag, the file untouched since,
    and verified by content (an 'unverified' record is checked again)."""
    return (rec is not None and rec.get("key") == key and rec.get("etag") == etag
            and rec.get("size") == st.st_size == size and rec.get("mtime_ns") == st.st_mtime_ns
            and rec.get("verified", UNVERIFIED) != UNVERIFIED)


def is_verified(task: DownloadTask) -> bool:
    """True when ``task.dest`` is on disk and its verification record matches the listing: a download would
    skip it without a request (what a cost estimate leaves out)."""
    dest = Path(task.dest)
    if task.etag is None or not dest.is_file():
        return False
    return _record_holds(_read_record(dest), task.key, task.etag, task.size, dest.stat())


def vouches_for(dest, key: str, etag: str) -> bool:
    """Whether ``dest`` is still the verified download of object ``key`` at ``etag`` (its verification record
    matches, the file untouched since): a composite's record checks its tile's inputs with it."""
    dest = Path(dest)
    return dest.is_file() and _record_holds(_read_record(dest), key, etag, dest.stat().st_size, dest.stat())


def _already_there(store, task: DownloadTask, dest: Path):
    """-> (a 'skipped' DownloadResult or None, the HEAD info if one was made). A file whose verification
    record still matches is skipped without a request; one without a record, or recorded as unverified, is
    checked (again) against a HEAD."""
    rec = _read_record(dest)
    st = dest.stat()
    info = None
    remote_etag, remote_size = task.etag, task.size
    if rec is not None and remote_etag is None:
        info = store.head(task.key)
        remote_etag, remote_size = info.etag, info.size
    if _record_holds(rec, task.key, remote_etag, remote_size, st):
        return DownloadResult(task, "skipped", dest, st.st_size, 0, rec["verified"], 0.0), info
    info = info or _head(store, task.key)
    try:
        method, _digest = _verify(dest, info, local=store.is_local)
    except _Mismatch as exc:
        log.info("%s exists but %s; fetching it again", dest, exc)
        return None, info
    _write_record(dest, task.key, info.etag, method)
    return DownloadResult(task, "skipped", dest, info.size, 0, method, 0.0), info


class _Unconfirmed(Exception):
    """A download nothing could check, not yet seen twice byte for byte."""


def _fetch(store, task: DownloadTask, dest: Path, info, reporter: _FileProgress, cancel,
           part_concurrency: int) -> DownloadResult:
    """Download to a temporary name, verify, rename.

    A copy that fails a check is fetched again once (then IntegrityError). A copy that nothing can check (a
    multipart ETag whose part size neither the server nor any likely size gives, and no checksum) is kept, as
    UNVERIFIED, only when two downloads agree byte for byte: a transfer that flipped a byte does not.
    """
    config = None if store.is_local else _transfer_config(part_concurrency)
    transferred, mismatches, seen = 0, 0, set()
    for attempt in range(1, FETCH_ATTEMPTS + 1):
        try:
            with atomic_path(dest) as tmp:  # renamed over dest only once verified; removed on any error
                with open(tmp, "wb") as fh:
                    store.download(task.key, fh, progress=reporter, cancel=cancel,
                                   etag=None if store.is_local else info.etag, transfer_config=config)
                transferred += tmp.stat().st_size
                check_cancel(cancel, "download cancelled")
                method, digest = _verify(tmp, info, local=store.is_local)
                if method == UNVERIFIED and digest not in seen:
                    seen.add(digest)
                    raise _Unconfirmed
        except _Mismatch as exc:
            mismatches += 1
            if mismatches == 2 or attempt == FETCH_ATTEMPTS:
                raise IntegrityError(
                    f"{_url(store, task.key)} failed verification twice ({exc}); the file was not kept") from None
            log.warning("%s: %s; fetching it again", _url(store, task.key), exc)
        except _Unconfirmed:
            if attempt == FETCH_ATTEMPTS:
                raise IntegrityError(f"{_url(store, task.key)}: {attempt} downloads differ and nothing can tell "
                                     "which is right; the file was not kept") from None
            log.info("%s: nothing to check its content against; fetching it again to compare",
                     _url(store, task.key))
        except OSError as exc:
            raise _os_error(exc, dest) from None
        else:
            _write_record(dest, task.key, info.etag, method)
            if method == UNVERIFIED:
                log.warning("%s: kept unverified (two downloads agree; nothing else to check)", dest)
            return DownloadResult(task, "downloaded", dest, info.size, transferred, method, 0.0)
        reporter.reset(info.size)
    raise AssertionError("unreachable")


def _remove_stale_temps(dest: Path) -> None:
    """Temporary files of ``dest`` left by a run that was killed (``.name.1a2b3c4d.part``), untouched for
    STALE_TEMP_SECONDS: removed before fetching it again (a live download writes to its temp all the time)."""
    now = time.time()
    for tmp in dest.parent.glob(f".{glob.escape(dest.name)}.*.part"):
        try:
            if now - tmp.stat().st_mtime > STALE_TEMP_SECONDS:
                tmp.unlink()
                log.info("removed %s, left by an interrupted download", tmp)
        except OSError:
            pass


def _url(store, key: str) -> str:
    return store.url(key)


def _head(store, key: str):
    """HEAD with the checksums; for a multipart ETag also ask for part 1 to learn the part size."""
    info = store.head(key)
    if not store.is_local and info.etag and re.fullmatch(r"[0-9a-fA-F]{32}-\d+", info.etag):
        try:
            part = store.head(key, part_number=1)
        except S2Error:
            part = None
        if part is not None and part.part_size and part.parts_count and part.part_size < info.size:
            info = replace(info, part_size=part.part_size, parts_count=part.parts_count)
    return info


# --- many files -----------------------------------------------------------------------------------------------


def transfer_budget(workers: int | None) -> tuple[int, int]:
    """-> (files at once, ranged GETs at once per file) for ``workers`` files, within the connection budget.

    The one place that decides how many connections a download opens: files x parts never exceeds
    CONNECTIONS, the size of the S3 client's connection pool (core.sources), whatever front end asks.
    """
    files = max(1, min(int(workers or DEFAULT_WORKERS), CONNECTIONS))
    return files, max(1, min(PART_CONCURRENCY, CONNECTIONS // files))


class _Totals:
    """The download's aggregate: every file's bytes and state -> one Progress event per file event."""

    def __init__(self, tasks, progress):
        self.progress = progress
        self.lock = threading.Lock()
        self.done = {str(t.dest): 0 for t in tasks}
        self.total = {str(t.dest): t.size or 0 for t in tasks}
        self.finished: set[str] = set()

    def start(self) -> None:
        for name in self.done:
            self(Progress("download", file=FileProgress(name, 0, self.total[name], QUEUED)))

    def __call__(self, event: Progress) -> None:
        f = event.file
        with self.lock:
            self.done[f.name], self.total[f.name] = f.bytes_done, f.bytes_total or self.total[f.name]
            if f.finished:
                self.finished.add(f.name)
            agg = Progress("download", len(self.finished), len(self.done), sum(self.done.values()),
                           sum(self.total.values()), file=f)
            if self.progress is not None:
                self.progress(agg)  # under the lock: events reach the front end in order

    def file_ended(self, task, state: str, message: str = "") -> None:
        name = str(task.dest)
        self(Progress("download", file=FileProgress(name, self.done[name], self.total[name], state, message)))


def _shut_down(pool: ThreadPoolExecutor, futures, cancel) -> None:
    """Wait until every started download has returned (each removes its temp file as it unwinds), however many
    Ctrl-Cs arrive meanwhile: each one cancels, and one is raised once all have stopped.

    It waits on the futures, not on the threads: on Python 3.11 a Ctrl-C that interrupts Thread.join() can mark
    a thread that is still running as finished, so a second join returned while a transfer still held its
    temp file.
    """
    interrupted = False
    for f in futures:
        f.cancel()  # not started yet: never starts
    pending = {f for f in futures if not f.done()}
    while pending:
        try:
            _done, pending = wait(pending, timeout=WAKE_INTERVAL)
        except KeyboardInterrupt:  # a second Ctrl-C during the wait: keep waiting, cancelled
            cancel.set()
            interrupted = True
    pool.shutdown(wait=False, cancel_futures=True)  # its threads are idle now and leave by themselves
    if interrupted:
        raise KeyboardInterrupt


def download_all(source, tasks, workers: int | None = None, progress=None, cancel=None) -> list[DownloadResult]:
    """Run :func:`download_one` for every task, ``workers`` files at once (default 4).

    ``progress(event)`` receives a :class:`Progress` per file event, with the totals over all files: bytes
    done of the bytes planned (sizes come from the listing, so the total is right from the start) and files
    finished; ``event.file`` is the file it concerns (queued, running, downloaded, skipped, failed, cancelled).
    A failing file does not stop the others; the first error is raised at the end (its class kept, the count in
    the message). ``cancel``: an Event or a CancelToken; when it is set (or on Ctrl-C in the calling thread)
    every transfer stops and CancelledError is raised. A file cancelled on its own through the token
    (``token.cancel_item(str(task.dest))``) ends as 'cancelled' and is left out of the results.
    """
    tasks = list(tasks)
    files, parts = transfer_budget(workers)
    cancel = cancel if cancel is not None else threading.Event()
    totals = _Totals(tasks, progress)
    totals.start()
    results: list[DownloadResult | None] = [None] * len(tasks)
    errors: list[S2Error] = []
    pool = ThreadPoolExecutor(max_workers=files, thread_name_prefix="s2-download")
    futures: dict = {}
    try:
        for i, t in enumerate(tasks):  # one at a time: a Ctrl-C during submission leaves every one tracked
            futures[pool.submit(download_one, source, t, totals, item_cancel(cancel, str(t.dest)),
                                part_concurrency=parts)] = i
        pending = set(futures)
        while pending:
            # never an untimed wait: a Ctrl-C taken by a transfer thread is raised here (see core.threads)
            finished, pending = wait(pending, timeout=WAKE_INTERVAL, return_when=FIRST_COMPLETED)
            for fut in finished:
                i = futures[fut]
                try:
                    results[i] = fut.result()
                except CancelledError:
                    totals.file_ended(tasks[i], CANCELLED)
                except S2Error as exc:
                    errors.append(exc)
                    totals.file_ended(tasks[i], FAILED, str(exc))
    except KeyboardInterrupt:
        cancel.set()
        raise
    finally:
        _shut_down(pool, futures, cancel)
    if cancel.is_set():
        n = sum(r is not None for r in results)
        raise CancelledError(f"download cancelled ({n} of {len(tasks)} files complete; no partial files left)")
    if errors:
        first = errors[0]
        if len(tasks) > 1:
            raise type(first)(f"{len(errors)} of {len(tasks)} files failed; first: {first}") from first
        raise first
    return [r for r in results if r is not None]
