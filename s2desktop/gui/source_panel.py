"""Source and tile: where scenes come from (bucket layout, local folder, custom endpoint, AWS profile with a
credentials indicator) and which tile or area (validated as you type with the core's message; recent tiles; the
map). The field takes a tile id (33UUP) or an area as W,S,E,N in degrees, which is also how an area drawn on the
map is shown: one place to read, copy or type it.
"""

from __future__ import annotations

import logging
import math

from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from s2desktop.gui import settings as st
from s2desktop.gui import workers
from s2desktop.gui.wording import in_window_words

log = logging.getLogger(__name__)

OK_STYLE = "color: #1e7b34;"
BAD_STYLE = "color: #b03a2e;"
MUTED_STYLE = "color: #666666;"
# one short line each: the source dock is low (the details are in the tooltips)
PAYS_NOTE = "Needs an AWS account: downloads are billed to it."
PAYS_TIP = ("Requester pays: this bucket needs an AWS account with credentials, and every download is billed "
            "to that account. “L2A COGs (public)” needs no account.")
NO_CREDENTIALS = "✖ no AWS credentials: run `aws configure`"
DESCRIBED_TILES = 6  # an area's tiles named under the field


def _km(value: float) -> str:
    return f"{value:.3g}" if value < 100 else f"{value:,.0f}"


def format_bounds(bounds) -> str:
    """'W,S,E,N' with 4 decimals (about 10 m): how the field shows, and takes, an area."""
    return ",".join(f"{v:.4f}" for v in bounds)


def _credentials_job(profile: str | None):
    from s2desktop.core.credentials import available_profiles, credential_status

    return credential_status(profile), available_profiles()


