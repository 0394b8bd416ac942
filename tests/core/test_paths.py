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
