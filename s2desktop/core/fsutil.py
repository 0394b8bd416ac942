"""Files and folders written safely: writable-folder checks and the temp-name-then-rename pattern.

- :func:`ensure_writable_dir` creates a folder and checks it can be written;
  :func:`check_folder_creatable` checks, without creating anything, that it could be (before a long search);
  :func:`check_output_file` checks that one output file can be written (before a long computation).
- :func:`atomic_path` yields a hidden temp name beside the destination and renames it over the destination
  only when the block succeeds; on any exception (KeyboardInterrupt included) the temp file and GDAL's side
  files of it are removed, so nothing partial ever appears under a final name.

Errors are one-line :class:`OutputError` messages naming the folder and why.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from s2desktop.core.errors import OutputError

__all__ = [
    "ensure_writable_dir", "check_folder_creatable", "check_output_file", "atomic_path", "temp_name",
    "remove_with_side_files", "write_bytes_atomic", "write_json_atomic", "temp_owner_gone", "remove_live_temps", "temp_file", "track", "untrack",
    "TEMP_SUFFIX", "SIDE_SUFFIXES",
]

TEMP_SUFFIX = ".part"
SIDE_SUFFIXES = (".aux.xml", ".msk", ".ovr")  # GDAL writes these beside a raster


def ensure_writable_dir(folder, what: str = "output folder") -> Path:
    """Create ``folder`` (and parents) if needed and check it can be written; -> the folder."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"{what} {folder} is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create {what} {folder}: {exc.strerror or exc}") from None
    if not _writable(folder):
        raise OutputError(f"{what} {folder} is not writable; pick another folder")
    return folder


def check_folder_creatable(path, what: str = "output folder") -> None:
    """OutputError unless ``path`` is a writable folder or can be made one: its nearest existing part is a
    writable folder. Creates nothing (for checks before a search or download starts)."""
    folder = Path(path)
    probe = folder
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        if probe == folder:
            raise OutputError(f"{what} {folder} is a file, not a folder")
        raise OutputError(f"{what} {folder} cannot be created: {probe} is a file")
    if probe.is_dir() and not _writable(probe):
        raise OutputError(f"{what} {folder} is not writable" if probe == folder
                          else f"{what} {folder} cannot be created: {probe} is not writable")


def check_output_file(path, *, overwrite: bool = False, what: str = "output",
                      hint: str = "allow overwriting or choose another name") -> None:
    """OutputError unless a file can be written at ``path``: not a folder, absent (or ``overwrite``), in an
    existing writable folder. Leaves nothing behind."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise OutputError(f"{what} {path} is a folder")
    if path.exists() and not overwrite:
        raise OutputError(f"{what} {path} already exists ({hint})")
    if not folder.is_dir():
        raise OutputError(f"destination folder {folder} does not exist")
    if not _writable(folder):
        raise OutputError(f"destination folder {folder} is not writable")


def _writable(folder: Path) -> bool:
    """Whether a file can be created in ``folder``, by creating one (permission bits do not tell about
    read-only mounts, ACLs or root). The probe is named before it exists, so that it is removed whatever
    interrupts the check (a Ctrl-C right after the file was created left it behind)."""
    probe = Path(folder) / f".s2desktop-probe-{uuid.uuid4().hex[:8]}"
    try:
        os.close(os.open(probe, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        return True
    except OSError:
        return False
    finally:
        try:
            probe.unlink()
        except OSError:
            pass


def temp_name(dest) -> Path:
    """``dir/.name.<pid>-1a2b3c4d.part``: hidden, unique, in the destination's folder (so the rename is atomic);
    the process id tells a sweep whether the run that writes it is still alive."""
    dest = Path(dest)
    return dest.with_name(f".{dest.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}{TEMP_SUFFIX}")


def temp_owner_gone(path: Path) -> bool:
    """Whether the process that named the temporary file ``path`` (:func:`temp_name`) has ended. Only where
    that can be asked without side effects (POSIX); elsewhere, and for names without a pid, False."""
    try:
        pid = int(path.name.rsplit(".", 2)[-2].split("-")[0])
    except (IndexError, ValueError):
        return False
    if os.name != "posix" or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # alive, but another user's
        return False
    return False


_LIVE: set[Path] = set()  # temporary files being written now (removed by remove_live_temps on a hard exit)


def track(paths) -> None:
    """Temporary files written by other means than :func:`temp_file` (a composite's tile spill file and COG):
    removed by :func:`remove_live_temps` too, until :func:`untrack`."""
    _LIVE.update(Path(p) for p in paths)


def untrack(paths) -> None:
    _LIVE.difference_update(Path(p) for p in paths)


_EXITING = []  # set by remove_live_temps: no new temporary file is started from then on


def remove_live_temps(passes: int = 3, pause: float = 0.05) -> None:
    """Remove every temporary file this process is writing (a second Ctrl-C exits without unwinding). No new one
    is started from now on, and the removal is repeated a few times: a thread that was about to create its file
    when this began has done so by the next pass."""
    _EXITING.append(True)
    for i in range(passes):
        for tmp in list(_LIVE):
            remove_with_side_files(tmp)
        if i < passes - 1:
            time.sleep(pause)


def remove_with_side_files(path: Path) -> None:
    """Remove a file and GDAL's side files of it (``.aux.xml``, ``.msk``, ``.ovr``); absent ones are fine."""
    for p in [path] + [path.with_name(path.name + s) for s in SIDE_SUFFIXES]:
        try:
            p.unlink()
        except FileNotFoundError:
            pass


@contextmanager
def atomic_path(dest) -> Iterator[Path]:
    """``with atomic_path(dest) as tmp: write(tmp)`` -> ``tmp`` renamed over ``dest`` when the block succeeds.

    On any exception, KeyboardInterrupt included, the temp file and its side files are removed and the
    exception propagates; ``dest`` is left as it was. The destination folder must exist.
    """
    with temp_file(dest) as tmp:
        yield tmp
        os.replace(tmp, dest)


@contextmanager
def temp_file(dest) -> Iterator[Path]:
    """A temporary name beside ``dest`` (:func:`temp_name`), removed with its side files when the block ends
    (renamed by then, or not); known to :func:`remove_live_temps` while the block runs."""
    if _EXITING:  # the process is exiting at a second Ctrl-C: start nothing that could be left behind
        raise KeyboardInterrupt
    tmp = temp_name(dest)
    _LIVE.add(tmp)
    try:
        yield tmp
    finally:
        remove_with_side_files(tmp)  # after a rename only orphaned side files of the temp name are left
        _LIVE.discard(tmp)


def write_bytes_atomic(dest, data: bytes) -> Path:
    """``data`` to ``dest`` through a temp name; creates the folder if needed."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(dest) as tmp:
        tmp.write_bytes(data)
    return dest


def write_json_atomic(dest, doc, *, indent: int | None = 2) -> Path:
    """``doc`` as JSON to ``dest`` through a temp name; creates the folder if needed."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(dest) as tmp:
        tmp.write_text(json.dumps(doc, indent=indent), encoding="utf-8")
    return dest
