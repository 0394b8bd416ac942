"""odc-stac's leg of bench_area.py: ``odc.stac.load`` of B02, B03, B04 and SCL + the masked median, as a user of
odc-stac would write it, in a process of its own (bench_area.py times it from start to exit through its proxy).

    python tests/benchmarks/bench_area_odc.py --items http://HOST:PORT/bucket/search.json --crs EPSG:32633 \\
        --transform a,b,c,d,e,f --shape H,W --config threads-32 --endpoint HOST:PORT -o out.tif

The items: a FeatureCollection fetched from ``--items`` (a STAC API search's page, over the same link) of pystac
Items in earth-search's shape: assets blue/green/red/scl with ``s3://`` hrefs, the projection extension (epsg,
shape, transform) so odc-stac plans without opening a header; read by GDAL's /vsis3/ at ``--endpoint`` (host:port,
plain HTTP, path-style: AWS_HTTPS=NO, AWS_VIRTUAL_HOSTING=FALSE) with the credentials of the environment
(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION), given to odc-stac's ``configure_rio(aws=...)``. The grid:
the s2desktop leg's output grid (CRS, transform, shape), so the two outputs can be compared pixel by pixel.

The computation is s2desktop's: per date, a pixel is valid where B02, B03 and B04 are not 0 (nodata) and the SCL
is not one of classes 0, 1, 3, 8, 9, 10; a date of processing baseline >= 04.00 has its DNs shifted by -1000
(at least 1), as s2desktop harmonises them; the median of each pixel's valid dates (for an even count the mean
of the two middle values, rounded half up), 0 where none is valid; written as R, G, B (B04, B03, B02) uint16 by
odc-geo's ``write_cog`` (DEFLATE, its overviews). Acquisitions seen in two tiles are fused by odc-stac
(``groupby="solar_day"``: the first item with data, in the order given).

It prints the seconds of its phases (``phases: imports .. search .. load .. median .. write ..``): with a Dask
configuration the load only builds the graph and the reads happen in the median's compute.

``--config``: how odc-stac loads (CONFIGS): a thread pool of N (``pool=N``, no Dask), or Dask chunks of N px on
Dask's threaded scheduler. GDAL's options (GDAL_OPTIONS) are odc-stac's ``cloud_defaults`` plus the documented
settings for COGs on S3 (no directory listings, consecutive ranges merged, HTTP/2 multiplexing where the server
has it -- the proxy speaks HTTP/1.1 --, the VSI cache, which odc-stac itself turns off around its pixel reads, a
512 MB block cache).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.request
import warnings

MASKED = (0, 1, 3, 8, 9, 10)  # s2desktop's default SCL classes: no data, saturated, shadow, cloud med/high, cirrus
BANDS = ("red", "green", "blue")  # the output's order: B04, B03, B02
# s2desktop's resampling: reflectance bilinear where the grids do not align (an overview of an odd size is not a
# whole multiple of the pixel: the 80 m preview), SCL nearest; odc-stac copies pixels of grids that align unchanged
# whatever the resampling (its "paste" read), as s2desktop does
RESAMPLING = {"red": "bilinear", "green": "bilinear", "blue": "bilinear", "scl": "nearest"}
CONFIGS = {
    "threads-8": {"pool": 8},
    "threads-16": {"pool": 16},
    "threads-32": {"pool": 32},
    "dask-1024": {"chunks": 1024, "threads": 16},
    "dask-2048": {"chunks": 2048, "threads": 16},
}
GDAL_OPTIONS = {
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
    "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".tif",
    "GDAL_HTTP_MERGE_CONSECUTIVE_RANGES": "YES",
    "GDAL_HTTP_MULTIPLEX": "YES",
    "VSI_CACHE": "TRUE",
    "VSI_CACHE_SIZE": str(64 << 20),
    "GDAL_CACHEMAX": 512 << 20,  # rasterio: an int is bytes
}


def offset_of(baseline: str | None) -> int:
    """s2desktop's rule: baseline 04.00 and later carry BOA_ADD_OFFSET -1000."""
    if not baseline:
        return 0
    major, minor = (int(p) for p in baseline.split(".")[:2])
    return -1000 if (major, minor) >= (4, 0) else 0


