"""Sentinel-2 band names, what each band is, and the presets `--bands` takes: the one place they are spelled.

A band list is written as names (``B08,B04,B03``; case-insensitive, ``B8`` is ``B08``, ``b8a`` is ``B8A``) or a
preset, or both (``true-colour,B08``); the order given is the composite's band order, a repeated band counts once.

Presets: ``true-colour`` (B04,B03,B02, the default), ``false-colour`` (B08,B04,B03: vegetation red),
``swir`` (B12,B8A,B04: burn scars, moisture, snow), ``all`` (the twelve bands of a Level-2A product in
wavelength order: B01,B02,B03,B04,B05,B06,B07,B08,B8A,B09,B11,B12; B10, the cirrus band that only Level-1C
has, is left out -- name it to have it).

Bands of 20 m and 60 m are composited on the output grid (10 m for a tile): see `RESAMPLING`.
"""

from __future__ import annotations

from dataclasses import dataclass

from s2desktop.core.errors import InvalidInputError

__all__ = ["Band", "SPECTRAL", "PRESETS", "DEFAULT_PRESET", "TRUE_COLOUR", "FALSE_COLOUR", "SWIR", "ALL", "PRODUCTS",
           "RESAMPLING", "spectral_name", "parse_bands", "band_info", "description", "native_resolution", "finest"]


@dataclass(frozen=True)
class Band:
    """One spectral band of the MSI: its name, what it sees, its central wavelength and bandwidth (nm) and
    native pixel (m)."""

    name: str
    label: str
    wavelength: int
    resolution: int
    bandwidth: int

    @property
    def description(self) -> str:
        """``NIR 842 nm``: what the output's band tags say."""
        return f"{self.label} {self.wavelength} nm"


# Central wavelengths and bandwidths as ESA gives them for the MSI (GDAL's SENTINEL2 driver has the same table).
SPECTRAL = {b.name: b for b in (
    Band("B01", "coastal aerosol", 443, 60, 20), Band("B02", "blue", 490, 10, 65),
    Band("B03", "green", 560, 10, 35), Band("B04", "red", 665, 10, 30), Band("B05", "red edge 1", 705, 20, 15),
    Band("B06", "red edge 2", 740, 20, 15), Band("B07", "red edge 3", 783, 20, 20), Band("B08", "NIR", 842, 10, 115),
    Band("B8A", "narrow NIR", 865, 20, 20), Band("B09", "water vapour", 945, 60, 20),
    Band("B10", "SWIR cirrus", 1375, 60, 30), Band("B11", "SWIR 1", 1610, 20, 90), Band("B12", "SWIR 2", 2190, 20, 180),
)}
TRUE_COLOUR = ("B04", "B03", "B02")
FALSE_COLOUR = ("B08", "B04", "B03")
SWIR = ("B12", "B8A", "B04")
ALL = tuple(b for b in SPECTRAL if b != "B10")  # wavelength order; B10 is Level-1C only
PRESETS = {"true-colour": TRUE_COLOUR, "false-colour": FALSE_COLOUR, "swir": SWIR, "all": ALL}
DEFAULT_PRESET = "true-colour"
_ALIASES = {"true-color": "true-colour", "truecolour": "true-colour", "truecolor": "true-colour",
            "false-color": "false-colour", "falsecolour": "false-colour", "falsecolor": "false-colour"}
PRODUCTS = ("TCI", "SCL", "AOT", "WVP")  # not spectral bands, but files a download may fetch
RESAMPLING = ("nearest neighbour: a band coarser than the output grid (20 m, 60 m on a 10 m grid) has each of its "
              "pixels repeated over the output pixels it covers (2 x 2, 6 x 6), its values unchanged")


def parse_bands(text, products: bool = False) -> tuple[str, ...]:
    """``'false-colour'``, ``'b8,B04, b3'``, a list of such items -> ``('B08', 'B04', 'B03')``: validated,
    order kept, each band once. products: also the product files TCI, SCL, AOT, WVP (downloads).
    InvalidInputError (one line) for anything else."""
    items = text.split(",") if isinstance(text, str) else [str(t) for t in (text or ())]
    out: list[str] = []
    for item in items:
        key = item.strip()
        if not key:
            continue
        preset = PRESETS.get(_ALIASES.get(key.lower(), key.lower()))
        for name in preset or (_band_name(key, products),):
            if name not in out:
                out.append(name)
    if not out:
        raise InvalidInputError(f"no bands given: give band names (e.g. B08,B04,B03) or a preset "
                                f"({', '.join(PRESETS)})")
    return tuple(out)


def spectral_name(token: str) -> str | None:
    """A Sentinel-2 band's name as written anywhere (``'b8'``, ``'B08'``, ``'b8a'``) -> ``'B08'``, ``'B8A'``;
    None when it names no spectral band."""
    name = str(token).strip().upper()
    if len(name) == 2 and name[0] == "B" and name[1] in "123456789":
        name = f"B0{name[1]}"
    return name if name in SPECTRAL else None


def _band_name(item: str, products: bool) -> str:
    name = spectral_name(item)
    if name:
        return name
    if products and item.strip().upper() in PRODUCTS:
        return item.strip().upper()
    extra = f", {', '.join(PRODUCTS)}" if products else ""
    raise InvalidInputError(f"{item.strip()!r} is not a Sentinel-2 band: give B01-B12, B8A{extra} or a preset "
                            f"({', '.join(PRESETS)})")


def band_info(name: str) -> Band | None:
    """What a spectral band is (None: not a spectral band, e.g. SCL)."""
    return SPECTRAL.get(str(name).upper())


def description(name: str) -> str:
    """``'B08'`` -> ``'NIR 842 nm'``; the name itself for anything that is not a spectral band."""
    info = band_info(name)
    return info.description if info else str(name)


def native_resolution(name: str) -> int | None:
    """The band's pixel size in metres in the products (10, 20 or 60), None when unknown."""
    info = band_info(name)
    return info.resolution if info else None


def finest(names) -> str:
    """Of ``names``, the first band of the finest native resolution (its grid is a tile composite's)."""
    names = list(names)
    return min(names, key=lambda b: (native_resolution(b) or 10, names.index(b)))
