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


# ---------------------------------------------------------------------------------------------------------------
# The grid, checked against the official ESA rings (the CSV) as ground truth
# ---------------------------------------------------------------------------------------------------------------

import csv  # noqa: E402
import gzip  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from s2desktop.core.errors import NotFoundError  # noqa: E402
from s2desktop.core.tiles import TileFootprint, all_tile_ids, footprint, tiles_at, tiles_in_bbox  # noqa: E402


@pytest.fixture(scope="module")
def esa(shared_real):
    """The ESA CSV in float64: ids (canonical), rings (n, 4, 2) unwrapped here independently, centres."""
    ids, rings = [], []
    with gzip.open(shared_real / "grid" / "s2_tiles_from_esa_kml.csv.gz", "rt") as f:
        for row in csv.DictReader(f):
            pts = [tuple(map(float, p.split(","))) for p in row["ll_ring_lon_lat"].split()][:4]
            ids.append(row["tile_id"].lstrip("0"))
            rings.append(pts)
    rings = np.array(rings)
    # Independent unwrap: shift every corner to within 180 degrees of the first corner.
    rings[:, :, 0] = rings[:, :1, 0] + ((rings[:, :, 0] - rings[:, :1, 0] + 180.0) % 360.0 - 180.0)
    return np.array(ids), rings


def _truth(esa, lon, lat):
    """Tiles containing the point, by a cross-product test against every ESA quadrilateral (no index)."""
    ids, rings = esa
    found = set()
    for x in (lon - 360.0, lon, lon + 360.0):
        a = rings
        b = np.roll(rings, -1, axis=1)
        cross = (b[:, :, 0] - a[:, :, 0]) * (lat - a[:, :, 1]) - (b[:, :, 1] - a[:, :, 1]) * (x - a[:, :, 0])
        inside = (cross >= 0).all(axis=1) | (cross <= 0).all(axis=1)
        found |= set(ids[inside])
    return found


def _edge_distance(ring, lon, lat):
    """Smallest distance (degrees) from the point to the ring's edges, trying the point shifted by 360."""
    best = np.inf
    for x in (lon - 360.0, lon, lon + 360.0):
        p = np.array([x, lat])
        for a, b in zip(ring, np.roll(ring, -1, axis=0)):
            t = np.clip(np.dot(p - a, b - a) / np.dot(b - a, b - a), 0, 1)
            best = min(best, float(np.linalg.norm(p - (a + t * (b - a)))))
    return best


def _check_against_truth(esa, lon, lat):
    got = tiles_at(lon, lat)
    assert len(got) == len(set(got))
    truth = _truth(esa, lon, lat)
    ids, rings = esa
    for tid in set(got) ^ truth:  # disagreement is only allowed on an edge (float32 corners)
        assert _edge_distance(rings[list(ids).index(tid)], lon, lat) < 1e-4, (lon, lat, tid, got, truth)
    return got


@pytest.mark.parametrize(
    "lon, lat, expected",
    [
        (16.3738, 48.2082, ["33UWP", "33UXP"]),  # Vienna
        (13.4050, 52.5200, ["33UUU", "32UQD"]),  # Berlin
        (5.7331, 58.9700, ["32VLL"]),  # Stavanger: zone 32 widened over Norway's coast
        (5.3221, 60.3913, ["32VKN"]),  # Bergen: 32V, not 31V, by the Norway exception
        (15.6300, 78.2200, ["33XWG"]),  # Longyearbyen, Svalbard
        (9.0000, 79.5000, ["31XFJ"]),  # Svalbard exception: zone 31X runs to 9 E (there is no 32X)
        (-179.99, -16.80, ["1KAB"]),  # Fiji, west of the antimeridian
        (179.99, -16.80, ["1KAB"]),  # ... and east of it: the same tile, stored unwrapped
        (180.01, -16.80, ["1KAB"]),  # longitudes are taken modulo 360
    ],
)
def test_tiles_at_known_places(esa, lon, lat, expected):
    assert _check_against_truth(esa, lon, lat) == expected


def test_tiles_at_four_overlapping_tiles_nearest_centre_first(esa):
    lon, lat = 11.886, 54.944  # Fehmarn belt: the corner of four tiles of zones 32 and 33
    got = _check_against_truth(esa, lon, lat)
    assert sorted(got) == ["32UPF", "32UPG", "33UUA", "33UUB"]
    dists = [np.hypot((footprint(t).centre[0] - lon) * np.cos(np.radians(lat)), footprint(t).centre[1] - lat)
             for t in got]
    assert dists == sorted(dists)
    assert got[0] == "32UPF"


