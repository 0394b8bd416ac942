"""The built-in demo: its archive is a real L1C bucket layout that the normal search finds, the headless pipeline
removes its clouds, and the whole demo runs with no network at all."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rasterio

from s2desktop import headless_demo
from s2desktop.core import catalog, demo
from s2desktop.core.pipeline import SourceSpec
from s2desktop.core.progress import Progress

REPO = Path(__file__).resolve().parents[2]
SIZE = 256  # px a side: small and quick; the generator scales everything with the size


@pytest.fixture(scope="module")
def demo_home(tmp_path_factory) -> Path:
    """A per-user folder whose demo archive is already generated (at SIZE px)."""
    home = tmp_path_factory.mktemp("demo_home")
    demo.ensure_demo_archive(home / "data" / "demo-archive", size=SIZE)
    return home


@pytest.fixture
def archive(demo_home, monkeypatch) -> Path:
    monkeypatch.setenv("S2DESKTOP_HOME", str(demo_home))
    return demo_home / "data" / "demo-archive"


@pytest.fixture(scope="module")
def truth() -> list:
    return demo.demo_scenes(SIZE)


def test_demo_source_is_a_local_l1c_mirror_the_search_finds(archive, truth):
    src = SourceSpec("demo").resolve()
    assert src.name == "demo" and src.layout == "l1c" and src.is_local and not src.requester_pays
    assert Path(src.root) == archive.resolve()
    stats: dict = {}
    scenes = catalog.search(src, "T29RKH", demo.DEMO_START, demo.DEMO_END, stats=stats)
    assert [s.date for s in scenes] == list(demo.DEMO_DATES)
    assert 8 <= len(scenes) <= 12 and stats["list_requests"] < 20
    for s, t in zip(scenes, truth):
        new = s.date >= dt.date(2022, 1, 25)
        assert s.baseline == ("04.00" if new else "03.01")
        assert ("_N0400_" if new else "_N0301_") in s.product_name and "_T29RKH_" in s.product_name
        # The bucket's key layout: no zero padding, sequence folder, band files and the quick-look inside, and
        # the scene's own cloud mask in qi/ in its baseline's format (a raster from 04.00, GML polygons before).
        assert s.prefix == f"tiles/29/R/KH/{s.date.year}/{s.date.month}/{s.date.day}/0"
        mask = {"MSKCLASSI": f"{s.prefix}/qi/MSK_CLASSI_B00.jp2"} if new else {
            "MSKCLOUDS": f"{s.prefix}/qi/MSK_CLOUDS_B00.gml"}
        assert s.bands == {**{b: f"{s.prefix}/{b}.jp2" for b in ("B02", "B03", "B04")}, **mask}
        assert s.preview == f"{s.prefix}/preview.jpg" and s.metadata_key == f"{s.prefix}/tileInfo.json"
        assert s.cloud_cover == pytest.approx(t.cloud_cover, abs=0.01)
        assert s.data_coverage == pytest.approx(t.data_coverage, abs=0.01)
        assert s.data_geometry and s.data_geometry["type"] == "Polygon"
    # Dates on both sides of the baseline change, some cut by the orbit edge, cloud cover that varies.
    assert {s.baseline for s in scenes} == {"03.01", "04.00"}
    assert sum(s.data_coverage < 95 for s in scenes) >= 2 and sum(s.data_coverage == 100 for s in scenes) >= 5
    covers = [s.cloud_cover for s in scenes]
    assert max(covers) > 25 and min(covers) < 5
    # Narrow ranges and the cloud filter work as on the buckets.
    two = catalog.search(src, "29RKH", "2022-01-20", "2022-01-30")
    assert [(s.date.isoformat(), s.baseline) for s in two] == [("2022-01-22", "03.01"), ("2022-01-27", "04.00")]
    assert all(s.cloud_cover <= 10 for s in catalog.search(src, "29RKH", "2022-01-01", "2022-02-28", max_cloud=10))
    assert catalog.fetch_preview(src, scenes[0])[:3] == b"\xff\xd8\xff"


def test_band_files_are_the_generated_data_with_the_new_baseline_offset(archive, truth):
    folder = archive / "tiles/29/R/KH/2022/2/6/0"  # 04.00, with the orbit-edge wedge
    t = truth[demo.DEMO_DATES.index(dt.date(2022, 2, 6))]
    info = json.loads((folder / "tileInfo.json").read_text())
    assert info["path"] == "tiles/29/R/KH/2022/2/6/0" and info["tileOrigin"]["coordinates"] == [199980.0, 2800020.0]
    assert "EPSG:8.8.1:32629" in info["tileGeometry"]["crs"]["properties"]["name"]
    with rasterio.open(folder / "B04.jp2") as ds:
        assert ds.driver == "JP2OpenJPEG" and ds.crs.to_epsg() == 32629
        assert (ds.transform.c, ds.transform.f) == (199980.0, 2800020.0)
        assert ds.transform.a == pytest.approx(109800 / SIZE)
        b04 = ds.read(1)
    np.testing.assert_array_equal(b04, t.bands["B04"])  # lossless, deterministic
    assert (b04 == 0).sum() == (~t.valid).sum() > 0  # the wedge is nodata
    ground = demo.demo_ground(SIZE)[0]
    clear = t.valid & ~t.cloud & ~t.shadow
    diff = b04[clear].astype(int) - ground[clear]
    assert abs(np.median(diff) - 1000) <= 3  # +1000 DN on the 04.00 scale, as in reality
    old = truth[0]
    clear0 = old.valid & ~old.cloud & ~old.shadow
    assert abs(np.median(old.bands["B04"][clear0].astype(int) - demo.demo_ground(SIZE)[0][clear0])) <= 3


def test_headless_demo_removes_the_clouds(archive, truth, tmp_path):
    events: list[Progress] = []
    summary = headless_demo.run_headless_demo(tmp_path / "out", progress=events.append, workers=2, png_size=200)
    out = Path(summary["composite"])
    assert out.is_file() and out.parent == (tmp_path / "out").resolve()
    assert set(summary["baselines"]) == {"03.01", "04.00"} and set(summary["offsets"]) == {0, -1000}
    assert summary["downloaded"] == 40  # 3 bands and the scene's own cloud mask (qi/) per date
    # the job's typed events, stage by stage, in order; each stage ends complete
    stages = [e.stage for e in events]
    assert sorted(set(stages) - {"plan"}, key=stages.index) == ["search", "download", "composite", "render"]
    plans = [e.message for e in events if e.stage == "plan"]  # every demo scene carries its L1C cloud mask
    assert not any("without a cloud mask" in m for m in plans), plans
    last = {e.stage: e for e in events}
    assert last["download"].items_done == last["download"].items_total == 40
    assert last["download"].bytes_done == last["download"].bytes_total > 0
    assert last["composite"].items_done == last["composite"].items_total > 0
    assert set(summary["seconds"]) >= {"search", "download", "composite", "render"}
    for name in ("red", "green", "blue"):
        assert len(list((tmp_path / "out" / name).glob("29RKH_2022-*_0_B0*.jp2"))) == 10
    with rasterio.open(out) as ds:
        assert ds.crs.to_epsg() == 32629 and ds.count == 3 and ds.nodata == 0
        comp = ds.read().astype(np.int32)
    ground = demo.demo_ground(SIZE).astype(np.int32)
    err = np.abs(comp - ground).max(axis=0)
    assert (comp > 0).all()  # every pixel has clear observations
    # Every pixel is the cloud-free ground (up to the generator's sensor noise) ...
    assert np.percentile(err, 99) <= 25 and err.max() <= 80
    # ... including where the cloudiest date was cloudy, which on its own is far off.
    cloudiest = max(truth, key=lambda s: s.cloud_cover)
    offset = 1000 if cloudiest.baseline == "04.00" else 0
    raw = cloudiest.bands["B02"].astype(np.int32) - offset
    assert cloudiest.cloud.mean() > 0.25
    assert np.median(np.abs(raw - ground[2])[cloudiest.cloud]) > 2000
    assert np.abs(comp[2] - ground[2])[cloudiest.cloud].max() <= 80
    from PIL import Image

    for key in ("png", "cloudiest_png"):
        with Image.open(summary[key]) as png:
            assert png.format == "PNG" and max(png.size) == 200
    # A second run reuses the downloads.
    again = headless_demo.run_headless_demo(tmp_path / "out", progress=None, workers=1, png_size=64)
    assert again["downloaded"] == 0 and again["skipped"] == 40


def _one_cloudy_date(truth, baseline: str) -> tuple[int, tuple[int, int]]:
    """(date index, pixel): a pixel inside every date's swath, cloudy on exactly one date -- of ``baseline`` --
    and away from any shadow, its cloud's core (not an edge) so the mask and the DNs agree."""
    cloudy = np.sum([t.cloud for t in truth], axis=0)
    for i, t in enumerate(truth):
        if t.baseline != baseline:
            continue
        core = t.cloud & (cloudy == 1) & np.all([u.valid & ~u.shadow for u in truth], axis=0)
        core[:8], core[-8:], core[:, :8], core[:, -8:] = False, False, False, False
        rows, cols = np.nonzero(core)
        if rows.size:
            k = rows.size // 2
            return i, (int(rows[k]), int(cols[k]))
    raise AssertionError(f"no pixel cloudy on one {baseline} date only")


