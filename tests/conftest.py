"""Shared test setup.

Qt must be told to render offscreen before anything imports it: without a display and without this, pytest-qt
aborts the whole run. Fixtures live in plugin modules listed in `pytest_plugins` below.
"""

import os
import subprocess

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared" / "s2-real"

pytest_plugins: list[str] = ["tests.fixtures_rasters", "tests.fixtures_s3", "tests.fixtures_gui",
                             "tests.fixtures_faults"]


@pytest.fixture(scope="session", autouse=True)
def _session_home(tmp_path_factory):
    """Between tests and after the last one, the per-user folders are still a folder of this test run: work that
    outlives its test (a search worker, a preview fetch) and reads S2DESKTOP_HOME after the test's fixture restored
    it must not fall back to the user's real ~/.cache or ~/.local/share. Set for the whole run, never restored:
    such work can still be finishing while the interpreter exits."""
    home = tmp_path_factory.mktemp("session-home")
    os.environ["S2DESKTOP_HOME"] = str(home)
    return home


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    """Per-user folders (data, cache, logs, QSettings) go to a temporary place, never the real home."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("S2DESKTOP_HOME", str(home))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(home / "aws_config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(home / "aws_credentials"))
    for var in ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    yield home


@pytest.fixture(scope="session")
def shared_real() -> Path:
    """`../shared/s2-real`: real Sentinel-2 files; tests that need it skip cleanly where it is absent."""
    if not SHARED.is_dir():
        pytest.skip("../shared/s2-real is not beside the repository")
    return SHARED


EXIT_WATCHDOG_S = 120


def pytest_unconfigure(config):
    """Everything is reported by now; if the interpreter then fails to exit (a thread or child that exit waits
    for), print every thread's stack and exit with an error after EXIT_WATCHDOG_S instead of hanging silently
    until CI's wall-clock limit."""
    import faulthandler
    import sys

    faulthandler.dump_traceback_later(EXIT_WATCHDOG_S, exit=True, file=sys.__stderr__)


@pytest.fixture
def small_disk(tmp_path):
    """A 3 MiB tmpfs (root and a working mount only)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(disk)], capture_output=True, text=True)
    if p.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {p.stderr.strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)
