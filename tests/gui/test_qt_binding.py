"""Guards against Qt for Python builds that corrupt the interpreter.

PySide6 6.12.0 on CPython 3.11 drops a reference to None on every call of a method returning void; after ~16k
calls (a few seconds of panning the map) Python aborts with `none_dealloc`. pyproject.toml pins below it.
"""

import sys


def test_void_qt_calls_keep_none_refcount(qtbot):
    from PySide6.QtWidgets import QLabel

    label = QLabel()
    qtbot.addWidget(label)
    before = sys.getrefcount(None)
    for _ in range(2000):
        label.setText("x")
    assert sys.getrefcount(None) - before > -100