def test_tiles_at_poles_are_outside_the_grid():
    # The grid covers the globe (oceans included) between the bands C and X, not the polar caps.
    assert tiles_at(0.0, 85.5) == []
    assert tiles_at(0.0, -84.0) == []
    assert tiles_at(0.0, 89.9) == []
    assert tiles_at(0.0, -89.9) == []


def test_tiles_at_rejects_bad_positions():
    with pytest.raises(InvalidInputError):
        tiles_at(0.0, 91.0)
    with pytest.raises(InvalidInputError):
        tiles_at(float("nan"), 10.0)


def test_tiles_at_random_points_match_the_esa_rings(esa):
    """Random points inside random tiles (and near their corners, where tiles overlap) everywhere on Earth,
    antimeridian tiles included."""
    ids, rings = esa
    rng = np.random.default_rng(42)
    anti = np.flatnonzero(np.ptp(rings[:, :, 0], axis=1) > 3.0)  # wide high-latitude rings too
    picks = np.concatenate([rng.choice(len(ids), 100, replace=False), rng.choice(anti, 20, replace=False)])
    antimeridian = [i for i in range(len(ids)) if rings[i, :, 0].max() > 180.0]
    picks = np.concatenate([picks, rng.choice(antimeridian, 20, replace=False)])
    counts = []
    for i in picks:
        w = rng.dirichlet(np.ones(4) * 0.3)  # skewed towards corners
        lon, lat = (w[:, None] * rings[i]).sum(axis=0)
        got = _check_against_truth(esa, float((lon + 180) % 360 - 180), float(lat))
        counts.append(len(got))
    assert min(counts) >= 1 and max(counts) >= 3


def test_tiles_at_is_fast():
    tiles_at(16.37, 48.2)  # load once
    points = [(-179.9, -16.5), (16.37, 48.2), (15.6, 78.2), (-70.0, -80.0), (100.0, 10.0)]
    t0 = time.perf_counter()
    for _ in range(40):
        for p in points:
            tiles_at(*p)
    per_call = (time.perf_counter() - t0) / 200
    assert per_call < 0.005, f"tiles_at took {per_call * 1000:.2f} ms"


def test_footprint_matches_the_esa_grid(esa):
    ids, rings = esa
    for tid in ["33UUP", "1CCV", "60XWF", "32VLL", "1KAB", "55JGF"]:
        fp = footprint(tid)
        assert isinstance(fp, TileFootprint) and fp.id == tid
        ring = rings[list(ids).index(tid)]
        assert fp.ring.shape == (5, 2) and np.array_equal(fp.ring[0], fp.ring[-1])
        assert np.allclose(fp.ring[:4], ring, atol=1e-5)
        assert fp.bbox[2] - fp.bbox[0] < 180  # unwrapped
        assert fp.bbox[0] <= fp.centre[0] + (360 if fp.centre[0] < fp.bbox[0] - 1 else 0) <= fp.bbox[2]
        assert -180 <= fp.centre[0] < 180
    fp = footprint("T33UUP")
    assert fp.epsg == 32633 and fp.utm_bounds == (300000, 5290200, 409800, 5400000)
    assert footprint("55jgf").utm_bounds[0] == 699960 and footprint("55JGF").epsg == 32755


def test_footprint_of_an_antimeridian_tile_is_unwrapped():
    fp = footprint("1CCV")
    assert fp.bbox[0] > 176 and fp.bbox[2] > 180
    assert fp.ring[:, 0].max() > 180


def test_footprint_of_a_valid_id_outside_the_grid():
    with pytest.raises(NotFoundError, match="^tile 31NAA is not in the Sentinel-2 tiling grid$"):
        footprint("31NAA")  # ocean off West Africa: valid MGRS, no Sentinel-2 tile
    with pytest.raises(InvalidTileError):
        footprint("61UUP")


def test_tiles_in_bbox():
    got = tiles_in_bbox(16.0, 48.0, 16.8, 48.4)
    ids = [fp.id for fp in got]
    assert "33UWP" in ids and "33UXP" in ids
    for fp in got:
        assert fp.bbox[2] >= 16.0 and fp.bbox[0] <= 16.8 and fp.bbox[3] >= 48.0 and fp.bbox[1] <= 48.4
    assert [fp.id for fp in tiles_in_bbox(16.0, 48.0, 16.8, 48.4, limit=1)] == [ids[0]]
    # across the antimeridian, from either side
    east = {fp.id for fp in tiles_in_bbox(179.5, -17.0, 180.5, -16.5)}
    west = {fp.id for fp in tiles_in_bbox(-180.5, -17.0, -179.5, -16.5)}
    assert "1KAB" in east and "1KAB" in west and east == west
    assert len(tiles_in_bbox(-180, -90, 180, 90)) == len(all_tile_ids()) == 56686
    with pytest.raises(InvalidInputError):
        tiles_in_bbox(10, 10, 0, 0)
