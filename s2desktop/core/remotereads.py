"""Rasters a process on another machine can open: VRT documents that travel as values, and the GDAL options
(endpoint, signing, credentials) that let GDAL read the COGs they name through ``/vsis3/``.

An area streamed from remote COGs and composited on a Dask cluster (`core.clusterinputs` builds it) is a stack
whose rasters are ``/vsimem/`` paths: the area's warped and mosaic VRTs, whose innermost sources are
``/vsis3/bucket/key`` (at the overview level the area's resolution reads). :class:`RemoteReads` carries those
documents and the options with every window task; the process that reads them (a worker, or the parent while it
checks the plan) calls :func:`reading` around its reads::

    with reading(task.inputs.remote):   # the documents in this process's /vsimem/, the options in a rasterio.Env
        ...                              # open and read the task's rasters

The options are applied only around those reads (never set for the process for good: a worker runs other
jobs); datasets are never pickled, only paths and text. The credentials in the options never show: the
options' ``repr`` hides them, and :func:`unreadable` takes them out of the one-line error it makes.
"""

from __future__ import annotations

import contextlib
import json
import re
import threading
import zlib
from dataclasses import dataclass, field

__all__ = ["GdalOptions", "RemoteReads", "reading", "unreadable", "SECRET_OPTIONS"]

SECRET_OPTIONS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
_SOURCES = re.compile(r"(/vsis3/[^<?\"]+)")  # the objects a document reads (vrt://...?ovr=n keeps its path)
_SOURCE_FILES = re.compile(r"<(?:SourceFilename|SourceDataset)[^>]*>([^<]+)<")


@dataclass(frozen=True)
class GdalOptions:
    """GDAL configuration options as a value: ``(name, value)`` pairs. Its repr never shows a credential."""

    items: tuple[tuple[str, str], ...]

    @classmethod
    def of(cls, options: dict) -> "GdalOptions":
        return cls(tuple(sorted((str(k), str(v)) for k, v in options.items())))

    def as_dict(self) -> dict[str, str]:
        return dict(self.items)

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={'<redacted>' if k in SECRET_OPTIONS else v}" for k, v in self.items)
        return f"GdalOptions({shown})"


@dataclass(frozen=True)
class RemoteReads:
    """What a process needs to open a stack's rasters wherever it runs: the VRT documents their ``/vsimem/``
    paths name (zlib-compressed JSON of ``{path: XML}``: a task carries them all, and they repeat their CRS), and
    the GDAL options to read the ``/vsis3/`` objects those name."""

    packed: bytes = field(repr=False)
    options: GdalOptions

    @classmethod
    def of(cls, documents: dict[str, str], options: GdalOptions) -> "RemoteReads":
        return cls(zlib.compress(json.dumps(documents, sort_keys=True).encode("utf-8"), 6), options)

    @property
    def documents(self) -> dict[str, str]:
        return json.loads(zlib.decompress(self.packed).decode("utf-8"))

    def __repr__(self) -> str:
        return f"RemoteReads({len(self.packed)} bytes of VRT documents, {self.options!r})"


_LOCK = threading.Lock()
_MATERIALISED: dict[str, object] = {}  # /vsimem/ path -> its rasterio MemoryFile, for this process's life
_ENV_LOCK = threading.RLock()  # rasterio.Env sets process-wide options: one task's at a time


def _materialise(remote: RemoteReads) -> list:
    """The documents written into this process's /vsimem/ (once: later tasks find them, and the datasets the
    worker keeps open name them). -> the MemoryFiles written now."""
    from rasterio.io import MemoryFile

    made = []
    with _LOCK:
        for path, text in remote.documents.items():
            if path in _MATERIALISED:
                continue
            dirname, _, filename = path[len("/vsimem/"):].rpartition("/")
            mem = MemoryFile(text.encode("utf-8"), dirname=dirname, filename=filename)
            _MATERIALISED[path] = mem
            made.append(path)
    return made


def _forget(paths) -> None:
    with _LOCK:
        for path in paths:
            mem = _MATERIALISED.pop(path, None)
            if mem is not None:
                mem.close()


@contextlib.contextmanager
def reading(remote: RemoteReads | None, keep: bool = True):
    """Around the reads of a stack's rasters: its documents in /vsimem/ and its GDAL options in a rasterio.Env,
    restored when the block ends (one block at a time in a process: the options are process-wide while set).
    keep: the documents stay for the next task (a worker); False: removed after (the parent's checks).
    None: nothing to do (local files)."""
    if remote is None:
        yield
        return
    import rasterio

    from s2desktop.core.redact import remember

    options = remote.options.as_dict()
    secrets = {k: options.pop(k) for k in SECRET_OPTIONS if k in options}
    remember(*secrets.values())  # never in an error or a log line of this process
    made = _materialise(remote)
    try:
        with _ENV_LOCK, rasterio.Env(**_credentials(secrets, options), **options):
            yield
    finally:
        if not keep:
            _forget(made)


def _credentials(secrets: dict, options: dict) -> dict:
    """rasterio.Env takes credentials only through a session (it refuses them as options): the same GDAL options
    (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN), set and cleared with the others."""
    if "AWS_SECRET_ACCESS_KEY" not in secrets:
        return {}
    from rasterio.session import AWSSession

    return {"session": AWSSession(aws_access_key_id=secrets.get("AWS_ACCESS_KEY_ID"),
                                  aws_secret_access_key=secrets["AWS_SECRET_ACCESS_KEY"],
                                  aws_session_token=secrets.get("AWS_SESSION_TOKEN"),
                                  region_name=options.get("AWS_REGION") or "us-east-1",
                                  requester_pays=options.get("AWS_REQUEST_PAYER") == "requester")}


def unreadable(remote: RemoteReads, failed: str, why: str) -> tuple[str, str]:
    """(the input, why) to name when reading ``failed`` (a document's path, or any raster) broke: the first
    ``/vsis3/`` object that document reads which cannot be opened, with GDAL's reason; else ``failed`` itself.
    Called in :func:`reading`'s block after the error, so the objects are tried with the task's options."""
    import rasterio
    from rasterio.errors import RasterioIOError

    from s2desktop.core.redact import redact

    for path in _objects(remote.documents, failed):
        try:
            with rasterio.open(path):
                pass
        except RasterioIOError as exc:
            text = (str(exc).splitlines() or ["unreadable"])[0].replace(f"'{path}' ", "").replace(f"{path}: ", "")
            if "not recognized" in text or "supported file format" in text:
                text = "not a raster GDAL can read"
            return path, redact(f"cannot open ({text.rstrip('.')})")
    return failed, redact(why)


def _objects(documents: dict[str, str], path: str) -> list[str]:
    """The /vsis3/ objects a document reads, through the documents it names, in order."""
    out, todo, seen = [], [path], set()
    while todo:
        doc = documents.get(todo.pop(0))
        if doc is None or id(doc) in seen:
            continue
        seen.add(id(doc))
        for name in _SOURCE_FILES.findall(doc):
            name = name.replace("&amp;", "&")
            if name in documents:
                todo.append(name)
            else:
                out += [m for m in _SOURCES.findall(name) if m not in out]
    return out
