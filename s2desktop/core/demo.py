"""The built-in offline demo archive: a small archive in the real L1C bucket layout.

The archive holds 10 acquisitions of tile 29RKH (every 5 days, 2 Jan - 16 Feb 2022) generated deterministically
from a real cloud-free ground (``resources/demo/ground_29RKH.jp2``, see its README) on first use:

- drifting clouds (fractal noise moving east across the dates, dense in a weather-front band, bright and
  slightly blue, soft edges) with cloud shadows offset to the north-west of them -- arranged so that fewer than
  half of every pixel's valid dates are cloudy (or shadowed): the median composite is the clear ground, which
  :func:`demo_ground` returns for the tests;
- an orbit-edge nodata wedge (DN 0) on the east side of three dates;
- processing baseline 03.01 before 25 Jan 2022 and 04.00 from then on, the new-baseline data carrying the
  +1000 DN radiometric offset, as in reality;
- each scene's own Level-1C cloud mask from its clouds (``qi/MSK_CLOUDS_B00.gml`` polygons before baseline
  04.00, ``qi/MSK_CLASSI_B00.jp2`` from then on), which ``--mask auto`` masks the clouds with;
- ``tileInfo.json`` with the cloud cover measured from the cloud mask, the data coverage and data footprint from
  the wedge, and a product name with the baseline (N0301 / N0400); ``productInfo.json``; ``preview.jpg``.

It is written with :func:`s2desktop.core.archive.write_scene` (the same code the test fixtures use) into a
temporary folder beside ``user_data_dir()/demo-archive`` and renamed into place, so an interrupted generation
never leaves half an archive; a version marker makes an archive of an older generator be rebuilt.
``SourceSpec('demo').resolve()`` (core.pipeline) serves it as a local-folder source, so search, download and
composite run exactly as they do against the AWS buckets; ``s2desktop.headless_demo`` runs the whole job on it.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
import numpy as np

from s2desktop.core.errors import OutputError
from s2desktop.core.fsutil import ensure_writable_dir
from s2desktop.core.progress import Progress, ProgressFn, emit

__all__ = [
    "DEMO_TILE", "DEMO_START", "DEMO_END", "DEMO_DATES", "DEMO_SIZE", "DEMO_VERSION", "BASELINE_CHANGE",
    "DemoScene", "ensure_demo_archive", "write_demo_archive", "demo_archive_dir", "demo_ground", "demo_scenes",
]

log = logging.getLogger(__name__)

DEMO_TILE = "29RKH"
DEMO_START = _dt.date(2022, 1, 1)
DEMO_END = _dt.date(2022, 2, 28)
DEMO_DATES = tuple(_dt.date(2022, 1, 2) + _dt.timedelta(days=5 * i) for i in range(10))
DEMO_SIZE = 1098  # px a side: the tile at 100 m (the seed's own resolution)
BASELINE_CHANGE = _dt.date(2022, 1, 25)  # processing baseline 04.00 (with the -1000 offset) from this day on
DEMO_VERSION = 2  # bump when the generated archive changes; older archives are rebuilt (2: each scene's qi/ mask)
MARKER = "s2desktop-demo.json"
SEED = ("demo", "ground_29RKH.jp2")

# Per date: cloud cover target (fraction of the tile) and whether the orbit-edge wedge cuts the east side.
_COVER = (0.25, 0.06, 0.35, 0.12, 0.03, 0.30, 0.16, 0.40, 0.08, 0.20)
_WEDGE = (False, True, False, False, True, False, False, True, False, False)
# Top-of-atmosphere look: the seed is surface reflectance; L1C adds a little haze (R, G, B DN).
_HAZE = (60.0, 150.0, 300.0)
_CLOUD_DN = (6400.0, 6600.0, 7100.0)
_NOISE_DN = 10.0
FRONT_WEIGHT = 1.6
FRONT_HALF_WIDTH = 0.15
FRONT_STEP = 0.3  # 10 dates x 0.3: the band centres fall 0.1 apart, so each place is under <= 3 fronts


@dataclass
class DemoScene:
    """One generated acquisition, with its ground truth (for tests and the headless demo's report)."""

    date: _dt.date
    baseline: str  # '03.01' | '04.00'
    bands: dict  # {'B02': uint16 (h, w), 'B03': ..., 'B04': ...} as stored (new baseline: +1000)
    cloud: np.ndarray  # bool: cloud (alpha > 0.5)
    shadow: np.ndarray  # bool: cloud shadow (darkened > 15 %)
    valid: np.ndarray  # bool: inside the orbit's swath
    cloud_cover: float  # % of the valid pixels
    data_coverage: float  # % of the tile


# --- the ground --------------------------------------------------------------------------------------------------


def _seed_path():
    from s2desktop.core.resources import resource_path

    return resource_path(*SEED)


def _read_ground(size: int):
    """(3, size, size) float64 R, G, B surface reflectance DN of the seed, its CRS and transform at that size."""
    import rasterio
    from rasterio.enums import Resampling

    path = _seed_path()
    with rasterio.Env(GDAL_PAM_ENABLED="NO"):
        with rasterio.open(path) as src:
            if size == src.width:
                data = src.read()
            else:
                data = src.read(out_shape=(3, size, size), resampling=Resampling.average)
            transform = src.transform @ src.transform.scale(src.width / size, src.height / size)
            crs = src.crs
    return data.astype(np.float64), crs, transform


def demo_ground(size: int = DEMO_SIZE) -> np.ndarray:
    """The cloud-free ground every date is made from: (3, size, size) uint16 R, G, B (B04, B03, B02) on the
    pre-04.00 scale -- what a perfect median composite of the archive returns."""
    ground, _crs, _t = _read_ground(size)
    return _toa(ground)


def _toa(ground: np.ndarray) -> np.ndarray:
    haze = np.asarray(_HAZE).reshape(3, 1, 1)
    return np.clip(np.round(ground + haze), 1, 20000).astype(np.uint16)


# --- clouds ------------------------------------------------------------------------------------------------------


def _resize(a: np.ndarray, h: int, w: int) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.fromarray(a.astype(np.float32), mode="F").resize((w, h), Image.BICUBIC), np.float64)


