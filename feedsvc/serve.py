"""A small static file server for output_dir: `feedsvc serve` (and `feedsvc run --serve`).

Enough for a small setup or a look on localhost: correct feed content types, ETag and
Last-Modified with 304, gzip when the client asks, HEAD. A real deployment puts nginx (or any
static host) in front of output_dir instead; see the README.

Never a file outside root: the raw request path is checked before and after percent-decoding
("..", ".", empty segments, encoded separators or dots, backslashes, NUL), dotfiles (publish's
temp files) are hidden, and the resolved path (symlinks followed) must still be inside root.
Bounded: a connection silent for IDLE_TIMEOUT (between requests or within one) is closed, so is one
whose request head takes longer than HEADER_TIMEOUT however it is dripped; at most MAX_CONNECTIONS
are served at once (the next ones get a 503 at once, not a thread each). SIGTERM stops it with exit
code 0 and one line. Stdlib only.
"""

from __future__ import annotations

import gzip
import hashlib
import http.server
import logging
import re
import signal
import socket
import sys
import threading
from email.utils import formatdate, parsedate_to_datetime
from pathlib import Path
from urllib.parse import unquote, urlsplit

from feedsvc import __version__

log = logging.getLogger(__name__)

CONTENT_TYPES = {
    ".atom": "application/atom+xml; charset=utf-8",
    ".rss": "application/rss+xml; charset=utf-8",
    ".json": "application/feed+json; charset=utf-8",
    ".opml": "text/x-opml; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".xml": "application/xml; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}
DEFAULT_TYPE = "application/octet-stream"
IDLE_TIMEOUT = 15.0  # seconds a connection may stay silent (keep-alive, or a request sent slowly)
HEADER_TIMEOUT = 30.0  # seconds for a whole request head, however it is dripped
MAX_CONNECTIONS = 64  # connections served at once: each holds a thread
# index.html carries no script; say so to the browser too.
HTML_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src http: https:; base-uri 'none'; form-action 'none'"
# Encoded forms of '.', '/', '\' and NUL have no business in a path to a feed file.
_ENCODED_SPECIAL = re.compile(r"%(2e|2f|5c|00)", re.IGNORECASE)


class _Refused(Exception):
    def __init__(self, status: int, why: str) -> None:
        super().__init__(why)
        self.status, self.why = status, why


class _Redirect(Exception):
    def __init__(self, location: str) -> None:
        super().__init__(location)
        self.location = location


def resolve_request_path(root: Path, target: str) -> Path:
    """The file under `root` that the request target names. Raises _Refused or _Redirect.

    `root` must already be resolved (absolute, symlinks followed).
    """
    if target.startswith(("http://", "https://")):  # absolute-form request target (proxies)
        target = urlsplit(target).path or "/"
    raw = target.split("?", 1)[0].split("#", 1)[0]
    if not raw.startswith("/"):
        raise _Refused(400, "request path must start with /")
    if "\x00" in raw or "\\" in raw or _ENCODED_SPECIAL.search(raw):
        raise _Refused(403, "encoded dot, slash, backslash or NUL in path")
    try:
        path = unquote(raw, errors="strict")
    except UnicodeDecodeError:
        raise _Refused(400, "path is not UTF-8") from None
    if "\x00" in path or "\\" in path:
        raise _Refused(403, "NUL or backslash in path")
    segments = path.split("/")[1:]
    is_dir_request = segments[-1] == ""
    if is_dir_request:
        segments = segments[:-1]
    for seg in segments:
        if seg in ("", ".", ".."):
            raise _Refused(403, "'.', '..' or an empty segment in path")
        if seg.startswith("."):
            raise _Refused(404, "hidden file")  # dotfiles: publish's temp files, .git, …
    candidate = root.joinpath(*segments)
    real = candidate.resolve()  # follows symlinks: where the bytes really are
    if real != root and not real.is_relative_to(root):
        raise _Refused(403, "resolves outside the served folder")
    if real.is_dir():
        if not is_dir_request:
            raise _Redirect(path + "/")
        real = (real / "index.html").resolve()
        if not real.is_relative_to(root):
            raise _Refused(403, "index.html resolves outside the served folder")
    elif is_dir_request:
        raise _Refused(404, "not a folder")
    if not real.is_file():
        raise _Refused(404, "no such file")
    return real


def _accepts_gzip(header: str | None) -> bool:
    if not header:
        return False
    for part in header.split(","):
        token, _, params = part.strip().partition(";")
        if token.strip().lower() not in ("gzip", "x-gzip", "*"):
            continue
        m = re.search(r"q\s*=\s*([0-9.]+)", params)
        try:
            return m is None or float(m.group(1)) > 0
        except ValueError:
            return False
    return False


def _etag_matches(header: str, etags: set[str]) -> bool:
    if header.strip() == "*":
        return True
    # weak comparison (RFC 9110 13.1.2): W/ prefixes do not matter for If-None-Match
    given = {t.strip().removeprefix("W/") for t in header.split(",")}
    return bool(given & etags)


