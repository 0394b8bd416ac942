"""The panels as an analyst meets them: a source that works without an account, settings and output paths that
hold, a selection that stays put, a composite panel that tells the truth after a cancel, messages in the window's
own words, and date fields that take typed dates."""

from __future__ import annotations

import datetime as dt
import logging
import sys
from pathlib import Path

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication, QLabel, QMessageBox

from s2desktop.core import demo
from s2desktop.core.catalog import Scene
from s2desktop.gui import settings as st
from tests.fixtures_gui import inputs_of, use_s3


def _visible_texts(widget) -> list[str]:
    return [lab.text() for lab in widget.findChildren(QLabel) if lab.isVisibleTo(widget) and lab.text()]


def _new_window(qtbot):
    from s2desktop.gui.main_window import MainWindow

    w = MainWindow()
    qtbot.addWidget(w)
    w.show()
    return w


# -- 1. a source that works without an account

def test_first_start_opens_on_the_public_cogs_source(qtbot, gui_settings):
    w = _new_window(qtbot)
    assert w.source_panel.source_key() == "cogs"
    dlg = st.SettingsDialog(w)
    qtbot.addWidget(dlg)
    assert dlg.source.currentData() == "cogs"
    w.close()


def test_a_requester_pays_source_says_what_it_needs(qtbot, main_window):
    sp = main_window.source_panel
    sp.set_source("l1c")
    worker = sp.check_credentials()
    qtbot.waitUntil(lambda: worker.done.is_set() and "Checking" not in sp.creds.text(), timeout=10000)
    texts = " ".join(_visible_texts(sp))
    assert "account" in texts and "billed" in texts, texts
    assert "✖" in sp.creds.text() and "--" not in texts
    sp.set_source("cogs")
    texts = " ".join(_visible_texts(sp))
    assert "billed" not in texts, texts


def test_the_demo_is_not_remembered_as_the_users_choice(qtbot, main_window):
    w = main_window
    demo.ensure_demo_archive(size=96)
    w.source_panel.set_source("l2a")
    w.source_panel.set_tile("33UUP")
    w.source_panel.push_recent_tile("33UUP")
    w.source_panel.remember()
    with qtbot.waitSignal(w.scene_panel.searchFinished, timeout=30000):
        w.start_demo()
    assert w.source_panel.source_key() == "demo"
    w.close()
    w2 = _new_window(qtbot)
    assert w2.source_panel.source_key() == "l2a"
    assert w2.source_panel.tile.text() == "33UUP"
    assert demo.DEMO_TILE not in st.get_list(st.RECENT_TILES)
    w2.close()


# -- 2. settings and paths that hold

def test_settings_refuse_a_download_folder_that_is_a_file(qtbot, gui_settings, tmp_path):
    before = st.download_dir()
    a_file = tmp_path / "notes.txt"
    a_file.write_text("x")
    dlg = st.SettingsDialog()
    qtbot.addWidget(dlg)
    dlg.show()
    for bad in (a_file, a_file / "sub"):
        dlg.folder.setText(str(bad))
        dlg.accept()
        assert dlg.isVisible() and dlg.result() != dlg.DialogCode.Accepted
        texts = " ".join(_visible_texts(dlg))
        assert "is a file" in texts, texts
        assert st.download_dir() == before
    dlg.folder.setText(str(tmp_path / "fine"))
    dlg.accept()
    assert dlg.result() == dlg.DialogCode.Accepted and st.download_dir() == tmp_path / "fine"


def test_a_typed_output_path_is_kept_when_a_download_finishes(qtbot, main_window, raster_stack, tmp_path):
    panel = main_window.composite_panel
    inputs = inputs_of(raster_stack(dates=1, size=32))
    panel.set_inputs(inputs, default_output=tmp_path / "a.tif")
    assert panel.output.text() == str(tmp_path / "a.tif")
    panel.set_inputs(inputs, default_output=tmp_path / "b.tif")  # still the default: follows the new one
    assert panel.output.text() == str(tmp_path / "b.tif")
    panel.output.clear()
    qtbot.keyClicks(panel.output, str(tmp_path / "mine.tif"))
    panel.set_inputs(inputs, default_output=tmp_path / "c.tif")
    assert panel.output.text() == str(tmp_path / "mine.tif")
    panel.output.clear()
    panel.set_inputs(inputs, default_output=tmp_path / "d.tif")
    assert panel.output.text() == str(tmp_path / "d.tif")


