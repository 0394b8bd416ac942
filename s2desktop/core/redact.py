"""Credentials never reach a log: a logging filter that takes them out of every record.

botocore's debug log (``s2desktop --debug``) prints each request's headers: the access key id, the session
token and the request signature. :class:`RedactSecrets`, installed on the log handlers by the command line and
the window, replaces them -- and any value of the AWS credential variables of the environment -- with
``<redacted>`` before a record is written anywhere.
"""

from __future__ import annotations

import logging
import os
import re

__all__ = ["RedactSecrets", "redact", "remember"]

REDACTED = "<redacted>"
_SECRET_VARS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")
_PATTERNS = [
    # access key ids (long-term AKIA, temporary ASIA, ...): keep the kind, drop the id
    (re.compile(r"\b(AKIA|ASIA|AIDA|AROA|AIPA|ANPA|ANVA|AGPA)[A-Z0-9]{12,}"), r"\1" + REDACTED),
    (re.compile(r"(Credential=)[^,\s'\"]+"), r"\1" + REDACTED),
    (re.compile(r"(Signature=)[0-9a-fA-F]+"), r"\1" + REDACTED),
    (re.compile(r"(X-Amz-Signature=)[0-9a-fA-F]+", re.IGNORECASE), r"\1" + REDACTED),
    # botocore's signing log ("Signature:\n<hex>") and any other SigV4 signature or signing key: 64 hex digits
    (re.compile(r"(?<![0-9a-fA-F])[0-9a-fA-F]{64}(?![0-9a-fA-F])"), REDACTED),
    # what an S3 error body echoes back: <SignatureProvided>, <StringToSign>, <CanonicalRequest>, <AWSAccessKeyId>
    (re.compile(r"(<(SignatureProvided|StringToSign|StringToSignBytes|CanonicalRequest|CanonicalRequestBytes"
                r"|AWSAccessKeyId|X-Amz-Security-Token)>).*?(</\2>)", re.IGNORECASE | re.DOTALL), r"\1" + REDACTED + r"\3"),
    # header / field values: 'X-Amz-Security-Token': b'...', SessionToken="...", aws_secret_access_key = ...
    (re.compile(r"((?:x-amz-security-token|sessiontoken|secretaccesskey|aws_session_token|aws_secret_access_key"
                r"|aws_security_token)['\"]?\s*[:=]\s*b?['\"]?)[^'\",\s}&]+", re.IGNORECASE), r"\1" + REDACTED),
]


_KNOWN: set[str] = set()  # credentials the program loaded (from a profile file, say), not only the environment's


def remember(*secrets) -> None:
    """Credentials in use (an access key id, a secret, a session token): never shown from now on."""
    _KNOWN.update(s for s in secrets if isinstance(s, str) and len(s) >= 8)


def redact(text: str) -> str:
    """``text`` without AWS credentials."""
    for value in [os.environ.get(name) for name in _SECRET_VARS] + sorted(_KNOWN, key=len, reverse=True):
        if value and len(value) >= 8:
            text = text.replace(value, REDACTED)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactSecrets(logging.Filter):
    """A handler filter: every record's message (arguments merged in) with the credentials taken out."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        moved = bool(record.exc_info and record.exc_info[1] is not None)
        if moved:  # the exception's text echoes request bodies and headers: cleaned with the message
            import traceback

            message += "\n" + "".join(traceback.format_exception(*record.exc_info)).rstrip()
            record.exc_info, record.exc_text = None, None
        clean = redact(message)
        if moved or clean != message:
            record.msg, record.args = clean, None
        return True
