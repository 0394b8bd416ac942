"""archive.write_scene writes real scene folders in the three bucket layouts."""

import datetime as dt
import json

import numpy as np
import pytest
import rasterio
from affine import Affine

from s2desktop.core.archive import write_scene
from s2desktop.core.errors import InvalidInputError, InvalidTileError

T = Affine(60.0 * 1098 / 64 * 10 / 60, 0, 300000, 0, -60.0 * 1098 / 64 * 10 / 60, 5300040)


def _band(seed, size=64):
    a = np.random.default_rng(seed).integers(1, 5000, (size, size)).astype("uint16")
    a[:, : size // 4] = 0  # nodata edge
    return a


@pytest.mark.parametrize("layout", ["l1c", "l2a", "cogs"])
def test_write_scene_layouts_are_real_rasters(tmp_path, layout):
    b4, b11 = _band(1), _band(2, 32)
    scl = (b11 % 12).astype("uint8")
    prefix = write_scene(tmp_path, layout, "t33uup", dt.date(2023, 7, 4), 2, {"B04": b4, "B11": b11},
                         crs="EPSG:32633", transform=T, baseline="05.09", cloud_cover=12.5,
                         data_coverage=75.0, scl=scl)
    folder = tmp_path / prefix
    if layout == "cogs":
        assert prefix.startswith("sentinel-s2-l2a-cogs/33/U/UP/2023/7/S2")
        assert prefix.endswith("_33UUP_20230704_2_L2A")
        b4_path, b11_path, scl_path = folder / "B04.tif", folder / "B11.tif", folder / "SCL.tif"
        info = json.loads((folder / "tileinfo_metadata.json").read_text())
        item = json.loads((folder / f"{prefix.rsplit('/', 1)[1]}.json").read_text())
        assert item["properties"]["s2:processing_baseline"] == "05.09"
        assert (folder / "thumbnail.jpg").read_bytes()[:2] == b"\xff\xd8"
        driver = "GTiff"
    else:
        assert prefix == "tiles/33/U/UP/2023/7/4/2"  # no zero padding
        sub10, sub20 = ("R10m/", "R20m/") if layout == "l2a" else ("", "")
        b4_path, b11_path = folder / f"{sub10}B04.jp2", folder / f"{sub20}B11.jp2"
        scl_path = folder / "R20m/SCL.jp2" if layout == "l2a" else None
        info = json.loads((folder / "tileInfo.json").read_text())
        product = json.loads((folder / "productInfo.json").read_text())
        assert product["name"] == info["productName"]
        if layout == "l1c":
            assert (folder / "preview.jpg").read_bytes()[:2] == b"\xff\xd8"
        else:
            assert (folder / "qi/L2A_PVI.jp2").exists()
        driver = "JP2OpenJPEG"
        assert not list(folder.rglob("*.aux.xml"))
    with rasterio.open(b4_path) as ds:
        assert ds.driver == driver
        assert ds.crs.to_epsg() == 32633
        assert ds.transform == T
        assert np.array_equal(ds.read(1), b4)  # lossless
    with rasterio.open(b11_path) as ds:
        assert ds.shape == (32, 32)
        assert ds.transform.a == pytest.approx(T.a * 2)
        assert ds.bounds.right == pytest.approx(T.c + 64 * T.a)
    if scl_path is not None:
        with rasterio.open(scl_path) as ds:
            assert ds.dtypes[0] == "uint8" and np.array_equal(ds.read(1), scl)
    assert info["cloudyPixelPercentage"] == 12.5
    assert info["dataCoveragePercentage"] == 75.0
    assert "_N0509_" in info["productName"] and "_T33UUP_" in info["productName"]
    assert info["tileOrigin"]["coordinates"] == [300000, 5300040]
    assert info["tileGeometry"]["crs"]["properties"]["name"].endswith(":32633")
    assert info["path"] == "tiles/33/U/UP/2023/7/4/2"
    # the data geometry follows the nodata edge (left quarter empty)
    xs = [x for x, _ in info["tileDataGeometry"]["coordinates"][0]]
    assert min(xs) == pytest.approx(300000 + 16 * T.a)


def test_write_scene_rejects_bad_input(tmp_path):
    with pytest.raises(InvalidTileError):
        write_scene(tmp_path, "l1c", "61UUP", dt.date(2023, 1, 1), 0, {"B04": _band(0)}, crs=32633, transform=T)
    with pytest.raises(InvalidInputError):
        write_scene(tmp_path, "xyz", "33UUP", dt.date(2023, 1, 1), 0, {"B04": _band(0)}, crs=32633, transform=T)


def test_scl_overviews_hold_only_classes_of_the_full_resolution(tmp_path):
    """SCL values are classes: a COG's SCL overviews pick one (NEAREST, as sentinel-cogs' do), never average
    neighbouring classes into one that is not there; the reflectance overviews still average."""
    yy, xx = np.mgrid[0:1200, 0:1200]
    scl = np.where((xx // 3 + yy // 3) % 2 == 0, 4, 9).astype("uint8")  # vegetation / cloud, fine chequers
    scl[:, :100] = 0  # a nodata edge
    b4 = (1000 + 7 * ((xx + yy) % 9)).astype("uint16")
    prefix = write_scene(tmp_path, "cogs", "33UUP", dt.date(2023, 7, 4), 0, {"B04": b4}, crs="EPSG:32633",
                         transform=T, scl=scl)
    with rasterio.open(tmp_path / prefix / "SCL.tif") as ds:
        full = set(np.unique(ds.read(1)).tolist())
        levels = ds.overviews(1)
    assert full == {0, 4, 9} and levels  # overviews exist to be read
    for level in range(len(levels)):
        with rasterio.open(tmp_path / prefix / "SCL.tif", overview_level=level) as ovr:
            coarse = set(np.unique(ovr.read(1)).tolist())
        assert coarse <= full, f"overview {level} holds classes {sorted(coarse - full)} not in the full SCL"
        assert {4, 9} <= coarse
    with rasterio.open(tmp_path / prefix / "B04.tif", overview_level=0) as ovr:  # averaged: values in between
        assert not set(np.unique(ovr.read(1)).tolist()) <= set(np.unique(b4).tolist())


@pytest.mark.parametrize("baseline, rel", [("02.09", "qi/MSK_CLOUDS_B00.gml"), ("04.00", "qi/MSK_CLASSI_B00.jp2")])
def test_write_scene_writes_the_l1c_cloud_mask_its_baseline_calls_for(tmp_path, baseline, rel):
    """qi_mask (qimasks bits, here at 60 m-like cells: half the bands' size) -> the baseline's file, read back by
    the same code the composite masks with: pixel for pixel the classes given (snow only in the raster)."""
    from s2desktop.core import qimasks

    classes = np.zeros((32, 32), np.uint8)
    classes[4:12, 5:20] = qimasks.OPAQUE
    classes[7:9, 9:11] = 0  # a hole in the cloud
    classes[20:30, 2:8] = qimasks.CIRRUS
    classes[25:27, 25:31] = qimasks.SNOW
    prefix = write_scene(tmp_path, "l1c", "33UUP", dt.date(2023, 7, 4), 0, {"B04": _band(1)}, crs="EPSG:32633",
                         transform=T, baseline=baseline, qi_mask=classes)
    folder = tmp_path / prefix
    assert sorted(str(p.relative_to(folder)) for p in folder.glob("qi/*")) == [rel]
    grid = T @ Affine.scale(2)  # the mask's own cells
    if rel.endswith(".gml"):
        data = (folder / rel).read_bytes()
        assert {k for k, _g in qimasks.parse_cloud_gml(data)} == {qimasks.OPAQUE, qimasks.CIRRUS}
        back = qimasks.rasterise_gml(data, classes.shape, grid)
        np.testing.assert_array_equal(back, np.where(classes == qimasks.SNOW, 0, classes))
    else:
        with rasterio.open(folder / rel) as ds:
            assert (ds.driver, ds.count, ds.dtypes[0], ds.crs.to_epsg()) == ("JP2OpenJPEG", 3, "uint8", 32633)
            assert ds.transform.almost_equals(grid) and set(np.unique(ds.read())) == {0, 1}
        np.testing.assert_array_equal(qimasks.read_classi(folder / rel, classes.shape, grid, "EPSG:32633"), classes)


def test_write_scene_l1c_cloud_mask_only_in_l1c_and_a_cloudless_gml_has_no_members(tmp_path):
    from s2desktop.core import qimasks

    with pytest.raises(InvalidInputError, match="cloud mask"):
        write_scene(tmp_path, "l2a", "33UUP", dt.date(2023, 7, 4), 0, {"B04": _band(1)}, crs="EPSG:32633",
                    transform=T, qi_mask=np.zeros((8, 8), np.uint8))
    prefix = write_scene(tmp_path, "l1c", "33UUP", dt.date(2023, 7, 4), 0, {"B04": _band(1)}, crs="EPSG:32633",
                         transform=T, baseline="03.01", qi_mask=np.zeros((16, 16), np.uint8))
    data = (tmp_path / prefix / "qi/MSK_CLOUDS_B00.gml").read_bytes()
    assert qimasks.parse_cloud_gml(data) == [] and b"urn:ogc:def:crs:EPSG:8.7:32633" in data
