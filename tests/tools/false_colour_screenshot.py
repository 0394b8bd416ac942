"""Screenshot of a false-colour composite in the window (resources/screenshots/09_false_colour.png, in the README).

    QT_QPA_PLATFORM=offscreen .venv/bin/python tests/tools/false_colour_screenshot.py [--out resources/screenshots]

Data: screenshots.py's area mirror in the COG layout (two tiles over one made-up landscape, clouds marked by the
scene classification), whose scenes also hold B08. The area is composited headless by the job with bands B08,
B04, B03 (``--bands false-colour``), opened in the window, and shown through the viewer's band picker as its
"false colour" preset: near infrared as red, so crops and forest are red, water dark, the town grey-green.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.tools.screenshots import (AREA_PX, _Driver, _temp_home, composite_area, shot_args,  # noqa: E402
                                     list_area)


def _as_asked(win, d: _Driver, mirror: Path, out: Path) -> None:
    """The panels as a user who asked for this composite left them: the area's acquisitions listed and ticked,
    false colour under Bands, the output."""
    list_area(win, mirror, d.wait_until)
    cp = win.composite_panel
    cp.band_preset.setCurrentIndex(cp.band_preset.findData("false-colour"))
    cp.resolution.setValue(int(AREA_PX))
    cp.output.setText(str(out))


def main(argv=None) -> int:
    args, width, height = shot_args(__doc__.splitlines()[0], argv)
    home = _temp_home()
    out = composite_area(home, "false_colour.tif", bands=("B08", "B04", "B03"))

    from s2desktop.gui.app import create_application
    from s2desktop.gui.main_window import MainWindow

    app = create_application()
    d = _Driver(app, Path(args.out))
    win = MainWindow()
    win.resize(width, height)
    win.show()
    _as_asked(win, d, home / "cog-mirror", out)
    win.open_raster(str(out))
    d.wait_until(lambda: win.viewer.image_rgba is not None, what="the composite")
    if not win.viewer.band_picker.choose_preset("false-colour"):
        raise SystemExit("false colour is not offered for the composite's bands")
    d.wait_until(lambda: win.viewer.bands == (1, 2, 3) and win.viewer.image_rgba is not None
                 and win.viewer.band_picker.preset.currentData() == "false-colour", what="false colour")
    win.dock_attributes.raise_()
    d.shot("09_false_colour", win)
    win.close()
    app.processEvents()
    return 0


if __name__ == "__main__":
    sys.exit(main())