def test_the_demo_composite_leaves_out_each_dates_own_cloud_mask(archive, truth, tmp_path):
    """Each date's clouds are masked by its L1C mask (GML before 04.00, MSK_CLASSI from 04.00): the count layer
    is every pixel's clear dates, and explain names the masked date and its QI class."""
    from s2desktop.core.explain import Reason, explain

    summary = headless_demo.run_headless_demo(tmp_path / "out", workers=2, png_size=64)
    out = Path(summary["composite"])
    with rasterio.open(out.with_name(out.stem + "_count.tif")) as ds:
        count = ds.read(1).astype(int)
    clear = np.sum([t.valid & ~t.cloud for t in truth], axis=0)
    np.testing.assert_array_equal(count, clear)  # a cloudy pixel counts nowhere, a clear one everywhere
    ground = demo.demo_ground(SIZE).astype(int)
    for baseline, kind in (("03.01", "MSKCLOUDS"), ("04.00", "MSKCLASSI")):
        i, (row, col) = _one_cloudy_date(truth, baseline)
        why = explain(out, pixel=(row, col))
        assert [d.date for d in why.dates] == [t.date.isoformat() for t in truth]
        cloudy = why.dates[i]
        assert Reason.MASKED in cloudy.reason and Reason.USED not in cloudy.reason
        assert (cloudy.mask, cloudy.mask_class) == (kind, "opaque clouds")
        assert cloudy.values[2] - ground[2, row, col] > 1000  # it was the cloud, bright in blue
        assert all(Reason.USED in d.reason for k, d in enumerate(why.dates) if k != i)
        assert why.used == why.count == len(truth) - 1
        assert np.abs(np.array(why.value) - ground[:, row, col]).max() <= 25  # the ground, not the cloud


