"""Writable-folder checks and atomic writes: nothing partial under a final name, one-line errors."""

import json
import os
import re

import pytest

from s2desktop.core import fsutil
from s2desktop.core.errors import OutputError

as_root = pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0,
                             reason="root may write into read-only folders")


def _names(folder):
    return sorted(p.name for p in folder.iterdir())


def test_atomic_path_renames_on_success_and_leaves_nothing_else(tmp_path):
    dest = tmp_path / "out.tif"
    with fsutil.atomic_path(dest) as tmp:
        assert re.fullmatch(rf"\.out\.tif\.{os.getpid()}-[0-9a-f]{{8}}\.part", tmp.name) and tmp.parent == tmp_path
        tmp.write_bytes(b"new")
        (tmp_path / (tmp.name + ".aux.xml")).write_text("<PAM/>")  # what GDAL may leave beside it
        assert not dest.exists()
    assert dest.read_bytes() == b"new"
    assert _names(tmp_path) == ["out.tif"]


@pytest.mark.parametrize("exc", [RuntimeError("boom"), KeyboardInterrupt()])
def test_atomic_path_removes_the_temp_and_its_side_files_on_any_exception(tmp_path, exc):
    dest = tmp_path / "out.tif"
    dest.write_bytes(b"old")
    with pytest.raises(type(exc)):
        with fsutil.atomic_path(dest) as tmp:
            tmp.write_bytes(b"half")
            for side in fsutil.SIDE_SUFFIXES:
                (tmp_path / (tmp.name + side)).write_text("x")
            raise exc
    assert dest.read_bytes() == b"old"
    assert _names(tmp_path) == ["out.tif"]


def test_write_helpers_create_the_folder(tmp_path):
    fsutil.write_json_atomic(tmp_path / "a/b/doc.json", {"k": [1, 2]})
    fsutil.write_bytes_atomic(tmp_path / "a/blob.bin", b"\x00\x01")
    assert json.loads((tmp_path / "a/b/doc.json").read_text()) == {"k": [1, 2]}
    assert (tmp_path / "a/blob.bin").read_bytes() == b"\x00\x01"
    assert _names(tmp_path / "a") == ["b", "blob.bin"]


def test_ensure_writable_dir_creates_or_says_why_not(tmp_path):
    assert fsutil.ensure_writable_dir(tmp_path / "x/y") == tmp_path / "x/y" and (tmp_path / "x/y").is_dir()
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    with pytest.raises(OutputError, match=r"^download folder .*file\.txt is a file, not a folder$"):
        fsutil.ensure_writable_dir(blocker, "download folder")
    with pytest.raises(OutputError, match=r"^cannot create output folder .*file\.txt/out: Not a directory$"):
        fsutil.ensure_writable_dir(blocker / "out")


def test_check_folder_creatable_creates_nothing(tmp_path):
    fsutil.check_folder_creatable(tmp_path / "new/deeper")
    assert _names(tmp_path) == []
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    with pytest.raises(OutputError, match=r"^output folder .*file\.txt is a file, not a folder$"):
        fsutil.check_folder_creatable(blocker)
    with pytest.raises(OutputError, match=r"^--out .*file\.txt/a/b cannot be created: .*file\.txt is a file$"):
        fsutil.check_folder_creatable(blocker / "a/b", "--out")


@as_root
def test_read_only_folders_are_named(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(OutputError, match=r"^output folder .*ro is not writable"):
            fsutil.ensure_writable_dir(ro)
        with pytest.raises(OutputError, match=r"cannot be created: .*ro is not writable$"):
            fsutil.check_folder_creatable(ro / "sub")
    finally:
        ro.chmod(0o700)


def test_check_output_file(tmp_path):
    fsutil.check_output_file(tmp_path / "new.tif")
    assert _names(tmp_path) == []  # the writability probe is gone again
    (tmp_path / "old.tif").write_bytes(b"x")
    with pytest.raises(OutputError, match=r"^composite .*old\.tif already exists"):
        fsutil.check_output_file(tmp_path / "old.tif", what="composite")
    fsutil.check_output_file(tmp_path / "old.tif", overwrite=True)
    with pytest.raises(OutputError, match=r"^output .* is a folder$"):
        fsutil.check_output_file(tmp_path)
    with pytest.raises(OutputError, match=r"^destination folder .*missing does not exist$"):
        fsutil.check_output_file(tmp_path / "missing" / "x.tif")
