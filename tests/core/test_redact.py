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
