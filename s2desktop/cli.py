"""The `s2desktop` command: argparse subcommands over s2desktop.core.

No subcommand (or `gui`) opens the window. Every subcommand reports failure as one line on stderr and a
non-zero exit; `--debug` shows the traceback as well.

Each subcommand is a pair: `_add_<name>(subparsers)` declares it, `_run_<name>(args) -> int` runs it.
Imports of core modules stay inside the runners so `s2desktop --version` and `--help` start instantly.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
from typing import Callable

from s2desktop import __version__, interrupt
from s2desktop.core.errors import S2Error
from s2desktop.core.windowcache import DEFAULT_LIMIT as AREA_CACHE_LIMIT

EXIT_ERROR = 2
EXIT_CANCELLED = 130
OVERWRITE_HINT = "use --overwrite to replace it"
EXAMPLES = """examples:
  s2desktop demo                                   the offline demo (no account, no network)
  s2desktop search --source cogs --tile 33UUP --start 2023-06-01 --end 2023-08-31 --max-cloud 20
  s2desktop composite --source cogs --tile 33UUP --start 2023-06-01 --end 2023-08-31 -o summer.tif"""

log = logging.getLogger("s2desktop")


# --- shared option groups ------------------------------------------------------------------------------------


def add_area_options(group) -> None:
    """--bbox / --aoi: an area instead of a tile (search, composite)."""
    group.add_argument("--bbox", metavar="W,S,E,N", help="an area: west, south, east, north in degrees (negative "
                       "west of Greenwich and south of the equator: --bbox -11.6,24.6,-11.2,25)")
    group.add_argument("--aoi", metavar="FILE", help="an area: a GeoJSON Polygon or MultiPolygon; pixels outside it "
                       "are nodata")


# A value starting with '-' that argparse would take for an option: a negative number first, then more numbers
NEGATIVE_FIRST = re.compile(r"-\.?\d[\d.,eE+\- ]*")
OPTIONS_WITH_NUMBER_LISTS = ("--bbox",)


def glue_negative_values(argv: list[str]) -> list[str]:
    """`--bbox -11.6,24.6,-11.2,25` read as `--bbox=-11.6,24.6,-11.2,25`: argparse takes a value that starts with '-'
    for an option (it makes an exception for one negative number only), so an area west of Greenwich or south of
    the equator would need the '=' spelling."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        if argv[i] == "--":  # the rest is positional
            return out + list(argv[i:])
        if argv[i] in OPTIONS_WITH_NUMBER_LISTS and i + 1 < len(argv) and NEGATIVE_FIRST.fullmatch(argv[i + 1]):
            out.append(f"{argv[i]}={argv[i + 1]}")
            i += 2
            continue
        out.append(argv[i])
        i += 1
    return out


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


def source_spec(args: argparse.Namespace):
    """The request's source, as the user named it ('demo' is resolved when the job runs)."""
    from s2desktop.core.pipeline import SourceSpec

    return SourceSpec(args.source, endpoint_url=args.endpoint_url, bucket=args.bucket, profile=args.profile)


# --- gui -----------------------------------------------------------------------------------------------------


def _add_gui(sub) -> None:
    p = sub.add_parser("gui", help="open the desktop window (the default)")
    p.add_argument("paths", nargs="*", help="rasters to open in the viewer")


def _run_gui(args: argparse.Namespace) -> int:
    import os

    # Without a display Qt aborts the process with a page about platform plugins; say it in one line instead.
    # An explicit QT_QPA_PLATFORM (offscreen for tests and screenshots, vnc, ...) is the user's choice.
    if not os.environ.get("QT_QPA_PLATFORM") and not _has_display():
        raise S2Error(
            "no display to open the window on (DISPLAY/WAYLAND_DISPLAY not set): use the command-line "
            "subcommands (`s2desktop --help`), `s2desktop demo --headless`, or run under a desktop or xvfb-run"
        )
    from s2desktop.gui.app import main

    return main(getattr(args, "paths", []) or [])


# --- composite / info / thumbnail (raster commands) -----------------------------------------------------------


