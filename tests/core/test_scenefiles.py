"""Names of downloaded files: one pattern builds them, one regex reads them, every module agrees."""

import datetime as dt
import json

import pytest

from s2desktop.core import download, rasterinfo, scenefiles


@pytest.mark.parametrize("tile", ["1CCV", "9WVV", "33UUP", "55JGF", "60XWA", "31UDQ"])
def test_every_valid_tile_round_trips(tile, tmp_path):
    path = scenefiles.band_path(tmp_path, scenefiles.scene_id(tile, dt.date(2023, 7, 14), 2), "B04", ".jp2")
    assert path == tmp_path / "red" / f"{tile}_2023-07-14_2_B04.jp2"
    assert scenefiles.parse_band_filename(path) == {
        "tile": tile, "date": "2023-07-14", "seq": 2, "band": "B04", "scene_id": f"{tile}_2023-07-14_2"}


@pytest.mark.parametrize("name", [
    "0CCV_2023-07-14_0_B04.jp2",     # zone 0
    "61CCV_2023-07-14_0_B04.jp2",    # zone 61
    "033UUP_2023-07-14_0_B04.jp2",   # leading zero: not the canonical id the writer uses
    "33IUP_2023-07-14_0_B04.jp2",    # latitude band I
    "33BUP_2023-07-14_0_B04.jp2",    # latitude band B (not covered)
    "33UOP_2023-07-14_0_B04.jp2",    # column O
    "33UUW_2023-07-14_0_B04.jp2",    # row W
    "33UUP_2023-7-14_0_B04.jp2",
    ".33UUP_2023-07-14_0_B04.jp2.1a2b3c4d.part",  # a download's temp name
])
def test_invalid_names_are_not_band_files(name):
    assert scenefiles.parse_band_filename(name) is None


def test_band_folders_and_other_paths(tmp_path):
    assert [scenefiles.band_folder(b) for b in ("B02", "B03", "B04", "B08", "SCL")] == [
        "blue", "green", "red", "B08", "SCL"]
    band = tmp_path / "green" / "33UUP_2023-07-14_0_B03.tif"
    assert scenefiles.metadata_path_of(band) == tmp_path / "metadata" / "33UUP_2023-07-14_0.json"
    assert scenefiles.metadata_path_of(tmp_path / "x.tif") is None
    assert scenefiles.verified_record_path(band) == tmp_path / "metadata/verified/33UUP_2023-07-14_0_B03.tif.json"


def test_scl_files_skip_temp_and_side_files(tmp_path):
    (tmp_path / "SCL").mkdir()
    for name in ("33UUP_2023-07-14_0_SCL.jp2", "33UUP_2023-07-14_0_SCL.jp2.aux.xml",
                 "33UUP_2023-07-14_0_SCL.part", "33UUP_2023-07-14_1_SCL.jp2"):
        (tmp_path / "SCL" / name).write_bytes(b"x")
    assert [p.name for p in scenefiles.scl_files(tmp_path, "33UUP_2023-07-14_0")] == ["33UUP_2023-07-14_0_SCL.jp2"]


def test_download_and_rasterinfo_read_the_same_metadata(tmp_path):
    """They once used two regexes: a one-digit-zone tile or a name without extension fell between them."""
    band = tmp_path / "red" / "1CCV_2022-02-06_0_B04.jp2"
    band.parent.mkdir()
    band.write_bytes(b"")
    md = scenefiles.metadata_path(tmp_path, "1CCV_2022-02-06_0")
    md.parent.mkdir()
    md.write_text(json.dumps({"baseline": "04.00", "tile": "1CCV"}))
    assert download.read_scene_metadata(band)["baseline"] == "04.00"
    assert rasterinfo.file_offset(band) == (-1000, "04.00", "download metadata")
    assert rasterinfo.parse_band_filename is scenefiles.parse_band_filename
