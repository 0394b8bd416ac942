"""`python -m s2desktop` and the frozen bundle's entry point."""

import multiprocessing
import sys


def _main() -> int:
    from s2desktop import interrupt  # Ctrl-C is ours from here: no traceback even while importing

    interrupt.install()
    # A spawned worker process of a frozen bundle re-enters here; freeze_support() runs it and exits.
    multiprocessing.freeze_support()
    from s2desktop.cli import main

    return main()


if __name__ == "__main__":
    sys.exit(_main())