def _add_composite(sub) -> None:
    p = sub.add_parser(
        "composite",
        help="temporal composite (median by default): search + download a tile's scenes, or composite given files",
        description="Per pixel and band, the median of the valid observations (nodata 0 and masked pixels "
        "excluded; even count: mean of the two middle values rounded half up), or another rule (--method). "
        "Inputs of processing baseline >= 04.00 are harmonised to the pre-04.00 scale first. Output: a COG "
        "GeoTIFF of the --bands in their order (default B04,B03,B02: R,G,B), each named, uint16, nodata 0.",
    )
    t = p.add_argument_group("tile mode: search, download what is missing, composite")
    t.add_argument("--tile", metavar="TILE", help="Sentinel-2 tile id, e.g. 33UUP")
    t.add_argument("--start", metavar="YYYY-MM-DD", help="first date (inclusive)")
    t.add_argument("--end", metavar="YYYY-MM-DD", help="last date (inclusive)")
    t.add_argument("--max-cloud", type=float, metavar="PCT",
                   help="keep the scenes with at most this cloud cover, the limit included (0-100)")
    t.add_argument("--out-dir", default="./tmp", metavar="DIR", help="download folder (reused as a cache; "
                   "default ./tmp)")
    add_source_options(p)
    a = p.add_argument_group("area mode: a composite of an area on its own grid; from Cloud-Optimised GeoTIFFs "
                             "(--source cogs) only the windows under it are fetched, from JPEG 2000 sources "
                             "the tiles' files are downloaded (--out-dir) first")
    add_area_options(a)
    a.add_argument("--resolution", type=float, default=None, metavar="M",
                   help="output pixel size in metres (default: the finest the scenes have, 10 m on AWS; e.g. 80 "
                   "for a preview from overviews)")
    a.add_argument("--crs", metavar="EPSG:N", help="output CRS (default: the UTM zone of the area's centre)")
    a.add_argument("--cache-size", type=float, default=AREA_CACHE_LIMIT / (1 << 30), metavar="GB",
                   help="keep up to this much of the fetched windows for the next run over the area (default "
                   f"{AREA_CACHE_LIMIT / (1 << 30):g}; "
                   "0 keeps none)")
    f = p.add_argument_group("files mode: co-registered band files, one per date, same date order per band")
    f.add_argument("--red", nargs="+", metavar="FILE", help="B04 files")
    f.add_argument("--green", nargs="+", metavar="FILE", help="B03 files")
    f.add_argument("--blue", nargs="+", metavar="FILE", help="B02 files")
    p.add_argument("-o", "--output", required=True, metavar="OUT.tif", help="output COG GeoTIFF")
    p.add_argument("--workers", type=int, metavar="N", help="worker processes (default: all cores)")
    p.add_argument("--scheduler", metavar="tcp://HOST:PORT|local",
                   help="composite the windows on a Dask cluster: its scheduler's address (default: "
                   "$DASK_SCHEDULER_ADDRESS if set), or 'local' for a cluster of --workers processes on this "
                   "machine; needs pip install 's2desktop[dask]'")
    p.add_argument("--scale", type=int, default=1, choices=(1, 2, 4, 8),
                   help="reduced-resolution composite from JP2 resolution levels / overviews (default 1)")
    p.add_argument("--bands", metavar="BANDS", help="the bands to composite, in output order: names "
                   "(B01-B12, B8A; e.g. B08,B11,B12) or a preset: true-colour (B04,B03,B02, the default), "
                   "false-colour (B08,B04,B03), swir (B12,B8A,B04), all (every band of a Level-2A product, in "
                   "wavelength order: B01-B09, B8A after B08, B11, B12). 20 m and 60 m bands are upsampled to "
                   "the output grid by nearest neighbour. Tile and area modes")
    p.add_argument("--mask", default="auto", choices=("auto", "scl", "qi", "none"),
                   help="auto: an L2A scene's classification (SCL classes 0,1,3,8,9,10), else an L1C scene's own "
                   "cloud mask (opaque clouds, cirrus); scl or qi: only that one; none: unmasked")
    p.add_argument("--mask-classes", metavar="CLASSES",
                   help="the SCL classes masked, numbers or names, e.g. 3,8,9,10 or cloud-shadow,cloud-medium,"
                   "cloud-high,cirrus (default 0,1,3,8,9,10: no-data, saturated, cloud-shadow, cloud-medium, "
                   "cloud-high, cirrus; also dark, vegetation, not-vegetated, water, unclassified, snow)")
    p.add_argument("--mask-buffer", type=float, default=0.0, metavar="METRES",
                   help="also mask every pixel within this distance of a masked one (cloud edges; e.g. 20: two "
                   "pixels at 10 m; default 0)")
    p.add_argument("--method", default="median", metavar="RULE",
                   help="how a pixel's valid observations become one value: median (default); quantile:P, the "
                   "P-th percentile per band (P a whole percent, e.g. quantile:25: darker, less haze); medoid, "
                   "the observation nearest to all others (every band from one date); geomedian, the geometric "
                   "median across the bands (Weiszfeld, to half a DN or 50 steps)")
    p.add_argument("--date-band", nargs="?", const=True, metavar="PATH", help="with --method medoid: also write "
                   "each pixel's date (uint16 days since 1970-01-01, 0: none) to this GeoTIFF (default: "
                   "OUT_dates.tif beside the output)")
    p.add_argument("--count", metavar="PATH", help="where to write the number of valid observations per pixel "
                   "(uint8; default OUT_count.tif beside the output: always written)")
    p.add_argument("--from", dest="from_record", metavar="OUT.json", help="make a composite again from its "
                   "provenance record (written beside every composite as OUT.json): the same inputs, checked "
                   "unchanged first, the same rule and scale")
    p.add_argument("--offset", type=int, nargs="+", metavar="0|-1000",
                   help="radiometric offset when the scene metadata is unknown: one value, one per date or "
                   "one per file (red files, then green, then blue; a date's three alike)")
    p.add_argument("--compress", default="zstd", choices=("zstd", "deflate"),
                   help="output compression, with predictor 2 (default zstd: fast; deflate: for old readers)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.add_argument("--dry-run", action="store_true",
                   help="only print the plan: what it fetches (bytes, requests), its windows and tasks, the "
                   "memory per worker, and for a tile each file (the --bands and the scenes' cloud masks); nothing "
                   "is downloaded or written")


