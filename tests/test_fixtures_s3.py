"""The S3 test fixtures themselves: the throttling proxy's latency, shared link and request timings."""

import http.client
import time
from urllib.parse import urlsplit

from tests.fixtures_s3 import ThrottledProxy


def _get_twice(endpoint: str) -> list[float]:
    """Seconds of two GETs on one kept-alive connection."""
    conn = http.client.HTTPConnection(urlsplit(endpoint).netloc, timeout=10)
    took = []
    try:
        for _ in range(2):
            t0 = time.perf_counter()
            conn.request("GET", "/")
            resp = conn.getresponse()
            resp.read()
            took.append(time.perf_counter() - t0)
            assert resp.status == 200
    finally:
        conn.close()
    return took


def test_latency_delays_every_request(s3_server):
    proxy = ThrottledProxy(s3_server, rate=10_000_000, latency=0.5)
    try:
        first, second = _get_twice(proxy.endpoint)
        assert first >= 0.5 and second >= 0.5  # a new connection and a kept-alive one alike
        assert proxy.requests == 2
        start, first_byte, last_byte, line, ranges = proxy.timings[0]  # the second ends with the connection
        assert first_byte - start >= 0.5 and last_byte >= first_byte
        assert line == "GET / HTTP/1.1" and ranges is None
    finally:
        proxy.close()


def test_no_latency_by_default(s3_server):
    proxy = ThrottledProxy(s3_server, rate=10_000_000)
    try:
        assert sum(_get_twice(proxy.endpoint)) < 0.5  # a local server answers a listing in milliseconds
        assert proxy.requests == 2
    finally:
        proxy.close()


def test_total_rate_is_shared_by_connections(s3_server):
    """Two connections at once through a 2 MB/s link take as long as 2 MB at 2 MB/s, not half of it."""
    import threading

    from tests.fixtures_s3 import admin_client

    client = admin_client(s3_server)
    client.create_bucket(Bucket="proxy-total-rate")
    client.put_object(Bucket="proxy-total-rate", Key="one-mb", Body=b"x" * 1_000_000, ACL="public-read")
    proxy = ThrottledProxy(s3_server, rate=2_000_000, total_rate=2_000_000)
    netloc = urlsplit(proxy.endpoint).netloc
    sizes = []

    def fetch():
        conn = http.client.HTTPConnection(netloc, timeout=30)
        conn.request("GET", "/proxy-total-rate/one-mb")
        sizes.append(len(conn.getresponse().read()))
        conn.close()

    try:
        t0 = time.perf_counter()
        threads = [threading.Thread(target=fetch) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sizes == [1_000_000] * 2
        assert time.perf_counter() - t0 >= 0.9  # each alone at 2 MB/s would take 0.5 s
    finally:
        proxy.close()
        client.delete_object(Bucket="proxy-total-rate", Key="one-mb")
        client.delete_bucket(Bucket="proxy-total-rate")
