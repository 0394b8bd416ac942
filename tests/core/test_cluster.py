"""The windows on a Dask cluster: a real `distributed.LocalCluster` of 2 worker processes x 1 thread."""

from __future__ import annotations

import os
import signal
import sys
import time
from dataclasses import replace

import numpy as np
import pytest
import rasterio

from s2desktop.core.compositing import composite
from s2desktop.core.errors import CancelledError, InvalidInputError
from s2desktop.core.pipeline import CompositeOptions, Job, run_composite
from s2desktop.core.progress import CancelToken
from s2desktop.core.stack import from_files
from tests.core.test_pipeline import _request

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as c, distributed.Client(c) as client:
        yield c, client


def _levels(path) -> list[np.ndarray]:
    with rasterio.open(path) as ds:
        levels = [ds.read()] + [None] * len(ds.overviews(1))
    for i in range(1, len(levels)):
        with rasterio.open(path, overview_level=i - 1) as ds:
            levels[i] = ds.read()
    return levels


def _same_output(a, b) -> None:
    """Pixels of every level, tags (but the time it was made), descriptions and layout alike."""
    for x, y in zip(_levels(a), _levels(b), strict=True):
        np.testing.assert_array_equal(x, y)
    with rasterio.open(a) as da, rasterio.open(b) as db:
        ta, tb = da.tags(), db.tags()
        ta.pop("CREATED", None), tb.pop("CREATED", None)
        assert ta == tb and da.descriptions == db.descriptions and da.profile == db.profile
        assert db.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"


def _scheduler_tasks(client) -> int:
    return client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks))


def test_an_l2a_tile_on_the_cluster_is_the_pools(seeded_s3, tmp_path, cluster):
    c, _client = cluster
    pool_out, pool_count = tmp_path / "pool.tif", tmp_path / "pool_n.tif"
    options = CompositeOptions(str(pool_out), workers=2, count_path=str(pool_count), window_size=128)
    result = Job(_request(seeded_s3, "l2a", tmp_path, composite=options)).run()
    assert result.composite.windows >= 1 and result.inputs.masked == 3  # its JP2s: one block, one window
    seen = []
    on_cluster = replace(options, output=str(tmp_path / "dask.tif"), count_path=str(tmp_path / "dask_n.tif"),
                         scheduler=c.scheduler_address)
    run_composite(result.inputs, on_cluster, progress=seen.append)
    _same_output(pool_out, tmp_path / "dask.tif")
    _same_output(pool_count, tmp_path / "dask_n.tif")
    assert [e.items_done for e in seen if not e.message] == list(range(result.composite.windows + 1))
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == [  # and each one's provenance record
        "dask.json", "dask.tif", "dask_n.tif", "pool.json", "pool.tif", "pool_n.tif"]


def test_cancel_leaves_no_output_and_no_task_on_the_cluster(raster_stack, tmp_path, cluster):
    c, client = cluster
    st = raster_stack(dates=3, size=1100, block=128)
    cancel = CancelToken()

    def progress(e):
        if e.items_done >= 2:
            cancel.set()

    out = tmp_path / "out" / "c.tif"
    out.parent.mkdir()
    with pytest.raises(CancelledError):
        composite(from_files(st.red, st.green, st.blue), out, count_path=out.with_name("n.tif"), window_size=128,
                  scheduler=c.scheduler_address, progress=progress, cancel=cancel)
    assert list(out.parent.iterdir()) == []
    deadline = time.monotonic() + 20
    while _scheduler_tasks(client) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _scheduler_tasks(client) == 0
    assert not any(client.processing().values())


def test_a_worker_killed_mid_job_still_gives_the_whole_output(raster_stack, tmp_path, cluster):
    c, client = cluster
    st = raster_stack(dates=3, size=1100, block=128)
    stack = from_files(st.red, st.green, st.blue)
    composite(stack, tmp_path / "pool.tif", workers=2, window_size=128)
    pids = list(client.run(os.getpid).values())
    killed = []

    def progress(e):
        if e.items_done == 3 and not killed:
            os.kill(pids[0], signal.SIGKILL)  # the nanny starts another; its windows run elsewhere
            killed.append(pids[0])

    composite(stack, tmp_path / "dask.tif", window_size=128, scheduler=c.scheduler_address, progress=progress)
    assert killed
    _same_output(tmp_path / "pool.tif", tmp_path / "dask.tif")
    client.wait_for_workers(2, timeout=60)


