"""GUI test fixtures: QSettings in a temp folder, the main window, and helpers to wait on it.

QSettings goes to `$S2DESKTOP_HOME/settings` (the autouse fixture points S2DESKTOP_HOME at a fresh temp folder
per test), so tests never see each other's (or the user's) window layout, recent tiles or download folder.
"""

from __future__ import annotations

import pytest


@pytest.fixture
def gui_settings(qapp, _isolated_home):
    """The application names and INI QSettings under this test's temp home; returns the settings file path."""
    from s2desktop.gui.app import create_application
    from s2desktop.gui.settings import settings

    create_application()
    s = settings()
    s.clear()
    s.sync()
    return s.fileName()


@pytest.fixture
def main_window(qtbot, qapp, gui_settings, tmp_path):
    """A shown MainWindow whose downloads go to tmp_path/downloads; shut down cleanly afterwards."""
    from s2desktop.gui import settings as st
    from s2desktop.gui.main_window import MainWindow
    from s2desktop.gui.workers import registry

    st.settings().setValue(st.DOWNLOAD_DIR, str(tmp_path / "downloads"))
    st.settings().setValue(st.WORKERS, 2)
    w = MainWindow()
    w.composite_panel.workers = 0  # composite windows inside the worker process: one process, not a pool
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    yield w
    w.shutdown()
    assert registry.shutdown(15000), "workers still running after the test"
    qapp.processEvents()  # deliver the last queued worker signals while the widgets still exist


def use_s3(window, seeded, layout: str = "l1c") -> None:
    """Point the source panel at the local S3 server's bucket of `layout`."""
    window.source_panel.set_source(layout, endpoint=seeded.endpoint, bucket=seeded.buckets[layout])


def search_and_tick(qtbot, window, tile: str, start, end) -> list:
    """Search ``tile`` between the dates in the window's source and tick every scene found."""
    window.source_panel.tile.setText(tile)
    window.scene_panel.set_dates(start, end)
    with qtbot.waitSignal(window.scene_panel.searchFinished, timeout=30000) as found:
        window.search()
    scenes = found.args[0]
    window.scene_panel.model.set_checked([s.scene_id for s in scenes], True)
    return scenes


def inputs_of(stack):
    """The composite panel's inputs for a raster stack fixture (what the download step hands it): a core Stack."""
    from s2desktop.core.stack import from_files

    return from_files(stack.red, stack.green, stack.blue)


def download_request(window, scenes, out, bands=("B04", "B03", "B02"), workers: int | None = None):
    """The request the window makes for `scenes`, into `out`, with the given bands and files at once."""
    from pathlib import Path

    from s2desktop.core.pipeline import Request, SourceSpec

    return Request(source=SourceSpec(**window.source_panel.source_spec()), scenes=tuple(scenes),
                   download_dir=Path(out), bands=tuple(bands), download_workers=workers)
