"""An area in the window: drawn on the map over a tile edge, its tiles searched and listed by acquisition, then
composited straight from COGs on the local S3 server behind a throttling proxy -- a coarse preview first, the
full resolution behind it, the same pixels as the command line; cancelled, it leaves nothing."""

from __future__ import annotations

import datetime as dt
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyqtgraph as pg
import pytest
import rasterio
from affine import Affine
from rasterio.features import geometry_mask
from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from s2desktop.cli import main as cli_main
from s2desktop.core import archive, areas, tiles
from s2desktop.gui.source_panel import format_bounds
from tests.fixtures_s3 import ThrottledProxy, _upload_tree

# 13.59-13.86 E, 48.11-48.25 N: over the edge between 33UUP and 33UVP (the only tiles under it)
BOX = (13.5856, 48.1146, 13.8579, 48.2525)
TILES = {"33UUP", "33UVP"}
N = 1098  # px: 100 m pixels, 1024 px COG blocks and one overview level, as the real bucket writes them
DATES = [("2023-07-01", ("33UUP", "33UVP"), 3.0), ("2023-07-06", ("33UUP", "33UVP"), 12.0),
         ("2023-07-11", ("33UUP",), 0.5), ("2023-07-16", ("33UUP", "33UVP"), 40.0)]
START, END = dt.date(2023, 6, 28), dt.date(2023, 7, 20)
BUCKET = "gui-area-cogs"


