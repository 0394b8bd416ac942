"""The downloads panel against the local S3 server: skipped files, cancel without partial files, row errors."""

from __future__ import annotations

import datetime as dt
import io
import os
import time

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from s2desktop.core.sources import resolve_source
from tests.fixtures_gui import download_request, use_s3


def _search(qtbot, w, seeded, start, end):
    use_s3(w, seeded, "l1c")
    w.source_panel.tile.setText("33UUP")
    w.scene_panel.set_dates(start, end)
    with qtbot.waitSignal(w.scene_panel.searchFinished, timeout=30000) as found:
        w.search()
    return found.args[0]


def _partials(folder):
    return [p for p in folder.rglob("*") if p.name.endswith((".part", ".tmp")) or ".partial" in p.name]


def test_second_download_shows_files_already_there(qtbot, main_window, seeded_s3, tmp_path):
    w = main_window
    scenes = _search(qtbot, w, seeded_s3, dt.date(2023, 7, 31), dt.date(2023, 8, 1))
    assert len(scenes) == 2
    w.scene_panel.model.set_checked([s.scene_id for s in scenes], True)
    with qtbot.waitSignal(w.download_panel.allFinished, timeout=30000) as first:
        w.download()
    assert first.args[0] == {"downloaded": 6}
    with qtbot.waitSignal(w.download_panel.allFinished, timeout=30000) as second:
        w.download()
    assert second.args[0] == {"skipped": 6}
    for r in w.download_panel.rows:
        assert r.item.text(1) == "already there" and r.bar.value() == r.bar.maximum()


def test_cancel_all_leaves_no_partial_files(qtbot, main_window, seeded_s3, tmp_path):
    w = main_window
    scenes = _search(qtbot, w, seeded_s3, dt.date(2022, 12, 1), dt.date(2023, 12, 31))
    w.scene_panel.model.set_checked([s.scene_id for s in scenes], True)
    w.download_panel.started.connect(lambda _n: w.download_panel.cancel_all())
    with qtbot.waitSignal(w.download_panel.allFinished, timeout=30000) as done:
        w.download()
    counts = done.args[0]
    assert counts.get("cancelled", 0) > 0
    assert set(counts) <= {"cancelled", "downloaded"}
    dl = tmp_path / "downloads"
    assert _partials(dl) == []
    for r in w.download_panel.rows:
        assert r.path.is_file() == (r.state == "downloaded"), (r.path, r.state)
    assert w.download_panel.download_button.isEnabled()
    assert w.composite_panel.inputs is None  # a cancelled job offers nothing to composite


def test_errors_show_on_the_rows(qtbot, main_window, seeded_s3, tmp_path):
    w = main_window
    scenes = _search(qtbot, w, seeded_s3, dt.date(2023, 7, 4), dt.date(2023, 7, 4))
    wrong = resolve_source("l1c", endpoint_url=seeded_s3.endpoint, bucket="no-such-bucket")
    with qtbot.waitSignal(w.download_panel.allFinished, timeout=30000) as done:
        w.download_panel.start(download_request(w, scenes, tmp_path / "downloads"), source=wrong)
    assert done.args[0] == {"failed": 3}
    for r in w.download_panel.rows:
        assert r.state == "failed"
        assert "no-such-bucket" in r.item.text(1) and r.bar.format() == "failed"
    assert "failed" in w.download_panel.total_bar.format()
    assert "no-such-bucket" in w.download_panel.total_label.text()  # the job's error, on the panel
    assert _partials(tmp_path / "downloads") == []


BIG = 64 * 1024 * 1024  # four 16 MiB parts: the core downloads it multipart


def _copy_scene_with_a_big_band(seeded, bucket: str, date: str = "2023/7/4") -> str:
    """Copy one L1C scene of the seeded bucket into `bucket` (server-side) and replace its B04 with a 64 MiB
    object uploaded multipart; returns the big object's key."""
    from boto3.s3.transfer import TransferConfig

    client = seeded.client()
    src = seeded.buckets["l1c"]
    prefix = f"tiles/33/U/UP/{date}/0/"
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=src, Prefix=prefix)["Contents"]]
    for k in keys:
        client.copy_object(Bucket=bucket, Key=k, CopySource={"Bucket": src, "Key": k})
    big_key = prefix + "B04.jp2"
    assert big_key in keys
    body = io.BytesIO(b"\x00\x00\x00\x0cjP  " + bytes(BIG - 8))
    cfg = TransferConfig(multipart_threshold=16 * 1024 * 1024, multipart_chunksize=16 * 1024 * 1024)
    client.upload_fileobj(body, bucket, big_key, Config=cfg)
    head = client.head_object(Bucket=bucket, Key=big_key)
    assert head["ContentLength"] == BIG and head["ETag"].strip('"').endswith("-4")  # really multipart
    return big_key


