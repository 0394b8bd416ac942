"""`s2desktop composite | info | thumbnail` end to end: exit codes, one-line errors, files left behind."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
import rasterio
from PIL import Image

from s2desktop.cli import main

REPO = Path(__file__).resolve().parents[2]
JGF = "aws_tiles/l1c_T55JGF_20180617_N0206/tiles/55/J/GF/2018/6/17/0"
UDP = "aws_tiles/l1c_T19UDP_20170729_N0205_rio-tiler-pds/tiles/19/U/DP/2017/7/29/0"


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_info_text_and_json(capsys, shared_real):
    code, out, _ = run(capsys, "info", shared_real / JGF / "B04.jp2")
    assert code == 0 and "EPSG:32755" in out and "JP2OpenJPEG" in out and "699960" in out
    code, out, _ = run(capsys, "info", "--json", shared_real / UDP / "B04.jp2")
    d = json.loads(out)
    assert code == 0 and d["driver"] == "GTiff" and d["crs_epsg"] == 32619
    code, _, err = run(capsys, "info", shared_real / "MANIFEST.md")
    assert code == 2 and err.startswith("s2desktop: error: ") and "MANIFEST.md" in err and err.count("\n") == 1


def test_thumbnail_png(capsys, shared_real, tmp_path):
    out = tmp_path / "t.png"
    code, _, _ = run(capsys, "thumbnail", shared_real / JGF / "B04.jp2", "--size", 64, "-o", out)
    assert code == 0
    im = Image.open(out)
    assert im.mode == "RGBA" and im.size == (64, 64)
    assert np.asarray(im)[..., 3].min() == 0  # nodata transparent
    code, _, err = run(capsys, "thumbnail", shared_real / JGF / "B04.jp2", "-o", out)
    assert code == 2 and "already exists" in err
    code, _, err = run(capsys, "thumbnail", shared_real / JGF / "B04.jp2", "-o", out, "--overwrite",
                       "--bands", "1,2")
    assert code == 2 and "1 band" in err


def test_composite_dry_run_of_files_prints_the_plan_and_writes_nothing(capsys, raster_stack, tmp_path):
    st = raster_stack(dates=4, size=1100, block=256)
    out = tmp_path / "c.tif"
    code, stdout, err = run(capsys, "composite", "--red", *st.red, "--green", *st.green, "--blue", *st.blue,
                            "-o", out, "--workers", 2, "--count", tmp_path / "n.tif", "--dry-run")
    assert code == 0, err
    lines = stdout.splitlines()
    assert lines[1] == "fetch: nothing (local files)"
    assert lines[2].startswith("output: 1100 x 1100 px, 3 band(s) from 4 date(s), 3 level(s) (2 overview(s))")
    # 1024 px windows of 256 px blocks: 2 x 2 of them; 4 in flight; full resolution and the first overview
    # level tiled in the windows
    assert lines[3].startswith("windows: 4 task(s) of up to 1024 x 1024 px, 4 in flight on 2 worker(s); "
                               "the windows encode 2 level(s), the parent builds 1")
    per_worker = (3 * 4 * 2 + 4 + 5 * 2) * 1024 * 1024  # the stack, validity and keys of the largest window
    assert lines[4].startswith("memory: ") and float(lines[4].split()[1]) * 2 ** 20 > per_worker + (64 << 20)
    assert list(tmp_path.iterdir()) == [tmp_path / "stack0"]


def test_composite_files_mode(capsys, raster_stack, tmp_path):
    st = raster_stack(dates=3, baselines=["02.09", "04.00", "04.00"])
    out, cnt = tmp_path / "c.tif", tmp_path / "n.tif"
    code, stdout, err = run(capsys, "composite", "--red", *st.red, "--green", *st.green, "--blue", *st.blue,
                            "-o", out, "--workers", 2, "--count", cnt)
    assert code == 0, err
    assert "composite: 1/1 (100%)" in err and "wrote" in stdout
    with rasterio.open(out) as ds:
        assert ds.compression.value == "ZSTD" and ds.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
        assert ds.count == 3 and ds.tags()["OFFSETS_RED"] == "0,-1000,-1000"
    assert cnt.exists()
    # exists without --overwrite; then --scale 4 with --overwrite
    code, _, err = run(capsys, "composite", "--red", *st.red, "--green", *st.green, "--blue", *st.blue,
                       "-o", out)
    assert code == 2 and "already exists" in err
    code, _, err = run(capsys, "composite", "--red", *st.red, "--green", *st.green, "--blue", *st.blue,
                       "-o", out, "--overwrite", "--scale", 4, "--workers", 1, "--offset", 0, "--compress", "deflate")
    assert code == 0, err
    with rasterio.open(out) as ds:
        assert (ds.width, ds.height) == (75, 75)
        assert ds.compression.value == "DEFLATE" and ds.tags(ns="IMAGE_STRUCTURE")["PREDICTOR"] == "2"
        assert ds.tags()["OFFSETS_RED"] == "0,-1000,-1000"  # the scene metadata wins over --offset


def test_composite_errors_are_one_line(capsys, raster_stack, tmp_path):
    st = raster_stack(dates=2)
    code, _, err = run(capsys, "composite", "-o", tmp_path / "o.tif")
    assert code == 2 and "no inputs" in err
    code, _, err = run(capsys, "composite", "--red", *st.red, "--green", st.green[0], "--blue", *st.blue,
                       "-o", tmp_path / "o.tif")
    assert code == 2 and "different numbers of dates" in err and err.count("\n") == 1
    code, _, err = run(capsys, "composite", "--red", *st.red, "--green", *st.green, "--blue", *st.blue,
                       "-o", tmp_path / "missing" / "o.tif")
    assert code == 2 and "does not exist" in err
    code, _, err = run(capsys, "composite", "--red", *st.red, "--green", *st.green, "--blue", *st.blue,
                       "--offset", 0, 0, 0, "-o", tmp_path / "o.tif")
    assert code == 2 and "3 offsets given for 2 date(s)" in err
    assert not (tmp_path / "o.tif").exists()


def test_ctrl_c_leaves_no_output_and_no_workers(raster_stack, tmp_path):
    st = raster_stack(dates=4, size=1536, block=256, driver="GTiff")
    out = tmp_path / "c.tif"
    cmd = [sys.executable, "-m", "s2desktop", "composite", "--red", *map(str, st.red), "--green",
           *map(str, st.green), "--blue", *map(str, st.blue), "-o", str(out), "--workers", "2", "--scale", "1"]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.PIPE, env=env, cwd=REPO,
                            text=True)
    ps = psutil.Process(proc.pid)
    # wait until the pool is up (the worker processes exist), then press Ctrl-C
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        kids = [k for k in ps.children(recursive=True) if "resource_tracker" not in " ".join(k.cmdline())]
        if len(kids) >= 2:
            break
        time.sleep(0.05)
    if proc.poll() is not None:
        pytest.skip("the composite finished before it could be interrupted")
    kids = ps.children(recursive=True)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode in (130, 0), err
    if proc.returncode == 0:
        pytest.skip("the composite finished before the signal arrived")
    assert "cancelled" in err
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.is_file()]
    gone, alive = psutil.wait_procs(kids, timeout=10)
    assert not alive


def _local_l2a_archive(root: Path):
    """Three L2A scenes of 33UUP (mixed baselines, SCL) in the bucket layout, via the S3 helper's writer."""
    archive = pytest.importorskip("s2desktop.core.archive")
    from rasterio.transform import from_origin

    from tests.fixtures_rasters import synthetic_bands

    data = synthetic_bands(3, 256, seed=4)
    for d, (date, baseline) in enumerate([("2023-07-01", "05.09"), ("2023-07-11", "02.09"),
                                          ("2023-07-21", "05.09")]):
        scl = np.full((128, 128), 4, np.uint8)
        scl[:20, :20] = 9
        archive.write_scene(root, "l2a", "33UUP", date, 0,
                            {"B04": data[0, d], "B03": data[1, d], "B02": data[2, d]},
                            crs="EPSG:32633", transform=from_origin(300000, 5000040, 10, 10), baseline=baseline,
                            scl=scl)


