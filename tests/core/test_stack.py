"""The typed stack: the compositor takes observations (values), never file names; its three builders."""

from __future__ import annotations

import ast
import dataclasses
import datetime as dt
import inspect
import pickle
import tempfile
from pathlib import Path

import numpy as np
import pytest
import rasterio

import s2desktop.core.compositing as compositing
from s2desktop.core import areas
from s2desktop.core.compositing import composite, harmonise
from s2desktop.core.compositing.plan import make_plan
from s2desktop.core.compositing.rules import reference_median
from s2desktop.core.errors import InvalidInputError, RasterError
from s2desktop.core.pipeline import CompositeOptions, Job, Request, SourceSpec
from s2desktop.core.scenefiles import parse_band_filename
from s2desktop.core.stack import (
    ASSUMED,
    Observation,
    Provenance,
    RasterRef,
    Stack,
    from_files,
)
from tests.core.test_streaming import _lonlat_box
from tests.fixtures_s3 import TRANSFORM

# What a module reads a file name or side-car metadata with: none of it may appear under core/compositing/.
FILE_NAME_MODULES = {"s2desktop.core.scenefiles", "s2desktop.core.download", "s2desktop.core.stack.find_scl"}
SIDE_CAR_CALLS = {"scene_metadata", "read_scene_metadata", "find_scl", "parse_band_filename", "scl_files",
                  "metadata_path", "metadata_path_of", "file_offset", "json"}


def _compositing_modules() -> list[Path]:
    return sorted(Path(compositing.__file__).parent.glob("*.py"))


def test_nothing_under_compositing_parses_a_file_name_or_reads_side_car_metadata():
    modules = _compositing_modules()
    assert len(modules) >= 6  # __init__, plan, window, rules, pool, cog, composite
    for path in modules:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                names = {f"{node.module}.{a.name}" for a in node.names} | {node.module or ""}
                assert not names & FILE_NAME_MODULES, f"{path.name} imports {names & FILE_NAME_MODULES}"
                assert not {a.name for a in node.names} & SIDE_CAR_CALLS, f"{path.name}: {ast.dump(node)}"
            elif isinstance(node, ast.Import):
                assert not {a.name for a in node.names} & (FILE_NAME_MODULES | {"json"}), path.name
            elif isinstance(node, (ast.Name, ast.Attribute)):
                name = node.id if isinstance(node, ast.Name) else node.attr
                assert name not in SIDE_CAR_CALLS, f"{path.name}:{node.lineno} uses {name}"


def test_the_mask_choice_is_one_field_of_the_request():
    assert "mask" in {f.name for f in dataclasses.fields(Request)}
    assert "mask" not in {f.name for f in dataclasses.fields(CompositeOptions)}
    assert "mask" not in inspect.signature(composite).parameters  # an observation carries its mask or none
    assert list(inspect.signature(composite).parameters)[0] == "stack"


def _loose_stack(raster_stack, offsets, masked):
    """A stack built by hand from bare files (no side-car metadata to find): offsets and masks as values."""
    st = raster_stack(dates=3, layout="loose", scl=True)
    obs = tuple(
        Observation(date=f"2023-07-0{d + 1}", rasters={b: RasterRef(str(p[d]), b) for b, p in
                                                     zip(("B04", "B03", "B02"), (st.red, st.green, st.blue))},
                    mask=RasterRef(str(st.scl[d]), "SCL") if masked[d] else None, offset=offsets[d],
                    offset_source="given", baseline=None, tiles=("33UUP",),
                    provenance=(Provenance("B04", path=str(st.red[d]), size=st.red[d].stat().st_size),))
        for d in range(3))
    return st, Stack(obs)


def _numpy_reference(st, offsets, masked):
    data = np.stack([np.stack([harmonise(st.data[b, d], offsets[d]) for d in range(3)]) for b in range(3)])
    valid = (data != 0).all(axis=0)
    up = st.scl_data.repeat(2, axis=1).repeat(2, axis=2)[:, : data.shape[2], : data.shape[3]]
    for d in range(3):
        if masked[d]:
            valid[d] &= ~np.isin(up[d], [0, 1, 3, 8, 9, 10])
    return np.stack([reference_median(data[b], valid) for b in range(3)]), valid.sum(axis=0)


@pytest.mark.parametrize("workers", [0, 2])
def test_a_stack_of_values_composites_like_a_plain_numpy_median(raster_stack, tmp_path, workers):
    offsets, masked = [0, -1000, 0], [True, False, True]
    st, stack = _loose_stack(raster_stack, offsets, masked)
    out, cnt = tmp_path / "c.tif", tmp_path / "n.tif"
    res = composite(stack, out, workers=workers, count_path=cnt, window_size=128)
    exp, exp_count = _numpy_reference(st, offsets, masked)
    with rasterio.open(out) as ds, rasterio.open(cnt) as n:
        np.testing.assert_array_equal(ds.read(), exp)
        np.testing.assert_array_equal(n.read(1), np.minimum(exp_count, 255))
        tags = ds.tags()
    assert exp.any() and (exp_count < 3).any()  # the masks and nodata took observations away
    assert res.offsets == offsets and res.masked_dates == 2
    assert tags["OFFSETS_GREEN"] == "0,-1000,0" and tags["OFFSET_SOURCES"] == "given,given,given"
    assert tags["DATES"] == "2023-07-01,2023-07-02,2023-07-03" and tags["TILE"] == "33UUP"
    assert tags["SOURCES_RED"] == "r0.tif,r1.tif,r2.tif" and "on 2 date(s)" in tags["MASK"]


