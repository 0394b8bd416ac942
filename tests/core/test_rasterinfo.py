"""Attributes of real Sentinel-2 files and of our own rasters; decimated reads; scene metadata look-up."""

import json

import numpy as np
import pytest
import rasterio

from s2desktop.core.errors import NotFoundError, RasterError
from s2desktop.core.rasterinfo import (
    baseline_of,
    file_offset,
    is_scene_classification,
    offset_for_baseline,
    parse_band_filename,
    raster_info,
    read_overview,
    scene_metadata,
)
from tests.fixtures_rasters import write_band

JGF = "aws_tiles/l1c_T55JGF_20180617_N0206/tiles/55/J/GF/2018/6/17/0"
UDP = "aws_tiles/l1c_T19UDP_20170729_N0205_rio-tiler-pds/tiles/19/U/DP/2017/7/29/0"


def test_real_55jgf_b04(shared_real):
    info = raster_info(shared_real / JGF / "B04.jp2")
    assert info.driver == "JP2OpenJPEG"
    assert info.crs_epsg == 32755 and "UTM zone 55S" in info.crs_wkt
    assert (info.transform[2], info.transform[5]) == (699960.0, 6600040.0)
    assert (info.width, info.height, info.count, info.dtypes) == (439, 439, 1, ["uint16"])
    assert info.bounds[0] == 699960.0 and info.bounds[3] == 6600040.0
    lon_min, lat_min, lon_max, lat_max = info.bounds_lonlat
    assert 149 < lon_min < lon_max < 151 and -32 < lat_min < lat_max < -30
    assert info.nodata is None and info.compression.startswith("JPEG2000")
    assert info.file_size == (shared_real / JGF / "B04.jp2").stat().st_size
    d = info.to_dict()
    json.dumps(d)
    assert d["crs_epsg"] == 32755


def test_real_geotiff_named_jp2_opens_by_content(shared_real):
    info = raster_info(shared_real / UDP / "B04.jp2")
    assert info.driver == "GTiff" and info.crs_epsg == 32619
    assert (info.width, info.height) == (122, 122) and info.resolution == (900.0, 900.0)


def test_real_cog_overviews_and_blocks(shared_real):
    p = next((shared_real / "aws_tiles").glob("l2a_cog_*/*/B04.tif"))
    info = raster_info(p)
    assert info.driver == "GTiff" and info.block_shapes[0][0] > 1
    assert info.overviews[0] and info.overviews[0][0] == 2


def test_info_of_our_raster_tags_descriptions_nodata(tmp_path):
    import rasterio

    p = write_band(tmp_path / "x.tif", np.arange(100 * 60, dtype=np.uint16).reshape(60, 100), block=32)
    with rasterio.open(p, "r+") as ds:
        ds.nodata = 0
        ds.update_tags(TILE="33UUP")
        ds.set_band_description(1, "red")
    info = raster_info(p)
    assert info.nodata == 0 and info.tags["TILE"] == "33UUP" and info.descriptions == ["red"]
    assert info.block_shapes == [(32, 32)] and info.compression == "DEFLATE"
    assert info.colorinterp == ["gray"]
    text = info.summary()
    assert "EPSG:32633" in text and "100 x 60" in text


def test_errors(tmp_path):
    with pytest.raises(NotFoundError):
        raster_info(tmp_path / "nope.tif")
    bad = tmp_path / "bad.jp2"
    bad.write_bytes(b"\x00garbage" * 20)
    with pytest.raises(RasterError, match=r"bad\.jp2: cannot open"):
        raster_info(bad)


def test_read_overview_is_decimated(shared_real, tmp_path):
    data, valid, info = read_overview(shared_real / JGF / "B04.jp2", 100)
    assert data.shape == (1, 100, 100) and valid.shape == (100, 100)
    assert valid.any() and not valid.all()  # the 55JGF scene has a nodata wedge
    arr = np.full((300, 150), 7, dtype=np.uint16)
    arr[:, :10] = 0
    p = write_band(tmp_path / "y.tif", arr)
    data, valid, _ = read_overview(p, 60)
    assert data.shape == (1, 60, 30) and not valid[:, 0].any() and valid[:, -1].all()
    with pytest.raises(RasterError, match="no band 3"):
        read_overview(p, 60, bands=[3])


