"""The pixel inspector: why a composite's pixel has its value, date by date.

Clicking a pixel of a composite in the viewer (`RasterViewer.pixelClicked`) calls :meth:`PixelInspector.inspect`,
which runs the core's :func:`s2desktop.core.explain.explain` on a worker thread (never the GUI thread) and shows
its answer: a time plot with one point per date and band, filled in the colour of the date's fate (used, masked,
nodata, outside the footprint or the area; a square where the baseline offset was taken off), the composite's
value per band as a dashed line and, for a rule that picks a date (medoid), that date as a vertical line; a table
of every date (reason, mask class, values as read and as used); and a strip of 64 x 64 px true-colour chips
around the pixel, one per date, framed in the same colours. No compositing, S3 or GDAL logic here.
"""

from __future__ import annotations

import datetime as _dt
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QImage, QPixmap
from PySide6.QtWidgets import (QAbstractItemView, QHBoxLayout, QLabel, QScrollArea, QSplitter, QTableWidget,
                               QTableWidgetItem, QVBoxLayout, QWidget)

from s2desktop.core.explain import Reason
from s2desktop.gui import workers

FATE_COLOURS = {  # the first of these a date's reason holds gives its colour
    Reason.USED: "#2ca02c",
    Reason.MASKED: "#ff7f0e",
    Reason.NODATA: "#7f7f7f",
    Reason.OUTSIDE_FOOTPRINT: "#9467bd",
    Reason.OUTSIDE_AREA: "#444444",
}
BAND_COLOURS = ("#d62728", "#2ca02c", "#1f77b4")  # the composite's lines: R, G, B
COLUMNS = ("Date", "Reason", "Mask class", "Used as", "Read")


def fate_colour(reason: Reason) -> str:
    return next((c for r, c in FATE_COLOURS.items() if r in reason), "#7f7f7f")


def reason_text(d) -> str:
    """'USED+OFFSET_APPLIED', 'MASKED (SCL 9)'; ' (chosen)' for the date the composite holds."""
    text = "+".join(d.reason.names)
    if Reason.MASKED in d.reason and d.mask:
        text += f" ({d.mask} {d.mask_value})"
    return text + (" (chosen)" if d.chosen else "")


def _timestamp(date: str) -> float:
    return _dt.datetime.fromisoformat(date[:10]).replace(tzinfo=_dt.timezone.utc).timestamp()


