"""Where the bundled `resources/` folder is: beside the package in a checkout, inside the PyInstaller bundle."""

from __future__ import annotations

import sys
from pathlib import Path

from s2desktop.core.errors import NotFoundError


def resources_dir() -> Path:
    frozen = getattr(sys, "_MEIPASS", None)
    candidates = [Path(frozen) / "resources"] if frozen else []
    candidates.append(Path(__file__).resolve().parents[2] / "resources")
    for c in candidates:
        if c.is_dir():
            return c
    raise NotFoundError(f"the resources folder is missing (looked in {', '.join(map(str, candidates))})")


def resource_path(*parts: str) -> Path:
    path = resources_dir().joinpath(*parts)
    if not path.exists():
        raise NotFoundError(f"resource {'/'.join(parts)} is missing from {resources_dir()}")
    return path