class _EventLine:
    """Progress events on stderr: one live line on a terminal (redrawn ~5 times a second), a plain line every
    few seconds (downloads) or every 10 % (composite) otherwise; messages of the other stages as they come."""

    def __init__(self, stream=None, interval: float | None = None, quiet: tuple[str, ...] = ()):
        from s2desktop.core.progress import Rate

        self.quiet = quiet  # stages whose messages are not shown
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.interval = interval if interval is not None else (0.2 if self.tty else 2.0)
        self.rate, self.stage = Rate(), None
        self.last_t, self.last_pct, self.live = 0.0, -1, False

    def __call__(self, event) -> None:
        import time

        if event.stage != self.stage:
            self.finish()
            self.stage, self.last_t, self.last_pct = event.stage, 0.0, -1
            self.rate = type(self.rate)()
        self.rate.update(event)
        if event.stage not in ("download", "fetch", "composite"):
            if event.message and event.stage not in self.quiet:
                self.say(event.message)
            return
        if event.stage in ("download", "fetch") and event.bytes_done <= self.rate.instant:
            if event.message:  # 'fetching 12 window(s), 40 MB': what is coming
                self.say(event.message)
            return  # nothing transferred yet (or only files already there): nothing to show
        now, pct = time.monotonic(), int(100 * event.fraction)
        end = event.items_total and event.items_done >= event.items_total
        due = now - self.last_t >= self.interval if (self.tty or event.stage != "composite") else \
            pct // 10 != self.last_pct // 10
        if due or end:
            self.last_t, self.last_pct = now, pct
            self.draw(self.line(event, pct))

    def line(self, ev, pct: int) -> str:
        from s2desktop.core.units import human_bytes, human_duration

        if ev.stage == "composite":
            what = ev.message if ev.message and ev.items_done >= ev.items_total else f"{ev.items_done}/{ev.items_total}"
            return f"composite: {what} ({pct}%)"
        left = self.rate.seconds_left()
        eta = "-" if left is None else human_duration(left)
        verb, items = ("fetching", "windows") if ev.stage == "fetch" else ("downloading", "files")
        return (f"{verb} {human_bytes(ev.bytes_done)} / {human_bytes(ev.bytes_total)}  {pct:3d}%  "
                f"{ev.items_done}/{ev.items_total} {items}  {human_bytes(self.rate.speed)}/s  ETA {eta}")

    def draw(self, text: str) -> None:
        if self.tty:
            print("\r" + text + "\x1b[K", end="", file=self.stream, flush=True)
            self.live = True
        else:
            print(text, file=self.stream, flush=True)

    def say(self, text: str) -> None:
        self.finish()
        print(text, file=self.stream, flush=True)

    def finish(self) -> None:
        if self.live:
            print(file=self.stream)
            self.live = False


def _tile_request(args: argparse.Namespace, *, out: str | None = None, what: str = "download folder",
                  **fields):
    """The job's request from the shared tile options; ``out`` (a download folder) is checked before any work,
    ``fields`` are the command's own Request fields (bands, composite, ...)."""
    from pathlib import Path

    from s2desktop.core.dates import parse_date
    from s2desktop.core.errors import InvalidInputError
    from s2desktop.core.fsutil import check_folder_creatable
    from s2desktop.core.pipeline import Request
    from s2desktop.core.tiles import parse_tile

    where = _area_of(args)
    if not (args.start and args.end):
        raise InvalidInputError(f"--{'tile' if where is None else 'bbox/--aoi'} needs --start and --end")
    start, end = parse_date(args.start, "--start"), parse_date(args.end, "--end")  # their order: the search's
    if out is not None:
        check_folder_creatable(out, what)
        fields["download_dir"] = Path(out)
    if where is not None:
        fields.update(area=where, resolution=getattr(args, "resolution", None), crs=getattr(args, "crs", None))
        if getattr(args, "cache_size", None) is not None:
            if not args.cache_size >= 0:
                raise InvalidInputError(f"--cache-size {args.cache_size:g}: give a size in GB, 0 or more")
            fields["cache_limit"] = int(args.cache_size * (1 << 30))
    return Request(source=source_spec(args), tile=parse_tile(args.tile) if where is None else None, start=start,
                   end=end, max_cloud=args.max_cloud, **fields)