def test_interrupted_generation_leaves_no_archive(tmp_path):
    root = tmp_path / "data" / "demo-archive"
    seen: list[Progress] = []

    def interrupt(event: Progress) -> None:
        seen.append(event)
        if len(seen) == 4:  # after a few scenes are on disk
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        demo.ensure_demo_archive(root, size=64, progress=interrupt)
    assert not root.exists() and list(root.parent.iterdir()) == []


def test_old_archive_is_regenerated(tmp_path):
    root = tmp_path / "demo-archive"
    demo.ensure_demo_archive(root, size=64)
    marker = root / demo.MARKER
    doc = json.loads(marker.read_text())
    assert doc["version"] == demo.DEMO_VERSION and doc["size"] == 64
    stray = root / "tiles" / "29" / "R" / "KH" / "1999"
    stray.mkdir()  # something an old generator left
    masks = sorted(root.glob("tiles/**/qi/MSK_*"))
    assert len(masks) == len(demo.DEMO_DATES)
    for path in masks:  # version 1 wrote no L1C cloud masks
        path.unlink()
    marker.write_text(json.dumps({**doc, "version": demo.DEMO_VERSION - 1}))
    demo.ensure_demo_archive(root)
    assert json.loads(marker.read_text())["version"] == demo.DEMO_VERSION
    assert not stray.exists() and [p.name for p in tmp_path.iterdir()] == ["demo-archive"]
    assert sorted(root.glob("tiles/**/qi/MSK_*")) == masks  # the regenerated archive has them
    # A current archive is reused as it is.
    before = marker.stat().st_mtime_ns
    assert demo.ensure_demo_archive(root) == root and marker.stat().st_mtime_ns == before


