"""Display stretches to uint8, pure numpy, shared by thumbnails and the desktop viewer.

Every stretch takes `data` (bands, h, w) (or (h, w)) and `valid` (h, w) bool and returns uint8 of the same
band layout; nodata pixels come out 0 and become transparent in `to_rgba`.

- `percentile(data, valid, low=2, high=98)`: per-band cumulative cut excluding nodata (QGIS's default).
- `shared(data, valid, low=2, high=98)`: one cut over the pixels of all bands, the same for each band, so the
  bands keep their balance (a grey surface stays grey); the viewer's default for an RGB composite.
- `minmax(data, valid)`: per-band min..max of the valid pixels.
- `truecolor(data, valid, offset=0)`: Sentinel Hub's true colour, reflectance x 2.5 clipped to 0..1, with
  reflectance = (DN + offset) / 10000 (offset -1000 for baseline >= 04.00 inputs; composites are on offset 0).
- `gamma(u8, g)`: a LUT gamma on uint8.
- `to_rgba(u8, valid)`: (h, w, 4) uint8, grey replicated for one band, alpha 0 on nodata.
- `classes(data, valid)`: an L2A scene classification (SCL) in its class colours (`SCL_CLASSES`), RGBA.

`thumbnail(path, size, stretch, bands)` is the decimated read + stretch + RGBA; `save_png` writes it.
`WindowCanvas` is the image a running composite's finished windows are painted into, one window at a time.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = [
    "STRETCHES",
    "percentile",
    "shared",
    "default_stretch",
    "minmax",
    "truecolor",
    "levels",
    "apply_levels",
    "linear",
    "gamma",
    "stretch",
    "to_rgba",
    "SCL_CLASSES",
    "classes",
    "thumbnail",
    "save_png",
    "WindowCanvas",
]

STRETCHES = ("percentile", "shared", "minmax", "truecolor")
MODES = ("auto",) + STRETCHES + ("classes",)  # thumbnails; auto: classes for an SCL, else percentile

# Sentinel-2 L2A scene classification: value -> (name, colour), in the colours of ESA's documentation
SCL_CLASSES = {
    0: ("No data", (0, 0, 0)),
    1: ("Saturated or defective", (255, 0, 0)),
    2: ("Dark area / cast shadow", (47, 47, 47)),
    3: ("Cloud shadow", (100, 50, 0)),
    4: ("Vegetation", (0, 160, 0)),
    5: ("Not vegetated", (255, 230, 90)),
    6: ("Water", (0, 0, 255)),
    7: ("Unclassified", (128, 128, 128)),
    8: ("Cloud, medium probability", (192, 192, 192)),
    9: ("Cloud, high probability", (255, 255, 255)),
    10: ("Thin cirrus", (100, 200, 255)),
    11: ("Snow or ice", (255, 150, 255)),
}
UNKNOWN_CLASS = (255, 0, 255)  # a value outside 0-11: magenta, so it stands out
_MAX_SAMPLES = 1_000_000


def _as3d(data: np.ndarray) -> tuple[np.ndarray, bool]:
    data = np.asarray(data)
    if data.ndim == 2:
        return data[np.newaxis], True
    if data.ndim != 3:
        raise ValueError(f"expected (bands, h, w) or (h, w) data, got shape {data.shape}")
    return data, False


def _valid(valid, shape) -> np.ndarray:
    if valid is None:
        return np.ones(shape, dtype=bool)
    valid = np.asarray(valid, dtype=bool)
    if valid.shape != shape:
        raise ValueError(f"valid mask shape {valid.shape} does not match data {shape}")
    return valid


def _samples(band: np.ndarray, valid: np.ndarray) -> np.ndarray:
    vals = band[valid]
    if vals.size > _MAX_SAMPLES:  # a regular subsample is plenty for percentiles of big viewer images
        vals = vals[:: int(np.ceil(vals.size / _MAX_SAMPLES))]
    return vals


def linear(data: np.ndarray, valid: np.ndarray | None, lows, highs) -> np.ndarray:
    """Map [low, high] per band linearly to 0..255 (rounded, clipped); nodata -> 0."""
    d3, squeeze = _as3d(data)
    v = _valid(valid, d3.shape[1:])
    lows = np.broadcast_to(np.asarray(lows, dtype=np.float64), (d3.shape[0],))
    highs = np.broadcast_to(np.asarray(highs, dtype=np.float64), (d3.shape[0],))
    out = np.zeros(d3.shape, dtype=np.uint8)
    for i in range(d3.shape[0]):
        lo, hi = float(lows[i]), float(highs[i])
        span = hi - lo
        x = d3[i].astype(np.float32)
        if span <= 0:
            y = np.where(x > lo, 255.0, 0.0) if span == 0 else np.zeros_like(x)
        else:
            y = (x - np.float32(lo)) * np.float32(255.0 / span)
        np.clip(y, 0, 255, out=y)
        out[i] = np.rint(y).astype(np.uint8)
        out[i][~v] = 0
    return out[0] if squeeze else out


def levels(data: np.ndarray, valid: np.ndarray | None = None, method: str = "percentile", *,
           low: float = 2.0, high: float = 98.0, offset: int = 0, gain: float = 2.5) -> list[tuple[float, float]]:
    """Per-band (lo, hi) display levels of a named stretch, from the valid pixels.

    The one place the stretches are defined: `percentile`/`minmax`/`truecolor` below, the viewer and the
    rendered export all map through these levels, so what is exported is what is shown.
    """
    d3, _ = _as3d(data)
    if method == "truecolor":
        lo = float(-int(offset))  # not -float(0): levels read "-0.0" in the viewer
        return [(lo, lo + 10000.0 / gain)] * d3.shape[0]
    if method not in ("percentile", "shared", "minmax"):
        raise ValueError(f"unknown stretch {method!r} (use {', '.join(STRETCHES)})")
    if method in ("percentile", "shared") and not 0 <= low < high <= 100:
        raise ValueError("percentiles need 0 <= low < high <= 100")
    v = _valid(valid, d3.shape[1:])
    if method == "shared":
        s = np.concatenate([_samples(band, v) for band in d3])
        cut = tuple(float(x) for x in np.percentile(s, [low, high])) if s.size else (0.0, 1.0)
        return [cut] * d3.shape[0]
    out: list[tuple[float, float]] = []
    for band in d3:
        if method == "minmax":
            s = band[v]
            out.append((float(s.min()), float(s.max())) if s.size else (0.0, 1.0))
        else:
            s = _samples(band, v)
            out.append(tuple(float(x) for x in np.percentile(s, [low, high])) if s.size else (0.0, 1.0))
    return out


def apply_levels(data: np.ndarray, valid: np.ndarray | None, band_levels, gamma_value: float = 1.0) -> np.ndarray:
    """Per-band (lo, hi) levels (the last one repeats for extra bands), then gamma -> uint8; nodata -> 0."""
    d3, squeeze = _as3d(data)
    n = len(band_levels)
    lows = [float(band_levels[min(i, n - 1)][0]) for i in range(d3.shape[0])]
    highs = [float(band_levels[min(i, n - 1)][1]) for i in range(d3.shape[0])]
    out = gamma(linear(d3, valid, lows, highs), gamma_value)
    return out[0] if squeeze else out


def percentile(data: np.ndarray, valid: np.ndarray | None = None, low: float = 2.0, high: float = 98.0):
    """Per-band low..high percentile cut of the valid pixels -> uint8."""
    return apply_levels(data, valid, levels(data, valid, "percentile", low=low, high=high))


def shared(data: np.ndarray, valid: np.ndarray | None = None, low: float = 2.0, high: float = 98.0):
    """One low..high percentile cut over all bands' valid pixels, applied to each band -> uint8."""
    return apply_levels(data, valid, levels(data, valid, "shared", low=low, high=high))


