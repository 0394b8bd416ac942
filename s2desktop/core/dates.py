"""Dates the user types: one parser, one wording of the error."""

from __future__ import annotations

import datetime as _dt
import re

from s2desktop.core.errors import InvalidInputError

__all__ = ["parse_date"]


def parse_date(value, what: str = "date") -> _dt.date:
    """A date, datetime or 'YYYY-MM-DD' text -> date; InvalidInputError naming ``what`` (e.g. '--start')."""
    if isinstance(value, _dt.datetime):
        return value.date()
    if isinstance(value, _dt.date):
        return value
    text = str(value).strip()
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        raise InvalidInputError(f"{what} '{text}' is not a date of the form YYYY-MM-DD")
    try:
        return _dt.date.fromisoformat(text)
    except ValueError as exc:
        raise InvalidInputError(f"{what} '{text}' is not a valid date ({exc})") from None
