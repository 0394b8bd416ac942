"""A hostile network in front of the S3 test server: ``FaultProxy`` and the ``fault_proxy`` fixture.

``FaultProxy(upstream)`` is an HTTP server on 127.0.0.1 (port 0). Each request is forwarded whole to the upstream
(moto) with http.client; the whole answer is read, then the first matching :class:`Rule` that fires decides what
the client gets instead of a faithful copy:

- ``status``  an S3-style XML error (``code=503`` by default; 500 works too), nothing forwarded back
- ``deny``    403 AccessDenied XML
- ``reset``   the headers and half the body, then an abrupt close (SO_LINGER 0: the peer sees a reset)
- ``truncate``a correct Content-Length but half the body, then a normal close
- ``flip``    one byte of the body flipped (at ``offset``, default the middle), headers kept
- ``slow``    the body at ``rate`` bytes per second
- ``stall``   the headers and half the body, then nothing for ``rate`` seconds (a server that hangs mid-body)
- ``hide_parts`` a server that does not report part sizes: ``HEAD ?partNumber=1`` is answered as a plain HEAD
  (the whole object's Content-Length) and ``x-amz-mp-parts-count`` is dropped

``proxy.add(fault, method=, key=, ranged=, span=, first=, fraction=, seed=, ...)`` adds a rule: ``key`` is a regex
searched in the unquoted path, ``query`` one searched in the query string, ``ranged`` True/False selects requests
with/without a Range header, ``span`` a regex searched in the Range header (``^bytes=0-``: a file's first bytes); ``first=N`` fires on the first N matching requests, ``fraction=f`` on a seeded random
share of them (neither: every one). ``proxy.injected`` counts faults by kind, ``proxy.requests`` lists
(method, path, range) of what came in; ``proxy.clear()`` drops the rules; ``proxy.close()`` makes the server go
away, in-flight connections included. Loopback only, every upstream call bounded by a timeout.
"""

from __future__ import annotations

import collections
import http.client
import random
import re
import socket
import struct
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "te", "upgrade"}
ERRORS = {500: "InternalError", 503: "SlowDown", 403: "AccessDenied"}


@dataclass
class Rule:
    fault: str
    method: str | None = None
    key: str | None = None
    query: str | None = None
    ranged: bool | None = None
    span: str | None = None
    first: int | None = None
    fraction: float | None = None
    seed: int = 0
    code: int = 503
    rate: int = 256 * 1024
    offset: int | None = None
    matched: int = 0
    rng: random.Random = field(init=False, repr=False)

    def __post_init__(self):
        self.rng = random.Random(self.seed)

    def fires(self, method: str, path: str, query: str, span: str | None) -> bool:
        """Whether this rule selects the request and fires on it (call under the proxy's lock)."""
        ranged = span is not None
        if (self.method and method != self.method) or (self.ranged is not None and ranged != self.ranged):
            return False
        if self.span and not (span and re.search(self.span, span)):
            return False
        if (self.key and not re.search(self.key, path)) or (self.query and not re.search(self.query, query)):
            return False
        self.matched += 1
        if self.first is not None:
            return self.matched <= self.first
        if self.fraction is not None:
            return self.rng.random() < self.fraction
        return True


