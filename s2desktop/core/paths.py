"""Per-user folders (data, cache, logs), following each platform's convention.

`S2DESKTOP_HOME` overrides the root of all three (tests and portable installs use it).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

APP = "s2desktop"


def _base(kind: str) -> Path:
    override = os.environ.get("S2DESKTOP_HOME")
    if override:
        return Path(override) / kind
    home = Path.home()
    if sys.platform == "win32":
        root = Path(os.environ.get("LOCALAPPDATA", home / "AppData" / "Local")) / APP
        return root / kind.capitalize()
    if sys.platform == "darwin":
        if kind == "cache":
            return home / "Library" / "Caches" / APP
        if kind == "logs":
            return home / "Library" / "Logs" / APP
        return home / "Library" / "Application Support" / APP
    xdg = {
        "data": ("XDG_DATA_HOME", home / ".local" / "share"),
        "cache": ("XDG_CACHE_HOME", home / ".cache"),
        "logs": ("XDG_STATE_HOME", home / ".local" / "state"),
    }[kind]
    root = Path(os.environ.get(xdg[0]) or xdg[1]) / APP
    return root / "logs" if kind == "logs" else root


def user_data_dir() -> Path:
    """Where downloads (red/, green/, blue/), composites and the demo archive live by default."""
    return _base("data")


def user_cache_dir() -> Path:
    """Metadata and preview caches; safe to delete."""
    return _base("cache")


def user_log_dir() -> Path:
    return _base("logs")
