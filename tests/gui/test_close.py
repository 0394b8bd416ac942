"""Closing the main window while a download and a composite are running: both stop cleanly -- the download's
worker returns and leaves neither the file nor its temporary, the composite process and its pool processes are
gone, and no partial output is left."""

from __future__ import annotations

import time

import psutil

from tests.fixtures_gui import download_request, inputs_of
from tests.gui.test_downloads import BIG, _partials, _search_the_big_scene


def test_closing_the_window_cancels_download_and_composite(qtbot, main_window, slow_s3, scratch_bucket,
                                                           raster_stack, tmp_path):
    w = main_window

    # the download first: through the throttled server its 64 MiB file takes seconds
    scenes = _search_the_big_scene(qtbot, w, slow_s3, scratch_bucket)
    dl_dir = tmp_path / "downloads"
    with qtbot.waitSignal(w.download_panel.started, timeout=30000):
        w.download_panel.start(download_request(w, scenes, dl_dir, bands=["B04"], workers=1),
                               source=w.scene_panel.source)
    (row,) = w.download_panel.rows
    qtbot.waitUntil(lambda: row.state == "running" and 0 < row.file.bytes_done < BIG, timeout=30000)

    # then a composite in its process with a pool of two, 1,024 small windows: progress all along
    stack = raster_stack(dates=4, size=2048, block=128)
    comp_dir = tmp_path / "composites"
    panel = w.composite_panel
    panel.workers = 2
    panel.window_size = 64
    panel.set_inputs(inputs_of(stack), default_output=comp_dir / "c.tif")
    panel.quick.setChecked(False)

    # the window closes at the composite's first partial progress, the download still partway
    closed, kids = [], []

    def close_when_partway(event):
        if not closed and 0 < event.items_done < event.items_total // 2:
            kids.extend(psutil.Process(panel.runner.process.pid).children(recursive=True))  # its pool
            closed.append((row.file.bytes_done, panel.runner.running, time.monotonic()))
            w.close()  # what the window's close button does
            closed.append(time.monotonic())

    panel.runner.progress.connect(close_when_partway)
    panel.start()
    proc = panel.runner.process
    qtbot.waitUntil(lambda: len(closed) == 2, timeout=60000)
    assert kids, "the composite process had no pool"

    got, composite_running, t0 = closed[0]
    assert 0 < got < BIG and composite_running  # both really were running at the close
    assert closed[1] - t0 < 10.0, f"closing took {closed[1] - t0:.1f} s"
    assert not w.isVisible()

    # the composite process and its pool are gone, without output or temporaries
    assert panel.runner.process is None
    assert not proc.is_alive() and proc.exitcode is not None
    for k in kids:
        assert not k.is_running() or k.status() == psutil.STATUS_ZOMBIE, k
    left = {c.pid for c in psutil.Process().children(recursive=True)}
    assert proc.pid not in left and not left & {k.pid for k in kids}
    assert not comp_dir.exists() or list(comp_dir.iterdir()) == []

    # the download's worker has returned; neither the file nor its .part is left
    assert w.download_panel.worker.done.is_set()
    qtbot.waitUntil(lambda: row.state == "cancelled", timeout=5000)  # its queued signals still arrive
    dest = row.path
    assert not dest.exists()
    assert not dest.parent.exists() or list(dest.parent.iterdir()) == []
    assert _partials(dl_dir) == []
