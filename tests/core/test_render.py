"""Stretches (pure numpy) and thumbnails, with golden images (small tolerance).

Regenerate the golden PNGs after an intended change with `S2_UPDATE_GOLDEN=1 pytest tests/core/test_render.py`.
"""

import os
from pathlib import Path

import numpy as np
import pytest
import rasterio
from PIL import Image

from s2desktop.core import render
from s2desktop.core.errors import InvalidInputError
from tests.fixtures_rasters import write_band

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("S2_UPDATE_GOLDEN") == "1"
JGF = "aws_tiles/l1c_T55JGF_20180617_N0206/tiles/55/J/GF/2018/6/17/0"


def compare_golden(rgba: np.ndarray, name: str, tol: int = 2) -> None:
    path = GOLDEN / name
    if UPDATE or not path.exists():
        GOLDEN.mkdir(exist_ok=True)
        Image.fromarray(rgba).save(path)
        if not UPDATE:
            pytest.skip(f"golden image {name} created; re-run to compare")
    want = np.asarray(Image.open(path).convert("RGBA"))
    assert want.shape == rgba.shape
    np.testing.assert_array_equal(rgba[..., 3], want[..., 3])
    diff = np.abs(rgba.astype(int) - want.astype(int))[..., :3]
    assert diff.max() <= tol, f"{name}: max difference {diff.max()}"


@pytest.fixture
def rgb_file(tmp_path):
    """A 3-band uint16 'composite' 400 x 300 with a gradient, a bright patch and a nodata corner."""
    yy, xx = np.mgrid[0:300, 0:400]
    r = 500 + 8 * xx
    g = 400 + 10 * yy
    b = 300 + 3 * (xx + yy)
    data = np.stack([r, g, b]).astype(np.uint16)
    data[:, 100:140, 200:260] = 9000
    data[:, :60, :80] = 0
    p = write_band(tmp_path / "rgb.tif", data, block=64)
    with rasterio.open(p, "r+") as ds:
        ds.nodata = 0
        ds.update_tags(OUTPUT_OFFSET="0")
    return p


def test_percentile_excludes_nodata_and_cuts_2_98():
    rng = np.random.default_rng(0)
    data = rng.integers(1000, 2000, (3, 100, 100)).astype(np.uint16)
    valid = np.ones((100, 100), bool)
    valid[:10] = False
    data[:, :10] = 0
    out = render.percentile(data, valid)
    assert out.dtype == np.uint8 and out.shape == data.shape
    assert (out[:, :10] == 0).all()
    frac_sat = (out[:, 10:] == 255).mean()
    assert 0.01 < frac_sat < 0.04  # ~2 % at the top
    lo, hi = np.percentile(data[0][valid], [2, 98])
    assert out[0][valid][data[0][valid] <= lo].max() == 0
    wide = render.percentile(data, valid, low=0, high=100)
    assert wide[0][valid].min() == 0 and wide[0][valid].max() == 255


def test_minmax_truecolor_gamma_rgba():
    data = np.array([[[0, 1000, 4000, 8000]]], dtype=np.uint16)
    valid = data[0] != 0
    np.testing.assert_array_equal(render.minmax(data, valid)[0, 0], [0, 0, 109, 255])
    np.testing.assert_array_equal(render.truecolor(data, valid)[0, 0], [0, 64, 255, 255])
    # baseline >= 04.00: DN 1000 is reflectance 0, DN 5000 is 0.4 -> 255
    np.testing.assert_array_equal(render.truecolor(data, valid, offset=-1000)[0, 0], [0, 0, 191, 255])
    assert render.gamma(np.array([0, 64, 255], np.uint8), 2.0).tolist() == [0, 128, 255]
    rgba = render.to_rgba(render.minmax(data, valid), valid)
    assert rgba.shape == (1, 4, 4) and rgba[0, 0, 3] == 0 and (rgba[0, 1:, 3] == 255).all()
    assert (rgba[0, 2, :3] == 109).all()  # grey replicated
    with pytest.raises(ValueError):
        render.stretch(data, valid, "bogus")


def test_empty_valid_does_not_crash():
    data = np.zeros((3, 5, 5), np.uint16)
    valid = np.zeros((5, 5), bool)
    assert not render.percentile(data, valid).any()
    assert not render.minmax(data, valid).any()


