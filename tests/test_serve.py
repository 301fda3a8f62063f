"""serve: a real server on 127.0.0.1 (port 0) in a thread, hit with real HTTP.

Traversal attempts go through http.client or a raw socket, because requests and browsers
normalise '..' away before sending.
"""

from __future__ import annotations

import gzip
import http.client
import os
import socket
import threading
from collections.abc import Iterator
from email.utils import formatdate
from pathlib import Path

import pytest
import requests

from feedsvc.serve import make_server

FEED = b"<?xml version='1.0' encoding='UTF-8'?>\n<feed xmlns=\"http://www.w3.org/2005/Atom\">" + b" " * 2000 + b"</feed>\n"


class Running:
    def __init__(self, root: Path) -> None:
        self.server = make_server(root, "127.0.0.1", 0)
        self.host, self.port = self.server.server_address[:2]
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://{self.host}:{self.port}{path}"

    def raw(self, method: str, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        """Send the path exactly as given (no normalisation) with http.client."""
        conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
        try:
            conn.putrequest(method, path, skip_accept_encoding=True)
            for k, v in (headers or {}).items():
                conn.putheader(k, v)
            conn.endheaders()
            resp = conn.getresponse()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
        finally:
            conn.close()

    def socket_request(self, request_line: bytes) -> bytes:
        with socket.create_connection((self.host, self.port), timeout=10) as s:
            s.sendall(request_line + b"\r\nHost: x\r\nConnection: close\r\n\r\n")
            chunks = []
            while chunk := s.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[Running, Path]]:
    root = tmp_path / "feeds"
    root.mkdir()
    (root / "peace.atom").write_bytes(FEED)
    (root / "peace.rss").write_bytes(b"<rss version='2.0'><channel/></rss>")
    (root / "peace.json").write_bytes(b'{"version": "https://jsonfeed.org/version/1.1"}')
    (root / "index.opml").write_bytes(b"<opml version='2.0'/>")
    (root / "index.html").write_bytes(b"<!DOCTYPE html><title>Feeds</title>")
    (root / ".peace.atom.abc.tmp").write_bytes(b"half a feed")
    (root / "sub").mkdir()
    (root / "sub" / "index.html").write_bytes(b"<!DOCTYPE html><title>Sub</title>")
    (tmp_path / "secret.txt").write_bytes(b"SECRET outside the root")
    server = Running(root)
    yield server, root
    server.close()


@pytest.mark.parametrize("path,ctype", [
    pytest.param("/peace.atom", "application/atom+xml; charset=utf-8", id="atom"),
    pytest.param("/peace.rss", "application/rss+xml; charset=utf-8", id="rss"),
    pytest.param("/peace.json", "application/feed+json; charset=utf-8", id="json"),
    pytest.param("/index.opml", "text/x-opml; charset=utf-8", id="opml"),
    pytest.param("/index.html", "text/html; charset=utf-8", id="html"),
    pytest.param("/", "text/html; charset=utf-8", id="root-is-index"),
])
def test_content_types(site: tuple[Running, Path], path: str, ctype: str) -> None:
    server, root = site
    r = requests.get(server.url(path), headers={"Accept-Encoding": "identity"}, timeout=10)
    assert r.status_code == 200
    assert r.headers["Content-Type"] == ctype
    want = (root / (path.strip("/") or "index.html")).read_bytes()
    assert r.content == want and int(r.headers["Content-Length"]) == len(want)


def test_folder_without_slash_redirects_then_serves_its_index(site: tuple[Running, Path]) -> None:
    server, _ = site
    r = requests.get(server.url("/sub"), timeout=10)
    assert r.history and r.history[0].status_code == 301
    assert r.status_code == 200 and b"<title>Sub</title>" in r.content


def test_etag_and_last_modified_give_304(site: tuple[Running, Path]) -> None:
    server, root = site
    first = requests.get(server.url("/peace.atom"), headers={"Accept-Encoding": "identity"}, timeout=10)
    etag, last_modified = first.headers["ETag"], first.headers["Last-Modified"]
    assert etag.startswith('"') and last_modified == formatdate((root / "peace.atom").stat().st_mtime, usegmt=True)
    for headers in ({"If-None-Match": etag}, {"If-None-Match": f'W/{etag}, "other"'},
                    {"If-Modified-Since": last_modified}):
        r = requests.get(server.url("/peace.atom"), headers={"Accept-Encoding": "identity", **headers}, timeout=10)
        assert r.status_code == 304, headers
        assert r.content == b"" and r.headers["ETag"] == etag
    # a stale validator gets the full body
    assert requests.get(server.url("/peace.atom"), headers={"If-None-Match": '"stale"'}, timeout=10).status_code == 200
    old = formatdate((root / "peace.atom").stat().st_mtime - 3600, usegmt=True)
    assert requests.get(server.url("/peace.atom"), headers={"If-Modified-Since": old}, timeout=10).status_code == 200
    # changed bytes: new ETag, the old one no longer matches
    (root / "peace.atom").write_bytes(FEED.replace(b"</feed>", b"<!-- new --></feed>"))
    r = requests.get(server.url("/peace.atom"), headers={"If-None-Match": etag}, timeout=10)
    assert r.status_code == 200 and r.headers["ETag"] != etag


