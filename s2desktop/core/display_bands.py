"""Which three bands of a multi-band raster a viewer shows as red, green and blue: any raster, not only ours.

Bands are found by their descriptions: a description naming a Sentinel-2 band (``B04``, ``red (B04)``, ``B8A``,
``b4``) makes that band known by name, so a preset (:data:`s2desktop.core.bands.PRESETS`) can be shown when the
raster holds its three bands. Otherwise any three band indexes can be chosen.
"""

from __future__ import annotations

import re
from typing import Sequence

from s2desktop.core.bands import PRESETS, spectral_name

__all__ = ["band_name", "named_bands", "preset_indexes", "presets_available", "default_indexes"]

_NAME_RE = re.compile(r"\bB(0?[1-9]|1[0-2]|8A)\b", re.IGNORECASE)
DISPLAY_PRESETS = ("true-colour", "false-colour", "swir")  # the three-band ones


def band_name(description: str | None) -> str | None:
    """The Sentinel-2 band a description names ('red (B04)' -> 'B04', 'b8a' -> 'B8A'), or None: the first
    word of it that core.bands reads as a band name."""
    m = _NAME_RE.search(description or "")
    return spectral_name(m.group(0)) if m else None


def named_bands(descriptions: Sequence[str | None]) -> dict[str, int]:
    """{band name: 1-based index} of the bands whose description names one (the first of a name wins)."""
    out: dict[str, int] = {}
    for i, d in enumerate(descriptions, 1):
        name = band_name(d)
        if name and name not in out:
            out[name] = i
    return out


def preset_indexes(preset: str, descriptions: Sequence[str | None]) -> tuple[int, int, int] | None:
    """The 1-based indexes of a three-band preset's bands in a raster, or None when it lacks one of them."""
    names = named_bands(descriptions)
    wanted = PRESETS.get(preset, ())
    if len(wanted) != 3 or not all(b in names for b in wanted):
        return None
    return tuple(names[b] for b in wanted)  # type: ignore[return-value]


def presets_available(descriptions: Sequence[str | None]) -> list[str]:
    """The three-band presets a raster can show."""
    return [p for p in DISPLAY_PRESETS if preset_indexes(p, descriptions)]


def default_indexes(count: int, descriptions: Sequence[str | None]) -> tuple[int, ...]:
    """What a raster opens with: true colour when its bands are named so, else bands 1-3 (one band: band 1)."""
    if count < 3:
        return (1,)
    return preset_indexes("true-colour", descriptions) or (1, 2, 3)