def test_baselines_and_offsets(shared_real, tmp_path):
    assert baseline_of("S2B_MSIL1C_20180617T001109_N0206_R073_T55JGF_20180617T013729") == "02.06"
    assert baseline_of("5.1") == "05.01" and baseline_of("04.00") == "04.00" and baseline_of("x") is None
    assert offset_for_baseline("04.00") == -1000 and offset_for_baseline("03.99") == 0
    assert offset_for_baseline(None) is None
    # loose real file: tileInfo.json beside it
    assert file_offset(shared_real / JGF / "B04.jp2") == (0, "02.06", "tileInfo.json beside the file")
    md = scene_metadata(shared_real / JGF / "B04.jp2")
    assert md["data_geometry"]["type"] == "Polygon"
    # download layout: metadata/{scene_id}.json
    (tmp_path / "red").mkdir()
    (tmp_path / "metadata").mkdir()
    f = tmp_path / "red" / "33UUP_2023-07-14_0_B04.jp2"
    f.write_bytes(b"")
    (tmp_path / "metadata" / "33UUP_2023-07-14_0.json").write_text(json.dumps({"baseline": "05.09"}))
    assert file_offset(f)[:2] == (-1000, "05.09")
    assert parse_band_filename(f)["scene_id"] == "33UUP_2023-07-14_0"
    assert file_offset(tmp_path / "elsewhere.tif") == (None, None, None)


def test_float_raster_with_nan_nodata(tmp_path, capsys):
    # NaN is the usual nodata of float rasters: `info --json` must stay valid JSON, and a thumbnail must treat
    # NaN as nodata (NaN != NaN, so a plain `data != nodata` called every NaN pixel valid).
    import warnings

    import rasterio

    from s2desktop.cli import main
    from s2desktop.core.rasterinfo import read_overview

    arr = np.linspace(0, 1, 400, dtype="float32").reshape(1, 20, 20)
    arr[:, :5] = np.nan
    path = tmp_path / "nan.tif"
    with rasterio.open(path, "w", driver="GTiff", width=20, height=20, count=1, dtype="float32",
                       crs="EPSG:32633", transform=rasterio.transform.from_origin(0, 20, 1, 1),
                       nodata=float("nan")) as dst:
        dst.write(arr)
    assert main(["info", "--json", str(path)]) == 0
    d = json.loads(capsys.readouterr().out, parse_constant=lambda c: pytest.fail(f"{c} is not JSON"))
    assert d["nodata"] == "nan"
    data, valid, _info = read_overview(path, 20)
    assert not valid[:5].any() and valid[5:].all()
    assert np.isfinite(data).all()
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        assert main(["thumbnail", str(path), "-o", str(tmp_path / "t.png")]) == 0


def test_overview_reads_never_enlarge_unless_asked(tmp_path):
    from s2desktop.core.rasterinfo import overview_shape

    assert overview_shape(200, 100, 800) == (100, 200)
    assert overview_shape(200, 100, 800, enlarge=True) == (400, 800)
    assert overview_shape(2000, 1000, 800) == (400, 800)


def test_scene_classification_is_recognised_and_read_with_its_own_classes(shared_real):
    """A decimated read of a JP2 SCL through its reduced resolutions invents classes (wavelet averages: 1-13
    from a file holding 0, 6 and 10); SCL rasters are read by nearest from full resolution instead."""
    p = shared_real / "rasters" / "scl" / "T01CEM_SCL_60m_rio-tiler-pds.jp2"
    with rasterio.open(p) as src:
        present = set(np.unique(src.read(1)).tolist())
    data, valid, info = read_overview(p, 300)
    assert is_scene_classification(info)
    assert data.shape == (1, 300, 300)
    assert set(np.unique(data).tolist()) <= present
    cog = shared_real / "aws_tiles" / "l2a_cog_T29RKH_20200219_rio-tiler-pds" / "S2A_29RKH_20200219_0_L2A"
    assert is_scene_classification(raster_info(cog / "SCL.tif"))
    assert not is_scene_classification(raster_info(cog / "B04.tif"))


def test_finest_pixel_size_reads_the_headers_of_local_and_remote_rasters(tmp_path, seeded_s3):
    """A 20 m and a 60 m raster: 20; an object of the S3 server through /vsis3/ with the source's GDAL options."""
    from s2desktop.core import rasterinfo, streaming
    from s2desktop.core.pipeline import SourceSpec
    from tests.fixtures_rasters import write_band

    a = write_band(tmp_path / "a.tif", np.ones((8, 8), np.uint16), res=20.0)
    b = write_band(tmp_path / "b.tif", np.ones((8, 8), np.uint16), res=60.0)
    assert rasterinfo.finest_pixel_size([b, a]) == 20.0 and rasterinfo.finest_pixel_size([]) is None
    source = SourceSpec("cogs", endpoint_url=seeded_s3.endpoint).resolve()
    key = next(iter(seeded_s3.roots["cogs"].rglob("B04.tif"))).relative_to(seeded_s3.roots["cogs"]).as_posix()
    with rasterio.open(seeded_s3.roots["cogs"] / key) as ds:
        expected = ds.res[0]
    assert rasterinfo.finest_pixel_size([streaming.object_path(source, key)], streaming.gdal_env(source)) == expected
