"""The window's Dask scheduler: a setting checked as typed (the command line's own check), kept for the next
start, and carried by the window's composite request into the composite process, which runs on that cluster."""

from __future__ import annotations

import socket
import sys

from tests.fixtures_gui import inputs_of


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_scheduler_is_checked_as_typed_kept_and_reaches_the_composite_process(
        qtbot, main_window, raster_stack, tmp_path):
    from s2desktop.gui import settings as st

    dialog = st.SettingsDialog(main_window)
    assert dialog.scheduler.text() == "" and not dialog.scheduler_error.isVisibleTo(dialog)  # this machine's
    qtbot.keyClicks(dialog.scheduler, "sched.lan:8786")
    assert "give 'local' or an address such as tcp://HOST:8786" in dialog.scheduler_error.text()
    assert dialog.scheduler_error.isVisibleTo(dialog)
    dialog.accept()  # refused: stays open, nothing saved
    assert dialog.result() == 0 and st.dask_scheduler() is None

    address = f"tcp://127.0.0.1:{_closed_port()}"
    dialog.scheduler.setText(address)
    assert not dialog.scheduler_error.isVisibleTo(dialog)
    dialog.accept()
    assert st.dask_scheduler() == address
    assert st.SettingsDialog(main_window).scheduler.text() == address  # kept for the next time

    panel = main_window.composite_panel
    panel.set_inputs(inputs_of(raster_stack(dates=2, size=256, block=128)), default_output=tmp_path / "c.tif")
    panel.quick.setChecked(False)
    with qtbot.waitSignal(panel.compositeFailed, timeout=60000) as failed:
        panel.start()
    # the composite process tried the cluster the request named (nobody listens there), not its own pool
    assert f"cannot reach the Dask scheduler at {address}" in failed.args[0]
    assert not (tmp_path / "c.tif").exists()


def test_without_dask_the_field_says_what_to_install(qtbot, gui_settings, monkeypatch):
    from s2desktop.gui import settings as st

    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed: ImportError, as when not installed
    dialog = st.SettingsDialog()
    qtbot.addWidget(dialog)
    dialog.scheduler.setText("local")
    assert "pip install 's2desktop[dask]'" in dialog.scheduler_error.text()
    dialog.scheduler.setText("")  # this machine's processes need no Dask
    assert not dialog.scheduler_error.isVisibleTo(dialog)


def test_an_areas_request_carries_the_scheduler_saved(main_window, tmp_path):
    from s2desktop.core.areas import parse_bbox
    from s2desktop.core.pipeline import Request
    from s2desktop.gui import settings as st

    cp = main_window.composite_panel
    cp.set_area(Request(area=parse_bbox("12.0,48.0,12.1,48.1"), scenes=()), streamed=True)
    assert cp.area_job(tmp_path / "a.tif").composite.scheduler is None  # by default this machine's processes
    dialog = st.SettingsDialog(main_window)
    dialog.scheduler.setText("local")
    dialog.accept()
    assert cp.area_job(tmp_path / "a.tif").composite.scheduler == "local"  # the next composite runs on it
