"""Sentinel-2 band presets: the bands a composite is made of, by name (shared by the command line and the
window)."""

from __future__ import annotations

__all__ = ["PRESETS", "DEFAULT_PRESET"]

PRESETS = {
    "true-colour": ("B04", "B03", "B02"),
    "false-colour": ("B08", "B04", "B03"),
    "swir": ("B12", "B8A", "B04"),
    "all": ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B11", "B12"),  # L1C and L2A both
}
DEFAULT_PRESET = "true-colour"
