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
