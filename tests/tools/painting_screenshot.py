"""Screenshot of a composite painting its windows as they finish (resources/screenshots/10_windows_painting.png,
in the README).

    QT_QPA_PLATFORM=offscreen .venv/bin/python tests/tools/painting_screenshot.py [--out resources/screenshots]

Data: screenshots.py's area mirror in the COG layout (two tiles over one made-up landscape, clouds marked by the
scene classification). The window composites the area at 30 m (the mirror's 120 m pixels upsampled, for nine
windows; the quick preview off, so the full run paints), a real run in its worker process; the tool holds the
run's events back once half of its windows have been painted -- what the window shows at that moment, before the
output is written -- and takes the screenshot there.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.tools.screenshots import _Driver, _temp_home, list_area, make_area_mirror, shot_args  # noqa: E402

RESOLUTION = 30  # m: the area is 1257 x 1059 px: nine windows of the VRTs' 512 px blocks
WINDOW = 512


def _hold_at_half(cp) -> dict:
    """Deliver the run's events to the dock until half its windows are in; hold the rest (and its end)."""
    state = {"held": False}
    runner = cp.runner
    runner.progress.disconnect(cp._progress)
    runner.done.disconnect(cp._done)
    runner.finished.disconnect(cp._run_finished)

    def gate(event) -> None:
        if state["held"]:
            return
        cp._progress(event)
        if event.pixels is not None and 2 * event.items_done >= event.items_total:
            state["held"] = True

    runner.progress.connect(gate)
    return state


def main(argv=None) -> int:
    args, width, height = shot_args(__doc__.splitlines()[0], argv)
    home = _temp_home()
    mirror = make_area_mirror(home / "cog-mirror")

    from s2desktop.gui.app import create_application
    from s2desktop.gui.main_window import MainWindow

    app = create_application()
    d = _Driver(app, Path(args.out))
    win = MainWindow()
    win.resize(width, height)
    win.show()
    list_area(win, mirror, d.wait_until)
    cp = win.composite_panel
    cp.resolution.setValue(RESOLUTION)
    cp.quick.setChecked(False)
    cp.window_size = WINDOW
    state = _hold_at_half(cp)
    cp.start()
    d.wait_until(lambda: state["held"], timeout=300, what="half the windows")
    win.dock_composite.raise_()
    d.shot("10_windows_painting", win)
    canvas = win.viewer.canvas
    print(f"painting_screenshot: {canvas.windows} windows painted, {cp.bar.value() / 10:.0f} %")
    cp.runner.shutdown()
    win.close()
    app.processEvents()
    return 0


if __name__ == "__main__":
    sys.exit(main())
