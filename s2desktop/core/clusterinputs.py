"""An area streamed from remote COGs, composited on a Dask cluster: the workers read the COGs themselves.

On the local pool an area's windows are fetched here (`core.fetch`) into the area cache, and the workers read
those files. Workers on other machines reach neither that cache nor this machine's scratch folder, so when the
composite runs on a cluster (a scheduler is set) and the COGs are remote:

1. :func:`area_rasters` reads each COG's header (`fetch.plan_pieces`: ranged GETs of the header only, checked,
   the same overview level the fetch would take) and writes one small VRT per COG: that level, georeferenced,
   whose source is ``/vsis3/bucket/key`` (``vrt://...?ovr=n`` for an overview). Its size, type and blocks are
   written in it, so opening it reads nothing. `streaming.build_inputs` warps and mosaics these exactly as it
   does fetched windows (the same VRT code; the same level's pixels).
2. :func:`for_workers` turns the stack's VRT files into documents: every VRT the stack names (and the VRTs
   they name) goes into a `remotereads.RemoteReads` under a ``/vsimem/`` path of this job, with the GDAL
   options that read the source (:func:`worker_options`: its endpoint, signing, requester pays, region, and the
   credentials boto3 resolves here). Each window task carries them; the worker materialises the documents and
   reads inside ``rasterio.Env(**options)`` (`compositing.window`).

Nothing is fetched here but the headers; the area cache is neither read for windows nor written. Local paths
(a tile's downloads, a local mirror) are left as they are: the workers must share that file system.
"""

from __future__ import annotations

import re
import uuid
import xml.sax.saxutils as xml
from dataclasses import replace
from pathlib import Path

from s2desktop.core import fetch, s3, streaming
from s2desktop.core.areas import OutputGrid
from s2desktop.core.progress import Progress, ProgressFn, emit
from s2desktop.core.remotereads import SECRET_OPTIONS, GdalOptions, RemoteReads
from s2desktop.core.stack import RasterRef, Stack

__all__ = ["on_workers", "worker_options", "area_rasters", "for_workers"]

_FILES = re.compile(r"(<(?:SourceFilename|SourceDataset)[^>]*>)([^<]+)(<)")


def on_workers(scheduler: str | None, source) -> bool:
    """Whether an area's COGs are read by the cluster's workers: a scheduler is set and they are remote."""
    return bool(scheduler) and source.layout == "cogs" and not source.is_local


def worker_options(source) -> GdalOptions:
    """The GDAL options a worker reads the source's objects with (`streaming.gdal_env`), and for a signed
    source the credentials boto3 resolves here (the profile's, the environment's, an instance role's) as
    AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN; without any, the profile's name is passed on
    (AWS_PROFILE, for workers that have it)."""
    from rasterio.session import AWSSession

    options = streaming.gdal_env(source)
    if not source.unsigned:
        creds = AWSSession(session=s3.boto_session(source.profile)).get_credential_options()
        found = {k: v for k, v in creds.items() if k in SECRET_OPTIONS and v}
        if "AWS_SECRET_ACCESS_KEY" in found:
            options.pop("AWS_PROFILE", None)
            options.update(found)
    return GdalOptions.of(options)


def area_rasters(source, scenes, bands, grid: OutputGrid, cache, folder: Path, progress: ProgressFn | None = None,
                 cancel=None):
    """-> locate(scene, band): a VRT in ``folder`` of the COG's level under the grid, reading ``/vsis3/`` (None:
    the COG does not reach the grid), from the COGs' headers alone."""
    store = source.store
    wanted = {(s.scene_id, b): fetch.remote_of(store, s, k)
              for s in scenes for b, k in s.bands.items() if b in bands}
    pieces = fetch.plan_pieces(store, wanted, grid, cache, progress, cancel)
    paths = {}
    for i, (item, piece) in enumerate(pieces.items()):
        if piece is not None:
            paths[item] = folder / f"cog-{i:04d}.vrt"
            paths[item].write_text(_level_vrt(streaming.object_path(source, piece.key), piece), encoding="utf-8")
    emit(progress, Progress("fetch", message=f"the Dask workers read the {len(paths)} COG window(s) themselves "
                                             "through /vsis3/: nothing is fetched here"))
    return lambda s, b: str(paths[(s.scene_id, b)]) if (s.scene_id, b) in paths else None


def _level_vrt(path: str, piece: fetch.Piece) -> str:
    """A VRT of one level of the COG at ``path`` (GDAL's ``vrt://...?ovr=n`` for an overview), with everything
    GDAL would read from its header written in it: opening it reads nothing."""
    from dataclasses import replace as copy

    lv = piece.header.levels[piece.level]
    src = path if piece.level == 0 else f"vrt://{path}?ovr={piece.level - 1}"
    whole = copy(piece, window=(0, 0, lv.width, lv.height))
    return fetch.window_vrt(whole, [(src, 0, lv.height)], (lv.tile_width, lv.tile_height))


def for_workers(stack: Stack, scheduler: str | None, request) -> Stack:
    """The stack as a cluster's workers can open it, when it is an area read from remote COGs on the cluster
    (see the module): its VRTs as documents under /vsimem/ with the source's GDAL options; else as it is."""
    if request is None or request.area is None or not scheduler:
        return stack
    source = request.source.resolve()
    if not on_workers(scheduler, source):
        return stack
    prefix = f"/vsimem/s2desktop-{uuid.uuid4().hex[:12]}/"
    documents: dict[str, str] = {}

    def pack(path: str) -> str:
        name = prefix + Path(path).name
        if name not in documents:
            documents[name] = ""  # a VRT naming itself again stops here
            text = Path(path).read_text(encoding="utf-8")
            documents[name] = _FILES.sub(lambda m: m.group(1) + xml.escape(_packed(m.group(2), pack)) + m.group(3),
                                         text)
        return name

    obs = tuple(replace(o, rasters={b: replace(r, path=pack(r.path)) for b, r in o.rasters.items()},
                        mask=None if o.mask is None else RasterRef(pack(o.mask.path), o.mask.band, o.mask.overview))
                for o in stack.observations)
    return replace(stack, observations=obs, remote=RemoteReads.of(documents, worker_options(source)))


def _packed(name: str, pack) -> str:
    """A source a VRT names: another local VRT -> its document's /vsimem/ path; anything else as it is."""
    name = xml.unescape(name)
    return pack(name) if name.endswith(".vrt") and Path(name).is_file() else name