def test_composite_tile_mode_local_source(capsys, tmp_path):
    pytest.importorskip("s2desktop.core.download")
    pytest.importorskip("s2desktop.core.catalog")
    src = tmp_path / "mirror"
    _local_l2a_archive(src)
    out = tmp_path / "tile.tif"
    code, stdout, err = run(capsys, "composite", "--tile", "T33UUP", "--start", "2023-07-01", "--end",
                            "2023-07-31", "--source", src, "--out-dir", tmp_path / "dl", "-o", out, "--workers", 1)
    assert code == 0, err
    with rasterio.open(out) as ds:
        tags = ds.tags()
        assert tags["TILE"] == "33UUP" and tags["DATE_COUNT"] == "3"
        assert tags["BASELINES"] == "05.09,02.09,05.09" and tags["OFFSETS_RED"] == "-1000,0,-1000"
        assert "on 3 date(s)" in tags["MASK"]
        red = ds.read(1)
    assert (red[:40, :40] == 0).all()  # SCL cloud (class 9) on every date -> no valid observation
    assert (red[60:120, 60:120] != 0).mean() > 0.95


def test_info_and_thumbnail_of_a_picture_without_georeferencing_print_no_python_warning(capsys, shared_real,
                                                                                       tmp_path):
    # L1C's preview.jpg has no CRS or transform: `info` says "CRS: none"; rasterio's NotGeoreferencedWarning
    # (a Python warning with a site-packages path on stderr) is noise on the command line.
    import warnings

    from rasterio.errors import NotGeoreferencedWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code, out, _ = run(capsys, "info", shared_real / UDP / "preview.jpg")
        assert code == 0 and "CRS:           none" in out
        code, _, _ = run(capsys, "thumbnail", shared_real / UDP / "preview.jpg", "-o", tmp_path / "p.png")
        assert code == 0
    assert not [w for w in caught if issubclass(w.category, NotGeoreferencedWarning)]


