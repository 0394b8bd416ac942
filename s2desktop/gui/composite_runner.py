"""Composite in a dedicated worker process, and the composite dock.

The dock composites either the downloaded inputs of a tile (`set_inputs`) or an area (`set_area`: the job's
request with the area and the chosen scenes), streamed from the COG archive or made from the area's downloaded
tiles by the same job step (`Job.run_area`); an area's quick preview is a coarse (80 m) run of the same job
before the full resolution.

`CompositeRunner` starts `gui.composite_process.run(queue, cancel_event, inputs, options)` in a `spawn` process
(not daemonic: it creates its own process pool), drains its queue with `get_nowait()` on a QTimer and re-emits
the core's event dataclasses (Progress, then Finished / Failed / Cancelled) as Qt signals. A process that exits
without a final event is reported as crashed; the window never blocks on it. A composite's Progress events carry
each finished window's pixels at the preview's size (`core.progress.WindowPixels`): the dock passes them on
(`windowPixels`) for the viewer to paint before the output is written -- a quick preview's, or a full run's when
no preview is shown.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import queue as queue_mod
import time
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from s2desktop.core import areas
from s2desktop.core.fsutil import remove_with_side_files
from s2desktop.core.methods import Geomedian, Median, Medoid, Quantile, Rule
from s2desktop.core.pipeline import CompositeOptions, Request
from s2desktop.core.progress import Cancelled, Failed, Finished, Progress, Rate
from s2desktop.core.stack import Stack, with_mask_choice
from s2desktop.core.streaming import acquisitions
from s2desktop.core.units import human_bytes, human_duration
from s2desktop.gui import settings as st
from s2desktop.gui import workers
from s2desktop.gui.composite_choices import BandPresetCombo, MaskFields
from s2desktop.gui.wording import in_window_words

log = logging.getLogger(__name__)

POLL_MS = 100
NO_INPUTS = "Download scenes first: their bands (as chosen under Bands) are composited, clouds masked as chosen " \
            "under Clouds."
NO_ACQUISITIONS = "Tick the acquisitions to composite in Dates and scenes."
PREVIEW_RESOLUTION = 80.0  # m: an area's quick preview (reads the COG overviews only)
STAGE_WORDS = {"search": "Searching", "plan": "Planning", "download": "Downloading", "fetch": "Fetching",
               "composite": "Compositing"}
ITEM_WORDS = {"search": "tiles", "download": "files", "fetch": "pieces", "composite": "windows"}
CANCEL_GRACE_S = 15.0
SHUTDOWN_GRACE_S = 6.0
RULES = (("Median", Median(), "Per pixel and band the median of the clear observations"),
         ("First quartile", Quantile(25), "Per pixel and band the 25th percentile: darker, less haze"),
         ("Medoid", Medoid(), "Per pixel the observation nearest to all others: every band from one date"),
         ("Geometric median", Geomedian(), "Per pixel the geometric median across the bands (slower)"))
EXIT_GRACE_S = 2.0  # after its final message the process should exit at once; then it is terminated  # closing the window: wait this long for a cancelled run before terminating it


class CompositeRunner(QObject):
    """One composite run in its own process."""

    progress = Signal(object)  # core.progress.Progress (stage 'composite': windows done / total)
    done = Signal(str)  # output path
    failed = Signal(str)  # one-line message
    cancelled = Signal()
    finished = Signal()  # after done/failed/cancelled

    def __init__(self, parent=None):
        super().__init__(parent)
        self._ctx = multiprocessing.get_context("spawn")
        self.process = None
        self.queue = None
        self.cancel_event = None
        self.output: str | None = None
        self._terminal = False
        self._terminal_time = 0.0
        self._terminated = False
        self._cancel_time = 0.0
        self._timer = QTimer(self)
        self._timer.setInterval(POLL_MS)
        self._timer.timeout.connect(self._poll)
        self.started_at = 0.0
        self.rate = Rate()  # windows per second since the start: the time left

    @property
    def running(self) -> bool:
        return self.process is not None and not self._terminal

    def start(self, inputs: Stack, options: CompositeOptions, target=None) -> None:
        """Start a run of the job's composite step (`target`: the process entry, for tests)."""
        if target is None:  # the composite step at a lower CPU priority than the window
            from s2desktop.gui.composite_process import run as target
        self._spawn(target, (inputs, options), options.output)

    def start_area(self, request: Request, target=None) -> None:
        """Start a run of the job's area step for ``request`` (an area, its chosen scenes, a composite output)."""
        if target is None:
            from s2desktop.gui.composite_process import run_area as target
        self._spawn(target, (request,), request.composite.output)

    def _spawn(self, target, args: tuple, output) -> None:
        if self.running:
            raise RuntimeError("a composite is already running")
        self.queue = self._ctx.Queue()
        self.cancel_event = self._ctx.Event()
        self.output = str(output)
        self._terminal = False
        self._terminal_time = 0.0
        self._terminated = False
        self._cancel_time = 0.0
        self.rate = Rate()
        self.process = self._ctx.Process(target=target, args=(self.queue, self.cancel_event, *args),
                                         name="s2desktop-composite", daemon=False)
        self.started_at = time.monotonic()
        self.process.start()
        log.info("composite process %s started for %s", self.process.pid, self.output)
        self._timer.start()

    def cancel(self) -> None:
        if self.running and self.cancel_event is not None:
            self.cancel_event.set()
            self._cancel_time = time.monotonic()

    def _poll(self) -> None:
        if self.process is None:
            self._timer.stop()
            return
        self._drain()
        if self.process is None:  # a slot of one of the messages shut the runner down (the window closed)
            return
        if self._terminal:
            self._reap()
            return
        if not self.process.is_alive():
            self._drain()  # messages put just before exiting
            if not self._terminal:
                code = self.process.exitcode
                if self._cancel_time:
                    self._end("cancelled")
                else:
                    self._end("failed", f"The composite process stopped unexpectedly (exit code {code}); "
                                        "see the log for details")
            self._reap()
        elif self._cancel_time and time.monotonic() - self._cancel_time > CANCEL_GRACE_S:
            log.warning("composite process did not stop after cancel; terminating it")
            self.process.terminate()

    def _drain(self) -> None:
        while not self._terminal and self.queue is not None:
            try:
                msg = self.queue.get_nowait()
            except (queue_mod.Empty, EOFError, OSError, ValueError):  # ValueError: closed meanwhile
                return
            if isinstance(msg, Progress):
                if self.rate.last is not None and self.rate.last.stage != msg.stage:
                    self.rate = Rate()  # a new stage (fetch, then composite): its own speed and time left
                self.rate.update(msg)
                self.progress.emit(msg)
            elif isinstance(msg, Finished):
                self.output = str(msg.result or self.output)
                self._end("done", self.output)
            elif isinstance(msg, Failed):
                if msg.details:
                    log.debug("composite process traceback:\n%s", msg.details)
                self._end("failed", msg.message or "The composite failed")
            elif isinstance(msg, Cancelled):
                self._end("cancelled")

    def _end(self, kind: str, value: str = "") -> None:
        self._terminal = True
        self._terminal_time = time.monotonic()
        if kind == "done":
            self.done.emit(value)
        elif kind == "failed":
            log.debug("composite failed: %s", value)  # the window reports (and logs) it
            self.failed.emit(value)
        else:
            self.cancelled.emit()
        self.finished.emit()

    def _reap(self) -> None:
        proc = self.process
        if proc is not None and proc.is_alive():
            # it is writing its last bytes / shutting its pool down; poll again -- but a process that has sent
            # its final message and still has not exited after EXIT_GRACE_S is stuck in its teardown (seen after
            # a cancel: the pool's manager thread): terminate it rather than leave it behind
            if self._terminal_time and time.monotonic() - self._terminal_time > EXIT_GRACE_S:
                log.warning("composite process %s still alive %.0f s after its last message; terminating it",
                            proc.pid, EXIT_GRACE_S)
                proc.terminate()
                self._terminal_time = time.monotonic() + 5.0  # then kill, if SIGTERM is not enough
                if getattr(self, "_terminated", False):
                    proc.kill()
                self._terminated = True
            return
        self._timer.stop()
        if proc is not None:
            proc.join(timeout=0)
        if self.queue is not None:
            self.queue.close()
            self.queue = None
        self.process = None

    def shutdown(self, timeout_s: float = SHUTDOWN_GRACE_S) -> None:
        """Window closing: cancel, wait a little for a clean stop (draining the queue meanwhile: a process whose
        queue pipe is full cannot exit), then terminate -- the compositor unwinds a SIGTERM like a cancel, removing
        its temporaries -- and as a last resort kill."""
        proc = self.process
        if proc is None:
            return
        if self.cancel_event is not None:
            self.cancel_event.set()
        t0 = time.monotonic()
        self._join_draining(proc, EXIT_GRACE_S if self._terminal else timeout_s)
        if proc.is_alive():
            log.warning("composite process %s did not stop within %.0f s of the cancel; terminating it",
                        proc.pid, timeout_s)
            proc.terminate()
            self._join_draining(proc, 5.0)
        if proc.is_alive():
            log.error("composite process %s ignored SIGTERM; killing it", proc.pid)
            proc.kill()
            proc.join(2.0)
        log.info("composite process %s stopped %.1f s after the window closed", proc.pid, time.monotonic() - t0)
        self._timer.stop()
        if self.queue is not None:
            self.queue.close()
            self.queue = None
        self.process = None

    def _join_draining(self, proc, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while proc.is_alive() and time.monotonic() < deadline:
            proc.join(0.05)
            while self.queue is not None:
                try:
                    msg = self.queue.get_nowait()
                except (queue_mod.Empty, EOFError, OSError, ValueError):
                    break
                if isinstance(msg, (Finished, Failed, Cancelled)):  # its work is over: it only has to exit
                    deadline = min(deadline, time.monotonic() + EXIT_GRACE_S)


def preview_resolution(full: float) -> float:
    """The pixel size of an area's quick preview: 80 m, or 4 x the full resolution when that is coarser."""
    return max(PREVIEW_RESOLUTION, 4.0 * float(full))


def named_for_rule(path: str, rule: Rule) -> str:
    """`path` with a trailing rule name (…_median.tif, …_quantile25.tif) replaced by `rule`'s; else as it is."""
    p = Path(path)
    for _name, known, _tip in RULES:
        tail = "_" + known.label.replace(":", "")
        if p.stem.endswith(tail):
            return str(p.with_name(p.stem[: -len(tail)] + "_" + rule.label.replace(":", "") + p.suffix))
    return path


def describe_event(event: Progress) -> str:
    """Any stage of the job in one line: 'Fetching 3.1 MiB of 12.0 MiB, 8.9 MiB left · 2 of 8 pieces'."""
    parts = []
    if event.bytes_total:
        left = max(0, event.bytes_total - event.bytes_done)
        parts.append(f"{human_bytes(event.bytes_done)} of {human_bytes(event.bytes_total)}, "
                     f"{human_bytes(left)} left")
    if event.items_total:
        parts.append(f"{event.items_done} of {event.items_total} {ITEM_WORDS.get(event.stage, 'parts')}")
    text = " ".join([STAGE_WORDS.get(event.stage, event.stage.capitalize()), " · ".join(parts)]).strip()
    return f"{text} — {event.message}" if event.message else text


def _with_count_and_record(out: Path) -> list[Path]:
    """A composite and the files written beside it: its count and its provenance record."""
    options = CompositeOptions(str(out))
    return [out, Path(options.count_file), Path(options.record_file)]


def _preview_path(out: Path) -> Path:
    """Where the quick preview of `out` is written: the cache, not beside the result."""
    from s2desktop.core.paths import user_cache_dir

    folder = user_cache_dir() / "previews"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{out.stem}_preview_{os.getpid()}{out.suffix}"


class CompositePanel(QWidget):
    """Inputs, output path, quick-preview option, Start/Cancel, progress, elapsed and remaining time."""

    compositeReady = Signal(str, bool)  # path, is_preview
    compositeFailed = Signal(str)
    startableChanged = Signal(bool)  # the Composite button's state (the window's action follows it)
    downloadFirst = Signal()  # Composite on a JPEG 2000 area: its tiles' files come down (with their rows) first
    choicesChanged = Signal()  # the bands or the mask: what a download fetches (the cost line follows)
    windowPixels = Signal(object)  # core.progress.WindowPixels: a finished window of the run, to paint at once

    def __init__(self, parent=None):
        super().__init__(parent)
        self.runner = CompositeRunner(self)
        self.inputs: Stack | None = None  # from the job's plan (the downloads panel)
        self.area_request: Request | None = None  # area mode: the area, its chosen scenes, the source
        self._streamed = True  # the area is read from COGs (else from its downloaded tiles)
        self._full_options: CompositeOptions | Request | None = None  # the full run queued after a preview
        self._run_title = ""
        self._area_seq = 0  # the latest area description; older ones' results are dropped
        self._preview_title = "Preview"
        self._is_preview = False
        self._paint_windows = False  # the run's windows are painted (not a full run behind a preview shown)
        self.workers: int | None = None  # processes of the compositor's pool (None: all cores)
        self.window_size: int | None = None  # px side of the compositor's windows (None: the core's default)
        self._default_output: str | None = None  # the default name last put in the field (the next replaces it)
        self._confirmed_output: str | None = None  # chosen in the save dialog, which asked about overwriting
        self._pending_output: Path | None = None  # a JPEG 2000 area's output, cleared before its download
        self._preview_file: Path | None = None  # the quick preview, in the cache; removed after the full run
        self.confirm_overwrite = self._ask_overwrite  # (path) -> bool: may an existing output be replaced?

        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 6, 6, 6)
        self.inputs_label = QLabel(NO_INPUTS)
        self.inputs_label.setWordWrap(True)
        lay.addWidget(self.inputs_label)

        grid = QGridLayout()
        self.output = QLineEdit()
        self.output.setPlaceholderText("composite.tif")
        browse = QToolButton()
        browse.setText("…")
        browse.clicked.connect(self._browse)
        grid.addWidget(QLabel("Output"), 0, 0)
        grid.addWidget(self.output, 0, 1)
        grid.addWidget(browse, 0, 2)
        self.resolution_label = QLabel("Resolution")
        self.resolution = QSpinBox()
        self.resolution.setRange(10, 2000)
        self.resolution.setSingleStep(10)
        self.resolution.setValue(10)
        self.resolution.setSuffix(" m")
        self.resolution.setToolTip("Pixel size of the area's composite (on the UTM zone of its centre)")
        self.resolution.valueChanged.connect(lambda _v: self._resolution_changed())
        self._resolution_by_hand = False  # until then it follows suggest_resolution (the source's finest)
        self._suggesting = False
        grid.addWidget(self.resolution_label, 1, 0)
        grid.addWidget(self.resolution, 1, 1)
        self._add_rule_row(grid, 2)
        self._add_choice_rows(grid, 3)
        self.quick = QCheckBox()
        self.quick.setChecked(True)
        grid.addWidget(self.quick, 5, 0, 1, 3)
        self._show_area_fields(False)
        grid.setColumnStretch(1, 1)
        lay.addLayout(grid)

        row = QHBoxLayout()
        self.start_button = QPushButton("Composite")
        self.start_button.setToolTip("Combine the selected dates per pixel by the rule, clouds and nodata "
                                     "excluded")
        self.start_button.setEnabled(False)
        self.start_button.clicked.connect(self.start)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        row.addWidget(self.start_button)
        row.addWidget(self.cancel_button)
        row.addStretch(1)
        lay.addLayout(row)

        self.bar = QProgressBar()
        self.bar.setRange(0, 1000)
        self.bar.setValue(0)
        self.bar.setFormat("%p %")
        lay.addWidget(self.bar)
        self.time_label = QLabel("")
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.status.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        lay.addWidget(self.time_label)
        lay.addWidget(self.status)
        lay.addStretch(1)

        self.runner.progress.connect(self._progress)
        self.runner.done.connect(self._done)
        self.runner.failed.connect(self._failed)
        self.runner.cancelled.connect(self._cancelled)
        self.runner.finished.connect(self._run_finished)
        self._clock = QTimer(self)
        self._clock.setInterval(500)
        self._clock.timeout.connect(self._tick)

    def _add_rule_row(self, grid: QGridLayout, row: int) -> None:
        """The per-pixel rule: a combo of the core's rule values (the median first, the default)."""
        self.rule = QComboBox()
        for i, (name, rule, tip) in enumerate(RULES):
            self.rule.addItem(name, rule)
            self.rule.setItemData(i, tip, Qt.ItemDataRole.ToolTipRole)
        self.rule.setToolTip("How each pixel's clear observations become one value")
        self.rule.currentIndexChanged.connect(lambda _i: self._offer_default(self._default_output or ""))
        grid.addWidget(QLabel("Rule"), row, 0)
        grid.addWidget(self.rule, row, 1, 1, 2)

    def method(self) -> Rule:
        """The rule chosen in the panel."""
        return self.rule.currentData()

    def _add_choice_rows(self, grid: QGridLayout, row: int) -> None:
        """The band preset and the cloud mask (which, and its buffer): they go into the job's request."""
        self.band_preset = BandPresetCombo()
        self.mask_fields = MaskFields()
        for changed in (self.band_preset.currentIndexChanged, self.mask_fields.changed):
            changed.connect(lambda *_a: self._describe_inputs())
            changed.connect(lambda *_a: self.choicesChanged.emit())
        grid.addWidget(QLabel("Bands"), row, 0)
        grid.addWidget(self.band_preset, row, 1, 1, 2)
        grid.addWidget(QLabel("Clouds"), row + 1, 0)
        grid.addWidget(self.mask_fields, row + 1, 1, 1, 2)

    def bands(self) -> tuple[str, ...]:
        """The bands of the preset chosen: what a download fetches and the composite combines."""
        return self.band_preset.bands()

    def mask(self) -> str:
        """The mask choice ('auto', 'scl', 'qi', 'none'): the request's one field."""
        return self.mask_fields.mask()

    def _set_startable(self, on: bool) -> None:
        self.start_button.setEnabled(on)
        self.startableChanged.emit(on)

    def _browse(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Composite output", self.output.text(), "GeoTIFF (*.tif)")
        if path:
            self.output.setText(path)
            self._confirmed_output = str(Path(path).expanduser())

    def _show_area_fields(self, area: bool) -> None:
        self.resolution_label.setVisible(area)
        self.resolution.setVisible(area)
        preview = f"{preview_resolution(self.resolution.value()):g} m" if area else "¼ resolution"
        self.quick.setText(f"Quick preview first ({preview})")
        self.quick.setToolTip("Composite a coarse preview first and show it, then the full resolution"
                              + (" (a coarse preview reads only the COGs' overviews)" if area else ""))

    def _resolution_changed(self) -> None:
        if not self._suggesting:
            self._resolution_by_hand = True
        self._show_area_fields(self.area_request is not None)  # the preview's resolution follows
        self._describe_area()

    def suggest_resolution(self, metres: float | None) -> None:
        """The finest pixel size the source has under the area (e.g. 100 m for the demo): the default, unless the
        user chose one -- a finer one would only upsample, at many times the pixels and the time."""
        if metres is None or self._resolution_by_hand:
            return
        value = max(self.resolution.minimum(), min(self.resolution.maximum(), round(metres)))
        if value != self.resolution.value():
            self._suggesting = True
            try:
                self.resolution.setValue(value)
            finally:
                self._suggesting = False

    def set_area(self, request: Request | None, streamed: bool = True, default_output: Path | None = None) -> None:
        """Area mode: ``request`` holds the area, the chosen scenes (maybe none yet) and the source; Composite runs
        the job's area step, from the COGs (``streamed``) or the area's downloaded tiles. None: tile mode."""
        self.area_request, self._streamed = request, streamed
        self._show_area_fields(request is not None)
        if request is None:
            self.set_inputs(self.inputs)
            return
        if default_output is not None:
            self._offer_default(str(default_output))
        self._describe_area()

    def _describe_area(self) -> workers.Worker | None:
        """What Composite will make of the area: acquisitions, tiles, the grid; a bad area's one-line error
        (too large for the resolution) before any search. The grid is worked out on a worker: a continent-sized
        box takes the core a second."""
        r = self.area_request
        if r is None:
            return None
        self._area_seq += 1
        seq = self._area_seq
        self._set_startable(False)
        return workers.start(areas.output_grid, r.area, float(self.resolution.value()), r.crs, name="area grid",
                             owner=self, on_result=lambda grid: self._area_described(grid, seq),
                             on_error=lambda m, _d: self._area_failed(m, seq))

    def _area_failed(self, message: str, seq: int) -> None:
        if seq == self._area_seq:
            self.inputs_label.setText(f"<span style='color:#b03a2e'>{in_window_words(message)}</span>")

    def _area_described(self, grid, seq: int) -> None:
        r = self.area_request
        if seq != self._area_seq or r is None:
            return
        if not r.scenes:
            self.inputs_label.setText(NO_ACQUISITIONS)
            self._set_startable(False)
            return
        n, tiles = len(acquisitions(r.scenes)), len({s.tile for s in r.scenes})
        how = "streamed from the COG archive, nothing downloaded whole" if self._streamed else \
            "from the area's tiles, downloaded first in Downloads where missing"
        self.inputs_label.setText(f"{n} acquisition{'s' if n != 1 else ''} over {tiles} tile"
                                  f"{'s' if tiles != 1 else ''} → {grid.width} × {grid.height} px at "
                                  f"{grid.resolution:g} m ({grid.crs}); {how}.")
        self._set_startable(not self.runner.running)

    def set_inputs(self, inputs: Stack | None, default_output: Path | None = None) -> None:
        """The job's stack (downloaded bands and their SCL masks); None: nothing to composite."""
        if inputs is not None and self.area_request is not None:  # a tile's download: back to tile mode
            self.area_request = None
            self._show_area_fields(False)
        self.inputs = inputs if inputs is not None and inputs.observations else None
        n = len(self.inputs.observations) if self.inputs else 0
        self._describe_inputs()
        if default_output is not None:
            self._offer_default(str(default_output))
        self._set_startable(n > 0 and not self.runner.running)

    def _describe_inputs(self) -> None:
        """A tile's downloaded dates, their bands and masks; and when the Bands chosen since are others, that
        they come down first."""
        if self.area_request is not None:
            return
        if self.inputs is None:
            self.inputs_label.setText(NO_INPUTS)
            return
        n, masks = len(self.inputs.observations), with_mask_choice(self.inputs, self.mask()).masked
        text = (f"{n} date{'s' if n != 1 else ''} ready ({', '.join(self.inputs.bands)}"
                + (f"; clouds masked on {masks})" if masks else ")") + ".")
        if tuple(self.inputs.bands) != self.bands():
            text += f" Download again for {', '.join(self.bands())}."
        self.inputs_label.setText(text)

    def _offer_default(self, path: str) -> None:
        """The default output name goes in an empty field or replaces the previous default; a typed path stays.
        A default named after a rule (…_median.tif) is named after the rule chosen."""
        path = named_for_rule(path, self.method()) if path else path
        current = self.output.text().strip()
        if not current or current == self._default_output:
            self.output.setText(path)
        self._default_output = path or None

    def _ask_overwrite(self, path: Path) -> bool:
        box = QMessageBox(QMessageBox.Icon.Question, "Replace the composite?",
                          f"{path.name} already exists in {path.parent}.\nReplace it with the new composite?",
                          QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, self)
        box.setObjectName("overwriteBox")
        box.setDefaultButton(QMessageBox.StandardButton.No)
        return box.exec() == QMessageBox.StandardButton.Yes

    def _may_write(self, out: Path) -> bool:
        """An existing output is replaced only once the user said so (here, or in the save dialog)."""
        if not out.exists() or str(out) == self._confirmed_output:
            return True
        if self.confirm_overwrite(out):
            return True
        self.status.setText(f"{out.name} kept: choose another output name to composite.")
        return False

    def _options(self, output: Path, scale: int) -> CompositeOptions:
        return CompositeOptions(output=str(output), scale=scale, workers=self.workers, overwrite=True,
                                window_size=self.window_size, method=self.method(),
                                mask_buffer=self.mask_fields.mask_buffer(), scheduler=st.dask_scheduler())

    def _output_path(self) -> Path | None:
        """The output to write, once it may be written and its folder exists; None (and why) otherwise."""
        out = Path(self.output.text().strip() or "composite.tif").expanduser()
        if not self._may_write(out):
            return None
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            self._failed(f"Cannot create {out.parent}: {exc.strerror}")
            return None
        return out

    def start(self, downloaded: bool = False) -> None:
        """Composite what the panel holds. A JPEG 2000 area asks for its download first (`downloadFirst`; the
        window runs it in the Downloads panel and calls back with `downloaded`)."""
        if self.runner.running:
            return
        if self.area_request is not None:
            if not self.area_request.scenes:
                return
            if not self._streamed and not downloaded:  # asked now about an existing output, not after
                self._pending_output = self._output_path()
                if self._pending_output is not None:
                    self.downloadFirst.emit()
                return
            if downloaded:  # the output was settled before the download
                out, self._pending_output = self._pending_output, None
            else:
                out = self._output_path()
            if out is not None:
                self._start_area(out)
            return
        if self.inputs is None:
            return
        out = self._output_path()
        if out is None:
            return
        self._full_options = self._options(out, 1)
        if self.quick.isChecked():
            self._drop_preview()
            self._preview_file = _preview_path(out)
            self._launch(self._options(self._preview_file, 4), preview=True)
        else:
            self._launch(self._full_options, preview=False)

    def _start_area(self, out: Path) -> None:
        """The area's preview at 80 m (shown as soon as it is written), then its full resolution behind it."""
        res = float(self.resolution.value())
        full = self.area_job(out)
        self._full_options = full
        if self.quick.isChecked():
            self._drop_preview()
            self._preview_file = _preview_path(out)
            preview = replace(full, resolution=preview_resolution(res),
                              composite=replace(full.composite, output=str(self._preview_file)))
            self._launch(preview, preview=True)
        else:
            self._launch(full, preview=False)

    def area_job(self, out: Path) -> Request:
        """The area's full-resolution request as the panel's fields say: resolution, bands, mask, rule, output."""
        return replace(self.area_request, resolution=float(self.resolution.value()), bands=self.bands(),
                       mask=self.mask(), composite=self._options(out, 1))

    def preview_title(self) -> str:
        """How the running (or last) preview is named: 'Preview at 80 m' or 'Quick preview (¼ resolution)'."""
        return self._preview_title

    def _launch(self, job: CompositeOptions | Request, preview: bool) -> None:
        """Start one run: the tile's composite step (options) or the area's job step (a request)."""
        self._is_preview = preview
        self._paint_windows = preview or self._preview_file is None
        self.bar.setValue(0)
        self._set_startable(False)
        self.cancel_button.setEnabled(True)
        if isinstance(job, Request):
            res = f"{job.resolution:g} m"
            self._run_title = f"Preview at {res}" if preview else f"Full resolution ({res})"
        else:
            self._run_title = "Quick preview (¼ resolution)" if preview else "Full resolution"
        if preview:
            self._preview_title = self._run_title
        self.status.setText(self._run_title + "…")
        try:
            if isinstance(job, Request):
                self.runner.start_area(job)
            else:  # the mask chosen now: a download's masks of another kind are left out
                self.runner.start(with_mask_choice(self.inputs, self.mask()), job)
        except Exception as exc:  # e.g. the process could not be started
            self._failed(f"Could not start the composite process: {exc}")
            self._run_finished()
            return
        self._clock.start()
        self._tick()

    def cancel(self) -> None:
        self._full_options = None
        self.runner.cancel()
        self.status.setText("Cancelling…")

    @property
    def run_title(self) -> str:
        """What the running (or last) run is: 'Preview at 80 m', 'Full resolution (10 m)', ..."""
        return self._run_title

    def _progress(self, event: Progress) -> None:
        if event.pixels is not None and self._paint_windows:
            self.windowPixels.emit(event.pixels)
        self.bar.setValue(int(1000 * event.fraction))
        self.status.setText(f"{self._run_title}: {describe_event(event)}")

    def _tick(self) -> None:
        if not self.runner.running:
            return
        elapsed = time.monotonic() - self.runner.started_at
        left = self.runner.rate.seconds_left()
        text = f"Elapsed {human_duration(elapsed)}"
        if left:
            text += f", about {human_duration(left)} left"
        self.time_label.setText(text)

    def _done(self, path: str) -> None:
        self.bar.setValue(1000)
        elapsed = time.monotonic() - self.runner.started_at
        self.time_label.setText(f"Took {human_duration(elapsed)}")
        self.status.setText((f"{self._run_title} ready: " if self._is_preview else "Composite ready: ")
                            + Path(path).name + ("; the full resolution follows" if self._full_options else ""))
        self.status.setToolTip(path)
        self.compositeReady.emit(path, self._is_preview)
        if not self._is_preview:  # the full result replaces the preview in the viewer
            self._drop_preview()

    def _drop_preview(self) -> None:
        if self._preview_file is None:
            return
        try:
            for p in _with_count_and_record(self._preview_file):
                remove_with_side_files(p)
        except OSError as exc:  # still open elsewhere (Windows): it is in the cache, which may be cleared
            log.info("could not remove the preview %s: %s", self._preview_file, exc)
        self._preview_file = None

    def _failed(self, message: str) -> None:
        message = in_window_words(message)
        self._full_options = None
        self.time_label.setText("")  # no run to time any more
        self.status.setText(f"<span style='color:#b03a2e'>{message}</span>")
        self.compositeFailed.emit(message)

    def _cancelled(self) -> None:
        self._full_options = None
        self.status.setText("Cancelled; no output written.")
        self.time_label.setText("")  # the last 'Elapsed …, about … left' no longer applies
        self.bar.setValue(0)

    def _run_finished(self) -> None:
        self._clock.stop()
        self.cancel_button.setEnabled(False)
        if self._is_preview and self._full_options is not None:
            kw, self._full_options = self._full_options, None
            self._is_preview = False
            # start the full run once the preview process has gone (on the next event-loop pass)
            QTimer.singleShot(0, lambda: self._launch_when_free(kw))
            return
        self._full_options = None
        if self.area_request is not None:
            self._describe_area()
        else:
            self._set_startable(self.inputs is not None)

    def _launch_when_free(self, kw: CompositeOptions | Request) -> None:
        if self.runner.process is not None:
            QTimer.singleShot(POLL_MS, lambda: self._launch_when_free(kw))
            return
        self._launch(kw, preview=False)

    def shutdown(self) -> None:
        self._full_options = None
        self.runner.shutdown()
        self._drop_preview()
