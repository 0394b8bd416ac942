"""`s2desktop demo` in the window: the demo source, tile and dates filled in, the archive generated on a worker
(the GUI thread keeps running meanwhile, with a visible status), then the search lists the demo scenes."""

from __future__ import annotations

from s2desktop.core import demo
from s2desktop.gui.workers import Worker


def test_demo_opens_on_the_demo_source_and_lists_scenes(qtbot, main_window):
    w = main_window
    assert not (demo.demo_archive_dir() / demo.MARKER).exists()  # fresh home: the archive must be generated
    statuses = []
    orig = w.scene_panel.status.setText
    w.scene_panel.status.setText = lambda t: (statuses.append(t), orig(t))[1]

    with qtbot.waitSignal(w.scene_panel.searchFinished, timeout=60000) as found:
        worker = w.start_demo(size=96)  # returns at once: the archive is written on a pool thread
        assert isinstance(worker, Worker) and w._demo_bar is not None
        # filled in at once, before the archive exists
        assert w.source_panel.source_key() == "demo"
        assert w.source_panel.tile.text() == demo.DEMO_TILE and w.source_panel.tile_id() == demo.DEMO_TILE
        assert w.scene_panel.dates() == (demo.DEMO_START, demo.DEMO_END)
        assert w.map.selected_tile == demo.DEMO_TILE
        # while preparing: a search would build the archive twice, so it waits
        assert not w.scene_panel.search_button.isEnabled() and not w.act_search.isEnabled()
        assert w.search() is None
        assert "demo archive" in w.statusBar().currentMessage()

    scenes = found.args[0]
    assert [s.date for s in scenes] == list(demo.DEMO_DATES)
    assert {s.tile for s in scenes} == {demo.DEMO_TILE}
    assert w.scene_panel.model.rowCount() == len(demo.DEMO_DATES)
    assert w.scene_panel.source is not None and w.scene_panel.source.name == "demo"
    # the generation reported per date on the panel (queued from the worker while the event loop ran)
    assert any("1 of 10 dates" in t for t in statuses) and any("10 of 10 dates" in t for t in statuses), statuses
    assert (demo.demo_archive_dir() / demo.MARKER).is_file()
    assert w._demo_bar is None  # the status-bar progress is gone again
    qtbot.waitUntil(lambda: w.scene_panel.search_button.isEnabled(), timeout=5000)
    assert w.act_search.isEnabled()


def test_demo_reuses_an_existing_archive(qtbot, main_window):
    w = main_window
    demo.ensure_demo_archive(size=96)
    with qtbot.waitSignal(w.scene_panel.searchFinished, timeout=30000) as found:
        w.start_demo()
    assert len(found.args[0]) == len(demo.DEMO_DATES)


def _pick_source_by_hand(qtbot, combo, key: str) -> None:
    """As a user does with the keyboard: the combo's current item moved (activated emitted) until it is `key`."""
    from PySide6.QtCore import Qt

    combo.setFocus()
    combo.setCurrentIndex(0)
    while combo.currentData() != key:
        qtbot.keyClick(combo, Qt.Key.Key_Down)


def test_picking_the_demo_source_fills_its_tile_and_dates(qtbot, main_window):
    """The demo holds one tile in 2022's first weeks: picked by hand over another tile and the last three months
    (the window's default), it fills in its tile and dates, says so, and the search finds its scenes (it used to
    keep them and answer 'No scenes in this range')."""
    import datetime as dt

    w = main_window
    demo.ensure_demo_archive(size=96)
    w.source_panel.tile.setText("33UUP")
    w.scene_panel.set_dates(dt.date.today() - dt.timedelta(days=91), dt.date.today())
    picked = []
    w.source_panel.source.activated.connect(picked.append)
    _pick_source_by_hand(qtbot, w.source_panel.source, "demo")
    assert picked, "the keyboard did not pick the source as a user does"
    assert w.source_panel.tile_id() == demo.DEMO_TILE and w.map.selected_tile == demo.DEMO_TILE
    assert w.scene_panel.dates() == (demo.DEMO_START, demo.DEMO_END)
    assert "29RKH" in w.scene_panel.status.text() and "2022" in w.scene_panel.status.text()
    assert not w.source_panel.demo_session  # picked by hand: the user's choice, remembered
    with qtbot.waitSignal(w.scene_panel.searchFinished, timeout=30000) as found:
        w.search()
    assert [s.date for s in found.args[0]] == list(demo.DEMO_DATES)


def test_picking_the_demo_source_keeps_a_tile_and_dates_it_covers(qtbot, main_window):
    import datetime as dt

    w = main_window
    w.source_panel.tile.setText("-11.6,24.6,-11.2,25")  # an area over the demo's tile
    w.scene_panel.set_dates(dt.date(2022, 1, 10), dt.date(2022, 1, 31))
    _pick_source_by_hand(qtbot, w.source_panel.source, "demo")
    assert w.source_panel.tile.text() == "-11.6,24.6,-11.2,25" and w.source_panel.area() is not None
    assert w.scene_panel.dates() == (dt.date(2022, 1, 10), dt.date(2022, 1, 31))
