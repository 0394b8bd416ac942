"""The window's panels one at a time: tile entry, map, composite process (cancel, errors, crash), viewer,
layout persistence, workers."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent

from s2desktop.core.errors import CancelledError, NotFoundError
from s2desktop.core.pipeline import CompositeOptions
from s2desktop.core.stack import Stack, from_files
from s2desktop.core.progress import Progress
from tests.fixtures_gui import inputs_of


def test_invalid_tile_shows_the_core_error(qtbot, main_window):
    w = main_window
    qtbot.keyClicks(w.source_panel.tile, "61UUP")
    assert w.source_panel.tile_id() is None
    assert w.source_panel.tile_error.text() == "Zone 61 is out of range 1-60"
    assert not w.act_search.isEnabled()
    w.source_panel.tile.clear()
    qtbot.keyClicks(w.source_panel.tile, "33UIP")
    assert "does not exist" in w.source_panel.tile_error.text()
    assert w.search() is None
    assert "does not exist" in w.statusBar().currentMessage()
    w.source_panel.tile.clear()
    qtbot.keyClicks(w.source_panel.tile, "T33UUP")
    assert w.source_panel.tile_id() == "33UUP" and w.source_panel.tile_error.text().startswith("33UUP · EPSG:32633")
    assert w.act_search.isEnabled()


def test_map_click_fills_the_tile_field(qtbot, main_window):
    w = main_window
    w.map.choose_overlap = lambda tiles: tiles[-1]  # answer the overlap question like a user would
    picked = w.map.click_lonlat(13.0, 48.5)
    assert picked is not None
    assert w.source_panel.tile.text() == picked and w.source_panel.tile_id() == picked


def test_layout_and_recent_tiles_persist(qtbot, gui_settings, tmp_path):
    from s2desktop.gui.main_window import MainWindow

    w = MainWindow()
    qtbot.addWidget(w)
    w.show()
    w.dock_downloads.hide()
    w.source_panel.tile.setText("32TQM")
    w.source_panel.push_recent_tile("32TQM")
    w.close()
    w2 = MainWindow()
    qtbot.addWidget(w2)
    w2.show()
    assert not w2.dock_downloads.isVisible() and w2.dock_scenes.isVisible()
    assert w2.source_panel.tile.text() == "32TQM"
    assert w2.source_panel.recent.findData("32TQM") >= 0
    w2.close()
    assert Path(gui_settings).is_file() and Path(gui_settings).is_relative_to(os.environ["S2DESKTOP_HOME"])


def _composite_inputs(panel, stack, out: Path):
    panel.set_inputs(inputs_of(stack), default_output=out)
    panel.quick.setChecked(False)


def test_composite_cancel_leaves_no_files(qtbot, main_window, raster_stack, tmp_path):
    panel = main_window.composite_panel
    stack = raster_stack(dates=3, size=300)
    out_dir = tmp_path / "out"
    _composite_inputs(panel, stack, out_dir / "c.tif")
    with qtbot.waitSignal(panel.runner.cancelled, timeout=30000):
        panel.start()
        assert panel.runner.running
        panel.cancel()
    qtbot.waitUntil(lambda: panel.runner.process is None, timeout=15000)
    assert "Cancelled" in panel.status.text()
    assert not out_dir.exists() or list(out_dir.iterdir()) == []
    assert panel.start_button.isEnabled()


def test_composite_error_is_shown_and_window_stays_usable(qtbot, main_window, raster_stack, tmp_path):
    w = main_window
    panel = w.composite_panel
    stack = raster_stack(dates=2, size=64)
    good = inputs_of(stack)
    bad = from_files(stack.red + [tmp_path / "missing_B04.tif"], stack.green + stack.green[:1],
                     stack.blue + stack.blue[:1])
    panel.set_inputs(bad, default_output=tmp_path / "out" / "c.tif")
    panel.quick.setChecked(False)
    with qtbot.waitSignal(panel.compositeFailed, timeout=30000) as failed:
        panel.start()
    assert "missing_B04.tif" in failed.args[0]
    assert "missing_B04.tif" in panel.status.text()
    assert "Composite failed" in w.statusBar().currentMessage()
    box = w.findChild(object, "errorBox")
    assert box is not None and "missing_B04.tif" in box.text()
    box.close()
    qtbot.waitUntil(lambda: panel.start_button.isEnabled(), timeout=10000)
    # still usable: a good run afterwards succeeds
    panel.set_inputs(good, default_output=tmp_path / "out" / "c.tif")
    with qtbot.waitSignal(panel.compositeReady, timeout=60000):
        panel.start()
    assert (tmp_path / "out" / "c.tif").is_file()


def test_crashed_composite_process_is_reported(qtbot, main_window, tmp_path):
    runner = main_window.composite_panel.runner
    # os.abort takes no arguments: the child dies with a TypeError before sending any message (exit code 1)
    with qtbot.waitSignal(runner.failed, timeout=30000) as failed:
        runner.start(Stack(()), CompositeOptions(str(tmp_path / "x.tif")),
                     target=os.abort)
    assert "stopped unexpectedly" in failed.args[0] and "exit code" in failed.args[0]
    qtbot.waitUntil(lambda: runner.process is None, timeout=10000)
    assert not runner.running


def test_viewer_opens_a_dropped_raster_with_readout(qtbot, main_window, raster_stack):
    w = main_window
    stack = raster_stack(dates=1, size=200)
    path = stack.red[0]
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    ev = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.NoButton,
                    Qt.KeyboardModifier.NoModifier)
    with qtbot.waitSignal(w.viewer.rendered, timeout=20000):
        w.dropEvent(ev)
    assert w.viewer.path == str(path)
    assert w.attributes.value_of("width") == "200"
    px = w.viewer.pixel_at(10.2, 20.7)
    assert px["values"] == [int(stack.data[0, 0, 20, 10])]
    assert px["x"] == pytest.approx(300000 + 10.5 * 10) and px["y"] == pytest.approx(5000040 - 20.5 * 10)
    lon, lat = px["lonlat"]
    assert 12.0 < lon < 13.5 and 45 < lat < 45.2
    # the readout: pixel and values on one line, map and geographic coordinates on the next (never cut off)
    line1, line2 = w.viewer.readout_text(px).split("\n")
    assert line1.startswith("pixel 10, 20") and str(px["values"][0]) in line1
    assert line2.startswith("EPSG:") and f"lon {lon:.5f}" in line2 and f"lat {lat:.5f}" in line2
    # per-band levels from the histogram region re-render
    with qtbot.waitSignal(w.viewer.rendered, timeout=10000):
        w.viewer.region.setRegion((1000, 2000))
    assert w.viewer.stretch.currentData() == "levels"
    assert w.viewer.levels[0] == pytest.approx((1000, 2000), abs=1)


def test_worker_errors_and_cancel(qtbot):
    from s2desktop.gui import workers

    def boom():
        raise NotFoundError("s3://b/k does not exist")

    def bug():
        return {}["missing"]

    w = workers.Worker(boom)
    with qtbot.waitSignal(w.signals.errored, timeout=5000) as e:
        workers.registry.start(w)
    assert e.args[0] == "s3://b/k does not exist"
    w = workers.Worker(bug)
    with qtbot.waitSignal(w.signals.errored, timeout=5000) as e:
        workers.registry.start(w)
    assert e.args[0] == "KeyError: 'missing'" and "Traceback" in e.args[1]

    gate = threading.Event()

    def slow(progress=None, cancel=None):
        for i in range(1000):
            progress(Progress("composite", i, 1000))
            gate.set()
            if cancel.wait(0.01):
                raise CancelledError("cancelled")
        return "finished"

    w = workers.Worker(slow, progress=True, cancel=True)
    seen = []
    w.signals.progress.connect(lambda event: seen.append(event.items_done))
    with qtbot.waitSignal(w.signals.cancelled, timeout=10000):
        workers.registry.start(w)
        assert gate.wait(5)
        w.cancel()
    assert w.done.wait(5)
    assert len(seen) < 50  # throttled to ~10/s


def test_settings_dialog_saves_to_qsettings(qtbot, gui_settings, tmp_path):
    from s2desktop.gui import settings as st

    dlg = st.SettingsDialog()
    qtbot.addWidget(dlg)
    dlg.folder.setText(str(tmp_path / "dl"))
    dlg.workers.setValue(7)
    dlg.source.setCurrentIndex(dlg.source.findData("cogs"))
    dlg.endpoint.setText("http://127.0.0.1:9")
    dlg.accept()
    assert st.download_dir() == tmp_path / "dl"
    assert st.worker_count() == 7
    assert st.get_str(st.SOURCE) == "cogs" and st.get_str(st.ENDPOINT) == "http://127.0.0.1:9"


def test_credentials_indicator(qtbot, main_window, monkeypatch):
    sp = main_window.source_panel
    sp.set_source("l1c")
    w = sp.check_credentials()
    qtbot.waitUntil(lambda: w.done.is_set() and "credentials" in sp.creds.text()
                    and "Checking" not in sp.creds.text(), timeout=10000)
    assert sp.creds.text().startswith("✖")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    sp.check_credentials()
    qtbot.waitUntil(lambda: sp.creds.text().startswith("✔"), timeout=10000)
    assert "env" in sp.creds.text()


def test_app_run_opens_the_window_with_a_raster_and_logs(qtbot, gui_settings, raster_stack, qapp, monkeypatch):
    import logging
    import sys

    from PySide6.QtCore import QCoreApplication, QEvent, QTimer

    monkeypatch.setattr(sys, "excepthook", sys.excepthook)  # run() installs its own; put it back afterwards
    handlers = list(logging.getLogger().handlers)
    from PySide6.QtWidgets import QApplication

    from s2desktop.core.paths import user_log_dir
    from s2desktop.gui.app import run
    from s2desktop.gui.main_window import MainWindow

    stack = raster_stack(dates=1, size=64)
    seen = {}

    def check():
        wins = [w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow) and w.isVisible()]
        if wins and wins[-1].viewer.path == str(stack.red[0]):
            seen["window"] = wins[-1]
            wins[-1].close()
            qapp.quit()
        else:
            QTimer.singleShot(50, check)

    QTimer.singleShot(0, check)
    # safety net, stopped afterwards: left pending it would quit the shared QApplication in the middle of a later
    # test, and every wait of that test (and of the tests after it) would then end at once
    safety = QTimer()
    safety.setSingleShot(True)
    safety.timeout.connect(qapp.quit)
    safety.start(20000)
    try:
        assert run([str(stack.red[0])]) == 0
    finally:
        safety.stop()
        # closing the last window also posted a Quit event; delivered in a later test it would make every event
        # loop there (qtbot.waitSignal) return at once
        QCoreApplication.removePostedEvents(None, QEvent.Type.Quit)
    assert "window" in seen
    assert (user_log_dir() / "s2desktop.log").read_text().count("window starting") >= 1
    for h in logging.getLogger().handlers[:]:
        if h not in handlers:
            logging.getLogger().removeHandler(h)
            h.close()


def test_composite_action_follows_the_composite_button(qtbot, main_window, raster_stack, tmp_path):
    """The toolbar/menu Composite is off while a composite runs and back on when it is cancelled."""
    w = main_window
    panel = w.composite_panel
    stack = raster_stack(dates=3, size=300)
    _composite_inputs(panel, stack, tmp_path / "out" / "c.tif")
    assert w.act_composite.isEnabled()
    with qtbot.waitSignal(panel.runner.cancelled, timeout=30000):
        panel.start()
        assert panel.runner.running and not panel.start_button.isEnabled()
        assert not w.act_composite.isEnabled()
        w.scene_panel.model.set_checked([], True)  # anything else refreshing the actions meanwhile
        panel.cancel()
    qtbot.waitUntil(lambda: panel.start_button.isEnabled(), timeout=15000)
    assert w.act_composite.isEnabled()


def test_downloads_have_a_folder_of_their_own_under_the_user_data_folder(qtbot, gui_settings):
    """Not the root of the user data folder, mixed with demo-archive/ (and the settings dialog shows it)."""
    from s2desktop.core.demo import demo_archive_dir
    from s2desktop.core.paths import user_data_dir
    from s2desktop.gui import settings as st

    folder = st.download_dir()
    assert folder.parent == user_data_dir() and folder.name == "downloads"
    assert not demo_archive_dir().is_relative_to(folder)
    dlg = st.SettingsDialog()
    qtbot.addWidget(dlg)
    assert dlg.folder.text() == str(folder)
    dlg.accept()  # the default kept: nothing stored, so it follows the default
    assert st.settings().value(st.DOWNLOAD_DIR) is None and st.download_dir() == folder


@pytest.mark.parametrize("text", ["29RKH", "5,40,15,50", "60VAA", "13.8,48.1,13.5,48.2"])
def test_the_line_under_the_tile_field_is_never_clipped(qtbot, main_window, text):
    """The description or error under 'Tile or area', at the default layout of 1280 x 800: all of its lines show."""
    w = main_window
    w._default_layout()
    assert w.size().toTuple() == (1280, 800)  # the download folder's long path does not widen it
    w.source_panel.tile.setText(text)
    label = w.source_panel.tile_error
    qtbot.waitUntil(lambda: label.height() >= label.heightForWidth(label.width()), timeout=2000)


def test_the_settings_dialogs_error_line_is_never_clipped(qtbot, gui_settings, tmp_path):
    from s2desktop.gui import settings as st

    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    dlg = st.SettingsDialog()
    qtbot.addWidget(dlg)
    dlg.show()
    dlg.folder.setText(str(blocker / "downloads" / "of" / "a" / "rather" / "long" / "name"))
    dlg.accept()
    label = dlg.folder_error
    assert label.isVisible() and "is a file" in label.text()
    qtbot.waitUntil(lambda: label.height() >= label.heightForWidth(label.width()), timeout=2000)
