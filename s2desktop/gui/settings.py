"""User settings over QSettings, the settings dialog, and the error dialog used across the window.

QSettings is INI-format. When `S2DESKTOP_HOME` is set (tests, portable installs) the file lives in
`$S2DESKTOP_HOME/settings/`, so tests never touch the real user's settings.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QSpinBox,
    QWidget,
)

from s2desktop.core.windowcache import DEFAULT_LIMIT

log = logging.getLogger(__name__)

# Keys
DOWNLOAD_DIR = "downloads/folder"
WORKERS = "downloads/workers"
SOURCE = "source/name"
ENDPOINT = "source/endpoint"
BUCKET = "source/bucket"
PROFILE = "source/profile"
LOCAL_FOLDER = "source/local_folder"
RECENT_TILES = "tiles/recent"
RECENT_FILES = "viewer/recent"
LAST_TILE = "tiles/last"
MAX_CLOUD = "search/max_cloud"
AREA_CACHE_GIB = "areas/cache_gib"
DASK_SCHEDULER = "compositing/dask_scheduler"

AREA_CACHE_DEFAULT_GIB = DEFAULT_LIMIT / (1 << 30)  # the core's default (Request.cache_limit)

# Source choices shown in the window: (key, label)
SOURCES = [
    ("l1c", "L1C (JP2, requester pays)"),
    ("l2a", "L2A (JP2, requester pays)"),
    ("cogs", "L2A COGs (public)"),
    ("demo", "Demo (offline)"),
    ("local", "Local folder…"),
]
REQUESTER_PAYS = {"l1c", "l2a"}
DEFAULT_SOURCE = "cogs"  # public: works on first start without an AWS account (the JP2 buckets bill one)


def configure_qsettings() -> None:
    """INI settings; under $S2DESKTOP_HOME/settings when that variable is set."""
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    home = os.environ.get("S2DESKTOP_HOME")
    if home:
        QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(Path(home) / "settings"))


def settings() -> QSettings:
    return QSettings()


def default_download_dir() -> Path:
    """`<user data>/downloads`: a folder of their own, not mixed with demo-archive/ at the data folder's root."""
    from s2desktop.core.paths import user_data_dir

    return user_data_dir() / "downloads"


def download_dir() -> Path:
    value = settings().value(DOWNLOAD_DIR, "")
    return Path(value) if value else default_download_dir()


def worker_count() -> int:
    try:
        n = int(settings().value(WORKERS, 4))
    except (TypeError, ValueError):
        n = 4
    return max(1, min(16, n))


def area_cache_gib() -> float:
    """The size limit of the on-disk cache of an area's fetched windows, in GiB (0: keep nothing)."""
    try:
        gib = float(settings().value(AREA_CACHE_GIB, AREA_CACHE_DEFAULT_GIB))
    except (TypeError, ValueError):
        gib = AREA_CACHE_DEFAULT_GIB
    return max(0.0, min(1024.0, gib))


def area_cache_limit() -> int:
    """The same limit in bytes, for the job's Request.cache_limit."""
    return int(area_cache_gib() * (1 << 30))


def dask_scheduler() -> str | None:
    """Where the window's composites run: a Dask scheduler's address, 'local' (a LocalCluster), or None (this
    machine's process pool, the default); the job checks it again (CompositeOptions.scheduler)."""
    return get_str(DASK_SCHEDULER).strip() or None


def scheduler_problem(value: str) -> str | None:
    """Why `value` cannot be the Dask scheduler (malformed, or Dask not installed: what to install), in one line,
    by the command line's own check; None: fine (empty is this machine's processes)."""
    from s2desktop.core.compositing.cluster import check_scheduler
    from s2desktop.core.errors import InvalidInputError

    try:
        check_scheduler(value)
    except InvalidInputError as exc:
        return str(exc)[:1].upper() + str(exc)[1:]
    return None


def get_str(key: str, default: str = "") -> str:
    value = settings().value(key, default)
    return "" if value is None else str(value)


def get_list(key: str) -> list[str]:
    value = settings().value(key, [])
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value else []
    return [str(v) for v in value]


def push_recent(key: str, item: str, limit: int = 10) -> list[str]:
    items = [i for i in get_list(key) if i != item]
    items.insert(0, item)
    items = items[:limit]
    settings().setValue(key, items)
    return items


def show_error(parent: QWidget | None, title: str, message: str, details: str = "") -> QMessageBox:
    """A non-modal error box: the one-line message, the details (traceback) to copy. Also logged."""
    log.error("%s: %s%s", title, message, ("\n" + details) if details else "")
    box = QMessageBox(parent)
    box.setIcon(QMessageBox.Icon.Warning)
    box.setWindowTitle(title)
    box.setText(message)
    if details:
        box.setDetailedText(details)
    box.setStandardButtons(QMessageBox.StandardButton.Close)
    box.setObjectName("errorBox")
    box.setModal(False)
    box.open()
    return box


