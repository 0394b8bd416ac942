"""Drive the main window through each stage and save PNGs to resources/screenshots/ (shown in the README).

    QT_QPA_PLATFORM=offscreen .venv/bin/python tests/tools/screenshots.py [--out resources/screenshots]

Stages: 01 empty window, 02 tile picked on the map, 03 scenes listed with previews, 04 downloading,
05 composite shown in the viewer with its attributes. Data: the built-in demo archive when
`s2desktop.core.demo` exists, else a small local mirror in the L1C bucket layout written with
`core.archive.write_scene` into a temporary folder. Then an area: 06 drawn over the edge between 33UUP and
33UVP, its acquisitions listed; 07 its composite, streamed from a local mirror in the COG layout (two tiles, one
made-up landscape across both, drifting clouds that the scene classification marks). Everything (settings,
downloads) stays in a temp home.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402

TILE = "33UUP"
SIZE = 732  # px per band: 150 m pixels over the 109.8 km tile (small, but the picture reads)
DATES = [  # (date, cloud %)
    ("2023-06-03", 62.0), ("2023-06-13", 4.0), ("2023-06-23", 18.0), ("2023-07-03", 9.0),
    ("2023-07-13", 41.0), ("2023-07-23", 2.5), ("2023-08-02", 85.0), ("2023-08-12", 12.0),
]


def _smooth_noise(rng, size, scale):
    """Value noise: a coarse random grid upsampled bilinearly."""
    n = max(2, size // scale)
    g = rng.random((n + 1, n + 1))
    x = np.linspace(0, n, size, endpoint=False)
    i = x.astype(int)
    f = x - i
    a = g[i][:, i] * (1 - f)[None, :] + g[i][:, i + 1] * f[None, :]
    b = g[i + 1][:, i] * (1 - f)[None, :] + g[i + 1][:, i + 1] * f[None, :]
    return a * (1 - f)[:, None] + b * f[:, None]


def landscape(size: int, seed: int = 3, nir: bool = False):
    """Surface reflectance (DN) of a made-up landscape: fields, forest, a river, a town; (3, h, w) R, G, B, or
    with ``nir`` (4, h, w) R, G, B, NIR (B08: bright over green crops and forest, dark over water; the R, G, B
    the same either way)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    field_id = (np.floor(xx * 14 + 2 * _smooth_noise(rng, size, 90)) * 31
                + np.floor(yy * 11 + 2 * _smooth_noise(rng, size, 90)) * 17) % 7
    crops = np.array([[900, 1100, 700, 3200], [1300, 1200, 900, 2100], [600, 900, 500, 3800],
                      [1700, 1500, 1200, 2400], [800, 1000, 600, 3400], [1100, 1000, 800, 2300],
                      [700, 800, 550, 3000]], float)
    rgb = crops[field_id.astype(int)].transpose(2, 0, 1)
    forest = _smooth_noise(rng, size, 160) > 0.7
    rgb[:, forest] = np.array([420, 640, 380, 2700])[:, None]
    river_x = 0.55 + 0.12 * np.sin(yy * 7.0) + 0.03 * np.sin(yy * 23)
    river = np.abs(xx - river_x) < 0.006 + 0.004 * _smooth_noise(rng, size, 50)
    rgb[:, river] = np.array([250, 420, 520, 200])[:, None]
    town = ((xx - 0.35) ** 2 + (yy - 0.4) ** 2) < 0.004
    rgb[:, town] = np.array([1500, 1450, 1400, 1700])[:, None]
    rgb *= 0.9 + 0.2 * _smooth_noise(rng, size, 12)[None]
    return rgb if nir else rgb[:3]


