"""`s2desktop` (the window) on a machine without a display: one clear line, not Qt's abort."""

import os
import subprocess
import sys


def test_window_without_display_is_a_one_line_error(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    env["S2DESKTOP_HOME"] = str(tmp_path)
    out = subprocess.run([sys.executable, "-m", "s2desktop"], env=env, capture_output=True, text=True,
                         timeout=60)
    if sys.platform.startswith("linux"):
        assert out.returncode == 2
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("s2desktop: error: no display"), out.stderr
        assert "demo --headless" in lines[0]
        assert "PySide6" not in out.stderr and "qt.qpa" not in out.stderr
