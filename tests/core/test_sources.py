"""Stores over the real S3 test server and local folders; layout detection; resolving source names."""

import threading

import pytest

from s2desktop.core import sources
from s2desktop.core.errors import CancelledError, InvalidInputError, NotFoundError
from tests.fixtures_s3 import MANY_BUCKET, RequestRecorder
from tests.helpers import put_objects, s3_source

L1C_DAY = "tiles/33/U/UP/2023/7/14/"


def test_pages_are_counted_and_every_one_pays(seeded_s3):
    store = s3_source(seeded_s3, "l1c", bucket=MANY_BUCKET).store
    rec = RequestRecorder(store.client)
    assert len(store.list_prefixes("tiles/33/U/UP/")) == 1100  # two pages of at most 1000
    assert store.stats["list"] == rec.count("ListObjectsV2") == 2
    assert {op.get("RequestPayer") for op in rec.ops("ListObjectsV2")} == {"requester"}


def test_public_bucket_sends_no_request_payer(seeded_s3):
    store = s3_source(seeded_s3, "cogs").store
    rec = RequestRecorder(store.client)
    assert store.list_prefixes("sentinel-s2-l2a-cogs/33/U/UP/") == ["sentinel-s2-l2a-cogs/33/U/UP/2023/"]
    assert all("RequestPayer" not in op for op in rec.ops("ListObjectsV2"))


def test_objects_head_and_bytes(seeded_s3):
    store = s3_source(seeded_s3, "l1c").store
    objects = {o.key: o for o in store.list_objects(L1C_DAY)}
    key = L1C_DAY + "0/tileInfo.json"
    info = objects[key]
    assert info.etag and '"' not in info.etag
    assert store.head(key).size == info.size == len(store.get_bytes(key))
    assert store.stats == {"list": 1, "get": 1, "head": 1}


def test_listing_errors_are_translated_and_counted(seeded_s3):
    store = s3_source(seeded_s3, "l1c", bucket="no-such-bucket-here").store
    with pytest.raises(NotFoundError, match="^bucket 'no-such-bucket-here' does not exist at http://127.0.0.1"):
        store.list_prefixes("tiles/")
    assert store.stats["list"] == 1
    with pytest.raises(NotFoundError, match="does not exist"):
        s3_source(seeded_s3, "l1c").store.get_bytes("tiles/none.json")


def test_s3_download_cancelled_before_it_starts(seeded_s3, scratch_bucket, tmp_path):
    put_objects(seeded_s3, scratch_bucket, {"a/B04.jp2": b"x" * 1000})
    store = s3_source(seeded_s3, "l1c", bucket=scratch_bucket).store
    cancel = threading.Event()
    cancel.set()
    with open(tmp_path / "f", "wb") as fh, pytest.raises(CancelledError, match="cancelled"):
        store.download("a/B04.jp2", fh, cancel=cancel)


def test_local_store_mirrors_the_interface(seeded_s3, tmp_path):
    root = seeded_s3.roots["l1c"]
    store = sources.LocalStore(root)
    assert "tiles/33/U/UP/2023/" in store.list_prefixes("tiles/33/U/UP/")
    key = L1C_DAY + "0/tileInfo.json"
    assert store.get_bytes(key) == (root / key).read_bytes()
    with pytest.raises(NotFoundError, match="not inside the local source"):
        store.head("tiles/../../x")
    copy = tmp_path / "m"
    copy.mkdir()
    (copy / "k").write_bytes(b"one")
    before = sources.LocalStore(copy).head("k").etag
    (copy / "k").write_bytes(b"three")
    assert sources.LocalStore(copy).head("k").etag != before  # a changed file is a changed object


@pytest.mark.parametrize("layout", ["l1c", "l2a", "cogs"])
def test_detect_layout(seeded_s3, layout):
    root = seeded_s3.roots[layout]
    assert sources.detect_layout(root) == (root, layout)
    base, found = sources.detect_layout(root.parent)  # a folder with bucket-named subfolders
    assert found in ("l1c", "l2a", "cogs") and base.parent == root.parent


def test_detect_layout_refuses_other_folders(tmp_path):
    with pytest.raises(NotFoundError, match="no Sentinel-2 bucket layout in"):
        sources.detect_layout(tmp_path)


def test_resolve_source(seeded_s3, tmp_path):
    l1c = sources.resolve_source("L1C")
    assert (l1c.bucket, l1c.region, l1c.requester_pays, l1c.unsigned) == ("sentinel-s2-l1c", "eu-central-1",
                                                                        True, False)
    assert sources.resolve_source("cogs").unsigned
    local = sources.resolve_source(str(seeded_s3.roots["l2a"]))
    assert local.is_local and local.layout == "l2a" and local.describe().startswith("local folder")
    (tmp_path / "f.txt").write_text("x")
    with pytest.raises(InvalidInputError, match="is a file"):
        sources.resolve_source(str(tmp_path / "f.txt"))
    with pytest.raises(InvalidInputError, match="not a valid bucket name"):
        sources.resolve_source("l1c", bucket="Bad_Bucket")
    with pytest.raises(NotFoundError, match="does not exist"):
        sources.resolve_source(str(tmp_path / "missing"))
