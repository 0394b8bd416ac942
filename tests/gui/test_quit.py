"""Quitting the application while a background task is blocked on a server that never answers: the process
leaves within seconds (it used to stay behind, windowless, until killed)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

# The application, run as `s2desktop gui` runs it, in its own process: a search is sent to a TCP server
# that accepts connections and never replies, then the window is closed.
SCRIPT = r"""
import socket, sys, threading
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication
from s2desktop.gui import app as appmod

server = socket.create_server(("127.0.0.1", 0))
accepted = []
threading.Thread(target=lambda: [accepted.append(server.accept()) for _ in iter(int, 1)], daemon=True).start()

def drive():
    from s2desktop.gui.main_window import MainWindow
    (w,) = [x for x in QApplication.topLevelWidgets() if isinstance(x, MainWindow)]
    w.source_panel.set_source("l1c", endpoint=f"http://127.0.0.1:{server.getsockname()[1]}", bucket="silent")
    w.source_panel.tile.setText("33UUP")
    w.search()
    def close():
        print(f"closing; {len(accepted)} connection(s) to the silent server", flush=True)
        w.close()
    QTimer.singleShot(1500, close)

appmod.create_application()
QTimer.singleShot(300, drive)
from s2desktop.cli import main
sys.exit(main(["gui"]))
"""


def test_quitting_with_a_task_blocked_on_a_silent_server_leaves_promptly(tmp_path):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", S2DESKTOP_HOME=str(tmp_path / "home"),
               AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_EC2_METADATA_DISABLED="true")
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=120)
    took = time.monotonic() - t0
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert re.search(r"closing; [1-9]\d* connection", proc.stdout), proc.stdout  # the search was waiting on it
    assert took < 30, f"the process left {took:.0f} s after start"
    logs = "".join(p.read_text() for p in (tmp_path / "home").rglob("*.log"))
    assert "still blocked: search" in logs


SETTINGS_SCRIPT = r"""
import sys
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication
from s2desktop.gui import app as appmod

def drive():
    from s2desktop.gui.main_window import MainWindow
    (w,) = [x for x in QApplication.topLevelWidgets() if isinstance(x, MainWindow)]
    QTimer.singleShot(200, lambda: QApplication.activeModalWidget().accept())
    w.settings_dialog()
    print("settings saved", flush=True)
    QTimer.singleShot(300, w.close)

appmod.create_application()
QTimer.singleShot(300, drive)
from s2desktop.cli import main
sys.exit(main(["gui"]))
"""


def test_quitting_after_the_settings_dialog_is_clean(tmp_path):
    """The Settings dialog, then quit: the process used to print 'QObject: shared QObject was deleted directly'
    (and could crash in malloc) as the window went, the dialog it had parented still alive under it."""
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", S2DESKTOP_HOME=str(tmp_path / "home"))
    proc = subprocess.run([sys.executable, "-c", SETTINGS_SCRIPT], env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0 and "settings saved" in proc.stdout, proc.stderr[-2000:]
    assert "QObject" not in proc.stderr and "malloc" not in proc.stderr, proc.stderr[-2000:]