def default_stretch(count: int, dtypes, scene_classification: bool = False) -> str:
    """The stretch a raster opens in: 'classes' for a scene classification; 'truecolor' for 3+ uint16 bands (a
    Sentinel-2 RGB composite or band stack: reflectance x 2.5, the same for every band, so the ground looks as it
    does -- a per-band cut tints a grey surface, and even one cut shared by the bands, fitted to a bright desert,
    saturates it orange); 'percentile' for anything else (a single band, 8-bit pictures, floats)."""
    if scene_classification:
        return "classes"
    if count >= 3 and all(str(d) == "uint16" for d in list(dtypes)[:3]):
        return "truecolor"
    return "percentile"


def minmax(data: np.ndarray, valid: np.ndarray | None = None):
    """Per-band min..max of the valid pixels -> uint8."""
    return apply_levels(data, valid, levels(data, valid, "minmax"))


def truecolor(data: np.ndarray, valid: np.ndarray | None = None, offset: int = 0, gain: float = 2.5):
    """Sentinel Hub true colour: clip(gain * (DN + offset) / 10000, 0, 1) * 255 -> uint8.

    With offset 0 that is DN 0..4000 -> 0..255; with offset -1000 (baseline >= 04.00) DN 1000..5000.
    """
    return apply_levels(data, valid, levels(data, valid, "truecolor", offset=offset, gain=gain))