def _area_of(args: argparse.Namespace):
    """The area of --bbox or --aoi, or None (a tile); one of --tile, --bbox, --aoi."""
    from s2desktop.core import areas
    from s2desktop.core.errors import InvalidInputError

    given = [o for o in ("tile", "bbox", "aoi") if getattr(args, o, None)]
    if len(given) > 1:
        raise InvalidInputError(f"give one of --tile, --bbox, --aoi (not --{' and --'.join(given)})")
    if getattr(args, "bbox", None):
        return areas.parse_bbox(args.bbox)
    if getattr(args, "aoi", None):
        return areas.read_aoi(args.aoi)
    if not getattr(args, "tile", None):
        raise InvalidInputError("give a tile (--tile) or an area (--bbox W,S,E,N or --aoi FILE)")
    return None


def _composite_dry_run(args: argparse.Namespace, options, bands, files_mode: bool) -> int:
    """Print what the composite would fetch and take, computed from its plan; for a tile, then each file of
    its --bands and the scenes' masks."""
    from s2desktop.core.compositing.estimate import estimate
    from s2desktop.core.compositing.plan import make_plan
    from s2desktop.core.pipeline import Job
    from s2desktop.core.stack import from_files

    files = None
    if files_mode:
        offsets = args.offset[0] if args.offset is not None and len(args.offset) == 1 else args.offset
        stack = from_files(args.red or [], args.green or [], args.blue or [], offsets=offsets, mask=args.mask)
        plan = make_plan(stack, options.output, workers=options.workers, scale=options.scale,
                         count_path=options.count_file, overwrite=True, compress=options.compress,
                         method=options.method, date_path=options.date_band)
        fetch, est = "fetch: nothing (local files)", estimate(plan)
    else:
        request = _tile_request(args, out=args.out_dir, composite=options, mask=args.mask,
                                **({"bands": bands} if bands else {}))
        job = Job(request, progress=_EventLine(quiet=("search",)))
        scenes = job.search()
        plan = job.plan(scenes) if request.area is None else None
        cost, est = job.estimate(scenes, plan)
        fetch = f"fetch: {cost.describe()}" + (f" in {cost.requests} request(s)" if cost.bytes else "")
        if plan is not None:
            files = (job, plan, request.download_dir)
    print("\n".join([f"plan of {options.output} (dry run: nothing fetched or written)", fetch, *est.lines()]))
    if files:
        _print_plan(*files)
    return 0


def _run_composite(args: argparse.Namespace) -> int:
    from pathlib import Path

    from s2desktop.core.compositing.cluster import check_scheduler, scheduler_from_env
    from s2desktop.core.errors import InvalidInputError
    from s2desktop.core.methods import parse_method
    from s2desktop.core.pipeline import CompositeOptions

    files_mode = bool(args.red or args.green or args.blue)
    scenes_mode = bool(args.tile or args.bbox or args.aoi)
    if sum((files_mode, scenes_mode, bool(args.from_record))) > 1:
        raise InvalidInputError("give one of --tile/--bbox/--aoi (with --start/--end), --red/--green/--blue "
                                "files, or --from OUT.json")
    if not files_mode and not scenes_mode and not args.from_record:
        raise InvalidInputError("no inputs: give --tile or an area (--bbox, --aoi) with --start/--end, "
                                "--red/--green/--blue files, or --from OUT.json")
    method = parse_method(args.method)
    bands = _composite_bands(args.bands, files_mode)
    if args.date_band is True:  # the flag alone: beside the output
        out = Path(args.output)
        args.date_band = str(out.with_name(f"{out.stem}_dates{out.suffix or '.tif'}"))
    if args.date_band and not method.picks_a_date:
        raise InvalidInputError(f"--date-band needs --method medoid: {method.label} mixes the dates of a pixel")
    options = CompositeOptions(output=args.output, scale=args.scale, workers=args.workers, count_path=args.count,
                               compress=args.compress, overwrite=args.overwrite, method=method,
                               date_band=args.date_band, command=tuple(getattr(args, "argv", ()) or ()) or None,
                               scheduler=check_scheduler(scheduler_from_env(args.scheduler)), **_mask_rules(args))
    if args.dry_run:
        return _composite_dry_run(args, options, bands, files_mode)
    _check_composite_outputs(options)  # before any download or decoding
    line = _EventLine()
    try:
        result = _composite_step(args, options, files_mode, line, bands)
    finally:
        line.finish()
    extra = [str(p) for p in (result.count_path, result.date_path) if p]
    print(f"wrote {result.path} ({result.width}x{result.height}, {result.dates} date(s), {result.method}, "
          f"{result.seconds:.1f} s)" + "".join(f" and {p}" for p in extra) + f"; its record {options.record_file}")
    return 0


