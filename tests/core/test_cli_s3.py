"""`s2desktop search` / `s2desktop download` through cli.main against the real S3 test server."""

import datetime as dt
import json

import pytest

from s2desktop.cli import main
from tests.fixtures_s3 import admin_client

Q = ["--tile", "T33UUP", "--start", "2023-07-01", "--end", "2023-08-31"]


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_search_json_and_table(seeded_s3, capsys):
    code, out, err = _run(capsys, "search", *Q, "--endpoint-url", seeded_s3.endpoint, "--json")
    assert code == 0
    rows = json.loads(out)
    assert [(r["date"], r["sequence"]) for r in rows] == [
        ("2023-07-04", 0), ("2023-07-14", 0), ("2023-07-14", 1), ("2023-07-14", 2), ("2023-07-31", 0),
        ("2023-08-01", 0)]
    for r in rows:
        assert {"tile", "date", "sequence", "cloud_cover", "data_coverage", "baseline", "prefix", "bands",
                "preview"} <= set(r)
        assert r["tile"] == "33UUP" and r["baseline"] == "05.09" and r["bands"]["B04"].endswith("/B04.jp2")
    code, out, err = _run(capsys, "search", *Q, "--endpoint-url", seeded_s3.endpoint, "--max-cloud", "30")
    assert code == 0
    lines = out.strip().splitlines()
    assert lines[0].split()[:4] == ["date", "seq", "cloud%", "cover%"]
    assert len(lines) == 1 + 4 and "tiles/33/U/UP/2023/7/14/1" in out and "05.09" in lines[1]


def test_search_empty_result(seeded_s3, capsys):
    code, out, err = _run(capsys, "search", "--tile", "33UUP", "--start", "2019-01-01", "--end", "2019-02-01",
                          "--endpoint-url", seeded_s3.endpoint, "--json")
    assert code == 0 and json.loads(out) == [] and "no scenes of 33UUP" in err


def test_download_command_and_rerun(seeded_s3, capsys, tmp_path):
    out_dir = tmp_path / "dl"
    args = ["download", "--tile", "33UUP", "--start", "2023-07-14", "--end", "2023-07-14", "--source", "cogs",
            "--endpoint-url", seeded_s3.endpoint, "--bands", "B02,B03,B04,SCL", "--out", str(out_dir)]
    code, out, err = _run(capsys, *args)
    assert code == 0, err
    assert "downloaded 8 file(s)" in err and "downloading" in err  # plain progress lines when not a terminal
    assert "\r" not in err
    assert sorted(p.name for p in (out_dir / "red").iterdir()) == ["33UUP_2023-07-14_0_B04.tif",
                                                                  "33UUP_2023-07-14_1_B04.tif"]
    assert (out_dir / "SCL/33UUP_2023-07-14_1_SCL.tif").is_file()
    assert json.loads((out_dir / "metadata/33UUP_2023-07-14_1.json").read_text())["baseline"] == "05.09"
    code, out, err = _run(capsys, *args)
    # everything there: one line, no progress and no speed
    assert code == 0 and err.strip().splitlines() == [
        f"2 scene(s), 8 file(s) from s3://sentinel-cogs at {seeded_s3.endpoint} (cogs layout): all already present "
        f"and verified in {out_dir}"]


def test_download_dry_run_prints_the_plan_and_what_it_will_cost(seeded_s3, capsys, tmp_path):
    out_dir = tmp_path / "dl"
    query = ["download", "--tile", "33UUP", "--start", "2023-07-14", "--end", "2023-07-14", "--endpoint-url",
             seeded_s3.endpoint, "--out-dir", str(out_dir)]
    code, out, err = _run(capsys, *query, "--dry-run")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("3 scene(s), 9 file(s) from s3://sentinel-s2-l1c")
    # the local server is a custom endpoint, not AWS: AWS's price, and not said to be billed to the AWS account
    assert "at AWS's requester pays prices of" in lines[1] and "127.0.0.1 is not AWS" in lines[1]
    assert "US$" in lines[1] and "billed to your AWS account" not in lines[1]
    assert len(lines) == 2 + 9 and all("tiles/33/U/UP/2023/7/14/" in line for line in lines[2:])
    assert not out_dir.exists()  # nothing downloaded, not even a folder
    code, out, err = _run(capsys, *query, "--source", "cogs", "--dry-run")
    assert code == 0 and "free of charge" in out.splitlines()[1]


