"""The one place boto3 sessions and S3 clients are built, and where botocore errors become S2Errors.

- A profile (``--profile``) or the standard AWS credential chain; unsigned requests for public buckets.
- ``--endpoint-url`` for S3-compatible mirrors and the test server (path-style addressing there).
- botocore's *standard* retry mode (exponential back-off with jitter, retries throttling and transient
  errors); attempts from ``AWS_MAX_ATTEMPTS`` or 5.
- ``max_pool_connections`` sized by the caller for its worker threads (urllib3 otherwise warns and serialises).

boto3 clients are thread-safe once built, but building them concurrently is not, so a Source builds its client
once under a lock (see :mod:`s2desktop.core.sources`) and every thread shares it. Never pass one to another
process.
"""

from __future__ import annotations

import os
import random

import boto3
import botocore
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    IncompleteReadError,
    NoCredentialsError,
    PartialCredentialsError,
    ProfileNotFound,
    ReadTimeoutError,
    ResponseStreamingError,
)

from s2desktop.core.errors import (
    AccessDeniedError,
    CredentialsError,
    NetworkError,
    NotFoundError,
    S2Error,
)

__all__ = ["make_client", "boto_session", "translate_error", "max_attempts", "http_timeout", "backoff", "BODY_ERRORS", "CREDENTIALS_HINT"]

CREDENTIALS_HINT = "run `aws configure`, set AWS_PROFILE (or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY), or pass --profile NAME"


# A body that breaks off while it is read: after botocore's own retries, which cover the request only.
BODY_ERRORS = (IncompleteReadError, ResponseStreamingError, ReadTimeoutError, ConnectionClosedError, ConnectionError)


def backoff(attempt: int, base: float = 0.1, cap: float = 5.0) -> float:
    """Seconds to wait before attempt ``attempt + 1``: exponential with full jitter, as botocore's standard mode."""
    return random.uniform(0, min(cap, base * 2 ** attempt))


def http_timeout() -> float:
    """Seconds a connection may stay silent (connecting, or mid-body) before the request is retried:
    S2DESKTOP_HTTP_TIMEOUT, default 30."""
    try:
        value = float(os.environ.get("S2DESKTOP_HTTP_TIMEOUT", "30"))
    except ValueError:
        return 30.0
    return value if value > 0 else 30.0


def max_attempts() -> int:
    """Total attempts per request (first try included) for botocore's standard retry mode."""
    try:
        return max(1, int(os.environ.get("AWS_MAX_ATTEMPTS", "5")))
    except ValueError:
        return 5


def boto_session(profile: str | None = None):
    """The boto3 session of a profile, else of the standard credential chain; CredentialsError for a profile that
    is not defined."""
    try:
        return boto3.session.Session(profile_name=profile) if profile else boto3.session.Session()
    except ProfileNotFound:
        raise CredentialsError(
            f"AWS profile '{profile}' is not defined in ~/.aws/config or ~/.aws/credentials; "
            "create it with `aws configure --profile " + profile + "` or pick another with --profile"
        ) from None


def make_client(
    *,
    region: str | None = None,
    profile: str | None = None,
    endpoint_url: str | None = None,
    unsigned: bool = False,
    require_credentials: bool = False,
    bucket: str | None = None,
    max_pool_connections: int = 50,
    connect_timeout: float | None = None,
    read_timeout: float | None = None,
):
    """Build an S3 client. ``require_credentials`` fails early, with a fix, when none can be found."""
    session = boto_session(profile)
    if unsigned:
        signature = botocore.UNSIGNED
    else:
        signature = None
        if require_credentials:
            try:
                creds = session.get_credentials()
            except BotoCoreError as exc:
                raise CredentialsError(f"cannot load AWS credentials ({exc}); {CREDENTIALS_HINT}") from None
            if creds is None:
                what = f"the requester-pays bucket '{bucket}'" if bucket else "this source"
                raise CredentialsError(
                    f"no AWS credentials found for {what} (downloads are billed to your account): {CREDENTIALS_HINT}"
                )
    if not unsigned:
        _remember_credentials(session)
    config = Config(
        region_name=region or session.region_name or "us-east-1",
        signature_version=signature,
        retries={"mode": "standard", "max_attempts": max_attempts()},
        max_pool_connections=max_pool_connections,
        connect_timeout=connect_timeout or min(10.0, http_timeout()),
        read_timeout=read_timeout or http_timeout(),
        s3={"addressing_style": "path" if endpoint_url else "auto"},
        # Checksums: only validate what the server sends; do not ask for new ones on every request.
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )
    return session.client("s3", endpoint_url=endpoint_url or None, config=config)


def _remember_credentials(session) -> None:
    """Whatever credentials the chain found (a profile file's too) are redacted from every log line."""
    from s2desktop.core.redact import remember

    try:
        creds = session.get_credentials()
    except BotoCoreError:
        return
    if creds is not None:
        frozen = creds.get_frozen_credentials()
        remember(frozen.access_key, frozen.secret_key, frozen.token)


def translate_error(exc: BaseException, *, bucket: str | None = None, key: str | None = None,
                    endpoint: str | None = None) -> S2Error:
    """A botocore/boto3 exception as the S2Error a user can act on (one line)."""
    where = f"s3://{bucket}/{key}" if key else f"s3://{bucket}" if bucket else "S3"
    if isinstance(exc, S2Error):
        return exc
    if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
        return CredentialsError(f"no usable AWS credentials for {where}: {CREDENTIALS_HINT}")
    if isinstance(exc, (EndpointConnectionError, ConnectTimeoutError, ConnectionClosedError, ReadTimeoutError)):
        host = endpoint or "the S3 endpoint"
        return NetworkError(
            f"cannot reach {host} after {max_attempts()} attempts ({type(exc).__name__}); "
            "check the network connection or --endpoint-url"
        )
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {}) or {}
        code = str(err.get("Code", ""))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        message = str(err.get("Message", "")).strip().splitlines()[0] if err.get("Message") else ""
        if code == "NoSuchBucket":
            return NotFoundError(f"bucket '{bucket}' does not exist at {endpoint or 'AWS'}; check --bucket and --endpoint-url")
        if code in ("NoSuchKey", "404", "NotFound"):
            return NotFoundError(f"{where} does not exist")
        if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken",
                    "TokenRefreshRequired"):
            return CredentialsError(f"AWS rejected the credentials for {where} ({code}); {CREDENTIALS_HINT}")
        if code in ("AccessDenied", "403", "Forbidden", "AllAccessDisabled") or status == 403:
            return AccessDeniedError(
                f"access denied to {where}: your AWS identity lacks s3:GetObject/s3:ListBucket there "
                "(requester-pays buckets also need a billing-enabled account)"
            )
        if code in ("PreconditionFailed", "412"):
            return S2Error(f"{where} changed on the server during the download; run the command again")
        if code in ("SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout", "503", "500"):
            return NetworkError(f"{where}: the server kept failing ({code}) after {max_attempts()} attempts; try later")
        return S2Error(f"{where}: {code or status} {message}".strip())
    if isinstance(exc, BotoCoreError):
        return NetworkError(f"{where}: {exc}")
    return S2Error(f"{where}: {exc}")
