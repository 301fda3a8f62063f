"""Soak: `feedsvc run` for N minutes on a 1-second schedule over many changing local sources.

Prints the daemon's resident memory (VmRSS), open file descriptors and threads every
--every seconds, then a verdict: flat or growing, with the fitted slope. The first
--warmup seconds are left out of the fit (imports, first SQLite pages, caches filling).

    python bench/soak.py                      # 10 minutes, 50 sources in 10 topics
    python bench/soak.py --minutes 1 --every 5
    python bench/soak.py --templated        # summaries alike but for their numbers

Sources are pages on a local HTTP server (127.0.0.1): each shows its 15 newest stories,
and a new story appears on every page every --story-every seconds, so every refresh has
new entries to store and old ones scroll off the page. Stories that left their page are
pruned after --retention (2 minutes), so the store reaches its steady size early in the run,
as a daemon's does after its retention period; the "stored" column shows it.
Exit code 0 when flat, 1 when growing.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from refresh import tree_rss_kb  # noqa: E402


WORDS = ("harbour council budget river school bridge election festival railway museum hospital farm storm court "
         "library market airport forest theatre factory stadium orchestra garden village tunnel ferry mayor "
         "drought vaccine satellite treaty merger strike harvest glacier volcano refinery parliament").split()


def summary(source: int, n: int, templated: bool) -> str:
    if templated:  # every story told with the same words but its numbers (see --templated)
        return f"What happened in story {n} of source {source}, told in one sentence of its own."
    rng = random.Random(source * 100_003 + n)
    return f"Report {n} from source {source}: " + " ".join(rng.sample(WORDS, 10)) + "."


def story_page(source: int, newest: int, templated: bool = False) -> bytes:
    items = "\n".join(
        f'<li class="story"><a href="/s{source}/story/{n}"><h3>Source {source} story {n}</h3></a>'
        f"<p>{summary(source, n, templated)}</p>"
        f'<time datetime="2026-01-{n % 28 + 1:02d}T09:{n % 60:02d}:00+00:00">Jan {n % 28 + 1}</time></li>'
        for n in range(newest, max(newest - 15, 0), -1))
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>Source {source}</title></head>"
            f"<body><ul>\n{items}\n</ul></body></html>").encode()


def start_pages(story_every: float, templated: bool) -> tuple[ThreadingHTTPServer, list[int]]:
    started = time.monotonic()
    hits = [0]

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            hits[0] += 1
            m = re.fullmatch(r"/s(\d+)", self.path)
            if self.path == "/robots.txt":
                body, ctype = b"User-agent: *\nAllow: /\n", "text/plain"
            elif m:
                newest = 3 + int((time.monotonic() - started) / story_every)
                body, ctype = story_page(int(m.group(1)), newest, templated), "text/html; charset=utf-8"
            else:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
    return httpd, hits


def write_config(folder: Path, base: str, sources: int, topics: int, retention: str = "2m") -> Path:
    lines = ["[feedsvc]", 'output_dir = "feeds"', 'state = "state/feedsvc.sqlite"', 'interval = "1s"',
             'jitter = "0s"', 'host_delay = "0s"', 'formats = ["atom", "rss", "json"]', f'retention = "{retention}"']
    for t in range(topics):
        lines += ["", "[[topics]]", f'id = "topic-{t}"', f'title = "Topic {t}"']
        for s in range(t, sources, topics):
            lines += ["[[topics.sources]]", f'url = "{base}/s{s}"', 'item = "li.story"', 'title = "h3"',
                      'link = "a@href"', 'summary = "p"', 'date = "time@datetime"']
    path = folder / "config.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def sample(pid: int) -> tuple[int, int, int]:
    """(VmRSS in KiB, open fds, threads) of a live process, from /proc.

    fds and threads come and go with the refresh in flight (sockets, SQLite, the lock file, the
    fetch pool): the floor of five readings 50 ms apart is what a leak would raise.
    """
    status = Path(f"/proc/{pid}/status").read_text()
    rss = int(re.search(r"^VmRSS:\s+(\d+) kB", status, re.M).group(1))  # type: ignore[union-attr]
    fds, threads = [], []
    for _ in range(5):
        fds.append(len(os.listdir(f"/proc/{pid}/fd")))
        status = Path(f"/proc/{pid}/status").read_text()
        threads.append(int(re.search(r"^Threads:\s+(\d+)", status, re.M).group(1)))  # type: ignore[union-attr]
        time.sleep(0.05)
    return rss, min(fds), min(threads)


def stored_stories(state: Path) -> int:
    """Stories in the daemon's store (read-only; 0 before it exists)."""
    if not state.exists():
        return 0
    try:
        db = sqlite3.connect(f"file:{state}?mode=ro", uri=True, timeout=5)
        try:
            return int(db.execute("SELECT count(*) FROM entries").fetchone()[0])
        finally:
            db.close()
    except sqlite3.Error:
        return -1


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of y over x (units of y per unit of x)."""
    n = len(points)
    if n < 2:
        return 0.0
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    var = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / var if var else 0.0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--sources", type=int, default=50)
    ap.add_argument("--topics", type=int, default=10)
    ap.add_argument("--every", type=float, default=30.0, help="seconds between samples (default 30)")
    ap.add_argument("--warmup", type=float, default=60.0, help="seconds left out of the fit (default 60)")
    ap.add_argument("--story-every", type=float, default=5.0, help="a new story per page every N seconds")
    ap.add_argument("--templated", action="store_true",
                    help="every summary the same sentence but its numbers (near-duplicate candidates pile up)")
    ap.add_argument("--keep", action="store_true", help="keep the work folder (feeds, state, log)")
    ap.add_argument("--retention", default="2m",
                    help="the daemon's retention (default 2m): a daemon holds about retention x story rate "
                         "stories once steady; with 30d a soak of minutes only shows its store growing")
    ap.add_argument("--probe", type=Path, metavar="FILE",
                    help="run the daemon under bench/memprobe.py, writing where its memory is to FILE every 10 s")
    args = ap.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="feedsvc-soak-"))
    httpd, hits = start_pages(args.story_every, args.templated)
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    config = write_config(work, base, args.sources, args.topics, args.retention)
    log_path = work / "daemon.log"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with log_path.open("wb") as log:
        launcher = [str(Path(__file__).resolve().parent / "memprobe.py"), str(args.probe.resolve())] if args.probe \
            else ["-m", "feedsvc"]
        proc = subprocess.Popen([sys.executable, *launcher, "--config", str(config), "run"],
                                cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT)
    print(f"soak: pid {proc.pid}, {args.sources} sources in {args.topics} topics, interval 1s, "
          f"retention {args.retention}, {args.minutes:g} min, work folder {work}")
    print(f"{'t (s)':>7} {'RSS (MiB)':>10} {'workers':>8} {'fds':>5} {'threads':>8} {'refreshes':>10} "
          f"{'entries':>8} {'stored':>7} {'hits':>7}")
    rows: list[tuple[float, int, int, int]] = []
    worker_rows: list[tuple[float, int]] = []  # RSS of the daemon's child processes (parse workers)
    started = time.monotonic()
    end = started + args.minutes * 60
    next_at = started
    try:
        while True:
            now = time.monotonic()
            if proc.poll() is not None:
                print(f"soak: the daemon exited with {proc.returncode}; log:\n{log_path.read_text()[-3000:]}")
                return 1
            if now >= next_at:
                t = now - started
                rss, fds, threads = sample(proc.pid)
                text = log_path.read_text(errors="replace")
                refreshes = len(re.findall(r"failed sources?, \d", text))
                entries = sum(int(n) for n in re.findall(r"topic-\d+: (\d+) entries", text)[-args.topics:])
                rows.append((t, rss, fds, threads))
                workers = tree_rss_kb(proc.pid) - rss
                worker_rows.append((t, workers))
                print(f"{t:7.0f} {rss / 1024:10.1f} {workers / 1024:8.1f} {fds:5d} {threads:8d} {refreshes:10d} "
                      f"{entries:8d} {stored_stories(work / 'state' / 'feedsvc.sqlite'):7d} {hits[0]:7d}", flush=True)
                next_at += args.every
                if now >= end:
                    break
            time.sleep(min(0.5, max(0.0, min(next_at, end) - time.monotonic())) or 0.05)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        httpd.shutdown()
    text = log_path.read_text(errors="replace")
    crashes = text.count("Traceback")
    failed = len(re.findall(r"[1-9]\d* failed sources?", text))
    fit = [(t, rss) for t, rss, _, _ in rows if t >= args.warmup] or [(t, rss) for t, rss, _, _ in rows]
    rss_slope = slope([(t / 60, rss / 1024) for t, rss in fit])  # MiB per minute
    fd_values = [fds for t, _, fds, _ in rows if t >= args.warmup] or [r[2] for r in rows]
    mean_rss = sum(r for _, r in fit) / len(fit) / 1024
    span = (fit[-1][0] - fit[0][0]) / 60 if len(fit) > 1 else 0.0
    growth = rss_slope * span
    flat_rss = abs(growth) <= max(2.0, 0.05 * mean_rss)
    # fds go up and down with the refresh in flight at the sampling instant (sockets, SQLite, the lock
    # file): a leak shows as the floor and the peak both rising, so compare the two halves of the run.
    half = len(fd_values) // 2
    first, second = fd_values[:half] or fd_values, fd_values[half:]
    fd_slope = slope([(t / 60, fds) for t, _, fds, _ in rows if t >= args.warmup])
    flat_fds = max(second) <= max(first) + 2
    print(f"\nRSS after warm-up: mean {mean_rss:.1f} MiB, slope {rss_slope * 60:+.2f} MiB/hour "
          f"({growth:+.2f} MiB over {span:.1f} min): {'flat' if flat_rss else 'GROWING'}")
    print(f"open fds after warm-up: first half {min(first)}..{max(first)}, second half {min(second)}..{max(second)}, "
          f"slope {fd_slope * 60:+.1f}/hour: {'flat' if flat_fds else 'GROWING'}")
    wfit = [(t / 60, kb / 1024) for t, kb in worker_rows if t >= args.warmup] or [(0.0, 0.0)]
    print(f"worker processes' RSS after warm-up: {min(w for _, w in wfit):.1f}..{max(w for _, w in wfit):.1f} MiB, "
          f"slope {slope(wfit) * 60:+.2f} MiB/hour (each worker is replaced after a number of tasks)")
    refreshes = len(re.findall(r"failed sources?, \d", text))
    print(f"refreshes: {refreshes}, with a failed source: {failed}, "
          f"tracebacks in the log: {crashes}, page requests: {hits[0]}")
    print("verdict:", "flat" if flat_rss and flat_fds and not crashes else "NOT flat")
    if args.keep:
        print(f"kept {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if flat_rss and flat_fds and not crashes else 1


if __name__ == "__main__":
    sys.exit(main())
