"""robots.txt is no paced request: the page it guards follows at once, the gap applies between pages.

Without this, every host cost a full host_delay per run before its first page, and a refresh of N
hosts that all answer 304 took N / max_workers × host_delay (bench/refresh.py: 11 s -> 2.8 s at 50 hosts).
"""

from __future__ import annotations

import time
from http.server import BaseHTTPRequestHandler

from feedsvc.config import SourceConfig
from feedsvc.fetch import Fetcher
from feedsvc.model import Page

HTML = "<html><body><p>hello</p></body></html>"


def test_page_follows_robots_txt_without_the_host_delay(http_server, now):
    starts: dict[str, float] = {}

    def record(path: str, body: str, ctype: str):
        def handle(h: BaseHTTPRequestHandler) -> None:
            starts[path] = time.monotonic()
            data = body.encode()
            h.send_response(200)
            h.send_header("Content-Type", ctype)
            h.send_header("Content-Length", str(len(data)))
            h.end_headers()
            h.wfile.write(data)
        return handle

    http_server.route("/robots.txt", handler=record("/robots.txt", "User-agent: *\nAllow: /\n", "text/plain"))
    url = http_server.route("/page", handler=record("/page", HTML, "text/html"))
    with Fetcher(user_agent="feedsvc-test", host_delay=3.0) as f:
        got = f.fetch(SourceConfig(url=url), None, now=now)
    assert isinstance(got, Page)
    assert set(starts) == {"/robots.txt", "/page"}
    # a paced robots.txt would hold the page back the whole 3 s gap
    assert starts["/page"] - starts["/robots.txt"] < 1.5