def _print_plan(job, plan, out) -> None:
    """A dry run's plan: scenes, files and what they cost, then one line per file."""
    print(f"{len(plan.scenes)} scene(s), {len(plan.tasks)} file(s) from {job.source.describe()} -> {out}\n"
          f"to download: {job.cost(plan).describe()}")
    for t in plan.tasks:
        print(f"  {t.key}  {t.size or 0:>12,d} B  -> {t.dest}")


def _composite_bands(text: str | None, files_mode: bool) -> tuple[str, ...] | None:
    """--bands as names, checked before any work (None: the default, true colour)."""
    from s2desktop.core.bands import TRUE_COLOUR, parse_bands
    from s2desktop.core.errors import InvalidInputError

    if text is None:
        return None
    bands = parse_bands(text)
    if files_mode and bands != TRUE_COLOUR:
        raise InvalidInputError(f"--bands {text}: files mode composites the --red, --green and --blue files "
                                "(B04, B03, B02); other bands come with --tile or an area")
    return bands


def _mask_rules(args: argparse.Namespace) -> dict:
    """CompositeOptions' mask_classes and mask_buffer from --mask-classes and --mask-buffer, checked against
    --mask (which mask is used: the request's one field)."""
    from s2desktop.core import maskrules
    from s2desktop.core.errors import InvalidInputError

    rules = {"mask_buffer": maskrules.check_buffer(args.mask_buffer)}
    if args.mask_classes is not None:
        if args.mask not in ("auto", "scl"):
            raise InvalidInputError(f"--mask-classes picks scene-classification (SCL) classes: not with --mask "
                                    f"{args.mask} (use --mask auto or scl)")
        rules["mask_classes"] = maskrules.parse_classes(args.mask_classes)
    if rules["mask_buffer"] and args.mask == "none":
        raise InvalidInputError("--mask-buffer grows the masked area: not with --mask none")
    return rules


def _check_composite_outputs(options) -> None:
    """Every file the composite writes may be written: the output, its count, date band and record."""
    from s2desktop.core.fsutil import check_output_file

    check_output_file(options.output, overwrite=options.overwrite, hint=OVERWRITE_HINT)
    check_output_file(options.count_file, overwrite=options.overwrite, what="count output", hint=OVERWRITE_HINT)
    if options.date_band:
        check_output_file(options.date_band, overwrite=options.overwrite, what="date band output",
                          hint=OVERWRITE_HINT)
    check_output_file(options.record_file, overwrite=options.overwrite, what="provenance record",
                      hint=OVERWRITE_HINT)


def _composite_step(args: argparse.Namespace, options, files_mode: bool, line, bands=None):
    """The composite of a record (--from), of loose files, or the job of a tile or an area."""
    from s2desktop.core.pipeline import Job, rerun, run_composite
    from s2desktop.core.stack import from_files

    if args.from_record:
        return rerun(args.from_record, options, progress=line)
    if files_mode:
        offsets = args.offset[0] if args.offset is not None and len(args.offset) == 1 else args.offset
        stack = from_files(args.red or [], args.green or [], args.blue or [], offsets=offsets, mask=args.mask)
        return run_composite(stack, options, progress=line)
    request = _tile_request(args, out=args.out_dir, composite=options, mask=args.mask,
                            **({"bands": bands} if bands else {}))
    return Job(request, progress=line).run().composite


def _add_explain(sub) -> None:
    p = sub.add_parser("explain", help="why a composite's pixel has its value: every date there and its fate",
                       description="Read one pixel of each of a composite's inputs (from its provenance record "
                       "OUT.json) as the compositor read it and say, per date, its values (as read and after the "
                       "baseline offset) and whether it was used or why not: nodata, masked (with the class), "
                       "outside the scene's footprint or the area.")
    p.add_argument("composite", metavar="COMPOSITE.tif", help="a composite written by s2desktop (its OUT.json "
                   "beside it)")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--lonlat", metavar="LON,LAT", help="the pixel at a longitude, latitude in degrees")
    where.add_argument("--xy", metavar="X,Y", help="the pixel at x, y in the composite's CRS")
    where.add_argument("--pixel", metavar="ROW,COL", help="the pixel at a row, column (from 0)")
    p.add_argument("--json", action="store_true", help="machine-readable JSON")


def _pair(text: str, option: str, kind=float) -> tuple:
    from s2desktop.core.errors import InvalidInputError

    try:
        a, b = (kind(v) for v in text.split(","))
    except ValueError:
        raise InvalidInputError(f"{option} {text!r} is not two numbers A,B") from None
    return a, b


