"""Downloads: one row per file with its own progress bar and cancel button, a total bar with speed and ETA.

The panel runs the job's download step (`core.pipeline.Job.plan` + `Job.download`: the bands and, when clouds
are masked, the scene classification) on one worker of its `QThreadPool`, and renders the job's typed events:
each `Progress` carries one file's bytes and state (queued, running, downloaded, skipped, failed, cancelled)
and the totals over all files, in bytes planned from the listing. The connection budget, retries and
verification are the core's; the panel only draws. A row's cancel button cancels that file through the
worker's `CancelToken`; "Cancel all" cancels the job.
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QObject, Qt, QThreadPool, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QToolButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from s2desktop.core import progress as pg
from s2desktop.core.pipeline import Job, Request
from s2desktop.core.units import human_bytes, human_duration
from s2desktop.gui import workers
from s2desktop.gui.wording import in_window_words

log = logging.getLogger(__name__)

SCALE = 1000  # progress bars count in per-mille (byte counts overflow a Qt int)
STATE_TEXT = {pg.QUEUED: "queued", pg.RUNNING: "downloading…", pg.SKIPPED: "already there",
              pg.CANCELLED: "cancelled"}
STATE_COLOUR = {pg.FAILED: "#b03a2e", pg.DOWNLOADED: "#1e7b34", pg.SKIPPED: "#666666"}
UNVERIFIED_COLOUR = "#b9770e"


def _cost_job(request: Request, source=None) -> str:
    """What downloading the request's files will cost (worker thread: reads the verification records)."""
    job = Job(request, source=source)
    plan = job.plan()
    return f"{len(plan.scenes)} scene(s), {len(plan.tasks)} file(s): {job.cost(plan).describe()}"


def _download_job(request: Request, source=None, progress=None, cancel=None):
    """Plan and download the request's files (worker thread); -> the stack of the complete scenes."""
    job = Job(request, progress, cancel, source=source)
    plan = job.plan()
    job.download(plan)
    return plan.inputs()


class ElidedLabel(QLabel):
    """One line that takes the room it is given, its text elided in the middle when longer (text() is whole)."""

    def __init__(self, text: str = "", parent=None):
        super().__init__(parent)
        self._full = ""
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.setText(text)

    def setText(self, text: str) -> None:  # noqa: N802 (Qt name)
        self._full = text
        self._elide()

    def text(self) -> str:
        return self._full

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt name)
        super().resizeEvent(event)
        self._elide()

    def _elide(self) -> None:
        width = max(1, self.width())
        super().setText(self.fontMetrics().elidedText(self._full, Qt.TextElideMode.ElideMiddle, width))


class DownloadRow(QObject):
    """One file: its tree item, progress bar and cancel button, drawn from the file's events."""

    changed = Signal()

    def __init__(self, panel: "DownloadPanel", name: str):
        super().__init__(panel)
        self.panel = panel
        self.path = Path(name)
        self.file = pg.FileProgress(name, 0, 0, pg.QUEUED)
        self.item = QTreeWidgetItem([self.path.name, "queued", "", ""])
        self.item.setToolTip(0, name)
        self.bar = QProgressBar()
        self.bar.setRange(0, SCALE)
        self.bar.setFormat("%p %")
        self.bar.setMaximumHeight(18)
        self.cancel_button = QToolButton()
        self.cancel_button.setText("✕")
        self.cancel_button.setToolTip("Cancel this file")
        self.cancel_button.setAutoRaise(True)
        self.cancel_button.clicked.connect(self.cancel)

    @property
    def state(self) -> str:
        return self.file.state

    @property
    def finished(self) -> bool:
        return self.file.finished

    def cancel(self) -> None:
        if not self.finished and self.panel.cancel_file(str(self.path)):
            self.item.setText(1, "cancelling…")
            self.cancel_button.setEnabled(False)

    def update(self, f: pg.FileProgress) -> None:
        if self.finished:  # a late running event after the end
            return
        self.file = f
        if f.bytes_total:
            self.bar.setValue(min(SCALE, int(SCALE * f.bytes_done / f.bytes_total)))
        text = STATE_TEXT.get(f.state, "")
        if f.state == pg.RUNNING and f.bytes_total:
            text = f"{human_bytes(f.bytes_done)} / {human_bytes(f.bytes_total)}"
        elif f.state == pg.DOWNLOADED:
            text = f"done ({human_bytes(f.bytes_total)})"
        if f.finished and f.message.startswith("unverified"):  # kept, usable, but nothing checked its content
            text = f"{text}, unverified"
            self.item.setToolTip(1, f.message)
        elif f.state == pg.FAILED:
            text = in_window_words(f.message)
            self.item.setToolTip(1, text)
        self.item.setText(1, text)
        if f.finished:
            self.cancel_button.setEnabled(False)
            self.bar.setFormat({pg.FAILED: "failed", pg.CANCELLED: "cancelled", pg.SKIPPED: "already there"}
                               .get(f.state, "%p %"))
            if f.state in (pg.DOWNLOADED, pg.SKIPPED):
                self.bar.setValue(SCALE)
            colour = UNVERIFIED_COLOUR if f.message.startswith("unverified") else STATE_COLOUR.get(f.state)
            if colour:
                self.item.setForeground(1, QColor(colour))
        self.changed.emit()


