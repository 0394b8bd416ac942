"""Level-1C composites masked by the products' own cloud masks: a constructed L1C mirror whose scenes carry
qi/MSK_CLOUDS_B00.gml (polygons, before baseline 04.00) and qi/MSK_CLASSI_B00.jp2 (classes, from 04.00); the search
finds them, the plan fetches them with the bands, and the composite leaves the masked pixels out."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
import rasterio
from affine import Affine

from s2desktop.core import archive, layouts
from s2desktop.core.errors import InvalidInputError
from s2desktop.core.pipeline import CompositeOptions, Job, Request, SourceSpec

N = 60  # px of the 10 m bands (1830 m a side: the constructed scenes are small)
UL = (300000.0, 5400000.0)  # 33UUP
PIX = 109800 / N
T = Affine(PIX, 0, UL[0], 0, -PIX, UL[1])
DAYS = [dt.date(2023, 7, d) for d in (1, 6, 11, 16)]
GML_BOX = (10, 20, 10, 20)  # rows r0:r1, cols c0:c1 masked by date 1's polygon
CLASSI_BOX = (30, 40, 30, 40)  # masked by date 2's MSK_CLASSI (opaque clouds), at 60 m cells


def _gml(r0, r1, c0, c1) -> bytes:
    x0, x1, y0, y1 = UL[0] + c0 * PIX, UL[0] + c1 * PIX, UL[1] - r0 * PIX, UL[1] - r1 * PIX
    ring = f"{x0} {y0} {x1} {y0} {x1} {y1} {x0} {y1} {x0} {y0}"
    return ('<?xml version="1.0"?><eop:Mask xmlns:eop="http://www.opengis.net/eop/2.0" '
            'xmlns:gml="http://www.opengis.net/gml/3.2"><eop:maskMembers><eop:MaskFeature>'
            '<eop:maskType>OPAQUE</eop:maskType><eop:extentOf><gml:Polygon><gml:exterior><gml:LinearRing>'
            f'<gml:posList srsDimension="2">{ring}</gml:posList></gml:LinearRing></gml:exterior></gml:Polygon>'
            '</eop:extentOf></eop:MaskFeature></eop:maskMembers></eop:Mask>').encode()


def _classi(path, r0, r1, c0, c1) -> None:
    classi = np.zeros((3, N, N), np.uint8)
    classi[0, r0:r1, c0:c1] = 1
    with rasterio.open(path, "w", driver="JP2OpenJPEG", width=N, height=N, count=3, dtype="uint8", crs="EPSG:32633",
                       transform=T, QUALITY="100", REVERSIBLE="YES") as ds:
        ds.write(classi)


def _mirror(root):
    """Four dates of constant values 1000..4000; date 1 carries a GML mask, date 2 a CLASSI mask."""
    for i, day in enumerate(DAYS):
        bands = {b: np.full((N, N), 1000 * (i + 1), np.uint16) for b in ("B02", "B03", "B04")}
        prefix = archive.write_scene(root, "l1c", "33UUP", day, 0, bands, crs=32633, transform=T,
                                     baseline="02.09", cloud_cover=5.0, data_coverage=100.0)
        qi = root / prefix / "qi"
        qi.mkdir(parents=True, exist_ok=True)
        if i == 0:
            (qi / "MSK_CLOUDS_B00.gml").write_bytes(_gml(*GML_BOX))
        elif i == 1:
            _classi(qi / "MSK_CLASSI_B00.jp2", *CLASSI_BOX)
    return root


def test_an_l1c_composite_leaves_out_what_the_products_cloud_masks_mask(tmp_path):
    root = _mirror(tmp_path / "mirror")
    out = tmp_path / "l1c.tif"
    job = Job(Request(SourceSpec(str(root)), tile="33UUP", start=DAYS[0], end=DAYS[-1], download_dir=tmp_path / "dl",
                      composite=CompositeOptions(str(out), workers=0, count_path=str(tmp_path / "count.tif"))))
    scenes = job.search()
    assert [sorted(b for b in s.bands if b.startswith("MSK")) for s in scenes] == [["MSKCLOUDS"], ["MSKCLASSI"], [], []]
    plan = job.plan(scenes)
    assert sorted(t.band for t in plan.tasks if t.band.startswith("MSK")) == ["MSKCLASSI", "MSKCLOUDS"]
    job.download(plan)
    stack = plan.inputs()
    assert [o.mask.band if o.mask else None for o in stack.observations] == ["MSKCLOUDS", "MSKCLASSI", None, None]
    job.composite(stack)
    with rasterio.open(out) as ds, rasterio.open(tmp_path / "count.tif") as c:
        red, count, tags = ds.read(1), c.read(1), ds.tags()
    expected = np.full((N, N), 2500, np.uint16)  # the median of 1000..4000
    (r0, r1, c0, c1), (s0, s1, d0, d1) = GML_BOX, CLASSI_BOX
    expected[r0:r1, c0:c1] = 3000  # date 1 masked: the median of 2000, 3000, 4000
    expected[s0:s1, d0:d1] = 3000  # date 2 masked: the median of 1000, 3000, 4000
    np.testing.assert_array_equal(red, expected)
    assert (count == np.where(expected == 3000, 3, 4)).all()
    assert "L1C cloud masks (opaque clouds, cirrus) on 2 date(s)" in tags["MASK"]


def test_the_l1c_layout_knows_its_cloud_masks():
    assert set(layouts.QI_MASKS["l1c"].values()) == {"MSKCLASSI", "MSKCLOUDS"} and not layouts.QI_MASKS["cogs"]


@pytest.mark.parametrize("choice, masked", [("scl", False), ("qi", True), ("none", False)])
def test_the_mask_choice_takes_the_l1c_masks_or_not_and_says_what_goes_unmasked(tmp_path, choice, masked):
    root = _mirror(tmp_path / "mirror")
    out, events = tmp_path / f"{choice}.tif", []
    Job(Request(SourceSpec(str(root)), tile="33UUP", start=DAYS[0], end=DAYS[-1], download_dir=tmp_path / "dl",
                mask=choice, composite=CompositeOptions(str(out), workers=0)), progress=events.append).run()
    with rasterio.open(out) as ds:
        red = ds.read(1)
    (r0, r1, c0, c1) = GML_BOX
    assert red[r0, c0] == (3000 if masked else 2500) and red[0, 0] == 2500
    said = [e.message for e in events if "without a cloud mask" in e.message]
    if choice == "none":
        assert not said  # nothing was asked for
    else:
        assert said and f"--mask {choice}" in said[0] and ("2 scene(s)" if masked else "4 scene(s)") in said[0]
    with pytest.raises(InvalidInputError, match="is not one of auto, scl, qi, none"):
        Job(Request(SourceSpec(str(root)), tile="33UUP", start=DAYS[0], end=DAYS[-1], mask="clouds")).plan()


def _tile_box_area(r0, r1):
    """The area just inside tile pixels [r0, r1) both ways."""
    from rasterio.warp import transform_bounds

    from s2desktop.core import areas

    left, top = T * (r0 + 0.5, r0 + 0.5)
    right, bottom = T * (r1 - 0.5, r1 - 0.5)
    return areas.parse_bbox(",".join(f"{v:.6f}" for v in transform_bounds("EPSG:32633", "EPSG:4326", left, bottom,
                                                                          right, top)))


def _near_box(rows, cols, box, pixels):
    r0, r1, c0, c1 = box
    dy = np.maximum(0, np.maximum(r0 - rows, rows - (r1 - 1)))
    dx = np.maximum(0, np.maximum(c0 - cols, cols - (c1 - 1)))
    return dy * dy + dx * dx <= pixels * pixels


def test_an_l1c_area_is_masked_by_its_scenes_cloud_masks_drawn_on_its_grid_with_the_buffer(tmp_path):
    root = _mirror(tmp_path / "mirror")
    out, count = tmp_path / "area.tif", tmp_path / "area_n.tif"
    result = Job(Request(SourceSpec(str(root)), area=_tile_box_area(5, 50), resolution=PIX, crs="EPSG:32633",
                         start=DAYS[0], end=DAYS[-1], download_dir=tmp_path / "dl",
                         composite=CompositeOptions(str(out), workers=0, count_path=str(count),
                                                    mask_buffer=PIX))).run()
    assert [o.mask.band if o.mask else None for o in result.inputs.observations] == ["MSKCLASSI"] * 2 + [None] * 2
    with rasterio.open(out) as ds, rasterio.open(count) as c:
        red, n, tags, tf = ds.read(1), c.read(1), ds.tags(), ds.transform
    cols0, rows0 = (tf.c - UL[0]) / PIX, (UL[1] - tf.f) / PIX
    assert cols0 == round(cols0) and rows0 == round(rows0)  # on the tile's pixels: tile pixel = area pixel + offset
    rows, cols = np.mgrid[0:red.shape[0], 0:red.shape[1]]
    rows, cols = rows + int(rows0), cols + int(cols0)
    gml, classi = _near_box(rows, cols, GML_BOX, 1), _near_box(rows, cols, CLASSI_BOX, 1)  # buffer: one pixel
    inside = n > 0  # clipped to the area's outline
    assert inside.mean() > 0.8 and (gml & inside).sum() == (gml & (rows > 5)).sum()
    np.testing.assert_array_equal(n[inside], np.where(gml | classi, 3, 4)[inside])
    np.testing.assert_array_equal(red[inside], np.where(gml | classi, 3000, 2500)[inside])
    assert "L1C cloud masks (opaque clouds, cirrus) on 2 date(s)" in tags["MASK"]
    assert tags["MASK_BUFFER"].startswith(f"{PIX:g} m")


def test_an_area_from_cogs_says_that_its_scenes_have_no_l1c_cloud_mask(tmp_path):
    from tests.helpers import constant_cog_scene

    root = tmp_path / "cogs"
    for i, day in enumerate(DAYS[:2]):
        constant_cog_scene(root, "33UUP", day, 1000 * (i + 1))
    events = []
    result = Job(Request(SourceSpec(str(root)), area=_tile_box_area(5, 50), resolution=PIX, start=DAYS[0],
                         end=DAYS[-1], mask="qi", composite=CompositeOptions(str(tmp_path / "c.tif"), workers=0)),
                 progress=events.append).run()
    said = [e.message for e in events if "without a cloud mask" in e.message]
    assert len(said) == 1 and "(--mask qi)" in said[0] and "Level-2A scenes carry no L1C cloud mask" in said[0]
    assert "\n" not in said[0] and not any(o.mask for o in result.inputs.observations)


def test_a_real_l1c_area_masks_as_much_ground_as_its_gml_polygons_cover(shared_real, tmp_path):
    """The real 55JGF scene (reduced to 250 m) as an area around its tile: the masked area equals the area of its
    MSK_CLOUDS polygons (shoelace, no rasteriser) within 1 %, and only --mask qi/auto masks it."""
    from rasterio.warp import transform_bounds

    from s2desktop.core import areas, qimasks

    root = shared_real / "aws_tiles/l1c_T55JGF_20180617_N0206"
    gml = root / "tiles/55/J/GF/2018/6/17/0/qi/MSK_CLOUDS_B00.gml"
    box = transform_bounds("EPSG:32755", "EPSG:4326", 699000, 6489000, 811000, 6601000)  # the tile and a margin
    area = areas.parse_bbox(",".join(f"{v:.5f}" for v in box))
    counts = {}
    for mask in ("auto", "none"):
        count = tmp_path / f"{mask}_n.tif"
        Job(Request(SourceSpec(str(root)), area=area, resolution=250, crs="EPSG:32755", start=dt.date(2018, 6, 17),
                    end=dt.date(2018, 6, 17), download_dir=tmp_path / "dl", mask=mask,
                    composite=CompositeOptions(str(tmp_path / f"{mask}.tif"), workers=0, count_path=str(count)))).run()
        with rasterio.open(count) as c:
            counts[mask] = c.read(1)
    masked_km2 = ((counts["none"] > 0) & (counts["auto"] == 0)).sum() * 0.25 ** 2
    polygons_km2 = sum(qimasks.gml_area(gml.read_bytes()).values()) / 1e6
    assert polygons_km2 > 1000 and abs(masked_km2 - polygons_km2) / polygons_km2 < 0.01
