"""Windowed temporal composites of Sentinel-2 band files (being split out of `s2desktop.core.composite`)."""

from s2desktop.core.compositing.rules import median_bands

__all__ = ["median_bands"]