def _search_the_big_scene(qtbot, w, seeded, bucket: str) -> list:
    """Seed the scene with a 64 MiB band in `bucket`, point the window at it and search: -> the scenes found."""
    _copy_scene_with_a_big_band(seeded, bucket)
    w.source_panel.set_source("l1c", endpoint=seeded.endpoint, bucket=bucket)
    w.source_panel.tile.setText("33UUP")
    w.scene_panel.set_dates(dt.date(2023, 7, 4), dt.date(2023, 7, 4))
    with qtbot.waitSignal(w.scene_panel.searchFinished, timeout=30000) as found:
        w.search()
    return found.args[0]


def test_cancel_a_file_partway_leaves_nothing(qtbot, main_window, slow_s3, scratch_bucket, tmp_path):
    w = main_window
    scenes = _search_the_big_scene(qtbot, w, slow_s3, scratch_bucket)
    assert len(scenes) == 1
    w.scene_panel.model.set_checked([scenes[0].scene_id], True)

    # cancel the row from its own progress: the moment it shows more than 0 and less than 100 %
    cancelled_at = []

    def on_change(row):
        if not cancelled_at and 0 < row.bar.value() < row.bar.maximum() and row.state == "running":
            cancelled_at.append((time.monotonic(), row.bar.value(), row.file.bytes_done))
            qtbot.mouseClick(row.cancel_button, Qt.MouseButton.LeftButton)  # the row's ✕, as a user does

    w.download_panel.started.connect(
        lambda _n: [r.changed.connect(lambda r=r: on_change(r)) for r in w.download_panel.rows])
    out = tmp_path / "downloads"
    with qtbot.waitSignal(w.download_panel.allFinished, timeout=60000) as done:
        w.download_panel.start(download_request(w, scenes, out, bands=["B04"], workers=1),
                               source=w.scene_panel.source)
    stopped = time.monotonic()

    assert done.args[0] == {"cancelled": 1}
    (row,) = w.download_panel.rows
    assert cancelled_at, "the download finished before any partial progress was shown"
    t_cancel, shown, got = cancelled_at[0]
    assert 0 < got < BIG, got
    assert stopped - t_cancel < 2.0, f"the worker took {stopped - t_cancel:.2f} s to stop"
    assert w.download_panel.worker.done.is_set()  # the row finished only after the job's worker had returned
    assert row.state == "cancelled" and row.item.text(1) == "cancelled" and row.bar.format() == "cancelled"
    assert not row.cancel_button.isEnabled()
    # neither the final file nor its temporary: nothing at all in the band folder
    dest = row.path
    assert not dest.exists()
    assert not dest.parent.exists() or list(dest.parent.iterdir()) == []
    assert _partials(out) == []
    assert w.download_panel.download_button.isEnabled()


def test_an_unverified_file_shows_in_its_row_and_is_still_composited(qtbot, main_window, seeded_s3,
                                                                    scratch_bucket, fault_proxy):
    """A server that does not tell part sizes, and an odd part size: nothing can check the file's content. The
    row says so (amber, with the reason), and the composite's inputs still include it."""
    from tests.helpers import MiB, seed_scene_with_b04

    b04 = os.urandom(12 * MiB)
    seed_scene_with_b04(seeded_s3.client(), scratch_bucket, b04, part_size=5 * MiB + 512 * 1024)
    fault_proxy.add("hide_parts", method="HEAD")
    w = main_window
    w.source_panel.set_source("l1c", endpoint=fault_proxy.endpoint, bucket=scratch_bucket)
    w.source_panel.tile.setText("33UUP")
    w.scene_panel.set_dates(dt.date(2023, 7, 1), dt.date(2023, 7, 1))
    with qtbot.waitSignal(w.scene_panel.searchFinished, timeout=30000) as found:
        w.search()
    w.scene_panel.model.set_checked([s.scene_id for s in found.args[0]], True)
    with qtbot.waitSignal(w.download_panel.inputsReady, timeout=60000) as ready:
        w.download()
    qtbot.waitUntil(lambda: not w.download_panel.running, timeout=10000)
    (row,) = [r for r in w.download_panel.rows if r.path.name.endswith("_B04.jp2")]
    assert row.item.text(1).endswith(", unverified") and "unverified" in row.item.toolTip(1)
    assert row.item.foreground(1).color().name() == "#b9770e"
    others = [r for r in w.download_panel.rows if r is not row]
    assert others and all("unverified" not in r.item.text(1) for r in others)
    assert ready.args[0].paths("B04") == (str(row.path),) and row.path.read_bytes() == b04


