"""The compositor on small real rasters: values against a numpy reference, grid, COG layout, errors, cancel."""

import json
import platform
import subprocess
import sys
import textwrap
import threading

import numpy as np
import psutil
import pytest
import rasterio
import rasterio.shutil
from rasterio.crs import CRS
from rasterio.transform import from_origin

from s2desktop.core.compositing import composite, harmonise
from s2desktop.core.compositing import window as window_module
from s2desktop.core.errors import CancelledError, InvalidInputError, OutputError, RasterError
from s2desktop.core.compositing.rules import reference_median
from s2desktop.core.stack import from_files
from tests.fixtures_rasters import write_band


def expected_composite(stack, offsets, scl=True, skip=None):
    """Reference: harmonise, joint validity over R,G,B, SCL mask (nearest 20 m -> 10 m), np.nanmedian."""
    data = stack.data.copy()
    n = data.shape[1]
    for d in range(n):
        for b in range(3):
            data[b, d] = harmonise(data[b, d], offsets[d])
    valid = (data != 0).all(axis=0)
    if scl and stack.scl_data is not None:
        up = stack.scl_data.repeat(2, axis=1).repeat(2, axis=2)[:, : data.shape[2], : data.shape[3]]
        valid &= ~np.isin(up, [0, 1, 3, 8, 9, 10])
    if skip is not None:
        valid &= ~skip
    rgb = np.stack([reference_median(data[b], valid) for b in range(3)])
    return rgb, valid.sum(axis=0)