def test_download_folder_that_is_a_file_is_a_one_line_error_before_any_work(capsys, tmp_path):
    src = tmp_path / "mirror"
    _local_l2a_archive(src)
    afile = tmp_path / "afile"
    afile.write_text("not a folder")
    q = ["--tile", "33UUP", "--start", "2023-07-01", "--end", "2023-07-31", "--source", src]
    for out_dir in (afile, afile / "sub"):
        code, _, err = run(capsys, "composite", *q, "--out-dir", out_dir, "-o", tmp_path / "c.tif")
        assert code == 2 and err.startswith("s2desktop: error: ") and err.count("\n") == 1, err
        assert str(out_dir) in err
        code, _, err = run(capsys, "download", *q, "--out", out_dir)
        assert code == 2 and err.count("\n") == 1 and str(out_dir) in err and "downloading" not in err, err
    assert afile.read_text() == "not a folder" and not (tmp_path / "c.tif").exists()


# --- --method and --date-band ----------------------------------------------------------------------------------


def test_composite_method_quantile_and_medoid_with_its_date_band(capsys, raster_stack, tmp_path):
    from s2desktop.core.compositing import harmonise
    from tests.core.test_medoids import reference_medoid
    from tests.core.test_rules import reference_quantile

    st = raster_stack(dates=3, baselines=["02.09", "04.00", "04.00"])
    data = np.stack([np.stack([harmonise(st.data[b, d], [0, -1000, -1000][d]) for d in range(3)])
                     for b in range(3)])
    valid = (data != 0).all(axis=0)
    files = ["--red", *st.red, "--green", *st.green, "--blue", *st.blue]
    q = tmp_path / "q.tif"
    code, stdout, err = run(capsys, "composite", *files, "-o", q, "--method", "quantile:25", "--workers", 2)
    assert code == 0, err
    assert "quantile:25" in stdout
    with rasterio.open(q) as ds:
        np.testing.assert_array_equal(ds.read(), reference_quantile(data, valid, 25))
        assert ds.tags()["METHOD"] == "quantile:25"
    m, d = tmp_path / "m.tif", tmp_path / "m_dates.tif"
    code, stdout, err = run(capsys, "composite", *files, "-o", m, "--method", "medoid", "--date-band", d)
    assert code == 0, err
    assert f"and {d}" in stdout
    ref, chosen = reference_medoid(data, valid)
    epoch_days = np.array([(np.datetime64(f"2023-07-0{i + 1}") - np.datetime64("1970-01-01")).astype(int)
                           for i in range(3)])
    with rasterio.open(m) as ds, rasterio.open(d) as dd:
        np.testing.assert_array_equal(ds.read(), ref)
        days = dd.read(1)
    np.testing.assert_array_equal(days, np.where(valid.any(axis=0), epoch_days[chosen], 0))


