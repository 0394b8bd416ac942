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
                       crs="EPSG:32633", transform=from_origin(300000, 5000040, 10, 10), QUALITY="20", REVERSIBLE="NO", BLOCKXSIZE=str(block), BLOCKYSIZE=str(block)) as dst:
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
