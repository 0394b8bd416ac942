"""A composite whose pixel PIXEL has a known history, written with rasterio and composited by the real job step.

Eight observations (GeoTIFF bands on a 64 x 64 px, 10 m grid, windows of 16 px), each a different fate at PIXEL:

====  ==========  ===================================================  ===============================
date  baseline    at PIXEL                                             expected reason
====  ==========  ===================================================  ===============================
0     03.01       clear                                                USED
1     03.01       bright, and its SCL says 9 (cloud high probability)  MASKED
2     03.01       red 0                                                NODATA
3     04.00       clear, +1000 DN in the data                          USED | OFFSET_APPLIED
4     03.01       bright, but its footprint is the top-left window     OUTSIDE_FOOTPRINT
5     04.00       bright, its L1C MSK_CLASSI says opaque clouds        MASKED | OFFSET_APPLIED
6     03.01       clear                                                USED
7     03.01       bright, in an OPAQUE polygon of its MSK_CLOUDS GML    MASKED
====  ==========  ===================================================  ===============================

`history_composite(folder, method)` writes the inputs and the composite (`composite.tif`, with its record and
count) and returns (composite path, the Stack). EXPECTED lists (reason names, mask class, values after the
offset) per date; USED_VALUES the values the rule sees.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import rasterio
from rasterio.crs import CRS
from rasterio.transform import from_origin

from s2desktop.core.pipeline import CompositeOptions, run_composite
from s2desktop.core.stack import Observation, Provenance, RasterRef, Stack

SIZE, WINDOW = 64, 16
PIXEL = (40, 40)  # row, col
ORIGIN = (300000.0, 5000040.0)
CRS_UTM = CRS.from_epsg(32633)
BANDS = ("B04", "B03", "B02")
GROUND = (1500, 1300, 1100)  # the ground around PIXEL on a clear date (pre-04.00 scale)
# per date: (baseline, values at PIXEL as written (R, G, B))
DATES = [
    ("03.01", (1500, 1300, 1100)),
    ("03.01", (6000, 6100, 6200)),
    ("03.01", (0, 1300, 1100)),
    ("04.00", (2700, 2400, 2200)),
    ("03.01", (9000, 9000, 9000)),
    ("04.00", (8000, 8000, 8000)),
    ("03.01", (1600, 1350, 1150)),
    ("03.01", (7500, 7500, 7500)),
]
EXPECTED = [
    (["USED"], None, (1500, 1300, 1100)),
    (["MASKED"], "cloud high probability", (6000, 6100, 6200)),
    (["NODATA"], None, None),
    (["USED", "OFFSET_APPLIED"], None, (1700, 1400, 1200)),
    (["OUTSIDE_FOOTPRINT"], None, (9000, 9000, 9000)),
    (["MASKED", "OFFSET_APPLIED"], "opaque clouds", (7000, 7000, 7000)),
    (["USED"], None, (1600, 1350, 1150)),
    (["MASKED"], "opaque clouds", (7500, 7500, 7500)),
]
USED_VALUES = np.array([e[2] for e in EXPECTED if "USED" in e[0]], dtype=np.int64)  # (dates, bands)


def _write(path: Path, arr: np.ndarray, res: float = 10.0) -> Path:
    arr = arr if arr.ndim == 3 else arr[np.newaxis]
    with rasterio.open(path, "w", driver="GTiff", width=arr.shape[2], height=arr.shape[1], count=arr.shape[0],
                       dtype=arr.dtype.name, crs=CRS_UTM, transform=from_origin(*ORIGIN, res, res), tiled=True,
                       blockxsize=16, blockysize=16) as ds:
        ds.write(arr)
    return path


def _band(d: int, b: int, baseline: str, at_pixel: int) -> np.ndarray:
    rng = np.random.default_rng(10 * d + b)
    offset = 1000 if baseline >= "04.00" else 0
    a = (GROUND[b] + offset + rng.integers(-50, 50, (SIZE, SIZE))).astype(np.uint16)
    a[PIXEL] = at_pixel
    return a


def _top_left_window() -> dict:
    x0, y0 = ORIGIN
    x1, y1 = x0 + WINDOW * 10, y0 - WINDOW * 10
    return {"type": "Polygon", "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]}


def _gml(folder: Path, d: int) -> RasterRef:
    """An L1C MSK_CLOUDS_B00.gml (before baseline 04.00) with one OPAQUE polygon: the 3 x 3 px around PIXEL."""
    (r, c), (x0, y0) = PIXEL, ORIGIN
    left, right, top, bottom = x0 + (c - 1) * 10, x0 + (c + 2) * 10, y0 - (r - 1) * 10, y0 - (r + 2) * 10
    ring = f"{left} {top} {right} {top} {right} {bottom} {left} {bottom} {left} {top}"
    path = folder / f"d{d}_MSK_CLOUDS_B00.gml"
    path.write_text('<?xml version="1.0"?><eop:Mask xmlns:eop="http://www.opengis.net/eop/2.0" '
                    'xmlns:gml="http://www.opengis.net/gml/3.2"><eop:maskMembers><eop:MaskFeature>'
                    '<eop:maskType>OPAQUE</eop:maskType><eop:extentOf><gml:Polygon><gml:exterior><gml:LinearRing>'
                    f'<gml:posList srsDimension="2">{ring}</gml:posList></gml:LinearRing></gml:exterior>'
                    '</gml:Polygon></eop:extentOf></eop:MaskFeature></eop:maskMembers></eop:Mask>')
    return RasterRef(str(path), "MSKCLOUDS")


def _mask(folder: Path, d: int) -> RasterRef | None:
    """Date 1: an SCL (20 m) of vegetation with class 9 at PIXEL; date 5: a 3-band MSK_CLASSI with opaque clouds
    at PIXEL; date 7: an MSK_CLOUDS GML polygon over it; the clear dates an SCL of vegetation; date 4 none."""
    if d == 7:
        return _gml(folder, d)
    r, c = PIXEL[0] // 2, PIXEL[1] // 2
    if d == 5:
        classi = np.zeros((3, SIZE // 2, SIZE // 2), np.uint8)
        classi[0, r, c] = 1
        return RasterRef(str(_write(folder / f"d{d}_MSK_CLASSI.tif", classi, 20.0)), "MSKCLASSI")
    if d == 4:
        return None
    scl = np.full((SIZE // 2, SIZE // 2), 4, np.uint8)
    if d == 1:
        scl[r, c] = 9
    return RasterRef(str(_write(folder / f"d{d}_SCL.tif", scl, 20.0)), "SCL")


def history_stack(folder: Path, dates=DATES) -> Stack:
    folder.mkdir(parents=True, exist_ok=True)
    obs = []
    for d, (baseline, at_pixel) in enumerate(dates):
        rasters = {band: RasterRef(str(_write(folder / f"d{d}_{band}.tif", _band(d, b, baseline, at_pixel[b]))),
                                   band) for b, band in enumerate(BANDS)}
        date = (dt.date(2023, 7, 1) + dt.timedelta(days=5 * d)).isoformat()
        obs.append(Observation(
            date=date, rasters=rasters, mask=_mask(folder, d),
            offset=-1000 if baseline >= "04.00" else 0, offset_source="scene metadata", baseline=baseline,
            orbit=22, scenes=(f"33UUP_{date}_0",), tiles=("33UUP",),
            footprint=_top_left_window() if d == 4 else None,
            provenance=tuple(Provenance(b, path=r.path, size=Path(r.path).stat().st_size)
                             for b, r in rasters.items())))
    return Stack(tuple(obs), BANDS)


def history_composite(folder: Path, method: str = "median", **mask_rules) -> tuple[Path, Stack]:
    """The history composited by the job's step; mask_rules: CompositeOptions' mask_classes, mask_buffer."""
    stack = history_stack(folder / "inputs")
    out = folder / f"{method.replace(':', '')}.tif"
    run_composite(stack, CompositeOptions(str(out), workers=0, window_size=WINDOW, method=method, **mask_rules))
    return out, stack
