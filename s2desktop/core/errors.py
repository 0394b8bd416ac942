"""One base exception and a few meaningful subclasses.

Every message is one line a user can act on; the CLI prints it as it is and the window shows it where the
problem happened.
"""

import errno

DISK_FULL = frozenset({errno.ENOSPC, getattr(errno, "EDQUOT", -1), errno.EFBIG})
NOT_WRITABLE = frozenset({errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR, errno.EISDIR})


class S2Error(Exception):
    """Base of every error the engine raises on purpose."""


class InvalidInputError(S2Error, ValueError):
    """A value the user gave is malformed: a tile id, a date, a range, a band name, an option."""


class InvalidTileError(InvalidInputError):
    """A tile id that is not a valid Sentinel-2 (MGRS) tile."""


class CredentialsError(S2Error):
    """No usable AWS credentials for a source that needs them."""


class AccessDeniedError(S2Error):
    """The server refused the request (AccessDenied / 403)."""


class NotFoundError(S2Error):
    """A bucket, key or local file that does not exist."""


class NetworkError(S2Error):
    """The server could not be reached, even after retries."""


class IntegrityError(S2Error):
    """A downloaded or read file does not match what it should be."""


class OutputError(S2Error):
    """An output cannot be written: it exists, the folder is not writable, or the disk is full."""


def output_error(exc: OSError, dest, elsewhere: str) -> "OutputError":
    """The one line for an OSError while writing ``dest``: a full disk or a folder not writable says so and what
    to do (``elsewhere``: where else to write, e.g. "use --out elsewhere")."""
    if exc.errno in DISK_FULL:
        return OutputError(f"disk full while writing {dest} ({exc.strerror}); free some space or {elsewhere}")
    if exc.errno in NOT_WRITABLE:
        return OutputError(f"cannot write {dest} ({exc.strerror}); {elsewhere}")
    return OutputError(f"cannot write {dest}: {exc.strerror or exc}")


class RasterError(S2Error):
    """A raster that cannot be read or does not fit with the others (corrupt, truncated, mismatched grid)."""


class CancelledError(S2Error):
    """The work was cancelled by the user; nothing partial is left under a final name."""
