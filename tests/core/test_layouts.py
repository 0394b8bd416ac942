"""The bucket layouts: the writer (archive) and the reader (catalog) agree because both use layouts.py."""

import datetime as dt

import numpy as np
import pytest
from affine import Affine

from s2desktop.core import archive, catalog, layouts
from s2desktop.core.errors import InvalidInputError
from s2desktop.core.sources import LocalStore

DAY = dt.date(2023, 7, 4)


def test_scene_prefixes_have_no_padding_and_cogs_have_no_day_folder():
    assert layouts.scene_prefix("l1c", "T01CCV", DAY, 2) == "tiles/1/C/CV/2023/7/4/2"
    assert layouts.scene_prefix("l2a", "33uup", DAY) == "tiles/33/U/UP/2023/7/4/0"
    assert (layouts.scene_prefix("cogs", "33UUP", DAY, 1, platform="S2B")
            == "sentinel-s2-l2a-cogs/33/U/UP/2023/7/S2B_33UUP_20230704_1_L2A")
    assert layouts.tile_root("cogs", "33UUP") == "sentinel-s2-l2a-cogs/33/U/UP/"
    assert layouts.tile_root("l2a", "33UUP") == "tiles/33/U/UP/"


def test_cog_scene_regex_reads_the_names_the_writer_makes():
    m = layouts.COG_SCENE_RE.match(layouts.cog_scene_name("S2A", "1CCV", DAY, 3))
    assert (m["platform"], m["tile"], m["date"], m["seq"]) == ("S2A", "1CCV", "20230704", "3")
    assert layouts.COG_SCENE_RE.match("S2A_33UUP_20230704_0_L1C") is None


@pytest.mark.parametrize("layout", layouts.LAYOUTS)
def test_band_paths_round_trip(layout):
    for band in layouts.L2A_RESOLUTION:
        name, rank = layouts.parse_band_relpath(layout, layouts.band_relpath(layout, band))
        assert name == band
        assert rank == (layouts.RESOLUTION_FOLDERS.index(layouts.L2A_RESOLUTION[band]) if layout == "l2a" else 0)
    assert layouts.band_relpath("l2a", "B11") == "R20m/B11.jp2"
    assert layouts.parse_band_relpath(layout, "qi/MSK_CLOUDS_B00.gml") is None
    assert layouts.parse_band_relpath(layout, layouts.METADATA_NAMES[layout]) is None


def test_unknown_layout_is_a_one_line_error():
    with pytest.raises(InvalidInputError, match="unknown layout 'l3'"):
        layouts.band_relpath("l3", "B04")


@pytest.mark.parametrize("layout", layouts.LAYOUTS)
def test_what_the_archive_writes_the_search_reads(tmp_path, layout):
    bands = {"B04": np.full((32, 32), 900, "uint16"), "B11": np.full((16, 16), 1200, "uint16")}
    prefix = archive.write_scene(tmp_path, layout, "33UUP", DAY, 0, bands, crs=32633,
                                 transform=Affine(3431.25, 0, 300000, 0, -3431.25, 5300040),
                                 scl=np.ones((16, 16), "uint8"))
    objects = LocalStore(tmp_path).list_objects(prefix)
    keys, _infos, preview, metadata = catalog._band_keys(layout, prefix, objects)
    expected = {"B04", "B11"} | ({"SCL"} if layout != "l1c" else set())
    assert set(keys) == expected
    assert keys["B04"] == f"{prefix}/{layouts.band_relpath(layout, 'B04')}"
    assert metadata.key == f"{prefix}/{layouts.METADATA_NAMES[layout]}"
    assert preview == f"{prefix}/{layouts.PREVIEW_NAMES[layout][-1]}"
