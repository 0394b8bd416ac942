"""Client building and error translation, against the real S3 test server (no boto3 patching)."""

import pytest
from botocore.exceptions import ClientError

from s2desktop.core import s3
from s2desktop.core.errors import CredentialsError, NetworkError, NotFoundError, S2Error


def test_max_attempts_from_the_environment(monkeypatch):
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "3")
    assert s3.max_attempts() == 3
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "many")
    assert s3.max_attempts() == 5


def test_endpoint_clients_are_path_style_with_standard_retries(seeded_s3):
    client = s3.make_client(endpoint_url=seeded_s3.endpoint, max_pool_connections=7)
    config = client.meta.config
    assert config.s3["addressing_style"] == "path" and config.retries["mode"] == "standard"
    assert config.max_pool_connections == 7
    assert client.list_objects_v2(Bucket="sentinel-s2-l1c", MaxKeys=1)["KeyCount"] == 1


def test_unsigned_client_reads_the_public_bucket_without_credentials(seeded, monkeypatch):
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # and no keys (autouse fixture)
    client = s3.make_client(endpoint_url=seeded.endpoint, unsigned=True)
    keys = client.list_objects_v2(Bucket="sentinel-cogs", Prefix="sentinel-s2-l2a-cogs/")["Contents"]
    thumb = next(k["Key"] for k in keys if k["Key"].endswith("thumbnail.jpg"))
    assert client.get_object(Bucket="sentinel-cogs", Key=thumb)["Body"].read()[:2] == b"\xff\xd8"


def test_missing_credentials_fail_early_with_the_fix(seeded, monkeypatch):
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(CredentialsError, match="no AWS credentials found for the requester-pays bucket 'b'.*aws conf"):
        s3.make_client(endpoint_url=seeded.endpoint, require_credentials=True, bucket="b")
    with pytest.raises(CredentialsError, match="AWS profile 'ghost' is not defined"):
        s3.make_client(profile="ghost")


def _client_error(seeded_s3, **kw) -> ClientError:
    client = s3.make_client(endpoint_url=seeded_s3.endpoint)
    with pytest.raises(ClientError) as info:
        client.get_object(**kw)
    return info.value


def test_server_errors_become_one_line_s2errors(seeded_s3):
    err = s3.translate_error(_client_error(seeded_s3, Bucket="sentinel-s2-l1c", Key="nope.json"),
                             bucket="sentinel-s2-l1c", key="nope.json")
    assert isinstance(err, NotFoundError) and str(err) == "s3://sentinel-s2-l1c/nope.json does not exist"
    err = s3.translate_error(_client_error(seeded_s3, Bucket="no-such-bucket-x", Key="k"), bucket="no-such-bucket-x",
                             endpoint=seeded_s3.endpoint)
    assert isinstance(err, NotFoundError) and "bucket 'no-such-bucket-x' does not exist" in str(err)
    assert "\n" not in str(err)


def test_unreachable_endpoint_is_a_network_error(monkeypatch):
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    client = s3.make_client(endpoint_url="http://127.0.0.1:9", unsigned=True, connect_timeout=2)
    with pytest.raises(Exception) as info:
        client.list_objects_v2(Bucket="b")
    err = s3.translate_error(info.value, bucket="b", endpoint="http://127.0.0.1:9")
    assert isinstance(err, NetworkError) and "cannot reach http://127.0.0.1:9 after 1 attempts" in str(err)


def test_s2errors_pass_through():
    original = NotFoundError("x")
    assert s3.translate_error(original) is original
    assert isinstance(s3.translate_error(RuntimeError("odd")), S2Error)
