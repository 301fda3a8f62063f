"""Concurrency across hosts: fetch_many vs one-by-one, against local servers on 127.0.0.2 … 127.0.0.N.

    python bench/bench_fetch.py [hosts=6] [pages_per_host=4] [server_latency=0.1] [host_delay=0.2]

Each host answers after `server_latency` seconds; the Fetcher keeps `host_delay` between requests
to one host. The longest host queue takes about pages × max(latency, delay); fetch_many should come
close to that, one-by-one takes about hosts × that. Prints both times and their ratio.
"""

from __future__ import annotations

import sys
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from feedsvc.config import SourceConfig
from feedsvc.fetch import Fetcher
from feedsvc.model import Page


def serve(host: str, latency: float) -> ThreadingHTTPServer:
    body = b"<html><body><p>hello</p></body></html>"

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            time.sleep(latency)
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    httpd = ThreadingHTTPServer((host, 0), Handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return httpd


def main(argv: list[str]) -> int:
    hosts, pages = int(argv[0]) if argv else 6, int(argv[1]) if len(argv) > 1 else 4
    latency = float(argv[2]) if len(argv) > 2 else 0.1
    delay = float(argv[3]) if len(argv) > 3 else 0.2
    servers = [serve(f"127.0.0.{i + 2}", latency) for i in range(hosts)]
    jobs = [(SourceConfig(url=f"http://{s.server_address[0]}:{s.server_address[1]}/p{j}", robots=False), None)
            for s in servers for j in range(pages)]
    now = datetime.now(timezone.utc)
    longest = pages * max(latency, delay) - (delay - latency if delay > latency else 0)
    try:
        with Fetcher(user_agent="feedsvc-bench", host_delay=delay, max_workers=8) as f:
            t0 = time.perf_counter()
            many = list(f.fetch_many(jobs, now=now))
            t_many = time.perf_counter() - t0
        with Fetcher(user_agent="feedsvc-bench", host_delay=delay) as f:
            t0 = time.perf_counter()
            serial = [f.fetch(s, st, now=now) for s, st in jobs]
            t_serial = time.perf_counter() - t0
    finally:
        for s in servers:
            s.shutdown()
    ok = sum(isinstance(r, Page) for _, r in many) + sum(isinstance(r, Page) for r in serial)
    print(f"{hosts} hosts × {pages} pages, latency {latency} s, host_delay {delay} s; {ok}/{2 * len(jobs)} pages ok")
    print(f"longest host queue (ideal) ≈ {longest:.2f} s")
    print(f"fetch_many  {t_many:6.2f} s")
    print(f"one by one  {t_serial:6.2f} s   ({t_serial / t_many:.1f}x fetch_many)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