def _make_handler(root: Path) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = f"feedsvc/{__version__}"
        timeout = IDLE_TIMEOUT  # socketserver sets it on the connection: every read is bounded

        def handle_one_request(self) -> None:
            # a client dripping its request head a byte per read defeats the per-read timeout: the
            # connection is shut down when the whole head has not come within HEADER_TIMEOUT
            timer = threading.Timer(HEADER_TIMEOUT, self._cut_off)
            timer.daemon = True
            timer.start()
            self._timer = timer
            try:
                super().handle_one_request()
            finally:
                timer.cancel()

        def parse_request(self) -> bool:
            try:
                return super().parse_request()  # (reads the header lines)
            finally:
                self._timer.cancel()  # the head is in: the rest is ours to send

        def _cut_off(self) -> None:
            log.info("%s: request head not complete within %g s; closing", self.address_string(), HEADER_TIMEOUT)
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

        def version_string(self) -> str:  # the Server header: no Python version for strangers
            return self.server_version

        def log_message(self, format: str, *args: object) -> None:
            log.info("%s %s", self.address_string(), format % args)

        def do_GET(self) -> None:
            self._serve(head=False)

        def do_HEAD(self) -> None:
            self._serve(head=True)

        def _not_allowed(self) -> None:
            self._plain(405, "method not allowed\n", {"Allow": "GET, HEAD"})

        do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_TRACE = do_CONNECT = _not_allowed

        def _plain(self, status: int, text: str, headers: dict[str, str] | None = None) -> None:
            body = text.encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("X-Content-Type-Options", "nosniff")
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _serve(self, head: bool) -> None:
            try:
                path = resolve_request_path(root, self.path)
            except _Redirect as r:
                self._plain(301, "moved\n", {"Location": r.location})
                return
            except _Refused as r:
                log.info("refused %r: %s", self.path, r.why)
                self._plain(r.status, {400: "bad request\n", 403: "forbidden\n"}.get(r.status, "not found\n"))
                return
            try:
                data = path.read_bytes()
                mtime = path.stat().st_mtime
            except OSError:
                self._plain(404, "not found\n")
                return

            digest = hashlib.sha256(data).hexdigest()[:32]
            gz = _accepts_gzip(self.headers.get("Accept-Encoding"))
            etag = f'"{digest}-gz"' if gz else f'"{digest}"'  # each representation has its own tag
            headers = {
                "ETag": etag,
                "Last-Modified": formatdate(mtime, usegmt=True),
                "Vary": "Accept-Encoding",
                "Cache-Control": "no-cache",  # revalidate each time: cheap with 304s
                "X-Content-Type-Options": "nosniff",
            }
            ctype = CONTENT_TYPES.get(path.suffix.lower(), DEFAULT_TYPE)
            if path.suffix.lower() == ".html":
                headers["Content-Security-Policy"] = HTML_CSP

            if self._not_modified(mtime, {f'"{digest}"', f'"{digest}-gz"'}):
                self.send_response(304)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                return

            body = gzip.compress(data, mtime=0) if gz else data  # mtime=0: same bytes every time
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            if gz:
                self.send_header("Content-Encoding", "gzip")
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            if not head:
                self.wfile.write(body)

        def _not_modified(self, mtime: float, etags: set[str]) -> bool:
            inm = self.headers.get("If-None-Match")
            if inm is not None:  # RFC 9110 13.1.3: If-None-Match wins over If-Modified-Since
                return _etag_matches(inm, etags)
            ims = self.headers.get("If-Modified-Since")
            if ims:
                try:
                    since = parsedate_to_datetime(ims).timestamp()
                except (TypeError, ValueError, IndexError, OverflowError):
                    return False
                return int(mtime) <= since
            return False

    return Handler


class BoundedHTTPServer(http.server.ThreadingHTTPServer):
    """A thread per connection, at most `max_connections` of them; beyond, a 503 and close."""

    daemon_threads = True
    max_connections = MAX_CONNECTIONS

    def server_activate(self) -> None:
        super().server_activate()
        self._slots = threading.BoundedSemaphore(self.max_connections)

    def process_request(self, request, client_address):  # type: ignore[no-untyped-def]
        if not self._slots.acquire(blocking=False):
            log.warning("%s: refused, %d connections already open", client_address[0], self.max_connections)
            try:
                request.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
                                b"Retry-After: 5\r\nConnection: close\r\n\r\n")
            except OSError:
                pass
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request, client_address):  # type: ignore[no-untyped-def]
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()


def make_server(root: Path, host: str = "127.0.0.1", port: int = 8080) -> http.server.ThreadingHTTPServer:
    """A bound, not yet running server for `root` (port 0: any free port; see server.server_address)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)  # `feedsvc serve` before the first refresh: an empty folder
    server_class = _BoundedHTTPServer6 if ":" in host else BoundedHTTPServer
    return server_class((host, port), _make_handler(root.resolve()))


class _BoundedHTTPServer6(BoundedHTTPServer):
    address_family = socket.AF_INET6  # --host ::1


class _Stop(Exception):
    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def serve(root: Path, host: str = "127.0.0.1", port: int = 8080) -> None:
    """Serve `root` until SIGTERM or Ctrl-C; either ends it normally, with one line on stderr."""
    server = make_server(root, host, port)
    bound_host, bound_port = server.server_address[:2]
    # One access line per request, unless the user asked for errors only (--quiet sets ERROR)
    if logging.getLogger().getEffectiveLevel() <= logging.WARNING and log.getEffectiveLevel() > logging.INFO:
        log.setLevel(logging.INFO)
    log.debug("serving %s on http://%s:%s/", Path(root).resolve(), bound_host, bound_port)  # (cli says it)

    def on_signal(signum: int, frame: object) -> None:
        raise _Stop(signum)  # out of serve_forever (shutdown() from this thread would wait for itself)

    previous = signal.signal(signal.SIGTERM, on_signal)
    stopped_by = "Ctrl-C"
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    except _Stop as stop:
        stopped_by = signal.Signals(stop.signum).name
    finally:
        signal.signal(signal.SIGTERM, previous)
        server.server_close()
    print(f"feedsvc serve: stopped ({stopped_by})", file=sys.stderr)