def test_composite_dry_run_prints_the_plan_from_the_bands_grid(seeded_s3, capsys, tmp_path):
    from s2desktop.core.compositing.estimate import estimate
    from s2desktop.core.compositing.plan import make_plan
    from s2desktop.core.pipeline import CompositeOptions, Job, Request, SourceSpec

    out_dir, out = tmp_path / "dl", tmp_path / "c.tif"
    query = ["composite", "--tile", "33UUP", "--start", "2023-07-01", "--end", "2023-07-31", "--source", "l2a",
             "--endpoint-url", seeded_s3.endpoint, "--out-dir", str(out_dir), "-o", str(out), "--workers", "2"]
    code, text, err = _run(capsys, *query, "--dry-run")
    assert code == 0, err
    lines = text.splitlines()
    assert lines[0].startswith(f"plan of {out}") and lines[1].startswith("fetch: ")
    assert lines[2].startswith("output: 64 x 64 px, 3 band(s) from 3 date(s), 1 level(s)")
    assert "windows: 1 task(s) of up to 64 x 64 px, 4 in flight on 2 worker(s)" in lines[3]
    assert not out_dir.exists() and not out.exists()  # nothing downloaded or written
    # the same figures as the plan of the downloaded inputs
    request = Request(source=SourceSpec("l2a", endpoint_url=seeded_s3.endpoint), tile="33UUP",
                      start=dt.date(2023, 7, 1), end=dt.date(2023, 7, 31), download_dir=out_dir,
                      composite=CompositeOptions(str(out), workers=2))
    job = Job(request)
    cost, before = job.estimate()
    plan = job.plan()
    assert cost.bytes == plan.bytes_total > 0 and cost.requests >= len(plan.tasks)
    job.download(plan)
    count = request.composite.count_file  # every composite writes its count layer
    assert estimate(make_plan(plan.inputs(), out, workers=2, count_path=count)) == before


def test_every_argument_has_help_and_the_help_ends_with_examples(capsys):
    from s2desktop.cli import build_parser

    parser = build_parser()
    subparsers = next(a for a in parser._actions if a.dest == "command").choices
    for name, sub in [("s2desktop", parser), *subparsers.items()]:
        for action in sub._actions:
            assert action.help, f"{name}: {action.option_strings or action.dest} has no help"
    text = parser.format_help()
    assert text.rstrip().splitlines()[-4] == "examples:"
    assert len([line for line in text.splitlines() if line.strip().startswith("s2desktop ")]) == 3
    download = subparsers["download"]
    assert download.parse_args(["--tile", "x", "--start", "a", "--end", "b", "--out", "D"]).out_dir == "D"
    assert download.parse_args(["--tile", "x", "--start", "a", "--end", "b", "--out-dir", "D"]).out_dir == "D"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--tile", "61UUP", "--start", "2023-01-01", "--end", "2023-01-02"], "zone 61 is out of range 1-60"),
        (["--tile", "33IUP", "--start", "2023-01-01", "--end", "2023-01-02"], "latitude band 'I' does not exist"),
        (["--tile", "33UUP", "--start", "2023/01/01", "--end", "2023-01-02"], "is not a date of the form YYYY-MM-DD"),
        (["--tile", "33UUP", "--start", "2023-03-01", "--end", "2023-01-02"], "is after end date"),
        (["--tile", "33UUP", "--start", "2023-01-01", "--end", "2023-01-02", "--bucket", "no-such-bucket"],
         "bucket 'no-such-bucket' does not exist"),
    ],
)
def test_one_line_errors(seeded_s3, capsys, argv, message):
    code, out, err = _run(capsys, "search", *argv, "--endpoint-url", seeded_s3.endpoint)
    assert code == 2 and out == ""
    assert err.startswith("s2desktop: error: ") and message in err and len(err.strip().splitlines()) == 1