def _answer_overwrite(button):
    """Click `button` on the overwrite question once it is open (it runs its own event loop)."""
    tries = iter(range(250))  # give up after ~5 s: no question came

    def answer():
        box = QApplication.activeModalWidget()
        if isinstance(box, QMessageBox) and box.objectName() == "overwriteBox":
            box.button(button).click()
        elif next(tries, None) is not None:
            QTimer.singleShot(20, answer)

    QTimer.singleShot(0, answer)


def test_an_existing_output_is_not_overwritten_without_asking(qtbot, main_window, raster_stack, tmp_path):
    panel = main_window.composite_panel
    out = tmp_path / "out" / "c.tif"
    out.parent.mkdir()
    out.write_bytes(b"the user's earlier composite")
    panel.set_inputs(inputs_of(raster_stack(dates=2, size=64)), default_output=out)
    panel.quick.setChecked(False)
    _answer_overwrite(QMessageBox.StandardButton.No)
    panel.start()
    assert not panel.runner.running
    assert out.read_bytes() == b"the user's earlier composite"
    assert panel.start_button.isEnabled()
    _answer_overwrite(QMessageBox.StandardButton.Yes)
    with qtbot.waitSignal(panel.compositeReady, timeout=60000):
        panel.start()
    assert out.read_bytes()[:2] in (b"II", b"MM")  # a GeoTIFF now


def test_the_quick_preview_is_not_left_beside_the_result_nor_recent(qtbot, main_window, raster_stack, tmp_path):
    w = main_window
    panel = w.composite_panel
    out_dir = tmp_path / "out"
    panel.set_inputs(inputs_of(raster_stack(dates=2, size=64)), default_output=out_dir / "c.tif")
    assert panel.quick.isChecked()
    ready = []
    panel.compositeReady.connect(lambda path, preview: ready.append((path, preview)))
    panel.start()
    qtbot.waitUntil(lambda: any(not p for _, p in ready), timeout=60000)
    qtbot.waitUntil(lambda: panel.runner.process is None, timeout=15000)
    assert [p for p, preview in ready if preview], ready  # a preview was shown first
    assert sorted(p.name for p in out_dir.iterdir()) == ["c.json", "c.tif", "c_count.tif"]  # its count, record
    recent = st.get_list(st.RECENT_FILES)
    assert str((out_dir / "c.tif").resolve()) in recent and not [r for r in recent if "_preview" in Path(r).name]
    previews = [Path(p) for p, preview in ready if preview]
    assert not any(p.exists() or p.with_suffix(".json").exists() or p.with_name(f"{p.stem}_count.tif").exists()
                   for p in previews)  # nor the preview's count and record in the cache


# -- 3. selection that stays put

def _search(qtbot, w):
    with qtbot.waitSignal(w.scene_panel.searchFinished, timeout=30000) as found:
        w.search()
    return found.args[0]


def test_searching_again_keeps_the_ticked_scenes(qtbot, main_window, seeded_s3):
    w = main_window
    use_s3(w, seeded_s3, "l1c")
    w.source_panel.tile.setText("33UUP")
    w.scene_panel.set_dates(dt.date(2023, 7, 1), dt.date(2023, 10, 31))
    scenes = _search(qtbot, w)
    assert len(scenes) >= 2
    w.scene_panel.model.set_checked([scenes[1].scene_id], True)
    again = _search(qtbot, w)
    assert [s.scene_id for s in again] == [s.scene_id for s in scenes]
    assert w.scene_panel.model.checked == {scenes[1].scene_id}
    assert w.act_download.isEnabled()


def _scene(day: int, cloud: float) -> Scene:
    return Scene("33UUP", dt.date(2023, 7, day), 0, cloud, 100.0, "05.09", f"S2A_{day}", f"tiles/{day}")


def test_select_under_selects_exactly_the_scenes_under_the_limit(qtbot):
    from s2desktop.gui.scene_list import ScenePanel

    panel = ScenePanel()
    qtbot.addWidget(panel)
    scenes = [_scene(1, 10.0), _scene(6, 45.0), _scene(11, 80.0)]
    panel.model.set_scenes(scenes)
    panel.model.set_checked([scenes[2].scene_id], True)  # ticked by hand earlier
    panel.under.setValue(50)
    panel.select_under_cloud()
    assert panel.model.checked == {scenes[0].scene_id, scenes[1].scene_id}
    panel.under.setValue(20)
    panel.select_under_cloud()
    assert panel.model.checked == {scenes[0].scene_id}
    panel.under.setValue(45)  # at most 45 %: the 45.0 % scene is in, as with --max-cloud 45
    panel.select_under_cloud()
    assert panel.model.checked == {scenes[0].scene_id, scenes[1].scene_id}
    assert panel.select_under.text() == "Select at most"


