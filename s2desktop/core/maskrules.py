"""How a cloud mask is applied, as values: the scene-classification (SCL) classes it leaves out and the buffer
grown around the masked area.

Which mask a scene is masked with (its SCL, its L1C cloud mask, none) is the request's ``mask`` choice
(:func:`s2desktop.core.stack.mask_bands_for`); this module holds the two rules next to it:

- the SCL classes masked, by number or name (``3,8,9,10`` or ``cloud-shadow,cloud-medium,cloud-high,cirrus``);
  by default :data:`DEFAULT_CLASSES`, no data, saturated or defective, cloud shadows, clouds and cirrus;
- a buffer in metres: every pixel whose centre lies within that distance of a masked one is masked too (cloud
  edges and thin haze around them are the usual residue of a composite). On a 10 m grid, 20 m is two pixels.
"""

from __future__ import annotations

import math
from typing import Iterable

from s2desktop.core.errors import InvalidInputError

__all__ = ["SCL_CLASS_NAMES", "DEFAULT_CLASSES", "MAX_BUFFER", "parse_classes", "check_buffer", "buffer_pixels",
           "describe_classes", "classes_text"]

# The L2A scene classification's values, named as --mask-classes spells them (ESA's names, shortened).
SCL_CLASS_NAMES = {0: "no-data", 1: "saturated", 2: "dark", 3: "cloud-shadow", 4: "vegetation",
                   5: "not-vegetated", 6: "water", 7: "unclassified", 8: "cloud-medium", 9: "cloud-high",
                   10: "cirrus", 11: "snow"}
DEFAULT_CLASSES = (0, 1, 3, 8, 9, 10)
MAX_BUFFER = 5000.0  # m: a wider buffer would mask most of a cloudy scene (and take long to draw)


def parse_classes(value: str | Iterable) -> tuple[int, ...]:
    """SCL classes from ``'3,8,9,10'``, ``'cloud-shadow,cirrus'`` (names of :data:`SCL_CLASS_NAMES`, any case,
    '_' or '-'), or an iterable of numbers / names; sorted, each once. InvalidInputError in one line."""
    items = value.split(",") if isinstance(value, str) else list(value)
    by_name = {name: v for v, name in SCL_CLASS_NAMES.items()}
    out = set()
    for item in items:
        text = str(item).strip().lower().replace("_", "-").replace(" ", "-")
        if not text:
            continue
        if text.isdigit() and int(text) in SCL_CLASS_NAMES:
            out.add(int(text))
        elif text in by_name:
            out.add(by_name[text])
        else:
            raise InvalidInputError(f"mask class {str(item).strip()!r} is not an SCL class: give numbers 0-11 or "
                                    f"names ({', '.join(SCL_CLASS_NAMES.values())})")
    if not out:
        raise InvalidInputError("no mask classes given: e.g. 3,8,9,10 or cloud-shadow,cloud-medium,cloud-high,cirrus")
    return tuple(sorted(out))


def check_buffer(metres) -> float:
    """The buffer in metres, 0 to :data:`MAX_BUFFER`. InvalidInputError in one line."""
    try:
        m = float(metres)
    except (TypeError, ValueError):
        raise InvalidInputError(f"mask buffer {metres!r} is not a distance in metres") from None
    if not math.isfinite(m) or m < 0 or m > MAX_BUFFER:
        raise InvalidInputError(f"mask buffer {metres:g} m: give 0 to {MAX_BUFFER:g} metres")
    return m


def buffer_pixels(metres: float, pixel: float) -> int:
    """Whole pixels of ``pixel`` metres a buffer reaches: a pixel is masked when its centre lies within
    ``metres`` of a masked one's (20 m at 10 m: 2)."""
    return int(math.floor(metres / abs(pixel) + 1e-9)) if metres > 0 and pixel else 0


def describe_classes(classes: Iterable[int]) -> str:
    """'3 cloud-shadow, 8 cloud-medium': the classes with their names (the output's tags)."""
    return ", ".join(f"{c} {SCL_CLASS_NAMES.get(c, '?')}" for c in classes)


def classes_text(classes: Iterable[int]) -> str:
    """'3,8,9,10': the classes as --mask-classes takes them."""
    return ",".join(str(c) for c in classes)