def gamma(u8: np.ndarray, g: float = 1.0) -> np.ndarray:
    """Gamma on uint8 through a 256-entry LUT (g > 1 brightens mid-tones)."""
    if g <= 0:
        raise ValueError("gamma must be positive")
    if g == 1.0:
        return np.asarray(u8, dtype=np.uint8)
    lut = np.rint(255.0 * (np.arange(256) / 255.0) ** (1.0 / g)).astype(np.uint8)
    return lut[np.asarray(u8, dtype=np.uint8)]


def stretch(data, valid=None, method: str = "percentile", *, low: float = 2.0, high: float = 98.0,
            offset: int = 0, gamma_value: float = 1.0) -> np.ndarray:
    """Dispatch by name: 'percentile' | 'shared' | 'minmax' | 'truecolor'; then gamma."""
    band_levels = levels(data, valid, method, low=low, high=high, offset=offset)
    return apply_levels(data, valid, band_levels, gamma_value)


def to_rgba(u8: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """(bands, h, w) or (h, w) uint8 -> (h, w, 4) RGBA; one band -> grey, nodata -> alpha 0."""
    d3, _ = _as3d(u8)
    if d3.shape[0] == 1:
        rgb = np.repeat(d3, 3, axis=0)
    elif d3.shape[0] >= 3:
        rgb = d3[:3]
    else:
        raise ValueError("to_rgba needs 1 or 3 bands")
    h, w = d3.shape[1:]
    v = _valid(valid, (h, w))
    out = np.empty((h, w, 4), dtype=np.uint8)
    out[..., :3] = np.moveaxis(rgb, 0, -1)
    out[..., 3] = np.where(v, 255, 0)
    return out


class WindowCanvas:
    """The image a running composite's finished windows are painted into (`core.progress.WindowPixels`): RGBA at
    the preview's size, transparent until a window arrives, covering the output's extent (width, height).

    The stretch is fixed -- true colour, DN 0..4000 -> 0..255, the viewer's own for an RGB composite -- since the
    percentiles of the whole are not known until it is written: each window is stretched once, as it comes."""

    def __init__(self, height: int, width: int, extent: tuple[int, int]):
        self.rgba = np.zeros((height, width, 4), dtype=np.uint8)
        self.extent = extent
        self.windows = 0

    @classmethod
    def for_window(cls, px) -> "WindowCanvas":
        return cls(px.height, px.width, (px.out_width, px.out_height))

    def fits(self, px) -> bool:
        """Whether the window belongs to this image (the same preview size over the same extent)."""
        return self.rgba.shape[:2] == (px.height, px.width) and self.extent == (px.out_width, px.out_height)

    _lut: np.ndarray | None = None  # every uint16 value through the true-colour levels (`linear`), built once

    def paste(self, px) -> None:
        """Stretch a window into its place: what `truecolor` + `to_rgba` make of it, through a lookup table (a
        1024 px window takes ~10 ms on the GUI thread, not ~90)."""
        if WindowCanvas._lut is None:
            (lo, hi), = levels(np.zeros((1, 1, 1), np.uint16), None, "truecolor")
            WindowCanvas._lut = linear(np.arange(65536, dtype=np.uint16)[None, None], None, lo, hi)[0, 0]
        data = px.pixels
        valid = (data != 0).any(axis=0)
        h, w = valid.shape
        dst = self.rgba[px.row:px.row + h, px.col:px.col + w]
        for i in range(3):  # one band: grey
            np.take(WindowCanvas._lut, data[min(i, data.shape[0] - 1)], out=dst[..., i])
            dst[..., i][~valid] = 0
        dst[..., 3] = np.where(valid, np.uint8(255), np.uint8(0))
        self.windows += 1


def class_name(value) -> str:
    """'Vegetation' for 4; 'unknown class 14' for a value outside the SCL table."""
    entry = SCL_CLASSES.get(int(value))
    return entry[0] if entry else f"unknown class {int(value)}"


def classes(data: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """(1, h, w) or (h, w) SCL values -> (h, w, 4) RGBA in the class colours; nodata (class 0) transparent."""
    d3, _ = _as3d(data)
    band = d3[0]
    lut = np.zeros((256, 4), dtype=np.uint8)
    lut[:] = (*UNKNOWN_CLASS, 255)
    for value, (_name, colour) in SCL_CLASSES.items():
        lut[value] = (*colour, 255)
    lut[0, 3] = 0
    out = lut[np.clip(band, 0, 255).astype(np.uint8)]
    out[..., 3] &= np.where(_valid(valid, band.shape), 255, 0).astype(np.uint8)
    return out


def _offset_of(path: Path, info) -> int:
    """Radiometric offset for true colour: our composites say OUTPUT_OFFSET; band files via their metadata."""
    if "OUTPUT_OFFSET" in info.tags:
        try:
            return int(info.tags["OUTPUT_OFFSET"])
        except ValueError:
            pass
    from s2desktop.core.rasterinfo import file_offset

    off, _b, _src = file_offset(path)
    return off or 0


def thumbnail(path, size: int = 200, stretch: str = "auto", bands=None, *, offset: int | None = None,
              low: float = 2.0, high: float = 98.0, gamma_value: float = 1.0) -> np.ndarray:
    """(h, w, 4) RGBA uint8 thumbnail, longest side = size, from a decimated read (never full resolution).

    stretch: one of MODES; 'classes' shows a scene classification (SCL) in its class colours, 'auto' picks
    'classes' for an SCL and 'percentile' for anything else.

    bands: 1-based indexes, 3 for RGB or 1 for grey (default 1,2,3 when the file has 3+ bands, else 1).
    offset: for 'truecolor'; None reads it from the file's tags / scene metadata.
    """
    from s2desktop.core.errors import InvalidInputError
    from s2desktop.core.rasterinfo import read_overview

    if stretch not in MODES:
        raise InvalidInputError(f"unknown stretch {stretch!r} (use {', '.join(MODES)})")
    if bands is not None and len(bands) not in (1, 3):
        raise InvalidInputError(f"give 1 band (grey) or 3 bands (RGB), not {len(bands)}")
    if size < 1:
        raise InvalidInputError("size must be at least 1 pixel")
    from s2desktop.core.rasterinfo import is_scene_classification

    data, valid, info = read_overview(path, size, bands, enlarge=True)
    if stretch == "auto":
        stretch = "classes" if is_scene_classification(info) else "percentile"
    if stretch == "classes":
        return classes(data, valid)
    if stretch == "truecolor" and offset is None:
        offset = _offset_of(Path(path), info)
    band_levels = levels(data, valid, stretch, low=low, high=high, offset=offset or 0)
    return to_rgba(apply_levels(data, valid, band_levels, gamma_value), valid)


def save_png(rgba: np.ndarray, path) -> Path:
    """Write an (h, w, 4) RGBA array as PNG (temp name, then rename)."""
    from PIL import Image

    from s2desktop.core.errors import OutputError
    from s2desktop.core.fsutil import atomic_path

    path = Path(path)
    if path.suffix.lower() != ".png":
        from s2desktop.core.errors import InvalidInputError

        raise InvalidInputError(f"{path.name}: thumbnails are written as PNG; give the output a .png name")
    try:
        with atomic_path(path) as tmp:
            Image.fromarray(np.ascontiguousarray(rgba)).save(tmp, format="PNG")
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path
