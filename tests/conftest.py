"""Shared test fixtures: a real HTTP server on 127.0.0.1, the shared corpus, time.

The server is a real `ThreadingHTTPServer` in a thread: tests route paths to bytes,
headers, status codes or a handler function that may misbehave (drip, hang, reset).
Nothing on the main path mocks `requests`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable

import pytest
from pgserver import pg_server, pg_url  # noqa: F401  (fixtures: a real PostgreSQL server, a fresh database)

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"


@dataclass
class Route:
    body: bytes = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    handler: Callable[[BaseHTTPRequestHandler], None] | None = None


@dataclass
class Hit:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes = b""


def respond(handler: BaseHTTPRequestHandler, body: bytes, content_type: str, status: int = 200) -> None:
    """Send a whole response from a route's handler function."""
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def conditional(body: bytes, etag: str) -> Callable[[BaseHTTPRequestHandler], None]:
    """A route's handler that answers 304 to a matching If-None-Match, like a real server."""

    def handle(h: BaseHTTPRequestHandler) -> None:
        if h.headers.get("If-None-Match") == etag:
            h.send_response(304)
            h.send_header("ETag", etag)
            h.send_header("Content-Length", "0")
            h.end_headers()
            return
        h.send_response(200)
        h.send_header("Content-Type", "text/html; charset=utf-8")
        h.send_header("ETag", etag)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    return handle


class LocalServer:
    """A real HTTP server on 127.0.0.1 with routes the test sets and a log of the requests."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.routes: dict[str, Route] = {}
        self.hits: list[Hit] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:  # keep test output clean
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                server.hits.append(Hit(self.command, self.path, dict(self.headers.items()), body))
                route = server.routes.get(self.path) or server.routes.get(self.path.split("?")[0])
                if route is None:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if route.handler is not None:
                    route.handler(self)
                    return
                self.send_response(route.status)
                for k, v in route.headers.items():
                    self.send_header(k, v)
                if "Content-Length" not in route.headers:
                    self.send_header("Content-Length", str(len(route.body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(route.body)

            do_GET = do_POST = do_HEAD = _serve

        self.httpd = ThreadingHTTPServer((host, 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def base(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, path: str) -> str:
        return self.base + path

    def route(self, path: str, body: bytes | str = b"", status: int = 200,
              headers: dict[str, str] | None = None,
              handler: Callable[[BaseHTTPRequestHandler], None] | None = None) -> str:
        if isinstance(body, str):
            body = body.encode("utf-8")
        self.routes[path] = Route(body, status, dict(headers or {}), handler)
        return self.url(path)

    def hits_for(self, path: str) -> list[Hit]:
        return [h for h in self.hits if h.path.split("?")[0] == path]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def http_server():
    server = LocalServer()
    # robots.txt allows everything unless a test says otherwise
    server.route("/robots.txt", "User-agent: *\nAllow: /\n", headers={"Content-Type": "text/plain"})
    yield server
    server.close()


@pytest.fixture
def shared_dir() -> Path:
    """The project's ../shared folder (samples, corpus, Atom schema); skip where a clone has none."""
    if not (SHARED / "samples").is_dir():
        pytest.skip(f"needs the shared corpus at {SHARED} (present in CI, absent from a user's clone)")
    return SHARED


@pytest.fixture
def now() -> datetime:
    """A fixed 'now' for deterministic tests: the day after the sample page's newest story."""
    return datetime(2026, 1, 20, 3, 0, tzinfo=timezone.utc)