def _fractal(rng: np.random.Generator, h: int, w: int, feature: float) -> np.ndarray:
    """Fractal (1/f) noise in [0, 1]: octaves of bicubically upsampled random grids, the coarsest with
    structures of about ``feature`` px, each finer octave half the size and 0.55 times the amplitude."""
    out = np.zeros((h, w))
    amp, total = 1.0, 0.0
    size = float(feature)
    while size >= 3:
        gh, gw = max(2, int(round(h / size)) + 1), max(2, int(round(w / size)) + 1)
        out += amp * _resize(rng.standard_normal((gh, gw)), h, w)
        total += amp
        amp *= 0.55
        size /= 2
    out /= total
    lo, hi = np.percentile(out, (0.5, 99.5))
    return np.clip((out - lo) / (hi - lo), 0, 1)


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0, 1)
    return x * x * (3 - 2 * x)


def _shift(a: np.ndarray, dy: int, dx: int) -> np.ndarray:
    out = np.zeros_like(a)
    h, w = a.shape
    ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
    xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
    out[yd, xd] = a[ys, xs]
    return out


def _box(a: np.ndarray, r: int) -> np.ndarray:
    """Mean over a (2r+1)^2 box, zero padded."""
    n = 2 * r + 1
    c = np.pad(a.astype(np.float64), ((r + 1, r), (r + 1, r))).cumsum(0).cumsum(1)
    return (c[n:, n:] - c[:-n, n:] - c[n:, :-n] + c[:-n, :-n]) / (n * n)


def _fade(mask: np.ndarray, r: int) -> np.ndarray:
    """1 on and within ~r px of ``mask``, easing to 0 over another r px (a soft dilation)."""
    grown = _box(mask, r) > 0
    return np.clip(_box(grown, r) * 2, 0, 1)