def test_gzip_only_when_asked(site: tuple[Running, Path]) -> None:
    server, root = site
    status, headers, body = server.raw("GET", "/peace.atom", {"Accept-Encoding": "gzip, deflate"})
    assert status == 200 and headers["content-encoding"] == "gzip" and headers["vary"] == "Accept-Encoding"
    assert gzip.decompress(body) == root.joinpath("peace.atom").read_bytes() and len(body) < len(FEED)
    status, headers, body = server.raw("GET", "/peace.atom", {"Accept-Encoding": "gzip;q=0"})
    assert "content-encoding" not in headers and body == FEED
    status, headers, body = server.raw("GET", "/peace.atom")
    assert "content-encoding" not in headers and body == FEED
    # the gzip representation revalidates with its own ETag
    _, gz_headers, _ = server.raw("GET", "/peace.atom", {"Accept-Encoding": "gzip"})
    status, _, _ = server.raw("GET", "/peace.atom", {"Accept-Encoding": "gzip", "If-None-Match": gz_headers["etag"]})
    assert status == 304


def test_head_has_the_headers_and_no_body(site: tuple[Running, Path]) -> None:
    server, _ = site
    status, headers, body = server.raw("HEAD", "/peace.atom")
    assert status == 200 and body == b""
    assert headers["content-length"] == str(len(FEED)) and "etag" in headers and "last-modified" in headers


def test_other_methods_are_refused(site: tuple[Running, Path]) -> None:
    server, root = site
    r = requests.post(server.url("/peace.atom"), data=b"x", timeout=10)
    assert r.status_code == 405 and r.headers["Allow"] == "GET, HEAD"
    assert root.joinpath("peace.atom").read_bytes() == FEED


@pytest.mark.parametrize("path", [
    pytest.param("/../secret.txt", id="dotdot"),
    pytest.param("/../../../../etc/passwd", id="dotdot-etc-passwd"),
    pytest.param("/sub/../../secret.txt", id="dotdot-inside"),
    pytest.param("/%2e%2e/secret.txt", id="encoded-dots"),
    pytest.param("/%2E%2E%2Fsecret.txt", id="encoded-dots-slash-upper"),
    pytest.param("/..%2fsecret.txt", id="encoded-slash"),
    pytest.param("/..%5csecret.txt", id="encoded-backslash"),
    pytest.param("/..\\secret.txt", id="backslash"),
    pytest.param("/%252e%252e/secret.txt", id="double-encoded"),
    pytest.param("/peace.atom%00.html", id="encoded-nul"),
    pytest.param("//etc/passwd", id="double-slash-absolute"),
    pytest.param("/etc/passwd", id="absolute"),
    pytest.param("/./peace.atom", id="dot-segment"),
    pytest.param("/.peace.atom.abc.tmp", id="temp-file"),
    pytest.param("/nope.atom", id="missing"),
    pytest.param("http://evil.example/../secret.txt", id="absolute-form"),
])
def test_nothing_outside_root_and_no_hidden_files(site: tuple[Running, Path], path: str) -> None:
    server, _ = site
    status, _, body = server.raw("GET", path)
    assert status in (400, 403, 404), (path, status)
    assert b"SECRET" not in body and b"root:" not in body and b"half a feed" not in body


@pytest.mark.parametrize("line", [
    pytest.param(b"GET /../secret.txt HTTP/1.1", id="dotdot"),
    pytest.param(b"GET /%2e%2e/secret.txt HTTP/1.1", id="encoded"),
    pytest.param(b"GET /\x00/../secret.txt HTTP/1.1", id="nul"),
    pytest.param(b"GET ../secret.txt HTTP/1.1", id="relative"),
])
def test_raw_socket_traversal(site: tuple[Running, Path], line: bytes) -> None:
    server, _ = site
    response = server.socket_request(line)
    status = int(response.split(b" ", 2)[1])
    assert status in (400, 403, 404) and b"SECRET" not in response


def test_symlinks_out_of_root_are_refused_and_inside_ones_served(site: tuple[Running, Path]) -> None:
    server, root = site
    os.symlink(root.parent / "secret.txt", root / "leak.atom")
    os.symlink(root.parent, root / "up")
    os.symlink(root / "peace.atom", root / "alias.atom")
    for path in ("/leak.atom", "/up/secret.txt", "/up/"):
        status, _, body = server.raw("GET", path)
        assert status in (403, 404) and b"SECRET" not in body, path
    status, _, body = server.raw("GET", "/alias.atom")
    assert status == 200 and body == FEED


def test_make_server_creates_a_missing_root(tmp_path: Path) -> None:
    server = Running(tmp_path / "not-yet")
    try:
        assert (tmp_path / "not-yet").is_dir()
        assert server.raw("GET", "/")[0] == 404
    finally:
        server.close()
