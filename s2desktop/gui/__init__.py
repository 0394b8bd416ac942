"""The thin PySide6 layer over s2desktop.core."""
