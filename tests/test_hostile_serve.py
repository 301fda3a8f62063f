"""Issue 19.3: `serve` bounds what a stranger can hold: idle and slow connections are closed, the
number of connections is capped, and SIGTERM ends it with exit code 0 and one line.

Real servers on 127.0.0.1 with the limits made small for the test; raw sockets play the client.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests

from test_robust_support import env, feedsvc_argv, write_config

import feedsvc.serve as serve_mod
from feedsvc.serve import BoundedHTTPServer, make_server


@pytest.fixture
def running(tmp_path: Path):
    made = []

    def start() -> tuple[str, int]:
        (tmp_path / "site").mkdir(exist_ok=True)
        (tmp_path / "site" / "a.atom").write_bytes(b"<feed/>")
        server = make_server(tmp_path / "site", "127.0.0.1", 0)
        threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True).start()
        made.append(server)
        return server.server_address[:2]

    yield start
    for server in made:
        server.shutdown()
        server.server_close()


def closed_within(sock: socket.socket, limit: float) -> float:
    """Seconds until the server closes `sock` (reads EOF or a reset); fails after `limit`."""
    sock.settimeout(limit)
    t0 = time.monotonic()
    try:
        while sock.recv(4096):
            pass
    except ConnectionResetError:
        pass
    except TimeoutError:
        raise AssertionError(f"still open after {limit} s") from None
    return time.monotonic() - t0


def test_an_idle_connection_is_closed_after_the_idle_timeout(running, monkeypatch):
    monkeypatch.setattr(serve_mod, "IDLE_TIMEOUT", 0.5)
    host, port = running()
    with socket.create_connection((host, port)) as s:
        assert closed_within(s, 3 * 0.5 + 2) >= 0.3


def test_an_idle_keep_alive_connection_is_closed_too(running, monkeypatch):
    monkeypatch.setattr(serve_mod, "IDLE_TIMEOUT", 0.5)
    host, port = running()
    with socket.create_connection((host, port)) as s:
        s.sendall(b"GET /a.atom HTTP/1.1\r\nHost: x\r\n\r\n")
        s.settimeout(5)
        assert s.recv(4096).startswith(b"HTTP/1.1 200")
        closed_within(s, 3 * 0.5 + 2)


def test_a_request_head_dripped_byte_by_byte_is_cut_off(running, monkeypatch):
    # every read brings a byte well within the idle timeout: only the head's deadline ends it
    monkeypatch.setattr(serve_mod, "IDLE_TIMEOUT", 5.0)
    monkeypatch.setattr(serve_mod, "HEADER_TIMEOUT", 1.0)
    host, port = running()
    with socket.create_connection((host, port)) as s:
        t0 = time.monotonic()
        closed = False
        for b in b"GET /a.atom HTTP/1.1\r\nX-Pad: " + b"a" * 100:
            try:
                s.sendall(bytes([b]))
            except OSError:
                closed = True
                break
            time.sleep(0.1)
            if time.monotonic() - t0 > 3 * 1.0:
                break
        if not closed:
            closed_within(s, 2)
        assert time.monotonic() - t0 < 3 * 1.0 + 2


def test_connections_beyond_the_cap_get_a_503_not_a_thread(running, monkeypatch):
    monkeypatch.setattr(BoundedHTTPServer, "max_connections", 2)
    host, port = running()
    held = [socket.create_connection((host, port)) for _ in range(2)]
    try:
        time.sleep(0.2)
        with socket.create_connection((host, port)) as s:
            s.settimeout(5)
            assert s.recv(4096).startswith(b"HTTP/1.1 503")
        held.pop().close()  # a slot comes free
        deadline = time.monotonic() + 5
        while True:
            try:
                r = requests.get(f"http://{host}:{port}/a.atom", timeout=5)
            except requests.ConnectionError:
                r = None
            if r is not None and r.status_code == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert r is not None and r.status_code == 200
    finally:
        for s in held:
            s.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_sigterm_exits_0_with_one_line_and_requests_are_logged(tmp_path):
    config = write_config(tmp_path / "config.toml", [
        {"id": "t", "title": "T", "sources": [{"url": "page.html"}]}])
    (tmp_path / "feeds").mkdir()
    (tmp_path / "feeds" / "t.atom").write_bytes(b"<feed/>")
    port = free_port()
    proc = subprocess.Popen(feedsvc_argv(config, "serve", "--port", str(port)), cwd=tmp_path, env=env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                assert requests.get(f"http://127.0.0.1:{port}/t.atom", timeout=2).status_code == 200
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline and proc.poll() is None, "serve did not start"
                time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert [line for line in err.splitlines() if "stopped" in line] == ["feedsvc serve: stopped (SIGTERM)"]
    assert any("GET /t.atom" in line and " 200 " in line for line in err.splitlines()), err