def _run_explain(args: argparse.Namespace) -> int:
    import json

    from s2desktop.core.explain import explain

    where = {"lonlat": _pair(args.lonlat, "--lonlat") if args.lonlat else None,
             "xy": _pair(args.xy, "--xy") if args.xy else None,
             "pixel": _pair(args.pixel, "--pixel", int) if args.pixel else None}
    why = explain(args.composite, **where)
    if args.json:
        print(json.dumps(why.to_dict(), indent=2))
        return 0
    print(_explain_table(why))
    return 0


def _explain_table(why) -> str:
    """A composite's pixel, then one line per date: values as read, after the offset, and its fate."""
    bands = ",".join(why.bands)
    lines = [f"{why.composite} row {why.row} col {why.col} (x {why.x:.1f}, y {why.y:.1f} {why.crs}; "
             f"lon {why.lon:.6f}, lat {why.lat:.6f})",
             f"{why.rule} of {why.used} date(s): {bands} = {', '.join(map(str, why.value))}"
             + (f"; count layer {why.count}" if why.count is not None else "")
             + (f"; chosen date {why.chosen_date}" if why.chosen_date else ""),
             f"{'date':10}  {'baseline':8}  {'raw ' + bands:>20}  {'used as':>17}  reason"]
    if why.recomputed != why.value:
        lines.insert(2, f"the rule on the used dates gives {', '.join(map(str, why.recomputed))}, not the composite's: "
                        "its inputs changed since it was made?")
    for d in why.dates:
        fate = "+".join(d.reason.names) + (f" ({d.mask} {d.mask_value}: {d.mask_class})" if
                                           "MASKED" in d.reason.names else "") + (" <- chosen" if d.chosen else "")
        lines.append(f"{d.date:10}  {d.baseline or '-':8}  {','.join(map(str, d.raw)):>20}  "
                     f"{','.join(map(str, d.values)):>17}  {fate}")
    return "\n".join(lines)


def _add_info(sub) -> None:
    p = sub.add_parser("info", help="attributes of a raster (any format GDAL opens)")
    p.add_argument("file", metavar="FILE", help="a raster: GeoTIFF, JPEG 2000, or anything GDAL opens")
    p.add_argument("--json", action="store_true", help="machine-readable JSON")


def _run_info(args: argparse.Namespace) -> int:
    import json

    from s2desktop.core.rasterinfo import raster_info

    info = raster_info(args.file)
    if args.json:
        print(json.dumps(_json_safe(info.to_dict()), indent=2, allow_nan=False))
    else:
        print(info.summary())
    return 0


def _json_safe(value):
    """NaN / infinite floats (a float raster's nodata) as the strings 'nan', 'inf', '-inf': JSON has no NaN."""
    import math

    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def _add_thumbnail(sub) -> None:
    p = sub.add_parser("thumbnail", help="PNG thumbnail of a raster from a decimated read")
    p.add_argument("file", metavar="FILE", help="a raster: GeoTIFF, JPEG 2000, or anything GDAL opens")
    p.add_argument("--size", type=int, default=200, help="longest side in pixels (default 200)")
    p.add_argument("-o", "--output", required=True, metavar="OUT.png", help="the PNG to write")
    p.add_argument("--stretch", default="auto", choices=("auto", "percentile", "minmax", "truecolor", "classes"),
                   help="percentile: 2-98%% cut per band; truecolor: reflectance x 2.5; classes: an L2A scene "
                        "classification (SCL) in its class colours; auto (default): classes for an SCL, else "
                        "percentile")
    p.add_argument("--bands", metavar="1,2,3", help="1-based band indexes: three for RGB, one for grey")
    p.add_argument("--overwrite", action="store_true", help="replace an existing PNG")


def _run_thumbnail(args: argparse.Namespace) -> int:
    from s2desktop.core.errors import InvalidInputError
    from s2desktop.core.fsutil import check_output_file
    from s2desktop.core.render import save_png, thumbnail

    bands = None
    if args.bands:
        try:
            bands = [int(b) for b in args.bands.split(",") if b.strip()]
        except ValueError:
            raise InvalidInputError(f"--bands {args.bands!r} is not a list like 1,2,3") from None
    check_output_file(args.output, overwrite=args.overwrite, hint=OVERWRITE_HINT)
    rgba = thumbnail(args.file, args.size, args.stretch, bands)
    save_png(rgba, args.output)
    print(f"wrote {args.output} ({rgba.shape[1]}x{rgba.shape[0]})")
    return 0


# --- search / download (S3 sources) ------------------------------------------------------------------------


def _add_scene_query(p, areas: bool = False) -> None:
    p.add_argument("--tile", required=not areas, help="tile id, e.g. 33UUP or T33UUP"
                   + (" (or an area: --bbox, --aoi)" if areas else ""))
    if areas:
        add_area_options(p)
    p.add_argument("--start", required=True, metavar="YYYY-MM-DD", help="first date (inclusive)")
    p.add_argument("--end", required=True, metavar="YYYY-MM-DD", help="last date (inclusive)")
    p.add_argument("--max-cloud", type=float, metavar="PCT",
                   help="keep the scenes with at most this cloud cover, the limit included (%%)")
    add_source_options(p)


