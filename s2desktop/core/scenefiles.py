"""Names of downloaded files and folders: one pattern to build them, one regex to read them back.

An output folder::

    out/red/33UUP_2023-07-14_0_B04.jp2       B02 -> blue/, B03 -> green/, B04 -> red/, other bands -> <band>/
    out/SCL/33UUP_2023-07-14_0_SCL.jp2       the L2A scene classification of the same scene
    out/metadata/33UUP_2023-07-14_0.json     the scene's metadata (tileInfo.json + summary keys)
    out/metadata/verified/<file name>.json   what a download verified the file against
"""

from __future__ import annotations

import datetime as _dt
import re
from pathlib import Path

__all__ = [
    "BAND_FOLDERS", "BAND_FILE_RE", "band_folder", "scene_id", "band_filename", "band_path",
    "parse_band_filename", "metadata_path", "metadata_path_of", "verified_record_path", "scl_files",
]

BAND_FOLDERS = {"B02": "blue", "B03": "green", "B04": "red"}

# Tile: zone 1-60 without a leading zero, latitude band C-X without I and O, two square letters (no I, O).
_TILE = r"(?:[1-9]|[1-5]\d|60)[C-HJ-NP-X][A-HJ-NP-Z][A-HJ-NP-V]"
BAND_FILE_RE = re.compile(
    rf"^(?P<tile>{_TILE})_(?P<date>\d{{4}}-\d{{2}}-\d{{2}})_(?P<seq>\d+)_(?P<band>[A-Z0-9]+)(?P<ext>\..*)?$"
)


def band_folder(band: str) -> str:
    return BAND_FOLDERS.get(band, band)


def scene_id(tile: str, date: _dt.date | str, sequence: int) -> str:
    """``33UUP_2023-07-14_0``"""
    day = date.isoformat() if isinstance(date, _dt.date) else str(date)
    return f"{tile}_{day}_{int(sequence)}"


def band_filename(scene: str, band: str, ext: str) -> str:
    """``33UUP_2023-07-14_0`` + ``B04`` + ``.jp2`` -> ``33UUP_2023-07-14_0_B04.jp2``"""
    return f"{scene}_{band}{ext}"


def band_path(out_dir, scene: str, band: str, ext: str) -> Path:
    return Path(out_dir) / band_folder(band) / band_filename(scene, band, ext)


def parse_band_filename(path) -> dict | None:
    """``'33UUP_2023-07-14_0_B04.jp2'`` -> {'tile', 'date', 'seq' (int), 'band', 'scene_id'}; None otherwise."""
    m = BAND_FILE_RE.match(Path(path).name)
    if not m:
        return None
    d = {k: m[k] for k in ("tile", "date", "band")}
    d["seq"] = int(m["seq"])
    d["scene_id"] = scene_id(d["tile"], d["date"], d["seq"])
    return d


def metadata_path(out_dir, scene: str) -> Path:
    return Path(out_dir) / "metadata" / f"{scene}.json"


def metadata_path_of(band_file) -> Path | None:
    """The metadata json a download wrote for a band file (``out/red/x.jp2`` -> ``out/metadata/...``)."""
    parsed = parse_band_filename(band_file)
    return metadata_path(Path(band_file).parent.parent, parsed["scene_id"]) if parsed else None


def verified_record_path(band_file) -> Path:
    band_file = Path(band_file)
    return band_file.parent.parent / "metadata" / "verified" / f"{band_file.name}.json"


def scl_files(out_dir, scene: str) -> list[Path]:
    """The downloaded SCL file(s) of a scene, ``{out}/SCL/{scene_id}_SCL.*`` (temp and side files left out)."""
    folder = Path(out_dir) / band_folder("SCL")
    return sorted(p for p in folder.glob(f"{scene}_SCL.*")
                  if p.is_file() and not p.name.endswith((".aux.xml", ".part", ".tmp")))
