"""The pixel inspector: clicking a composite's pixel in the viewer shows each date's fate and value there (the
constructed history of tests/fixtures_history.py), worked out on a worker thread."""

from __future__ import annotations

import threading

import pytest
from PySide6.QtCore import QPointF, Qt

from tests.fixtures_history import EXPECTED, PIXEL, USED_VALUES, history_composite


def _click_pixel(qtbot, viewer, row: int, col: int) -> None:
    scene = viewer.vb.mapViewToScene(QPointF(col + 0.5, row + 0.5))
    pos = viewer.glw.mapFromScene(scene)
    qtbot.mouseClick(viewer.glw.viewport(), Qt.MouseButton.LeftButton, pos=pos)


@pytest.mark.parametrize("method", ["median", "medoid"])
def test_clicking_a_composite_pixel_shows_each_dates_reason_and_value(qtbot, main_window, tmp_path, method,
                                                                       monkeypatch):
    from s2desktop.core import explain as core_explain

    out, stack = history_composite(tmp_path, method)
    w = main_window
    with qtbot.waitSignal(w.viewer.rendered, timeout=20000):
        w.open_raster(str(out))
    rule = w.attributes.findItems("rule", Qt.MatchFlag.MatchExactly | Qt.MatchFlag.MatchRecursive, 0)
    assert w.attributes.value_of("provenance") and [i.text(1) for i in rule] == [method]  # the record's
    qtbot.waitUntil(lambda: w.viewer.readout_extra is not None, timeout=10000)  # the count layer, read
    readout = w.viewer.readout_text(w.viewer.pixel_at(PIXEL[1] + 0.5, PIXEL[0] + 0.5))
    assert f"count {len(USED_VALUES)}" in readout.splitlines()[0]
    assert w.act_count.isEnabled()
    threads = []
    original = core_explain.explain

    def spy(*args, **kwargs):
        threads.append(threading.current_thread())
        return original(*args, **kwargs)

    monkeypatch.setattr(core_explain, "explain", spy)  # the real one, noting the thread it runs on
    with qtbot.waitSignal(w.inspector.explained, timeout=20000) as got:
        _click_pixel(qtbot, w.viewer, *PIXEL)
    assert threads and threads[0] is not threading.main_thread()  # worked out on a worker
    why = got.args[0]
    assert (why.row, why.col) == PIXEL
    assert w.dock_inspector.isVisible()
    rows = w.inspector.row_texts()
    assert [r[0] for r in rows] == list(stack.dates)
    for (date, reason, mask_class, used_as, _read), (reasons, expected_class, values) in zip(rows, EXPECTED):
        assert reason.split(" (")[0] == "+".join(reasons), date
        if expected_class:
            assert mask_class == expected_class
        if values:
            assert used_as == ", ".join(map(str, values))
    chosen = [r[0] for r in rows if "(chosen)" in r[1]]
    assert chosen == ([why.chosen_date] if method == "medoid" else [])
    assert f"of {len(USED_VALUES)} of {len(rows)} date(s)" in w.inspector.summary.text()
    assert ", ".join(f"{b} {v}" for b, v in zip(why.bands, why.value)) in w.inspector.summary.text()
    chips = [w.inspector.findChild(type(w.inspector.summary), f"chip{i}") for i in range(len(rows))]
    assert all(c is not None and not c.pixmap().isNull() for c in chips)
    points = [i for i in w.inspector.plot.getPlotItem().items if hasattr(i, "points")]
    assert len(points) == 3 and all(len(p.points()) == len(rows) for p in points)


def test_clicking_a_raster_without_a_record_opens_nothing(qtbot, main_window, tmp_path):
    out, _stack = history_composite(tmp_path)
    (tmp_path / "median.json").unlink()
    w = main_window
    with qtbot.waitSignal(w.viewer.rendered, timeout=20000):
        w.open_raster(str(out))
    with qtbot.assertNotEmitted(w.inspector.explained, wait=300):
        _click_pixel(qtbot, w.viewer, *PIXEL)
    assert w.inspector.explanation is None
    assert not w.act_count.isEnabled()  # no record: no count layer known


def test_the_count_layer_opens_as_a_layer_of_its_own(qtbot, main_window, tmp_path):
    out, _stack = history_composite(tmp_path)
    w = main_window
    with qtbot.waitSignal(w.viewer.rendered, timeout=20000):
        w.open_raster(str(out))
    qtbot.waitUntil(w.act_count.isEnabled, timeout=10000)
    with qtbot.waitSignal(w.viewer.rendered, timeout=20000):
        w.act_count.trigger()
    assert w.viewer.path.endswith("median_count.tif")
    assert w.viewer.pixel_at(PIXEL[1] + 0.5, PIXEL[0] + 0.5)["values"] == [len(USED_VALUES)]


def test_the_chips_show_the_bands_the_viewer_shows(qtbot, main_window, tmp_path):
    """The composite's bands swapped in the viewer's band picker (B02 as red, B04 as blue): a click's chips
    are of those bands, not true colour."""
    out, _stack = history_composite(tmp_path, "median")
    w = main_window
    with qtbot.waitSignal(w.viewer.rendered, timeout=20000):
        w.open_raster(str(out))
    with qtbot.waitSignal(w.viewer.rendered, timeout=20000):
        w.viewer.band_picker.choose((3, 2, 1))
    qtbot.waitUntil(lambda: w.viewer.bands == (3, 2, 1), timeout=10000)
    with qtbot.waitSignal(w.inspector.explained, timeout=20000) as got:
        _click_pixel(qtbot, w.viewer, *PIXEL)
    why = got.args[0]
    assert why.bands == ("B04", "B03", "B02") and why.chip_bands == ("B02", "B03", "B04")
    chip = w.inspector.findChild(type(w.inspector.summary), "chip0")
    assert chip.toolTip().endswith("B02, B03, B04 as R, G, B")
