"""Downloads: one row per file with its own progress bar and cancel button, a total bar with speed and ETA.

Each file is a `Worker` on this panel's `QThreadPool` running `core.download.download_one(source, task,
progress=, cancel=)`; the worker's cancel `threading.Event` is what the core checks. Progress signals are
throttled by the worker (~10 per second per file); the totals are redrawn by a 4 Hz timer.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from PySide6.QtCore import QObject, Qt, QThreadPool, QTimer, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QToolButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from s2desktop.gui import workers

log = logging.getLogger(__name__)

RGB_BANDS = ("B04", "B03", "B02")
SCALE = 1000  # progress bars count in per-mille (byte counts overflow a Qt int)


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def human_duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    m, s = divmod(seconds, 60)
    if m < 60:
        return f"{m} min {s:02d} s"
    h, m = divmod(m, 60)
    return f"{h} h {m:02d} min"


class DownloadRow(QObject):
    """One file: its tree item, progress bar, cancel button and worker."""

    changed = Signal()

    def __init__(self, panel: "DownloadPanel", task):
        super().__init__(panel)
        self.task = task
        self.panel = panel
        self.done_bytes = 0
        self.total_bytes = 0
        self.state = "queued"  # queued | running | downloaded | skipped | error | cancelled
        self.message = ""
        self.worker: workers.Worker | None = None
        self.result = None

        name = Path(task.dest).name
        self.item = QTreeWidgetItem([name, "queued", "", ""])
        self.item.setToolTip(0, str(task.dest))
        self.bar = QProgressBar()
        self.bar.setRange(0, SCALE)
        self.bar.setValue(0)
        self.bar.setTextVisible(True)
        self.bar.setFormat("%p %")
        self.bar.setMaximumHeight(18)
        self.cancel_button = QToolButton()
        self.cancel_button.setText("✕")
        self.cancel_button.setToolTip("Cancel this file")
        self.cancel_button.setAutoRaise(True)
        self.cancel_button.clicked.connect(self.cancel)

    def dest_exists(self) -> bool:
        return Path(self.task.dest).is_file()

    @property
    def finished(self) -> bool:
        return self.state in ("downloaded", "skipped", "error", "cancelled")

    def start(self, source, pool: QThreadPool) -> None:
        from s2desktop.core.download import download_one

        self.worker = workers.start(download_one, source, self.task, pool=pool, progress=True, cancel=True,
                                    name=f"download {Path(self.task.dest).name}",
                                    on_progress=self._progress, on_result=self._result,
                                    on_error=self._error, on_cancelled=self._cancelled)
        self.worker.signals.started.connect(self._started)

    def cancel(self) -> None:
        if self.finished:
            return
        if self.worker is not None:
            self.worker.cancel()  # a queued worker still runs, sees the event and stops at once
        self.item.setText(1, "cancelling…")
        self.cancel_button.setEnabled(False)

    # -- slots (GUI thread)
    def _started(self) -> None:
        if self.state == "queued" and not (self.worker and self.worker.is_cancelled):
            self._set_state("running", "downloading…")

    def _progress(self, done, total) -> None:
        if self.finished or (self.worker and self.worker.is_cancelled):
            return
        self.done_bytes = max(0, int(done or 0))
        self.total_bytes = max(0, int(total or 0))
        if self.total_bytes:
            self.bar.setValue(min(SCALE, int(SCALE * self.done_bytes / self.total_bytes)))
            self.item.setText(1, f"{human_bytes(self.done_bytes)} / {human_bytes(self.total_bytes)}")
        self.changed.emit()

    def _result(self, result) -> None:
        self.result = result
        status = getattr(result, "status", "downloaded")
        size = getattr(result, "size", None) or getattr(result, "bytes", None)
        if size:
            self.total_bytes = self.done_bytes = int(size)
        elif self.total_bytes:
            self.done_bytes = self.total_bytes
        self.bar.setValue(SCALE)
        if status == "skipped":
            self._set_state("skipped", "already there")
            self.bar.setFormat("already there")
        else:
            self._set_state("downloaded", f"done ({human_bytes(self.total_bytes)})" if self.total_bytes
                            else "done")

    def _error(self, message: str, details: str) -> None:
        self.message = message
        self._set_state("error", message)
        self.item.setToolTip(1, message)
        self.item.setForeground(1, QColor("#b03a2e"))
        self.bar.setFormat("failed")
        log.warning("download of %s failed: %s", self.task.dest, message)

    def _cancelled(self) -> None:
        self._set_state("cancelled", "cancelled")
        self.bar.setFormat("cancelled")

    def _set_state(self, state: str, text: str) -> None:
        was_finished = self.finished
        self.state = state
        self.item.setText(1, text)
        if self.finished:
            self.cancel_button.setEnabled(False)
            if state == "skipped":
                self.item.setForeground(1, QColor("#666666"))
            elif state == "downloaded":
                self.item.setForeground(1, QColor("#1e7b34"))
        self.changed.emit()
        if self.finished and not was_finished:
            self.panel._row_finished(self)


class DownloadPanel(QWidget):
    """The downloads dock."""

    started = Signal(int)  # number of files
    allFinished = Signal(dict)  # counts by state
    downloadFailed = Signal(str, str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(4)
        self.rows: list[DownloadRow] = []
        self._t0 = 0.0
        self._samples: list[tuple[float, int]] = []
        self._running = False

        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 6, 6, 6)
        top = QHBoxLayout()
        self.download_button = QPushButton("Download selected")
        self.download_button.setToolTip("Download the red, green and blue bands of the selected scenes")
        self.download_button.setEnabled(False)
        self.cancel_all_button = QPushButton("Cancel all")
        self.cancel_all_button.setEnabled(False)
        self.cancel_all_button.clicked.connect(self.cancel_all)
        self.folder_label = QLabel()
        self.folder_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        top.addWidget(self.download_button)
        top.addWidget(self.cancel_all_button)
        top.addWidget(self.folder_label, 1)
        lay.addLayout(top)

        self.tree = QTreeWidget()
        self.tree.setColumnCount(4)
        self.tree.setHeaderLabels(["File", "Status", "Progress", ""])
        self.tree.setRootIsDecorated(False)
        self.tree.setUniformRowHeights(True)
        h = self.tree.header()
        h.setStretchLastSection(False)
        h.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        h.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        h.setSectionResizeMode(2, QHeaderView.ResizeMode.Fixed)
        h.setSectionResizeMode(3, QHeaderView.ResizeMode.Fixed)
        self.tree.setColumnWidth(2, 140)
        self.tree.setColumnWidth(3, 28)
        lay.addWidget(self.tree, 1)

        bottom = QHBoxLayout()
        self.total_bar = QProgressBar()
        self.total_bar.setRange(0, SCALE)
        self.total_bar.setValue(0)
        self.total_bar.setFormat("%p %")
        self.total_label = QLabel("No downloads yet.")
        bottom.addWidget(QLabel("Total"))
        bottom.addWidget(self.total_bar, 1)
        self.total_label.setMinimumWidth(260)
        bottom.addWidget(self.total_label)
        lay.addLayout(bottom)

        self._timer = QTimer(self)
        self._timer.setInterval(250)
        self._timer.timeout.connect(self._update_total)
        self.set_folder(None)

    def set_folder(self, folder: Path | None) -> None:
        if folder is not None:
            self.folder_label.setText(f"→ {folder}")
            self.folder_label.setToolTip(str(folder))

    @property
    def running(self) -> bool:
        return self._running

    def start(self, source, scenes: list, out_dir: Path, bands=RGB_BANDS, workers_count: int = 4):
        """Plan on a worker, then one row and one worker per file."""
        from s2desktop.core.download import plan

        self.set_folder(out_dir)
        self._running = True  # planning counts as running: no second start meanwhile
        self.pool.setMaxThreadCount(max(1, workers_count))
        self.download_button.setEnabled(False)
        self.total_label.setText("Planning…")
        return workers.start(plan, list(scenes), list(bands), Path(out_dir), name="plan downloads",
                             on_result=lambda tasks: self._start_tasks(source, tasks),
                             on_error=self._plan_failed)

    def _plan_failed(self, message: str, details: str) -> None:
        self._running = False
        self.download_button.setEnabled(True)
        self.total_label.setText(f"<span style='color:#b03a2e'>{message}</span>")
        self.downloadFailed.emit(message, details)

    def _start_tasks(self, source, tasks) -> None:
        self.tree.clear()
        for r in self.rows:
            r.deleteLater()
        self.rows = []
        for task in tasks:
            row = DownloadRow(self, task)
            self.tree.addTopLevelItem(row.item)
            self.tree.setItemWidget(row.item, 2, row.bar)
            self.tree.setItemWidget(row.item, 3, row.cancel_button)
            self.rows.append(row)
        self._t0 = time.monotonic()
        self._samples = [(self._t0, 0)]
        self._running = bool(self.rows)
        self.cancel_all_button.setEnabled(self._running)
        self.total_bar.setValue(0)
        self.total_bar.setFormat("%p %")
        for row in self.rows:
            row.start(source, self.pool)
        self.started.emit(len(self.rows))
        self._timer.start()
        self._update_total()
        if not self.rows:
            self._finish()

    def cancel_all(self) -> None:
        for row in self.rows:
            row.cancel()

    def _row_finished(self, row: DownloadRow) -> None:
        if self._running and all(r.finished for r in self.rows):
            self._finish()

    def _finish(self) -> None:
        self._running = False
        self._timer.stop()
        self._update_total()
        self.cancel_all_button.setEnabled(False)
        self.download_button.setEnabled(True)
        counts: dict[str, int] = {}
        for r in self.rows:
            counts[r.state] = counts.get(r.state, 0) + 1
        parts = [f"{n} {k}" for k, n in sorted(counts.items())]
        self.total_label.setText(", ".join(parts) if parts else "Nothing to download.")
        if counts.get("error"):
            self.total_bar.setFormat("%p % – some files failed")
        elif counts.get("cancelled"):
            self.total_bar.setFormat("%p % – cancelled")
        else:
            self.total_bar.setValue(SCALE)
        self.allFinished.emit(counts)

    def _update_total(self) -> None:
        if not self.rows:
            return
        known = [r for r in self.rows if r.total_bytes]
        done = sum(r.done_bytes for r in self.rows if r.state not in ("skipped",))
        total = sum(r.total_bytes for r in known if r.state != "skipped")
        finished = sum(1 for r in self.rows if r.finished)
        now = time.monotonic()
        self._samples.append((now, done))
        self._samples = [s for s in self._samples if now - s[0] <= 5.0]
        speed = 0.0
        if len(self._samples) >= 2 and self._samples[-1][0] > self._samples[0][0]:
            speed = (self._samples[-1][1] - self._samples[0][1]) / (self._samples[-1][0] - self._samples[0][0])
        if self.rows and all(r.total_bytes or r.finished for r in self.rows) and total:
            frac = done / total
        else:
            frac = finished / len(self.rows)
        if finished == len(self.rows) and not any(r.state in ("error", "cancelled") for r in self.rows):
            frac = 1.0
        self.total_bar.setValue(int(SCALE * min(1.0, frac)))
        if self._running:
            text = f"{finished}/{len(self.rows)} files, {human_bytes(done)}"
            if speed > 0:
                text += f", {human_bytes(speed)}/s"
                if total > done:
                    text += f", {human_duration((total - done) / speed)} left"
            self.total_label.setText(text)

    def shutdown(self, timeout_ms: int = 10000) -> bool:
        """Cancel every file and wait for the pool (window closing)."""
        self.cancel_all()
        self.pool.clear()
        return self.pool.waitForDone(timeout_ms)
