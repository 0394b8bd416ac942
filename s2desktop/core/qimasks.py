"""Level-1C cloud masks: the product's own quality masks, as arrays on a band's grid.

Level-1C has no scene classification; each granule carries its cloud mask in ``qi/``:

- before processing baseline 04.00, ``MSK_CLOUDS_B00.gml``: vector polygons (GML 3.2, in the tile's UTM CRS),
  each an ``eop:MaskFeature`` of type ``OPAQUE`` (opaque clouds) or ``CIRRUS``;
- from baseline 04.00, ``MSK_CLASSI_B00.jp2``: a raster at 60 m with one band per class -- 1 opaque clouds,
  2 cirrus, 3 snow and ice -- where 1 marks the class.

Both become the same thing here: a uint8 array of :data:`OPAQUE`, :data:`CIRRUS` and :data:`SNOW` bits on the
grid asked for (GML polygons rasterised with rasterio, pixel centres inside; the JP2 read by nearest neighbour).
:func:`dilate` grows a mask by a buffer (cloud edges are the usual residue).
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

import numpy as np

from s2desktop.core.errors import RasterError
from s2desktop.core.maskrules import buffer_pixels

__all__ = ["OPAQUE", "CIRRUS", "SNOW", "CLASS_NAMES", "parse_cloud_gml", "rasterise_gml", "rasterise_polygons", "read_classi", "dilate",
           "gml_area"]

OPAQUE, CIRRUS, SNOW = 1, 2, 4
CLASS_NAMES = {OPAQUE: "opaque clouds", CIRRUS: "cirrus", SNOW: "snow and ice"}
_GML = "{http://www.opengis.net/gml/3.2}"
_EOP = "{http://www.opengis.net/eop/2.0}"
_TYPES = {"OPAQUE": OPAQUE, "CIRRUS": CIRRUS}


def parse_cloud_gml(data: bytes, name: str = "MSK_CLOUDS_B00.gml") -> list[tuple[int, dict]]:
    """[(OPAQUE or CIRRUS, GeoJSON Polygon in the tile's CRS)] of a ``MSK_CLOUDS_B00.gml``; an empty list for a
    mask without clouds (ESA writes one with no members). RasterError for a document that is not such a mask."""
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise RasterError(f"{name} is not a readable GML mask ({exc})") from None
    if not root.tag.endswith("Mask"):
        raise RasterError(f"{name} is not a Sentinel-2 GML mask (its root is {root.tag})")
    out = []
    for feature in root.iter(f"{_EOP}MaskFeature"):
        kind = _TYPES.get((feature.findtext(f"{_EOP}maskType") or "").strip().upper())
        if kind is None:
            continue
        for polygon in feature.iter(f"{_GML}Polygon"):
            rings = [_ring(r) for r in polygon.iter(f"{_GML}LinearRing")]
            if rings and len(rings[0]) >= 4:
                out.append((kind, {"type": "Polygon", "coordinates": rings}))
    return out


def _ring(ring) -> list[list[float]]:
    pos = ring.find(f"{_GML}posList")
    if pos is None or not (pos.text or "").strip():
        return []
    dim = int(pos.get("srsDimension", "2"))
    values = [float(v) for v in pos.text.split()]
    return [values[i: i + 2] for i in range(0, len(values) - dim + 1, dim)]


def rasterise_gml(data: bytes, shape: tuple[int, int], transform, name: str = "MSK_CLOUDS_B00.gml") -> np.ndarray:
    """The GML mask on a grid (``shape``, affine ``transform`` in the tile's CRS): OPAQUE | CIRRUS bits."""
    return rasterise_polygons(parse_cloud_gml(data, name), shape, transform)


def rasterise_polygons(polygons, shape: tuple[int, int], transform) -> np.ndarray:
    """[(class, GeoJSON polygon)] (from :func:`parse_cloud_gml`) on a grid: their class bits."""
    from rasterio.features import rasterize

    out = np.zeros(shape, np.uint8)
    for kind in (OPAQUE, CIRRUS):
        shapes = [geom for k, geom in polygons if k == kind]
        if shapes:
            out |= rasterize(shapes, out_shape=shape, transform=transform, fill=0, default_value=kind,
                             dtype="uint8")
    return out


def gml_area(data: bytes) -> dict[int, float]:
    """{class: square metres} of the GML's polygons (exterior minus holes), by the shoelace formula."""
    areas: dict[int, float] = {}
    for kind, geom in parse_cloud_gml(data):
        rings = geom["coordinates"]
        area = _shoelace(rings[0]) - sum(_shoelace(r) for r in rings[1:])
        areas[kind] = areas.get(kind, 0.0) + area
    return areas


def _shoelace(ring) -> float:
    xy = np.asarray(ring, dtype=np.float64)
    x, y = xy[:, 0] - xy[0, 0], xy[:, 1] - xy[0, 1]
    return abs(float(np.dot(x[:-1], y[1:]) - np.dot(x[1:], y[:-1]))) / 2


def read_classi(path, shape: tuple[int, int], transform, crs) -> np.ndarray:
    """``MSK_CLASSI_B00.jp2`` on a grid (nearest neighbour): OPAQUE | CIRRUS | SNOW bits."""
    import rasterio
    from affine import Affine
    from rasterio.errors import RasterioIOError
    from rasterio.warp import Resampling, reproject

    out = np.zeros(shape, np.uint8)
    try:
        with rasterio.open(path) as ds:
            for band, bit in zip(range(1, min(ds.count, 3) + 1), (OPAQUE, CIRRUS, SNOW)):
                dst = np.zeros(shape, np.uint8)
                reproject(rasterio.band(ds, band), dst, dst_transform=Affine(*tuple(transform)[:6]), dst_crs=crs,
                          resampling=Resampling.nearest)
                out[dst > 0] |= bit
    except RasterioIOError as exc:
        raise RasterError(f"{path}: cannot read ({str(exc).splitlines()[0]})") from None
    return out


def dilate(mask: np.ndarray, metres: float, pixel: float) -> np.ndarray:
    """``mask`` (bool) grown by ``metres``: every pixel whose centre lies within that distance of a masked one
    (a disk of radius metres / pixel pixels). Row by row of the disk: at vertical offset d its half-width is
    floor(sqrt(r^2 - d^2)), grown along the rows by doubling -- about 2r log2(r) + 2r passes, not (2r + 1)^2."""
    r = buffer_pixels(metres, pixel)
    if r <= 0 or not mask.any():
        return mask.copy()
    h = mask.shape[0]
    out = np.zeros_like(mask, dtype=bool)
    for d in range(r + 1):
        run = _grow_along_rows(mask, math.isqrt(r * r - d * d))
        out[d:] |= run[:h - d] if d < h else run[:0]
        if d:
            out[:max(0, h - d)] |= run[d:]
    return out


def _grow_along_rows(mask: np.ndarray, k: int) -> np.ndarray:
    """Each pixel set when any of the 2k + 1 pixels centred on it in its row is: the reach doubled by shifted
    ORs (an OR of itself shifted by `step` left and right grows a reach of n to n + step, gap-free while
    step <= n + 1), so about 2 log2(k) passes."""
    out = mask.astype(bool, copy=True)
    reach = 0
    while reach < k:
        step = min(reach + 1, k - reach)
        if step >= out.shape[1]:
            out[:] = out.any(axis=1, keepdims=True)
            return out
        out[:, step:] |= out[:, :-step]  # numpy buffers the overlap; the second OR then sees the first's
        out[:, :-step] |= out[:, step:]  # result, which adds nothing beyond the reach + step either side
        reach += step
    return out
