"""The downloads panel against the local S3 server: skipped files, cancel without partial files, row errors."""

from __future__ import annotations

import datetime as dt

from s2desktop.core.sources import resolve_source
from tests.fixtures_gui import use_s3


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
        assert r.dest_exists() == (r.state == "downloaded"), (r.task.dest, r.state)
    assert w.download_panel.download_button.isEnabled()
    # and the composite gets only complete scenes
    assert all(s.scene_id in {r.task.scene.scene_id for r in w.download_panel.rows if r.state == "downloaded"}
               for s in w.downloaded_scenes)


def test_errors_show_on_the_rows(qtbot, main_window, seeded_s3, tmp_path):
    w = main_window
    scenes = _search(qtbot, w, seeded_s3, dt.date(2023, 7, 4), dt.date(2023, 7, 4))
    wrong = resolve_source("l1c", endpoint_url=seeded_s3.endpoint, bucket="no-such-bucket")
    with qtbot.waitSignal(w.download_panel.allFinished, timeout=30000) as done:
        w.download_panel.start(wrong, scenes, tmp_path / "downloads")
    assert done.args[0] == {"error": 3}
    for r in w.download_panel.rows:
        assert r.state == "error"
        assert "no-such-bucket" in r.item.text(1) and r.bar.format() == "failed"
    assert "failed" in w.download_panel.total_bar.format()
    assert _partials(tmp_path / "downloads") == []
