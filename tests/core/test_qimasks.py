"""Level-1C cloud masks: the real 55JGF MSK_CLOUDS_B00.gml, constructed GML and MSK_CLASSI_B00 masks, and the
buffer around masked pixels."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from affine import Affine

from s2desktop.core import qimasks
from s2desktop.core.errors import RasterError

GML_55JGF = "aws_tiles/l1c_T55JGF_20180617_N0206/tiles/55/J/GF/2018/6/17/0/qi/MSK_CLOUDS_B00.gml"
UL = (699960, 6600040)  # 55JGF's upper-left corner (EPSG:32755)


def test_the_real_55jgf_gml_rasterised_covers_its_polygons_area_within_1_percent(shared_real):
    data = (shared_real / GML_55JGF).read_bytes()
    polygons = qimasks.parse_cloud_gml(data)
    assert len(polygons) > 700 and {k for k, _g in polygons} == {qimasks.OPAQUE}
    area = qimasks.gml_area(data)[qimasks.OPAQUE]
    mask = qimasks.rasterise_gml(data, (5490, 5490), Affine(20, 0, UL[0], 0, -20, UL[1]))
    assert set(np.unique(mask)) == {0, qimasks.OPAQUE}
    assert abs((mask > 0).sum() * 20 * 20 / area - 1) < 0.01


def _gml(members: str) -> bytes:
    return (f'<?xml version="1.0"?><eop:Mask xmlns:eop="http://www.opengis.net/eop/2.0" '
            f'xmlns:gml="http://www.opengis.net/gml/3.2"><eop:maskMembers>{members}</eop:maskMembers></eop:Mask>'
            ).encode()


def _member(kind: str, *rings) -> str:
    def ring(coords, tag):
        pos = " ".join(f"{x} {y}" for x, y in coords)
        return f"<gml:{tag}><gml:LinearRing><gml:posList srsDimension=\"2\">{pos}</gml:posList></gml:LinearRing></gml:{tag}>"

    body = ring(rings[0], "exterior") + "".join(ring(r, "interior") for r in rings[1:])
    return (f"<eop:MaskFeature><eop:maskType>{kind}</eop:maskType><eop:extentOf><gml:Polygon>{body}</gml:Polygon>"
            "</eop:extentOf></eop:MaskFeature>")


def _square(x0, y0, size):
    return [(x0, y0), (x0 + size, y0), (x0 + size, y0 - size), (x0, y0 - size), (x0, y0)]


def test_opaque_and_cirrus_polygons_with_a_hole_on_a_band_grid():
    data = _gml(_member("OPAQUE", _square(100, 1000, 400), _square(200, 900, 200)) + _member("CIRRUS", _square(600, 1000, 200))
                + _member("TECQUA", _square(0, 1000, 1000)))
    mask = qimasks.rasterise_gml(data, (100, 100), Affine(10, 0, 0, 0, -10, 1000))
    assert (mask == qimasks.OPAQUE).sum() == 40 * 40 - 20 * 20  # the hole is not masked
    assert (mask == qimasks.CIRRUS).sum() == 20 * 20 and mask[0:10, 0:10].sum() == 0  # other mask types ignored
    assert qimasks.rasterise_gml(_gml(""), (5, 5), Affine(10, 0, 0, 0, -10, 50)).sum() == 0  # a clear scene
    with pytest.raises(RasterError, match="not a readable GML mask"):
        qimasks.parse_cloud_gml(b"<eop:Mask")


def test_msk_classi_bands_become_bits_on_the_band_grid(tmp_path):
    classi = np.zeros((3, 6, 6), np.uint8)
    classi[0, 0, 0] = classi[1, 1, 1] = classi[2, 2, 2] = 1
    path = tmp_path / "MSK_CLASSI_B00.jp2"
    with rasterio.open(path, "w", driver="JP2OpenJPEG", width=6, height=6, count=3, dtype="uint8", crs="EPSG:32633",
                       transform=Affine(60, 0, 300000, 0, -60, 5400000), QUALITY="100", REVERSIBLE="YES") as ds:
        ds.write(classi)
    mask = qimasks.read_classi(path, (36, 36), Affine(10, 0, 300000, 0, -10, 5400000), "EPSG:32633")
    assert (mask[0:6, 0:6] == qimasks.OPAQUE).all() and (mask[6:12, 6:12] == qimasks.CIRRUS).all()
    assert (mask[12:18, 12:18] == qimasks.SNOW).all() and (mask > 0).sum() == 3 * 36


def test_a_buffer_of_20_m_grows_a_mask_by_two_pixels_at_10_m():
    mask = np.zeros((20, 20), bool)
    mask[8:12, 8:12] = True
    grown = qimasks.dilate(mask, 20, 10)
    rows, cols = np.nonzero(grown)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (6, 13, 6, 13)
    assert not grown[6, 6] and grown[7, 7]  # a disk, not a square: the corner 2 px away diagonally stays clear
    assert (qimasks.dilate(mask, 0, 10) == mask).all() and qimasks.dilate(mask, 10, 20).sum() == mask.sum()
