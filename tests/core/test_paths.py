"""Per-user folders keep their names (platformdirs underneath) and S2DESKTOP_HOME overrides them."""

import sys
from pathlib import Path

import pytest

from s2desktop.core import paths

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the XDG names are Linux's")


@pytest.fixture
def no_override(monkeypatch, tmp_path):
    monkeypatch.delenv("S2DESKTOP_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    for var in ("XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path


@linux_only
def test_linux_names_without_xdg_variables(no_override):
    home = no_override
    assert paths.user_data_dir() == home / ".local/share/s2desktop"
    assert paths.user_cache_dir() == home / ".cache/s2desktop"
    assert paths.user_log_dir() == home / ".local/state/s2desktop/logs"


@linux_only
def test_linux_names_follow_xdg_variables(no_override, monkeypatch, tmp_path):
    for var, sub in (("XDG_DATA_HOME", "d"), ("XDG_CACHE_HOME", "c"), ("XDG_STATE_HOME", "s")):
        monkeypatch.setenv(var, str(tmp_path / sub))
    assert paths.user_data_dir() == tmp_path / "d/s2desktop"
    assert paths.user_cache_dir() == tmp_path / "c/s2desktop"
    assert paths.user_log_dir() == tmp_path / "s/s2desktop/logs"


@linux_only
def test_empty_xdg_variable_means_the_default(no_override, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", "")
    assert paths.user_cache_dir() == no_override / ".cache/s2desktop"


def test_s2desktop_home_overrides_all_three(monkeypatch, tmp_path):
    monkeypatch.setenv("S2DESKTOP_HOME", str(tmp_path))
    assert (paths.user_data_dir(), paths.user_cache_dir(), paths.user_log_dir()) == (
        tmp_path / "data", tmp_path / "cache", tmp_path / "logs")
    assert isinstance(paths.user_data_dir(), Path)


LATE_WRITER = '''
import threading
import time

from s2desktop.core import paths


def test_leaves_work_running():
    """Like a search worker still running when its test ends: it writes after the test, and the run, ended
    (the interpreter waits for the thread before it exits)."""
    def late():
        time.sleep(0.5)
        (paths.user_cache_dir() / "metadata").mkdir(parents=True, exist_ok=True)
        (paths.user_data_dir() / "downloads").mkdir(parents=True, exist_ok=True)
    threading.Thread(target=late).start()
'''


@linux_only
def test_work_outliving_its_test_never_reaches_the_real_home(tmp_path):
    """The tests' own setup (tests/conftest.py) keeps the user's real folders out of reach even between tests:
    a worker that outlives its test writes into a folder of the test run, not ~/.cache or ~/.local/share."""
    import os
    import subprocess

    repo = Path(__file__).resolve().parents[2]
    fake_home = tmp_path / "real-home"
    fake_home.mkdir()
    (tmp_path / "test_late.py").write_text(LATE_WRITER)
    env = {k: v for k, v in os.environ.items()
           if k not in ("S2DESKTOP_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME")}
    env["HOME"] = str(fake_home)
    p = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "tests.conftest", "-p", "no:cacheprovider",
                        "-c", str(repo / "pyproject.toml"), "--rootdir", str(repo), str(tmp_path / "test_late.py")],
                       cwd=repo, env=env, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "1 passed" in p.stdout
    leaked = sorted(str(f.relative_to(fake_home)) for f in fake_home.rglob("*") if "s2desktop" in f.parts)
    assert leaked == []
