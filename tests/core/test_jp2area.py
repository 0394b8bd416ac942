"""core.jp2area: a JPEG 2000 area decoded through OpenJPEG's decode area holds GDAL's values (lossless and
lossy, across tile edges), and explain's reads of JPEG 2000 inputs through it equal full reads of the inputs."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin
from rasterio.windows import Window

from s2desktop.core import explain as explain_mod
from s2desktop.core import jp2area
from s2desktop.core.explain import Reason
from tests.fixtures_rasters import write_band

READER = jp2area.area_reader()
pytestmark = pytest.mark.skipif(READER is None, reason="glymur or a libopenjp2 >= 2.4 is not available")


def _jp2(path, lossy: bool, size: int = 300, block: int = 128):
    rng = np.random.default_rng(7)
    yy, xx = np.mgrid[0:size, 0:size]
    arr = (1000 + 5 * xx + 3 * yy + rng.integers(0, 900, (size, size))).astype(np.uint16)
    if not lossy:
        return write_band(path, arr, driver="JP2OpenJPEG", block=block)
    with rasterio.open(path, "w", driver="JP2OpenJPEG", width=size, height=size, count=1, dtype="uint16",
                       crs="EPSG:32633", transform=from_origin(300000, 5000040, 10, 10), QUALITY="20",
                       REVERSIBLE="NO", BLOCKXSIZE=str(block), BLOCKYSIZE=str(block)) as dst:
        dst.write(arr[np.newaxis])
    return path


@pytest.mark.parametrize("lossy", [False, True])
def test_areas_equal_gdals_reads(tmp_path, lossy):
    path = _jp2(tmp_path / "b.jp2", lossy)
    windows = [Window(0, 0, 1, 1), Window(127, 127, 2, 2), Window(200, 13, 1, 1), Window(299, 299, 1, 1),
               Window(100, 90, 64, 64), Window(236, 236, 64, 64)]  # tile corners and edges, a chip, the last px
    with rasterio.open(path) as ds:
        assert ds.block_shapes[0][0] < ds.height  # several tiles: GDAL decodes whole ones
        for w in windows:
            ours = READER(path, w, (int(w.height), int(w.width)))
            assert ours is not None, w
            assert np.array_equal(ours, ds.read(1, window=w)), w


def test_what_is_not_a_plain_window_of_a_jp2_is_left_to_gdal(tmp_path):
    path = _jp2(tmp_path / "b.jp2", lossy=False)
    assert READER(path, Window(10.5, 10, 1, 1), (1, 1)) is None  # fractional
    assert READER(path, Window(10, 10, 4, 4), (1, 1)) is None  # decimated
    assert READER(path, Window(298, 10, 4, 1), (1, 4)) is None  # over the edge (a boundless read)
    tif = write_band(tmp_path / "b.tif", np.ones((8, 8), np.uint16))
    assert READER(tif, Window(0, 0, 1, 1), (1, 1)) is None


def test_explain_of_jp2_inputs_reads_the_values_and_chips_of_a_full_read(tmp_path, monkeypatch):
    from s2desktop.core.pipeline import CompositeOptions, run_composite
    from s2desktop.core.stack import from_files
    from tests.fixtures_rasters import make_stack

    st = make_stack(tmp_path / "in", dates=4, size=300, block=128, driver="JP2OpenJPEG")
    out = tmp_path / "c.tif"
    run_composite(from_files(st.red, st.green, st.blue, mask="none"), CompositeOptions(str(out), workers=0))
    calls = []
    real = READER.__call__
    monkeypatch.setattr(jp2area.AreaReader, "__call__", lambda self, *a: calls.append(a) or real(*a))
    explain_mod.forget()
    for row, col in [(0, 0), (127, 128), (150, 37), (299, 299)]:
        why = explain_mod.explain(out, pixel=(row, col), chips=True)
        for d, date in enumerate(why.dates):
            full = tuple(int(st.data[b, d, row, col]) for b in range(3))  # the pixels as written
            assert date.raw == full, (row, col, d)
        assert why.recomputed == why.value
        with monkeypatch.context() as m:  # the same explain through GDAL alone
            m.setattr(explain_mod._JP2, "reader", lambda: None)
            explain_mod.forget()
            gdal = explain_mod.explain(out, pixel=(row, col), chips=True)
        for a, b in zip(why.dates, gdal.dates):
            assert a.raw == b.raw and np.array_equal(a.chip, b.chip), (row, col, a.date)
    assert calls  # the JPEG 2000 reads went through the decode area


def test_real_sentinel2_files_read_the_same_through_the_decode_area(shared_real):
    """Every single-band JPEG 2000 of ../shared/s2-real (L1C and L2A bands, SCL, AOT, ...): 64 px areas at
    random places (clipped at the edges) equal GDAL's reads; a file glymur does not take (one here is a JPEG
    2000 by GDAL's reading, not glymur's) is left to GDAL (None)."""
    paths = sorted(shared_real.rglob("*.jp2"))
    compared = 0
    for path in paths:
        with rasterio.open(path) as ds:
            if ds.count != 1:
                continue
            rng = np.random.default_rng(ds.width)
            for row, col in zip(rng.integers(0, ds.height, 3), rng.integers(0, ds.width, 3)):
                w = Window(int(col), int(row), min(64, ds.width - int(col)), min(64, ds.height - int(row)))
                ours = READER(path, w, (int(w.height), int(w.width)))
                if ours is None:
                    break
                assert np.array_equal(ours, ds.read(1, window=w)), (path, w)
                compared += 1
    assert compared >= 30, compared  # the folder's bands were read


@pytest.mark.parametrize("factor", [1, 2, 6])
def test_small_reads_of_fractional_upsampled_windows_pick_gdals_pixels(tmp_path, factor):
    """A coarser band (or an SCL) read onto the output grid as the compositor reads it: the window of one
    output pixel, or of a few, on its grid is fractional and upsampled by nearest; SmallReads gives GDAL's."""
    from rasterio.enums import Resampling

    path = _jp2(tmp_path / "c.jp2", lossy=False, size=300 // factor * 3, block=64)
    rng = np.random.default_rng(factor)
    with rasterio.open(path) as ds:
        small = jp2area.SmallReads(ds, READER)
        for _ in range(40):
            n = int(rng.integers(1, 9))  # output pixels a side (a pixel, a halo, a chip's part)
            col, row = (int(v) for v in rng.integers(0, ds.width * factor - n, 2))
            w = Window(col / factor, row / factor, n / factor, n / factor)
            ours = small.read(1, window=w, out_shape=(n, n), resampling=Resampling.nearest)
            np.testing.assert_array_equal(ours, ds.read(1, window=w, out_shape=(n, n),
                                                        resampling=Resampling.nearest), err_msg=str(w))
        out = np.empty((4, 4), np.uint16)
        assert small.read(1, window=Window(8, 8, 4, 4), out=out) is out
        np.testing.assert_array_equal(out, ds.read(1, window=Window(8, 8, 4, 4)))


def test_small_reads_leave_reduced_and_boundless_reads_to_gdal(tmp_path, monkeypatch):
    path = _jp2(tmp_path / "b.jp2", lossy=False)
    calls = []
    real = READER.__call__
    monkeypatch.setattr(jp2area.AreaReader, "__call__", lambda self, *a: calls.append(a) or real(*a))
    with rasterio.open(path) as ds:
        small = jp2area.SmallReads(ds, READER)
        reduced = small.read(1, window=Window(0, 0, 64, 64), out_shape=(8, 8))  # GDAL may take a reduced level
        np.testing.assert_array_equal(reduced, ds.read(1, window=Window(0, 0, 64, 64), out_shape=(8, 8)))
        edge = small.read(1, window=Window(-2, -2, 4, 4), boundless=True, fill_value=0)
        np.testing.assert_array_equal(edge, ds.read(1, window=Window(-2, -2, 4, 4), boundless=True, fill_value=0))
        assert not calls
        small.read(1, window=Window(3, 3, 1, 1))
        assert calls and small.width == ds.width and small.name == ds.name


def test_explain_of_jp2_20m_bands_and_scl_with_a_buffer_equals_gdals(tmp_path, monkeypatch):
    """B04 at 10 m, B11 at 20 m and the SCL at 20 m, all JPEG 2000, masked with a 20 m buffer (halo reads of the
    SCL): every date's values, fate, mask class and chip through SmallReads equal GDAL's alone."""
    from s2desktop.core.pipeline import CompositeOptions, run_composite
    from s2desktop.core.stack import Observation, RasterRef, Stack

    rng = np.random.default_rng(11)
    obs = []
    for d in range(3):
        b04 = rng.integers(300, 4000, (120, 120)).astype(np.uint16)
        b11 = rng.integers(300, 4000, (60, 60)).astype(np.uint16)
        scl = np.where(rng.random((60, 60)) < 0.2, 9, 4).astype(np.uint8)
        rasters = {"B04": RasterRef(str(write_band(tmp_path / f"B04_{d}.jp2", b04, driver="JP2OpenJPEG", block=32)),
                                    "B04"),
                   "B11": RasterRef(str(write_band(tmp_path / f"B11_{d}.jp2", b11, driver="JP2OpenJPEG", block=32,
                                                   res=20)), "B11")}
        mask = RasterRef(str(write_band(tmp_path / f"SCL_{d}.jp2", scl, driver="JP2OpenJPEG", block=32, res=20)),
                         "SCL")
        obs.append(Observation(date=f"2023-07-0{d + 1}", rasters=rasters, mask=mask))
    out = tmp_path / "c.tif"
    run_composite(Stack(tuple(obs), ("B04", "B11")), CompositeOptions(str(out), workers=0, window_size=32,
                                                                      mask_buffer=20.0))
    masked = 0
    calls = []
    real = READER.__call__
    monkeypatch.setattr(jp2area.AreaReader, "__call__", lambda self, *a: calls.append(a[0]) or real(*a))
    for row, col in [(0, 0), (31, 33), (64, 95), (119, 119), (77, 12), (50, 50)]:
        explain_mod.forget()
        ours = explain_mod.explain(out, pixel=(row, col), chips=True, chip_bands=(1, 2, 1))
        with monkeypatch.context() as m:
            m.setattr(explain_mod._JP2, "reader", lambda: None)
            explain_mod.forget()
            gdal = explain_mod.explain(out, pixel=(row, col), chips=True, chip_bands=(1, 2, 1))
        assert ours.value == ours.recomputed == gdal.value
        for a, b in zip(ours.dates, gdal.dates):
            assert (a.raw, a.reason, a.mask_value, a.mask_class) == (b.raw, b.reason, b.mask_value, b.mask_class)
            assert np.array_equal(a.chip, b.chip), (row, col, a.date)
            masked += Reason.MASKED in a.reason
    assert masked  # the buffered SCL masked some
    assert {p.split("/")[-1][:3] for p in map(str, calls)} == {"B04", "B11", "SCL"}  # all through decode areas
