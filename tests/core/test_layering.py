"""The core stays free of Qt, so the CLI and headless runs never load a GUI toolkit."""

import subprocess
import sys


def test_importing_core_does_not_import_qt():
    code = (
        "import importlib, pkgutil, sys\n"
        "import s2desktop.core as core\n"
        "for m in pkgutil.iter_modules(core.__path__):\n"
        "    importlib.import_module('s2desktop.core.' + m.name)\n"
        "bad = sorted(n for n in sys.modules if n.split('.')[0] in ('PySide6', 'pyqtgraph', 'shiboken6')"
        " or n.startswith('s2desktop.gui'))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"s2desktop.core pulled in: {out.stdout.strip()}"


def test_cli_help_does_not_import_qt():
    code = (
        "import sys\n"
        "from s2desktop.cli import build_parser\n"
        "build_parser()\n"
        "print(any(n.split('.')[0] == 'PySide6' for n in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
