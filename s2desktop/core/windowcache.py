"""A bounded on-disk cache of the windows an area fetched from remote COGs, that checks itself and cannot wedge.

An entry is one file named ``<key>-<digest><suffix>``: ``key`` a hash of what it holds (the object, its ETag,
the overview level and the window -- or, for a ``.json`` plan entry, the grid), ``digest`` the SHA-256 (first
16 hex digits) of the file's own bytes, written with it. :meth:`WindowCache.get` verifies the digest before it
hands an entry out: a flipped, truncated or emptied entry is removed and reported as a miss (fetched again),
never used and never fatal. A changed object has a new ETag, so a stale window is never served; an object
without an ETag is not cached.

Entries appear only complete: written under a temporary name (``.<key>.<pid>-<hex>.part``) and renamed, so a
full disk or a killed run publishes nothing; :meth:`sweep` removes the temporaries of runs that have ended
(their process is gone, or an hour has passed). :meth:`trim` removes the least recently used entries (by
modification time, which a hit refreshes) until the folder holds at most ``limit`` bytes -- never the ones
the running job has counted on (``keep``). A limit of 0 caches nothing.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import time
from pathlib import Path
from typing import Callable

from s2desktop.core import paths
from s2desktop.core.fsutil import temp_file, temp_owner_gone

__all__ = ["WindowCache", "default_folder", "DEFAULT_LIMIT", "digest_of"]

DEFAULT_LIMIT = 2 << 30
SUFFIXES = (".tif", ".json")
STALE_TEMP_S = 3600  # a temporary file this old was left by a run that was killed
DIGEST_CHARS = 16


def default_folder() -> Path:
    return paths.user_cache_dir() / "areas"


def digest_of(path: Path) -> str:
    """The first DIGEST_CHARS hex digits of the SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:DIGEST_CHARS]


class WindowCache:
    """Windows on disk under ``folder`` (created on first write), at most ``limit`` bytes after a trim."""

    def __init__(self, folder=None, limit: int = DEFAULT_LIMIT):
        self.folder = Path(folder) if folder is not None else default_folder()
        self.limit = max(0, int(limit))
        self.dropped = 0  # damaged entries found (and removed) by get()

    def key(self, identity: str, etag: str | None) -> str | None:
        """The name stem of the entry ``identity`` of an object with ``etag``; None when it cannot be cached."""
        if not etag or not self.limit:
            return None
        return hashlib.sha256(f"{identity}\n{etag}".encode()).hexdigest()[:40]

    def _candidates(self, key: str, suffix: str) -> list[Path]:
        folder = self.folder / key[:2]
        try:
            return [folder / n for n in os.listdir(folder) if n.startswith(key + "-") and n.endswith(suffix)]
        except OSError:
            return []

    def get(self, key: str | None, suffix: str = ".tif") -> Path | None:
        """The entry ``key`` after checking its bytes against its digest (a use: it moves to the back of the
        queue); None when there is none, or the one there was damaged (it is removed)."""
        if key is None:
            return None
        for path in self._candidates(key, suffix):
            try:
                good = path.stat().st_size > 0 and digest_of(path) == path.name[len(key) + 1: len(key) + 1 + DIGEST_CHARS]
                if good:
                    os.utime(path)
                    return path
            except OSError:  # trimmed by another run meanwhile, or unreadable: a miss
                continue
            self.dropped += 1
            path.unlink(missing_ok=True)
        return None

    def get_json(self, key: str | None):
        path = self.get(key, ".json")
        if path is None:
            return None
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def put(self, key: str, write: Callable[[Path], None], suffix: str = ".tif") -> Path:
        """Write an entry through ``write(tmp)`` and publish it under its key and digest; OSError (a full
        disk, an unwritable folder) after removing the temporary file -- nothing is published."""
        folder = self.folder / key[:2]
        folder.mkdir(parents=True, exist_ok=True)
        with temp_file(folder / f"{key}{suffix}") as tmp:
            write(tmp)
            if not tmp.is_file() or tmp.stat().st_size == 0:  # a writer that failed without a word (GDAL on a
                raise OSError(errno.ENOSPC, f"nothing was written to {tmp}")  # full disk): nothing published
            dest = folder / f"{key}-{digest_of(tmp)}{suffix}"
            os.replace(tmp, dest)
        for old in self._candidates(key, suffix):  # an older copy of the same entry
            if old != dest:
                old.unlink(missing_ok=True)
        return dest

    def put_json(self, key: str, doc) -> Path:
        return self.put(key, lambda tmp: tmp.write_text(json.dumps(doc), encoding="utf-8"), ".json")

    def entries(self) -> list[tuple[float, int, Path]]:
        """(last use, size, path) of every entry, least recently used first."""
        return sorted((st.st_mtime, st.st_size, p) for p, st in self._files()
                      if p.suffix in SUFFIXES and not p.name.startswith("."))

    def _files(self):
        """(path, stat) of every file in the cache's folders, temporary ones included."""
        for p in self.folder.glob("*/*"):
            try:
                yield p, p.stat()
            except OSError:  # removed meanwhile
                continue

    def sweep(self) -> int:
        """Remove the temporary files of runs that have ended (killed): their process is gone, or they are an
        hour old (a live run's temporary is written in seconds); -> how many."""
        n = 0
        for p, st in self._files():
            if p.name.startswith(".") and (temp_owner_gone(p) or time.time() - st.st_mtime > STALE_TEMP_S):
                p.unlink(missing_ok=True)
                n += 1
        return n

    def size(self) -> int:
        return sum(size for _t, size, _p in self.entries())

    def trim(self, room: int = 0, keep=()) -> int:
        """Remove the least recently used entries until they and ``room`` more bytes fit the limit, never one
        in ``keep`` (what the running job counted as cached); -> bytes removed. Entries another process has
        open are removed where the system allows it, else left."""
        self.sweep()
        keep = {Path(p) for p in keep}
        entries = self.entries()
        total = sum(size for _t, size, _p in entries)
        removed = 0
        for _t, size, p in entries:
            if total + room <= self.limit:
                break
            if p in keep:
                continue
            try:
                p.unlink()
            except OSError:
                continue
            total -= size
            removed += size
        return removed
