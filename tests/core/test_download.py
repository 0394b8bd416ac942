"""Downloads from the real S3 test server: byte-identical, verified, skipped when done, cancellable, confined."""

import hashlib
import os
import subprocess
import sys
import threading
import time

import boto3.s3.transfer
import numpy as np
import pytest

from s2desktop.core import catalog, download
from s2desktop.core.catalog import Scene
from s2desktop.core.errors import CancelledError, IntegrityError, InvalidInputError, NotFoundError, OutputError
from s2desktop.core.sources import resolve_source
from tests.fixtures_s3 import RequestRecorder, corrupt_object
from tests.helpers import files_under, put_objects, s3_source

MiB = 1 << 20


def _scene_for(key, size=None, etag=None, tile="33UUP"):
    import datetime as dt

    return Scene(tile=tile, date=dt.date(2023, 7, 14), sequence=0, cloud_cover=1.0, data_coverage=100.0,
                 baseline="05.09", product_name=None, prefix=key.rsplit("/", 1)[0], bands={"B04": key},
                 objects={key: (size, etag)} if size else {}, tile_info={"productName": "x"})


@pytest.fixture
def l1c(seeded_s3):
    return s3_source(seeded_s3)


def test_download_is_byte_identical_and_second_run_fetches_nothing(seeded_s3, l1c, tmp_path):
    scenes = catalog.search(l1c, "33UUP", "2023-07-14", "2023-07-31")
    tasks = download.plan(scenes, "B02,b03,B4,B11", tmp_path)
    assert len(tasks) == 4 * 4
    events = []
    results = download.download_all(l1c, tasks, workers=3, progress=events.append)
    assert [r.status for r in results] == ["downloaded"] * 16
    assert all("md5" in r.verified for r in results)
    for r in results:
        original = seeded_s3.roots["l1c"] / r.task.key
        assert r.path.read_bytes() == original.read_bytes()
    names = files_under(tmp_path)
    assert "red/33UUP_2023-07-14_0_B04.jp2" in names and "blue/33UUP_2023-07-14_2_B02.jp2" in names
    assert "green/33UUP_2023-07-31_0_B03.jp2" in names and "B11/33UUP_2023-07-14_1_B11.jp2" in names
    assert not [n for n in names if n.endswith(".part")]
    planned = sum(r.size for r in results)
    assert events[-1].bytes_done == events[-1].bytes_total == planned
    assert {e.bytes_total for e in events} == {planned}  # known from the listing before the first byte
    assert [e.file.state for e in events[:16]] == ["queued"] * 16 and events[-1].items_done == 16
    ends = [e.file for e in events if e.file.finished]
    assert sorted(f.name for f in ends) == sorted(str(t.dest) for t in tasks)  # one end per file
    assert all(f.state == "downloaded" and f.bytes_done == f.bytes_total for f in ends)
    meta = download.read_scene_metadata(tmp_path / "red/33UUP_2023-07-14_1_B04.jp2")
    assert meta["baseline"] == "05.09" and meta["sequence"] == 1 and meta["cloud_cover"] == 30.0
    assert meta["tileDataGeometry"]["type"] == "Polygon" and meta["productName"] == meta["product_name"]

    rec = RequestRecorder(l1c.store.client)
    again = download.download_all(l1c, download.plan(scenes, "B02,B03,B04,B11", tmp_path))
    assert [r.status for r in again] == ["skipped"] * 16
    assert rec.calls == []  # not a single request: verified records + listing ETags

    # an interrupted run (one file missing, one stale temp) completes cleanly
    (tmp_path / "red/33UUP_2023-07-14_0_B04.jp2").unlink()
    (tmp_path / "red/.33UUP_2023-07-14_0_B04.jp2.dead.part").write_bytes(b"x")
    third = download.download_all(l1c, download.plan(scenes, "B02,B03,B04,B11", tmp_path))
    assert sorted(r.status for r in third).count("downloaded") == 1
    assert rec.count("GetObject") == 1


def test_present_file_without_record_is_verified_not_refetched(seeded_s3, l1c, tmp_path):
    (scene,) = catalog.search(l1c, "33UUP", "2023-07-04", "2023-07-04")
    (task,) = download.plan([scene], ["B04"], tmp_path)
    task.dest.parent.mkdir(parents=True)
    task.dest.write_bytes((seeded_s3.roots["l1c"] / task.key).read_bytes())
    rec = RequestRecorder(l1c.store.client)
    r = download.download_one(l1c, task)
    assert r.status == "skipped" and "md5" in r.verified and rec.count("GetObject") == 0
    # a damaged local copy is fetched again
    task.dest.write_bytes(b"garbage")
    r = download.download_one(l1c, task)
    assert r.status == "downloaded" and task.dest.read_bytes() == (seeded_s3.roots["l1c"] / task.key).read_bytes()