def test_the_window_and_the_command_line_take_the_same_scenes_for_one_cloud_limit(qtbot, main_window, seeded_s3,
                                                                                   capsys):
    """One meaning, "at most N %": a scene of exactly 30.0 % is taken by both (the window used to take only the
    scenes under 30 %, and composite different scenes than --max-cloud 30)."""
    import json

    from s2desktop.cli import main as cli_main

    w = main_window
    use_s3(w, seeded_s3, "cogs")
    w.source_panel.tile.setText("33UUP")
    w.scene_panel.set_dates(dt.date(2023, 6, 1), dt.date(2023, 10, 31))
    scenes = _search(qtbot, w)
    assert 30.0 in [s.cloud_cover for s in scenes]
    w.scene_panel.under.setValue(30)
    w.scene_panel.select_under_cloud()
    in_window = {(s.date.isoformat(), s.sequence) for s in w.scene_panel.model.checked_scenes()}
    assert cli_main(["search", "--source", "cogs", "--endpoint-url", seeded_s3.endpoint, "--tile", "33UUP",
                     "--start", "2023-06-01", "--end", "2023-10-31", "--max-cloud", "30", "--json"]) == 0
    on_command_line = {(r["date"], r["sequence"]) for r in json.loads(capsys.readouterr().out)}
    assert in_window == on_command_line and ("2023-07-14", 1) in in_window


# -- 4. after a cancel

def test_a_cancelled_composite_stops_showing_the_time(qtbot, main_window, raster_stack, tmp_path):
    panel = main_window.composite_panel
    panel.set_inputs(inputs_of(raster_stack(dates=3, size=300)), default_output=tmp_path / "out" / "c.tif")
    panel.quick.setChecked(False)
    with qtbot.waitSignal(panel.runner.cancelled, timeout=30000):
        panel.start()
        assert panel.time_label.text().startswith("Elapsed")
        panel.cancel()
    qtbot.waitUntil(lambda: panel.runner.process is None, timeout=15000)
    assert panel.time_label.text() == ""
    assert "Cancelled" in panel.status.text()


# -- 5. messages in the window's own words

CLI_MESSAGES = [
    "no usable AWS credentials for s3://sentinel-s2-l1c/tiles: run `aws configure`, set AWS_PROFILE (or "
    "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY), or pass --profile NAME",
    "AWS profile 'work' is not defined in ~/.aws/config or ~/.aws/credentials; create it with "
    "`aws configure --profile work` or pick another with --profile",
    "cannot reach http://127.0.0.1:9 after 3 attempts (ConnectTimeoutError); check the network connection or "
    "--endpoint-url",
    "bucket 'b' does not exist at http://127.0.0.1:9; check --bucket and --endpoint-url",
    "cannot write /x/B04.jp2 (Permission denied); pick a writable folder with --out",
    "disk full while writing /x/B04.jp2 (No space left on device); free some space or use --out elsewhere",
    "output /x/c.tif already exists (use --overwrite to replace it)",
    "--max-cloud 120 is not a percentage between 0 and 100",
]


def test_messages_name_no_command_line_options(qtbot, main_window):
    w = main_window
    for message in CLI_MESSAGES:
        w.report_error("Search failed", message, "", dialog=True)
        box = w.findChild(QMessageBox, "errorBox")
        assert "--" not in w.statusBar().currentMessage() and "--" not in box.text(), box.text()
        box.close()
        box.deleteLater()
        w.scene_panel._failed(message, "")
        assert "--" not in w.scene_panel.status.text(), w.scene_panel.status.text()
        w.composite_panel._failed(message)
        assert "--" not in w.composite_panel.status.text(), w.composite_panel.status.text()
        for box in w.findChildren(QMessageBox):
            box.close()
    w.report_error("Download failed", CLI_MESSAGES[4], dialog=False)
    assert "download folder" in w.statusBar().currentMessage()


def test_searching_the_demo_for_another_tile_says_it_holds_only_its_tile(qtbot, main_window):
    w = main_window
    demo.ensure_demo_archive(size=96)
    w.source_panel.set_source("demo")
    w.source_panel.set_tile("33UUP")
    assert w.search() is None
    message = w.statusBar().currentMessage()
    assert demo.DEMO_TILE in message and "only" in message, message
    assert demo.DEMO_TILE in w.scene_panel.status.text()
    w.source_panel.tile.setText("13.5,48.1,13.8,48.3")  # an area, not over the demo's tile either
    assert w.source_panel.area() is not None and w.search() is None
    message = w.statusBar().currentMessage()
    assert "draw the area over " + demo.DEMO_TILE in message, message
    assert "draw the area over" in w.scene_panel.status.text()