def test_a_local_cluster_started_for_the_job(raster_stack, tmp_path):
    st = raster_stack(dates=3, size=300, block=128)
    stack = from_files(st.red, st.green, st.blue)
    composite(stack, tmp_path / "pool.tif", workers=2, window_size=128)
    composite(stack, tmp_path / "local.tif", workers=2, window_size=128, scheduler="local")
    _same_output(tmp_path / "pool.tif", tmp_path / "local.tif")


def test_without_dask_a_scheduler_says_what_to_install(raster_stack, tmp_path, monkeypatch):
    st = raster_stack(dates=2, size=100, block=64)
    stack = from_files(st.red, st.green, st.blue)
    with pytest.raises(InvalidInputError, match=r"^scheduler 'localhost:8786': give 'local' or an address"):
        composite(stack, tmp_path / "c.tif", scheduler="localhost:8786")
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if not installed: importing it fails
    with pytest.raises(InvalidInputError, match=r"^a Dask scheduler needs dask.distributed: pip install "
                                                r"'s2desktop\[dask\]'$"):
        composite(stack, tmp_path / "c.tif", scheduler="tcp://127.0.0.1:8786")
    assert list(tmp_path.glob("*.tif")) == []


def test_the_command_line_takes_the_scheduler_from_the_environment(raster_stack, tmp_path, monkeypatch, capsys,
                                                                    cluster):
    from s2desktop.cli import main

    c, _client = cluster
    st = raster_stack(dates=2, size=300, block=128)
    monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", c.scheduler_address)
    args = ["composite", "--red", *map(str, st.red), "--green", *map(str, st.green), "--blue", *map(str, st.blue),
            "-o", str(tmp_path / "c.tif")]
    assert main(args) == 0
    assert (tmp_path / "c.tif").exists()
    monkeypatch.setitem(sys.modules, "distributed", None)
    assert main([*args[:-1], str(tmp_path / "d.tif")]) != 0
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "pip install 's2desktop[dask]'" in err and not (tmp_path / "d.tif").exists()


def test_an_input_a_worker_cannot_read_is_one_line_naming_it_and_the_worker(raster_stack, tmp_path, cluster):
    from s2desktop.core.compositing.cluster import run_on_cluster
    from s2desktop.core.compositing.plan import make_plan
    from s2desktop.core.compositing.window import _process_window_on_cluster
    from s2desktop.core.errors import NotFoundError

    c, client = cluster
    st = raster_stack(dates=2, size=300, block=128)
    plan = make_plan(from_files(st.red, st.green, st.blue, mask="none"), tmp_path / "c.tif", window_size=128)
    gone = str(tmp_path / "elsewhere" / "B04.tif")  # e.g. a path only the machine that planned has
    rasters = ((gone,) + plan.inputs.rasters[0][1:],) + plan.inputs.rasters[1:]
    tasks = [replace(t, inputs=replace(t.inputs, rasters=rasters)) for t in plan.tasks]
    workers = set(client.scheduler_info()["workers"])
    with pytest.raises(NotFoundError) as e:
        run_on_cluster(tasks, c.scheduler_address, _process_window_on_cluster, (1,), lambda r: None, None, 2)
    message = str(e.value)
    assert "\n" not in message and message.startswith(f"{gone}: no such file (on the Dask worker at tcp://")
    assert message[message.rindex(" ") + 1:-1] in workers