def load(items, geobox, config: str, endpoint: str):
    """The items' B02/B03/B04/SCL on ``geobox`` (a lazy Dataset for a Dask config, else loaded), one plane per
    solar day."""
    import odc.stac

    aws = {"aws_access_key_id": os.environ["AWS_ACCESS_KEY_ID"], "region_name": os.environ["AWS_REGION"],
           "aws_secret_access_key": os.environ["AWS_SECRET_ACCESS_KEY"], "endpoint_url": endpoint}
    odc.stac.configure_rio(cloud_defaults=True, aws=aws, AWS_HTTPS="NO", AWS_VIRTUAL_HOSTING="FALSE",
                           **GDAL_OPTIONS)
    cfg = CONFIGS[config]
    kw = {"chunks": {"x": cfg["chunks"], "y": cfg["chunks"]}} if "chunks" in cfg else {"pool": cfg["pool"]}
    return odc.stac.load(items, bands=[*BANDS, "scl"], geobox=geobox, groupby="solar_day",
                         preserve_original_order=True, resampling=RESAMPLING, **kw)


def masked_median(ds, offsets):
    """(band, y, x) uint16: per band the median of the valid, harmonised DNs over time (module docstring)."""
    import numpy as np
    import xarray as xr

    valid = ~ds.scl.isin(MASKED)
    for b in BANDS:
        valid &= ds[b] > 0
    shift = xr.DataArray(np.asarray(offsets, np.float32), dims="time", coords={"time": ds.time})
    out = []
    for b in BANDS:
        dn = ds[b].astype(np.float32)
        dn = xr.where(shift < 0, np.maximum(dn + shift, 1), dn)
        if ds[b].chunks:
            dn = dn.chunk(time=-1)  # a median over time needs all dates in one chunk
        med = dn.where(valid).median("time", skipna=True)
        out.append(np.floor(med + 0.5).fillna(0).astype(np.uint16))
    return xr.concat(out, "band")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", required=True, help="the URL of a FeatureCollection of STAC items")
    ap.add_argument("--crs", required=True)
    ap.add_argument("--transform", required=True, help="a,b,c,d,e,f of the output grid")
    ap.add_argument("--shape", required=True, help="H,W of the output grid")
    ap.add_argument("--config", choices=CONFIGS, default="threads-32")
    ap.add_argument("--endpoint", required=True, help="the S3 server's host:port (plain HTTP)")
    ap.add_argument("-o", "--output", required=True)
    args = ap.parse_args(argv)
    t0 = time.perf_counter()

    import dask
    import odc.stac  # noqa: F401  (its import is a phase of its own, not the load's)
    import pystac
    from affine import Affine
    from odc.geo.geobox import GeoBox

    phases = {"imports": time.perf_counter() - t0}
    with urllib.request.urlopen(args.items) as reply:  # a STAC API search's page, over the same link
        items = [pystac.Item.from_dict(d) for d in json.load(reply)["features"]]
    shape = tuple(int(v) for v in args.shape.split(","))
    geobox = GeoBox(shape, Affine(*(float(v) for v in args.transform.split(","))), args.crs)
    phases["search"] = time.perf_counter() - t0 - sum(phases.values())
    ds = load(items, geobox, args.config, args.endpoint)
    phases["load"] = time.perf_counter() - t0 - sum(phases.values())
    by_day = {it.datetime.date(): offset_of(it.properties.get("s2:processing_baseline")) for it in items}
    offsets = [by_day[t.astype("datetime64[D]").item()] for t in ds.time.values]
    rgb = masked_median(ds, offsets)
    with warnings.catch_warnings(), dask.config.set(scheduler="threads",
                                                    num_workers=CONFIGS[args.config].get("threads")):
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices: pixels with no valid date
        rgb = rgb.compute()
    phases["median"] = time.perf_counter() - t0 - sum(phases.values())
    rgb.odc.write_cog(args.output, overwrite=True, nodata=0, compress="deflate")
    phases["write"] = time.perf_counter() - t0 - sum(phases.values())
    print("phases: " + " ".join(f"{k} {v:.2f}" for k, v in phases.items()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
