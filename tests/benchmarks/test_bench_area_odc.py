"""odc-stac's leg of bench_area.py computes what s2desktop computes: its masked median (xarray, as an odc-stac user
writes it) against the compositor's own kernel (harmonise, the SCL mask, median_bands) on random stacks with
nodata, every SCL class, both offsets (DNs under 1000 too) and even valid counts. Needs xarray (the bench extra)."""

import numpy as np
import pytest

xr = pytest.importorskip("xarray")

from s2desktop.core.compositing.rules import median_bands  # noqa: E402
from s2desktop.core.compositing.window import harmonise  # noqa: E402
from tests.benchmarks.bench_area_odc import BANDS, MASKED, masked_median, offset_of  # noqa: E402


def _dataset(dn: np.ndarray, scl: np.ndarray):
    dims = ("time", "y", "x")
    data = {b: (dims, dn[i]) for i, b in enumerate(BANDS)}
    return xr.Dataset({**data, "scl": (dims, scl)}, coords={"time": np.arange(scl.shape[0])})


def test_masked_median_is_the_compositors():
    rng = np.random.default_rng(19)
    dates, h, w = 6, 40, 50
    dn = rng.integers(0, 3000, (len(BANDS), dates, h, w), dtype=np.uint16)
    dn[rng.random(dn.shape) < 0.05] = 0  # nodata in single bands
    scl = rng.integers(0, 12, (dates, h, w), dtype=np.uint8)
    offsets = [offset_of(b) for b in ("05.09", "03.01", "04.00", "05.10", None, "04.00")]
    assert offsets == [-1000, 0, -1000, -1000, 0, -1000]

    got = masked_median(_dataset(dn, scl), offsets).values

    stacks = np.stack([[harmonise(dn[i, d], offsets[d]) for d in range(dates)] for i in range(len(BANDS))])
    valid = ~np.isin(scl, MASKED) & (dn > 0).all(axis=0)
    want, count = median_bands(stacks, valid)
    assert {0, 1, 2, 3}.issubset(np.unique(count))  # none valid, odd and even counts all occur
    np.testing.assert_array_equal(got, want)
