"""Setup the core tests share (fixtures live in tests/fixtures_*.py; these are plain functions)."""

from __future__ import annotations

from pathlib import Path

from s2desktop.core.sources import resolve_source


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
