"""A date field that takes typed dates: ISO (2023-07-14) or day first (14/07/2023, 14.07.2023); shows ISO; a
calendar to pick from; Up/Down step a day.

QDateEdit types section by section (the cursor must first be put in the right section), so a typed or pasted
date rarely lands; here the first click (or focus) selects the whole text and typing replaces it.
"""

from __future__ import annotations

import re

from PySide6.QtCore import QDate, Qt, Signal
from PySide6.QtGui import QColor, QIcon, QPainter, QPixmap, QValidator
from PySide6.QtWidgets import QCalendarWidget, QLineEdit, QMenu, QWidgetAction

__all__ = ["DateField", "parse_date"]

ISO = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$")
DAY_FIRST = re.compile(r"^(\d{1,2})[/.](\d{1,2})[/.](\d{4})$")
PARTIAL = re.compile(r"^[\d/.\-]{0,10}$")  # what a date looks like while it is typed


def parse_date(text: str) -> QDate | None:
    """'2023-07-14' or '14/07/2023' (or '14.07.2023') -> QDate; None for anything else or an impossible date."""
    text = text.strip()
    m = ISO.match(text)
    if m:
        y, mo, d = map(int, m.groups())
    else:
        m = DAY_FIRST.match(text)
        if not m:
            return None
        d, mo, y = map(int, m.groups())
    q = QDate(y, mo, d)
    return q if q.isValid() else None


class _DateValidator(QValidator):
    def __init__(self, field: DateField):
        super().__init__(field)
        self._field = field

    def validate(self, text: str, pos: int):
        q = parse_date(text)
        if q is not None and q >= self._field.minimumDate():
            return QValidator.State.Acceptable, text, pos
        if PARTIAL.match(text.strip()):
            return QValidator.State.Intermediate, text, pos
        return QValidator.State.Invalid, text, pos


def _calendar_icon() -> QIcon:
    pm = QPixmap(16, 16)
    pm.fill(Qt.GlobalColor.transparent)
    p = QPainter(pm)
    ink = QColor("#555555")
    p.setPen(ink)
    p.drawRect(1, 2, 13, 12)
    p.fillRect(1, 2, 14, 4, ink)
    for x in (4, 7, 10):
        for y in (8, 11):
            p.fillRect(x, y, 2, 2, ink)
    p.end()
    return QIcon(pm)


class DateField(QLineEdit):
    """The date API of QDateEdit the panel uses (date, setDate, dateChanged, setMinimumDate) over a line edit."""

    dateChanged = Signal(QDate)

    def __init__(self, date: QDate, parent=None):
        super().__init__(parent)
        self._date = date
        self._minimum = QDate(1752, 9, 14)
        self._select_on_press = False
        self.setValidator(_DateValidator(self))
        self.setPlaceholderText("YYYY-MM-DD")
        self.setToolTip("Type a date as 2023-07-14 or 14/07/2023, or pick it from the calendar")
        pick = self.addAction(_calendar_icon(), QLineEdit.ActionPosition.TrailingPosition)
        pick.setToolTip("Pick from a calendar")
        pick.triggered.connect(self.show_calendar)
        self.textEdited.connect(self._typed)
        self._show_date()

    # -- the date
    def date(self) -> QDate:
        return self._date

    def setDate(self, date: QDate) -> None:
        if not date.isValid() or date < self._minimum:
            return
        changed = date != self._date
        self._date = date
        self._show_date()
        if changed:
            self.dateChanged.emit(date)

    def minimumDate(self) -> QDate:
        return self._minimum

    def setMinimumDate(self, date: QDate) -> None:
        self._minimum = date
        if self._date < date:
            self.setDate(date)

    def _typed(self, text: str) -> None:
        q = parse_date(text)
        if q is not None and q >= self._minimum and q != self._date:
            self._date = q
            self.dateChanged.emit(q)

    def _show_date(self) -> None:
        self.setText(self._date.toString(Qt.DateFormat.ISODate))

    def show_calendar(self) -> QMenu:
        menu = QMenu(self)
        menu.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        cal = QCalendarWidget(menu)
        cal.setMinimumDate(self._minimum)
        cal.setSelectedDate(self._date)
        holder = QWidgetAction(menu)
        holder.setDefaultWidget(cal)
        menu.addAction(holder)
        cal.clicked.connect(lambda q: (self.setDate(q), menu.close()))
        menu.popup(self.mapToGlobal(self.rect().bottomLeft()))
        return menu

    # -- typing over the whole date
    def focusInEvent(self, ev) -> None:
        super().focusInEvent(ev)
        if ev.reason() == Qt.FocusReason.MouseFocusReason:
            self._select_on_press = True  # the press that gave the focus would put the cursor: select after it
        elif ev.reason() != Qt.FocusReason.PopupFocusReason:
            self.selectAll()

    def focusOutEvent(self, ev) -> None:
        super().focusOutEvent(ev)
        if ev.reason() != Qt.FocusReason.PopupFocusReason:
            self._show_date()  # ISO again; an unfinished date goes back to the last whole one

    def mousePressEvent(self, ev) -> None:
        select = self._select_on_press or not self.hasFocus()
        super().mousePressEvent(ev)
        self._select_on_press = False
        if select:
            self.selectAll()

    def keyPressEvent(self, ev) -> None:
        step = {Qt.Key.Key_Up: 1, Qt.Key.Key_Down: -1}.get(ev.key())
        if step:
            self.setDate(self._date.addDays(step))
            return
        super().keyPressEvent(ev)
        if ev.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self._show_date()
