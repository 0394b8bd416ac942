"""Per-user folders (data, cache, logs), following each platform's convention (through platformdirs).

Linux: ``~/.local/share/s2desktop``, ``~/.cache/s2desktop``, ``~/.local/state/s2desktop/logs`` (XDG variables
respected); macOS: ``~/Library/Application Support/s2desktop``, ``~/Library/Caches/s2desktop``,
``~/Library/Logs/s2desktop``; Windows: ``%LOCALAPPDATA%\\s2desktop\\Data``, ``...\\Cache``, ``...\\Logs``.

`S2DESKTOP_HOME` overrides the root of all three (tests and portable installs use it).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import platformdirs

APP = "s2desktop"


def _base(kind: str) -> Path:
    override = os.environ.get("S2DESKTOP_HOME")
    if override:
        return Path(override) / kind
    dirs = platformdirs.PlatformDirs(APP, appauthor=False, roaming=False)
    if kind == "cache":
        return dirs.user_cache_path  # Windows: ...\s2desktop\Cache
    if kind == "logs":
        # platformdirs says .../state/s2desktop/log on Linux and BSD; the folder has always been called logs
        return dirs.user_log_path if sys.platform in ("win32", "darwin") else dirs.user_state_path / "logs"
    return dirs.user_data_path / "Data" if sys.platform == "win32" else dirs.user_data_path


def user_data_dir() -> Path:
    """Where downloads (red/, green/, blue/), composites and the demo archive live by default."""
    return _base("data")


def user_cache_dir() -> Path:
    """Metadata and preview caches; safe to delete."""
    return _base("cache")


def user_log_dir() -> Path:
    return _base("logs")
