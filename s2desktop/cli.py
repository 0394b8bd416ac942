"""The `s2desktop` command: argparse subcommands over s2desktop.core.

No subcommand (or `gui`) opens the window. Every subcommand reports failure as one line on stderr and a
non-zero exit; `--debug` shows the traceback as well.

Each subcommand is a pair: `_add_<name>(subparsers)` declares it, `_run_<name>(args) -> int` runs it.
Imports of core modules stay inside the runners so `s2desktop --version` and `--help` start instantly.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Callable

from s2desktop import __version__
from s2desktop.core.errors import S2Error

EXIT_ERROR = 2
EXIT_CANCELLED = 130

log = logging.getLogger("s2desktop")


# --- shared option groups ------------------------------------------------------------------------------------


def add_source_options(parser: argparse.ArgumentParser) -> None:
    """--source/--endpoint-url/--bucket/--profile, shared by every command that reads scenes."""
    g = parser.add_argument_group("source")
    g.add_argument(
        "--source",
        default="l1c",
        metavar="l1c|l2a|cogs|demo|PATH",
        help="bucket layout to read (default: l1c, requester pays), 'demo' for the built-in offline archive, "
        "or a local folder holding a mirror in one of the bucket layouts",
    )
    g.add_argument("--endpoint-url", metavar="URL", help="S3-compatible endpoint (a mirror, a test server)")
    g.add_argument("--bucket", metavar="NAME", help="bucket name instead of the source's default")
    g.add_argument("--profile", metavar="NAME", help="AWS profile from ~/.aws/config")


def source_from_args(args: argparse.Namespace):
    from s2desktop.core.sources import resolve_source

    return resolve_source(
        args.source, endpoint_url=args.endpoint_url, bucket=args.bucket, profile=args.profile
    )


# --- gui -----------------------------------------------------------------------------------------------------


def _add_gui(sub) -> None:
    p = sub.add_parser("gui", help="open the desktop window (the default)")
    p.add_argument("paths", nargs="*", help="rasters to open in the viewer")


def _run_gui(args: argparse.Namespace) -> int:
    from s2desktop.gui.app import run

    return run(getattr(args, "paths", []) or [])


# --- parser and entry point ----------------------------------------------------------------------------------

# Subcommands in the order `--help` lists them. Add a pair above and a line here.
_COMMANDS: list[tuple[str, Callable, Callable]] = [
    ("gui", _add_gui, _run_gui),
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="s2desktop",
        description="Search, download, composite and view Sentinel-2 imagery.",
    )
    parser.add_argument("--version", action="version", version=f"s2desktop {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for _name, add, _run in _COMMANDS:
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    runners = {name: run for name, _add, run in _COMMANDS}
    run = runners[args.command or "gui"]
    try:
        return run(args) or 0
    except KeyboardInterrupt:
        print("s2desktop: cancelled", file=sys.stderr)
        return EXIT_CANCELLED
    except S2Error as exc:
        if args.debug:
            raise
        print(f"s2desktop: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