def _two_tile_area(seeded, bucket, tmp_path, texture: int = 0, n: int = 60):
    """32UQU and 33UUP in ``bucket`` (``n`` px a side), 33UUP reprojected onto zone 32's grid: one date of both
    tiles, one of each alone. -> (the area, its first and last dates)."""
    import datetime as dt

    from s2desktop.core import areas
    from tests.helpers import constant_cog_scene, upload_public

    root = tmp_path / "bucket"
    a, b, d = dt.date(2023, 7, 1), dt.date(2023, 7, 3), dt.date(2023, 7, 5)
    for tile, date, value in (("32UQU", a, 1000), ("33UUP", a, 1000), ("33UUP", b, 3000), ("32UQU", d, 2500)):
        constant_cog_scene(root, tile, date, value, texture=texture, n=n)
    upload_public(seeded, bucket, root)
    return areas.parse_bbox("12.10,48.00,12.50,48.30"), a, d


def _area_job(seeded, bucket, area, start, end, out, cache, scheduler, progress=None, resolution=500):
    from s2desktop.core.pipeline import Request, SourceSpec

    return Job(Request(SourceSpec("cogs", endpoint_url=seeded.endpoint, bucket=bucket), area=area,
                       resolution=resolution,
                       crs="EPSG:32632", start=start, end=end, cache_dir=cache,
                       composite=CompositeOptions(str(out), workers=2, scheduler=scheduler)), progress)


_OPTIONS_SET = ("AWS_S3_ENDPOINT", "AWS_NO_SIGN_REQUEST", "AWS_VIRTUAL_HOSTING", "GDAL_HTTP_MAX_RETRY",
                "AWS_SECRET_ACCESS_KEY")


def _gdal_options_now(names):
    from rasterio.env import get_gdal_config

    return {n: get_gdal_config(n) for n in names}


@pytest.mark.parametrize("n, resolution", [(60, 500), (600, 400)])  # 1830 m pixels; 183 m read from the 366 m
def test_an_area_over_two_tiles_streamed_from_cogs_on_the_cluster_is_the_pools(seeded_s3, scratch_bucket, tmp_path,
                                                                               cluster, monkeypatch, n, resolution):
    """The pool fetches the area's windows here into the area cache; on the cluster the workers read the COGs
    themselves through /vsis3/ (the parent reads their headers only): the same pixels, and the cache stays empty.
    Textured scenes: the reprojected tile's bilinear pixels are not its source's; at 400 m from the COGs' first
    overview (``vrt://...?ovr=0`` on the workers, the fetched window of that level on the pool). Signed requests: the
    credentials found here go to the workers, and into no record, progress message or worker log."""
    from s2desktop.core import sources

    c, client = cluster
    monkeypatch.setitem(sources.SOURCES, "cogs", sources.SOURCES["cogs"][:4] + (False,))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAS2DESKTOPTEST0001")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    area, start, end = _two_tile_area(seeded_s3, scratch_bucket, tmp_path, texture=1, n=n)
    outputs, seen = {}, []
    for name, scheduler in (("pool", None), ("dask", c.scheduler_address)):
        outputs[name] = tmp_path / f"{name}.tif"
        _area_job(seeded_s3, scratch_bucket, area, start, end, outputs[name], tmp_path / f"cache-{name}",
                  scheduler, seen.append if name == "dask" else None, resolution).run()
    _same_output(outputs["pool"], outputs["dask"])
    with rasterio.open(outputs["dask"]) as ds:
        assert set(ds.tags()["TILE"].split(",")) == {"32UQU", "33UUP"} and len(np.unique(ds.read(1))) > 2
    assert any((tmp_path / "cache-pool").rglob("*.tif"))  # the pool's windows were fetched here...
    assert not [p for p in (tmp_path / "cache-dask").rglob("*") if p.is_file()]  # ...the cluster's were not
    assert not [e for e in seen if e.stage == "fetch" and e.bytes_total]
    assert any("through /vsis3/" in e.message for e in seen)
    shown = (tmp_path / "dask.json").read_text() + "".join(e.message for e in seen) + str(client.get_worker_logs())
    assert SECRET not in shown and "AKIAS2DESKTOPTEST0001" not in shown
    # the source's GDAL options were set around each window's reads on the workers, and not left set after
    workers = list(client.scheduler_info()["workers"])
    left = [client.submit(_gdal_options_now, _OPTIONS_SET, workers=[w], pure=False).result() for w in workers]
    assert left == [dict.fromkeys(_OPTIONS_SET)] * len(workers)