def test_window_log_lines_go_to_the_file_not_the_terminal(qtbot, gui_settings, capsys):
    from s2desktop.gui.app import setup_logging

    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        for debug in (False, True):
            terminal = logging.StreamHandler(sys.stderr)  # what `s2desktop` (cli.main's basicConfig) installs
            root.addHandler(terminal)
            root.setLevel(logging.DEBUG if debug else logging.WARNING)
            path = setup_logging()
            logging.getLogger("s2desktop.gui.test").info("a line for the log file (debug=%s)", debug)
            for h in root.handlers:
                h.flush()
            err = capsys.readouterr().err
            assert ("a line for the log file" in err) == debug, err
            assert f"(debug={debug})" in Path(path).read_text()
            root.removeHandler(terminal)
    finally:
        for h in root.handlers[:]:
            if h not in saved[0]:
                root.removeHandler(h)
                h.close()
        for h in saved[0]:
            if h not in root.handlers:
                root.addHandler(h)
        root.setLevel(saved[1])


# -- 6. date fields that take typed dates

def test_date_fields_take_typed_dates(qtbot):
    from s2desktop.gui.scene_list import ScenePanel

    panel = ScenePanel()
    qtbot.addWidget(panel)
    panel.show()
    qtbot.waitExposed(panel)
    qtbot.mouseClick(panel.start, Qt.MouseButton.LeftButton)
    qtbot.keyClicks(panel.start, "2023-07-14")
    qtbot.mouseClick(panel.end, Qt.MouseButton.LeftButton)
    qtbot.keyClicks(panel.end, "14/08/2023")
    assert panel.dates() == (dt.date(2023, 7, 14), dt.date(2023, 8, 14))
    panel.set_dates(dt.date(2022, 1, 2), dt.date(2022, 2, 16))
    assert panel.dates() == (dt.date(2022, 1, 2), dt.date(2022, 2, 16))
    assert panel.start.text() == "2022-01-02"


def test_the_line_beside_search_follows_the_tile(qtbot, main_window):
    """A message about one tile does not stay beside Search once another is typed, nor a hint about a tile beside
    an area the field cannot take."""
    w = main_window
    w.source_panel.set_source("demo")
    w.source_panel.tile.setText("33UUP")
    assert w.search() is None  # the demo holds only 29RKH: said beside Search
    assert "33UUP" in w.scene_panel.status.text()
    w.source_panel.tile.clear()
    qtbot.keyClicks(w.source_panel.tile, "29RKH")
    assert "33UUP" not in w.scene_panel.status.text() and "29RKH" in w.scene_panel.status.text()
    w.source_panel.tile.clear()
    qtbot.keyClicks(w.source_panel.tile, "13.8,48.1,13.5,48.2")  # west of east: an error under the field
    assert "is not west of" in w.source_panel.tile_error.text()
    assert "29RKH" not in w.scene_panel.status.text()


def test_the_season_year_is_this_years_and_a_season_never_starts_in_the_future(qtbot):
    from s2desktop.gui.scene_list import SEASONS, ScenePanel

    panel = ScenePanel()
    qtbot.addWidget(panel)
    today = dt.date.today()
    assert panel.season_year.value() == today.year
    for name in SEASONS:
        panel.season_year.setValue(today.year)
        panel._apply_quick(panel.quick.findData(name))
        start, end = panel.dates()
        assert start <= today and (end - start).days > 80, (name, start, end)
        assert panel.season_year.value() in (today.year, today.year - 1)


def test_a_failed_search_is_logged_once_in_the_windows_words(qtbot, main_window, seeded_s3, caplog):
    """It was logged three times (the worker, the scene panel, the window), the first naming --bucket and
    --endpoint-url, which the window does not have."""
    w = main_window
    w.source_panel.set_source("l1c", endpoint=seeded_s3.endpoint, bucket="no-such-bucket")
    w.source_panel.tile.setText("33UUP")
    w.scene_panel.set_dates(dt.date(2023, 7, 1), dt.date(2023, 7, 31))
    with caplog.at_level(logging.INFO, logger="s2desktop"):
        with qtbot.waitSignal(w.scene_panel.searchFailed, timeout=30000):
            w.search()
        qtbot.wait(100)
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len([m for m in lines if "no-such-bucket" in m]) == 1, lines
    assert not any("--" in m for m in lines), lines