def make_mirror(root: Path) -> Path:
    from affine import Affine

    from s2desktop.core import archive

    base = landscape(SIZE)
    transform = Affine(109800 / SIZE, 0, 300000, 0, -109800 / SIZE, 5300040)
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    for i, (date, cloud) in enumerate(DATES):
        rng = np.random.default_rng(100 + i)
        cl = _smooth_noise(rng, SIZE, 70)
        thr = np.quantile(cl, 1 - cloud / 100) if cloud > 0 else 2.0
        cloudy = np.clip((cl - thr) * 8, 0, 1)
        img = base * (0.95 + 0.1 * rng.random())
        img = img * (1 - cloudy) + 5200 * cloudy
        edge = xx > SIZE - 1 - (i % 3) * SIZE // 8 + yy // 6 - SIZE // 6 if i % 3 else np.zeros_like(xx, bool)
        bands = {}
        for b, arr in zip(("B04", "B03", "B02"), img):
            a = np.clip(arr + 1000, 1, 65535).astype(np.uint16)  # baseline >= 04.00: DN = 10000 * refl + 1000
            a[edge] = 0
            bands[b] = a
        bands["B08"] = np.clip(img[1] * 2.2 + 1000, 1, 65535).astype(np.uint16)
        q = (img.transpose(1, 2, 0) / 2500 * 255).clip(0, 255).astype(np.uint8)[::2, ::2]
        q[edge[::2, ::2]] = 0
        archive.write_scene(root, "l1c", TILE, dt.date.fromisoformat(date), 0, bands, crs=32633,
                            transform=transform, baseline="05.09", cloud_cover=cloud,
                            data_coverage=100.0 if not edge.any() else 100.0 * (1 - edge.mean()),
                            preview_rgb=q)
    return root


AREA_TILES = ("33UUP", "33UVP")
AREA_PX = 120.0  # m: 33UVP starts 833 such pixels east of 33UUP, so one landscape array serves both tiles
AREA_SIZE = 915  # px per tile (109.8 km)
AREA_BOX = (13.45, 48.05, 13.95, 48.33)  # over the tiles' shared edge (~13.7 E)
AREA_DATES = [("2023-06-05", 35.0), ("2023-06-15", 5.0), ("2023-06-25", 20.0), ("2023-07-05", 50.0),
              ("2023-07-15", 10.0)]


def make_area_mirror(root: Path) -> Path:
    """Two neighbouring tiles in the COG layout over one landscape, with clouds marked in their SCL; bands B04,
    B03, B02 and B08."""
    from affine import Affine

    from s2desktop.core import archive, tiles

    offset = int(round((tiles.footprint(AREA_TILES[1]).utm_bounds[0] - 300000) / AREA_PX))
    ground = landscape(offset + AREA_SIZE, seed=5, nir=True)[:, :AREA_SIZE, :]
    for i, (date, cloud) in enumerate(AREA_DATES):
        rng = np.random.default_rng(200 + i)
        cl = _smooth_noise(rng, offset + AREA_SIZE, 90)[:AREA_SIZE]
        cloudy = cl > np.quantile(cl, 1 - cloud / 100)
        for t, tile in enumerate(AREA_TILES):
            if i == 2 and t == 1:
                continue  # one pass sees only the western tile: a one-tile acquisition in the list
            cols = slice(t * offset, t * offset + AREA_SIZE)
            img = np.where(cloudy[:, cols], 5200.0, ground[:, :, cols])
            bands = {b: np.clip(a + 1000, 1, 65535).astype(np.uint16)
                     for b, a in zip(("B04", "B03", "B02", "B08"), img)}  # B08: false colour (09)
            scl = np.where(cloudy[::2, cols][:, ::2], 9, 4).astype(np.uint8)
            fp = tiles.footprint(tile)
            archive.write_scene(root, "cogs", tile, dt.date.fromisoformat(date), 0, bands, crs=fp.epsg,
                                transform=Affine(AREA_PX, 0, fp.utm_bounds[0], 0, -AREA_PX, fp.utm_bounds[3]),
                                baseline="05.09", cloud_cover=float(cloudy[:, cols].mean() * 100),
                                data_coverage=100.0, scl=scl)
    return root


def list_area(win, mirror: Path, wait_until) -> None:
    """The area mirror as the source, AREA_BOX drawn, its acquisitions searched and all ticked (previews in)."""
    win.source_panel.set_source("local", folder=str(mirror))
    win.scene_panel.set_dates(dt.date(2023, 6, 1), dt.date(2023, 7, 31))
    win.map.select_area(AREA_BOX, zoom=True)  # what a Shift-drag over the box ends with
    wait_until(lambda: win.source_panel.area() is not None, what="area")
    win.search()
    wait_until(lambda: win.scene_panel.model.rowCount() > 0, what="area search")
    model = win.scene_panel.model
    model.set_checked([s.scene_id for s in model.scenes], True)
    wait_until(lambda: all(s.scene_id in model.previews or model.preview_state.get(s.scene_id) in ("none", "error")
                           for s in model.scenes), what="area previews")


