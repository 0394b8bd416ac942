"""Setup the core tests share (fixtures live in tests/fixtures_*.py; these are plain functions)."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import boto3.s3.transfer
import numpy as np

from s2desktop.core.sources import resolve_source

MiB = 1 << 20
BANDS = ("B04", "B03", "B02")


def s3_source(seeded, name: str = "l1c", **kw):
    """A source on the test S3 server (``bucket=`` for a scratch bucket)."""
    return resolve_source(name, endpoint_url=seeded.endpoint, **kw)


def put_objects(seeded, bucket: str, objects: dict[str, bytes]) -> None:
    client = seeded.client()
    for key, body in objects.items():
        client.put_object(Bucket=bucket, Key=key, Body=body)


def files_under(folder: Path) -> list[str]:
    """Every file below ``folder`` as sorted POSIX paths relative to it."""
    return sorted(p.relative_to(folder).as_posix() for p in Path(folder).rglob("*") if p.is_file())


# --- L1C scenes of random bytes in a bucket (downloads do not care what the bytes are) --------------------


def l1c_prefix(day: int) -> str:
    return f"tiles/33/U/UP/2023/7/{day}/0/"


def seed_l1c_scenes(client, bucket: str, days=(1, 2), size: int = 1536 * 1024, seed: int = 0,
                    preview: bool = False) -> dict:
    """L1C scenes of three random bands (and tileInfo.json, optionally preview.jpg) -> {key: bytes}."""
    rng = np.random.default_rng(seed)
    objects = {}
    for day in days:
        prefix = l1c_prefix(day)
        info = {"path": prefix.rstrip("/"), "productName": f"S2B_MSIL1C_202307{day:02d}T100559_N0509_R022_T33UUP_x",
                "cloudyPixelPercentage": 1.0 + day, "dataCoveragePercentage": 100.0}
        objects[prefix + "tileInfo.json"] = json.dumps(info).encode()
        if preview:
            objects[prefix + "preview.jpg"] = b"\xff\xd8\xff" + rng.integers(0, 256, 20_000, dtype=np.uint8).tobytes()
        for band in BANDS:
            objects[prefix + f"{band}.jp2"] = rng.integers(0, 256, size, dtype=np.uint8).tobytes()
    for key, body in objects.items():
        client.put_object(Bucket=bucket, Key=key, Body=body)
    return objects


def put_multipart(client, bucket: str, key: str, body: bytes, part_size: int) -> str:
    cfg = boto3.s3.transfer.TransferConfig(multipart_threshold=part_size, multipart_chunksize=part_size)
    client.upload_fileobj(io.BytesIO(body), bucket, key, Config=cfg)
    etag = client.head_object(Bucket=bucket, Key=key)["ETag"].strip('"')
    assert re.fullmatch(rf"[0-9a-f]{{32}}-{-(-len(body) // part_size)}", etag), etag
    return etag


def seed_scene_with_b04(client, bucket: str, b04: bytes, part_size: int | None = None, **put) -> dict:
    """Scene 2023-07-01 with small B03/B02 and ``b04`` as its B04 (multipart when ``part_size``)."""
    objects = seed_l1c_scenes(client, bucket, days=(1,), size=256 * 1024)
    key = l1c_prefix(1) + "B04.jp2"
    objects[key] = b04
    if part_size:
        put_multipart(client, bucket, key, b04, part_size)
    else:
        client.put_object(Bucket=bucket, Key=key, Body=b04, **put)
    return objects


def constant_cog_scene(root: Path, tile: str, date, value: int, n: int = 60, texture: int = 0,
                       layout: str = "cogs") -> None:
    """A scene of ``tile`` in the sentinel-cogs layout (or ``layout``) under ``root`` whose three bands are
    ``value`` everywhere (``n`` px over the tile's real footprint), plus ``texture`` times a pattern of 0..96
    that differs from one pixel to the next (so a resampled pixel is not its source's)."""
    from affine import Affine

    from s2desktop.core import archive, tiles

    f = tiles.footprint(tile)
    transform = Affine(109800 / n, 0, f.utm_bounds[0], 0, -109800 / n, f.utm_bounds[3])
    rows, cols = np.mgrid[0:n, 0:n]
    pattern = (value + texture * ((rows * 7 + cols * 3) % 97)).astype(np.uint16)
    bands = {b: pattern.copy() for b in ("B02", "B03", "B04")}
    archive.write_scene(root, layout, tile, date, 0, bands, crs=f.epsg, transform=transform, baseline="02.09",
                        cloud_cover=1.0, data_coverage=100.0)


def upload_public(seeded, bucket: str, root: Path) -> None:
    """Every file under ``root`` into ``bucket``, world-readable (as the free COG bucket is)."""
    from concurrent.futures import ThreadPoolExecutor

    from tests.fixtures_s3 import _upload_tree

    with ThreadPoolExecutor(4) as pool:
        _upload_tree(seeded.client(), bucket, root, pool, public=True)
