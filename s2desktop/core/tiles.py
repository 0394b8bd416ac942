"""Sentinel-2 tile ids: parse, validate, normalise; point -> tiles from the real ESA grid.

A tile id is an MGRS 100 km square: UTM zone (1-60), latitude band (C-X without I and O) and two square
letters (column, row). People write it as ``33UUP``, ``T33UUP``, ``t33uup`` or with a zero-padded zone
(``01CCV``); the canonical form has no ``T`` and no leading zero (``1CCV``), as in the bucket keys.
"""

from __future__ import annotations

import re

from s2desktop.core.errors import InvalidTileError

__all__ = ["parse_tile", "split_tile"]

LATITUDE_BANDS = "CDEFGHJKLMNPQRSTUVWX"
# MGRS 100 km column letters repeat every three zones: zone % 3 == 1 -> A-H, 2 -> J-R, 0 -> S-Z (no I, O).
_COLUMN_SETS = {1: "ABCDEFGH", 2: "JKLMNPQR", 0: "STUVWXYZ"}
_COLUMN_SET_NAMES = {1: "A-H", 2: "J-R", 0: "S-Z"}
_ROW_LETTERS = "ABCDEFGHJKLMNPQRSTUV"

_TILE_RE = re.compile(r"T?(\d{1,2})([A-Z])([A-Z])([A-Z])")


def split_tile(tile: str) -> tuple[int, str, str]:
    """``'T33UUP'`` -> ``(33, 'U', 'UP')``; raises InvalidTileError like :func:`parse_tile`."""
    if not isinstance(tile, str):
        raise InvalidTileError(f"{tile!r} is not a tile id (expected text such as 33UUP)")
    text = tile.strip()
    m = _TILE_RE.fullmatch(text.upper())
    if m is None:
        shown = text if len(text) <= 40 else text[:37] + "..."
        raise InvalidTileError(f"'{shown}' is not a tile id (expected e.g. 33UUP)")
    zone_text, band, col, row = m.groups()
    zone = int(zone_text)
    if not 1 <= zone <= 60:
        raise InvalidTileError(f"zone {zone} is out of range 1-60")
    if band in "IO":
        raise InvalidTileError(f"latitude band '{band}' does not exist")
    if band not in LATITUDE_BANDS:
        raise InvalidTileError(
            f"latitude band '{band}' is not covered by Sentinel-2 tiles (bands C-X without I and O)"
        )
    columns = _COLUMN_SETS[zone % 3]
    if col not in columns:
        raise InvalidTileError(
            f"100 km square column '{col}' does not exist in zone {zone} "
            f"(zone {zone} uses {_COLUMN_SET_NAMES[zone % 3]} without I and O)"
        )
    if row not in _ROW_LETTERS:
        raise InvalidTileError(f"100 km square row '{row}' does not exist (rows are A-V without I and O)")
    return zone, band, col + row


def parse_tile(text: str) -> str:
    """Validate a tile id and return its canonical form: ``' t01ccv '`` -> ``'1CCV'``."""
    zone, band, square = split_tile(text)
    return f"{zone}{band}{square}"