def test_a_window_task_is_a_plain_value_naming_all_it_reads(raster_stack, tmp_path):
    offsets, masked = [0, -1000, 0], [True, False, True]
    st, stack = _loose_stack(raster_stack, offsets, masked)
    plan = make_plan(stack, tmp_path / "c.tif", workers=0, window_size=128, clip=None)
    task = plan.tasks[-1]
    again = pickle.loads(pickle.dumps(task))
    assert again == task and len(plan.tasks) > 1
    assert again.inputs.rasters[1] == tuple(map(str, st.green)) and again.inputs.offsets == tuple(offsets)
    assert again.inputs.masks == (str(st.scl[0]), None, str(st.scl[2]))
    assert again.inputs.mask_classes == (0, 1, 3, 8, 9, 10)


def test_a_stack_is_checked_before_any_decoding(raster_stack, tmp_path):
    st, stack = _loose_stack(raster_stack, [0, 0, 0], [False, False, False])
    first = stack.observations[0]
    no_blue = dataclasses.replace(first, rasters={b: r for b, r in first.rasters.items() if b != "B02"})
    with pytest.raises(InvalidInputError, match="2023-07-01 has no B02 raster"):
        composite(Stack((no_blue,) + stack.observations[1:]), tmp_path / "o.tif", workers=0)
    with pytest.raises(InvalidInputError, match="2023-07-01 has no B08 raster"):  # any bands, each one there
        composite(dataclasses.replace(stack, bands=("B08", "B04", "B03")), tmp_path / "o.tif", workers=0)
    with pytest.raises(InvalidInputError, match="band B04 given more than once"):
        composite(dataclasses.replace(stack, bands=("B04", "B03", "B04")), tmp_path / "o.tif", workers=0)
    with pytest.raises(InvalidInputError, match="offset 7"):
        composite(Stack((dataclasses.replace(first, offset=7),)), tmp_path / "o.tif", workers=0)
    grid = areas.OutputGrid("EPSG:32633", (10.0, 0.0, 300000.0, 0.0, -10.0, 5000040.0), 299, 300, 10.0)
    with pytest.raises(RasterError, match="not on the area's 299 x 300 px grid"):
        composite(dataclasses.replace(stack, grid=grid), tmp_path / "o.tif", workers=0)
    assert not (tmp_path / "o.tif").exists()


def test_files_mode_reads_side_car_facts_and_finds_the_scl(raster_stack):
    st = raster_stack(dates=3, scl=True, baselines=["02.09", "04.00", "05.10"])
    stack = from_files(st.red, st.green, st.blue)
    assert [o.offset for o in stack.observations] == [0, -1000, -1000]
    assert [o.baseline for o in stack.observations] == ["02.09", "04.00", "05.10"]
    assert [o.mask.path for o in stack.observations] == list(map(str, st.scl))  # found beside the bands
    assert {o.offset_source for o in stack.observations} == {"download metadata"}
    assert [o.orbit for o in stack.observations] == [22, 22, 22] and stack.dates[0] == "2023-07-01"
    assert stack.observations[0].provenance[0].size == st.red[0].stat().st_size
    assert from_files(st.red, st.green, st.blue, mask="none").masked == 0
    loose = raster_stack(dates=2, layout="loose")
    assert [o.offset_source for o in from_files(loose.red, loose.green, loose.blue).observations] == [ASSUMED] * 2
    with pytest.raises(InvalidInputError, match="date 2: different offsets"):
        from_files(loose.red, loose.green, loose.blue, offsets=[0, 0, 0, -1000, 0, 0])


def test_an_area_run_writes_no_metadata_and_names_no_band_file(seeded_s3, tmp_path, monkeypatch):
    """The area's scratch folder, seen while the composite runs: VRTs and the rows of the windows fetched (their
    own numbered files), none named like a downloaded band file; the baselines still reach the output's tags,
    from the observations."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    seen: list[Path] = []

    def progress(event):
        if event.stage == "composite" and not seen:
            seen.extend(p for p in (tmp_path / "tmp").rglob("*"))

    area = areas.parse_bbox(",".join(f"{v:.6f}" for v in _lonlat_box(10, 0, 40, 6)))
    out = tmp_path / "area.tif"
    result = Job(Request(SourceSpec("cogs", endpoint_url=seeded_s3.endpoint), area=area, resolution=TRANSFORM.a,
                         start=dt.date(2023, 6, 1), end=dt.date(2023, 7, 10), cache_dir=tmp_path / "cache",
                         composite=CompositeOptions(str(out), workers=0)), progress=progress).run()
    files = [p for p in seen if p.is_file() or p.suffix]
    rows = [p for p in files if p.parent.name == "rows" and p.suffix == ".tif"]
    assert rows and all(p.suffix == ".vrt" for p in files if p not in rows), files  # no metadata JSON or folder
    assert not [p for p in files if parse_band_filename(p)]
    assert not [p for p in seen if p.name == "metadata"]
    obs = result.inputs.observations
    assert result.inputs.grid is not None and all(o.baseline == "05.09" and o.offset == -1000 for o in obs)
    assert all(o.provenance and all(p.key and p.etag for p in o.provenance) for o in obs)  # the objects read
    with rasterio.open(out) as ds:
        assert ds.tags()["BASELINES"] == ",".join(o.baseline for o in obs)
        assert set(ds.tags()["OFFSET_SOURCES"].split(",")) == {"streamed"}  # the baseline came with the COGs
