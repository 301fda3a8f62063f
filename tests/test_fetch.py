"""Fetching against real local servers that misbehave: every call ends within its deadline and says why.

The `http_server` fixture (conftest) covers what http.server can do; RawServer below covers what it
cannot (drip, hang, truncate, gzip bomb without Content-Length). The elapsed-time asserts are deadline
checks with a generous bound, not benchmarks.
"""

from __future__ import annotations

import gzip
import socket
import threading
import time
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler
from typing import Callable

import pytest
from conftest import LocalServer, respond

from feedsvc.config import SourceConfig
from feedsvc.errors import FetchError
from feedsvc.fetch import Fetcher, next_try_at, parse_retry_after
from feedsvc.model import NotModified, Page, SourceState

UA = "feedsvc-test/1.0 (+https://example.org/feedsvc)"
HTML = "<html><head><title>t</title></head><body><p>Hello, feeds.</p></body></html>"


class RawServer:
    """A TCP server on 127.0.0.1 that runs `handle(conn)` per connection: for misbehaviour http.server won't do."""

    def __init__(self, handle: Callable[[socket.socket], None]) -> None:
        self.handle = handle
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()
        self.conns: list[socket.socket] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            self.conns.append(conn)
            threading.Thread(target=self._run, args=(conn,), daemon=True).start()

    def _run(self, conn: socket.socket) -> None:
        try:
            self.handle(conn)
        except OSError:
            pass  # the client hung up on us: that is the point of most of these servers
        finally:
            try:
                conn.close()
            except OSError:
                pass

    def url(self, path: str = "/page") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        self.stop.set()
        for c in self.conns:
            try:
                c.close()
            except OSError:
                pass
        self.sock.close()


