"""One base exception and a few meaningful subclasses.

Every message is one line a user can act on; the CLI prints it as it is and the window shows it where the
problem happened.
"""


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


class RasterError(S2Error):
    """A raster that cannot be read or does not fit with the others (corrupt, truncated, mismatched grid)."""


class CancelledError(S2Error):
    """The work was cancelled by the user; nothing partial is left under a final name."""