@pytest.mark.parametrize("stretch", ["percentile", "minmax", "truecolor"])
def test_thumbnail_golden_rgb(rgb_file, stretch):
    rgba = render.thumbnail(rgb_file, 200, stretch)
    assert rgba.shape == (150, 200, 4)
    assert (rgba[:25, :35, 3] == 0).all() and (rgba[40:, 60:, 3] == 255).all()
    compare_golden(rgba, f"thumb_rgb_{stretch}.png")


def test_thumbnail_golden_grey_band_and_bands_option(rgb_file):
    rgba = render.thumbnail(rgb_file, 120, "percentile", bands=[2])
    assert rgba.shape == (90, 120, 4)
    assert (rgba[..., 0] == rgba[..., 1]).all() and (rgba[..., 1] == rgba[..., 2]).all()
    compare_golden(rgba, "thumb_grey_band2.png")
    swapped = render.thumbnail(rgb_file, 120, "minmax", bands=[3, 2, 1])
    normal = render.thumbnail(rgb_file, 120, "minmax", bands=[1, 2, 3])
    np.testing.assert_array_equal(swapped[..., 0], normal[..., 2])
    with pytest.raises(InvalidInputError):
        render.thumbnail(rgb_file, 120, "minmax", bands=[1, 2])


def test_thumbnail_golden_real_55jgf(shared_real):
    rgba = render.thumbnail(shared_real / JGF / "B04.jp2", 128, "percentile")
    assert rgba.shape == (128, 128, 4)
    assert (rgba[..., 3] == 0).any()  # the real nodata wedge is transparent
    compare_golden(rgba, "thumb_55JGF_B04.png", tol=3)


def test_thumbnail_never_reads_full_resolution(tmp_path, monkeypatch):
    """The read goes through out_shape: a decimated read of a big JP2 is served by reduced resolutions."""
    import rasterio.io

    arr = np.tile(np.arange(1, 2049, dtype=np.uint16), (2048, 1))
    p = write_band(tmp_path / "big.jp2", arr, driver="JP2OpenJPEG", block=1024)
    calls = []
    orig = rasterio.io.DatasetReader.read

    def spy(self, *a, **kw):
        calls.append(kw.get("out_shape"))
        return orig(self, *a, **kw)

    monkeypatch.setattr(rasterio.io.DatasetReader, "read", spy)
    rgba = render.thumbnail(p, 64, "minmax")
    assert rgba.shape == (64, 64, 4)
    assert calls and all(c is not None and c[-1] <= 64 for c in calls)


def test_levels_are_the_one_definition_of_each_stretch():
    """The viewer and the export map through render.levels/apply_levels; the named stretches must agree."""
    rng = np.random.default_rng(7)
    data = rng.integers(1, 6000, size=(3, 40, 50), dtype=np.uint16)
    valid = np.ones((40, 50), dtype=bool)
    valid[:5] = False
    for method, direct in (("percentile", render.percentile(data, valid)), ("minmax", render.minmax(data, valid)),
                           ("truecolor", render.truecolor(data, valid, offset=-1000))):
        lv = render.levels(data, valid, method, offset=-1000)
        assert len(lv) == 3 and all(lo < hi for lo, hi in lv)
        np.testing.assert_array_equal(render.apply_levels(data, valid, lv), direct)
    assert render.levels(data, valid, "truecolor", offset=-1000)[0] == (1000.0, 5000.0)
    assert render.levels(data, valid, "minmax")[0] == (float(data[0][valid].min()), float(data[0][valid].max()))
    with pytest.raises(ValueError):
        render.levels(data, valid, "percentile", low=50, high=10)


def test_png_only_under_a_png_name(tmp_path):
    rgba = np.zeros((4, 4, 4), dtype=np.uint8)
    with pytest.raises(InvalidInputError, match="written as PNG"):
        render.save_png(rgba, tmp_path / "q.tif")
    assert not list(tmp_path.iterdir())
    assert render.save_png(rgba, tmp_path / "q.PNG").is_file()


def test_truecolor_levels_have_no_negative_zero():
    data = np.ones((3, 2, 2), dtype=np.uint16)
    lo, hi = render.levels(data, None, "truecolor")[0]
    assert (lo, hi) == (0.0, 4000.0) and str(lo) == "0.0"