def test_the_options_a_task_reads_with_are_set_around_its_reads_only(cluster):
    from s2desktop.core.remotereads import GdalOptions, RemoteReads, reading

    _c, client = cluster
    remote = RemoteReads.of({"/vsimem/s2desktop-test/x.vrt": "<VRTDataset/>"},
                            GdalOptions.of({"AWS_S3_ENDPOINT": "127.0.0.1:9", "AWS_SECRET_ACCESS_KEY": "x" * 20}))

    def task():
        with reading(remote):
            inside = _gdal_options_now(["AWS_S3_ENDPOINT", "AWS_SECRET_ACCESS_KEY"])
        return inside, _gdal_options_now(["AWS_S3_ENDPOINT", "AWS_SECRET_ACCESS_KEY"])

    inside, after = client.submit(task, pure=False).result()
    assert inside == {"AWS_S3_ENDPOINT": "127.0.0.1:9", "AWS_SECRET_ACCESS_KEY": "x" * 20}
    assert after == {"AWS_S3_ENDPOINT": None, "AWS_SECRET_ACCESS_KEY": None}
    assert "x" * 20 not in repr(remote) and "127.0.0.1:9" in repr(remote)


SECRET = "S2DESKTOPsecretKEYdoNOTshow0123456789abcd"


@pytest.mark.parametrize("change", ["deleted", "overwritten"])
def test_an_object_gone_after_the_plan_is_one_line_naming_it_and_the_worker(seeded_s3, scratch_bucket, tmp_path,
                                                                             cluster, monkeypatch, change):
    """An object deleted, or replaced by one that is no raster, after the plan. A signed source (as a
    requester-pays COG bucket would be): the credentials resolved here travel in the tasks as GDAL options, and
    appear in no error, progress message or worker log."""
    from s2desktop.core import sources
    from s2desktop.core.errors import S2Error

    _c, client = cluster
    monkeypatch.setitem(sources.SOURCES, "cogs", sources.SOURCES["cogs"][:4] + (False,))  # signed requests
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAS2DESKTOPTEST0001")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    area, start, end = _two_tile_area(seeded_s3, scratch_bucket, tmp_path)
    keys = [o["Key"] for o in seeded_s3.client().list_objects_v2(Bucket=scratch_bucket)["Contents"]]
    gone = next(k for k in keys if "33UUP_20230703" in k and k.endswith("B04.tif"))
    seen = []

    def progress(e):
        seen.append(e)
        if e.stage == "composite" and e.items_done == 0 and not e.message:  # after the plan, before the windows
            if change == "deleted":
                seeded_s3.client().delete_object(Bucket=scratch_bucket, Key=gone)
            else:
                seeded_s3.client().put_object(Bucket=scratch_bucket, Key=gone, Body=b"not a raster " * 100)

    out = tmp_path / "out" / "c.tif"
    out.parent.mkdir()
    job = _area_job(seeded_s3, scratch_bucket, area, start, end, out, tmp_path / "cache", _c.scheduler_address,
                    progress)
    with pytest.raises(S2Error) as e:
        job.run()
    message = str(e.value)
    workers = set(client.scheduler_info()["workers"])
    why = "HTTP response code: 404" if change == "deleted" else "not a raster GDAL can read"
    assert "\n" not in message and message.startswith(f"/vsis3/{scratch_bucket}/{gone}: cannot open ({why}) (on ")
    assert message[message.rindex(" ") + 1:-1] in workers and "(on the Dask worker at tcp://" in message
    assert list(out.parent.iterdir()) == []
    logs = str(client.get_worker_logs()) + "".join(ev.message for ev in seen)
    assert SECRET not in message + logs and "AKIAS2DESKTOPTEST0001" not in message + logs