def _add_search(sub) -> None:
    p = sub.add_parser("search", help="list the acquisitions of a tile in a date range",
                       description="List every acquisition (date + sequence) of a tile between two dates.")
    _add_scene_query(p, areas=True)
    p.add_argument("--json", action="store_true", help="print a JSON list instead of a table")


def _search_scenes(args: argparse.Namespace):
    from s2desktop.core.pipeline import Job

    job = Job(_tile_request(args))
    scenes = job.search()
    if not scenes:
        cloud = f" with cloud cover <= {args.max_cloud:g}%" if args.max_cloud is not None else ""
        where = job.request.tile or job.request.area.name
        print(f"s2desktop: no scenes of {where} between {args.start} and {args.end}{cloud} in "
              f"{job.source.describe()}", file=sys.stderr)
    return scenes


def _fmt_pct(value) -> str:
    return "   -" if value is None else f"{value:5.1f}"


def _run_search(args: argparse.Namespace) -> int:
    import json

    scenes = _search_scenes(args)
    if args.json:
        print(json.dumps([s.to_dict() for s in scenes], indent=2))
        return 0
    if not scenes:
        return 0
    print(f"{'date':10}  {'seq':>3}  {'cloud%':>6}  {'cover%':>6}  {'baseline':8}  prefix")
    for s in scenes:
        print(f"{s.date.isoformat():10}  {s.sequence:>3}  {_fmt_pct(s.cloud_cover):>6}  "
              f"{_fmt_pct(s.data_coverage):>6}  {s.baseline or '-':8}  {s.prefix}")
    print(f"{len(scenes)} scene(s)", file=sys.stderr)
    return 0


def _add_download(sub) -> None:
    p = sub.add_parser("download", help="download band files of a tile's scenes (verified, resumable)",
                       description="Download band files into blue/ (B02), green/ (B03), red/ (B04) and <band>/, "
                       "with the scenes' metadata in metadata/. Files already present and verified are skipped.")
    _add_scene_query(p)
    p.add_argument("--bands", default="B02,B03,B04", help="comma-separated bands (B01-B12, B8A, TCI, SCL, AOT, "
                   "WVP) or a preset: true-colour, false-colour, swir, all (default: B02,B03,B04)")
    p.add_argument("--out-dir", "--out", dest="out_dir", default="./tmp", metavar="DIR",
                   help="download folder (default: ./tmp); --out is the same")
    p.add_argument("--workers", type=int, metavar="N", help="files downloaded at once (default: 4)")
    p.add_argument("--dry-run", action="store_true",
                   help="only print the plan (files, bytes) and, for requester-pays buckets, what it will cost")


def _run_download(args: argparse.Namespace) -> int:
    import time

    from s2desktop.core.download import parse_bands
    from s2desktop.core.errors import InvalidInputError
    from s2desktop.core.pipeline import Job

    if args.workers is not None and args.workers < 1:
        raise InvalidInputError(f"--workers {args.workers} must be 1 or more")
    bands = tuple(parse_bands(args.bands))  # checked before the search
    line = _EventLine(quiet=("search",))
    # `download` fetches exactly the bands it is given: no masks added
    request = _tile_request(args, out=args.out_dir, what="output folder", bands=bands, mask="none",
                            download_workers=args.workers)
    job = Job(request, progress=line)
    scenes = job.search()
    if not scenes:
        print(f"s2desktop: no scenes of {args.tile} between {args.start} and {args.end} in "
              f"{job.source.describe()}", file=sys.stderr)
        return 0
    plan = job.plan(scenes)
    what = f"{len(scenes)} scene(s), {len(plan.tasks)} file(s) from {job.source.describe()}"
    if args.dry_run:
        _print_plan(job, plan, request.download_dir)
        return 0
    t0 = time.monotonic()
    try:
        results = job.download(plan)
    finally:
        line.finish()
    print(_download_summary(what, results, request.download_dir, time.monotonic() - t0), file=sys.stderr)
    return 0


def _download_summary(what: str, results, out, seconds: float) -> str:
    """One line: what came down (bytes, time, speed), what was already there, where; and unverified files."""
    from s2desktop.core.download import UNVERIFIED
    from s2desktop.core.units import human_bytes, human_duration

    got = [r for r in results if r.status == "downloaded"]
    if not got:
        text = f"{what}: all already present and verified in {out}"
    else:
        size = sum(r.bytes_transferred for r in got)
        text = (f"{what}: downloaded {len(got)} file(s), {human_bytes(size)} in {human_duration(seconds)} "
                f"({human_bytes(size / max(seconds, 1e-3))}/s)"
                + (f"; {len(results) - len(got)} already present and verified" if len(results) > len(got) else "")
                + f"; files in {out}")
    unverified = [r.path.name for r in results if r.verified == UNVERIFIED]
    if unverified:
        text += (f"\ns2desktop: warning: {len(unverified)} file(s) checked by size only -- the server gave nothing "
                 f"to check their content against (two downloads agreed): {', '.join(unverified)}")
    return text