class SourcePanel(QWidget):
    tileChanged = Signal(str)  # canonical id, only for valid text
    areaChanged = Signal(object)  # core.areas.Area, only for a valid W,S,E,N with tiles under it
    sourceChanged = Signal()
    searchRequested = Signal()  # Return in the tile field

    def __init__(self, parent=None):
        super().__init__(parent)
        self._tile: str | None = None
        self._area = None  # core.areas.Area when the field holds W,S,E,N
        lay = QVBoxLayout(self)
        lay.setContentsMargins(6, 6, 6, 6)
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)

        self.source = QComboBox()
        for key, label in st.SOURCES:
            self.source.addItem(label, key)
        self.source.setToolTip("Where scenes are searched and downloaded from")
        form.addRow("Source", self.source)

        self.folder = QLineEdit(st.get_str(st.LOCAL_FOLDER))
        self.folder.setPlaceholderText("folder holding a bucket-layout mirror")
        browse = QToolButton()
        browse.setText("…")
        browse.clicked.connect(self._browse)
        frow = QHBoxLayout()
        frow.addWidget(self.folder, 1)
        frow.addWidget(browse)
        self.folder_row = QWidget()
        self.folder_row.setLayout(frow)
        frow.setContentsMargins(0, 0, 0, 0)
        form.addRow("Folder", self.folder_row)

        self.custom = QCheckBox("Custom S3 endpoint")
        self.endpoint = QLineEdit(st.get_str(st.ENDPOINT))
        self.endpoint.setPlaceholderText("https://s3.example.org")
        self.bucket = QLineEdit(st.get_str(st.BUCKET))
        self.bucket.setPlaceholderText("bucket (default for the layout)")
        self.custom.setChecked(bool(self.endpoint.text()))
        form.addRow("", self.custom)
        form.addRow("Endpoint", self.endpoint)
        form.addRow("Bucket", self.bucket)

        self.profile = QComboBox()
        self.profile.setEditable(True)
        self.profile.lineEdit().setPlaceholderText("default credential chain")
        self.profile.setEditText(st.get_str(st.PROFILE))
        self.profile.setToolTip("AWS profile from ~/.aws/config (requester-pays buckets bill this account)")
        form.addRow("AWS profile", self.profile)
        self.pays_note = QLabel(PAYS_NOTE)
        self.pays_note.setWordWrap(True)
        self.pays_note.setStyleSheet(MUTED_STYLE)
        self.pays_note.setToolTip(PAYS_TIP)
        form.addRow("", self.pays_note)
        self.creds = QLabel("")
        self.creds.setWordWrap(True)
        form.addRow("", self.creds)

        self._make_tile_rows(form)
        lay.addLayout(form)

        self._refresh_recent()
        i = self.source.findData(st.get_str(st.SOURCE, st.DEFAULT_SOURCE))
        self.source.setCurrentIndex(max(0, i))
        # True while the window shows `s2desktop demo`: its source is not the user's choice, so it is not
        # remembered; picking a source by hand ends it
        self.demo_session = False
        self.source.currentIndexChanged.connect(self._source_changed)
        self.source.activated.connect(self._source_picked)
        self.custom.toggled.connect(self._source_changed)
        self.folder.editingFinished.connect(self.sourceChanged)
        self.endpoint.editingFinished.connect(self.sourceChanged)
        self.bucket.editingFinished.connect(self.sourceChanged)
        self.profile.currentTextChanged.connect(self._profile_changed)
        self.tile.textChanged.connect(self._tile_edited)
        self.tile.returnPressed.connect(self._return_pressed)
        self.tile.editingFinished.connect(self.normalise_text)
        self.recent.activated.connect(self._recent_chosen)
        self._cred_timer = QTimer(self)
        self._cred_timer.setSingleShot(True)
        self._cred_timer.setInterval(300)
        self._cred_timer.timeout.connect(self.check_credentials)
        self._cred_worker = None
        self._profiles_loaded = False
        self._source_changed()
        last = st.get_str(st.LAST_TILE)
        if last:
            self.tile.setText(last)

    def _make_tile_rows(self, form: QFormLayout) -> None:
        """'Tile or area' (the field and the recent tiles) and the line under it (its description or error)."""
        self.tile = QLineEdit()
        self.tile.setPlaceholderText("33UUP, or an area W,S,E,N (click or draw on the map)")
        self.tile.setToolTip("A tile id (33UUP), or an area as west,south,east,north in degrees "
                             "(12.1,48.0,12.5,48.3); drawing an area on the map fills it in")
        self.tile.setClearButtonEnabled(True)
        self.tile.setMaxLength(80)
        self.recent = QComboBox()
        self.recent.setToolTip("Recent tiles")
        self.recent.setMinimumContentsLength(6)
        trow = QHBoxLayout()
        trow.setContentsMargins(0, 0, 0, 0)
        trow.addWidget(self.tile, 1)
        trow.addWidget(self.recent)
        form.addRow("Tile or area", trow)
        self.tile_error = QLabel("")
        self.tile_error.setWordWrap(True)
        self.tile_error.setObjectName("tileError")
        # room for two lines from the start (the dock is laid out at its size hint), and for all the lines of a
        # longer one: a description or an error that wraps must not be cut (_fit_message)
        self.tile_error.setMinimumHeight(2 * self.tile_error.fontMetrics().lineSpacing())
        form.addRow("", self.tile_error)

    # -- source
    def source_key(self) -> str:
        return self.source.currentData()

    def source_spec(self) -> dict:
        """Keyword arguments of core.sources.resolve_source for the current choice."""
        key = self.source_key()
        if key == "local":
            return dict(name=self.folder.text().strip() or ".")
        if key == "demo":
            return dict(name="demo")
        spec = dict(name=key, profile=self.profile.currentText().strip() or None)
        if self.custom.isChecked():
            spec["endpoint_url"] = self.endpoint.text().strip() or None
            spec["bucket"] = self.bucket.text().strip() or None
        return spec

    def set_source(self, key: str, endpoint: str | None = None, bucket: str | None = None,
                   folder: str | None = None) -> None:
        if folder is not None:
            self.folder.setText(folder)
        if endpoint is not None:
            self.endpoint.setText(endpoint)
            self.custom.setChecked(bool(endpoint))
        if bucket is not None:
            self.bucket.setText(bucket)
        self.source.setCurrentIndex(max(0, self.source.findData(key)))
        self._source_changed()

    def _source_changed(self, *_):
        key = self.source_key()
        remote = key in ("l1c", "l2a", "cogs")
        self.folder_row.setVisible(key == "local")
        self._set_row_visible(self.folder_row, key == "local")
        self.custom.setVisible(remote)
        for w in (self.endpoint, self.bucket):
            self._set_row_visible(w, remote and self.custom.isChecked())
        self._set_row_visible(self.profile, key in st.REQUESTER_PAYS)
        self._set_row_visible(self.pays_note, key in st.REQUESTER_PAYS)
        self._set_row_visible(self.creds, key in st.REQUESTER_PAYS)
        if key in st.REQUESTER_PAYS:
            self._cred_timer.start()
        self.sourceChanged.emit()

    def _source_picked(self, _index: int) -> None:
        self.demo_session = False

    def _set_row_visible(self, field: QWidget, visible: bool) -> None:
        form = self.layout().itemAt(0).layout()
        if isinstance(form, QFormLayout):
            form.setRowVisible(field, visible)

    def _browse(self) -> None:
        d = QFileDialog.getExistingDirectory(self, "Local mirror folder", self.folder.text())
        if d:
            self.folder.setText(d)
            st.settings().setValue(st.LOCAL_FOLDER, d)
            self.sourceChanged.emit()

    def remember(self) -> None:
        """The current source, profile, endpoint and folder as what the window opens with next time (the demo's
        source excepted: `s2desktop demo` must not change what a plain `s2desktop` opens)."""
        s = st.settings()
        if not self.demo_session:
            s.setValue(st.SOURCE, self.source_key())
        s.setValue(st.PROFILE, self.profile.currentText().strip())
        s.setValue(st.ENDPOINT, self.endpoint.text().strip() if self.custom.isChecked() else "")
        s.setValue(st.BUCKET, self.bucket.text().strip() if self.custom.isChecked() else "")
        if self.folder.text().strip():
            s.setValue(st.LOCAL_FOLDER, self.folder.text().strip())

    # -- credentials (looked up by the core on a worker)
    def _profile_changed(self, *_):
        if self.source_key() in st.REQUESTER_PAYS:
            self._cred_timer.start()
        self.sourceChanged.emit()  # another account: scenes listed (and billed) under the old one go

    def check_credentials(self) -> workers.Worker:
        self.creds.setStyleSheet(MUTED_STYLE)
        self.creds.setText("Checking AWS credentials…")
        profile = self.profile.currentText().strip() or None
        self._cred_worker = workers.start(_credentials_job, profile, name="credentials",
                                          on_result=self._credentials, on_error=self._credentials_failed)
        return self._cred_worker

    def _credentials(self, value) -> None:
        status, profiles = value
        if not self._profiles_loaded:
            self._profiles_loaded = True
            text = self.profile.currentText()
            self.profile.blockSignals(True)
            self.profile.clear()
            self.profile.addItems(profiles)
            self.profile.setEditText(text)
            self.profile.blockSignals(False)
        self.creds.setStyleSheet(OK_STYLE if status.found else BAD_STYLE)
        self.creds.setText(("✔ credentials found" + (f" ({status.method})" if status.method else ""))
                           if status.found else NO_CREDENTIALS)
        self.creds.setToolTip(status.message[0].upper() + status.message[1:]
                              + "\nRequester-pays buckets bill downloads to the AWS account of these credentials"
                              + ("" if status.found else "\n“L2A COGs (public)” needs no account"))

    def _credentials_failed(self, message: str, _details: str) -> None:
        self.creds.setStyleSheet(BAD_STYLE)
        self.creds.setText(in_window_words(message))

    # -- tile or area
    def tile_id(self) -> str | None:
        return self._tile

    def area(self):
        """The area the field names (core.areas.Area), or None (a tile, or nothing valid)."""
        return self._area

    def set_tile(self, tile: str) -> None:
        if self.tile.text() != tile:
            self.tile.setText(tile)

    def set_area_bounds(self, bounds) -> None:
        """Show an area drawn on the map as W,S,E,N in the field (which validates it and emits areaChanged).
        The map echoes an area the field itself named: that one is left as typed, never rewritten under the
        user's cursor (normalise_text does it on Enter or when the field loses focus)."""
        if self._area is not None and tuple(self._area.bounds) == tuple(float(v) for v in bounds):
            return
        self.set_tile(format_bounds(bounds))

    def normalise_text(self) -> None:
        """Enter or focus out: a typed area in the field's own form (W,S,E,N, four decimals), so what is shown is
        exactly the area used."""
        if self._area is not None:
            self.set_tile(format_bounds(self._area.bounds))

    def _return_pressed(self) -> None:
        self.normalise_text()  # first: the search covers the area as shown
        self.searchRequested.emit()

    def _tile_edited(self, text: str) -> None:
        from s2desktop.core.errors import S2Error
        from s2desktop.core.tiles import parse_tile

        text = text.strip()
        if not text:
            self._tile = self._area = None
            self.tile_error.setText("")
            self.tile.setStyleSheet("")
            return
        try:
            if "," in text:
                self._area_edited(text)
                return
            tile = parse_tile(text)
        except S2Error as exc:
            self._tile = self._area = None
            self._show_error(in_window_words(str(exc)))
            return
        self._show_ok(self._describe(tile))
        changed = tile != self._tile or self._area is not None
        self._tile, self._area = tile, None
        if changed:
            self.tileChanged.emit(tile)

    def _area_edited(self, text: str) -> None:
        """W,S,E,N: an area, when it is one and tiles lie under it (else the core's one-line error)."""
        from s2desktop.core import areas, tiles

        area = areas.parse_bbox(text)
        # the nearest few are enough to describe it (all of a continent's take a second to list)
        names = [f.id for f in tiles.tiles_in_bbox(*area.bounds, limit=DESCRIBED_TILES + 1)]
        if not names:
            areas.area_tiles(area)  # raises the core's one-line 'no Sentinel-2 tile under ...'
        self._show_ok(self._describe_area(area, names))
        changed = self._area is None or area.bounds != self._area.bounds
        self._tile, self._area = None, area
        if changed:
            self.areaChanged.emit(area)

    def _show_error(self, message: str) -> None:
        self.tile_error.setStyleSheet(BAD_STYLE)
        self.tile_error.setText(message[0].upper() + message[1:])
        self.tile.setStyleSheet("QLineEdit { border: 1px solid #b03a2e; }")
        self._fit_message()

    def _show_ok(self, text: str) -> None:
        self.tile.setStyleSheet("")
        self.tile_error.setStyleSheet(MUTED_STYLE)
        self.tile_error.setText(text)
        self._fit_message()

    def _fit_message(self) -> None:
        """The line under the field as high as its text needs at its width (two lines at least)."""
        label = self.tile_error
        label.setMinimumHeight(max(2 * label.fontMetrics().lineSpacing(), label.heightForWidth(max(1, label.width()))))

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt name)
        super().resizeEvent(event)
        self._fit_message()  # narrower: more lines

    @staticmethod
    def _describe_area(area, names: list[str]) -> str:
        """'Area ≈ 30 × 33 km · 2 tiles: 33UUP, 32UQU' (the size from the box's centre latitude)."""
        w, s, e, n = area.bounds
        size = f"{_km((e - w) * 111.32 * math.cos(math.radians((s + n) / 2)))} × {_km((n - s) * 110.57)} km"
        if len(names) > DESCRIBED_TILES:
            return f"Area ≈ {size} · many tiles: {', '.join(names[:DESCRIBED_TILES])} and more"
        return f"Area ≈ {size} · {len(names)} tile{'s' if len(names) != 1 else ''}: " \
            + ", ".join(names)

    @staticmethod
    def _describe(tile: str) -> str:
        """'33UUP · EPSG:32633 · 12.3–13.9° E, 47.8–48.8° N' (from the bundled grid), or just the id."""
        try:
            from s2desktop.core.tiles import footprint

            fp = footprint(tile)
        except Exception as exc:  # valid syntax but not a Sentinel-2 tile: say so
            return f"{tile}: {exc}"
        lo0, la0, lo1, la1 = fp.bbox

        def ew(v):
            return f"{abs(v):.1f}° {'E' if v >= 0 else 'W'}"

        def ns(v):
            return f"{abs(v):.1f}° {'N' if v >= 0 else 'S'}"

        return f"{tile} · EPSG:{fp.epsg} · {ew(lo0)}–{ew(lo1)}, {ns(la0)}–{ns(la1)}"

    def push_recent_tile(self, tile: str) -> None:
        st.push_recent(st.RECENT_TILES, tile)
        st.settings().setValue(st.LAST_TILE, tile)
        self._refresh_recent()

    def _refresh_recent(self) -> None:
        self.recent.clear()
        items = st.get_list(st.RECENT_TILES)
        self.recent.addItem("Recent", None)
        for t in items:
            self.recent.addItem(t, t)
        self.recent.setEnabled(bool(items))

    def _recent_chosen(self, index: int) -> None:
        t = self.recent.itemData(index)
        if t:
            self.tile.setText(t)
        self.recent.setCurrentIndex(0)