def composite_area(home: Path, name: str, bands=("B04", "B03", "B02")) -> Path:
    """The area mirror (written into ``home``) composited headless by the job over AREA_BOX into home/name."""
    from s2desktop.core import areas
    from s2desktop.core.pipeline import CompositeOptions, Job, Request, SourceSpec

    mirror = make_area_mirror(home / "cog-mirror")
    out = home / name
    area = areas.parse_bbox(",".join(str(v) for v in AREA_BOX))
    Job(Request(SourceSpec(str(mirror)), area=area, resolution=AREA_PX, start=dt.date(2023, 6, 1),
                end=dt.date(2023, 7, 31), bands=tuple(bands), composite=CompositeOptions(str(out), workers=1))).run()
    return out


def area_shots(app, home: Path, shot, wait_until, width: int, height: int) -> None:
    """06: an area drawn over a tile edge, its acquisitions listed; 07: its composite in the viewer."""
    from s2desktop.gui.main_window import MainWindow

    mirror = make_area_mirror(home / "cog-mirror")
    win = MainWindow()
    win.resize(width, height)
    win.show()
    win.show_map()
    list_area(win, mirror, wait_until)
    win.map.zoom_to_box(AREA_BOX)
    shot("06_area_drawn", win)

    cp = win.composite_panel
    cp.resolution.setValue(int(AREA_PX))
    target = cp.output.text()
    cp.start()
    wait_until(lambda: win.viewer.path == target and win.viewer.image_rgba is not None
               and not cp.runner.running, timeout=300, what="area composite")
    shot("07_area_composite", win)
    win.close()


class _Driver:
    """Waits on the event loop and saves screenshots into ``out``."""

    def __init__(self, app, out: Path):
        self.app = app
        self.out = out

    def wait_until(self, pred, timeout=60.0, what="condition"):
        from PySide6.QtCore import QEventLoop

        t0 = time.monotonic()
        while not pred():
            self.app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
            if time.monotonic() - t0 > timeout:
                raise SystemExit(f"screenshots: timed out waiting for {what}")
            time.sleep(0.01)

    def settle(self, seconds=0.4):
        from PySide6.QtCore import QEventLoop

        t0 = time.monotonic()
        while time.monotonic() - t0 < seconds:
            self.app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 20)
            time.sleep(0.01)

    def shot(self, name, window):
        self.settle()
        self.grab(name, window)

    def grab(self, name, window):
        path = self.out / f"{name}.png"
        window.grab().save(str(path))
        print(f"screenshots: {path} ({window.width()}x{window.height()})")


