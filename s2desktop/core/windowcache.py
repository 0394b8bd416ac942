"""A bounded on-disk cache of the windows an area fetched from remote COGs.

An entry is one GeoTIFF named by a hash of what it holds: the object (its GDAL path), its ETag, the overview
level and the window; beside it, small JSON entries remember which window of an object a grid needs, so that a
second run over the same area opens no remote file at all. A changed object has a new ETag, so a stale window is
never served; an object without an ETag is not cached. Entries are written under a temporary name and renamed, so a half-written window
never looks like a cached one. ``trim`` removes the least recently used entries (by modification time, which a
hit refreshes) until the folder holds at most ``limit`` bytes; a limit of 0 caches nothing.
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

from s2desktop.core import paths

__all__ = ["WindowCache", "default_folder", "DEFAULT_LIMIT"]

DEFAULT_LIMIT = 2 << 30
SUFFIXES = (".tif", ".json")
STALE_TEMP_S = 3600  # a temporary file this old was left by a run that was killed


def default_folder() -> Path:
    return paths.user_cache_dir() / "areas"


class WindowCache:
    """Windows on disk under ``folder`` (created on first write), at most ``limit`` bytes after a trim."""

    def __init__(self, folder=None, limit: int = DEFAULT_LIMIT):
        self.folder = Path(folder) if folder is not None else default_folder()
        self.limit = max(0, int(limit))

    def path(self, identity: str, etag: str | None, suffix: str = ".tif") -> Path | None:
        """Where the entry ``identity`` of an object with ``etag`` lives; None when it cannot be cached."""
        if not etag or not self.limit:
            return None
        digest = hashlib.sha256(f"{identity}\n{etag}".encode()).hexdigest()[:40]
        return self.folder / digest[:2] / f"{digest}{suffix}"

    @staticmethod
    def hit(path: Path | None) -> bool:
        """Whether ``path`` holds a cached window; a hit counts as a use (it moves to the back of the queue)."""
        if path is None or not path.is_file():
            return False
        try:
            os.utime(path)
        except OSError:  # read-only cache or the entry just trimmed by another run: fetch again
            return False
        return True

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

    def _remove_stale_temps(self) -> None:
        """Half-written windows of runs that were killed (a live run's temporary is younger than an hour)."""
        for p, st in self._files():
            if p.name.startswith(".") and time.time() - st.st_mtime > STALE_TEMP_S:
                p.unlink(missing_ok=True)

    def size(self) -> int:
        return sum(size for _t, size, _p in self.entries())

    def trim(self, room: int = 0) -> int:
        """Remove the least recently used entries until they and ``room`` more bytes fit the limit; -> bytes
        removed. Entries another process has open are removed where the system allows it, else left."""
        self._remove_stale_temps()
        entries = self.entries()
        total = sum(size for _t, size, _p in entries)
        removed = 0
        for _t, size, p in entries:
            if total + room <= self.limit:
                break
            try:
                p.unlink()
            except OSError:
                continue
            total -= size
            removed += size
        return removed