def test_composite_method_errors_are_one_line_before_any_work(capsys, raster_stack, tmp_path):
    st = raster_stack(dates=2)
    files = ["--red", *st.red, "--green", *st.green, "--blue", *st.blue, "-o", tmp_path / "o.tif"]
    for extra, words in [(["--method", "quantile:120"], "quantile:120: the percent must be a whole number from 0 "
                                                        "to 100"),
                         (["--method", "quantile"], "give quantile:P"),
                         (["--method", "mode"], "'mode' is not one of median, quantile:P, medoid, geomedian"),
                         (["--date-band", tmp_path / "d.tif"], "--date-band needs --method medoid"),
                         (["--method", "geomedian", "--date-band", tmp_path / "d.tif"], "geomedian mixes")]:
        code, _, err = run(capsys, "composite", *files, *extra)
        assert code == 2 and words in err and err.count("\n") == 1, err
    (tmp_path / "d.tif").write_bytes(b"mine")
    code, _, err = run(capsys, "composite", *files, "--method", "medoid", "--date-band", tmp_path / "d.tif")
    assert code == 2 and "already exists" in err
    assert (tmp_path / "d.tif").read_bytes() == b"mine" and not (tmp_path / "o.tif").exists()


def test_composite_method_in_tile_mode(capsys, tmp_path):
    pytest.importorskip("s2desktop.core.download")
    src = tmp_path / "mirror"
    _local_l2a_archive(src)
    scene_days = {(np.datetime64(d) - np.datetime64("1970-01-01")).astype(int)
                  for d in ("2023-07-01", "2023-07-11", "2023-07-21")}
    common = ["--start", "2023-07-01", "--end", "2023-07-31", "--source", src, "--workers", 1]
    out, dates = tmp_path / "tile.tif", tmp_path / "tile_dates.tif"
    code, _, err = run(capsys, "composite", "--tile", "33UUP", *common, "--out-dir", tmp_path / "dl", "-o", out,
                       "--method", "medoid", "--date-band", dates)
    assert code == 0, err
    with rasterio.open(out) as ds, rasterio.open(dates) as dd:
        assert ds.tags()["METHOD"] == "medoid"
        rgb, days = ds.read(), dd.read(1)
    assert set(np.unique(days).tolist()) <= scene_days | {0} and len(set(np.unique(days).tolist()) - {0}) > 1
    assert ((days == 0) == (rgb[0] == 0)).all() and (days[:40, :40] == 0).all()  # clouds on every date


