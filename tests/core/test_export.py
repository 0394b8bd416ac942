"""Exports: byte copies and full-resolution renderings, written through a temp name, window by window."""

import threading

import numpy as np
import pytest
import rasterio
from rasterio.warp import transform as warp_transform

from s2desktop.core import export
from s2desktop.core.errors import CancelledError, OutputError
from tests.fixtures_rasters import write_band
from tests.helpers import files_under

LEVELS = [(0, 3000)] * 3


@pytest.fixture
def rgb(tmp_path):
    """A 3-band uint16 GeoTIFF, 300 px with 128 px blocks (9 windows) and a nodata (0) corner."""
    data = np.random.default_rng(3).integers(1, 3000, (3, 300, 300)).astype("uint16")
    data[:, :50, :50] = 0
    (tmp_path / "src").mkdir()
    return write_band(tmp_path / "src" / "composite.tif", data, block=128)


def test_copy_is_byte_identical_and_leaves_no_temp(rgb, tmp_path):
    out = export.copy_raster(rgb, tmp_path / "exports" / "copy.tif")
    assert out.read_bytes() == rgb.read_bytes()
    assert files_under(tmp_path / "exports") == ["copy.tif"]


def test_copy_refuses_itself_and_existing_files(rgb, tmp_path):
    with pytest.raises(OutputError, match="is the file being exported"):
        export.copy_raster(rgb, rgb)
    (tmp_path / "taken.tif").write_bytes(b"keep")
    with pytest.raises(OutputError, match=r"^export .*taken\.tif already exists \(allow overwriting or choose another name\)$"):
        export.copy_raster(rgb, tmp_path / "taken.tif", overwrite=False)
    assert (tmp_path / "taken.tif").read_bytes() == b"keep"
    (tmp_path / "blocker").write_text("x")
    with pytest.raises(OutputError, match="^folder .*blocker is a file, not a folder$"):
        export.copy_raster(rgb, tmp_path / "blocker" / "x.tif")
    with pytest.raises(OutputError, match="^cannot create folder .*blocker/sub: Not a directory$"):
        export.copy_raster(rgb, tmp_path / "blocker" / "sub" / "x.tif")


def test_rendered_geotiff_is_rgba_georeferenced_with_alpha_for_valid(rgb, tmp_path):
    seen = []
    out = export.write_rendered(rgb, tmp_path / "out" / "r.tif", LEVELS, progress=seen.append)
    with rasterio.open(out) as ds, rasterio.open(rgb) as src:
        assert (ds.count, ds.dtypes[0], ds.crs, ds.transform) == (4, "uint8", src.crs, src.transform)
        alpha = ds.read(4)
        assert (alpha[:50, :50] == 0).all() and (alpha[50:, 50:] == 255).all()
    assert [(e.stage, e.items_done, e.items_total) for e in seen] == [("export", i, 9) for i in range(1, 10)]
    assert files_under(tmp_path / "out") == ["r.tif"]


def test_rendered_png_has_a_world_file_named_after_it(rgb, tmp_path):
    out = export.write_rendered(rgb, tmp_path / "out" / "r.png", LEVELS)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    names = files_under(tmp_path / "out")
    assert "r.wld" in names and not [n for n in names if n.startswith(".")]
    with rasterio.open(rgb) as src:
        a, _d, _b, e, c, f = (float(v) for v in (tmp_path / "out" / "r.wld").read_text().split())
        assert a == src.transform.a and e == src.transform.e
        assert c == pytest.approx(src.transform.c + a / 2) and f == pytest.approx(src.transform.f + e / 2)


@pytest.mark.parametrize("name", ["r.tif", "r.png"])
def test_cancel_leaves_nothing(rgb, tmp_path, name):
    cancel = threading.Event()

    def progress(event):
        assert event.stage == "export" and event.items_total > 3
        if event.items_done == 3:
            cancel.set()

    (tmp_path / "out").mkdir()
    with pytest.raises(CancelledError, match="nothing was written"):
        export.write_rendered(rgb, tmp_path / "out" / name, LEVELS, progress=progress, cancel=cancel)
    assert files_under(tmp_path / "out") == []


def test_lonlat_grid_interpolates_like_proj(rgb):
    with rasterio.open(rgb) as ds:
        grid = export.lonlat_grid(ds.crs.to_wkt(), tuple(ds.transform), ds.width, ds.height, n=9)
        x, y = ds.transform * (123.4, 210.7)
        (lon,), (lat,) = warp_transform(ds.crs, "EPSG:4326", [x], [y])
    got = export.interpolate_lonlat(grid, 123.4, 210.7)
    assert got == pytest.approx((lon, lat), abs=1e-6)
    assert export.lonlat_grid(None, (1, 0, 0, 0, -1, 0), 10, 10) is None


def test_stretches_are_defined_once_in_render():
    assert not hasattr(export, "STRETCHES")
