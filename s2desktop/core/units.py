"""Sizes and durations as people read them."""

from __future__ import annotations

__all__ = ["human_bytes", "human_duration"]


def human_bytes(n: float) -> str:
    """1536 -> '1.5 KiB' (binary units, as the sizes are counted in 1024s)."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def human_duration(seconds: float) -> str:
    """75 -> '1 min 15 s'; 3700 -> '1 h 01 min'."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    m, s = divmod(seconds, 60)
    if m < 60:
        return f"{m} min {s:02d} s"
    h, m = divmod(m, 60)
    return f"{h} h {m:02d} min"
