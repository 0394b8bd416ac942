"""Screenshot of the pixel inspector (resources/screenshots/08_pixel_inspector.png, shown in the README).

    QT_QPA_PLATFORM=offscreen .venv/bin/python tests/tools/inspector_screenshot.py [--out resources/screenshots]

Data: screenshots.py's area mirror in the COG layout (two tiles over one made-up landscape, drifting clouds that
the scene classification marks as class 9). The area is composited headless by the job (the local mirror read in
place), opened in the window, and a pixel is clicked where one date was cloudy: its point, row and chip show it
masked (SCL 9, cloud high probability) beside the clear dates the median took. (The demo archive is Level-1C
without a cloud mask, so its cloudy dates are used, not rejected: hence this mirror.)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.tools.screenshots import _Driver, _temp_home, composite_area  # noqa: E402


def _cloudy_pixel(out: Path) -> tuple[int, int]:
    """A pixel where exactly one or two dates were masked and the rest used (a cloud edge reads best)."""
    import numpy as np

    from s2desktop.core.explain import Reason, explain

    import rasterio

    with rasterio.open(out) as ds:
        h, w = ds.shape
    rng = np.random.default_rng(1)
    for row, col in zip(rng.integers(h // 4, 3 * h // 4, 200), rng.integers(w // 4, 3 * w // 4, 200)):
        why = explain(out, pixel=(int(row), int(col)))
        masked = sum(Reason.MASKED in d.reason for d in why.dates)
        if 1 <= masked <= 2 and why.used >= 3:
            return int(row), int(col)
    raise SystemExit("no pixel with a masked date found")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(REPO / "resources" / "screenshots"))
    args = ap.parse_args(argv)
    home = _temp_home()
    out = composite_area(home, "area.tif")
    row, col = _cloudy_pixel(out)

    from s2desktop.gui.app import create_application
    from s2desktop.gui.main_window import MainWindow

    app = create_application()
    d = _Driver(app, Path(args.out))
    win = MainWindow()
    win.resize(1280, 800)
    win.show()
    win.open_raster(str(out))
    d.wait_until(lambda: win.viewer.image_rgba is not None, what="the composite")
    win.dock_inspector.setFloating(True)
    win.dock_inspector.resize(900, 640)
    win.inspector.inspect(str(out), row, col)
    d.wait_until(lambda: win.inspector.explanation is not None, what="the inspector")
    d.shot("08_pixel_inspector", win.dock_inspector)
    win.close()
    app.processEvents()
    return 0


if __name__ == "__main__":
    sys.exit(main())
