"""The scene list always belongs to the tile and source shown above it: changing either clears the listed
scenes (they could otherwise be ticked and downloaded while the window names another tile), and a search's
results that arrive after the tile or source changed are dropped."""

from __future__ import annotations

import datetime as dt

from tests.fixtures_gui import search_and_tick, use_s3


def _search_33uup(qtbot, w, seeded):
    use_s3(w, seeded, "l1c")
    scenes = search_and_tick(qtbot, w, "33UUP", dt.date(2023, 7, 31), dt.date(2023, 8, 1))
    assert scenes and {s.tile for s in scenes} == {"33UUP"}
    assert w.act_download.isEnabled()
    return scenes


def _assert_cleared(w):
    sc = w.scene_panel
    assert sc.model.rowCount() == 0 and not sc.model.checked and sc.source is None
    assert not w.act_download.isEnabled() and not w.download_panel.download_button.isEnabled()
    assert "Search" in sc.status.text()
    assert sc.count.text().startswith("<b>0</b> of 0 ")


def test_changing_the_tile_clears_the_scenes_of_the_old_tile(qtbot, main_window, seeded_s3):
    w = main_window
    _search_33uup(qtbot, w, seeded_s3)
    w.source_panel.tile.setText("t32tqm")  # another valid tile, typed in lower case
    assert w.source_panel.tile_id() == "32TQM"
    _assert_cleared(w)
    assert w.download() is None  # nothing of 33UUP can be downloaded under 32TQM


def test_changing_the_source_clears_the_scenes(qtbot, main_window, seeded_s3):
    w = main_window
    _search_33uup(qtbot, w, seeded_s3)
    w.source_panel.folder.editingFinished.emit()  # focus leaving a field without a change: the list stays
    assert w.scene_panel.model.rowCount() > 0
    w.source_panel.set_source("cogs")
    _assert_cleared(w)


def test_results_of_a_search_for_the_old_tile_are_dropped(qtbot, qapp, main_window, seeded_s3):
    w = main_window
    use_s3(w, seeded_s3, "l1c")
    w.source_panel.tile.setText("33UUP")
    w.scene_panel.set_dates(dt.date(2023, 7, 31), dt.date(2023, 8, 1))
    worker = w.search()
    w.source_panel.tile.setText("32TQM")  # before the search's result is delivered (it is queued to this thread)
    qtbot.waitUntil(worker.done.is_set, timeout=30000)
    qapp.processEvents()  # its result and finished signals, posted before `done` was set
    _assert_cleared(w)
    assert w.scene_panel.search_button.isEnabled()



def test_no_preview_fetch_starts_after_the_window_shut_down(qtbot, main_window, seeded_s3):
    """Closing right after a search: the pending lazy-preview timer must not start S3 fetches afterwards (they
    would keep the quitting application waiting on the network)."""
    from s2desktop.gui.workers import registry

    w = main_window
    _search_33uup(qtbot, w, seeded_s3)
    sc = w.scene_panel
    sc._schedule_previews()
    assert sc._preview_timer.isActive()
    w.shutdown()
    qtbot.waitUntil(lambda: not sc._preview_timer.isActive(), timeout=5000)
    assert not [x for x in registry.active if x.name == "preview"]


def test_status_bar_counts_scenes_in_words(qtbot, main_window, seeded_s3):
    w = main_window
    use_s3(w, seeded_s3, "l1c")
    w.source_panel.tile.setText("33UUP")
    w.scene_panel.set_dates(dt.date(2023, 10, 12), dt.date(2023, 10, 12))
    with qtbot.waitSignal(w.scene_panel.searchFinished, timeout=30000):
        w.search()
    assert w.statusBar().currentMessage() == "1 scene found"
    w.scene_panel.set_dates(dt.date(2023, 10, 13), dt.date(2023, 10, 14))
    with qtbot.waitSignal(w.scene_panel.searchFinished, timeout=30000):
        w.search()
    assert w.statusBar().currentMessage().startswith("No scenes found")


def test_changing_the_aws_profile_clears_the_scenes(qtbot, main_window, seeded_s3):
    """Scenes listed (and their downloads billed) under one AWS account are not carried over to another."""
    w = main_window
    _search_33uup(qtbot, w, seeded_s3)
    w.source_panel.profile.setEditText("other-account")
    _assert_cleared(w)
    assert w.source_panel.source_spec()["profile"] == "other-account"