def _offline_prefix() -> list[str]:
    """`unshare -rn` (a network namespace with no interfaces) where the kernel allows it, else nothing."""
    if sys.platform.startswith("linux") and shutil.which("unshare"):
        try:
            if subprocess.run(["unshare", "-rn", "true"], capture_output=True, timeout=10).returncode == 0:
                return ["unshare", "-rn"]
        except (OSError, subprocess.TimeoutExpired):
            pass
    return []


def test_demo_command_works_without_network_or_display(demo_home, tmp_path):
    env = {k: v for k, v in os.environ.items()
           if not k.upper().startswith(("AWS_", "HTTP", "NO_PROXY", "ALL_PROXY"))
           and k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    unroutable = "http://127.0.0.1:9"  # the discard port: any attempt to go through it fails at once
    env.update(S2DESKTOP_HOME=str(demo_home), AWS_EC2_METADATA_DISABLED="true", HTTP_PROXY=unroutable,
               HTTPS_PROXY=unroutable, http_proxy=unroutable, https_proxy=unroutable,
               AWS_CONFIG_FILE=str(tmp_path / "none"), AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"))
    out = tmp_path / "out"
    cmd = _offline_prefix() + [sys.executable, "-m", "s2desktop", "demo", "--out", str(out), "--workers", "2",
                               "--json"]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "no display" in proc.stderr  # no DISPLAY: the headless pipeline, without being asked
    summary = json.loads(proc.stdout)
    assert Path(summary["composite"]).is_file() and Path(summary["png"]).is_file()
    assert summary["archive"] == str((demo_home / "data" / "demo-archive").resolve())
    assert len(summary["scenes"]) == len(demo.DEMO_DATES)


# the demo's tile lies west of Greenwich: an area over it starts with a negative number, written as anyone writes it
WEST_BOX = "-11.6,24.6,-11.2,25"


@pytest.mark.parametrize("spelling", [["--bbox", WEST_BOX], [f"--bbox={WEST_BOX}"]])
def test_search_takes_a_bbox_west_of_greenwich_as_written(archive, capsys, spelling):
    from s2desktop.cli import main

    code = main(["search", *spelling, "--source", "demo", "--start", "2022-01-01", "--end", "2022-02-28", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    rows = json.loads(out)
    assert [r["date"] for r in rows] == [d.isoformat() for d in demo.DEMO_DATES]
    assert {r["tile"] for r in rows} >= {"29RKH"}


def test_composite_takes_a_bbox_west_of_greenwich_as_written(archive, tmp_path, capsys):
    from s2desktop.cli import main

    out = tmp_path / "west.tif"
    code = main(["composite", "--bbox", WEST_BOX, "--source", "demo", "--start", "2022-01-01", "--end", "2022-01-12",
                 "--resolution", "1000", "--workers", "0", "--out-dir", str(tmp_path / "dl"), "-o", str(out)])
    err = capsys.readouterr().err
    assert code == 0, err
    with rasterio.open(out) as ds:
        w, s, e, n = rasterio.warp.transform_bounds(ds.crs, "EPSG:4326", *ds.bounds)
    assert w == pytest.approx(-11.6, abs=0.02) and n == pytest.approx(25.0, abs=0.02)


def test_a_bbox_missing_its_value_is_still_one_line(capsys):
    from s2desktop.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["search", "--bbox", "--start", "2022-01-01", "--end", "2022-01-02"])
    assert exc.value.code == 2 and "--bbox: expected one argument" in capsys.readouterr().err


def test_an_area_composite_without_resolution_takes_the_finest_the_scenes_have(archive, tmp_path, capsys):
    """The demo's data is 100 m: an area composite of it is at the data's own pixel size unless --resolution says
    otherwise (it was upsampled to 10 m, 100x the pixels)."""
    from s2desktop.cli import main

    out = tmp_path / "native.tif"
    code = main(["composite", "--bbox", WEST_BOX, "--source", "demo", "--start", "2022-01-01", "--end", "2022-01-07",
                 "--workers", "0", "--out-dir", str(tmp_path / "dl"), "-o", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    red = next(archive.rglob("B04.jp2"))
    with rasterio.open(red) as ds:
        native = ds.res[0]  # 100 m for the real demo; coarser for the tests' smaller archive
    with rasterio.open(out) as ds:
        assert ds.res == pytest.approx((native, native)) and native > 10
