"""Credential lookup for the window's indicator: boto3's own chain over real files and variables."""

from s2desktop.core.credentials import available_profiles, credential_status


def test_nothing_configured(_isolated_home, monkeypatch):
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    status = credential_status()
    assert not status.found and "no AWS credentials found" in status.message and "aws configure" in status.message
    assert available_profiles() == []


def test_environment_keys(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    status = credential_status("")
    assert status.found and status.method == "env" and status.profile is None
    assert "the default chain" in status.message


def test_profiles_from_the_shared_files(_isolated_home):
    (_isolated_home / "aws_credentials").write_text(
        "[work]\naws_access_key_id = AKIDWORK\naws_secret_access_key = s\n")
    (_isolated_home / "aws_config").write_text("[profile other]\nregion = eu-central-1\n")
    assert available_profiles() == ["other", "work"]
    status = credential_status("work")
    assert status.found and status.method == "shared-credentials-file" and "profile 'work'" in status.message


def test_unknown_profile_and_broken_config(_isolated_home):
    status = credential_status("ghost")
    assert not status.found and status.message == (
        "AWS profile 'ghost' is not defined in ~/.aws/config or ~/.aws/credentials")
    (_isolated_home / "aws_config").write_text("[profile broken\nregion = x\n")
    assert available_profiles() == []
    assert not credential_status().found