class DownloadPanel(QWidget):
    """The downloads dock."""

    started = Signal(int)  # number of files planned
    allFinished = Signal(dict)  # files by final state ('downloaded', 'skipped', 'failed', 'cancelled')
    inputsReady = Signal(object)  # core.stack.Stack of the scenes complete on disk
    downloadFailed = Signal(str, str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(1)  # one job at a time; its files run concurrently inside the core
        self.rows: list[DownloadRow] = []
        self._by_name: dict[str, DownloadRow] = {}
        self.worker: workers.Worker | None = None  # the job's worker (the last one, once it has finished)
        self._active = False
        self.rate = pg.Rate()
        self.last: pg.Progress | None = None
        self._first_active: DownloadRow | None = None  # the row kept at the top of the list

        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 6, 6, 6)
        top = QHBoxLayout()
        self.download_button = QPushButton("Download selected")
        self.download_button.setToolTip("Download the selected scenes' bands (the Composite panel's Bands) and "
                                        "their cloud masks (its Clouds)")
        self.download_button.setEnabled(False)
        self.cancel_all_button = QPushButton("Cancel all")
        self.cancel_all_button.setEnabled(False)
        self.cancel_all_button.clicked.connect(self.cancel_all)
        self.folder_label = ElidedLabel()  # a long path must not widen the window: elided, whole in its tooltip
        self.folder_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        for wdg, stretch in ((self.download_button, 0), (self.cancel_all_button, 0), (self.folder_label, 1)):
            top.addWidget(wdg, stretch)
        lay.addLayout(top)
        self.cost_label = QLabel("")  # what the selected scenes will cost, before the download starts
        self.cost_label.setWordWrap(True)
        self.cost_label.setVisible(False)
        lay.addWidget(self.cost_label)
        lay.addWidget(self._make_tree(), 1)

        bottom = QHBoxLayout()
        self.total_bar = QProgressBar()
        self.total_bar.setRange(0, SCALE)
        self.total_bar.setFormat("%p %")
        self.total_label = QLabel("No downloads yet.")
        self.total_label.setMinimumWidth(260)
        bottom.addWidget(QLabel("Total"))
        bottom.addWidget(self.total_bar, 1)
        bottom.addWidget(self.total_label)
        lay.addLayout(bottom)

    def _make_tree(self) -> QTreeWidget:
        self.tree = QTreeWidget()
        self.tree.setColumnCount(4)
        self.tree.setHeaderLabels(["File", "Status", "Progress", ""])
        self.tree.setRootIsDecorated(False)
        self.tree.setUniformRowHeights(True)
        h = self.tree.header()
        h.setStretchLastSection(False)
        h.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        h.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        for col, width in ((2, 140), (3, 28)):
            h.setSectionResizeMode(col, QHeaderView.ResizeMode.Fixed)
            self.tree.setColumnWidth(col, width)
        return self.tree

    def set_folder(self, folder: Path | None) -> None:
        """The folder the next download goes to (the window's setting), or the running one's."""
        if folder is not None:
            self.folder_label.setText(f"→ {folder}")
            self.folder_label.setToolTip(str(folder))

    @property
    def running(self) -> bool:
        return self._active

    def show_cost(self, request: Request | None, source=None) -> workers.Worker | None:
        """Estimate the request's download (files already verified left out) on a worker; None clears it."""
        self._cost_seq = getattr(self, "_cost_seq", 0) + 1
        if request is None or not request.scenes:
            self._set_cost("")
            return None
        seq = self._cost_seq
        return workers.start(_cost_job, request, source, name="download cost", owner=self,
                             on_result=lambda text: self._set_cost(text) if seq == self._cost_seq else None,
                             on_error=lambda m, _d: self._set_cost(in_window_words(m)) if seq == self._cost_seq
                             else None)  # e.g. a band the scenes do not have: said before Download

    def _set_cost(self, text: str) -> None:
        """The cost line takes room only when it says something, and not while a download counts its bytes."""
        self.cost_label.setText(text)
        self.cost_label.setVisible(bool(text) and not self._active)

    def start(self, request: Request, source=None) -> workers.Worker | None:
        """Run the request's download step; `source` is the already resolved source of the search, if any."""
        if self.running:
            return None
        self.set_folder(request.download_dir)
        self._clear()
        self.cost_label.setVisible(False)  # the total row counts the bytes meanwhile: the room goes to the rows
        self.download_button.setEnabled(False)
        self.cancel_all_button.setEnabled(True)
        self.total_label.setText("Planning…")
        self._active = True
        self.worker = workers.start(_download_job, request, source, pool=self.pool, progress=True, cancel=True,
                                    name="download", owner=self, on_progress=self._event,
                                    on_result=self.inputsReady.emit, on_error=self._failed,
                                    on_finished=self._finish)
        return self.worker

    def _clear(self) -> None:
        self.tree.clear()
        for r in self.rows:
            r.deleteLater()
        self.rows, self._by_name = [], {}
        self.rate, self.last, self._first_active = pg.Rate(), None, None
        self.total_bar.setValue(0)
        self.total_bar.setFormat("%p %")

    def cancel_all(self) -> None:
        if self._active:
            self.worker.cancel()

    def cancel_file(self, name: str) -> bool:
        if not self._active:
            return False
        self.worker.cancel_event.cancel_item(name)
        return True

    # -- the job's events (GUI thread)
    def _event(self, event: pg.Progress) -> None:
        if event.stage != "download" or event.file is None:
            return
        row = self._by_name.get(event.file.name)
        if row is None:
            row = self._add_row(event.file.name)
            if len(self.rows) == event.items_total:  # every planned file has its row
                self.started.emit(len(self.rows))
        row.update(event.file)
        self.rate.update(event)
        self.last = event
        self._draw_total()
        self._keep_active_in_view()

    def _keep_active_in_view(self) -> None:
        """The first file not finished at the top of the list (the rows above it are done): the files in progress
        stay in view as the download moves down the list. Scrolled only when that row changes, so the user can
        still scroll about meanwhile."""
        first = next((r for r in self.rows if not r.finished), None)
        if first is not None and first is not self._first_active:
            self._first_active = first
            self.tree.scrollToItem(first.item, QAbstractItemView.ScrollHint.PositionAtTop)

    def _add_row(self, name: str) -> DownloadRow:
        row = DownloadRow(self, name)
        self.tree.addTopLevelItem(row.item)
        self.tree.setItemWidget(row.item, 2, row.bar)
        self.tree.setItemWidget(row.item, 3, row.cancel_button)
        self.rows.append(row)
        self._by_name[name] = row
        return row

    @property
    def seconds_left(self) -> float | None:
        return self.rate.seconds_left()

    def _draw_total(self) -> None:
        ev = self.last
        self.total_bar.setValue(int(SCALE * ev.fraction))
        self.total_bar.setFormat(f"%p %  ·  {ev.items_done}/{ev.items_total} files")
        text = f"{human_bytes(ev.bytes_done)} of {human_bytes(ev.bytes_total)}"
        if self.rate.speed > 0 and ev.bytes_done < ev.bytes_total:
            text += f", {human_bytes(self.rate.speed)}/s"
            left = self.rate.seconds_left()
            if left is not None:
                text += f", {human_duration(left)} left"
        self.total_label.setText(text)

    def _failed(self, message: str, details: str) -> None:
        message = in_window_words(message)
        self.total_label.setText(f"<span style='color:#b03a2e'>{message}</span>")
        self.downloadFailed.emit(message, details)

    def _finish(self) -> None:
        self._active = False
        self._set_cost(self.cost_label.text())
        self.cancel_all_button.setEnabled(False)
        self.download_button.setEnabled(True)
        counts: dict[str, int] = {}
        for r in self.rows:
            if not r.finished:  # the job stopped before this file started
                r.update(pg.FileProgress(str(r.path), r.file.bytes_done, r.file.bytes_total, pg.CANCELLED))
            counts[r.state] = counts.get(r.state, 0) + 1
        if counts.get(pg.FAILED):
            self.total_bar.setFormat("%p % – some files failed")
        elif counts.get(pg.CANCELLED):
            self.total_bar.setFormat("%p % – cancelled")
        elif self.rows:
            self.total_bar.setValue(SCALE)
        if counts and not counts.get(pg.FAILED):
            self.total_label.setText(", ".join(f"{n} {k}" for k, n in sorted(counts.items())))
        elif not self.rows and not self.total_label.text().startswith("<span"):
            self.total_label.setText("Nothing to download.")
        self.allFinished.emit(counts)

    def shutdown(self, timeout_ms: int = 10000) -> bool:
        """Cancel the job and wait for it (window closing)."""
        self.cancel_all()
        self.pool.clear()
        return self.pool.waitForDone(timeout_ms)
