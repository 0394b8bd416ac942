"""The one job, against the real S3 test server: search -> plan (bands + SCL masks) -> download -> composite."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest
import rasterio

from s2desktop.core.errors import CancelledError, InvalidInputError, NotFoundError
from s2desktop.core.pipeline import CompositeOptions, Job, Request, SourceSpec
from s2desktop.core.progress import CancelToken, Progress

JULY = dict(tile="33UUP", start=dt.date(2023, 7, 1), end=dt.date(2023, 7, 31))


def _request(seeded, layout: str, tmp_path: Path, **kw) -> Request:
    return Request(source=SourceSpec(layout, endpoint_url=seeded.endpoint), download_dir=tmp_path / "dl", **JULY,
                   **kw)


@pytest.mark.parametrize("layout, masks", [("l1c", 0), ("l2a", 3), ("cogs", 3)])
def test_plan_fetches_the_scene_classification_where_there_is_one(seeded_s3, tmp_path, layout, masks):
    job = Job(_request(seeded_s3, layout, tmp_path))
    plan = job.plan()
    bands = [t.band for t in plan.tasks]
    assert bands.count("B04") == bands.count("B03") == bands.count("B02") == len(plan.scenes)
    assert bands.count("SCL") == masks and plan.mask
    assert all(Path(t.dest).parent.name == "SCL" for t in plan.tasks if t.band == "SCL")
    assert plan.bytes_total == sum(t.size for t in plan.tasks) > 0  # from the listing, before any download
    nomask = Job(_request(seeded_s3, layout, tmp_path, mask="none", composite=CompositeOptions("x.tif")))
    assert "SCL" not in [t.band for t in nomask.plan().tasks]


def test_inputs_leave_out_a_scene_whose_band_is_missing(seeded_s3, tmp_path):
    job = Job(_request(seeded_s3, "l2a", tmp_path))
    plan = job.plan()
    with pytest.raises(NotFoundError, match="none of the scenes"):
        plan.inputs()
    job.download(plan)
    full = plan.inputs()
    assert len(full.observations) == len(plan.scenes) == full.masked == 3
    assert full.dates == tuple(s.date.isoformat() for s in plan.scenes)
    assert all(o.tiles == ("33UUP",) and o.baseline == s.baseline and o.footprint == s.data_geometry
               for o, s in zip(full.observations, plan.scenes))  # the scenes' facts, not read back from files
    Path(full.paths("B03")[1]).unlink()  # e.g. a file the user cancelled in the window
    part = plan.inputs()
    assert part.observations == (full.observations[0], full.observations[2])


def test_the_job_runs_every_step_and_masks_clouds(seeded_s3, tmp_path):
    events: list[Progress] = []
    out = tmp_path / "c.tif"
    job = Job(_request(seeded_s3, "l2a", tmp_path, composite=CompositeOptions(str(out), workers=0)),
              progress=events.append)
    result = job.run()
    assert len(result.scenes) == 3 and len(result.downloads) == 9 + 3
    stages = [e.stage for e in events]
    assert sorted(set(stages), key=stages.index) == ["search", "download", "composite"]
    downloads = [e for e in events if e.stage == "download"]
    planned = sum(r.size for r in result.downloads)
    assert {e.bytes_total for e in downloads} == {planned}  # the total is known from the first event
    assert downloads[-1].bytes_done == planned and downloads[-1].items_done == 12
    assert [e.bytes_done for e in downloads] == sorted(e.bytes_done for e in downloads)
    with rasterio.open(out) as ds:
        tags = ds.tags()
        masked = ds.read()
    assert tags["MASK"].startswith("SCL classes") and "on 3 date(s)" in tags["MASK"]
    unmasked = Job(_request(seeded_s3, "l2a", tmp_path, mask="none", composite=CompositeOptions(
        str(tmp_path / "u.tif"), workers=0))).run()
    with rasterio.open(unmasked.composite.path) as ds:
        assert not np.array_equal(ds.read(), masked)  # the masks changed pixels


def test_cancel_stops_the_job_before_the_next_step(seeded_s3, tmp_path):
    token = CancelToken()

    def cancel_after_search(event: Progress) -> None:
        if event.stage == "search" and event.items_total:
            token.set()

    job = Job(_request(seeded_s3, "l1c", tmp_path, composite=CompositeOptions(str(tmp_path / "c.tif"))),
              progress=cancel_after_search, cancel=token)
    with pytest.raises(CancelledError):
        job.run()
    assert not (tmp_path / "dl").exists() and not (tmp_path / "c.tif").exists()


def test_bad_requests_say_what_is_missing(seeded_s3, tmp_path):
    with pytest.raises(InvalidInputError, match="a tile or an area, a start date and an end date"):
        Job(Request(SourceSpec("l1c", endpoint_url=seeded_s3.endpoint), tile="33UUP")).search()
    with pytest.raises(NotFoundError, match="no scenes of 33UUP between 2019-01-01 and 2019-01-31"):
        Job(Request(SourceSpec("l1c", endpoint_url=seeded_s3.endpoint), tile="33UUP",
                    start=dt.date(2019, 1, 1), end=dt.date(2019, 1, 31))).plan()
    with pytest.raises(InvalidInputError, match="no composite output"):
        Job(_request(seeded_s3, "l1c", tmp_path)).composite(None)
