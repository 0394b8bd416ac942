"""Derive the compact Sentinel-2 tile grid resource (`s2_grid.npz`) from the official ESA grid.

Input: ``s2_tiles_from_esa_kml.csv.gz`` (the ESA Sentinel-2 tiling grid KML flattened to CSV: 56,686 tiles with
tile_id, epsg, utm_ulx, utm_uly, utm_lrx, utm_lry and the lon/lat ring, which is the four tile corners UL, LL,
LR, UR plus the closing point). Rings that cross the antimeridian are stored there with raw longitudes
(e.g. 177.2 ... -179.8); this script unwraps them so that every ring is a plain polygon: longitudes below zero
get +360 when a ring spans more than 180 degrees, so such rings run from ~170 to ~190.

Output (``numpy.savez_compressed``), rows sorted by canonical tile id (no leading zero, e.g. ``1CCV``):

- ``ids``      S5      canonical tile ids (``b'1CCV'``, ``b'33UUP'``), sorted so lookups can bisect
- ``epsg``     int32   the tile's UTM EPSG code (326zz north, 327zz south)
- ``utm_ul``   int32   (n, 2) UTM easting/northing of the upper-left corner (tiles are 109,800 m a side)
- ``corners``  float32 (n, 4, 2) lon/lat of the corners UL, LL, LR, UR, unwrapped as above

float32 keeps ~1 m precision at |lon| <= 190, well below the ~9.8 km tile overlap.

Reproduce (from the repository root):

    python resources/grid/build_grid.py ../shared/s2-real/grid/s2_tiles_from_esa_kml.csv.gz resources/grid/s2_grid.npz
"""

from __future__ import annotations

import csv
import gzip
import sys
from pathlib import Path

import numpy as np

TILE_SIZE_M = 109_800


def build(src: Path, dst: Path) -> None:
    ids, epsg, utm_ul, corners = [], [], [], []
    with gzip.open(src, "rt", newline="") as f:
        for row in csv.DictReader(f):
            ring = np.array(
                [[float(v) for v in p.split(",")] for p in row["ll_ring_lon_lat"].split()], dtype=np.float64
            )
            if ring.shape != (5, 2) or not np.array_equal(ring[0], ring[-1]):
                raise SystemExit(f"{row['tile_id']}: expected a closed ring of 4 corners, got {ring.shape}")
            ring = ring[:4]
            if ring[:, 0].max() - ring[:, 0].min() > 180:  # crosses the antimeridian: unwrap to ~170..190
                ring[ring[:, 0] < 0, 0] += 360.0
            ulx, uly, lrx, lry = (int(row[k]) for k in ("utm_ulx", "utm_uly", "utm_lrx", "utm_lry"))
            if lrx - ulx != TILE_SIZE_M or uly - lry != TILE_SIZE_M:
                raise SystemExit(f"{row['tile_id']}: unexpected UTM size {lrx - ulx} x {uly - lry}")
            ids.append(row["tile_id"].lstrip("0"))
            epsg.append(int(row["epsg"]))
            utm_ul.append((ulx, uly))
            corners.append(ring)
    order = np.argsort(np.array(ids, dtype="S5"), kind="stable")
    ids_arr = np.array(ids, dtype="S5")[order]
    if len(np.unique(ids_arr)) != len(ids_arr):
        raise SystemExit("duplicate tile ids")
    dst.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        dst,
        ids=ids_arr,
        epsg=np.array(epsg, dtype=np.int32)[order],
        utm_ul=np.array(utm_ul, dtype=np.int32)[order],
        corners=np.array(corners, dtype=np.float32)[order],
    )
    print(f"{dst}: {len(ids_arr)} tiles, {dst.stat().st_size / 1e6:.2f} MB")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    build(Path(sys.argv[1]), Path(sys.argv[2]))