class PixelInspector(QWidget):
    """The dates of one composite pixel: plot, table, chips. :meth:`inspect` starts; `explained` when shown."""

    explained = Signal(object)  # core.explain.Explanation
    failed = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.explanation = None
        self._generation = 0
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        self.summary = QLabel("Click a pixel of a composite to see its dates.")
        self.summary.setWordWrap(True)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        lay.addWidget(self.summary)
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(self._build_plot())
        split.addWidget(self._build_table())
        split.addWidget(self._build_chips())
        lay.addWidget(split, 1)

    def _build_plot(self) -> pg.PlotWidget:
        self.plot = pg.PlotWidget(axisItems={"bottom": pg.DateAxisItem()})
        self.plot.setBackground("w")
        self.plot.setLabel("left", "DN (after offset)")
        self.plot.showGrid(x=True, y=True, alpha=0.3)
        self.plot.setMinimumHeight(120)  # docked beside the attributes, the window still fits 1280 x 800
        return self.plot

    def _build_table(self) -> QTableWidget:
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setStretchLastSection(True)
        return self.table

    def _build_chips(self) -> QScrollArea:
        self.chip_strip = QWidget()
        self.chip_layout = QHBoxLayout(self.chip_strip)
        self.chip_layout.setContentsMargins(2, 2, 2, 2)
        self.chip_layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidget(self.chip_strip)
        scroll.setWidgetResizable(True)
        scroll.setFixedHeight(64 + 48)
        return scroll

    # -- work
    def inspect(self, path, row: int, col: int, bands=None) -> workers.Worker:
        """Explain pixel (row, col) of the composite at ``path`` on a worker; the answer is shown when it comes
        (a later click wins over an earlier one still running). bands: the 1-based bands the viewer shows as
        R, G, B, which the chips show too (None: true colour by the bands' names, else the first three)."""
        from s2desktop.core.explain import explain

        self._generation += 1
        gen = self._generation
        self.summary.setText(f"Reading the dates of {Path(path).name} at row {row}, column {col}…")
        return workers.start(explain, str(path), pixel=(int(row), int(col)), chips=True,
                             chip_bands=tuple(bands) if bands and len(bands) == 3 else None, name="explain pixel",
                             on_result=lambda e: self._shown(e, gen), on_error=lambda m, _d: self._failed(m, gen),
                             owner=self)

    def _failed(self, message: str, gen: int) -> None:
        if gen == self._generation:
            self.summary.setText(f"Cannot explain this pixel: {message}")
            self.failed.emit(message)

    def _shown(self, why, gen: int) -> None:
        if gen != self._generation:
            return
        self.explanation = why
        values = ", ".join(f"{b} {v}" for b, v in zip(why.bands, why.value))
        count = f"; count layer {why.count}" if why.count is not None else ""
        chosen = f"; it holds {why.chosen_date}" if why.chosen_date else ""
        self.summary.setText(f"{Path(why.composite).name} row {why.row}, column {why.col} (lon {why.lon:.5f}, "
                             f"lat {why.lat:.5f}): {why.rule} of {why.used} of {len(why.dates)} date(s) = "
                             f"{values}{count}{chosen}")
        self._fill_plot(why)
        self._fill_table(why)
        self._fill_chips(why)
        self.explained.emit(why)

    # -- showing
    def _fill_plot(self, why) -> None:
        self.plot.clear()
        xs = np.array([_timestamp(d.date) for d in why.dates])
        brushes = [pg.mkBrush(fate_colour(d.reason)) for d in why.dates]
        symbols = ["s" if Reason.OFFSET_APPLIED in d.reason else "o" for d in why.dates]
        for b, band in enumerate(why.bands):
            colour = BAND_COLOURS[b % len(BAND_COLOURS)]
            ys = np.array([d.values[b] for d in why.dates], dtype=float)
            self.plot.addItem(pg.ScatterPlotItem(xs, ys, brush=brushes, symbol=symbols, size=10,
                                                 pen=pg.mkPen(colour, width=2), name=band))
            self.plot.addItem(pg.InfiniteLine(why.value[b], angle=0, pen=pg.mkPen(colour, style=Qt.PenStyle.DashLine)))
        if why.chosen_date:
            self.plot.addItem(pg.InfiniteLine(_timestamp(why.chosen_date), angle=90, pen=pg.mkPen("k", width=1)))

    def _fill_table(self, why) -> None:
        self.table.setRowCount(len(why.dates))
        for r, d in enumerate(why.dates):
            cells = (d.date, reason_text(d), d.mask_class or "", ", ".join(map(str, d.values)),
                     ", ".join(map(str, d.raw)))
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if c == 1:
                    item.setForeground(QColor(fate_colour(d.reason)))
                self.table.setItem(r, c, item)
        self.table.resizeColumnsToContents()

    def _fill_chips(self, why) -> None:
        while self.chip_layout.count() > 1:
            item = self.chip_layout.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()
        for i, d in enumerate(why.dates):
            label = QLabel()
            label.setObjectName(f"chip{i}")
            label.setAlignment(Qt.AlignmentFlag.AlignHCenter)
            label.setToolTip(f"{d.date}: {reason_text(d)}; {', '.join(why.chip_bands)} as R, G, B")
            label.setStyleSheet(f"border: 3px solid {fate_colour(d.reason)};")
            if d.chip is not None:
                chip = np.ascontiguousarray(d.chip)
                h, w = chip.shape[:2]
                image = QImage(chip.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()
                label.setPixmap(QPixmap.fromImage(image))
            caption = QLabel(d.date[5:10])
            caption.setAlignment(Qt.AlignmentFlag.AlignHCenter)
            box = QWidget()
            col = QVBoxLayout(box)
            col.setContentsMargins(0, 0, 0, 0)
            col.addWidget(label)
            col.addWidget(caption)
            self.chip_layout.insertWidget(i, box)

    def row_texts(self) -> list[tuple[str, ...]]:
        """The table as text, row by row (for tests and copying)."""
        return [tuple(self.table.item(r, c).text() for c in range(self.table.columnCount()))
                for r in range(self.table.rowCount())]