def test_the_panel_says_what_a_download_will_cost_before_it_starts(qtbot, main_window, seeded_s3, tmp_path):
    """Requester pays: the ticked scenes' bytes (from the listing) and US$, before anything is fetched."""
    from s2desktop.core import pricing

    w = main_window
    scenes = _search(qtbot, w, seeded_s3, dt.date(2023, 7, 31), dt.date(2023, 8, 1))
    label = w.download_panel.cost_label
    w.scene_panel.model.set_checked([s.scene_id for s in scenes], True)
    qtbot.waitUntil(lambda: "US$" in label.text(), timeout=10000)
    planned = sum(size for s in scenes for key, (size, _e) in s.objects.items()
                  if key.rsplit("/", 1)[-1] in ("B02.jp2", "B03.jp2", "B04.jp2"))
    assert label.text().startswith("2 scene(s), 6 file(s): ")
    assert pricing.estimate([planned], requester_pays=True).describe().split(",")[0] in label.text()
    assert "requester pays" in label.text() and not (tmp_path / "downloads").exists()
    with qtbot.waitSignal(w.download_panel.allFinished, timeout=30000):
        w.download()
    qtbot.waitUntil(lambda: label.text().endswith("already here and verified"), timeout=10000)
    w.scene_panel.model.set_checked([s.scene_id for s in scenes], False)
    qtbot.waitUntil(lambda: label.text() == "", timeout=5000)


def _rows_in_view(tree) -> list[int]:
    view = tree.viewport().rect()
    return [i for i in range(tree.topLevelItemCount()) if view.contains(tree.visualItemRect(tree.topLevelItem(i)))]


def test_the_rows_in_progress_stay_in_view_and_enough_rows_show_at_1280_by_800(qtbot, main_window):
    """The job's events drive the panel as in a download of 15 files (the window at its default layout): at least
    five rows show, and as the files finish in order the ones in progress stay in view (they used to scroll out of
    the 2-3 rows visible)."""
    from s2desktop.core import progress as pg

    w, panel = main_window, main_window.download_panel
    w.resize(1280, 800)
    w._default_layout()
    panel._active = True  # as start() leaves it, with the job's events to come
    panel.cost_label.setVisible(False)
    names = [f"/dl/red/29RKH_2022-01-{d:02d}_0_B0{b}.jp2" for d in range(2, 7) for b in (2, 3, 4)]

    def event(i: int, state: str, done: int) -> None:
        f = pg.FileProgress(names[i], done, 1000, state)
        panel._event(pg.Progress("download", sum(n < i for n in range(len(names))), len(names), i * 1000,
                                 len(names) * 1000, file=f))

    for i in range(len(names)):
        event(i, pg.QUEUED, 0)
    qtbot.waitUntil(lambda: len(_rows_in_view(panel.tree)) >= 5, timeout=3000)
    for i in range(len(names)):
        event(i, pg.RUNNING, 500)
        if i >= 1:
            event(i - 1, pg.DOWNLOADED, 1000)
        QApplication.processEvents()
        assert i in _rows_in_view(panel.tree), (i, _rows_in_view(panel.tree))
    panel._active = False


def test_the_panel_follows_the_download_folder_set_in_settings(qtbot, main_window, seeded_s3, tmp_path):
    """After the folder changes in Settings the panel names the new one and says what a download costs there (it
    kept the old folder and 'already here and verified')."""
    from PySide6.QtCore import QTimer

    w, panel = main_window, main_window.download_panel
    assert panel.folder_label.text() == f"→ {tmp_path / 'downloads'}"  # shown from the start
    scenes = _search(qtbot, w, seeded_s3, dt.date(2023, 7, 31), dt.date(2023, 8, 1))
    w.scene_panel.model.set_checked([s.scene_id for s in scenes], True)
    with qtbot.waitSignal(panel.allFinished, timeout=30000):
        w.download()
    qtbot.waitUntil(lambda: panel.cost_label.text().endswith("already here and verified"), timeout=10000)
    new = tmp_path / "elsewhere"

    def fill_in_and_accept():
        dlg = QApplication.activeModalWidget()
        dlg.folder.setText(str(new))
        dlg.accept()

    QTimer.singleShot(0, fill_in_and_accept)
    w.settings_dialog()
    assert panel.folder_label.text() == f"→ {new}"
    qtbot.waitUntil(lambda: panel.cost_label.text().startswith("2 scene(s), 6 file(s): ")
                    and "already here" not in panel.cost_label.text(), timeout=10000)
    assert panel.cost_label.isVisible()
