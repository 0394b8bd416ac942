import datetime as dt

import pytest

from s2desktop.core.dates import parse_date
from s2desktop.core.errors import InvalidInputError


def test_dates_and_text():
    assert parse_date(" 2023-07-14 ") == dt.date(2023, 7, 14)
    assert parse_date(dt.datetime(2023, 7, 14, 10, 5)) == dt.date(2023, 7, 14)


@pytest.mark.parametrize("text, message", [
    ("2023/07/14", r"^--start '2023/07/14' is not a date of the form YYYY-MM-DD$"),
    ("2023-7-14", "is not a date of the form YYYY-MM-DD"),
    ("2023-02-30", r"^--start '2023-02-30' is not a valid date \(day is out of range for month\)$"),
])
def test_one_line_errors_name_the_option(text, message):
    with pytest.raises(InvalidInputError, match=message):
        parse_date(text, "--start")
