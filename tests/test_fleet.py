"""Several `feedsvc run` workers and a cron refresh against one PostgreSQL state (issue 21).

Real processes, a real PostgreSQL server (tests/pgserver.py) and real loopback sites: the
schedule lives in the state, leases say which worker refreshes which topic, and a worker
killed with kill -9 loses its topics to the other within a lease period.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import feedparser
import pytest

from conftest import LocalServer, respond

TOPICS = 40
INTERVAL = 6.0  # seconds between refreshes of one topic
LEASE = 3.0  # seconds a dead worker keeps its topics


class Sites:
    """TOPICS listing pages on two loopback hosts, each request logged with the time it arrived."""

    def __init__(self) -> None:
        self.servers = [LocalServer("127.0.0.1"), LocalServer("127.0.0.2")]
        self.fetched: dict[str, list[float]] = defaultdict(list)
        self.lock = threading.Lock()
        self.urls: list[str] = []
        for server in self.servers:
            server.route("/robots.txt", "User-agent: *\nAllow: /\n", headers={"Content-Type": "text/plain"})
        for n in range(TOPICS):
            server = self.servers[n % 2]
            path = f"/topic/{n}"
            server.route(path, handler=self.page(n, path))
            self.urls.append(server.url(path))

    def page(self, n: int, path: str):  # type: ignore[no-untyped-def]
        def handler(h: BaseHTTPRequestHandler) -> None:
            with self.lock:
                self.fetched[path].append(time.monotonic())
            # a new story every 10 s, so that the workers write as well as read
            newest = int(time.time() // 10) % 1000
            items = "".join(f'<li><a href="/topic/{n}/story-{k}">Topic {n}: story number {k} of the day</a>'
                            f"<p>What happened in story {k} of topic {n}, told in a sentence or two.</p></li>"
                            for k in range(newest, newest - 5, -1))
            respond(h, f"<html><body><ul>{items}</ul></body></html>".encode(), "text/html; charset=utf-8")
        return handler

    def close(self) -> None:
        for server in self.servers:
            server.close()


def write_config(tmp_path: Path, urls: list[str]) -> Path:
    topics = "".join(f'\n[[topics]]\nid = "t{n}"\ntitle = "Topic {n}"\nsources = [{{url = "{url}"}}]\n'
                     for n, url in enumerate(urls))
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[feedsvc]\noutput_dir = "feeds"\ninterval = "{INTERVAL:g}s"\njitter = "0s"\n'
                   f'host_delay = "0s"\nlease = "{LEASE:g}s"\ntimeout = "10s"\n{topics}', encoding="utf-8")
    return cfg


def argv(cfg: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "feedsvc", "--config", str(cfg), *args]


def test_two_workers_and_cron_share_one_postgresql(tmp_path, pg_url):
    sites = Sites()
    cfg = write_config(tmp_path, sites.urls)
    env = {**os.environ, "FEEDSVC_STATE": pg_url}
    logs = [tmp_path / f"worker{i}.log" for i in range(2)]
    workers = [subprocess.Popen(argv(cfg, "-v", "run"), cwd=tmp_path, env=env, stdout=log.open("wb"),
                                stderr=subprocess.STDOUT) for log in logs]
    try:
        started = time.monotonic()
        time.sleep(6)
        # a cron refresh beside the workers: it takes the topics no worker holds, skips the others
        cron = subprocess.run(argv(cfg, "refresh"), cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=60)
        assert cron.returncode in (0, 3), cron.stderr
        assert all("skipped:" in line and "is refreshing it" in line
                   for line in cron.stderr.splitlines()), cron.stderr
        time.sleep(max(0.0, 24 - (time.monotonic() - started)))

        # every topic is refreshed on schedule, each due time by one process only
        checked = time.monotonic()
        late_by = INTERVAL + 5  # taken within a poll (1 s); its place in a batch varies (slow on a loaded CI)
        with sites.lock:
            fetched = {p: list(t) for p, t in sites.fetched.items()}
        assert len(fetched) == TOPICS
        for path, times in fetched.items():
            gaps = [b - a for a, b in zip(times, times[1:])]
            assert len(times) >= 3 and max(gaps) <= late_by and checked - times[-1] <= late_by, \
                f"{path} not refreshed every {INTERVAL} s: fetched at {[round(t - started, 1) for t in times]}"
            # a cron refresh may come early (it refreshes now); workers never fetch one due time twice
            assert sum(g < INTERVAL * 0.5 for g in gaps) <= 1, f"{path} fetched twice for one due time: {gaps}"

        status = subprocess.run(argv(cfg, "status", "--json"), cwd=tmp_path, env=env, capture_output=True,
                                text=True, timeout=60)
        shown = json.loads(status.stdout)
        assert len(shown["workers"]) == 2
        assert "password" not in status.stdout
        names = {w["name"] for w in shown["workers"]}
        assert len(names) == 2
        by = {t["fleet"]["last_worker"] for t in shown["topics"]}  # both workers took a share
        assert names <= by, (names, by)

        # kill -9 one worker: within a lease period (plus a poll and an interval) its topics are
        # refreshed by the other
        workers[0].send_signal(signal.SIGKILL)
        workers[0].wait(timeout=10)
        killed = time.monotonic()
        time.sleep(LEASE + INTERVAL + 3)
        with sites.lock:
            late = [p for p, times in sites.fetched.items() if not any(t > killed + LEASE for t in times)]
        assert not late, f"not refreshed after the kill: {late}"

        # SIGHUP: a topic removed from the config is no longer taken
        write_config(tmp_path, sites.urls[:-4])
        workers[1].send_signal(signal.SIGHUP)
        time.sleep(1.5)
        reloaded = time.monotonic()
        time.sleep(INTERVAL + 2)
        with sites.lock:
            after = {p for p, times in sites.fetched.items() if any(t > reloaded for t in times)}
        removed = after & {f"/topic/{n}" for n in range(TOPICS - 4, TOPICS)}
        kept = after - removed
        assert not removed and len(kept) == TOPICS - 4

        assert workers[1].poll() is None
        workers[1].send_signal(signal.SIGTERM)
        assert workers[1].wait(timeout=20) == 0
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
                w.wait(timeout=10)
        sites.close()

    # no duplicate entries: each feed holds each story once, every id unique
    for n in range(TOPICS - 4):
        feed = feedparser.parse((tmp_path / "feeds" / f"t{n}.atom").read_bytes())
        links = [e.link for e in feed.entries]
        ids = [e.id for e in feed.entries]
        assert len(links) == len(set(links)) and len(ids) == len(set(ids)), f"t{n}: {links}"
        assert len(feed.entries) >= 5


def test_lease_is_claimed_once(tmp_path, pg_url):
    """Two fleets racing for the same due topics: each topic goes to exactly one of them."""
    from feedsvc.config import load_config
    from feedsvc.daemon import next_due
    from feedsvc.fleet import Fleet

    cfg = write_config(tmp_path, [f"http://127.0.0.1:9/t{n}" for n in range(TOPICS)])
    os.environ["FEEDSVC_STATE"] = pg_url
    try:
        config = load_config(cfg)
    finally:
        del os.environ["FEEDSVC_STATE"]
    ids = [t.id for t in config.topics]
    a, b = Fleet(config, next_due, role="a"), Fleet(config, next_due, role="b")
    try:
        got: dict[str, list[str]] = {}
        barrier = threading.Barrier(2)

        def race(fleet: Fleet) -> None:
            barrier.wait()
            got[fleet.name] = fleet.claim(ids, due_only=True, limit=TOPICS)

        threads = [threading.Thread(target=race, args=(f,)) for f in (a, b)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert all(len(mine) <= TOPICS // 2 for mine in got.values())  # no more than a fair share each
        while len(got[a.name]) + len(got[b.name]) < TOPICS:  # the rest at the next polls
            more = a.claim(ids, due_only=True), b.claim(ids, due_only=True)
            assert any(more)
            got[a.name] += more[0]
            got[b.name] += more[1]
        claimed = got[a.name] + got[b.name]
        assert sorted(claimed) == sorted(ids)  # every due topic claimed, none twice
        assert a.holders(ids) == {t: (a.name if t in got[a.name] else b.name) for t in ids}
        # refreshed: not due again until their schedule says
        a.finish(got[a.name])
        b.finish(got[b.name])
        assert a.claim(ids, due_only=True) == [] and b.claim(ids, due_only=True) == []
        # a refresh by hand takes them all, due or not; its heartbeat keeps them past the lease
        assert sorted(b.claim(ids, due_only=False, limit=TOPICS)) == sorted(ids)
        b.start_heartbeat()
        time.sleep(LEASE + 0.5)
        assert a.claim(ids, due_only=False, limit=TOPICS) == []
        # a lease no longer renewed (a stuck refresh, a dead worker) expires and goes to the other
        stuck = ids[:5]
        b.abandon(stuck)
        time.sleep(LEASE + 1.5)
        assert sorted(a.claim(ids, due_only=False, limit=TOPICS)) == sorted(stuck)
    finally:
        a.close()
        b.close()


def test_next_due_follows_the_schedule(tmp_path):
    from feedsvc.config import load_config
    from feedsvc.daemon import next_due

    config = load_config(write_config(tmp_path, ["http://127.0.0.1:9/x"]))
    now = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
    assert next_due(config, config.topics[0], now) == now + timedelta(seconds=INTERVAL)


@pytest.fixture(autouse=True)
def _no_stray_env(monkeypatch):
    monkeypatch.delenv("FEEDSVC_STATE", raising=False)


def test_a_lease_too_short_is_refused(tmp_path):
    from feedsvc.config import load_config
    from feedsvc.errors import ConfigError

    cfg = write_config(tmp_path, ["http://127.0.0.1:9/x"])
    cfg.write_text(cfg.read_text(encoding="utf-8").replace(f'lease = "{LEASE:g}s"', 'lease = "1s"'), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"feedsvc\.lease.*too short"):
        load_config(cfg)


@pytest.mark.parametrize("shared", [True, False])
def test_a_hosts_gap_holds_across_workers(http_server, pg_url, now, shared):
    """Two workers' fetchers asking one host at once keep its host_delay between them when the gap is
    booked in the shared state; each pacing only itself, they do not (the control case)."""
    from feedsvc.config import SourceConfig
    from feedsvc.fetch import Fetcher
    from feedsvc.store import Store

    starts: list[float] = []

    def page(h: BaseHTTPRequestHandler) -> None:
        starts.append(time.monotonic())
        respond(h, b"<html><body><p>hello</p></body></html>", "text/html")

    urls = [http_server.route(f"/p{n}", handler=page) for n in range(6)]
    gap = 0.4
    stores = [Store.open(pg_url) for _ in range(2)]
    fetchers = [Fetcher(user_agent="feedsvc-test", host_delay=gap, source_urls=urls,
                        reserve=store.reserve_host if shared else None) for store in stores]
    try:
        def fetch(fetcher: Fetcher, mine: list[str]) -> None:
            for url in mine:
                fetcher.fetch(SourceConfig(url=url), None, now=now)

        threads = [threading.Thread(target=fetch, args=(f, urls[i::2])) for i, f in enumerate(fetchers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        for f in fetchers:
            f.close()
        for s in stores:
            s.close()
    gaps = [b - a for a, b in zip(sorted(starts), sorted(starts)[1:])]
    assert len(starts) == 6
    if shared:
        assert min(gaps) >= gap * 0.9, gaps
    else:
        assert min(gaps) < gap * 0.5, gaps  # the two processes' requests overlap: the test can fail


def test_a_worker_connects_again_after_the_server_dropped_it(tmp_path, pg_url, monkeypatch):
    """A database restart drops every connection: the worker's next poll (or heartbeat) connects again,
    where it would otherwise fail until the worker itself was restarted."""
    import psycopg

    from feedsvc.config import load_config
    from feedsvc.daemon import next_due
    from feedsvc.errors import StoreError
    from feedsvc.fleet import Fleet

    monkeypatch.setenv("FEEDSVC_STATE", pg_url)
    config = load_config(write_config(tmp_path, [f"http://127.0.0.1:9/t{n}" for n in range(3)]))
    ids = [t.id for t in config.topics]
    fleet = Fleet(config, next_due)
    try:
        assert sorted(fleet.claim(ids, due_only=False)) == ids
        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                          "WHERE datname = current_database() AND pid <> pg_backend_pid()")
        with pytest.raises(StoreError):  # the call that finds the connection gone fails, in one line
            fleet.holders(ids)
        assert fleet.holders(ids) == {t: fleet.name for t in ids}  # and the next one connects again
    finally:
        fleet.close()