# --- demo ----------------------------------------------------------------------------------------------------


def _add_demo(sub) -> None:
    p = sub.add_parser(
        "demo",
        help="the built-in offline demo: the window on the demo archive, or the whole pipeline headless",
        description="Generate the built-in demo archive on first use (10 cloudy dates of tile 29RKH in the L1C "
        "bucket layout, no network needed) and open the window on it with the tile and dates filled in. "
        "With no display (no DISPLAY/WAYLAND_DISPLAY, QT_QPA_PLATFORM=offscreen) or --headless, run search -> "
        "download -> composite -> PNG instead and print where the outputs are.",
    )
    p.add_argument("--headless", action="store_true", help="run the pipeline without a window")
    p.add_argument("--out", metavar="DIR", default="s2desktop-demo",
                   help="headless output folder (default: ./s2desktop-demo)")
    p.add_argument("--workers", type=int, metavar="N", help="composite processes (default: all cores)")
    p.add_argument("--json", action="store_true", help="headless: print the summary as JSON on stdout")


def _has_display() -> bool:
    import os

    if os.environ.get("QT_QPA_PLATFORM", "").split(":")[0] in ("offscreen", "minimal"):
        return False
    if sys.platform.startswith("linux") or "bsd" in sys.platform:
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True  # Windows and macOS always have one


def _run_demo(args: argparse.Namespace) -> int:
    if args.headless or not _has_display():
        from s2desktop.headless_demo import run_headless_demo

        if not args.headless:
            print("no display: running the demo headless (use `s2desktop demo` on a desktop for the window)",
                  file=sys.stderr)
        stream = sys.stderr if args.json else sys.stdout
        line = _EventLine(stream)
        try:
            summary = run_headless_demo(args.out, progress=line, workers=args.workers)
        finally:
            line.finish()
        if args.json:
            import json

            print(json.dumps(summary, indent=2))
            return 0
        for s in summary["scenes"]:
            print(f"  {s['date']}  baseline {s['baseline']}  cloud {s['cloud_cover']:5.1f} %  "
                  f"coverage {s['data_coverage']:5.1f} %")
        print(f"\noutputs in {summary['out_dir']}:\n  {summary['composite']}\n  {summary['png']}\n"
              f"  {summary['cloudiest_png']}  (the cloudiest input date, for comparison)")
        return 0

    # the window fills in the demo source, tile and dates, generates the archive on a worker if needed (with
    # its progress in the status bar) and searches
    from s2desktop.gui.app import main

    return main(demo=True)


# --- parser and entry point ----------------------------------------------------------------------------------

# Subcommands in the order `--help` lists them. Add a pair above and a line here.
_COMMANDS: list[tuple[str, Callable, Callable]] = [
    ("gui", _add_gui, _run_gui),
    ("search", _add_search, _run_search),
    ("download", _add_download, _run_download),
    ("composite", _add_composite, _run_composite),
    ("explain", _add_explain, _run_explain),
    ("info", _add_info, _run_info),
    ("thumbnail", _add_thumbnail, _run_thumbnail),
    ("demo", _add_demo, _run_demo),
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="s2desktop",
        description="Search, download, composite and view Sentinel-2 imagery.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"s2desktop {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", help="what to do (none: open the window)")
    for _name, add, _run in _COMMANDS:
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    previous = interrupt.install()  # Ctrl-C is ours while the command runs (see s2desktop.interrupt)
    try:
        return _run_command(argv)
    finally:
        interrupt.restore(previous)


def _run_command(argv: list[str] | None) -> int:
    parser = build_parser()
    given = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(glue_negative_values(given))
    args.argv = ("s2desktop", *given)  # for the provenance record of what it writes
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    from s2desktop.core.redact import RedactSecrets, redact

    for handler in logging.getLogger().handlers:  # botocore's debug log prints keys, tokens and signatures
        handler.addFilter(RedactSecrets())
    runners = {name: run for name, _add, run in _COMMANDS}
    run = runners[args.command or "gui"]
    interrupt.arm()
    try:
        return run(args) or 0
    except KeyboardInterrupt:
        print("s2desktop: cancelled", file=sys.stderr)
        return EXIT_CANCELLED
    except S2Error as exc:
        if args.debug:  # the traceback too; the exit status stays that of an error
            import traceback

            print(redact(traceback.format_exc()).rstrip(), file=sys.stderr)
        print(f"s2desktop: error: {redact(str(exc))}", file=sys.stderr)
        return EXIT_ERROR
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
