"""Areas of interest: boxes and GeoJSON polygons, the tiles under them, the grid of their composite."""

from __future__ import annotations

import json

import pytest

from s2desktop.core import areas
from s2desktop.core.errors import InvalidInputError, NotFoundError


@pytest.mark.parametrize("text, message", [
    ("12.5,47.8,12.4,47.9", "west 12.5 is not west of east 12.4"),
    ("12.4,47.9,12.5,47.8", "south 47.9 is not south of north 47.8"),
    ("12.4,47.8,12.5", "is not four numbers W,S,E,N"),
    ("a,b,c,d", "is not four numbers"),
    ("190,47,191,48", "longitudes must be within -180..180"),
    ("12,-95,13,48", "latitudes must be within -90..90"),
])
def test_bad_boxes_are_one_line_errors(text, message):
    with pytest.raises(InvalidInputError, match=message) as caught:
        areas.parse_bbox(text)
    assert "\n" not in str(caught.value)


def _write(tmp_path, doc, name="aoi.geojson"):
    path = tmp_path / name
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return path


def test_geojson_polygons_features_and_their_errors(tmp_path):
    ring = [[12.4, 47.7], [12.5, 47.7], [12.45, 47.8], [12.4, 47.7]]
    feature = {"type": "Feature", "properties": {}, "geometry": {"type": "Polygon", "coordinates": [ring]}}
    area = areas.read_aoi(_write(tmp_path, {"type": "FeatureCollection", "features": [feature, feature]}))
    assert area.bounds == (12.4, 47.7, 12.5, 47.8) and len(area.geometry["coordinates"]) == 2
    for doc, message in ((b"{", "is not valid JSON"), ({"type": "Point", "coordinates": [1, 2]}, "a Point has no area"),
                         ({"type": "Polygon", "coordinates": [ring[:-1]]}, "must be closed"),
                         ({"type": "FeatureCollection", "features": []}, "holds no Polygon"),
                         ({"hello": 1}, "is not GeoJSON")):
        path = _write(tmp_path, doc.decode() if isinstance(doc, bytes) else doc, "bad.geojson")
        with pytest.raises(InvalidInputError, match=message):
            areas.read_aoi(path)
    with pytest.raises(NotFoundError, match="missing.geojson"):
        areas.read_aoi(tmp_path / "missing.geojson")


def test_the_tiles_under_an_area_and_none_at_the_pole():
    assert {"33UUP", "32UQU"} <= set(areas.area_tiles(areas.parse_bbox("12.3,47.9,12.5,48.0")))
    with pytest.raises(NotFoundError, match="no Sentinel-2 tile under bbox"):
        areas.area_tiles(areas.parse_bbox("10,88,11,89"))


def test_the_grid_is_the_centres_utm_zone_on_the_tiles_pixel_edges():
    grid = areas.output_grid(areas.parse_bbox("12.40,47.70,12.55,47.80"))
    assert grid.crs == "EPSG:32633" and grid.resolution == 10
    a, _b, x0, _d, e, y1 = grid.transform
    assert (a, e) == (10, -10) and (x0 - 300000) % 10 == 0 and (5400000 - y1) % 10 == 0
    assert 1000 < grid.width < 1300 and 1000 < grid.height < 1300  # ~11.3 x 11.1 km
    west = areas.output_grid(areas.parse_bbox("11.90,47.70,12.05,47.80"), resolution=20)
    assert west.crs == "EPSG:32632" and (west.transform[2] - 699960) % 20 == 0
    forced = areas.output_grid(areas.parse_bbox("11.90,47.70,12.05,47.80"), resolution=80, crs="EPSG:32633")
    assert forced.crs == "EPSG:32633" and forced.width < west.width
    with pytest.raises(InvalidInputError, match="more than the 1.6 billion px"):
        areas.output_grid(areas.parse_bbox("0,40,20,60"), resolution=10)
    with pytest.raises(InvalidInputError, match="projected CRS"):
        areas.output_grid(areas.parse_bbox("12.4,47.7,12.5,47.8"), crs="EPSG:4326")
    with pytest.raises(InvalidInputError, match="not a coordinate reference system"):
        areas.output_grid(areas.parse_bbox("12.4,47.7,12.5,47.8"), crs="EPSG:nope")


