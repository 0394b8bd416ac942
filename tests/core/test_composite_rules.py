"""The compositor's rules on small real rasters: each against its numpy reference, the tags, the date band."""

import datetime as dt
import pickle

import numpy as np
import pytest
import rasterio

from s2desktop.core.compositing import composite, harmonise
from s2desktop.core.errors import InvalidInputError
from s2desktop.core.methods import Geomedian, Median, Medoid, Quantile
from s2desktop.core.pipeline import CompositeOptions, run_composite
from s2desktop.core.stack import from_files
from tests.core.test_medoids import reference_medoid
from tests.core.test_rules import reference_quantile


def observations(stack, offsets):
    """What the compositor sees: harmonised DNs and the validity (nonzero in all three bands, SCL not masked)."""
    data = stack.data.copy()
    for d in range(data.shape[1]):
        for b in range(3):
            data[b, d] = harmonise(data[b, d], offsets[d])
    valid = (data != 0).all(axis=0)
    up = stack.scl_data.repeat(2, axis=1).repeat(2, axis=2)[:, : data.shape[2], : data.shape[3]]
    valid &= ~np.isin(up, [0, 1, 3, 8, 9, 10])
    return data, valid


@pytest.fixture
def masked_stack(raster_stack):
    st = raster_stack(dates=5, size=160, baselines=["02.09", "04.00", "05.10", "03.01", "04.00"], scl=True)
    return st, observations(st, [0, -1000, -1000, 0, -1000])


def test_quantile_composite_equals_its_reference_and_says_so_in_its_tags(masked_stack, tmp_path):
    st, (data, valid) = masked_stack
    out = tmp_path / "q.tif"
    res = composite(from_files(st.red, st.green, st.blue), out, workers=2, window_size=64, method=Quantile(25))
    with rasterio.open(out) as ds:
        np.testing.assert_array_equal(ds.read(), reference_quantile(data, valid, 25))
        tags = ds.tags()
    assert res.method == tags["METHOD"] == "quantile:25" and "25th percentile" in tags["METHOD_RULE"]
    assert tags["S2DESKTOP_PRODUCT"] == "temporal quantile:25 composite" and "MEDIAN" not in tags


def test_the_median_stays_the_default_with_its_tags(masked_stack, tmp_path):
    st, _ = masked_stack
    a, b = tmp_path / "a.tif", tmp_path / "b.tif"
    composite(from_files(st.red, st.green, st.blue), a, workers=0)
    composite(from_files(st.red, st.green, st.blue), b, workers=0, method="quantile:50")
    with rasterio.open(a) as da, rasterio.open(b) as db:
        np.testing.assert_array_equal(da.read(), db.read())  # quantile:50 is the median
        assert da.tags()["METHOD"] == "median" and "MEDIAN" in da.tags()
        assert da.tags()["S2DESKTOP_PRODUCT"] == "temporal median composite"