def test_corrupted_object_is_caught_and_retried_once(seeded_s3, scratch_bucket, tmp_path):
    client = seeded_s3.client()
    data = np.random.default_rng(1).integers(0, 255, 300_000, dtype=np.uint8).tobytes()
    key = "tiles/33/U/UP/2023/7/14/0/B04.jp2"
    client.put_object(Bucket=scratch_bucket, Key=key, Body=data)
    corrupt_object(scratch_bucket, key)
    src = s3_source(seeded_s3, bucket=scratch_bucket)
    rec = RequestRecorder(src.store.client)
    (task,) = download.plan([_scene_for(key)], ["B04"], tmp_path)
    with pytest.raises(IntegrityError, match="failed verification twice.*MD5"):
        download.download_one(src, task)
    assert rec.count("GetObject") == 2
    assert [n for n in files_under(tmp_path) if not n.startswith("metadata/")] == []


def test_checksum_and_multipart_etag_are_verified(seeded_s3, scratch_bucket, tmp_path):
    client = seeded_s3.client()
    big = np.random.default_rng(2).integers(0, 255, 12 * MiB + 12345, dtype=np.uint8).tobytes()
    src_file = tmp_path / "big.bin"
    src_file.write_bytes(big)
    cfg = boto3.s3.transfer.TransferConfig(multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB)
    client.upload_file(str(src_file), scratch_bucket, "mp/B04.jp2", Config=cfg)
    assert client.head_object(Bucket=scratch_bucket, Key="mp/B04.jp2")["ETag"].strip('"').endswith("-3")
    client.put_object(Bucket=scratch_bucket, Key="ck/B04.jp2", Body=big[:500_000], ChecksumAlgorithm="SHA256")
    src = s3_source(seeded_s3, bucket=scratch_bucket)
    out = tmp_path / "out"
    r = download.download_one(src, download.plan([_scene_for("mp/B04.jp2")], ["B04"], out)[0])
    assert "multipart-md5" in r.verified and r.path.read_bytes() == big
    r = download.download_one(src, download.plan([_scene_for("ck/B04.jp2", tile="32TNS")], ["B04"], out)[0])
    assert "sha256" in r.verified and r.path.read_bytes() == big[:500_000]
    corrupt_object(scratch_bucket, "ck/B04.jp2")
    r.path.unlink()
    with pytest.raises(IntegrityError):
        download.download_one(src, download.plan([_scene_for("ck/B04.jp2", tile="32TNS")], ["B04"], out)[0])


def _band_files(seeded, bucket: str, out, tiles: list[str], size: int) -> tuple:
    """One random B04 object of `size` bytes per tile in `bucket`; -> (source, download tasks into `out`)."""
    data = os.urandom(size)
    keys = [f"c/{i}/B04.jp2" for i in range(len(tiles))]
    put_objects(seeded, bucket, dict.fromkeys(keys, data))
    src = s3_source(seeded, bucket=bucket)
    return src, [download.plan([_scene_for(k, tile=t)], ["B04"], out)[0] for k, t in zip(keys, tiles)]


def test_cancel_mid_transfer_leaves_nothing_under_final_names(seeded_s3, scratch_bucket, tmp_path, monkeypatch):
    monkeypatch.setattr(download, "MULTIPART_CHUNKSIZE", 2 * MiB)
    monkeypatch.setattr(download, "MULTIPART_THRESHOLD", 2 * MiB)
    src, tasks = _band_files(seeded_s3, scratch_bucket, tmp_path, ["33UUP", "32TNS", "31UDQ"], 24 * MiB)
    cancel = threading.Event()
    set_at = []

    def progress(event):
        if event.bytes_done > 0 and not cancel.is_set():
            set_at.append(time.monotonic())
            cancel.set()

    with pytest.raises(CancelledError):
        download.download_all(src, tasks, workers=3, progress=progress, cancel=cancel)
    assert time.monotonic() - set_at[0] < 1.5
    leftovers = [n for n in files_under(tmp_path) if not n.startswith("metadata/")]
    assert leftovers == []