def test_an_aoi_with_string_coordinates_too_many_vertices_or_too_many_bytes_is_one_line(tmp_path, monkeypatch):
    strings = [["12.4", "47.7"], ["12.5", "47.7"], ["12.45", "47.8"], ["12.4", "47.7"]]
    with pytest.raises(InvalidInputError, match="numbers, not strings"):
        areas.read_aoi(_write(tmp_path, {"type": "Polygon", "coordinates": [strings]}))
    n = 1000
    ring = [[12.4 + 0.1 * i / n, 47.7 + 0.0001 * (i % 2)] for i in range(n)] + [[12.45, 47.8], [12.4, 47.7]]
    path = _write(tmp_path, {"type": "Polygon", "coordinates": [ring]}, "detailed.geojson")
    monkeypatch.setattr(areas, "MAX_VERTICES", n)
    with pytest.raises(InvalidInputError, match=f"has {n + 2:,} vertices, more than the {n:,}"):
        areas.read_aoi(path)
    monkeypatch.setattr(areas, "MAX_AOI_BYTES", path.stat().st_size - 1)
    with pytest.raises(InvalidInputError, match="an area file may be at most"):
        areas.read_aoi(path)


def test_an_area_too_large_is_refused_from_the_grid_before_any_search():
    with pytest.raises(InvalidInputError, match=r"covers [\d,]+ Sentinel-2 tiles, more than the 200"):
        areas.check_size(areas.parse_bbox("-180,-90,180,90"))
    two_fields = {"type": "MultiPolygon", "coordinates": [
        [[[10, 45], [10.01, 45], [10.01, 45.01], [10, 45]]], [[[140, 45], [140.01, 45], [140.01, 45.01], [140, 45]]]]}
    far = areas.Area(two_fields, (10, 45, 140.01, 45.01), "aoi far.geojson")
    assert len(areas.area_tiles(far)) <= 8  # each field's own tiles, not the 130 degrees between them
    with pytest.raises(InvalidInputError, match=r"at 60 m is \d+ x \d+ px, more than"):
        areas.check_size(far, resolution=60)  # one grid for both: too wide
    with pytest.raises(InvalidInputError, match=r"at 10 m is \d+ x \d+ px, more than the 1.6 billion"):
        areas.check_size(areas.parse_bbox("10,45,16,49"), resolution=10)
    grid = areas.check_size(areas.parse_bbox("12.4,47.7,12.5,47.8"), resolution=20)
    assert grid == areas.output_grid(areas.parse_bbox("12.4,47.7,12.5,47.8"), 20)


def test_an_aois_tags_tell_two_geometries_of_one_name_apart(tmp_path):
    """Two AOI files of the same name and bounds, a square and a triangle: their tags share AREA and the bounds,
    not the geometry's hash; the same file read twice hashes the same."""
    w, s, e, n = 12.40, 47.70, 12.55, 47.80
    shapes = {"square": [[w, s], [e, s], [e, n], [w, n], [w, s]], "triangle": [[w, s], [e, s], [e, n], [w, s]]}
    tags = {}
    for name, ring in shapes.items():
        (tmp_path / name).mkdir()
        path = tmp_path / name / "field.geojson"
        path.write_text(json.dumps({"type": "Polygon", "coordinates": [ring]}))
        area = areas.read_aoi(path)
        tags[name] = areas.area_tags(area, areas.output_grid(area, 20))
        assert areas.area_tags(areas.read_aoi(path), areas.output_grid(area, 20)) == tags[name]
    square, triangle = tags["square"], tags["triangle"]
    assert square["AREA"] == triangle["AREA"] == "aoi field.geojson"
    assert square["AREA_BOUNDS"] == triangle["AREA_BOUNDS"] == "12.400000,47.700000,12.550000,47.800000"
    assert square["AREA_GEOMETRY_SHA256"] != triangle["AREA_GEOMETRY_SHA256"]
    assert square["GRID_CRS"] == "EPSG:32633" and square["RESOLUTION"] == "20 m" and square["SCALE"] == "2"
