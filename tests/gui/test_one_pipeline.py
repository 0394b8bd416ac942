"""The window and the command line run the same job: for the same request on the same source they give the same
pixels, clouds masked; and the window's total bar and ETA follow bytes, as the job reports them."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import time
from pathlib import Path

import numpy as np
import rasterio
from PySide6.QtCore import QTimer

from s2desktop.cli import main as cli_main
from tests.fixtures_gui import search_and_tick, use_s3
from tests.helpers import seed_l1c_scenes


def _search(qtbot, w, start, end):
    return search_and_tick(qtbot, w, "33UUP", start, end)


def test_window_and_command_line_composite_the_same_masked_pixels(qtbot, main_window, seeded_s3, tmp_path):
    w = main_window
    use_s3(w, seeded_s3, "l2a")
    scenes = _search(qtbot, w, dt.date(2023, 7, 1), dt.date(2023, 8, 31))
    assert len(scenes) == 4 and all("SCL" in s.bands for s in scenes)
    with qtbot.waitSignal(w.download_panel.inputsReady, timeout=60000) as ready:
        w.download()
    inputs = ready.args[0]
    masks = [o.mask.path for o in inputs.observations if o.mask]
    assert len(inputs.observations) == len(masks) == 4  # the masks came down with the bands
    assert all(Path(p).parent.name == "SCL" and Path(p).is_file() for p in masks)
    qtbot.waitUntil(lambda: w.composite_panel.start_button.isEnabled(), timeout=10000)
    window_out = tmp_path / "window.tif"
    w.composite_panel.output.setText(str(window_out))
    w.composite_panel.quick.setChecked(False)
    with qtbot.waitSignal(w.composite_panel.compositeReady, timeout=60000):
        w.composite_panel.start()

    cli_out = tmp_path / "cli.tif"
    code = cli_main(["composite", "--source", "l2a", "--endpoint-url", seeded_s3.endpoint, "--tile", "33UUP",
                     "--start", "2023-07-01", "--end", "2023-08-31", "--out-dir", str(tmp_path / "cli-dl"),
                     "--workers", "0", "-o", str(cli_out)])
    assert code == 0
    unmasked = tmp_path / "unmasked.tif"
    assert cli_main(["composite", "--source", "l2a", "--endpoint-url", seeded_s3.endpoint, "--tile", "33UUP",
                     "--start", "2023-07-01", "--end", "2023-08-31", "--out-dir", str(tmp_path / "cli-dl"),
                     "--workers", "0", "--mask", "none", "-o", str(unmasked)]) == 0
    with rasterio.open(window_out) as a, rasterio.open(cli_out) as b, rasterio.open(unmasked) as u:
        assert a.tags()["MASK"] == b.tags()["MASK"] and "on 4 date(s)" in a.tags()["MASK"]
        assert (a.crs, a.transform, a.shape) == (b.crs, b.transform, b.shape)
        pixels = a.read()
        np.testing.assert_array_equal(pixels, b.read())
        assert not np.array_equal(pixels, u.read())  # the masks changed pixels: they really were applied


def _bytes_on_disk(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*.jp2*") if p.is_file()) if folder.exists() else 0


def test_total_bar_and_eta_follow_bytes_on_a_throttled_server(qtbot, main_window, slow_s3, scratch_bucket,
                                                               tmp_path):
    w = main_window
    objects = seed_l1c_scenes(slow_s3.client(), scratch_bucket, days=(1, 2, 3), size=1536 * 1024, seed=7)
    planned = sum(len(v) for k, v in objects.items() if k.endswith(".jp2"))
    w.source_panel.set_source("l1c", endpoint=slow_s3.endpoint, bucket=scratch_bucket)
    _search(qtbot, w, dt.date(2023, 7, 1), dt.date(2023, 7, 31))
    panel, out = w.download_panel, tmp_path / "downloads"
    samples, half = [], []

    def sample():  # what a user sees against what is on disk, every 100 ms
        if not panel.running or panel.last is None:
            return
        on_disk = _bytes_on_disk(out) / planned
        samples.append((panel.total_bar.value() / panel.total_bar.maximum(), on_disk))
        if not half and on_disk >= 0.5:
            half.append((time.monotonic(), panel.seconds_left, panel.total_label.text()))

    timer = QTimer()
    timer.timeout.connect(sample)
    timer.start(100)
    with qtbot.waitSignal(panel.allFinished, timeout=120000) as done:
        w.download()
    ended = time.monotonic()
    timer.stop()
    assert done.args[0] == {"downloaded": 9}
    assert panel.last.bytes_total == planned  # the total was planned from the listing
    assert len(samples) >= 10
    for bar, on_disk in samples:
        assert abs(bar - on_disk) <= 0.10, (bar, on_disk)
    t_half, eta, label = half[0]
    actual = ended - t_half
    assert eta is not None and actual / 2 <= eta <= actual * 2, (eta, actual, label)
    assert "left" in label and "MiB" in label
    # the files are the objects, byte for byte
    red = sorted((out / "red").iterdir())
    body = slow_s3.client().get_object(Bucket=scratch_bucket, Key="tiles/33/U/UP/2023/7/1/0/B04.jp2")["Body"]
    assert hashlib.md5(red[0].read_bytes()).digest() == hashlib.md5(body.read()).digest()
    assert os.path.basename(red[0]) == "33UUP_2023-07-01_0_B04.jp2"
