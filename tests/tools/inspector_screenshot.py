"""Screenshot of the pixel inspector (resources/screenshots/08_pixel_inspector.png, shown in the README).

    QT_QPA_PLATFORM=offscreen .venv/bin/python tests/tools/inspector_screenshot.py [--out resources/screenshots]

Data: the built-in demo archive (generated into a temporary home), composited headless by the job as
``s2desktop demo`` does. Its Level-1C scenes carry their own cloud masks (MSK_CLOUDS_B00.gml before baseline
04.00, MSK_CLASSI_B00.jp2 from then on), so the composite leaves each date's clouds out. The window opens the
composite and the viewer is clicked at a pixel a few pixels inside a cloud of exactly one date: its point, row and
chip show that date MASKED by its L1C cloud mask (opaque clouds) beside the nine clear dates the median took.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.tools.screenshots import _Driver, _temp_home  # noqa: E402

INSIDE = 3  # px: the pixel lies at least this far inside the cloud (its mask, not an edge) ...
EDGE = 14  # ... and within this of its edge, so that the 64 px chips show the cloud and the ground around it


def composite_demo(home: Path) -> Path:
    """The demo's composite, made by the job as the headless demo makes it (the archive generated first)."""
    from s2desktop.core.pipeline import Job
    from s2desktop.headless_demo import demo_request

    result = Job(demo_request(home / "demo-out", workers=1)).run()
    return Path(result.composite.path)


def _all_within(mask, r: int):
    """Pixels whose (2r + 1)^2 neighbourhood is all ``mask``."""
    import numpy as np
    from numpy.lib.stride_tricks import sliding_window_view

    out = np.zeros_like(mask)
    out[r:-r, r:-r] = sliding_window_view(mask, (2 * r + 1, 2 * r + 1)).all(axis=(2, 3))
    return out


def _cloudy_pixel(out: Path) -> tuple[int, int]:
    """A pixel where exactly one date was masked (its count layer one short of the dates), a few pixels inside
    that date's cloud and near clear ground (a pixel no date masks), confirmed by ``explain``: of candidates
    spread over the image, nearest its centre first, the first whose used dates all agree with the composite (else
    the one that agrees best) -- the L1C masks know no shadows, and the demo has many: a shadowed date is used,
    and outvoted. Deterministic: the same archive, the same pixel."""
    import numpy as np
    import rasterio

    from s2desktop.core.explain import Reason, explain

    with rasterio.open(out.with_name(out.stem + "_count.tif")) as ds:
        count = ds.read(1)
    one_masked = count == count.max() - 1  # every date has data there but one: masked
    candidates = _all_within(one_masked, INSIDE) & ~_all_within(count != count.max(), EDGE)
    rows, cols = np.nonzero(candidates)
    h, w = count.shape
    best, best_score = None, -1
    near = np.argsort((rows - h / 2) ** 2 + (cols - w / 2) ** 2)  # the candidates, nearest the centre first
    for k in near[np.linspace(0, len(near) - 1, min(len(near), 120)).astype(int)]:  # ... spread over the image
        row, col = int(rows[k]), int(cols[k])
        why = explain(out, pixel=(row, col))
        masked = [d for d in why.dates if Reason.MASKED in d.reason]
        if len(masked) != 1 or masked[0].mask not in ("MSKCLASSI", "MSKCLOUDS"):
            continue
        used = np.array([d.values for d in why.dates if Reason.USED in d.reason])
        score = int((np.abs(used - np.array(why.value)).max(axis=1) < 100).sum())
        if score > best_score:
            best, best_score = (row, col), score
        if score == len(used):  # every used date agrees: no shadow among them
            break
    if best is None:
        raise SystemExit("no pixel with one date masked by its L1C cloud mask found")
    return best


def _click(win, row: int, col: int) -> None:
    """A left click on the viewer at the composite's pixel (row, col), as a user clicks it."""
    from PySide6.QtCore import QPointF, Qt
    from PySide6.QtTest import QTest

    viewer = win.viewer
    pos = viewer.glw.mapFromScene(viewer.vb.mapViewToScene(QPointF(col + 0.5, row + 0.5)))
    QTest.mouseClick(viewer.glw.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, pos)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(REPO / "resources" / "screenshots"))
    args = ap.parse_args(argv)
    home = _temp_home()
    try:
        _shoot(home, Path(args.out))
    finally:  # the temporary home holds a demo archive (~30 MB) and its composite
        shutil.rmtree(home, ignore_errors=True)
    return 0


def _shoot(home: Path, out_dir: Path) -> None:
    out = composite_demo(home)
    row, col = _cloudy_pixel(out)
    print(f"inspector_screenshot: pixel row {row}, col {col} of {out.name}")

    from s2desktop.gui.app import create_application
    from s2desktop.gui.main_window import MainWindow

    app = create_application()
    d = _Driver(app, out_dir)
    win = MainWindow()
    win.resize(1280, 800)
    win.show()
    win.open_raster(str(out))
    d.wait_until(lambda: win.viewer.image_rgba is not None, what="the composite")
    win.dock_inspector.setFloating(True)
    win.dock_inspector.resize(900, 640)
    # zoomed in around it first, as one does to click one pixel (a whole tile has more pixels than the screen)
    win.viewer.vb.setRange(xRange=(col - 60, col + 60), yRange=(row - 60, row + 60), padding=0)
    d.settle()
    _click(win, row, col)
    d.wait_until(lambda: win.inspector.explanation is not None, what="the inspector")
    why = win.inspector.explanation
    if (why.row, why.col) != (row, col):
        raise SystemExit(f"the click landed on pixel {why.row}, {why.col}, not {row}, {col}")
    d.shot("08_pixel_inspector", win.dock_inspector)
    win.close()
    app.processEvents()


if __name__ == "__main__":
    sys.exit(main())