def shot_args(description: str, argv=None, extra=None):
    """The options every screenshot tool takes (--out, --size WxH, and ``extra(parser)``'s) -> (args, width,
    height)."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--out", default=str(REPO / "resources" / "screenshots"))
    ap.add_argument("--size", default="1280x800")
    if extra is not None:
        extra(ap)
    args = ap.parse_args(argv)
    width, height = (int(v) for v in args.size.split("x"))
    return args, width, height


def _temp_home() -> Path:
    """A temp home for settings and downloads, with no AWS credentials from the environment."""
    home = Path(tempfile.mkdtemp(prefix="s2desktop-shots-"))
    os.environ["S2DESKTOP_HOME"] = str(home)
    for var in ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ.pop(var, None)
    return home


def _data_source(home: Path):
    """(source, tile, start, end): the built-in demo archive, else a local L1C mirror written here."""
    try:
        from s2desktop.core import demo  # noqa: F401

        return ("demo", None), demo.DEMO_TILE, demo.DEMO_START, demo.DEMO_END
    except ImportError:
        mirror = make_mirror(home / "mirror")
        return ("local", str(mirror)), TILE, dt.date(2023, 6, 1), dt.date(2023, 8, 31)


def _tile_picked(d: _Driver, win, source, tile: str, start, end) -> None:
    """02: tile picked on the map (as a click at a point inside it)."""
    from s2desktop.core.tiles import footprint

    fp = footprint(tile)
    win.map.choose_overlap = lambda tiles: tile if tile in tiles else tiles[0]
    win.map.click_lonlat(*fp.centre)
    d.wait_until(lambda: win.source_panel.tile_id() == tile, what="tile")
    if source[0] == "demo":
        win.source_panel.set_source("demo")
    else:
        win.source_panel.set_source("local", folder=source[1])
    win.scene_panel.set_dates(start, end)
    d.shot("02_tile_picked", win)


def _scenes_listed(d: _Driver, win) -> None:
    """03: scenes with previews, the least cloudy ones selected."""
    win.search()
    d.wait_until(lambda: win.scene_panel.model.rowCount() > 0, what="search results")
    d.wait_until(lambda: all(s.scene_id in win.scene_panel.model.previews or
                             win.scene_panel.model.preview_state.get(s.scene_id) in ("none", "error")
                             for s in (win.scene_panel.model.scenes[r] for r in win.scene_panel.visible_rows())),
                 what="previews")
    win.scene_panel.under.setValue(20)
    win.scene_panel.select_under_cloud()
    d.shot("03_scenes", win)


def _downloading(d: _Driver, win) -> None:
    """04: downloading (grabbed while some files are still running)."""
    grabbed = []

    def maybe_grab():
        rows = win.download_panel.rows
        if grabbed or not rows:
            return
        done = sum(r.finished for r in rows)
        if done >= max(1, len(rows) // 3):
            grabbed.append(True)
            running = [r for r in rows if not r.finished]
            if running:
                win.download_panel.tree.scrollToItem(running[0].item)
            d.grab("04_downloading", win)  # grabbed at once: the rest keeps downloading meanwhile

    win.download_panel.started.connect(
        lambda _n: [r.changed.connect(maybe_grab) for r in win.download_panel.rows])
    finished = []
    win.download_panel.allFinished.connect(finished.append)
    win.download()
    d.wait_until(lambda: finished, what="downloads")
    if not grabbed:
        d.shot("04_downloading", win)


def _composite_shown(d: _Driver, win) -> None:
    """05: composite (quick preview, then full resolution) shown in the viewer with attributes."""
    d.wait_until(lambda: win.composite_panel.start_button.isEnabled(), what="composite inputs")
    target = win.composite_panel.output.text()
    win.composite_panel.start()
    d.wait_until(lambda: win.viewer.path == target and win.viewer.image_rgba is not None
                 and not win.composite_panel.runner.running, timeout=300, what="composite")
    d.wait_until(lambda: win.thumbnail.qimage is not None, what="thumbnail")
    win.dock_attributes.raise_()
    d.settle(0.5)
    # put the cursor readout on a pixel, as if the mouse were over the image
    px = win.viewer.pixel_at(win.viewer.info.width * 0.4, win.viewer.info.height * 0.45)
    if px:
        win.viewer.readout.setText(win.viewer.readout_text(px))
    d.shot("05_composite", win)


def main(argv=None) -> int:
    args, width, height = shot_args(__doc__.splitlines()[0], argv, lambda ap: ap.add_argument(
        "--area-only", action="store_true", help="only the area's screenshots (06, 07)"))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    home = _temp_home()

    from s2desktop.gui import settings as st
    from s2desktop.gui.app import create_application
    from s2desktop.gui.main_window import MainWindow

    app = create_application()
    d = _Driver(app, out)
    source, tile, start, end = _data_source(home)
    st.settings().setValue(st.DOWNLOAD_DIR, str(home / "downloads"))
    st.settings().setValue(st.WORKERS, 1)
    if args.area_only:
        area_shots(app, home, d.shot, d.wait_until, width, height)
        return 0
    win = MainWindow()
    win.resize(width, height)
    win.show()
    d.settle(1.0)
    d.shot("01_empty", win)
    _tile_picked(d, win, source, tile, start, end)
    _scenes_listed(d, win)
    _downloading(d, win)
    _composite_shown(d, win)
    win.close()
    app.processEvents()
    area_shots(app, home, d.shot, d.wait_until, width, height)
    app.processEvents()
    return 0


if __name__ == "__main__":
    sys.exit(main())