def test_scene_classification_in_its_class_colours(tmp_path, shared_real):
    """Every SCL value gets its class colour (unknown values magenta), class 0 and nodata are transparent; a
    thumbnail of an SCL picks the class colours by itself (auto) and never averages classes into others."""
    values = np.arange(16, dtype=np.uint8).reshape(4, 4)
    rgba = render.classes(values)
    for v in range(16):
        r, c = divmod(v, 4)
        want = render.SCL_CLASSES[v][1] if v in render.SCL_CLASSES else render.UNKNOWN_CLASS
        assert tuple(rgba[r, c, :3]) == want and rgba[r, c, 3] == (0 if v == 0 else 255), v
    valid = np.ones((4, 4), bool)
    valid[3, 3] = False
    assert render.classes(values[np.newaxis], valid)[3, 3, 3] == 0
    assert render.class_name(9) == "Cloud, high probability" and render.class_name(14) == "unknown class 14"

    p = shared_real / "rasters" / "scl" / "T01CEM_SCL_60m_rio-tiler-pds.jp2"  # classes 0, 6 and 10 only
    thumb = render.thumbnail(p, 150)
    assert thumb.shape == (150, 150, 4)
    colours = {tuple(px) for px in thumb[thumb[..., 3] > 0][:, :3].tolist()}
    assert colours <= {render.SCL_CLASSES[6][1], render.SCL_CLASSES[10][1]}, colours
    assert render.SCL_CLASSES[10][1] in colours
    grey = render.thumbnail(p, 150, "percentile")
    assert (grey[..., 0] == grey[..., 2]).all()  # asked for a stretch: the grey one


def test_shared_cut_keeps_the_balance_of_the_bands():
    """One cut over all bands: equal values render equal in every band (grey stays grey), unlike per band."""
    ramp = np.tile(np.arange(1000, 3000, 20, dtype=np.uint16), (10, 1))
    data = np.stack([ramp, ramp + 400, ramp + 800])
    data[:, 0, 0] = 2200  # a grey pixel
    lv = render.levels(data, None, "shared")
    assert lv[0] == lv[1] == lv[2] and lv[0][0] < 1200 and lv[0][1] > 3500  # spans all three bands
    u8 = render.shared(data, None)
    assert len(set(u8[:, 0, 0].tolist())) == 1
    assert len(set(render.percentile(data, None)[:, 0, 0].tolist())) == 3
    np.testing.assert_array_equal(render.stretch(data, None, "shared"), u8)


def test_default_stretch_by_raster_kind():
    assert render.default_stretch(3, ["uint16"] * 3) == "truecolor"  # a Sentinel-2 RGB composite
    assert render.default_stretch(1, ["uint16"]) == "percentile"
    assert render.default_stretch(3, ["uint8"] * 3) == "percentile"
    assert render.default_stretch(1, ["uint8"], scene_classification=True) == "classes"


@pytest.mark.parametrize("bands", [3, 1])
def test_window_canvas_paints_each_window_as_truecolor_and_to_rgba_make_it(bands):
    from s2desktop.core.progress import WindowPixels
    from s2desktop.core.render import WindowCanvas

    rng = np.random.default_rng(bands)
    data = rng.integers(0, 6000, (bands, 40, 50), dtype=np.uint16)
    data[:, :5] = 0  # nodata: transparent
    data[0, 10:12] = 0  # with three bands, one band's 0 alone is still a pixel
    canvas = WindowCanvas(100, 120, (480, 400))
    canvas.paste(WindowPixels(data, 30, 60, 100, 120, 4, 400, 480))
    valid = (data != 0).any(axis=0)
    u8 = render.truecolor(data, valid)
    np.testing.assert_array_equal(canvas.rgba[30:70, 60:110], render.to_rgba(u8 if bands == 3 else u8[:1], valid))
    outside = np.ones((100, 120), bool)
    outside[30:70, 60:110] = False
    assert not canvas.rgba[outside].any() and canvas.windows == 1
    assert (canvas.rgba[35:70, 60:110, 3] > 0).sum() == 35 * 50 - (0 if bands == 3 else 2 * 50)
