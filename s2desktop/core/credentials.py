"""Whether AWS credentials can be found for a profile (for the window's requester-pays indicator).

Only asks boto3's own lookup chain (`boto3.Session(profile_name=...).get_credentials()`); nothing is sent over
the network. Call it off the GUI thread: the chain may read files and, for SSO/assume-role profiles, more.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CredentialStatus", "credential_status", "available_profiles"]


@dataclass(frozen=True)
class CredentialStatus:
    found: bool
    profile: str | None
    method: str | None  # botocore's name for where they came from: 'env', 'shared-credentials-file', ...
    message: str  # one line for the user


def available_profiles() -> list[str]:
    import boto3

    try:
        return sorted(boto3.Session().available_profiles)
    except Exception:  # a broken config file: no profiles to offer, the status line says why
        return []


def credential_status(profile: str | None = None) -> CredentialStatus:
    import boto3
    from botocore.exceptions import BotoCoreError, ProfileNotFound

    profile = profile or None
    try:
        session = boto3.Session(profile_name=profile) if profile else boto3.Session()
        creds = session.get_credentials()
    except ProfileNotFound:
        return CredentialStatus(False, profile, None,
                                f"AWS profile '{profile}' is not defined in ~/.aws/config or ~/.aws/credentials")
    except BotoCoreError as exc:
        return CredentialStatus(False, profile, None, f"cannot load AWS credentials: {exc}")
    if creds is None:
        return CredentialStatus(False, profile, None,
                                "no AWS credentials found: run `aws configure` or choose a profile "
                                "(requester-pays downloads are billed to your account)")
    method = getattr(creds, "method", None)
    who = f"profile '{profile}'" if profile else "the default chain"
    return CredentialStatus(True, profile, method, f"credentials found ({method or 'unknown'}, {who})")
