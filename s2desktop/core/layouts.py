"""The AWS bucket layouts of Sentinel-2 scenes: the one place their key patterns are spelled.

Read by the search (:mod:`catalog`), written by the archive writer (:mod:`archive`) and recognised in local
folders (:mod:`sources`), so the three cannot drift apart:

- ``l1c``:  ``tiles/{zone}/{band}/{sq}/{yyyy}/{m}/{d}/{seq}/B04.jp2`` + ``tileInfo.json``, ``preview.jpg``
- ``l2a``:  the same folder; bands under ``R10m/``, ``R20m/``, ``R60m/``; quick-look ``qi/L2A_PVI.jp2``
- ``cogs``: ``sentinel-s2-l2a-cogs/{zone}/{band}/{sq}/{yyyy}/{m}/S2x_{tile}_{yyyymmdd}_{seq}_L2A/B04.tif`` +
  ``tileinfo_metadata.json``, ``thumbnail.jpg`` (no day folder)

Months and days are not zero-padded; zones have no leading zero.
"""

from __future__ import annotations

import datetime as _dt
import re

from s2desktop.core.errors import InvalidInputError
from s2desktop.core.tiles import parse_tile, split_tile

__all__ = [
    "LAYOUTS", "TILES_ROOT", "COG_ROOT", "L2A_RESOLUTION", "RESOLUTION_FOLDERS", "METADATA_NAMES",
    "PRODUCT_INFO_NAME", "L1C_PREVIEW", "L2A_PREVIEW", "COG_THUMBNAIL", "PREVIEW_NAMES", "BAND_EXTENSIONS",
    "COG_SCENE_RE", "check_layout", "tile_root", "tiles_scene_prefix", "cog_scene_name", "scene_prefix",
    "band_relpath", "parse_band_relpath",
]

LAYOUTS = ("l1c", "l2a", "cogs")
TILES_ROOT = "tiles"  # l1c and l2a
COG_ROOT = "sentinel-s2-l2a-cogs"

# Native resolution folder of each band in the L2A JP2 layout (the bucket also holds resampled copies in the
# coarser folders; the finest one is what a user wants).
L2A_RESOLUTION = {
    "B02": "R10m", "B03": "R10m", "B04": "R10m", "B08": "R10m", "TCI": "R10m", "AOT": "R10m", "WVP": "R10m",
    "B05": "R20m", "B06": "R20m", "B07": "R20m", "B8A": "R20m", "B11": "R20m", "B12": "R20m", "SCL": "R20m",
    "B01": "R60m", "B09": "R60m",
}
RESOLUTION_FOLDERS = ("R10m", "R20m", "R60m")  # finest first

METADATA_NAMES = {"l1c": "tileInfo.json", "l2a": "tileInfo.json", "cogs": "tileinfo_metadata.json"}
PRODUCT_INFO_NAME = "productInfo.json"
L1C_PREVIEW = "preview.jpg"  # 343 px JPEG
L2A_PREVIEW = "qi/L2A_PVI.jp2"
COG_THUMBNAIL = "thumbnail.jpg"
# Quick-looks in order of preference.
# Level-1C cloud masks in a scene folder, as the pseudo-bands they are fetched as (see core.qimasks):
# MSK_CLASSI_B00.jp2 from processing baseline 04.00, MSK_CLOUDS_B00.gml (polygons) before.
QI_MASKS = {"l1c": {"qi/MSK_CLASSI_B00.jp2": "MSKCLASSI", "qi/MSK_CLOUDS_B00.gml": "MSKCLOUDS"}, "l2a": {},
            "cogs": {}}
QI_BANDS = ("MSKCLASSI", "MSKCLOUDS")  # the pseudo-bands of those masks, the raster first
PREVIEW_NAMES = {"l1c": (L1C_PREVIEW,), "l2a": (L1C_PREVIEW, L2A_PREVIEW), "cogs": (COG_THUMBNAIL,)}
BAND_EXTENSIONS = {"l1c": ".jp2", "l2a": ".jp2", "cogs": ".tif"}

# A COG scene folder: S2B_33UUP_20230714_0_L2A
COG_SCENE_RE = re.compile(r"^(?P<platform>S2[A-D])_(?P<tile>\d{1,2}[A-Z]{3})_(?P<date>\d{8})_(?P<seq>\d+)_L2A$")


def check_layout(layout: str) -> str:
    if layout not in LAYOUTS:
        raise InvalidInputError(f"unknown layout {layout!r} (expected one of {', '.join(LAYOUTS)})")
    return layout


def tile_root(layout: str, tile: str) -> str:
    """The prefix every scene of ``tile`` is under, ending '/': where the search walk starts."""
    zone, band, square = split_tile(tile)
    root = COG_ROOT if check_layout(layout) == "cogs" else TILES_ROOT
    return f"{root}/{zone}/{band}/{square}/"


def tiles_scene_prefix(tile: str, date: _dt.date, sequence: int = 0) -> str:
    """``tiles/33/U/UP/2023/7/14/0``: an L1C/L2A scene folder (and the ``path`` in every tileInfo.json)."""
    return f"{tile_root('l1c', tile)}{date.year}/{date.month}/{date.day}/{int(sequence)}"


def cog_scene_name(platform: str, tile: str, date: _dt.date, sequence: int = 0) -> str:
    return f"{platform}_{parse_tile(tile)}_{date:%Y%m%d}_{int(sequence)}_L2A"


def scene_prefix(layout: str, tile: str, date: _dt.date, sequence: int = 0, platform: str = "S2A") -> str:
    """The scene folder's key prefix in the bucket (no trailing slash). Only COG names carry the platform."""
    if check_layout(layout) == "cogs":
        return f"{tile_root(layout, tile)}{date.year}/{date.month}/{cog_scene_name(platform, tile, date, sequence)}"
    return tiles_scene_prefix(tile, date, sequence)


def band_relpath(layout: str, band: str) -> str:
    """Where a band file sits inside a scene folder: ``B04.jp2``, ``R20m/SCL.jp2``, ``B04.tif``."""
    name = f"{band}{BAND_EXTENSIONS[check_layout(layout)]}"
    return f"{L2A_RESOLUTION.get(band, 'R10m')}/{name}" if layout == "l2a" else name


def parse_band_relpath(layout: str, rel: str) -> tuple[str, int] | None:
    """``'R20m/B11.jp2'`` -> ``('B11', 1)``: the band name (upper case, not validated) and its resolution rank
    (0 finest; always 0 outside L2A). None for anything that is not a band file of the layout."""
    ext = BAND_EXTENSIONS[check_layout(layout)]
    parts = rel.split("/")
    if not parts[-1].endswith(ext):
        return None
    name = parts[-1][: -len(ext)].upper()
    if layout == "l2a":
        if len(parts) != 2 or parts[0] not in RESOLUTION_FOLDERS:
            return None
        return name, RESOLUTION_FOLDERS.index(parts[0])
    return (name, 0) if len(parts) == 1 else None