class FaultProxy:
    def __init__(self, upstream: str):
        host, port = upstream.removeprefix("http://").rsplit(":", 1)
        self.upstream = (host, int(port))
        self.rules: list[Rule] = []
        self.injected: collections.Counter = collections.Counter()
        self.requests: list[tuple[str, str, str | None]] = []
        self.lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self.closed = threading.Event()
        proxy = self

        class Handler(_Handler):
            owner = proxy

        self.server = _QuietServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True,
                                        name="fault-proxy")
        self._thread.start()

    def add(self, fault: str, **select) -> Rule:
        rule = Rule(fault, **select)
        with self.lock:
            self.rules.append(rule)
        return rule

    def clear(self) -> None:
        with self.lock:
            self.rules.clear()

    def choose(self, method: str, path: str, query: str, span: str | None) -> Rule | None:
        with self.lock:
            self.requests.append((method, path, "range" if span is not None else None))
            for rule in self.rules:
                if rule.fires(method, path, query, span):
                    self.injected[rule.fault] += 1
                    return rule
        return None

    def count(self, key: str, method: str | None = None) -> int:
        """Requests seen whose path matches ``key`` (a regex)."""
        with self.lock:
            return sum(1 for m, p, _r in self.requests if re.search(key, p) and method in (None, m))

    def close(self) -> None:
        """The server goes away: no new connections, and the open ones are cut."""
        self.closed.set()
        self.server.shutdown()
        self.server.server_close()
        with self.lock:
            for s in self._sockets:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):  # a client that hung up on a fault: expected
        pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    owner: FaultProxy

    def log_message(self, *args):  # quiet
        pass

    def setup(self):
        super().setup()
        with self.owner.lock:
            self.owner._sockets.add(self.connection)

    def do_GET(self):
        self._serve()

    do_HEAD = do_PUT = do_POST = do_DELETE = do_GET

    def _serve(self):
        split = urllib.parse.urlsplit(self.path)
        path = urllib.parse.unquote(split.path)
        rule = self.owner.choose(self.command, path, split.query, self.headers.get("Range"))
        fault = rule.fault if rule else None
        if fault in ("status", "deny"):
            code = 403 if fault == "deny" else rule.code
            xml = (f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{ERRORS.get(code, "InternalError")}'
                   f'</Code><Message>injected by FaultProxy</Message></Error>').encode()
            return self._answer(code, [("Content-Type", "application/xml")], xml)
        target = self.path
        if fault == "hide_parts":
            query = [(k, v) for k, v in urllib.parse.parse_qsl(split.query, keep_blank_values=True)
                     if k.lower() != "partnumber"]
            target = urllib.parse.urlunsplit(("", "", split.path, urllib.parse.urlencode(query), ""))
        status, headers, body = self._forward(target)
        if fault == "hide_parts":
            headers = [(k, v) for k, v in headers if k.lower() != "x-amz-mp-parts-count"]
        if fault == "flip" and body:
            i = rule.offset if rule.offset is not None else len(body) // 2
            body = body[:i] + bytes([body[i] ^ 0xFF]) + body[i + 1:]
        self._answer(status, headers, body, fault=fault, rate=rule.rate if rule else 0)

    def _forward(self, target: str):
        length = int(self.headers.get("Content-Length") or 0)
        data = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        conn = http.client.HTTPConnection(*self.owner.upstream, timeout=30)
        try:
            conn.request(self.command, target, body=data, headers=headers)
            resp = conn.getresponse()
            body = resp.read()
            return resp.status, [(k, v) for k, v in resp.getheaders() if k.lower() not in HOP_BY_HOP], body
        finally:
            conn.close()

    def _answer(self, status: int, headers, body: bytes, fault: str | None = None, rate: int = 0):
        head_only = self.command == "HEAD"
        self.send_response_only(status)
        for k, v in headers:
            if k.lower() not in ("content-length", "date", "server"):
                self.send_header(k, v)
        length = next((v for k, v in headers if k.lower() == "content-length"), None) if head_only else None
        self.send_header("Content-Length", str(length if length is not None else len(body)))
        self.end_headers()
        if head_only:
            return
        if fault in ("reset", "truncate"):
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            if fault == "reset":
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            self.rfile.close()
            self.wfile.close()
            self.connection.close()  # with SO_LINGER 0: an RST, not a FIN
            return
        if fault == "stall":
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            end = time.monotonic() + rate
            while time.monotonic() < end and not self.owner.closed.is_set():
                time.sleep(0.05)
            self.close_connection = True
            return
        if fault == "slow":
            step = max(1024, rate // 20)
            for i in range(0, len(body), step):
                self.wfile.write(body[i:i + step])
                self.wfile.flush()
                time.sleep(step / rate)
            return
        self.wfile.write(body)


@pytest.fixture
def fault_proxy(seeded_s3):
    """A FaultProxy in front of the test server (no rules yet); closed afterwards."""
    proxy = FaultProxy(seeded_s3.endpoint)
    yield proxy
    proxy.close()
