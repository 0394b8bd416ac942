"""One base exception: everything the engine raises on purpose is an S2Error a front end can print as one line."""

from __future__ import annotations

import inspect

from s2desktop.core import errors


def test_every_error_is_an_s2error_and_input_errors_are_value_errors():
    classes = [c for _n, c in inspect.getmembers(errors, inspect.isclass) if c.__module__ == errors.__name__]
    assert len(classes) >= 10
    assert all(issubclass(c, errors.S2Error) for c in classes)
    assert issubclass(errors.InvalidTileError, errors.InvalidInputError)
    assert issubclass(errors.InvalidInputError, ValueError)  # callers that catch ValueError still work
    assert not issubclass(errors.CancelledError, errors.InvalidInputError)