def test_matches_reference_mixed_baselines_mask_count(raster_stack, tmp_path):
    st = raster_stack(dates=4, baselines=["02.09", "04.00", "05.10", "03.01"], scl=True)
    out, cnt = tmp_path / "c.tif", tmp_path / "n.tif"
    seen = []
    res = composite(from_files(st.red, st.green, st.blue), out, workers=2, count_path=cnt, window_size=128,
                    progress=seen.append)
    exp, exp_count = expected_composite(st, [0, -1000, -1000, 0])
    with rasterio.open(out) as ds:
        np.testing.assert_array_equal(ds.read(), exp)
        assert ds.nodata == 0 and ds.dtypes == ("uint16",) * 3
        tags = ds.tags()
    with rasterio.open(cnt) as ds:
        np.testing.assert_array_equal(ds.read(1), exp_count)
    assert res.windows == 9 and {e.stage for e in seen} == {"composite"} and {e.items_total for e in seen} == {9}
    assert [e.items_done for e in seen if not e.message] == list(range(10))  # the start, then each window
    assert [(e.items_done, e.message) for e in seen if e.message] == [
        (9, "building overviews"), (9, "writing the Cloud-Optimised GeoTIFF")]
    assert res.offsets == [0, -1000, -1000, 0] and res.masked_dates == 4
    assert tags["BASELINES"] == "02.09,04.00,05.10,03.01"
    assert tags["OFFSETS_RED"] == "0,-1000,-1000,0" and tags["OUTPUT_OFFSET"] == "0"
    assert tags["TILE"] == "33UUP" and tags["DATES"].startswith("2023-07-01,2023-07-02")
    assert "download metadata" in tags["OFFSET_SOURCES"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporaries left


def test_jp2_inputs_georeferencing_and_cog_layout(raster_stack, tmp_path):
    st = raster_stack(dates=3, size=1100, block=256, driver="JP2OpenJPEG")
    out = tmp_path / "c.tif"
    composite(from_files(st.red, st.green, st.blue, mask="none"), out, workers=0)
    exp, _ = expected_composite(st, [0, 0, 0], scl=False)
    with rasterio.open(out) as ds, rasterio.open(st.red[0]) as ref:
        assert ds.crs == ref.crs == CRS.from_epsg(32633)
        assert ds.transform == ref.transform and (ds.width, ds.height) == (1100, 1100)
        assert ds.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
        assert ds.profile["tiled"] and ds.block_shapes[0] == (512, 512)
        assert ds.compression.value in ("DEFLATE", "ZSTD")
        assert ds.tags(ns="IMAGE_STRUCTURE").get("PREDICTOR") == "2"
        assert ds.overviews(1) == [2, 4] or ds.overviews(1)[0] == 2
        assert [c.name for c in ds.colorinterp] == ["red", "green", "blue"]
        assert ds.descriptions == ("B04", "B03", "B02")
        assert ds.tags(2)["BAND_DESCRIPTION"] == "green 560 nm" and ds.tags()["BANDS"] == "B04,B03,B02"
        np.testing.assert_array_equal(ds.read(), exp)
    # a plain (QGIS-style) reader: GDAL's own checks on the COG structure
    from rasterio import shutil as rshutil

    assert rshutil.exists(out)


def test_scale_4_output_grid_and_values(raster_stack, tmp_path):
    st = raster_stack(dates=3, size=300, block=128)
    out = tmp_path / "c4.tif"
    res = composite(from_files(st.red, st.green, st.blue, mask="none"), out, workers=0, scale=4)
    with rasterio.open(out) as ds, rasterio.open(st.red[0]) as ref:
        assert (ds.width, ds.height) == (75, 75) == (res.width, res.height)
        assert ds.transform.a == ref.transform.a * 4 and ds.transform.e == ref.transform.e * 4
        assert (ds.transform.c, ds.transform.f) == (ref.transform.c, ref.transform.f)
        got = ds.read()
        assert ds.tags()["SCALE"] == "4"
    # nearest decimation samples the source pixel under each output pixel centre
    data = st.data[:, :, 2::4, 2::4]
    valid = (data != 0).all(axis=0)
    exp = np.stack([reference_median(data[b], valid) for b in range(3)])
    np.testing.assert_array_equal(got, exp)


@pytest.mark.parametrize("scale", [4, 8])
def test_scaled_grid_of_a_size_not_divisible_by_scale_keeps_the_extent(raster_stack, tmp_path, scale):
    # 301 px at scale 4 -> 76 px: the output must cover the inputs' extent (as GDAL's overviews do), and each
    # output pixel hold what a whole-image decimated read puts there, across several windows.
    from rasterio.enums import Resampling

    st = raster_stack(dates=3, size=301, block=32)
    out = tmp_path / "c.tif"
    res = composite(from_files(st.red, st.green, st.blue, mask="none"), out, workers=0, scale=scale, window_size=32)
    assert res.windows > 4
    n = -(-301 // scale)
    with rasterio.open(out) as ds, rasterio.open(st.red[0]) as ref:
        assert (ds.width, ds.height) == (n, n)
        for got, want in zip(ds.bounds, ref.bounds):
            assert got == pytest.approx(want, abs=1e-6)
        got = ds.read()
    data = np.zeros((3, 3, n, n), dtype=np.uint16)
    for b, paths in enumerate((st.red, st.green, st.blue)):
        for d, p in enumerate(paths):
            with rasterio.open(p) as src:
                data[b, d] = src.read(1, out_shape=(n, n), resampling=Resampling.nearest)
    valid = (data != 0).all(axis=0)
    exp = np.stack([reference_median(data[b], valid) for b in range(3)])
    np.testing.assert_array_equal(got, exp)


def test_offsets_for_loose_files_and_tags(raster_stack, tmp_path):
    st = raster_stack(dates=3, layout="loose")
    out = tmp_path / "c.tif"
    res = composite(from_files(st.red, st.green, st.blue, offsets=[0, -1000, -1000]), out, workers=0)
    exp, _ = expected_composite(st, [0, -1000, -1000], scl=False)
    with rasterio.open(out) as ds:
        np.testing.assert_array_equal(ds.read(), exp)
        assert ds.tags()["OFFSET_SOURCES"] == "--offset,--offset,--offset"
        assert ds.tags()["BASELINES"] == "unknown,unknown,unknown"
    assert res.offsets == [0, -1000, -1000]
    with pytest.raises(InvalidInputError, match="offsets"):
        composite(from_files(st.red, st.green, st.blue, offsets=[0, 0]), tmp_path / "x.tif", workers=0)
    with pytest.raises(InvalidInputError, match="offset 5"):
        composite(from_files(st.red, st.green, st.blue, offsets=5), tmp_path / "x.tif", workers=0)


def test_data_footprint_skips_dates(raster_stack, tmp_path):
    st = raster_stack(dates=3, size=300, block=128)
    # date 1's footprint covers only the first 100 columns: windows from column 128 on never read it
    md = st.root / "metadata" / "33UUP_2023-07-02_0.json"
    d = json.loads(md.read_text())
    x0, y0 = 300000.0, 5000040.0
    d["tileDataGeometry"] = {"type": "Polygon", "crs": {"type": "name", "properties": {
        "name": "urn:ogc:def:crs:EPSG:8.8.1:32633"}}, "coordinates": [[[x0, y0], [x0 + 1000, y0],
                                                                    [x0 + 1000, y0 - 3000], [x0, y0 - 3000], [x0, y0]]]}
    md.write_text(json.dumps(d))
    out = tmp_path / "c.tif"
    composite(from_files(st.red, st.green, st.blue), out, workers=0, window_size=128)
    skip = np.zeros(st.data.shape[1:], dtype=bool)
    skip[1, :, 128:] = True
    exp, _ = expected_composite(st, [0, 0, 0], skip=skip)
    with rasterio.open(out) as ds:
        np.testing.assert_array_equal(ds.read(), exp)


def _children_alive():
    """Live child processes, ignoring multiprocessing's resource tracker (one per parent, by design)."""
    alive = []
    for p in psutil.Process().children(recursive=True):
        try:
            if p.status() != psutil.STATUS_ZOMBIE and "resource_tracker" not in " ".join(p.cmdline()):
                alive.append(p)
        except psutil.NoSuchProcess:
            pass
    return alive


def test_cancel_midway_leaves_nothing_and_no_workers(raster_stack, tmp_path):
    st = raster_stack(dates=3, size=300, block=64)
    cancel = threading.Event()
    out = tmp_path / "c.tif"

    def progress(event):
        if event.items_done >= 1:
            cancel.set()

    with pytest.raises(CancelledError):
        composite(from_files(st.red, st.green, st.blue), out, workers=2, window_size=64,
                  count_path=tmp_path / "n.tif", progress=progress, cancel=cancel)
    assert list(tmp_path.iterdir()) == [st.root] or not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.is_file()]
    assert not _children_alive()


def test_cancel_leaves_no_pool_thread_for_exit_to_wait_on(raster_stack, tmp_path):
    """Terminating the pool's workers can cut a result in half on its pipe; the executor's manager thread then
    waits for the rest and interpreter exit joins that thread -- `s2desktop composite` hung after Ctrl-C in about
    one run in ten. Cancel several times: each time the manager thread must be gone when composite() returns."""
    st = raster_stack(dates=3, size=300, block=64)
    for i in range(6):
        cancel = threading.Event()

        def progress(event, cancel=cancel):
            if event.items_done >= 1:
                cancel.set()

        with pytest.raises(CancelledError):
            composite(from_files(st.red, st.green, st.blue), tmp_path / f"c{i}.tif", workers=2, window_size=64,
                      progress=progress, cancel=cancel)
        left = [t.name for t in threading.enumerate() if type(t).__name__ == "_ExecutorManagerThread"]
        assert left == [], f"run {i}: the pool's manager thread is still alive: exit would wait for it"


def test_keyboard_interrupt_tears_down_pool(raster_stack, tmp_path):
    st = raster_stack(dates=3, size=300, block=64)

    def progress(event):
        if event.items_done >= 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        composite(from_files(st.red, st.green, st.blue), tmp_path / "c.tif", workers=2, window_size=64,
                  progress=progress)
    assert not [p for p in tmp_path.iterdir() if p.is_file()]
    assert not _children_alive()


def test_errors_before_any_work(raster_stack, tmp_path):
    st = raster_stack(dates=2)
    with pytest.raises(InvalidInputError, match="no input"):
        composite(from_files([], [], []), tmp_path / "o.tif")
    with pytest.raises(InvalidInputError, match="different numbers of dates: red 2, green 1"):
        composite(from_files(st.red, st.green[:1], st.blue), tmp_path / "o.tif")
    existing = tmp_path / "exists.tif"
    existing.write_bytes(b"x")
    with pytest.raises(OutputError, match="already exists"):
        composite(from_files(st.red, st.green, st.blue), existing, workers=0)
    assert existing.read_bytes() == b"x"
    with pytest.raises(OutputError, match="does not exist"):
        composite(from_files(st.red, st.green, st.blue), tmp_path / "nope" / "o.tif", workers=0)
    with pytest.raises(OutputError, match="not writable"):
        composite(from_files(st.red, st.green, st.blue), "/proc/s2desktop-test.tif", workers=0)
    # --overwrite replaces
    composite(from_files(st.red, st.green, st.blue), existing, workers=0, overwrite=True)
    with rasterio.open(existing) as ds:
        assert ds.count == 3


def test_mismatched_inputs_name_the_odd_file(raster_stack, tmp_path):
    st = raster_stack(dates=2)
    arr = st.data[0, 1]
    other_crs = write_band(tmp_path / "crs.tif", arr, crs=CRS.from_epsg(32634))
    with pytest.raises(RasterError, match=r"crs\.tif: CRS"):
        composite(from_files(st.red[:1] + [other_crs], st.green, st.blue), tmp_path / "o.tif", workers=0)
    shifted = write_band(tmp_path / "shift.tif", arr, transform=from_origin(300010.0, 5000040.0, 10, 10))
    with pytest.raises(RasterError, match=r"shift\.tif: georeferencing"):
        composite(from_files(st.red, st.green[:1] + [shifted], st.blue), tmp_path / "o.tif", workers=0)
    small = write_band(tmp_path / "small.tif", arr[:200, :200])
    with pytest.raises(RasterError, match=r"small\.tif: is 200x200"):
        composite(from_files(st.red, st.green, [small] + st.blue[1:]), tmp_path / "o.tif", workers=0)
    assert not (tmp_path / "o.tif").exists()


def test_corrupt_and_truncated_inputs_named(raster_stack, tmp_path):
    st = raster_stack(dates=2, driver="JP2OpenJPEG")
    junk = tmp_path / "junk.jp2"
    junk.write_bytes(b"not a raster" * 50)
    with pytest.raises(RasterError, match=r"junk\.jp2: cannot open"):
        composite(from_files([junk] + st.red[1:], st.green, st.blue), tmp_path / "o.tif", workers=0)
    data = st.blue[1].read_bytes()
    trunc = tmp_path / "33UUP_2023-07-02_0_B02.jp2"
    trunc.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(RasterError, match=r"33UUP_2023-07-02_0_B02\.jp2: cannot read"):
        composite(from_files(st.red, st.green, st.blue[:1] + [trunc]), tmp_path / "o.tif", workers=0)
    missing = tmp_path / "missing.jp2"
    with pytest.raises(Exception, match="missing.jp2"):
        composite(from_files([missing] + st.red[1:], st.green, st.blue), tmp_path / "o.tif", workers=0)
    assert not [p for p in tmp_path.iterdir() if p.suffix == ".tif" or p.name.startswith(".o.tif")]


def test_bands_given_in_different_date_orders_are_refused(raster_stack, tmp_path):
    # files mode pairs the n-th red, green and blue file; when the files say which scene they are, a green
    # list in another order must not silently mix dates across bands
    st = raster_stack(dates=3)
    with pytest.raises(InvalidInputError, match=r"2023-07-01.*2023-07-03|2023-07-03.*2023-07-01") as err:
        composite(from_files(st.red, st.green[::-1], st.blue), tmp_path / "o.tif", workers=0)
    assert "same date order" in str(err.value)
    assert not list(tmp_path.glob("*o.tif*"))
    loose = raster_stack(dates=2, layout="loose")  # nothing to tell the scenes apart: the order is the user's
    composite(from_files(loose.red, loose.green[::-1], loose.blue), tmp_path / "o.tif", workers=0)


def test_truncated_cog_error_says_what_gdal_found(raster_stack, tmp_path):
    # A COG keeps its overviews before the full-resolution tiles: cut it short and the quick probe (served from
    # the overviews) passes, the windows fail. The message names the file and says what failed, not
    # rasterio's "See previous exception for details." (there is no previous exception for the user to see).
    from rasterio import shutil as rshutil

    st = raster_stack(dates=2, size=600, block=128)
    cog = tmp_path / "33UUP_2023-07-01_0_B04.tif"
    rshutil.copy(st.red[0], cog, driver="COG", blocksize="128", compress="deflate", overview_count="3")
    data = cog.read_bytes()
    cog.write_bytes(data[: len(data) * 6 // 10])
    for workers in (0, 1):
        with pytest.raises(RasterError) as err:
            composite(from_files([cog] + st.red[1:], st.green, st.blue, mask="none"), tmp_path / "o.tif",
                      workers=workers)
        msg = str(err.value)
        assert "33UUP_2023-07-01_0_B04.tif: cannot read" in msg and "previous exception" not in msg
        assert "Read failed" not in msg  # GDAL's own words, e.g. "Cannot read 8813 bytes at offset 408261"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".o.tif")]


def test_worker_scratch_buffers_are_reused_across_window_sizes(monkeypatch):
    monkeypatch.setattr(window_module, "_W", {"scratch": {}})
    big = window_module._scratch("stacks", (3, 5, 64, 64), np.uint16)
    edge = window_module._scratch("stacks", (3, 5, 64, 20), np.uint16)  # a narrower edge window
    assert edge.shape == (3, 5, 64, 20) and edge.flags.c_contiguous and np.shares_memory(big, edge)
    other = window_module._scratch("valid", (5, 64, 64), bool)
    assert not np.shares_memory(other, big)
    grown = window_module._scratch("stacks", (3, 6, 64, 64), np.uint16)  # more than the buffer holds
    assert grown.shape == (3, 6, 64, 64) and not np.shares_memory(grown, big)


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="tunes glibc's malloc")
def test_composite_processes_keep_freed_memory_for_the_next_window():
    # Freed window-sized arrays must come back without faulting in fresh pages (on a VM each fault cost ~20 us:
    # ~140 ms per 1024 px window before). Measured in a fresh interpreter: the tuning is process-wide.
    code = textwrap.dedent("""
        import resource
        import numpy as np
        from s2desktop.core.compositing.pool import _keep_freed_memory
        _keep_freed_memory()
        def window_array():
            a = np.empty(24 << 20, np.uint8)
            a.fill(1)
            return a
        a, b = window_array(), window_array()  # the arrays of one window
        del a, b
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        c = window_array()  # the next window's
        print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert int(out.stdout) < 50  # glibc's defaults: ~500 faults here (thousands with 4 KiB pages only)


def test_geotiff_named_jp2_opens_by_content(raster_stack, tmp_path):
    st = raster_stack(dates=2)
    renamed = []
    for p in st.red:
        q = p.with_suffix(".jp2")
        p.rename(q)
        renamed.append(q)
    res = composite(from_files(renamed, st.green, st.blue), tmp_path / "o.tif", workers=0)
    assert res.path.exists()


def test_cancelled_before_the_first_window_leaves_no_output(raster_stack, tmp_path):
    st = raster_stack(dates=2)
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(CancelledError, match="composite cancelled"):
        composite(from_files(st.red, st.green, st.blue), tmp_path / "o.tif", workers=0, cancel=cancel)
    assert not [p for p in tmp_path.iterdir() if p.is_file()]


COG_29RKH = "aws_tiles/l2a_cog_T29RKH_20200219_rio-tiler-pds/S2A_29RKH_20200219_0_L2A"
L2A_19UDP = "aws_tiles/l2a_T19UDP_20170729_rio-tiler-pds/tiles/19/U/DP/2017/7/29/0/R10m"


def test_quick_preview_masks_with_the_true_classes_of_a_jp2_scl(raster_stack, tmp_path):
    """At --scale 4 the 20 m SCL is read at 40 m. A JPEG 2000's reduced resolutions are wavelet averages: they
    turned cloud (9) beside vegetation (4) into 'water' (6) or 'unclassified' (7), unmasking clouds in the quick
    preview. The same classes as JP2 and as GeoTIFF must give the same composite."""
    from affine import Affine

    st = raster_stack(dates=3, size=512, scl=True)
    rng = np.random.default_rng(5)
    jp2s, tifs = [], []
    for d in range(3):  # salt-and-pepper cloud, shadow, cirrus over vegetation: every 40 m cell is mixed
        classes = rng.choice(np.array([4, 9, 3, 10, 5], dtype=np.uint8), size=(256, 256), p=[.5, .2, .1, .1, .1])
        t = Affine(20, 0, st.transform.c, 0, -20, st.transform.f)
        jp2s.append(write_band(tmp_path / f"scl{d}.jp2", classes, driver="JP2OpenJPEG", block=128, transform=t))
        tifs.append(write_band(tmp_path / f"scl{d}.tif", classes, block=128, transform=t))
    outs = {}
    for name, scl in (("jp2", jp2s), ("tif", tifs)):
        outs[name] = tmp_path / f"c_{name}.tif"
        composite(from_files(st.red, st.green, st.blue, scl=scl), outs[name], scale=4, workers=1)
    with rasterio.open(outs["jp2"]) as a, rasterio.open(outs["tif"]) as b:
        np.testing.assert_array_equal(a.read(), b.read())


def test_real_l2a_cog_with_its_scl(shared_real, tmp_path):
    """One real L2A COG date: the SCL beside it masks clouds/shadows; baseline 02.14 from the STAC item."""
    folder = shared_real / COG_29RKH
    out = tmp_path / "real.tif"
    res = composite(from_files([folder / "B04.tif"], [folder / "B03.tif"], [folder / "B02.tif"]), out, workers=0,
                    count_path=tmp_path / "n.tif")
    with rasterio.open(folder / "B04.tif") as r, rasterio.open(folder / "B03.tif") as g, \
            rasterio.open(folder / "B02.tif") as b, rasterio.open(folder / "SCL.tif") as s:
        data = np.stack([r.read(1), g.read(1), b.read(1)])
        scl = s.read(1).repeat(2, axis=0).repeat(2, axis=1)
        transform = r.transform
    valid = (data != 0).all(axis=0) & ~np.isin(scl, [0, 1, 3, 8, 9, 10])
    with rasterio.open(out) as ds:
        got = ds.read()
        assert ds.transform == transform and ds.crs.to_epsg() == 32629
        tags = ds.tags()
    np.testing.assert_array_equal(got, np.where(valid, data, 0))
    assert tags["BASELINES"] == "02.14" and tags["TILE"] == "29RKH" and tags["DATES"] == "2020-02-19"
    assert res.masked_dates == 1 and 0 < valid.mean() < 1


def test_auto_mask_ignores_an_scl_of_another_tile(shared_real, tmp_path):
    """The real L2A fixture's SCL.jp2 is from tile 01CEM: auto mode leaves it out instead of failing."""
    folder = shared_real / L2A_19UDP
    res = composite(from_files([folder / "B04.jp2"], [folder / "B03.jp2"], [folder / "B02.jp2"]),
                    tmp_path / "o.tif", workers=0)
    assert res.masked_dates == 0 and res.path.exists()


def _gdal_overviews(arr: np.ndarray, factors: list[int], path, nodata) -> list[np.ndarray]:
    """What GDAL's average overviews of `arr` are (built band by band on a raw GTiff, as the compositor used to:
    a pixel-interleaved one of more than 4 bands averages differently)."""
    from rasterio.enums import Resampling

    with rasterio.open(path, "w", driver="GTiff", width=arr.shape[-1], height=arr.shape[-2], count=arr.shape[0],
                       dtype=arr.dtype.name, nodata=nodata, tiled=True, blockxsize=512, blockysize=512,
                       interleave="band", crs=CRS.from_epsg(32633),
                       transform=from_origin(300000, 5000040, 10, 10)) as ds:
        ds.write(arr)
        ds.build_overviews(factors, Resampling.average)
    out = []
    for level in range(len(factors)):
        with rasterio.open(path, overview_level=level) as ds:
            out.append(ds.read())
    return out


def test_average_2x2_is_gdals_average_overview(tmp_path):
    rng = np.random.default_rng(3)
    rgb = rng.integers(1, 65536, (3, 64, 96)).astype(np.uint16)
    rgb[:, rng.random((64, 96)) < 0.4] = 0  # blocks with 0 to 4 valid pixels, some none
    rgb[:, :4, :] = 0
    count = rng.integers(0, 256, (1, 64, 96)).astype(np.uint8)
    from s2desktop.core.compositing.tiles import average_2x2

    np.testing.assert_array_equal(average_2x2(rgb, nodata=0), _gdal_overviews(rgb, [2], tmp_path / "a.tif", 0)[0])
    full = np.maximum(rgb, 1)  # every block whole: the path without a division
    np.testing.assert_array_equal(average_2x2(full, nodata=0), _gdal_overviews(full, [2], tmp_path / "f.tif", 0)[0])
    np.testing.assert_array_equal(average_2x2(count), _gdal_overviews(count, [2], tmp_path / "b.tif", None)[0])


@pytest.mark.parametrize("mapped", [False, True])
def test_overviews_from_the_windows_equal_gdals(raster_stack, tmp_path, monkeypatch, mapped):
    # 2100 px: overview levels 1050 and 525 (the windows' own 2 x 2 averages) and 263 (GDAL's, from 525, at a
    # fractional ratio). Every level must be what GDAL's average overviews of the full resolution are -- also
    # when the levels the parent keeps are files mapped into memory (a large area's: mapped, every level here).
    from s2desktop.core.compositing import cog
    from s2desktop.core.compositing.plan import make_plan
    from s2desktop.core.compositing.tiles import overview_factors

    through_files = []
    if mapped:
        monkeypatch.setattr(cog, "LEVEL_IN_MEMORY", 0)
        real = cog._temporary_tif
        monkeypatch.setattr(cog, "_temporary_tif", lambda beside: through_files.append(beside) or real(beside))

    st = raster_stack(dates=3, size=2100, block=256)
    out, cnt = tmp_path / "c.tif", tmp_path / "n.tif"
    args = dict(workers=2, count_path=cnt, window_size=512)
    stack = from_files(st.red, st.green, st.blue, mask="none")
    pyramid = make_plan(stack, out, **args).inputs.pyramid
    assert (pyramid.levels, pyramid.exact, pyramid.tiled, pyramid.pieces) == (4, 3, 1, (1, 2))
    composite(stack, out, **args)
    factors = overview_factors(2100, 2100)
    assert factors == [2, 4, 8]
    for path, nodata in ((out, 0), (cnt, None)):
        with rasterio.open(path) as ds:
            assert ds.overviews(1) == factors and ds.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
            full = ds.read()
        expected = _gdal_overviews(full, factors, tmp_path / f"ref-{path.name}", nodata)
        for level, exp in enumerate(expected):
            with rasterio.open(path, overview_level=level) as ds:
                np.testing.assert_array_equal(ds.read(), exp, err_msg=f"{path.name} level {level}")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporaries left
    assert len(through_files) == (2 if mapped else 0)  # the values' and the count's GDAL-built levels


def _gdal_cog(full: np.ndarray, src, path, compress: str) -> None:
    """What the compositor wrote before its windows encoded their own tiles: the full resolution in a raw
    GTiff with the output's profile, tags and descriptions, GDAL's average overviews, GDAL's COG driver."""
    from rasterio.enums import Resampling

    raw = path.with_suffix(".raw.tif")
    profile = dict(src.profile, compress=None, tiled=True, blockxsize=512, blockysize=512, interleave="band")
    if src.count == 3:
        profile["photometric"] = "RGB"
    with rasterio.open(raw, "w", **profile) as ds:
        ds.write(full)
        ds.colorinterp = src.colorinterp
        ds.update_tags(**src.tags())
        ds.descriptions = src.descriptions
        for i in src.indexes:
            ds.update_tags(i, **src.tags(i))
        if src.overviews(1):
            ds.build_overviews(src.overviews(1), Resampling.average)
    rasterio.shutil.copy(raw, path, driver="COG", compress=compress, predictor="2", level="1", blocksize="512",
                         overviews="FORCE_USE_EXISTING")


@pytest.mark.parametrize("window_size, scale, compress", [(1024, 1, "ZSTD"), (512, 4, "DEFLATE"), (128, 1, "ZSTD")])
def test_the_cog_is_what_gdals_cog_driver_makes_of_its_pixels(raster_stack, tmp_path, window_size, scale,
                                                               compress):
    # Windows of whole tiles at two levels (1024), windows of odd size with every level built in the parent
    # (scale 4: 525 px in 512 px windows), windows smaller than a tile (128: the parent tiles every level).
    from rio_cogeo.cogeo import cog_validate

    st = raster_stack(dates=3, size=2100, block=128 if window_size == 128 else 512, scl=True)
    out, cnt = tmp_path / "c.tif", tmp_path / "n.tif"
    composite(from_files(st.red, st.green, st.blue, scl=st.scl), out, count_path=cnt, workers=2,
              window_size=window_size, scale=scale, compress=compress)
    for path in (out, cnt):
        valid, errors, warnings = cog_validate(str(path), quiet=True)
        assert valid and not errors and not warnings, (errors, warnings)
        with rasterio.open(path) as ds:
            _gdal_cog(ds.read(), ds, tmp_path / f"gdal-{path.name}", compress)
            ours = dict(ds.profile, tags=ds.tags(), descriptions=ds.descriptions, colorinterp=ds.colorinterp,
                        bands=[ds.tags(i) for i in ds.indexes], overviews=ds.overviews(1),
                        structure=ds.tags(ns="IMAGE_STRUCTURE"))
        with rasterio.open(tmp_path / f"gdal-{path.name}") as ds:
            theirs = dict(ds.profile, tags=ds.tags(), descriptions=ds.descriptions, colorinterp=ds.colorinterp,
                          bands=[ds.tags(i) for i in ds.indexes], overviews=ds.overviews(1),
                          structure=ds.tags(ns="IMAGE_STRUCTURE"))
        for d in (ours["tags"], theirs["tags"]):  # tifffile writes the baseline resolution tags (1, unitless)
            for k in ("TIFFTAG_XRESOLUTION", "TIFFTAG_YRESOLUTION", "TIFFTAG_RESOLUTIONUNIT"):
                d.pop(k, None)
        assert ours == theirs
        for level in range(len(ours["overviews"])):
            with rasterio.open(path, overview_level=level) as a, \
                    rasterio.open(tmp_path / f"gdal-{path.name}", overview_level=level) as b:
                np.testing.assert_array_equal(a.read(), b.read(), err_msg=f"{path.name} level {level}")


@pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")  # the output has no grid here
@pytest.mark.parametrize("bands", [1, 2, 5])
def test_tiles_encoded_in_the_windows_read_back_in_gdal(tmp_path, bands):
    """Any number of bands: each window's tiles and pieces, spilled and assembled, read back as written, with
    GDAL's average overviews."""
    from rasterio.windows import Window

    from s2desktop.core.compositing import cog
    from s2desktop.core.compositing.tiles import Layer, Pyramid, overview_factors, window_tiles

    rng = np.random.default_rng(7)
    arr = rng.integers(1, 65535, (bands, 1100, 2060)).astype(np.uint16)
    arr[:, rng.random((1100, 2060)) < 0.3] = 0
    windows = [Window(c, r, min(1024, 2060 - c), min(1024, 1100 - r)) for r in (0, 1024) for c in (0, 1024, 2048)]
    pyramid = Pyramid.of((1100, 2060), windows, "ZSTD")
    layer = Layer("values", bands, "uint16", 0)
    temps = cog.temporaries([(layer, tmp_path / "o.tif")])
    writer = cog.CogWriter(pyramid, temps, {"values": []})
    try:
        for i, w in enumerate(reversed(windows)):  # in any order
            part = arr[:, int(w.row_off):int(w.row_off + w.height), int(w.col_off):int(w.col_off + w.width)]
            writer.add(window_tiles(i, pyramid, w, {layer: part}))
        writer.build_levels()
        writer.write_cogs()
    finally:
        writer.close()
    cog.publish(temps)
    cog.remove(temps)
    factors = overview_factors(1100, 2060)
    expected = _gdal_overviews(arr, factors, tmp_path / "ref.tif", 0)
    with rasterio.open(tmp_path / "o.tif") as ds:
        assert ds.count == bands and ds.overviews(1) == factors and ds.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
        np.testing.assert_array_equal(ds.read(), arr)
    for level, exp in enumerate(expected):
        with rasterio.open(tmp_path / "o.tif", overview_level=level) as ds:
            np.testing.assert_array_equal(ds.read(), exp, err_msg=f"level {level}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.tif", "ref.tif"]


def test_a_full_disk_is_one_line_and_leaves_nothing(raster_stack, small_disk):
    """The parent spills the windows' tiles as they arrive: a full disk there is one line naming the output,
    and the folder is left empty."""
    st = raster_stack(dates=3, size=1100)  # 7 MiB of output on a 3 MiB disk
    with pytest.raises(OutputError, match=r"^disk full while writing .*c\.tif .*; free some space") as e:
        composite(from_files(st.red, st.green, st.blue), small_disk / "c.tif", workers=2)
    assert "\n" not in str(e.value)
    assert list(small_disk.iterdir()) == []


def test_harmonise_maps_new_baseline_dns_to_the_old_scale():
    """The rule pinned by values (the compositor's reference uses this function): DN - 1000, at least 1; 0 is
    nodata and stays 0; offset 0 leaves the array as it is; other offsets are refused."""
    dn = np.array([0, 1, 999, 1000, 1001, 5000, 65535], np.uint16)
    np.testing.assert_array_equal(harmonise(dn, -1000), [0, 1, 1, 1, 1, 4000, 64535])
    assert harmonise(dn, 0) is dn and dn[5] == 5000  # the input is not changed
    with pytest.raises(InvalidInputError, match="offset 5 is not supported"):
        harmonise(dn, 5)