def test_one_file_cancelled_on_its_own_the_others_complete(slow_s3, scratch_bucket, tmp_path):
    """A CancelToken's item cancel (a row's cancel button in the window) stops that file only."""
    from s2desktop.core.progress import CancelToken

    src, tasks = _band_files(slow_s3, scratch_bucket, tmp_path, ["33UUP", "32TNS"], 4 * MiB)
    token, victim = CancelToken(), str(tasks[0].dest)
    states = {}

    def progress(event):
        states[event.file.name] = event.file.state
        if event.file.name == victim and event.file.bytes_done > 0:
            token.cancel_item(victim)

    results = download.download_all(src, tasks, workers=2, progress=progress, cancel=token)
    assert [r.task.dest for r in results] == [tasks[1].dest] and tasks[1].dest.is_file()
    assert states == {victim: "cancelled", str(tasks[1].dest): "downloaded"}
    assert not tasks[0].dest.exists() and not [n for n in files_under(tmp_path) if n.endswith(".part")]


def test_the_connection_budget_is_decided_in_one_place():
    from s2desktop.core.sources import CLIENT_POOL, CONNECTIONS, PART_CONCURRENCY

    assert download.transfer_budget(None) == (4, PART_CONCURRENCY)
    for workers in range(1, 80):
        files, parts = download.transfer_budget(workers)
        assert files * parts <= CONNECTIONS < CLIENT_POOL and files >= 1 and parts >= 1
        assert files == min(workers, CONNECTIONS)
    assert download.transfer_budget(16) == (16, 2)  # the window's largest setting: 32 GETs, not 128


def test_ctrl_c_caught_by_a_transfer_thread_still_stops_at_once(slow_s3, scratch_bucket, tmp_path):
    """The kernel hands a Ctrl-C to whichever thread it likes. When a transfer thread gets it, Python only flags it
    for the main thread, which must notice by itself: it used to sleep until a whole file had finished (16 s at
    2 MiB/s), so Ctrl-C seemed to do nothing. Deliver SIGINT to a transfer thread on purpose."""
    import signal

    src, tasks = _band_files(slow_s3, scratch_bucket, tmp_path, ["33UUP", "32TNS"], 16 * MiB)
    sent = []

    def progress(event):
        if event.bytes_done > 0 and not sent:
            sent.append(time.monotonic())
            signal.pthread_kill(threading.get_ident(), signal.SIGINT)  # this thread is not the main one

    with pytest.raises(KeyboardInterrupt):
        download.download_all(src, tasks, workers=2, progress=progress)
    assert sent and time.monotonic() - sent[0] < 1.5, f"stopped {time.monotonic() - sent[0]:.1f} s after Ctrl-C"
    assert [n for n in files_under(tmp_path) if not n.startswith("metadata/")] == []


def test_keys_never_escape_the_output_folder(seeded_s3, scratch_bucket, tmp_path):
    client = seeded_s3.client()
    evil = "tiles/33/U/UP/2023/7/14/0/../../../../../../../../evil/B04.jp2"
    client.put_object(Bucket=scratch_bucket, Key=evil, Body=b"not a jp2")
    src = s3_source(seeded_s3, bucket=scratch_bucket)
    out = tmp_path / "out"
    (task,) = download.plan([_scene_for(evil)], ["B04"], out)
    assert task.dest == out / "red" / "33UUP_2023-07-14_0_B04.jp2"
    try:
        r = download.download_one(src, task)
        assert r.path == task.dest and r.path.read_bytes() == b"not a jp2"
    except NotFoundError:
        pass  # a server may normalise the key away; either way nothing lands outside
    assert not (tmp_path / "evil").exists()
    assert all(p.resolve().is_relative_to(out.resolve()) for p in tmp_path.rglob("*") if p.is_file()
               and p.name != "big.bin")
    # a local mirror refuses keys that leave its folder
    local = resolve_source(str(seeded_s3.roots["l1c"]))
    with pytest.raises(NotFoundError, match="not inside"):
        local.store.get_bytes("tiles/../../../etc/passwd")


def test_local_source_download(seeded_s3, tmp_path):
    src = resolve_source(str(seeded_s3.roots["cogs"]))
    scenes = catalog.search(src, "33UUP", "2023-07-14", "2023-07-14")
    results = download.download_all(src, download.plan(scenes, ["B04", "SCL"], tmp_path))
    assert [r.status for r in results] == ["downloaded"] * 4
    for r in results:
        assert r.path.read_bytes() == (src.root / r.task.key).read_bytes()
    assert (tmp_path / "SCL/33UUP_2023-07-14_1_SCL.tif").exists()
    assert [r.status for r in download.download_all(src, download.plan(scenes, ["B04"], tmp_path))] == ["skipped"] * 2


