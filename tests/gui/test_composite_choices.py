"""The composite panel offers the band preset and the cloud mask (which mask, its buffer); the window's request
carries them, the cost line follows them, and the composite is masked as chosen."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import rasterio
from PySide6.QtCore import Qt

from s2desktop.core.areas import parse_bbox
from s2desktop.core.bands import PRESETS
from s2desktop.core.pipeline import Request
from s2desktop.core.stack import MASK_CHOICES
from tests.fixtures_gui import inputs_of, search_and_tick, use_s3


def _pick(combo, data) -> None:
    i = combo.findData(data)
    assert i >= 0, data
    combo.setCurrentIndex(i)
    combo.activated.emit(i)


def test_the_panel_offers_every_preset_and_mask_choice_with_a_tip(main_window):
    cp = main_window.composite_panel
    presets = [cp.band_preset.itemData(i) for i in range(cp.band_preset.count())]
    masks = [cp.mask_fields.choice.itemData(i) for i in range(cp.mask_fields.choice.count())]
    assert presets == list(PRESETS) and masks == list(MASK_CHOICES)  # the core's, each once, in its order
    assert cp.bands() == ("B04", "B03", "B02") and cp.mask() == "auto"  # today's defaults
    assert all(cp.mask_fields.choice.itemData(i, Qt.ItemDataRole.ToolTipRole) for i in range(len(masks)))
    assert "B12, B8A, B04" in cp.band_preset.itemText(presets.index("swir"))
    _pick(cp.mask_fields.choice, "none")
    assert not cp.mask_fields.buffer.isEnabled() and cp.mask_fields.mask_buffer() == 0.0
    _pick(cp.mask_fields.choice, "qi")
    cp.mask_fields.buffer.setValue(30)
    assert cp.mask_fields.buffer.isEnabled() and cp.mask_fields.mask_buffer() == 30.0


def test_the_request_carries_the_choices_and_the_cost_line_follows_them(qtbot, main_window, seeded_s3):
    w, cp, label = main_window, main_window.composite_panel, main_window.download_panel.cost_label
    use_s3(w, seeded_s3, "l2a")
    scenes = search_and_tick(qtbot, w, "33UUP", dt.date(2023, 7, 1), dt.date(2023, 7, 10))
    n = len(scenes)
    qtbot.waitUntil(lambda: label.text().startswith(f"{n} scene(s), {4 * n} file(s)"), timeout=10000)  # + SCL

    _pick(cp.mask_fields.choice, "none")  # no masks to fetch
    qtbot.waitUntil(lambda: label.text().startswith(f"{n} scene(s), {3 * n} file(s)"), timeout=10000)
    _pick(cp.band_preset, "false-colour")
    request = w.download_request()
    assert request.bands == ("B08", "B04", "B03") and request.mask == "none"
    _pick(cp.band_preset, "all")  # the seeded scenes have five bands: said before any download
    qtbot.waitUntil(lambda: "is not in scene" in label.text() and "B01" in label.text(), timeout=10000)


def test_an_areas_request_takes_the_panels_bands_mask_and_buffer(main_window, tmp_path):
    cp = main_window.composite_panel
    cp.set_area(Request(area=parse_bbox("12.0,48.0,12.1,48.1"), scenes=()), streamed=True)
    _pick(cp.band_preset, "swir")
    _pick(cp.mask_fields.choice, "scl")
    cp.mask_fields.buffer.setValue(20)
    job = cp.area_job(tmp_path / "a.tif")
    assert job.bands == ("B12", "B8A", "B04") and job.mask == "scl" and job.composite.mask_buffer == 20.0
    assert job.composite.output == str(tmp_path / "a.tif") and job.resolution == cp.resolution.value()


def test_a_tile_composite_is_masked_with_the_buffer_chosen(qtbot, main_window, raster_stack, tmp_path):
    cp = main_window.composite_panel
    out = tmp_path / "c.tif"
    stack = inputs_of(raster_stack(dates=3, size=64, scl=True))
    assert stack.masked == 3
    cp.set_inputs(stack, default_output=out)
    assert "clouds masked on 3" in cp.inputs_label.text() and "B04, B03, B02" in cp.inputs_label.text()
    _pick(cp.band_preset, "false-colour")
    assert cp.inputs_label.text().endswith("Download again for B08, B04, B03.")
    _pick(cp.mask_fields.choice, "none")
    assert "clouds masked" not in cp.inputs_label.text()
    _pick(cp.band_preset, "true-colour")
    _pick(cp.mask_fields.choice, "auto")
    assert "Download again" not in cp.inputs_label.text() and "clouds masked on 3" in cp.inputs_label.text()
    cp.quick.setChecked(False)
    cp.mask_fields.buffer.setValue(20)
    with qtbot.waitSignal(cp.compositeReady, timeout=60000):
        cp.start()
    with rasterio.open(out) as ds:
        tags = ds.tags()
    assert tags["MASK_BUFFER"].startswith("20 m") and Path(cp.output.text()) == out


def test_a_tile_downloaded_with_masks_composites_unmasked_when_the_mask_is_set_to_none(qtbot, main_window,
                                                                                       raster_stack, tmp_path):
    cp = main_window.composite_panel
    st = raster_stack(dates=3, size=64, scl=True)
    said = {}  # the MASK tag of each composite
    for choice in ("auto", "none"):
        out = tmp_path / f"{choice}.tif"
        cp.set_inputs(inputs_of(st), default_output=out)
        cp.output.setText(str(out))
        cp.quick.setChecked(False)
        _pick(cp.mask_fields.choice, choice)
        with qtbot.waitSignal(cp.compositeReady, timeout=60000):
            cp.start()
        with rasterio.open(out) as ds:
            said[choice] = ds.tags()["MASK"]
    assert said["auto"].startswith("SCL classes") and said["none"] == "none"
