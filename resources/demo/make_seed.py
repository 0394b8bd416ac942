"""Build `ground_29RKH.jp2`, the seed of the built-in demo archive, from a real Sentinel-2 scene.

Run once by a developer; the product never needs the source files:

    .venv/bin/python resources/demo/make_seed.py \
        ../shared/s2-real/aws_tiles/l2a_cog_T29RKH_20200219_rio-tiler-pds/S2A_29RKH_20200219_0_L2A

The source is the Sentinel-2 L2A COG scene S2A_29RKH_20200219_0_L2A (Western Sahara / Mauritania border,
B02/B03/B04 at 1098 px, 100 m, EPSG:32629), as packaged by cogeotiff/rio-tiler-pds (BSD-3-Clause) in its test
fixtures. It is 96 % clear; the cloud field in its north-east corner (and the shadows around it) is replaced by
image quilting: 48 px patches of clear desert from the same scene, each chosen to match the pixels already in
place, feathered together and into the untouched pixels around. Everything else is the real pixels. The
georeference is the scene's own (EPSG:32629, origin 199980, 2800020, 100 m).

The three bands are stored as one 3-band lossy JPEG 2000 (~1.1 MB; RMS error ~10 DN of ~2500), R, G, B
order (B04, B03, B02). Deterministic: the same input gives the same file.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import rasterio
import rasterio.shutil

HERE = Path(__file__).resolve().parent
OUT = HERE / "ground_29RKH.jp2"
PATCH, STEP = 48, 36  # quilting patch size and stride (12 px overlap)
CANDIDATES = 300
JP2_QUALITY = "15"  # percent of the uncompressed size


def _box(a: np.ndarray, r: int) -> np.ndarray:
    """Mean over a (2r+1)^2 box (at the edges, over the part of the box inside the image)."""
    pad = np.pad(a, ((r + 1, r), (r + 1, r)))
    ones = np.pad(np.ones_like(a), ((r + 1, r), (r + 1, r)))
    n = 2 * r + 1
    sums = []
    for arr in (pad, ones):
        c = arr.cumsum(0).cumsum(1)
        sums.append(c[n:, n:] - c[:-n, n:] - c[n:, :-n] + c[:-n, :-n])
    return sums[0] / np.maximum(sums[1], 1e-9)


def _ramp(n: int, overlap: int) -> np.ndarray:
    w = np.ones(n)
    r = (np.arange(overlap) + 0.5) / overlap
    w[:overlap], w[-overlap:] = r, r[::-1]
    return w


def build(scene: Path) -> tuple[np.ndarray, dict]:
    bands = []
    for b in ("B04", "B03", "B02"):
        with rasterio.open(scene / f"{b}.tif") as src:
            bands.append(src.read(1).astype(np.float64))
            profile = dict(crs=src.crs, transform=src.transform)
    img = np.stack(bands)
    h, w = img.shape[1:]
    with rasterio.open(scene / "SCL.tif") as src:
        scl = src.read(1, out_shape=(h, w), resampling=rasterio.enums.Resampling.nearest)
    cloud = np.isin(scl, (3, 8, 9, 10)).astype(np.float64)  # shadow, medium/high cloud, cirrus
    # The hole: wherever clouds are dense within ~6 km (that also takes the shadows SCL missed), feathered.
    density = _box(cloud, 60)
    hole = density > 0.01
    alpha = np.clip(_box(hole.astype(np.float64), 12) * 1.5, 0, 1)  # 1 inside, ramps to 0 ~12 px outside
    need = alpha > 0
    # Clear windows to copy from: nowhere near the hole.
    far = _box(need.astype(np.float64), PATCH) == 0

    rng = np.random.default_rng(29)
    ys, xs = np.nonzero(far[PATCH // 2: h - PATCH // 2, PATCH // 2: w - PATCH // 2])
    known = ~need
    canvas = np.where(known, img, 0.0)
    acc = np.zeros((3, h, w))
    wsum = np.zeros((h, w))
    weight = np.outer(_ramp(PATCH, PATCH - STEP), _ramp(PATCH, PATCH - STEP))
    filled = 0
    for y in range(0, h, STEP):
        for x in range(0, w, STEP):
            ys_, xs_ = slice(y, y + PATCH), slice(x, x + PATCH)
            if not need[ys_, xs_].any():
                continue
            ph, pw = need[ys_, xs_].shape
            pick = rng.choice(len(ys), CANDIDATES, replace=False)
            cands = np.stack([img[:, ys[i]: ys[i] + ph, xs[i]: xs[i] + pw] for i in pick])
            k = known[ys_, xs_]
            if k.any():
                err = (((cands - canvas[:, ys_, xs_]) ** 2) * k).sum(axis=(1, 2, 3))
            else:
                err = rng.random(len(cands))
            patch = cands[int(np.argmin(err))]
            acc[:, ys_, xs_] += patch * weight[:ph, :pw]
            wsum[ys_, xs_] += weight[:ph, :pw]
            blend = acc[:, ys_, xs_] / np.maximum(wsum[ys_, xs_], 1e-9)
            canvas[:, ys_, xs_] = np.where(k, canvas[:, ys_, xs_], blend)
            known[ys_, xs_] = True
            filled += 1
    quilt = acc / np.maximum(wsum, 1e-9)
    ground = np.where(need, alpha * quilt + (1 - alpha) * img, img)
    ground = np.clip(np.round(ground), 1, 30000).astype(np.uint16)
    print(f"{filled} patches quilted over {need.mean() * 100:.1f} % of the tile", file=sys.stderr)
    return ground, profile


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    ground, profile = build(Path(argv[0]))
    _, h, w = ground.shape
    with rasterio.Env(GDAL_PAM_ENABLED="NO"):
        with rasterio.MemoryFile() as mem:
            with mem.open(driver="GTiff", width=w, height=h, count=3, dtype="uint16", **profile) as ds:
                ds.write(ground)
                ds.update_tags(SOURCE="S2A_29RKH_20200219_0_L2A (sentinel-cogs), clouds quilted out",
                               ATTRIBUTION="Contains modified Copernicus Sentinel data 2020")
                for i, b in enumerate(("B04", "B03", "B02"), 1):
                    ds.set_band_description(i, b)
            with mem.open() as src:
                rasterio.shutil.copy(src, str(OUT), driver="JP2OpenJPEG", QUALITY=JP2_QUALITY, REVERSIBLE="NO",
                                     YCC="NO")
    print(f"wrote {OUT} ({OUT.stat().st_size / 1e6:.2f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