def demo_scenes(size: int = DEMO_SIZE) -> list[DemoScene]:
    """Generate every date of the archive in memory (deterministic; ~5 s at full size)."""
    ground, _crs, _t = _read_ground(size)
    toa = _toa(ground).astype(np.float64)
    n = len(DEMO_DATES)
    rng = np.random.default_rng(20220125)
    h = w = size
    drift = int(round(0.23 * w))  # the cloud field moves ~25 km east between dates
    field = _fractal(rng, int(h * 1.3), w + drift * (n - 1) + w // 4, feature=0.16 * w)
    detail = _fractal(rng, h, w, feature=0.05 * w)  # fine structure of the cloud tops
    sun = (int(round(-0.045 * h)), int(round(-0.035 * w)))  # shadows fall north-west of the clouds
    yy, xx = np.mgrid[0:h, 0:w]
    front_u = (xx + 0.6 * yy) / (1.6 * w)

    alphas, thicks, valids = [], [], []
    for i in range(n):
        y0 = int(round((0.15 + 0.1 * np.sin(i)) * h))
        # A weather front: a diagonal band drifting east across the dates, where the clouds are dense; few
        # clouds elsewhere. The band centres of the 10 dates fall 0.1 apart, so a place is under <= 3 of them.
        noise = field[y0:y0 + h, i * drift:i * drift + w]
        d = (front_u + 0.12 * (noise - 0.5) - (0.5 + i * FRONT_STEP)) % 1.0  # ragged edges
        d = np.minimum(d, 1 - d)
        win = noise + FRONT_WEIGHT * _smoothstep(1 - d / FRONT_HALF_WIDTH)
        cover = _COVER[i]
        if cover > 0:
            alpha = _smoothstep((win - np.quantile(win, 1 - cover)) / 0.06 + 0.5)
            thick = _smoothstep((win - np.quantile(win, 1 - cover * 0.8)) / 0.08)
        else:
            alpha = thick = np.zeros((h, w))
        if _WEDGE[i]:
            # The swath edge runs a little off north-south, like 55JGF's orbit edge.
            x_top, x_bottom = (0.80 - 0.03 * (i % 3)) * w, (0.66 - 0.03 * (i % 3)) * w
            valid = xx < x_top + (x_bottom - x_top) * yy / (h - 1)
        else:
            valid = np.ones((h, w), bool)
        alphas.append(alpha)
        thicks.append(thick)
        valids.append(valid)

    # A median returns the ground where fewer than half of a pixel's valid dates are brighter (clouds, even
    # thin edges) and fewer than half darker (shadows). Weather does not promise that, but the demo does: where
    # a place would be cloudy too often, the sparsest dates' clouds get a hole there.
    limit = (np.sum(valids, axis=0) - 1) // 2
    for kind in ("cloud", "shadow"):
        def touched(i):
            if kind == "cloud":
                return (alphas[i] > 0.01) & valids[i]
            return (_shift(thicks[i], *sun) * (1 - alphas[i]) > 0.01) & valids[i]

        count = np.sum([touched(i) for i in range(n)], axis=0)
        for i in sorted(range(n), key=lambda k: _COVER[k]):
            excess = (count > limit) & touched(i)
            if not excess.any():
                continue
            keep = 1 - _fade(excess, max(2, size // 200))
            if kind == "cloud":
                alphas[i] = alphas[i] * keep
                thicks[i] = thicks[i] * keep
            else:
                thicks[i] = thicks[i] * _shift(keep, -sun[0], -sun[1])
            count = np.sum([touched(k) for k in range(n)], axis=0)

    scenes = []
    for i, date in enumerate(DEMO_DATES):
        alpha, valid = alphas[i], valids[i]
        shadow = _shift(thicks[i], *sun) * (1 - alpha)
        bright = 0.85 + 0.3 * (detail[:, ::-1] if i % 2 else detail)
        cloud_rgb = np.asarray(_CLOUD_DN).reshape(3, 1, 1) * bright
        noise = rng.normal(0, _NOISE_DN, (3, h, w))
        dn = toa * (1 - 0.6 * shadow) + noise
        dn = dn * (1 - alpha) + cloud_rgb * alpha
        new = date >= BASELINE_CHANGE
        dn = np.clip(np.round(dn), 1, 65535 - 1000) + (1000 if new else 0)
        dn = np.where(valid, dn, 0).astype(np.uint16)
        cloud = (alpha > 0.5) & valid
        scenes.append(DemoScene(
            date=date,
            baseline="04.00" if new else "03.01",
            bands={"B04": dn[0], "B03": dn[1], "B02": dn[2]},
            cloud=cloud,
            shadow=(shadow > 0.25) & valid & ~cloud,
            valid=valid,
            cloud_cover=round(100.0 * cloud.sum() / max(valid.sum(), 1), 2),
            data_coverage=round(100.0 * valid.mean(), 2),
        ))
    return scenes


# --- the archive on disk -----------------------------------------------------------------------------------------


def demo_archive_dir() -> Path:
    from s2desktop.core.paths import user_data_dir

    return user_data_dir() / "demo-archive"


def _marker_ok(root: Path, size: int | None) -> bool:
    try:
        doc = json.loads((root / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if doc.get("version") != DEMO_VERSION or doc.get("tile") != DEMO_TILE:
        return False
    return size is None or doc.get("size") == size


def write_demo_archive(root, size: int = DEMO_SIZE, progress: ProgressFn | None = None) -> Path:
    """Write the archive into ``root`` (an empty or new folder), one 'archive' event per date. Returns ``root``."""
    from s2desktop.core.archive import write_scene

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    _ground, crs, transform = _read_ground(size)
    scenes = demo_scenes(size)
    prefixes = []
    for s in scenes:
        prefixes.append(write_scene(
            root, "l1c", DEMO_TILE, s.date, 0, s.bands, crs=crs, transform=transform, baseline=s.baseline,
            cloud_cover=s.cloud_cover, data_coverage=s.data_coverage, qi_mask=_qi_mask(s),
        ))
        emit(progress, Progress("archive", len(prefixes), len(scenes), message=(
            f"  {DEMO_TILE} {s.date}  baseline {s.baseline}  cloud {s.cloud_cover:5.1f} %  "
            f"coverage {s.data_coverage:5.1f} %")))
    marker = {
        "version": DEMO_VERSION, "tile": DEMO_TILE, "size": size, "layout": "l1c",
        "dates": [d.isoformat() for d in DEMO_DATES], "scenes": prefixes,
        "attribution": "Contains modified Copernicus Sentinel data 2020",
    }
    (root / MARKER).write_text(json.dumps(marker, indent=2), encoding="utf-8")
    return root


def _qi_mask(scene: DemoScene) -> np.ndarray:
    """The scene's own Level-1C cloud mask (qimasks bits): its clouds as opaque clouds, on the bands' grid. The
    archive writes it as its baseline calls for (MSK_CLASSI_B00.jp2 from 04.00, MSK_CLOUDS_B00.gml before).
    Like ESA's, it knows no shadows: those the median still has to outvote."""
    from s2desktop.core.qimasks import OPAQUE

    return scene.cloud.astype(np.uint8) * np.uint8(OPAQUE)


def ensure_demo_archive(root=None, size: int | None = None, progress: ProgressFn | None = None) -> Path:
    """The demo archive's folder (the bucket root holding ``tiles/``), generating it first if needed.

    ``root`` defaults to ``user_data_dir()/demo-archive``. An archive made by this version is reused whatever its
    size unless ``size`` asks for a particular one (tests use small archives); otherwise it is (re)generated at
    ``size`` or DEMO_SIZE -- into a temporary sibling folder renamed into place, so an interrupted run leaves
    nothing half-written under the final name.
    """
    root = Path(root) if root is not None else demo_archive_dir()
    if _marker_ok(root, size):
        return root
    size = int(size or DEMO_SIZE)
    if size < 64:
        raise OutputError(f"demo archive size {size} px is too small (at least 64)")
    parent = ensure_writable_dir(root.parent, "demo archive folder")
    tmp = parent / f".{root.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
    t0 = time.perf_counter()
    emit(progress, Progress("archive", 0, len(DEMO_DATES),
                            message=f"generating the demo archive in {root} (first run only) ..."))
    try:
        write_demo_archive(tmp, size, progress)
        old = None
        if root.exists():
            old = parent / f".{root.name}.{uuid.uuid4().hex[:8]}.old"
            os.replace(root, old)
        try:
            os.replace(tmp, root)
        except OSError:
            if _marker_ok(root, size):  # another process finished first: use theirs
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise OutputError(f"cannot write the demo archive to {root}: {exc.strerror or exc}") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("demo archive generated in %s (%.1f s)", root, time.perf_counter() - t0)
    emit(progress, Progress("archive", len(DEMO_DATES), len(DEMO_DATES),
                            message=f"demo archive ready ({time.perf_counter() - t0:.1f} s)"))
    return root
