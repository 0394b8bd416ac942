"""A running composite paints its finished windows in the viewer before its output is written, and the output
replaces them over the same extent without moving the view (real composite process, real widgets)."""

from __future__ import annotations

import time

import numpy as np
from PySide6.QtCore import QRectF

from s2desktop.core.compositing import composite
from tests.fixtures_gui import inputs_of


def test_the_windows_are_on_screen_before_the_output_and_the_output_replaces_them(qtbot, main_window,
                                                                                   raster_stack, tmp_path):
    w, cp, v = main_window, main_window.composite_panel, main_window.viewer
    out = tmp_path / "c.tif"
    cp.set_inputs(inputs_of(raster_stack(dates=16, size=600, block=64)), default_output=out)
    cp.quick.setChecked(False)
    cp.window_size = 64  # 100 windows: the run lasts long enough to see its first ones before its end
    painted, at_ready = [], {}
    def on_painted(n):
        painted.append((n, int((v.image.image[..., 3] > 0).sum()), v.note, time.time()))
        if len(painted) == 1:  # the user zooms in while the windows arrive
            v.vb.setRange(QRectF(150, 250, 100, 100), padding=0)

    v.windowsPainted.connect(on_painted)
    cp.compositeReady.connect(lambda path, _p: at_ready.update(
        windows=v.canvas.windows if v.canvas is not None else 0, painted=list(painted),
        shown=np.array(v.image.image)))
    with qtbot.waitSignal(v.rendered, timeout=60000):
        cp.start()
    assert at_ready["windows"] == 100  # every window arrived before the output was written
    first_n, first_px, note, first_t = at_ready["painted"][0]
    assert first_n >= 1 and first_px > 0  # on screen, not only in memory
    written = out.stat().st_mtime  # the COG's last byte, before its rename
    assert first_t < written, f"first window painted {first_t - written:.2f} s after the output was written"
    assert note == "Full resolution: windows appear as they finish"
    shown = at_ready["shown"]
    assert shown.shape == (600, 600, 4) and (shown[..., 3] > 0).mean() > 0.5
    # the output replaced the windows: the viewer holds the file now, the view did not move
    assert v.canvas is None and v.path == str(out) and v.note == ""
    assert v.image_rgba is not None and v.image_rgba is not shown
    (x0, x1), (y0, y1) = v.vb.viewRange()  # where the user zoomed, not refitted (the layout may widen a side)
    assert abs((x0 + x1) / 2 - 200) < 1 and abs((y0 + y1) / 2 - 300) < 1 and min(x1 - x0, y1 - y0) < 150
    # the same pixels in the same stretch: the painted windows are what the output shows
    assert v.stretch.currentData() == "truecolor"
    np.testing.assert_array_equal(shown, v.image_rgba)


def test_a_window_of_another_extent_starts_a_new_image_and_a_cancel_drops_it(qtbot, main_window, raster_stack,
                                                                              tmp_path):
    v = main_window.viewer
    events = {}
    for size in (300, 520):
        st = raster_stack(dates=2, size=size, block=128)
        got = []
        composite(inputs_of(st), tmp_path / f"c{size}.tif", workers=0, window_size=128, progress=got.append)
        events[size] = [e.pixels for e in got if e.pixels is not None]
    for px in events[300][:2]:
        v.paint_window(px)
    assert v.canvas.windows == 2 and v.canvas.extent == (300, 300) and v.path is None and v.data is None
    (x0, x1), (y0, y1) = v.vb.viewRange()
    assert x0 <= 0 and x1 >= 300 and y0 <= 0 and y1 >= 300  # the view fits the output's extent
    v.paint_window(events[520][0])
    assert v.canvas.windows == 1 and v.canvas.extent == (520, 520)
    assert np.array_equal(v.image.image, v.canvas.rgba) and v.image.image.shape == (520, 520, 4)
    main_window.composite_panel.runner.cancelled.emit()
    assert v.canvas is None and v.placeholder.isVisible() and v.image.image is None


def test_the_quick_preview_paints_and_the_full_run_behind_it_does_not(qtbot, main_window, raster_stack, tmp_path):
    cp, v = main_window.composite_panel, main_window.viewer
    out = tmp_path / "c.tif"
    cp.set_inputs(inputs_of(raster_stack(dates=3, size=600, block=64)), default_output=out)
    assert cp.quick.isChecked()
    cp.window_size = 64
    log = []  # what happened, in order: ('painted', extent) and ('ready', preview)
    v.windowsPainted.connect(lambda _n: log.append(("painted", v.canvas.extent)))
    cp.compositeReady.connect(lambda _path, preview: log.append(("ready", preview)))
    cp.start()
    qtbot.waitUntil(lambda: ("ready", False) in log and v.path == str(out) and v.image_rgba is not None,
                    timeout=60000)
    assert log[0][0] == "painted" and log.index(("ready", True)) < log.index(("ready", False)) == len(log) - 1
    # the preview's windows only (the last of them may be shown as its output is read): nothing of the full run
    # was painted over the preview
    assert {e for kind, e in log if kind == "painted"} == {(150, 150)}
    assert v.canvas is None and (v.info.width, v.info.height) == (600, 600)