def test_medoid_with_its_date_band_names_the_date_whose_values_each_pixel_holds(masked_stack, tmp_path):
    st, (data, valid) = masked_stack
    out, dates = tmp_path / "m.tif", tmp_path / "m_dates.tif"
    res = composite(from_files(st.red, st.green, st.blue), out, workers=2, window_size=64, method=Medoid(),
                    date_path=dates)
    ref, ref_chosen = reference_medoid(data, valid)
    with rasterio.open(out) as ds:
        values = ds.read()
        assert ds.tags()["METHOD"] == "medoid" and dates.name in ds.tags()["DATE_BAND"]
    np.testing.assert_array_equal(values, ref)
    with rasterio.open(dates) as ds:
        days = ds.read(1)
        assert ds.dtypes[0] == "uint16" and ds.nodata == 0 and ds.tags()["DATE_EPOCH"] == "1970-01-01"
        assert "days since 1970-01-01" in ds.tags()["DATE_ENCODING"] and ds.tags()["METHOD"] == "medoid"
        assert ds.descriptions == ("acquisition date (days since 1970-01-01)",)
        assert ds.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
    # read the band as a reader would: each pixel's date, then that date's own harmonised values
    names = [dt.date(1970, 1, 1) + dt.timedelta(days=int(d)) for d in days.ravel()]
    input_dates = [dt.date(2023, 7, d + 1) for d in range(5)]
    some = valid.any(axis=0)
    assert ((days == 0) == ~some).all()
    for (i, j), date in zip(np.ndindex(days.shape), names):
        if some[i, j]:
            d = input_dates.index(date)
            assert d == ref_chosen[i, j] and valid[d, i, j]
            np.testing.assert_array_equal(values[:, i, j], data[:, d, i, j])
    assert res.date_path == dates and not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_the_date_band_overviews_hold_dates_not_averages(raster_stack, tmp_path):
    st = raster_stack(dates=4, size=1100, block=256)
    dates = tmp_path / "d.tif"
    composite(from_files(st.red, st.green, st.blue, mask="none"), tmp_path / "m.tif", workers=2, method="medoid",
              date_path=dates)
    with rasterio.open(dates) as ds:
        assert ds.overviews(1)
        level = ds.read(1, out_shape=(ds.height // 2, ds.width // 2))
    known = {(dt.date(2023, 7, d + 1) - dt.date(1970, 1, 1)).days for d in range(4)} | {0}
    assert set(np.unique(level).tolist()) <= known
    # 1100 px in 1024 px windows: both levels made in the windows, each the top-left pixel of its block, as
    # GDAL's nearest overviews pick it for a whole factor
    with rasterio.open(dates) as ds:
        full, factors = ds.read(1), ds.overviews(1)
    assert factors == [2, 4]
    for i, f in enumerate(factors):
        with rasterio.open(dates, overview_level=i) as ds:
            np.testing.assert_array_equal(ds.read(1), full[::f, ::f])


def test_geomedian_composite_is_its_kernel_on_the_observations(masked_stack, tmp_path):
    from s2desktop.core.compositing.medoids import geomedian_bands

    st, (data, valid) = masked_stack
    out = tmp_path / "g.tif"
    composite(from_files(st.red, st.green, st.blue), out, workers=2, window_size=64, method=Geomedian())
    expected, _ = geomedian_bands(data, valid)  # per pixel, so the windows do not change it
    with rasterio.open(out) as ds:
        np.testing.assert_array_equal(ds.read(), expected)
        assert ds.tags()["METHOD"] == "geomedian" and "Weiszfeld" in ds.tags()["METHOD_RULE"]


def test_rule_errors_before_any_work(raster_stack, tmp_path):
    st = raster_stack(dates=2)
    loose = raster_stack(dates=2, layout="loose")
    out = tmp_path / "o.tif"
    cases = [
        (dict(method="quantile:120"), "0 to 100"),
        (dict(method="mean"), "not one of median, quantile:P, medoid, geomedian"),
        (dict(method="median", date_path=tmp_path / "d.tif"), "needs the medoid rule"),
        (dict(method="medoid", date_path=out), "a file of its own"),
    ]
    for kw, words in cases:
        with pytest.raises(InvalidInputError, match=words):
            composite(from_files(st.red, st.green, st.blue), out, workers=0, **kw)
    with pytest.raises(InvalidInputError, match="acquisition date is unknown"):
        composite(from_files(loose.red, loose.green, loose.blue, offsets=0), out, workers=0, method="medoid",
                  date_path=tmp_path / "d.tif")
    assert not out.exists() and not (tmp_path / "d.tif").exists()


def test_the_rule_travels_in_the_options_to_a_worker_process(raster_stack, tmp_path):
    st = raster_stack(dates=3)
    options = CompositeOptions(str(tmp_path / "m.tif"), workers=1, method=Medoid(),
                               date_band=str(tmp_path / "d.tif"))
    assert pickle.loads(pickle.dumps(options)) == options
    res = run_composite(from_files(st.red, st.green, st.blue), options)
    assert res.method == "medoid" and (tmp_path / "d.tif").exists()
    assert CompositeOptions("x.tif").method == Median()