def test_composite_method_in_area_mode(capsys, tmp_path):
    from affine import Affine
    from rasterio.warp import transform_bounds

    from s2desktop.core import archive
    from tests.fixtures_rasters import synthetic_bands

    src, n = tmp_path / "mirror", 128
    grid = Affine(109800 / n, 0, 300000, 0, -109800 / n, 5300040)  # the real 33UUP at 858 m
    data = synthetic_bands(3, n, seed=5)
    for d, date in enumerate(("2023-07-01", "2023-07-11", "2023-07-21")):
        archive.write_scene(src, "l2a", "33UUP", date, 0, {"B04": data[0, d], "B03": data[1, d], "B02": data[2, d]},
                            crs="EPSG:32633", transform=grid, baseline="05.09")
    left, top = grid * (20, 1)  # inside 33UUP alone
    right, bottom = grid * (60, 8)
    w, s, e, n_ = transform_bounds("EPSG:32633", "EPSG:4326", left, bottom, right, top)
    area, dates = tmp_path / "area.tif", tmp_path / "area_dates.tif"
    code, _, err = run(capsys, "composite", "--bbox", f"{w:.6f},{s:.6f},{e:.6f},{n_:.6f}", "--start", "2023-07-01",
                       "--end", "2023-07-31", "--source", src, "--workers", 1, "--out-dir", tmp_path / "dl",
                       "--resolution", 1000, "-o", area, "--method", "medoid", "--date-band", dates)
    assert code == 0, err
    with rasterio.open(area) as ds, rasterio.open(dates) as dd:
        assert ds.tags()["METHOD"] == "medoid" and ds.read(1).any()
        days = dd.read(1)
    scene_days = {(np.datetime64(d) - np.datetime64("1970-01-01")).astype(int)
                  for d in ("2023-07-01", "2023-07-11", "2023-07-21")}
    assert set(np.unique(days).tolist()) <= scene_days | {0} and (days != 0).any()
    # the flag alone: beside the output
    code, stdout, err = run(capsys, "composite", "--bbox", f"{w:.6f},{s:.6f},{e:.6f},{n_:.6f}", "--start",
                            "2023-07-01", "--end", "2023-07-31", "--source", src, "--workers", 0, "--out-dir",
                            tmp_path / "dl", "--resolution", 1000, "-o", tmp_path / "b.tif", "--method", "medoid",
                            "--date-band")
    assert code == 0, err
    assert f"and {tmp_path / 'b_dates.tif'}" in stdout
    with rasterio.open(tmp_path / "b_dates.tif") as dd:
        np.testing.assert_array_equal(dd.read(1), days)


def _near(mask: np.ndarray, pixels: int) -> np.ndarray:
    """Pixels whose centre lies within ``pixels`` of a True one's: by distances, no dilation code."""
    ys, xs = np.nonzero(mask)
    yy, xx = np.mgrid[0:mask.shape[0], 0:mask.shape[1]]
    d2 = (yy[..., None] - ys) ** 2 + (xx[..., None] - xs) ** 2
    return (d2 <= pixels * pixels).any(axis=-1) if ys.size else mask.copy()


def test_composite_mask_classes_and_buffer(capsys, raster_stack, tmp_path):
    st = raster_stack(dates=3, size=100, scl=True)
    out, cnt = tmp_path / "c.tif", tmp_path / "n.tif"
    code, _, err = run(capsys, "composite", "--red", *st.red, "--green", *st.green, "--blue", *st.blue, "-o", out,
                       "--count", cnt, "--workers", 0, "--mask-classes", "cloud-shadow,9", "--mask-buffer", 20)
    assert code == 0, err
    valid = (st.data != 0).all(axis=0)
    for d in range(3):
        scl = st.scl_data[d].repeat(2, axis=0).repeat(2, axis=1)
        valid[d] &= ~_near(np.isin(scl, [3, 9]), 2)
    with rasterio.open(out) as ds, rasterio.open(cnt) as n:
        np.testing.assert_array_equal(n.read(1), valid.sum(axis=0))
        tags = ds.tags()
    assert tags["MASK_CLASSES"] == "3 cloud-shadow, 9 cloud-high" and tags["MASK_BUFFER"].startswith("20 m")


@pytest.mark.parametrize("extra, says", [
    (["--mask-classes", "3,clouds"], "'clouds' is not an SCL class"),
    (["--mask-classes", "3", "--mask", "qi"], "not with --mask qi"),
    (["--mask-buffer", "20", "--mask", "none"], "not with --mask none"),
    (["--mask-buffer", "-5"], "mask buffer -5 m"),
])
def test_composite_bad_mask_rules_are_one_line_errors(capsys, raster_stack, tmp_path, extra, says):
    st = raster_stack(dates=2, size=64)
    out = tmp_path / "c.tif"
    code, _, err = run(capsys, "composite", "--red", *st.red, "--green", *st.green, "--blue", *st.blue, "-o", out,
                       *extra)
    assert code == 2 and says in err and err.count("\n") == 1 and not out.exists()