class SettingsDialog(QDialog):
    """Download folder, worker count, area cache size, Dask scheduler, default source, endpoint, profile."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.setMinimumWidth(520)
        form = QFormLayout(self)

        self.folder = QLineEdit(str(download_dir()))
        self.folder.setToolTip("Downloads go in red/, green/, blue/ (and metadata/) under this folder")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.folder, 1)
        row.addWidget(browse)
        form.addRow("Download folder", row)
        self.folder_error = QLabel("")
        self.folder_error.setWordWrap(True)
        self.folder_error.setStyleSheet("color: #b03a2e;")
        self.folder_error.setVisible(False)
        form.addRow("", self.folder_error)
        self.folder.textChanged.connect(lambda _t: self.folder_error.setVisible(False))

        self.workers = QSpinBox()
        self.workers.setRange(1, 16)
        self.workers.setValue(worker_count())
        self.workers.setToolTip("Files downloaded at the same time")
        form.addRow("Parallel downloads", self.workers)

        self.area_cache = QDoubleSpinBox()
        self.area_cache.setRange(0.0, 1024.0)
        self.area_cache.setDecimals(1)
        self.area_cache.setSingleStep(0.5)
        self.area_cache.setSuffix(" GiB")
        self.area_cache.setValue(area_cache_gib())
        self.area_cache.setToolTip("What an area's composite fetched from the COG archive is kept on disk up to "
                                   "this size, so a second run over the same area fetches nothing again (the "
                                   "least recently used parts go first; 0 keeps nothing)")
        form.addRow("Area cache", self.area_cache)
        self._scheduler_row(form)

        self.source = QComboBox()
        for key, label in SOURCES:
            self.source.addItem(label, key)
        i = self.source.findData(get_str(SOURCE, DEFAULT_SOURCE))
        self.source.setCurrentIndex(max(0, i))
        form.addRow("Source at start", self.source)

        self.endpoint = QLineEdit(get_str(ENDPOINT))
        self.endpoint.setPlaceholderText("https://… (empty: AWS)")
        form.addRow("S3 endpoint", self.endpoint)

        self.profile = QLineEdit(get_str(PROFILE))
        self.profile.setPlaceholderText("default")
        form.addRow("AWS profile", self.profile)

        hint = QLabel("The download folder and parallel downloads apply to the next download, the area cache "
                      "to the next area composite, the Dask scheduler to the next composite. The source, "
                      "endpoint and profile are what the window opens with; change the current ones in the "
                      "Source and tile dock.")
        hint.setWordWrap(True)
        form.addRow(hint)

        note = QLabel(f"Settings file: {settings().fileName()}")
        note.setWordWrap(True)
        note.setStyleSheet("color: palette(mid);")
        form.addRow(note)

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def _scheduler_row(self, form: QFormLayout) -> None:
        """The Dask scheduler: empty (this machine's processes), 'local' or tcp://HOST:PORT, checked as typed."""
        self.scheduler = QLineEdit(get_str(DASK_SCHEDULER))
        self.scheduler.setPlaceholderText("empty: this machine's processes · local · tcp://HOST:8786")
        self.scheduler.setToolTip("Composite the windows on a Dask cluster: its scheduler's address, or 'local' "
                                  "for a cluster of this machine's processes (as composite --scheduler). The "
                                  "cluster's workers need s2desktop and must reach the same inputs.")
        form.addRow("Dask scheduler", self.scheduler)
        self.scheduler_error = QLabel("")
        self.scheduler_error.setObjectName("schedulerError")
        self.scheduler_error.setWordWrap(True)
        self.scheduler_error.setStyleSheet("color: #b03a2e;")
        form.addRow("", self.scheduler_error)
        self.scheduler.textChanged.connect(self._check_scheduler)
        self._check_scheduler(self.scheduler.text())

    def _check_scheduler(self, text: str) -> bool:
        """Show why the scheduler typed cannot be used (hidden when it can); True when it can."""
        problem = scheduler_problem(text)
        self.scheduler_error.setText(problem or "")
        self.scheduler_error.setVisible(bool(problem))
        return problem is None

    def _browse(self) -> None:
        d = QFileDialog.getExistingDirectory(self, "Download folder", self.folder.text())
        if d:
            self.folder.setText(d)

    def _folder_problem(self, folder: str) -> str | None:
        """Why downloads could not go to `folder` (a file, not writable), in one line; None: fine."""
        from s2desktop.core.errors import OutputError
        from s2desktop.core.fsutil import check_folder_creatable

        try:
            check_folder_creatable(Path(folder).expanduser() if folder else default_download_dir(),
                                   "download folder")
        except OutputError as exc:
            return str(exc)[:1].upper() + str(exc)[1:]
        return None

    def accept(self) -> None:
        """Save, unless the download folder cannot hold downloads: then say why here and stay open."""
        s = settings()
        folder = self.folder.text().strip()
        problem = self._folder_problem(folder)
        if problem:
            self.folder_error.setText(problem)
            self.folder_error.setVisible(True)
            self.layout().activate()
            self.resize(self.width(), max(self.height(), self.sizeHint().height()))  # room for all its lines
            self.folder.setFocus()
            return
        if not self._check_scheduler(self.scheduler.text()):
            self.scheduler.setFocus()
            return
        if folder and Path(folder).expanduser() != default_download_dir():
            s.setValue(DOWNLOAD_DIR, str(Path(folder).expanduser()))
        else:
            s.remove(DOWNLOAD_DIR)
        s.setValue(WORKERS, self.workers.value())
        s.setValue(AREA_CACHE_GIB, self.area_cache.value())
        s.setValue(DASK_SCHEDULER, self.scheduler.text().strip())
        s.setValue(SOURCE, self.source.currentData())
        s.setValue(ENDPOINT, self.endpoint.text().strip())
        s.setValue(PROFILE, self.profile.text().strip())
        s.sync()
        super().accept()
