"""The bundled resources/ folder: found beside the package, or inside the PyInstaller bundle when frozen."""

from __future__ import annotations

import sys

import pytest

from s2desktop.core import resources
from s2desktop.core.errors import NotFoundError


def test_the_checkout_resources_are_found():
    folder = resources.resources_dir()
    assert (folder / "demo").is_dir() and resources.resource_path("demo").is_dir()


def test_a_bundle_folder_wins_when_frozen(tmp_path, monkeypatch):
    (tmp_path / "resources" / "demo").mkdir(parents=True)
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    assert resources.resources_dir() == tmp_path / "resources"


def test_a_missing_resource_is_one_line_naming_it():
    with pytest.raises(NotFoundError) as caught:
        resources.resource_path("demo", "no-such-file.jp2")
    message = str(caught.value)
    assert "demo/no-such-file.jp2" in message and "\n" not in message
