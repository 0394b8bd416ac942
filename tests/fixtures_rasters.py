"""Small synthetic Sentinel-2-like band stacks written with rasterio (JP2 or GTiff, tiled, with nodata edges).

Fixture `raster_stack` is a factory: `raster_stack(dates=3, size=300, block=128, driver="GTiff",
layout="download", baselines=None, scl=False, seed=0)` -> Stack with red/green/blue path lists (date order), the
arrays written (`data[band][date]`, bands in R, G, B order), and the SCL arrays when asked for.

layout "download": `{root}/red/33UUP_2023-07-0{d}_0_B04.ext` etc. plus `{root}/metadata/{scene_id}.json`
with the baseline (what the download module keeps); "loose": bare files `r0.ext`, ... and no metadata.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.crs import CRS
from rasterio.transform import from_origin

CRS_UTM = CRS.from_epsg(32633)
ORIGIN = (300000.0, 5000040.0)
FOLDERS = {"B04": "red", "B03": "green", "B02": "blue"}


@dataclass
class Stack:
    root: Path
    red: list[Path]
    green: list[Path]
    blue: list[Path]
    data: np.ndarray  # (3, dates, h, w) uint16, R G B
    transform: object
    scl: list[Path] = field(default_factory=list)
    scl_data: np.ndarray | None = None


def write_band(path: Path, arr: np.ndarray, *, driver: str = "GTiff", block: int = 128, crs=CRS_UTM,
               transform=None, res: float = 10.0) -> Path:
    h, w = arr.shape[-2:]
    count = 1 if arr.ndim == 2 else arr.shape[0]
    transform = transform or from_origin(ORIGIN[0], ORIGIN[1], res, res)
    profile = dict(driver=driver, width=w, height=h, count=count, dtype=arr.dtype.name, crs=crs,
                   transform=transform)
    if driver == "JP2OpenJPEG":
        profile.update(QUALITY="100", REVERSIBLE="YES", BLOCKXSIZE=str(block), BLOCKYSIZE=str(block))
    else:
        profile.update(tiled=True, blockxsize=block, blockysize=block, compress="deflate")
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(arr if arr.ndim == 3 else arr[np.newaxis])
    return path


def synthetic_bands(dates: int, size: int, seed: int = 0) -> np.ndarray:
    """(3, dates, size, size) uint16 with per-date nodata edges, scattered zeros and a saturated pixel."""
    rng = np.random.default_rng(seed)
    h = w = size
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([1500 + 6 * xx + 2 * yy, 1200 + 3 * yy + 2 * xx, 900 + 4 * xx]).astype(np.int64)
    out = np.zeros((3, dates, h, w), dtype=np.uint16)
    for d in range(dates):
        noise = rng.integers(-400, 400, size=(3, h, w))
        cloud = rng.random((h, w)) < 0.1
        vals = base + noise
        vals[:, cloud] += 6000
        vals = np.clip(vals, 1, 65535).astype(np.uint16)
        # nodata edge: a slanted band on the right, differing per date, like an orbit edge
        edge = xx > (w - 1 - (d * w // 6) - yy // 4)
        vals[:, edge] = 0
        vals[:, rng.random((h, w)) < 0.02] = 0
        out[:, d] = vals
    out[:, 0, 5, 5] = 65535  # saturated, a real value
    return out


def make_stack(root: Path, *, dates: int = 3, size: int = 300, block: int = 128, driver: str = "GTiff",
               layout: str = "download", baselines=None, scl: bool = False, seed: int = 0,
               tile: str = "33UUP") -> Stack:
    root = Path(root)
    ext = ".jp2" if driver == "JP2OpenJPEG" else ".tif"
    data = synthetic_bands(dates, size, seed)
    baselines = baselines or ["02.09"] * dates
    transform = from_origin(ORIGIN[0], ORIGIN[1], 10, 10)
    paths = {b: [] for b in FOLDERS}
    scl_paths, scl_arrays = [], []
    rng = np.random.default_rng(seed + 100)
    for d in range(dates):
        date = f"2023-07-{d + 1:02d}"
        sid = f"{tile}_{date}_0"
        for bi, band in enumerate(FOLDERS):
            if layout == "download":
                folder = root / FOLDERS[band]
                name = f"{sid}_{band}{ext}"
            else:
                folder = root
                name = f"{FOLDERS[band][0]}{d}{ext}"
            folder.mkdir(parents=True, exist_ok=True)
            paths[band].append(write_band(folder / name, data[bi, d], driver=driver, block=block))
        if layout == "download":
            md = root / "metadata"
            md.mkdir(exist_ok=True)
            (md / f"{sid}.json").write_text(json.dumps({
                "tile": tile, "date": date, "sequence": 0, "baseline": baselines[d],
                "productName": f"S2A_MSIL2A_{date.replace('-', '')}T100000_N{baselines[d].replace('.', '')}_R022_T{tile}_x",
            }))
        if scl:
            # 20 m classification: mostly vegetation (4), a cloud block (9) and a shadow block (3) per date
            s = np.full((size // 2, size // 2), 4, dtype=np.uint8)
            r0 = int(rng.integers(0, size // 2 - 20))
            s[r0:r0 + 20, 10:40] = 9
            s[5:15, r0:r0 + 10] = 3
            sfolder = root / "SCL" if layout == "download" else root
            sfolder.mkdir(exist_ok=True)
            sname = f"{sid}_SCL{ext}" if layout == "download" else f"scl{d}{ext}"
            scl_paths.append(write_band(sfolder / sname, s, driver="GTiff", block=64,
                                        transform=from_origin(ORIGIN[0], ORIGIN[1], 20, 20)))
            scl_arrays.append(s)
    return Stack(root=root, red=paths["B04"], green=paths["B03"], blue=paths["B02"], data=data,
                 transform=transform, scl=scl_paths,
                 scl_data=np.stack(scl_arrays) if scl_arrays else None)


@pytest.fixture
def raster_stack(tmp_path):
    counter = iter(range(1000))

    def factory(**kw) -> Stack:
        return make_stack(tmp_path / f"stack{next(counter)}", **kw)

    return factory