def test_worker_options_carry_the_credentials_resolved_here_and_never_show_them(monkeypatch):
    from s2desktop.core.clusterinputs import worker_options
    from s2desktop.core.sources import resolve_source

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAS2DESKTOPTEST0001")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_SESSION_TOKEN", "token-" + SECRET)
    signed = replace(resolve_source("cogs", endpoint_url="http://127.0.0.1:9", bucket="a-bucket"), unsigned=False,
                     requester_pays=True)
    options = worker_options(signed).as_dict()
    assert options["AWS_SECRET_ACCESS_KEY"] == SECRET and options["AWS_SESSION_TOKEN"] == "token-" + SECRET
    assert options["AWS_ACCESS_KEY_ID"] == "AKIAS2DESKTOPTEST0001" and options["AWS_REQUEST_PAYER"] == "requester"
    assert options["AWS_S3_ENDPOINT"] == "127.0.0.1:9" and options["AWS_HTTPS"] == "NO"
    assert SECRET not in repr(worker_options(signed)) and "AKIAS2DESKTOPTEST0001" not in repr(worker_options(signed))
    unsigned = worker_options(replace(signed, unsigned=True)).as_dict()
    assert unsigned["AWS_NO_SIGN_REQUEST"] == "YES" and "AWS_SECRET_ACCESS_KEY" not in unsigned


def test_the_parent_plans_an_area_for_the_workers_without_reading_a_pixel(seeded_s3, scratch_bucket, tmp_path):
    """The parent reads the COGs' headers (with boto3) and writes the VRTs; opening and checking them for the
    plan reaches no bucket: with GDAL pointed at a closed port the plan is made all the same. At 400 m the
    workers read the COGs' first overview (183 m pixels, 366 m there)."""
    from s2desktop.core.clusterinputs import for_workers
    from s2desktop.core.compositing.plan import make_plan
    from s2desktop.core.remotereads import GdalOptions

    area, start, end = _two_tile_area(seeded_s3, scratch_bucket, tmp_path, n=600)
    job = _area_job(seeded_s3, scratch_bucket, area, start, end, tmp_path / "c.tif", tmp_path / "cache",
                    "tcp://127.0.0.1:9", resolution=400)  # never contacted: only planned
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    inputs = job.area_inputs(None, scratch)
    stack = for_workers(inputs.inputs, "tcp://127.0.0.1:9", job.request)
    assert all(o.rasters[b].path.startswith("/vsimem/s2desktop-") for o in stack.observations for b in stack.bands)
    docs = stack.remote.documents
    assert any(f"vrt:///vsis3/{scratch_bucket}/" in d and "?ovr=0<" in d for d in docs.values())
    assert not any(str(scratch) in d for d in docs.values())
    closed = GdalOptions.of({**stack.remote.options.as_dict(), "AWS_S3_ENDPOINT": "127.0.0.1:9",
                             "GDAL_HTTP_MAX_RETRY": "0"})
    plan = make_plan(replace(stack, remote=replace(stack.remote, options=closed)), tmp_path / "c.tif")
    assert plan.tasks and plan.inputs.remote.options == closed and plan.out_shape == (inputs.inputs.grid.height,
                                                                                      inputs.inputs.grid.width)
    assert not [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]


def test_an_area_of_a_local_mirror_on_the_cluster_reads_its_files_in_place(seeded_s3, scratch_bucket, tmp_path,
                                                                           cluster):
    """A local mirror's COGs are not read through /vsis3/: the workers (sharing this file system) read the
    files, as on the pool."""
    from s2desktop.core.pipeline import Request, SourceSpec

    c, _client = cluster
    area, start, end = _two_tile_area(seeded_s3, scratch_bucket, tmp_path, texture=1)
    seen = []
    for name, scheduler in (("pool", None), ("dask", c.scheduler_address)):
        Job(Request(SourceSpec(str(tmp_path / "bucket")), area=area, resolution=500, crs="EPSG:32632", start=start,
                    end=end, composite=CompositeOptions(str(tmp_path / f"{name}.tif"), workers=2,
                                                        scheduler=scheduler)), seen.append).run()
    _same_output(tmp_path / "pool.tif", tmp_path / "dask.tif")
    assert not any("/vsis3/" in e.message for e in seen)
