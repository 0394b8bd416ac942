"""Credentials never reach a log: `--debug` shows botocore's requests without keys, tokens or signatures."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

from s2desktop.core.redact import RedactSecrets, redact

KEY, SECRET, TOKEN = "AKIAFAKEFAKEFAKE1234", "s3cr3t/FAKE+secret+value+0123456789", "FwoGZXIvYXdzEFAKEsessiontoken0123"


def test_headers_lose_the_key_the_token_and_the_signature():
    text = (f"{{'Authorization': b'AWS4-HMAC-SHA256 Credential={KEY}/20231201/us-east-1/s3/aws4_request, "
            f"SignedHeaders=host;x-amz-date, Signature=0123abcdef', 'X-Amz-Security-Token': b'{TOKEN}'}}")
    clean = redact(text)
    assert KEY not in clean and TOKEN not in clean and "0123abcdef" not in clean
    assert "SignedHeaders=host;x-amz-date" in clean  # the rest of the line is still there to debug with


def test_the_filter_cleans_records_with_arguments(monkeypatch):
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    record = logging.LogRecord("botocore.auth", logging.DEBUG, __file__, 1, "signing with %s and %s",
                               (KEY, SECRET), None)
    assert RedactSecrets().filter(record) is True
    assert KEY not in record.getMessage() and SECRET not in record.getMessage()


def _cli(*argv, env):
    return subprocess.run([sys.executable, "-m", "s2desktop", *argv], capture_output=True, text=True, env=env,
                          timeout=120)


def test_debug_shows_requests_without_credentials_and_exits_like_a_normal_run(seeded_s3, tmp_path):
    env = dict(os.environ, AWS_ACCESS_KEY_ID=KEY, AWS_SECRET_ACCESS_KEY=SECRET, AWS_SESSION_TOKEN=TOKEN,
               AWS_MAX_ATTEMPTS="1")
    query = ["search", "--tile", "33UUP", "--start", "2023-07-01", "--end", "2023-07-31"]
    ok = _cli("--debug", *query, "--endpoint-url", seeded_s3.endpoint, env=env)
    assert ok.returncode == 0, ok.stderr[-2000:]
    assert "DEBUG botocore" in ok.stderr and "<redacted>" in ok.stderr  # the requests are there, signed
    for secret in (KEY, SECRET, TOKEN):
        assert secret not in ok.stderr + ok.stdout
    assert "Signature=" not in ok.stderr.replace("Signature=<redacted>", "")
    plain = _cli(*query, "--endpoint-url", "http://127.0.0.1:9", env=env)
    debug = _cli("--debug", *query, "--endpoint-url", "http://127.0.0.1:9", env=env)
    assert plain.returncode == debug.returncode == 2
    assert "Traceback" in debug.stderr and "Traceback" not in plain.stderr
    assert debug.stderr.strip().splitlines()[-1] == plain.stderr.strip().splitlines()[-1]


def test_signatures_echoed_bodies_and_remembered_credentials_are_redacted():
    from s2desktop.core import redact as module

    sig = "a3f1" * 16
    text = (f"DEBUG botocore.auth: Signature:\n{sig}\n<Error><Code>SignatureDoesNotMatch</Code>"
            f"<AWSAccessKeyId>{KEY}</AWSAccessKeyId><StringToSign>AWS4-HMAC-SHA256\n20231201T000000Z\n"
            f"x/y/s3/aws4_request\n{'b' * 64}</StringToSign><SignatureProvided>{sig}</SignatureProvided></Error>")
    clean = redact(text)
    assert sig not in clean and KEY not in clean and "b" * 64 not in clean
    assert "<SignatureProvided><redacted></SignatureProvided>" in clean and "SignatureDoesNotMatch" in clean
    module.remember("PROFILEKEYFROMAFILE", "profile/secret/from/a/file/0123456789")
    assert "PROFILEKEYFROMAFILE" not in redact("key PROFILEKEYFROMAFILE in a malformed body")


def test_an_exception_logged_with_its_traceback_is_redacted_too():
    try:
        raise RuntimeError(f"body echoed: <SignatureProvided>{'c' * 64}</SignatureProvided> {KEY}")
    except RuntimeError:
        import sys

        record = logging.LogRecord("s2desktop", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    RedactSecrets().filter(record)
    formatted = logging.Formatter().format(record)
    assert "c" * 64 not in formatted and KEY not in formatted and "RuntimeError" in formatted


def test_debug_output_holds_no_key_secret_token_or_signature(seeded_s3, tmp_path):
    import re

    env = dict(os.environ, AWS_ACCESS_KEY_ID=KEY, AWS_SECRET_ACCESS_KEY=SECRET, AWS_SESSION_TOKEN=TOKEN,
               AWS_MAX_ATTEMPTS="1")
    run = _cli("--debug", "search", "--source", "l2a", "--tile", "33UUP", "--start", "2023-07-01", "--end",
               "2023-07-31", "--endpoint-url", seeded_s3.endpoint, env=env)
    text = run.stdout + run.stderr
    assert run.returncode == 0 and "Signature:" in text  # botocore's signing log is there, its values are not
    for secret in (KEY, SECRET, TOKEN):
        assert secret not in text
    assert not re.search(r"(?<![0-9a-f])[0-9a-f]{64}(?![0-9a-f])", text)
