"""The whole flow in the real window against the local S3 server: tile -> dates -> search -> select ->
download -> composite (another process) -> viewer -> attributes -> export."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import rasterio
from PySide6.QtCore import Qt

from tests.fixtures_gui import use_s3


def test_tile_search_download_composite_view_export(qtbot, main_window, seeded_s3, tmp_path):
    w = main_window
    use_s3(w, seeded_s3, "l1c")

    # type a tile in a form people use; the panel validates and normalises it and zooms the map
    qtbot.keyClicks(w.source_panel.tile, "t33uup")
    assert w.source_panel.tile_id() == "33UUP"
    assert w.map.selected_tile == "33UUP"

    w.scene_panel.set_dates(dt.date(2023, 7, 1), dt.date(2023, 7, 31))
    with qtbot.waitSignal(w.scene_panel.searchFinished, timeout=30000) as found:
        qtbot.mouseClick(w.scene_panel.search_button, Qt.MouseButton.LeftButton)
    scenes = found.args[0]
    assert [s.date.isoformat() for s in scenes] == ["2023-07-04", "2023-07-14", "2023-07-14", "2023-07-14",
                                                     "2023-07-31"]
    assert w.scene_panel.model.rowCount() == 5
    assert w.scene_panel.model.data(w.scene_panel.model.index(1, 2)) == "0.5"

    # previews arrive lazily for the visible rows
    qtbot.waitUntil(lambda: len(w.scene_panel.model.previews) >= 1, timeout=20000)

    # select under 15 % cloud: 07-04 (12), 07-14 #0 (0.5), 07-31 (3)
    w.scene_panel.under.setValue(15)
    qtbot.mouseClick(w.scene_panel.select_under, Qt.MouseButton.LeftButton)
    assert len(w.scene_panel.model.checked) == 3
    assert "3</b> of 5" in w.scene_panel.count.text()
    # clicking a point of the timeline toggles that scene
    w.scene_panel.timeline.pointClicked.emit(4)
    assert len(w.scene_panel.model.checked) == 2
    w.scene_panel.timeline.pointClicked.emit(4)
    assert len(w.scene_panel.model.checked) == 3
    assert w.act_download.isEnabled()

    with qtbot.waitSignal(w.download_panel.allFinished, timeout=60000) as done:
        w.download()
    assert done.args[0] == {"downloaded": 9}
    rows = w.download_panel.rows
    assert len(rows) == 9
    for r in rows:
        assert r.bar.value() == r.bar.maximum(), r.path
        assert r.path.is_file()
    assert w.download_panel.total_bar.value() == w.download_panel.total_bar.maximum()
    dl = tmp_path / "downloads"
    assert sorted(p.name for p in (dl / "red").iterdir()) == [
        "33UUP_2023-07-04_0_B04.jp2", "33UUP_2023-07-14_0_B04.jp2", "33UUP_2023-07-31_0_B04.jp2"]

    # the composite panel gets the downloaded inputs; run it (quick preview, then full resolution)
    qtbot.waitUntil(lambda: w.composite_panel.start_button.isEnabled(), timeout=20000)
    out = Path(w.composite_panel.output.text())
    assert out.parent == dl / "composites"
    previews = []
    w.composite_panel.compositeReady.connect(lambda p, prev: previews.append((p, prev)))
    with qtbot.waitSignal(w.viewer.loaded, timeout=60000, check_params_cb=lambda p, _i: p == str(out)):
        w.composite_panel.start()
        qtbot.waitUntil(lambda: w.composite_panel.runner.process is not None and
                        w.composite_panel.runner.process.pid is not None, timeout=10000)
        pids = {w.composite_panel.runner.process.pid}
    assert [prev for _p, prev in previews] == [True, False]
    import os

    assert os.getpid() not in pids  # the compositor ran in another process
    assert out.is_file()
    with rasterio.open(out) as ds:
        assert ds.count == 3 and ds.dtypes[0] == "uint16" and ds.crs.to_epsg() == 32633
        assert ds.read(1).max() > 0

    # the viewer shows it, with attributes and a thumbnail
    qtbot.waitUntil(lambda: w.viewer.image_rgba is not None and w.viewer.path == str(out), timeout=20000)
    assert w.viewer.image_rgba.shape[2] == 4 and w.viewer.image_rgba[..., :3].max() > 0
    assert w.attributes.value_of("crs_epsg") == "32633"
    assert w.attributes.value_of("count") == "3"
    px = w.viewer.pixel_at(40, 40)
    assert px is not None and len(px["values"]) == 3
    lon, lat = px["lonlat"]
    assert 12 < lon < 14 and 47 < lat < 48.5
    qtbot.waitUntil(lambda: w.thumbnail.qimage is not None, timeout=20000)
    assert w.thumbnail.save(tmp_path / "thumb.png") and (tmp_path / "thumb.png").stat().st_size > 0

    # stretches re-render through the core
    before = w.viewer.image_rgba.copy()
    with qtbot.waitSignal(w.viewer.rendered, timeout=10000):
        w.viewer.stretch.setCurrentIndex(w.viewer.stretch.findData("minmax"))
    assert not np.array_equal(before, w.viewer.image_rgba)

    # export: the composite as computed, and the rendering as georeferenced GeoTIFF and PNG
    for kind, name in (("composite", "copy.tif"), ("geotiff", "rendered.tif"), ("png", "rendered.png")):
        assert w.export(kind, tmp_path / "exports" / name) is not None
        qtbot.waitUntil(lambda: w.last_export == str(tmp_path / "exports" / name), timeout=30000)
    with rasterio.open(tmp_path / "exports" / "copy.tif") as ds:
        assert ds.dtypes[0] == "uint16" and ds.count == 3
    with rasterio.open(tmp_path / "exports" / "rendered.tif") as ds:
        assert ds.dtypes[0] == "uint8" and ds.count == 4 and ds.crs.to_epsg() == 32633
        assert ds.read(4).max() == 255
    assert (tmp_path / "exports" / "rendered.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list((tmp_path / "exports").glob(".*partial*"))
