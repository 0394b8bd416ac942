"""Processing baselines: '02.06' from product names ('..._N0206_...') or text, the 'N0206' code back, and the
radiometric offset each implies.

Reflectance = (DN + offset) / 10000, with offset -1000 from baseline 04.00 on (reprocessed 05.xx products of
older dates included) and 0 before. Decide from the baseline, never from the date.
"""

from __future__ import annotations

import re

from s2desktop.core.errors import InvalidInputError

__all__ = ["NEW_BASELINE_OFFSET", "baseline_of", "baseline_code", "offset_for_baseline"]

NEW_BASELINE_OFFSET = -1000
_IN_NAME_RE = re.compile(r"_N(\d{2})(\d{2})(?:_|$)")
_NUMBER_RE = re.compile(r"\s*(\d{1,2})\.(\d{1,2})\s*")


def baseline_of(text: str | None) -> str | None:
    """'S2B_MSIL1C_20180617T001109_N0206_R073_...' -> '02.06'; '04.00' and '5.09' pass through normalised;
    None when the text holds no baseline."""
    if not text:
        return None
    text = str(text)
    m = _NUMBER_RE.fullmatch(text) or _IN_NAME_RE.search(text)
    return f"{int(m.group(1)):02d}.{int(m.group(2)):02d}" if m else None


def baseline_code(baseline: str) -> str:
    """'02.06' -> 'N0206' (the form in product names)."""
    normal = baseline_of(baseline) if isinstance(baseline, str) and "_" not in baseline else None
    if normal is None:
        raise InvalidInputError(f"processing baseline {baseline!r} is not of the form '02.06'")
    return "N" + normal.replace(".", "")


def offset_for_baseline(baseline: str | None) -> int | None:
    """Radiometric offset of a processing baseline: -1000 from 04.00 on, 0 before; None when unknown."""
    normal = baseline_of(baseline)
    if normal is None:
        return None
    major, minor = (int(v) for v in normal.split("."))
    return NEW_BASELINE_OFFSET if (major, minor) >= (4, 0) else 0