def test_plan_and_output_errors(seeded_s3, l1c, tmp_path):
    scenes = catalog.search(l1c, "33UUP", "2023-07-04", "2023-07-04")
    with pytest.raises(InvalidInputError, match="not a Sentinel-2 band"):
        download.plan(scenes, "B02,B99", tmp_path)
    with pytest.raises(InvalidInputError, match="band SCL is not in scene"):
        download.plan(scenes, "SCL", tmp_path)
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="cannot create output folder"):
        download.download_all(l1c, download.plan(scenes, "B04", blocker / "out"))


def test_disk_full_is_a_clear_error(seeded_s3, tmp_path):
    """A file-size limit makes writes fail like a full disk (EFBIG) in a child process: OutputError, no files."""
    code = f"""
import os, resource, signal, sys
from s2desktop.cli import main
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (4000, 4000))
sys.exit(main(["download", "--tile", "33UUP", "--start", "2023-07-04", "--end", "2023-07-04",
               "--endpoint-url", "{seeded_s3.endpoint}", "--out", r"{tmp_path / 'out'}", "--bands", "B04"]))
"""
    env = dict(os.environ)
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert p.returncode == 2, p.stderr
    last = p.stderr.strip().splitlines()[-1]
    assert last.startswith("s2desktop: error: disk full while writing") and "--out" in last
    assert "Traceback" not in p.stderr
    assert [n for n in files_under(tmp_path / "out") if not n.startswith("metadata/")] == []


def _multipart_etag(data: bytes, part: int) -> str:
    digests = [hashlib.md5(data[i:i + part]).digest() for i in range(0, len(data), part)]
    return f"{hashlib.md5(b''.join(digests)).hexdigest()}-{len(digests)}"


def test_a_multipart_etag_is_checked_even_when_the_server_does_not_tell_the_part_size(tmp_path):
    """Defect: with no part size from the server, a file with a flipped byte used to pass on its size alone."""
    from s2desktop.core.sources import ObjectInfo

    data = os.urandom(21 * MiB + 12345)
    path = tmp_path / "f.jp2"
    path.write_bytes(data)
    for part in (6 * MiB, 7 * MiB, 11 * MiB):  # none of them a 'common' size but 8/16 MiB; derived from '-N'
        info = ObjectInfo("k", len(data), _multipart_etag(data, part))
        assert download._verify(path, info, local=False)[0] == "multipart-md5"
    bad = bytearray(data)
    bad[5 * MiB] ^= 1
    path.write_bytes(bytes(bad))
    info = ObjectInfo("k", len(data), _multipart_etag(data, 6 * MiB))
    method, digest = download._verify(path, info, local=False)
    assert method == download.UNVERIFIED and digest == hashlib.md5(bytes(bad)).hexdigest()  # never "size"
    with pytest.raises(download._Mismatch, match="multipart ETag"):  # the server's part size: a mismatch
        download._verify(path, ObjectInfo("k", len(data), info.etag, part_size=6 * MiB), local=False)


def test_part_size_candidates_are_bounded_and_include_the_real_one():
    for size, part in ((100 * MiB + 1, 8 * MiB), (5 * MiB, 16 * MiB), (1 << 30, 64 * MiB), (300 * MiB, 50 * MiB)):
        n = -(-size // part)
        sizes = download._part_sizes(size, n, None)
        assert part in sizes or n == 1
        assert 0 < len(sizes) <= download.MAX_PART_CANDIDATES
        assert all(-(-size // ps) == n for ps in sizes)
    assert download._part_sizes(10 * MiB, 2, 7 * MiB) == [7 * MiB]  # the server's answer wins


def test_stale_temporary_files_of_a_killed_run_are_removed(seeded_s3, scratch_bucket, tmp_path):
    src, (task,) = _band_files(seeded_s3, scratch_bucket, tmp_path, ["33UUP"], MiB)
    task.dest.parent.mkdir(parents=True)
    stale = task.dest.parent / f".{task.dest.name}.0badf00d.part"
    fresh = task.dest.parent / f".{task.dest.name}.1234abcd.part"  # a download running right now elsewhere
    other = task.dest.parent / ".33UUP_2023-07-14_0_B03.jp2.0badf00d.part"  # another file's
    for p in (stale, fresh, other):
        p.write_bytes(b"x" * 1000)
    old = time.time() - 3600
    os.utime(stale, (old, old))
    os.utime(other, (old, old))
    assert download.download_one(src, task).status == "downloaded"
    assert not stale.exists() and fresh.exists() and other.exists()
