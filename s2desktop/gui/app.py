"""Start the desktop window: `s2desktop`, `s2desktop gui [RASTER...]`, `python -m s2desktop`."""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys

ORGANIZATION = "s2desktop"
APPLICATION = "s2desktop"
QUIT_GRACE_MS = 5000  # closing the window: how long background tasks get to stop before the process leaves

log = logging.getLogger("s2desktop")


def setup_logging() -> str:
    """Log INFO and above to `<user_log_dir>/s2desktop.log` (rotated), and nothing to the terminal unless
    `--debug`; returns the file path."""
    from s2desktop.core.paths import user_log_dir
    from s2desktop.core.redact import RedactSecrets

    folder = user_log_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "s2desktop.log"
    root = logging.getLogger()
    _quiet_terminal(root)
    for h in root.handlers:
        if isinstance(h, logging.FileHandler) and getattr(h, "baseFilename", None) == str(path):
            return str(path)
    handler = logging.handlers.RotatingFileHandler(path, maxBytes=2_000_000, backupCount=3, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.INFO)
    handler.addFilter(RedactSecrets())  # credentials never reach the log file
    root.addHandler(handler)
    if root.level > logging.INFO or root.level == logging.NOTSET:
        root.setLevel(logging.INFO)
    return str(path)


def _quiet_terminal(root: logging.Logger) -> None:
    """The command line's console handler (cli.main's basicConfig, level unset) would print every INFO line
    meant for the log file once the root level is lowered for it: the window drops it, unless `--debug` (which
    sets the root to DEBUG) asked for the log on the terminal."""
    if root.level != logging.NOTSET and root.level <= logging.DEBUG:
        return
    terminals = (sys.stderr, sys.stdout, sys.__stderr__, sys.__stdout__)
    for h in root.handlers[:]:
        if type(h) is logging.StreamHandler and h.stream in terminals:
            root.removeHandler(h)


def create_application(argv: list[str] | None = None):
    """The QApplication with organisation/application names set once, and QSettings configured."""
    from PySide6.QtWidgets import QApplication

    from s2desktop import __version__
    from s2desktop.gui.settings import configure_qsettings

    app = QApplication.instance()
    if app is None:
        app = QApplication(argv if argv is not None else [sys.argv[0]])
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationName(APPLICATION)
    app.setApplicationDisplayName("Sentinel-2 Desktop")
    app.setApplicationVersion(__version__)
    configure_qsettings()
    return app


def install_excepthook() -> None:
    """An exception escaping a slot is logged and shown, not silently printed."""
    previous = sys.excepthook

    def hook(exc_type, exc, tb):
        import traceback

        details = "".join(traceback.format_exception(exc_type, exc, tb))
        log.error("unhandled exception:\n%s", details)
        try:
            from s2desktop.gui.settings import show_error

            show_error(None, "Unexpected error", f"{exc_type.__name__}: {exc}", details)
        except Exception:  # pragma: no cover - the dialog itself failed
            previous(exc_type, exc, tb)

    sys.excepthook = hook


def run(paths=(), demo: bool = False) -> int:
    """Open the main window (and the rasters in `paths`); with `demo`, on the built-in offline demo: source,
    tile and dates filled in, the demo archive generated on a worker if needed, then the search."""
    os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")
    log_file = setup_logging()
    app = create_application()
    from s2desktop.gui.main_window import MainWindow
    from s2desktop.gui.workers import registry

    install_excepthook()
    log.info("s2desktop window starting; log file %s", log_file)
    window = MainWindow()
    app.aboutToQuit.connect(window.shutdown)
    app.aboutToQuit.connect(lambda: registry.shutdown(QUIT_GRACE_MS))
    window.show()
    for p in paths:
        window.open_raster(p)
    if demo:
        window.start_demo()
    return app.exec()


def main(paths=(), demo: bool = False) -> int:
    """The window as the process's main job (`s2desktop`, `s2desktop gui`, `s2desktop demo`): `run`, then leave at
    once if a background task is still blocked."""
    from s2desktop.gui.workers import registry

    code = run(paths, demo=demo)
    stuck = registry.active
    if stuck:
        # A task that ignored its cancel is blocked in a call that cannot be interrupted (a request to a server
        # that never answers). Interpreter exit would wait on its thread, leaving an invisible process behind;
        # downloads write under temporary names, so leaving now loses nothing.
        log.warning("leaving with %d background task(s) still blocked: %s", len(stuck),
                    ", ".join(w.name or "task" for w in stuck))
        logging.shutdown()
        os._exit(code)
    return code