def read_request(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


@pytest.fixture
def http_server():
    """conftest's server, but torn down in the background: its shutdown() waits out a 0.5 s poll."""
    server = LocalServer()
    server.route("/robots.txt", "User-agent: *\nAllow: /\n", headers={"Content-Type": "text/plain"})
    yield server
    threading.Thread(target=server.close, daemon=True).start()


@pytest.fixture
def raw_server():
    servers: list[RawServer] = []

    def make(handle: Callable[[socket.socket], None]) -> RawServer:
        s = RawServer(handle)
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.close()


def make_fetcher(**kw) -> Fetcher:
    kw.setdefault("user_agent", UA)
    kw.setdefault("host_delay", 0.0)
    f = Fetcher(**kw)
    f.retry_base = 0.05  # keep retries quick in tests
    return f


def src(url: str, **kw) -> SourceConfig:
    return SourceConfig(url=url, **kw)


def fetch_error(fetcher: Fetcher, url: str, now: datetime, **src_kw) -> tuple[FetchError, float]:
    t0 = time.monotonic()
    with pytest.raises(FetchError) as info:
        fetcher.fetch(src(url, **src_kw), None, now=now)
    return info.value, time.monotonic() - t0


# ---------------------------------------------------------------------- the happy path


def test_fetch_returns_decoded_page_with_validators_and_sends_user_agent(http_server, now):
    url = http_server.route("/p", HTML, headers={"Content-Type": "text/html; charset=utf-8", "ETag": '"v1"',
                                                 "Last-Modified": "Mon, 19 Jan 2026 10:00:00 GMT"})
    with make_fetcher() as f:
        page = f.fetch(src(url), None, now=now)
    assert isinstance(page, Page)
    assert (page.url, page.text, page.content_type, page.encoding) == (url, HTML, "text/html", "utf-8")
    assert (page.etag, page.last_modified, page.fetched_at, page.status) == (
        '"v1"', "Mon, 19 Jan 2026 10:00:00 GMT", now, 200)
    hits = http_server.hits_for("/p")
    assert len(hits) == 1 and hits[0].headers["User-Agent"] == UA
    assert http_server.hits_for("/robots.txt")[0].headers["User-Agent"] == UA
    assert "gzip" in hits[0].headers["Accept-Encoding"]


def test_conditional_get_round_trip(http_server, now):
    etag, lm = '"abc-123"', "Sun, 18 Jan 2026 08:00:00 GMT"

    def handler(h: BaseHTTPRequestHandler) -> None:
        if h.headers.get("If-None-Match") == etag and h.headers.get("If-Modified-Since") == lm:
            h.send_response(304)
            h.send_header("ETag", etag)
            h.end_headers()
            return
        body = HTML.encode()
        h.send_response(200)
        for k, v in (("ETag", etag), ("Last-Modified", lm), ("Content-Type", "text/html"),
                     ("Content-Length", str(len(body)))):
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(body)

    url = http_server.route("/c", handler=handler)
    with make_fetcher() as f:
        first = f.fetch(src(url), None, now=now)
        assert isinstance(first, Page) and (first.etag, first.last_modified) == (etag, lm)
        state = SourceState(url=url, etag=first.etag, last_modified=first.last_modified)
        later = now + timedelta(hours=1)
        second = f.fetch(src(url), state, now=later)
        forced = f.fetch(src(url), state, now=later, force=True)
    assert second == NotModified(url=url, fetched_at=later)
    assert isinstance(forced, Page)
    sent = http_server.hits_for("/c")
    assert "If-None-Match" not in sent[0].headers
    assert (sent[1].headers["If-None-Match"], sent[1].headers["If-Modified-Since"]) == (etag, lm)
    assert "If-None-Match" not in sent[2].headers and "If-Modified-Since" not in sent[2].headers


@pytest.mark.parametrize("etag", [
    '"会社案内</footer></body></html>"'.encode(),  # UTF-8 bytes, as some servers send
    b'W/"abc"', b'"a b  c"', b"abc", b'"tab\there"', b'"' + b"x" * 5000 + b'"'])
def test_an_odd_etag_goes_back_byte_for_byte(http_server, now, tmp_path, etag):
    """Whatever bytes a server puts in its ETag are kept (through the state) and sent back as they
    came, so that the page answers 304: a validator mangled on the way is a full download every run."""
    def handler(h: BaseHTTPRequestHandler) -> None:
        asked = h.headers.get("If-None-Match")
        same = asked is not None and asked.encode("latin-1") == etag  # (http.server decodes Latin-1)
        h.wfile.write(b"HTTP/1.1 " + (b"304 Not Modified" if same else b"200 OK") + b"\r\nETag: " + etag + b"\r\n")
        body = b"" if same else HTML.encode()
        h.wfile.write(b"Content-Type: text/html\r\nContent-Length: %d\r\n\r\n" % len(body) + body)

    from feedsvc.store import Store
    url = http_server.route("/odd", handler=handler)
    with make_fetcher() as f:
        first = f.fetch(src(url), None, now=now)
        assert isinstance(first, Page)
        with Store.open(tmp_path / "state.sqlite") as store:
            store.save_source_state(SourceState(url=url, etag=first.etag))
        with Store.open(tmp_path / "state.sqlite") as store:
            kept = store.source_state(url)
        assert f.fetch(src(url), kept, now=now) == NotModified(url=url, fetched_at=now)


def test_a_page_request_sends_what_session_get_sent(http_server, now):
    """The fetcher prepares a page's request itself (Session.request's generic merging of settings cost
    more than the preparing): it still sends the session's headers and cookies and the URL's credentials."""
    import base64

    url = http_server.route("/p", HTML, headers={"Content-Type": "text/html; charset=utf-8"})
    with make_fetcher() as f:
        f._session.cookies.set("sid", "42")  # as a site's Set-Cookie earlier in the run would
        f.fetch(src(url.replace("http://", "http://reader:secret@")), SourceState(url, etag='"e"'), now=now)
    sent = http_server.hits_for("/p")[0].headers
    assert (sent["User-Agent"], sent["Cookie"], sent["If-None-Match"], sent["Connection"]) == (
        UA, "sid=42", '"e"', "keep-alive")
    assert sent["Authorization"] == "Basic " + base64.b64encode(b"reader:secret").decode()
    assert "gzip" in sent["Accept-Encoding"] and sent["Accept"].startswith("text/html")


def test_a_page_url_is_sent_as_session_get_sends_it_every_time(http_server, now):
    """A URL's prepared form (quoting, IDNA) is kept across fetchers: every request of it is sent as
    requests prepares it, and a header requests refuses still fails the source, not the refresh."""
    import requests

    url = http_server.url("/ニュース/a b?q=é")
    expected = requests.Request("GET", url).prepare().path_url
    http_server.route(expected.split("?")[0], HTML, headers={"Content-Type": "text/html"})
    for _ in range(2):
        with make_fetcher() as f:
            assert isinstance(f.fetch(src(url, robots=False), None, now=now), Page)
    assert [h.path for h in http_server.hits] == [expected, expected]
    with make_fetcher() as f:
        with pytest.raises(FetchError) as info:
            f.fetch(src(url, robots=False), SourceState(url, etag='"e"\r\nX-Injected: 1'), now=now)
    assert info.value.kind == "network" and "Invalid" in info.value.message
    assert len(http_server.hits) == 2


def test_redirect_followed_and_final_url_reported(http_server, now):
    final = http_server.route("/new", HTML, headers={"Content-Type": "text/html"})
    url = http_server.route("/old", status=301, headers={"Location": "/new"})
    with make_fetcher() as f:
        page = f.fetch(src(url), None, now=now)
    assert isinstance(page, Page) and page.url == final and page.text == HTML


def test_cookies_a_response_sets_are_sent_back_within_the_run(http_server, now):
    """The fetcher hands its requests to requests' adapter, not Session.send(): the cookies a response
    sets are still kept (a redirect that sets one gets it back on the next hop, as with Session.send),
    and a redirect's body is read so that its connection serves the next hop."""
    ports: list[int] = []

    def gate(h: BaseHTTPRequestHandler) -> None:
        ports.append(h.client_address[1])
        body = b"moved " * 50_000
        h.send_response(302)
        h.send_header("Location", "/landing")
        h.send_header("Set-Cookie", "consent=yes; Path=/")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    def landing(h: BaseHTTPRequestHandler) -> None:
        ports.append(h.client_address[1])
        respond(h, HTML.encode(), "text/html")

    url = http_server.route("/gate", handler=gate)
    final = http_server.route("/landing", handler=landing)
    later = http_server.route("/later", HTML, headers={"Content-Type": "text/html"})
    with make_fetcher() as f:
        assert f.fetch(src(url, robots=False), None, now=now).url == final
        assert isinstance(f.fetch(src(later, robots=False), None, now=now), Page)
    assert "Cookie" not in http_server.hits_for("/gate")[0].headers
    assert http_server.hits_for("/landing")[0].headers["Cookie"] == "consent=yes"
    assert http_server.hits_for("/later")[0].headers["Cookie"] == "consent=yes"
    assert len(ports) == 2 and ports[0] == ports[1]  # one connection: the redirect's body was read


def test_gzip_body_is_decompressed(http_server, now):
    url = http_server.route("/gz", gzip.compress(HTML.encode()),
                            headers={"Content-Type": "text/html", "Content-Encoding": "gzip"})
    with make_fetcher() as f:
        page = f.fetch(src(url), None, now=now)
    assert isinstance(page, Page) and page.text == HTML


# ---------------------------------------------------------------------- misbehaving servers


def test_http_500_is_retried_then_reported(http_server, now):
    url = http_server.route("/e", "oops", status=500)
    with make_fetcher(max_retries=2, timeout=5) as f:
        err, elapsed = fetch_error(f, url, now)
    assert err.kind == "http" and "HTTP 500" in err.message and err.retry_after is None
    assert len(http_server.hits_for("/e")) == 3  # one try + two retries
    assert elapsed < 5 + 3


@pytest.mark.parametrize("status", [pytest.param(404, id="404"), pytest.param(403, id="403"),
                                    pytest.param(410, id="410")])
def test_other_4xx_are_not_retried(http_server, now, status):
    url = http_server.route("/x", "no", status=status)
    with make_fetcher(max_retries=2) as f:
        err, _ = fetch_error(f, url, now)
    assert err.kind == "http" and f"HTTP {status}" in err.message
    assert len(http_server.hits_for("/x")) == 1


def test_503_with_short_retry_after_sleeps_and_retries(http_server, now):
    url = http_server.route("/busy", "busy", status=503, headers={"Retry-After": "1"})
    with make_fetcher(max_retries=1, timeout=5) as f:
        err, elapsed = fetch_error(f, url, now)
    hits = http_server.hits_for("/busy")
    assert len(hits) == 2
    assert err.kind == "http" and "HTTP 503" in err.message and err.retry_after == 1
    assert elapsed < 5 + 3


@pytest.mark.parametrize("status,retry_after,expected", [
    pytest.param(503, "3600", 3600, id="503-seconds"),
    pytest.param(429, "120", 120, id="429-seconds"),
    pytest.param(429, "http-date+90", 90, id="429-http-date"),
])
def test_long_retry_after_is_not_slept_but_handed_back(http_server, now, status, retry_after, expected):
    # http.server stamps a real Date header, and an HTTP-date Retry-After is measured against it
    server_now = datetime.now(timezone.utc)
    headers = {"Retry-After": retry_after}
    if retry_after.startswith("http-date"):
        headers = {"Retry-After": format_datetime(server_now + timedelta(seconds=90), usegmt=True)}
    url = http_server.route("/slow-down", "later", status=status, headers=headers)
    with make_fetcher(max_retries=2, timeout=10) as f:
        err, elapsed = fetch_error(f, url, server_now)
    assert err.kind == "http" and f"HTTP {status}" in err.message
    assert err.retry_after == pytest.approx(expected, abs=2)
    assert len(http_server.hits_for("/slow-down")) == 1
    assert elapsed < 3  # nothing slept


def test_429_without_retry_after_is_not_retried(http_server, now):
    url = http_server.route("/r", "slow down", status=429)
    with make_fetcher(max_retries=2) as f:
        err, _ = fetch_error(f, url, now)
    assert err.kind == "http" and "429" in err.message
    assert len(http_server.hits_for("/r")) == 1


def test_one_byte_per_second_is_cut_at_the_deadline(raw_server, now):
    def drip(conn: socket.socket) -> None:
        read_request(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 1000\r\n\r\n")
        for _ in range(1000):
            conn.sendall(b"x")
            time.sleep(1)

    server = raw_server(drip)
    with make_fetcher(timeout=2) as f:
        err, elapsed = fetch_error(f, server.url(), now, robots=False)
    assert err.kind == "timeout" and "deadline" in err.message
    assert elapsed < 2 + 3


def test_headers_dripped_one_byte_at_a_time_are_cut_at_the_deadline(raw_server, now):
    # every socket read gets a byte well within the read timeout: only the deadline watchdog stops this
    def drip_headers(conn: socket.socket) -> None:
        read_request(conn)
        for b in b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nX-Padding: " + b"a" * 200:
            conn.sendall(bytes([b]))
            time.sleep(0.3)

    server = raw_server(drip_headers)
    with make_fetcher(timeout=2) as f:
        err, elapsed = fetch_error(f, server.url(), now, robots=False)
    assert err.kind == "timeout" and "deadline" in err.message
    assert elapsed < 2 + 3


def test_the_watchdog_fires_the_nearest_deadline_first_and_never_a_finished_request():
    from feedsvc.fetch import _Watch, _Watchdog

    dog = _Watchdog()
    slow, quick, done = _Watch(), _Watch(), _Watch()
    try:
        dog.arm(30, slow)  # the thread now sleeps until this one's time...
        dog.arm(0.2, done)
        done.finish()  # ...a request that ends in time is left alone
        dog.arm(0.3, quick)  # ...and a nearer deadline armed later wakes it up
        until = time.monotonic() + 5
        while not quick.fired and time.monotonic() < until:
            time.sleep(0.02)
        assert quick.fired
        assert not slow.fired and not done.fired
    finally:
        dog.close()


def test_many_requests_share_one_watchdog_thread(http_server, now):
    seen: list[tuple[int, int]] = []  # (timer threads, watchdog threads) while a request is in flight

    def page(req: BaseHTTPRequestHandler) -> None:
        live = threading.enumerate()
        seen.append((sum(isinstance(t, threading.Timer) for t in live),
                     sum(t.name == "feedsvc-fetch-watchdog" for t in live)))
        respond(req, HTML.encode(), "text/html; charset=utf-8")

    http_server.route("/p", handler=page)
    with make_fetcher(timeout=5) as f:
        for _ in range(20):
            assert isinstance(f.fetch(SourceConfig(url=http_server.url("/p"), robots=False), None, now=now), Page)
    assert len(seen) == 20
    assert all(timers == 0 and dogs == 1 for timers, dogs in seen), seen  # not a thread per request


def test_the_environments_proxy_is_used_and_no_proxy_bypasses_it(http_server, now, monkeypatch):
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "all_proxy",
                 "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    # the test server as a forward proxy: it is asked for the absolute URL
    http_server.route("http://feeds.invalid/p", HTML, headers={"Content-Type": "text/html; charset=utf-8"})
    monkeypatch.setenv("HTTP_PROXY", http_server.base)
    with make_fetcher(timeout=5) as f:
        page = f.fetch(SourceConfig(url="http://feeds.invalid/p", robots=False), None, now=now)
    assert isinstance(page, Page) and "Hello, feeds." in page.text
    assert [h.path for h in http_server.hits] == ["http://feeds.invalid/p"]

    http_server.route("/direct", HTML, headers={"Content-Type": "text/html; charset=utf-8"})
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    with make_fetcher(timeout=5) as f:
        assert isinstance(f.fetch(SourceConfig(url=http_server.url("/direct"), robots=False), None, now=now), Page)
    assert http_server.hits[-1].path == "/direct"


def test_server_that_accepts_and_never_answers(raw_server, now):
    server = raw_server(lambda conn: (read_request(conn), time.sleep(30)))
    with make_fetcher(timeout=2) as f:
        err, elapsed = fetch_error(f, server.url(), now, robots=False)
    assert err.kind == "timeout" and "sent no response" in err.message
    assert elapsed < 2 + 3


def test_truncated_body(raw_server, now):
    def truncate(conn: socket.socket) -> None:
        read_request(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 5000\r\n\r\n" + b"a" * 100)

    server = raw_server(truncate)
    with make_fetcher(timeout=5, max_retries=1) as f:
        err, elapsed = fetch_error(f, server.url(), now, robots=False)
    assert err.kind == "network" and "truncated" in err.message and "100 of 5000" in err.message.replace(",", "")
    assert elapsed < 5 + 3


def test_connection_refused(now):
    s = socket.create_server(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    with make_fetcher(timeout=5, max_retries=2) as f:
        err, elapsed = fetch_error(f, f"http://127.0.0.1:{port}/", now, robots=False)
    assert err.kind == "network" and "refused" in err.message.lower() and f"127.0.0.1:{port}" in err.message
    assert elapsed < 5 + 3


def test_10_mb_page_refused_by_content_length(raw_server, now):
    def big(conn: socket.socket) -> None:
        read_request(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 10000000\r\n\r\n")
        conn.sendall(b"a" * 10_000_000)  # the client hangs up before reading this

    server = raw_server(big)
    with make_fetcher(max_bytes=5_000_000) as f:
        err, _ = fetch_error(f, server.url(), now, robots=False)
    assert err.kind == "too-large" and "10,000,000" in err.message and "Content-Length" in err.message


def test_10_mb_page_without_content_length_stops_at_the_cap(raw_server, now):
    sent = []

    def endless(conn: socket.socket) -> None:
        read_request(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nConnection: close\r\n\r\n")
        for _ in range(160):  # 10 MB in 64 KB chunks, close-delimited
            conn.sendall(b"a" * 65536)
            sent.append(1)

    server = raw_server(endless)
    with make_fetcher(max_bytes=5_000_000, timeout=10) as f:
        err, elapsed = fetch_error(f, server.url(), now, robots=False)
    assert err.kind == "too-large" and "more than 5,000,000 bytes" in err.message
    assert elapsed < 10 + 3


def test_gzip_bomb_stops_at_the_cap_on_decoded_bytes(raw_server, now):
    bomb = gzip.compress(b"\0" * 60_000_000, compresslevel=6)  # ~60 KB on the wire, 60 MB decoded
    assert len(bomb) < 200_000

    def serve_bomb(conn: socket.socket) -> None:
        read_request(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Encoding: gzip\r\n"
                     b"Content-Length: %d\r\n\r\n" % len(bomb) + bomb)

    server = raw_server(serve_bomb)
    with make_fetcher(max_bytes=5_000_000, timeout=10) as f:
        err, elapsed = fetch_error(f, server.url(), now, robots=False)
    assert err.kind == "too-large" and "gzip decompression" in err.message
    assert elapsed < 10 + 3


def test_redirect_loop(http_server, now):
    http_server.route("/a", status=302, headers={"Location": "/b"})
    url_b = http_server.route("/b", status=302, headers={"Location": "/a"})
    with make_fetcher() as f:
        err, _ = fetch_error(f, http_server.url("/a"), now)
    assert err.kind == "redirects" and "loop" in err.message and url_b in err.message
    assert len(http_server.hits_for("/a")) == 1 and len(http_server.hits_for("/b")) == 1


def test_too_many_redirects(http_server, now):
    for i in range(10):
        http_server.route(f"/r{i}", status=301, headers={"Location": f"/r{i + 1}"})
    with make_fetcher(max_redirects=3) as f:
        err, _ = fetch_error(f, http_server.url("/r0"), now)
    assert err.kind == "redirects" and "more than 3 redirects" in err.message
    assert len(http_server.hits_for("/r4")) == 0


def test_empty_200(http_server, now):
    url = http_server.route("/empty", b"", headers={"Content-Type": "text/html"})
    with make_fetcher() as f:
        err, _ = fetch_error(f, url, now)
    assert err.kind == "empty" and "empty" in err.message


def test_wrong_charset_in_the_header_is_not_obeyed(http_server, now):
    body = '<html><head><meta charset="shift_jis"></head><body>株式会社①のお知らせ</body></html>'.encode("cp932")
    url = http_server.route("/sjis", body, headers={"Content-Type": "text/html; charset=utf-8"})
    with make_fetcher() as f:
        page = f.fetch(src(url), None, now=now)
    assert isinstance(page, Page) and "株式会社①のお知らせ" in page.text and page.encoding == "cp932"


def test_per_source_encoding_override(http_server, now):
    body = "<html><body>Привет, мир</body></html>".encode("koi8-r")
    url = http_server.route("/koi", body, headers={"Content-Type": "text/html; charset=windows-1251"})
    with make_fetcher() as f:
        page = f.fetch(src(url, encoding="koi8-r"), None, now=now)
    assert isinstance(page, Page) and "Привет, мир" in page.text and page.encoding == "koi8-r"


def test_binary_body_is_a_decode_error(http_server, now):
    url = http_server.route("/bin", bytes(range(256)) * 50, headers={"Content-Type": "text/html"})
    with make_fetcher() as f:
        err, _ = fetch_error(f, url, now)
    assert err.kind == "decode"


# ---------------------------------------------------------------------- robots.txt


def test_robots_txt_disallowing_the_path(http_server, now):
    http_server.route("/robots.txt", "User-agent: feedsvc-test\nDisallow: /private/\n\nUser-agent: *\nAllow: /\n")
    url = http_server.route("/private/news", HTML)
    open_url = http_server.route("/public/news", HTML)
    with make_fetcher() as f:
        err, _ = fetch_error(f, url, now)
        assert isinstance(f.fetch(src(open_url), None, now=now), Page)
    assert err.kind == "robots" and "/private/news" in err.message and "feedsvc-test" in err.message
    assert http_server.hits_for("/private/news") == []
    assert len(http_server.hits_for("/robots.txt")) == 1  # cached per host


def test_a_stored_robots_txt_is_parsed_once_for_every_fetcher_of_the_process(http_server, now, monkeypatch):
    """`feedsvc run` makes a fetcher a refresh, and each was handed the same stored robots.txt: it is
    parsed once, and a different copy (fetched again, or changed) is parsed anew, never served stale."""
    from feedsvc import fetch
    from feedsvc.model import RobotsTxt

    parsed: list[str] = []
    real = fetch._robots_rules
    monkeypatch.setattr(fetch, "_robots_rules", lambda url, status, body: parsed.append(body) or real(url, status, body))
    url = http_server.route("/private/news", HTML)
    origin = url.split("/private/")[0]
    stored = RobotsTxt(origin, 200, "User-agent: *\nDisallow: /private/\n", now - timedelta(hours=1))
    for _ in range(3):
        with make_fetcher(robots={origin: stored}) as f:
            err, _ = fetch_error(f, url, now)
            assert err.kind == "robots"
    assert len(parsed) == 1
    changed = RobotsTxt(origin, 200, "User-agent: *\nAllow: /\n", stored.fetched_at)  # same time, other text
    again = RobotsTxt(origin, 200, "User-agent: *\nAllow: /\n", now)
    for known in (changed, again):
        with make_fetcher(robots={origin: known}) as f:
            assert isinstance(f.fetch(src(url), None, now=now), Page)
    assert len(parsed) == 3
    assert http_server.hits_for("/robots.txt") == []  # the stored copies answered


def test_robots_false_skips_robots_txt_and_logs_it(http_server, now, caplog):
    http_server.route("/robots.txt", "User-agent: *\nDisallow: /\n")
    url = http_server.route("/p", HTML)
    with caplog.at_level("INFO", logger="feedsvc.fetch"), make_fetcher() as f:
        assert isinstance(f.fetch(src(url, robots=False), None, now=now), Page)
    assert http_server.hits_for("/robots.txt") == []
    assert any("robots" in r.message and r.levelname == "INFO" for r in caplog.records)


@pytest.mark.parametrize("status", [pytest.param(404, id="404-allow"), pytest.param(410, id="410-allow"),
                                    pytest.param(500, id="500-allow-and-log"),
                                    pytest.param(503, id="503-allow-and-log")])
def test_robots_txt_missing_or_broken_allows(http_server, now, status, caplog):
    http_server.route("/robots.txt", "User-agent: *\nDisallow: /\n", status=status)
    url = http_server.route("/p", HTML)
    with caplog.at_level("WARNING", logger="feedsvc.fetch"), make_fetcher() as f:
        assert isinstance(f.fetch(src(url), None, now=now), Page)
    if status >= 500:
        assert any("robots.txt" in r.message and str(status) in r.message for r in caplog.records)


def test_robots_txt_unreachable_allows(raw_server, now, caplog):
    def hang_robots_then_serve(conn: socket.socket) -> None:
        req = read_request(conn)
        if b"/robots.txt" in req.split(b"\r\n")[0]:
            conn.close()  # reset: robots unreachable
            return
        body = HTML.encode()
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))

    server = raw_server(hang_robots_then_serve)
    with caplog.at_level("WARNING", logger="feedsvc.fetch"), make_fetcher(timeout=5) as f:
        assert isinstance(f.fetch(src(server.url()), None, now=now), Page)
    assert any("robots.txt" in r.message and "allowing" in r.message for r in caplog.records)


# ---------------------------------------------------------------------- pacing and concurrency


class Clock:
    """Server-side record of when each request started and ended, and how many overlapped."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.starts: list[float] = []
        self.active = 0
        self.max_active = 0

    def handler(self, hold: float = 0.0, barrier: threading.Barrier | None = None):
        def handle(h: BaseHTTPRequestHandler) -> None:
            with self.lock:
                self.starts.append(time.monotonic())
                self.active += 1
                self.max_active = max(self.max_active, self.active)
            try:
                if barrier is not None:
                    barrier.wait()  # raises BrokenBarrierError unless the other host is in flight too
                time.sleep(hold)
                respond(h, HTML.encode(), "text/html")
            finally:
                with self.lock:
                    self.active -= 1
        return handle


def test_per_host_gap_and_one_request_at_a_time(http_server, now):
    clock = Clock()
    urls = [http_server.route(f"/n{i}", handler=clock.handler(hold=0.05)) for i in range(4)]
    gap = 0.3
    with make_fetcher(host_delay=gap, max_workers=4) as f:
        results = list(f.fetch_many([(src(u, robots=False), None) for u in urls], now=now))
    assert sorted(s.url for s, _ in results) == sorted(urls)
    assert all(isinstance(r, Page) for _, r in results)
    assert clock.max_active == 1
    gaps = [b - a for a, b in zip(clock.starts, clock.starts[1:])]
    assert len(gaps) == 3 and min(gaps) >= gap - 0.02, gaps


def test_a_hosts_pages_share_one_kept_alive_connection(http_server, now, caplog):
    """A host's pool holds 2 connections, not 10 (making and dropping the empty slots was a few percent of
    a 304): pages of one host are asked one at a time, so one connection serves them all, robots.txt too."""
    urls = [http_server.route(f"/k{i}", HTML, headers={"Content-Type": "text/html; charset=utf-8"}) for i in range(6)]
    with caplog.at_level("DEBUG", logger="urllib3"), make_fetcher(max_workers=8) as f:
        results = list(f.fetch_many([(src(u), None) for u in urls], now=now))
    assert all(isinstance(r, Page) for _, r in results)
    opened = [r for r in caplog.records if r.getMessage().startswith("Starting new HTTP connection")]
    assert len(opened) == 1 and not [r for r in caplog.records if "pool is full" in r.getMessage()]


def test_host_delays_override_per_hostname(http_server, now):
    clock = Clock()
    urls = [http_server.route(f"/h{i}", handler=clock.handler()) for i in range(2)]
    with make_fetcher(host_delay=0.0, host_delays={"127.0.0.1": 0.4}) as f:
        list(f.fetch_many([(src(u, robots=False), None) for u in urls], now=now))
    assert clock.starts[1] - clock.starts[0] >= 0.4 - 0.02


def test_robots_crawl_delay_widens_the_gap(http_server, now):
    clock = Clock()
    http_server.route("/robots.txt", "User-agent: *\nCrawl-delay: 1\nAllow: /\n")
    urls = [http_server.route(f"/cd{i}", handler=clock.handler()) for i in range(2)]
    with make_fetcher(host_delay=0.0) as f:
        list(f.fetch_many([(src(u), None) for u in urls], now=now))
    assert clock.starts[1] - clock.starts[0] >= 1 - 0.02  # urllib.robotparser reads whole seconds only


def test_two_hosts_are_fetched_concurrently(http_server, now):
    other = LocalServer(host="127.0.0.2")
    try:
        other.route("/robots.txt", "User-agent: *\nAllow: /\n")
        barrier = threading.Barrier(2, timeout=5)
        clock = Clock()
        a = http_server.route("/both", handler=clock.handler(barrier=barrier))
        b = other.route("/both", handler=clock.handler(barrier=barrier))
        with make_fetcher(max_workers=4, timeout=10) as f:
            results = dict((s.url, r) for s, r in f.fetch_many([(src(a), None), (src(b), None)], now=now))
        # each request waited at the barrier for the other: they were in flight at the same time
        assert all(isinstance(r, Page) for r in results.values()), results
        assert clock.max_active == 2
    finally:
        other.close()


def test_slow_hosts_get_every_fetching_thread(now):
    """Threads are added while the network keeps the running ones waiting (RAMP_AFTER): six hosts
    that each take 0.6 s to answer are all in flight at once, as with threads started up front."""
    servers = [LocalServer(host=f"127.0.0.{i}") for i in range(2, 8)]
    try:
        clock = Clock()
        urls = [srv.route("/slow", handler=clock.handler(hold=0.6)) for srv in servers]
        started = time.monotonic()
        with make_fetcher(max_workers=6, timeout=10) as f:
            results = list(f.fetch_many([(src(u, robots=False), None) for u in urls], now=now))
        assert all(isinstance(r, Page) for _, r in results), results
        assert clock.max_active == 6
        assert time.monotonic() - started < 6 * 0.6  # (one at a time would take 3.6 s)
    finally:
        for srv in servers:
            srv.close()


def test_fetch_many_reports_errors_as_values_and_keeps_going(http_server, now):
    ok = http_server.route("/ok", HTML)
    bad = http_server.route("/gone", status=404)
    with make_fetcher() as f:
        results = {s.url: r for s, r in f.fetch_many([(src(bad), None), (src(ok), None)], now=now)}
    assert isinstance(results[ok], Page)
    assert isinstance(results[bad], FetchError) and results[bad].kind == "http"


# ---------------------------------------------------------------------- local files


@pytest.mark.parametrize("name,content,ctype", [
    pytest.param("p.html", "<p>ok</p>", "text/html", id="html"),
    pytest.param("p.htm", "<p>ok</p>", "text/html", id="htm"),
    pytest.param("p.txt", "ok, plain", "text/plain", id="txt"),
    pytest.param("p.json", '{"ok": true}', "application/json", id="json"),
])
def test_file_urls_read_the_local_file(tmp_path, now, name, content, ctype):
    path = tmp_path / name
    path.write_bytes(content.encode("cp932") if name.endswith("html") else content.encode())
    with make_fetcher() as f:
        page = f.fetch(src(path.as_uri()), None, now=now)
    assert isinstance(page, Page)
    assert (page.text, page.content_type, page.url, page.fetched_at) == (content, ctype, path.as_uri(), now)


def test_missing_local_file(tmp_path, now):
    with make_fetcher() as f:
        err, _ = fetch_error(f, (tmp_path / "nope.html").as_uri(), now)
    assert err.kind == "file" and "nope.html" in err.message  # not "network": no network was involved


def test_local_sjis_file_is_decoded(tmp_path, now):
    path = tmp_path / "sjis.html"
    text = '<meta charset="Shift_JIS"><p>㈱髙島屋①</p>'
    path.write_bytes(text.encode("cp932"))
    with make_fetcher() as f:
        page = f.fetch(src(path.as_uri()), None, now=now)
    assert isinstance(page, Page) and page.text == text and page.encoding == "cp932"


# ---------------------------------------------------------------------- backoff


@pytest.mark.parametrize("failures,retry_after,expected", [
    pytest.param(1, None, timedelta(minutes=5), id="first-failure-base"),
    pytest.param(2, None, timedelta(minutes=10), id="doubles"),
    pytest.param(4, None, timedelta(minutes=40), id="doubles-again"),
    pytest.param(10, None, timedelta(hours=6), id="capped"),
    pytest.param(500, None, timedelta(hours=6), id="huge-count-capped"),
    pytest.param(0, None, timedelta(minutes=5), id="zero-means-base"),
    pytest.param(1, 3600.0, timedelta(hours=1), id="retry-after-longer-wins"),
    pytest.param(4, 60.0, timedelta(minutes=40), id="retry-after-shorter-ignored"),
    pytest.param(10, 86400.0, timedelta(days=1), id="retry-after-beyond-cap"),
])
def test_next_try_at(now, failures, retry_after, expected):
    assert next_try_at(failures, now, retry_after) == now + expected


@pytest.mark.parametrize("value,date,expected", [
    pytest.param("120", None, 120.0, id="seconds"),
    pytest.param("Tue, 20 Jan 2026 03:02:00 GMT", None, 120.0, id="http-date-vs-now"),
    pytest.param("Tue, 20 Jan 2026 03:02:00 GMT", "Tue, 20 Jan 2026 03:01:00 GMT", 60.0, id="http-date-vs-server-date"),
    pytest.param("Tue, 20 Jan 2026 02:00:00 GMT", None, 0.0, id="date-in-the-past"),
    pytest.param("soon", None, None, id="garbage"),
    pytest.param(None, None, None, id="absent"),
])
def test_parse_retry_after(now, value, date, expected):
    assert parse_retry_after(value, date, now) == expected


def test_fetching_waits_for_a_slow_reader_instead_of_piling_up_pages(tmp_path, now, monkeypatch):
    """fetch_many runs ahead of its caller by at most its queue (one page a thread) plus the page
    each thread holds: a refresh that saves slower than it fetches no longer keeps every page in memory."""
    done: list[str] = []
    real_fetch = Fetcher.fetch

    def counting_fetch(self, source, state, **kw):
        page = real_fetch(self, source, state, **kw)
        done.append(source.url)
        return page

    monkeypatch.setattr(Fetcher, "fetch", counting_fetch)
    sources = []
    for i in range(30):
        path = tmp_path / f"p{i}.html"
        path.write_text(f"<html><body><p>page {i}</p></body></html>", encoding="utf-8")
        sources.append((src(path.as_uri()), None))  # local files: each its own queue, all in parallel
    with make_fetcher(max_workers=3) as f:
        pages = f.fetch_many(sources, now=now)
        next(pages)
        time.sleep(1.0)  # the caller is busy saving
        assert len(done) <= 1 + 3 + 3  # taken + queued + one held by each thread
        assert len(list(pages)) == 29  # and nothing is lost once it reads on
    assert len(done) == 30