def _scene(root: Path, tile: str, date: str, index: int, cloud: float, layout: str = "cogs", n: int = N) -> None:
    """A scene whose ground is one smooth function of the UTM coordinates (the tiles agree where they overlap),
    a little brighter each date; on the cloudy date a cloud the scene classification marks (9)."""
    f = tiles.footprint(tile)
    px = 109800 / n
    transform = Affine(px, 0, f.utm_bounds[0], 0, -px, f.utm_bounds[3])
    cols, rows = np.meshgrid(np.arange(n) + 0.5, np.arange(n) + 0.5)
    x, y = transform * (cols, rows)
    ground = 900 + 350 * np.sin(x / 2300.0) + 250 * np.cos(y / 1700.0) + 30 * index
    bands = {b: (ground + 150 * i).astype(np.uint16) for i, b in enumerate(("B02", "B03", "B04"))}
    scl = np.full((n // 2, n // 2), 4, np.uint8)
    if cloud > 30:
        cloudy = (x - 405000) ** 2 + (y - 5338000) ** 2 < 4000 ** 2
        for b in bands.values():
            b[cloudy] = 6000
        scl[cloudy[::2, ::2]] = 9
    archive.write_scene(root, layout, tile, dt.date.fromisoformat(date), 0, bands, crs=f.epsg, transform=transform,
                        baseline="05.09", cloud_cover=cloud, data_coverage=100.0, scl=scl)


def _bucket(seeded, root: Path, name: str, layout: str, n: int) -> str:
    for i, (date, names, cloud) in enumerate(DATES):
        for tile in names:
            _scene(root, tile, date, i, cloud, layout, n)
    client = seeded.client()
    client.create_bucket(Bucket=name)
    with ThreadPoolExecutor(8) as pool:
        _upload_tree(client, name, root, pool, public=layout == "cogs")
    return name


@pytest.fixture(scope="module")
def area_bucket(seeded, tmp_path_factory) -> str:
    return _bucket(seeded, tmp_path_factory.mktemp("area-cogs"), BUCKET, "cogs", N)


@pytest.fixture(scope="module")
def area_l2a_bucket(seeded, tmp_path_factory) -> str:
    """The same ground in the L2A JPEG 2000 layout, at 300 m (366 px): small files to download whole."""
    return _bucket(seeded, tmp_path_factory.mktemp("area-l2a"), "gui-area-l2a", "l2a", 366)


@pytest.fixture
def slow_cogs(seeded_s3, area_bucket):
    """The area's bucket behind a proxy serving 1 MiB/s per connection: a full composite takes seconds."""
    proxy = ThrottledProxy(seeded_s3.endpoint, rate=1 << 20)
    yield proxy
    proxy.close()


# -- driving the map with the mouse

def _viewport_pos(picker, lon, lat) -> QPointF:
    return QPointF(picker.plot.mapFromScene(picker.view.mapViewToScene(QPointF(lon, lat))))


def _mouse(picker, kind, pos: QPointF, buttons, button, modifiers) -> None:
    vp = picker.plot.viewport()
    QApplication.sendEvent(vp, QMouseEvent(kind, pos, QPointF(vp.mapToGlobal(pos.toPoint())), button, buttons,
                                           modifiers))


def _drag(picker, a, b, modifiers=Qt.KeyboardModifier.NoModifier, escape_midway: bool = False) -> None:
    """Press at lon/lat ``a``, move in steps to ``b`` and release, as a hand on the mouse does (QTest's own
    mouseMove carries no keyboard modifiers, so the events are made here). The moves are paced at pyqtgraph's
    mouse rate limit, which drops moves that come faster (a dropped first move turns the drag into a click)."""
    left, none = Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton
    pace_ms = int(1000 / max(1, pg.getConfigOption("mouseRateLimit"))) + 5
    QTest.qWait(pace_ms)  # and a view that was just moved has settled
    p0, p1 = _viewport_pos(picker, *a), _viewport_pos(picker, *b)
    _mouse(picker, QEvent.Type.MouseButtonPress, p0, left, left, modifiers)
    for i in range(1, 11):
        QTest.qWait(pace_ms)
        _mouse(picker, QEvent.Type.MouseMove, p0 + (p1 - p0) * (i / 10), left, none, modifiers)
        if escape_midway and i == 5:
            QTest.keyClick(picker.plot, Qt.Key.Key_Escape)
    _mouse(picker, QEvent.Type.MouseButtonRelease, p1, none, left, modifiers)


def _show_box(picker, box) -> None:
    picker.zoom_to_box(box)
    picker.update_grid()


def _draw(qtbot, w, box=BOX):
    """Shift-drag the box on the window's map, from its north-west corner to its south-east corner."""
    w.show_map()
    _show_box(w.map, box)
    with qtbot.waitSignal(w.source_panel.areaChanged, timeout=5000):
        _drag(w.map, (box[0], box[3]), (box[2], box[1]), Qt.KeyboardModifier.ShiftModifier)
    return w.source_panel.area()


def test_shift_drag_draws_an_area_and_highlights_the_tiles_under_it(qtbot, main_window):
    w = main_window
    w.source_panel.set_tile("33UUP")
    assert w.map.selected_tile == "33UUP"
    area = _draw(qtbot, w)
    px = w.map.view_span() / w.map.plot.viewport().width()  # degrees per screen pixel
    assert all(abs(got - want) < 2 * px + 1e-4 for got, want in zip(area.bounds, BOX)), (area.bounds, BOX)
    assert w.map.selected_tile is None and w.source_panel.tile_id() is None  # tile mode is over
    assert w.source_panel.tile.text() == format_bounds(area.bounds)  # the area to read, copy or type
    assert set(w.map.area_tiles) == TILES == set(areas.area_tiles(area))
    assert w.map._area_item.isVisible() and w.map._area_tiles_item.isVisible()
    outline = w.map._area_item.path().boundingRect()
    assert (outline.left(), outline.top()) == pytest.approx(area.bounds[:2], abs=1e-6)
    assert "2 tiles" in w.map.tile_label.text() and "33UUP" in w.source_panel.tile_error.text()
    assert w.act_search.isEnabled()

    # Esc during a drag cancels that drawing: the area stays what it was
    inner = (13.62, 48.24), (13.75, 48.15)
    _drag(w.map, *inner, Qt.KeyboardModifier.ShiftModifier, escape_midway=True)
    assert w.source_panel.area().bounds == area.bounds and not w.map._rubber_item.isVisible()
    assert "cancelled" in w.map.hint_label.text()

    # a plain drag pans the map; in draw mode it draws
    before = w.map.view.viewRange()
    _drag(w.map, *inner)
    assert w.source_panel.area().bounds == area.bounds and w.map.view.viewRange() != before
    _show_box(w.map, BOX)
    w.map.draw_button.click()
    assert w.map.draw_mode
    with qtbot.waitSignal(w.source_panel.areaChanged, timeout=5000):
        _drag(w.map, *inner)
    assert w.source_panel.area().bounds[0] == pytest.approx(13.62, abs=0.01)
    assert not w.map.draw_mode and not w.map.draw_button.isChecked()  # one box drawn: dragging pans again
    w.map.draw_button.click()
    QTest.keyClick(w.map.plot, Qt.Key.Key_Escape)  # no drawing under way: Esc leaves draw mode
    assert not w.map.draw_mode and not w.map.draw_button.isChecked()

    # a click on a tile goes back to tile mode
    with qtbot.waitSignal(w.source_panel.tileChanged, timeout=5000):
        w.map.choose_overlap = lambda found: "33UUP" if "33UUP" in found else None
        w.map.click_lonlat(12.9, 48.4)
    assert w.source_panel.tile_id() == "33UUP" and w.source_panel.area() is None
    assert w.map.area is None and not w.map._area_item.isVisible()


def test_a_typed_area_is_shown_and_bad_ones_get_one_line(qtbot, main_window):
    w = main_window
    with qtbot.waitSignal(w.map.areaSelected, timeout=5000):
        w.source_panel.tile.setText(format_bounds(BOX))
    assert w.map.area == pytest.approx(BOX) and set(w.map.area_tiles) == TILES
    for text, words in (("13.8,48.1,13.5,48.2", "west 13.8 is not west of east 13.5"),
                        ("0,89.9,1,89.95", "No Sentinel-2 tile under area"), ("1,2,3", "is not four numbers")):
        w.source_panel.tile.setText(text)
        message = w.source_panel.tile_error.text()
        assert words in message and "\n" not in message and "--" not in message, message
        assert w.source_panel.area() is None and not w.act_search.isEnabled()
        assert w.map.area is None  # the map no longer shows an area the field does not name


def test_an_area_too_large_for_the_resolution_says_so_in_one_line(qtbot, main_window):
    w = main_window
    w.source_panel.tile.setText("5,40,15,50")  # ~800 x 1100 km: fine at 100 m, too large at 10 m
    cp = w.composite_panel
    assert cp.area_request is not None and cp.resolution.isVisible()
    qtbot.waitUntil(lambda: "more than the" in cp.inputs_label.text(), timeout=10000)  # worked out on a worker
    assert "area 5,40,15,50 at 10 m" in cp.inputs_label.text() and "--" not in cp.inputs_label.text()
    assert not cp.start_button.isEnabled()
    cp.resolution.setValue(100)
    qtbot.waitUntil(lambda: cp.inputs_label.text() == "Tick the acquisitions to composite in Dates and scenes.",
                    timeout=10000)
    t0 = time.perf_counter()
    w.source_panel.tile.setText("-180,-80,180,80")  # the world: 55,000 tiles, which the GUI thread never lists
    assert time.perf_counter() - t0 < 1.0
    assert "many tiles" in w.source_panel.tile_error.text() and w.map.tile_label.text() == "Area · many tiles"
    w.source_panel.tile.setText("33UUP")  # a tile: back to the downloaded inputs
    assert cp.area_request is None and not cp.resolution.isVisible()


def test_the_area_cache_limit_is_a_setting_the_request_carries(qtbot, main_window):
    from s2desktop.gui import settings as st

    dialog = st.SettingsDialog(main_window)
    assert dialog.area_cache.value() == 2.0  # the core's default, 2 GiB
    dialog.area_cache.setValue(0.5)
    dialog.accept()
    assert st.settings().value(st.AREA_CACHE_GIB) is not None and st.area_cache_limit() == 512 << 20
    assert st.SettingsDialog(main_window).area_cache.value() == 0.5  # kept for the next time
    main_window.source_panel.tile.setText(format_bounds(BOX))
    assert main_window.download_request().cache_limit == 512 << 20


def _search_area(qtbot, w, endpoint):
    w.source_panel.set_source("cogs", endpoint=endpoint, bucket=BUCKET)
    w.scene_panel.set_dates(START, END)
    area = _draw(qtbot, w)
    with qtbot.waitSignal(w.scene_panel.searchFinished, timeout=30000) as found:
        w.search()
    return area, found.args[0]


def test_an_area_is_searched_by_acquisition_previewed_then_composited_like_the_command_line(
        qtbot, main_window, slow_cogs, tmp_path):
    w = main_window
    area, scenes = _search_area(qtbot, w, slow_cogs.endpoint)
    assert {s.tile for s in scenes} == TILES and len(scenes) == 7
    model = w.scene_panel.model
    rows = [(model.data(model.index(r, 0)), model.data(model.index(r, 5))) for r in range(model.rowCount())]
    assert [r[0][:10] for r in rows] == [d for d, _t, _c in DATES]  # one row per acquisition (date + orbit)
    assert [set(r[1].split(", ")) for r in rows] == [set(t) for _d, t, _c in DATES]
    assert not w.scene_panel.table.isColumnHidden(5) and "4 acquisitions" in w.scene_panel.status.text()
    model.set_checked([s.scene_id for s in model.scenes], True)
    assert len(model.chosen_scenes()) == 7
    assert not w.act_download.isEnabled()  # streamed: nothing to download whole

    cp = w.composite_panel
    qtbot.waitUntil(lambda: cp.start_button.isEnabled(), timeout=10000)
    assert cp.area_request is not None and "4 acquisitions over 2 tiles" in cp.inputs_label.text()
    qtbot.waitUntil(lambda: cp.resolution.value() == 100, timeout=10000)  # the scenes' own pixel size
    assert cp.quick.text() == "Quick preview first (400 m)"  # always coarser than the full resolution
    cp.resolution.setValue(10)
    assert cp.quick.text() == "Quick preview first (80 m)"
    cp.resolution.setValue(100)
    out = tmp_path / "out" / "area.tif"
    cp.output.setText(str(out))
    ready, statuses = [], []
    cp.compositeReady.connect(lambda path, preview: ready.append((path, preview, w.viewer.note)))
    cp.runner.progress.connect(lambda _e: statuses.append(cp.status.text()))
    cp.start()
    qtbot.waitUntil(lambda: len(ready) == 2, timeout=120000)
    (preview, is_preview, _), (full, is_full_preview, _) = ready
    assert is_preview and not is_full_preview and full == str(out)
    assert Path(preview).parent != out.parent  # the preview lives in the cache, never beside the result
    qtbot.waitUntil(lambda: w.viewer.path == full, timeout=10000)
    assert w.viewer.note == ""  # the full composite replaced the marked preview
    with rasterio.open(full) as ds:
        window_pixels, res = ds.read(), ds.res
    assert res == (100.0, 100.0) and window_pixels.any()
    assert any("Preview at 400 m" in s for s in statuses) and any("Full resolution (100 m)" in s for s in statuses)
    fetching = [s for s in statuses if ": Fetching " in s]  # 'Fetching 1.2 MiB of 3.4 MiB, 2.2 MiB left · ...'
    assert fetching and all(" left" in s and ("MiB" in s or "KiB" in s) for s in fetching), statuses
    assert not any(p.suffix in (".jp2", ".tif") for p in (tmp_path / "downloads").rglob("*") if "composites"
                   not in p.parts)  # nothing was downloaded

    cli_out = tmp_path / "cli.tif"
    assert cli_main(["composite", "--bbox", format_bounds(area.bounds), "--source", "cogs", "--endpoint-url",
                     slow_cogs.endpoint, "--bucket", BUCKET, "--start", str(START), "--end", str(END),
                     "--resolution", "100", "--workers", "0", "-o", str(cli_out)]) == 0
    with rasterio.open(cli_out) as ds:
        assert ds.res == res
        np.testing.assert_array_equal(window_pixels, ds.read())  # the window and the command line: one job


def test_the_preview_is_shown_marked_before_the_full_composite(qtbot, main_window, slow_cogs, tmp_path):
    w = main_window
    _search_area(qtbot, w, slow_cogs.endpoint)
    w.scene_panel.model.set_checked([s.scene_id for s in w.scene_panel.model.scenes], True)
    cp = w.composite_panel
    cp.resolution.setValue(100)
    cp.output.setText(str(tmp_path / "area.tif"))
    with qtbot.waitSignal(cp.compositeReady, timeout=60000) as first:
        cp.start()
    assert first.args[1] is True
    qtbot.waitUntil(lambda: w.viewer.path == first.args[0], timeout=10000)
    assert w.viewer.note.startswith("Preview at 400 m") and w.viewer.note_label.isVisible()
    qtbot.waitUntil(lambda: cp.runner.running and not cp._is_preview, timeout=10000)  # the full run, behind it
    assert cp.status.text().startswith("Full resolution (100 m)") and w.viewer.note.startswith("Preview")
    with rasterio.open(first.args[0]) as ds:
        assert ds.res == (400.0, 400.0)
    with qtbot.waitSignal(cp.compositeReady, timeout=120000) as second:
        pass
    assert second.args == [str(tmp_path / "area.tif"), False]


@pytest.mark.parametrize("during", ["preview", "full"])
def test_cancel_while_fetching_leaves_nothing(qtbot, main_window, slow_cogs, tmp_path, during):
    """Cancelled while the preview's bytes, or the full resolution's (the preview shown), are being fetched."""
    w = main_window
    _search_area(qtbot, w, slow_cogs.endpoint)
    w.scene_panel.model.set_checked([s.scene_id for s in w.scene_panel.model.scenes], True)
    cp = w.composite_panel
    cp.resolution.setValue(100)
    out_dir = tmp_path / "out"
    cp.output.setText(str(out_dir / "area.tif"))
    ready, events = [], []
    cp.compositeReady.connect(lambda path, preview: ready.append(preview))
    cancelled_run = during == "preview"  # the _is_preview of the run to cancel

    def on_event(event):  # cancel that run while its COG bytes are being fetched
        events.append((cp._is_preview, event.stage, event.message))
        if event.stage == "fetch" and event.bytes_done < event.bytes_total and cp._is_preview == cancelled_run \
                and not cp.runner.cancel_event.is_set():
            cp.cancel()

    cp.runner.progress.connect(on_event)
    with qtbot.waitSignal(cp.runner.cancelled, timeout=60000):
        cp.start()
    qtbot.waitUntil(lambda: cp.runner.process is None, timeout=30000)
    stages = [(stage, message) for run, stage, message in events if run == cancelled_run]
    # it stopped while fetching: its windows may have started meanwhile (they overlap the fetch), but the
    # composite never got past them to its overviews and COG
    assert any(s == "fetch" for s, _m in stages), events
    assert not [m for s, m in stages if s == "composite" and m], events
    assert ready == ([] if during == "preview" else [True]) and "Cancelled" in cp.status.text()
    assert list(out_dir.iterdir()) == []  # no output, no temporary, no preview under the final name
    if during == "full":  # the preview stays in view, saying that nothing follows it
        assert w.viewer.note == "Preview at 400 m only: the full composite was cancelled"
    qtbot.waitUntil(lambda: cp.start_button.isEnabled(), timeout=10000)  # ready to run again


def test_an_area_on_a_jpeg2000_source_downloads_its_tiles_then_composites_them_clipped(
        qtbot, main_window, seeded_s3, area_l2a_bucket, tmp_path):
    w = main_window
    w.source_panel.set_source("l2a", endpoint=seeded_s3.endpoint, bucket=area_l2a_bucket)
    w.scene_panel.set_dates(START, END)
    w.source_panel.tile.setText(format_bounds(BOX))
    with qtbot.waitSignal(w.scene_panel.searchFinished, timeout=30000) as found:
        w.search()
    assert {s.tile for s in found.args[0]} == TILES and w.scene_panel.model.rowCount() == 4
    w.scene_panel.model.set_checked([s.scene_id for s in w.scene_panel.model.scenes], True)
    assert w.act_download.isEnabled()  # the JPEG 2000 files come down as for a tile
    cp = w.composite_panel
    qtbot.waitUntil(lambda: cp.start_button.isEnabled(), timeout=10000)
    assert "downloaded first in Downloads" in cp.inputs_label.text()
    assert cp.area_request.area.bounds == w.source_panel.area().bounds
    cp.resolution.setValue(300)
    cp.quick.setChecked(False)
    out = tmp_path / "out" / "area.tif"
    cp.output.setText(str(out))
    stages = []
    cp.runner.progress.connect(lambda e: stages.append(e.stage))
    # Composite alone: the files come down first in the Downloads panel, a row each, then the composite runs
    with qtbot.waitSignal(cp.compositeReady, timeout=120000) as ready, \
            qtbot.waitSignal(w.download_panel.allFinished, timeout=60000) as finished:
        cp.start()
    assert finished.args[0] == {"downloaded": 28}  # 7 scenes x (3 bands + the scene classification)
    assert len(w.download_panel.rows) == 28 and all(r.state == "downloaded" for r in w.download_panel.rows)
    assert ready.args == [str(out), False] and "fetch" not in stages  # the downloaded files, nothing streamed
    qtbot.waitUntil(w.act_composite.isEnabled, timeout=10000)
    asked = []
    cp.confirm_overwrite = lambda path: asked.append(path) or True  # replace the composite: asked before
    with qtbot.waitSignal(cp.compositeReady, timeout=120000), \
            qtbot.waitSignal(w.download_panel.allFinished, timeout=60000) as again:
        w.act_composite.trigger()  # once more: every file is already here and verified, none fetched again
        assert asked == [out] and w.download_panel.running  # the question came before the download
    assert again.args[0] == {"skipped": 28} and asked == [out]  # and not again after it
    qtbot.waitUntil(w.act_composite.isEnabled, timeout=10000)
    cp.confirm_overwrite = lambda path: False  # keep it: nothing is downloaded or composited
    w.act_composite.trigger()
    assert not w.download_panel.running and not cp.runner.running and "area.tif kept" in cp.status.text()
    cli_out = tmp_path / "cli.tif"
    assert cli_main(["composite", "--bbox", format_bounds(BOX), "--source", "l2a", "--endpoint-url",
                     seeded_s3.endpoint, "--bucket", area_l2a_bucket, "--start", str(START), "--end", str(END),
                     "--out-dir", str(tmp_path / "cli-dl"), "--resolution", "300", "--workers", "0",
                     "-o", str(cli_out)]) == 0
    with rasterio.open(out) as a, rasterio.open(cli_out) as b:
        assert (a.crs, a.transform, a.shape) == (b.crs, b.transform, b.shape) and a.res == (300.0, 300.0)
        pixels = a.read()
        np.testing.assert_array_equal(pixels, b.read())
        inside = geometry_mask([areas.geometry_in(areas.parse_bbox(format_bounds(BOX)), a.crs.to_string())],
                               out_shape=a.shape, transform=a.transform, invert=True)
    assert pixels[:, inside].all() and not pixels[:, ~inside].any()  # clipped to the area, nothing missing in it


@pytest.mark.parametrize("typed, bounds", [("13.45,48.05,13.95,48.33", (13.45, 48.05, 13.95, 48.33)),
                                           ("-11.6,24.6,-11.2,25.0", (-11.6, 24.6, -11.2, 25.0))])
def test_typing_an_area_is_never_rewritten_and_is_normalised_on_enter(qtbot, main_window, typed, bounds):
    """Key by key, as a user types: the field keeps every keystroke where it was typed (it used to rewrite the text
    to four decimals as soon as it parsed, and the next keys landed after the rewrite); Enter normalises it."""
    w = main_window
    field = w.source_panel.tile
    field.setFocus()
    qtbot.keyClicks(field, typed)
    assert field.text() == typed
    assert w.source_panel.area() is not None and w.source_panel.area().bounds == pytest.approx(bounds)
    assert w.map.area == pytest.approx(bounds)
    assert w.source_panel.tile_error.text().startswith("Area ≈")
    w.source_panel.searchRequested.disconnect()  # Enter searches too; only the field is under test here
    qtbot.keyClick(field, Qt.Key.Key_Return)
    assert field.text() == format_bounds(bounds) and w.source_panel.area().bounds == pytest.approx(bounds)


def test_a_typed_area_is_normalised_when_the_field_loses_focus(qtbot, main_window):
    w = main_window
    field = w.source_panel.tile
    field.setFocus()
    qtbot.keyClicks(field, " 13.45, 48.05 ,13.95,48.33")
    assert field.text() == " 13.45, 48.05 ,13.95,48.33"
    w.scene_panel.cloud.setFocus()
    qtbot.waitUntil(lambda: field.text() == "13.4500,48.0500,13.9500,48.3300", timeout=3000)


def test_an_areas_resolution_defaults_to_the_finest_the_source_has_under_it(qtbot, main_window, seeded_s3,
                                                                              area_bucket):
    """The bucket's scenes are 100 m (1098 px): the area's composite defaults to 100 m, read from the band files'
    headers, not to 10 m upsampled (10x the pixels each way); a resolution the user chose is kept."""
    w = main_window
    _search_area(qtbot, w, seeded_s3.endpoint)
    cp = w.composite_panel
    w.scene_panel.model.set_checked([s.scene_id for s in w.scene_panel.model.scenes], True)
    qtbot.waitUntil(lambda: cp.resolution.value() == 109800 // N, timeout=10000)
    qtbot.waitUntil(lambda: f"at {109800 // N} m" in cp.inputs_label.text(), timeout=10000)
    assert cp.quick.text() == f"Quick preview first ({4 * 109800 // N} m)"
    cp.resolution.setValue(50)  # the user's choice
    w.scene_panel.model.set_checked([w.scene_panel.model.scenes[0].scene_id], False)
    w.scene_panel.model.set_checked([w.scene_panel.model.scenes[0].scene_id], True)
    qtbot.waitUntil(lambda: "at 50 m" in cp.inputs_label.text(), timeout=10000)
    qtbot.wait(300)
    assert cp.resolution.value() == 50
