"""Tile ids: parsing, validation and normalisation."""

import pytest

from s2desktop.core.errors import InvalidInputError, InvalidTileError, S2Error
from s2desktop.core.tiles import parse_tile, split_tile


@pytest.mark.parametrize(
    "text, canonical",
    [
        ("33UUP", "33UUP"),
        ("T33UUP", "33UUP"),
        ("t33uup", "33UUP"),
        ("  T33uUp \n", "33UUP"),
        ("1CCV", "1CCV"),
        ("01CCV", "1CCV"),
        ("T01CCV", "1CCV"),
        ("t1ccv", "1CCV"),
        ("60XWF", "60XWF"),
        ("55JGF", "55JGF"),
        ("32VLL", "32VLL"),
        ("2CJA", "2CJA"),  # column J is valid in zones with zone % 3 == 2
        ("3CSA", "3CSA"),  # column S is valid in zones with zone % 3 == 0
    ],
)
def test_parse_tile_accepts_and_normalises(text, canonical):
    assert parse_tile(text) == canonical


def test_split_tile():
    assert split_tile("T33UUP") == (33, "U", "UP")
    assert split_tile("01ccv") == (1, "C", "CV")
    assert split_tile("60XWF") == (60, "X", "WF")


@pytest.mark.parametrize(
    "text, message",
    [
        ("61UUP", "zone 61 is out of range 1-60"),
        ("0CCV", "zone 0 is out of range 1-60"),
        ("00CCV", "zone 0 is out of range 1-60"),
        ("33IUP", "latitude band 'I' does not exist"),
        ("33OUP", "latitude band 'O' does not exist"),
        ("33UU", "'33UU' is not a tile id (expected e.g. 33UUP)"),
        ("", "'' is not a tile id (expected e.g. 33UUP)"),
        ("   ", "'' is not a tile id (expected e.g. 33UUP)"),
        ("333UUP", "'333UUP' is not a tile id (expected e.g. 33UUP)"),
        ("33UUPX", "'33UUPX' is not a tile id (expected e.g. 33UUP)"),
        ("33 UUP", "'33 UUP' is not a tile id (expected e.g. 33UUP)"),
        ("TT33UUP", "'TT33UUP' is not a tile id (expected e.g. 33UUP)"),
        ("33U1P", "'33U1P' is not a tile id (expected e.g. 33UUP)"),
    ],
)
def test_parse_tile_rejects_with_precise_message(text, message):
    with pytest.raises(InvalidTileError) as info:
        parse_tile(text)
    assert str(info.value) == message


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("33AUP", "latitude band 'A'"),
        ("33YUP", "latitude band 'Y'"),
        ("33UAP", "column 'A' does not exist in zone 33 (zone 33 uses S-Z"),
        ("31UUP", "column 'U' does not exist in zone 31 (zone 31 uses A-H"),
        ("32UAP", "column 'A' does not exist in zone 32 (zone 32 uses J-R"),
        ("33UUW", "row 'W' does not exist"),
        ("33UUI", "row 'I' does not exist"),
        ("33UOP", "column 'O' does not exist"),
    ],
)
def test_parse_tile_rejects_bad_letters(text, fragment):
    with pytest.raises(InvalidTileError) as info:
        parse_tile(text)
    assert fragment in str(info.value)
    assert "\n" not in str(info.value)


def test_errors_are_s2_and_value_errors():
    with pytest.raises(S2Error):
        parse_tile("nope")
    with pytest.raises(InvalidInputError):
        parse_tile("nope")
    with pytest.raises(ValueError):
        parse_tile(None)  # type: ignore[arg-type]


def test_every_grid_tile_id_parses(shared_real):
    """Every id in the official ESA grid is valid and round-trips to its zone-unpadded form."""
    import csv
    import gzip

    with gzip.open(shared_real / "grid" / "s2_tiles_from_esa_kml.csv.gz", "rt") as f:
        ids = [row["tile_id"] for row in csv.DictReader(f)]
    assert len(ids) == 56686
    for tid in ids:
        assert parse_tile(tid) == tid.lstrip("0")
