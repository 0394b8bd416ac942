"""Derive the compact world map resource (`world_110m.npz`) from Natural Earth (public domain).

Inputs (in ``../shared/s2-real/world/``): ``naturalearth_lowres_land.geojson`` and
``naturalearth_lowres_countries.geojson`` (Natural Earth 1:110m land and admin-0 countries).

Output (``numpy.savez_compressed``), lon/lat in degrees, float32:

- ``land_xy`` (n, 2), ``land_starts`` (k,)  -- closed land rings (outer rings and holes) for a filled land layer;
  ring i is ``land_xy[land_starts[i]:land_starts[i + 1]]`` (the last ring runs to the end).
- ``lines_xy`` (m, 2), ``lines_starts`` (j,) -- country outlines (coasts and borders) as open polylines, with the
  artificial edges that only close polygons along the antimeridian and the south pole left out, so the map
  draws no vertical lines at +-180 and no line along -90.

Reproduce (from the repository root):

    python resources/world/build_world.py ../shared/s2-real/world resources/world/world_110m.npz
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np


def _rings(path: Path):
    for feature in json.loads(path.read_text())["features"]:
        geom = feature["geometry"]
        polygons = [geom["coordinates"]] if geom["type"] == "Polygon" else geom["coordinates"]
        for polygon in polygons:
            for ring in polygon:
                yield np.asarray(ring, dtype=np.float64)[:, :2]


def _artificial(a: np.ndarray, b: np.ndarray) -> bool:
    """An edge that only exists to close a polygon: along the antimeridian or along the pole."""
    return (abs(a[0]) >= 179.9999 and abs(b[0]) >= 179.9999) or (a[1] <= -89.9 and b[1] <= -89.9)


def _split(ring: np.ndarray):
    """Split a ring into polylines at artificial edges."""
    start = 0
    for i in range(len(ring) - 1):
        if _artificial(ring[i], ring[i + 1]):
            if i + 1 - start >= 2:
                yield ring[start : i + 1]
            start = i + 1
    if len(ring) - start >= 2:
        yield ring[start:]


def _pack(parts):
    starts = np.cumsum([0] + [len(p) for p in parts[:-1]]).astype(np.int32)
    return np.concatenate(parts).astype(np.float32), starts


def build(src: Path, dst: Path) -> None:
    land = list(_rings(src / "naturalearth_lowres_land.geojson"))
    lines = [part for ring in _rings(src / "naturalearth_lowres_countries.geojson") for part in _split(ring)]
    land_xy, land_starts = _pack(land)
    lines_xy, lines_starts = _pack(lines)
    dst.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(dst, land_xy=land_xy, land_starts=land_starts, lines_xy=lines_xy, lines_starts=lines_starts)
    print(f"{dst}: {len(land)} land rings ({len(land_xy)} points), {len(lines)} outlines ({len(lines_xy)} points), "
          f"{dst.stat().st_size / 1e3:.0f} kB")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    build(Path(sys.argv[1]), Path(sys.argv[2]))
