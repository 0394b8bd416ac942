"""A render that finishes after the user changed the stretch must not overwrite the newer stretch."""

import pytest


def test_result_of_an_outdated_render_is_dropped(qtbot, main_window, raster_stack):
    viewer = main_window.viewer
    path = raster_stack(dates=1, size=200).red[0]
    with qtbot.waitSignal(viewer.rendered, timeout=20000):
        main_window.open_raster(str(path))
    percentile_levels = list(viewer.levels)

    # A render for the current (percentile) stretch is in flight when the user switches to min-max: the
    # switch only starts the debounce timer, so the in-flight result must be recognised as outdated.
    viewer.render()
    viewer.stretch.setCurrentIndex(viewer.stretch.findData("minmax"))
    assert viewer._render_timer.isActive()
    with qtbot.waitSignal(viewer.rendered, timeout=10000):
        pass
    data = viewer.data[0][viewer.valid]
    assert viewer.levels[0] == pytest.approx((float(data.min()), float(data.max())))
    assert viewer.levels[0] != pytest.approx(percentile_levels[0])