def test_no_credentials_for_requester_pays(seeded, capsys, monkeypatch):
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no credentials anywhere (autouse fixture)
    code, out, err = _run(capsys, "search", *Q, "--endpoint-url", seeded.endpoint)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "no AWS credentials" in err and "aws configure" in err and "AWS_PROFILE" in err and "--profile" in err
    code, out, err = _run(capsys, "search", *Q, "--endpoint-url", seeded.endpoint, "--profile", "nobody")
    assert code == 2 and "AWS profile 'nobody' is not defined" in err
    # the public COG bucket needs none
    code, out, err = _run(capsys, "search", *Q, "--endpoint-url", seeded.endpoint, "--source", "cogs", "--json")
    assert code == 0 and len(json.loads(out)) == 3


def test_access_denied(seeded_s3, capsys, scratch_bucket):
    """Unsigned (public-bucket) requests to private objects are refused."""
    client = admin_client(seeded_s3.endpoint)
    root = seeded_s3.roots["cogs"]
    for p in root.rglob("*"):
        if p.is_file() and "20230704" in str(p):
            client.upload_file(str(p), scratch_bucket, p.relative_to(root).as_posix())  # private
    code, out, err = _run(capsys, "search", *Q, "--endpoint-url", seeded_s3.endpoint, "--source", "cogs",
                          "--bucket", scratch_bucket)
    assert code == 2 and "access denied to s3://" in err and len(err.strip().splitlines()) == 1


def test_unreachable_endpoint(seeded_s3, capsys):
    code, out, err = _run(capsys, "search", *Q, "--endpoint-url", "http://127.0.0.1:9")
    assert code == 2 and "cannot reach http://127.0.0.1:9 after 2 attempts" in err
    assert len(err.strip().splitlines()) == 1


def test_local_folder_source_and_bad_source(seeded_s3, capsys, tmp_path):
    code, out, err = _run(capsys, "search", *Q, "--source", str(seeded_s3.roots["l2a"]), "--json")
    assert code == 0 and [r["sequence"] for r in json.loads(out)] == [0, 0, 1, 0]
    code, out, err = _run(capsys, "search", *Q, "--source", str(tmp_path / "nope"))
    assert code == 2 and "does not exist" in err


def test_ctrl_c_cancels_download_cleanly(seeded_s3, slow_s3, scratch_bucket, tmp_path):
    """SIGINT in the middle of a transfer: exit 130, one line, no file under a final name, no temp file."""
    import os
    import signal
    import subprocess
    import sys
    import time

    client = admin_client(seeded_s3.endpoint)
    prefix = "tiles/33/U/UP/2023/7/14/0"
    client.put_object(Bucket=scratch_bucket, Key=f"{prefix}/tileInfo.json", Body=b'{"cloudyPixelPercentage": 1}')
    payload = os.urandom(48 << 20)
    for band in ("B02", "B03", "B04"):
        client.put_object(Bucket=scratch_bucket, Key=f"{prefix}/{band}.jp2", Body=payload)
    out_dir = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "s2desktop", "download", "--tile", "33UUP", "--start", "2023-07-14", "--end",
         "2023-07-14", "--endpoint-url", slow_s3.endpoint, "--bucket", scratch_bucket, "--out", str(out_dir)],
        stderr=subprocess.PIPE, text=True, env=dict(os.environ),
    )
    deadline = time.monotonic() + 30
    while not list(out_dir.rglob("*.part")) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)  # waiting for the transfer to start (a subprocess: nothing to wait on but the disk)
    assert proc.poll() is None, "download finished before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    t = time.monotonic()
    _out, err = proc.communicate(timeout=30)
    assert time.monotonic() - t < 3
    assert proc.returncode == 130 and err.strip().splitlines()[-1] == "s2desktop: cancelled"
    assert "Traceback" not in err
    files = [p.relative_to(out_dir).as_posix() for p in out_dir.rglob("*") if p.is_file()]
    assert [f for f in files if not f.startswith("metadata/")] == []
