"""`feedsvc run`: schedules, the job, reload and stop in-process; then the real daemon as a subprocess.

The in-process tests pass `Daemon` a refresh function of pipeline.refresh's signature that
records its calls, so they can stop a refresh half-way or make it crash; the subprocess
tests at the end run the real `python -m feedsvc run` against a real HTTP server.
"""

from __future__ import annotations

import configparser
import json
import logging
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import feedparser
import pytest

from feedsvc import daemon as daemon_mod
from feedsvc.config import check_cron, load_config
from feedsvc.daemon import Daemon, crontab_trigger, crontab_weekdays, make_trigger
from feedsvc.errors import ConfigError, StoreError
from feedsvc.lock import StateLock
from feedsvc.model import RefreshResult, SourceOutcome
from nginxconf import nginx_argv
from tomlwriter import write_config

WAIT = 20.0  # upper bound on any wait for the scheduler; tests finish long before


def wait_for(predicate: Callable[[], Any], timeout: float = WAIT, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    pytest.fail(f"timed out after {timeout}s waiting for {what}")


def topic(topic_id: str, url: str = "https://example.com/list", **extra: Any) -> dict[str, Any]:
    return {"id": topic_id, "title": f"Topic {topic_id}", "sources": [{"url": url}], **extra}


class Recorder:
    """A refresh function with pipeline.refresh's signature that records calls (and can block or fail)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, datetime]] = []
        self.inside = 0
        self.most_inside = 0
        self.gate: threading.Event | None = None  # when set up, each call waits for it
        self.entered = threading.Event()
        self.fail_first: BaseException | None = None
        self._lock = threading.Lock()

    def __call__(self, config: Any, topic_ids: list[str], *, now: datetime, **kwargs: Any) -> list[RefreshResult]:
        assert now.tzinfo is not None
        with self._lock:
            self.calls.append((topic_ids[0], now))
            self.inside += 1
            self.most_inside = max(self.most_inside, self.inside)
            failure, self.fail_first = self.fail_first, None
        self.entered.set()
        try:
            if failure is not None:
                raise failure
            if self.gate is not None:
                self.gate.wait(WAIT)
            return [RefreshResult(topic=topic_ids[0], entries=7, new=2, updated=1, feed_written=True,
                                  sources=[SourceOutcome("https://example.com/list", "ok", items=7),
                                           SourceOutcome("https://example.com/gone", "failed",
                                                         error="http: 404 Not Found")],
                                  seconds=0.25)]
        finally:
            with self._lock:
                self.inside -= 1

    def topics(self) -> list[str]:
        with self._lock:
            return [t for t, _ in self.calls]


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def make_daemon(tmp_path: Path, recorder: Recorder):
    made: list[Daemon] = []

    def make(topics: list[dict[str, Any]], *, initial_refresh: bool = False, lock_timeout: float = 5.0,
             **settings: Any) -> Daemon:
        path = write_config(tmp_path / "config.toml", topics, **settings)
        d = Daemon(path, load_config(path), initial_refresh=initial_refresh, lock_timeout=lock_timeout,
                   refresh=recorder)
        made.append(d)
        return d

    yield make
    if recorder.gate is not None:
        recorder.gate.set()
    for d in made:
        d.stop(grace=0)


# --------------------------------------------------------------------------- triggers

TUESDAY = datetime(2026, 1, 20, 3, 1, tzinfo=UTC)  # 12:01 in Tokyo, a Tuesday


def fire_times(trigger: Any, start: datetime, n: int = 3) -> list[str]:
    out, previous, now = [], None, start
    for _ in range(n):
        previous = trigger.get_next_fire_time(previous, now)
        now = previous
        out.append(previous.strftime("%a %m-%d %H:%M"))
    return out


@pytest.mark.parametrize("expr, tz, expected", [
    pytest.param("*/15 * * * *", "UTC", ["Tue 01-20 03:15", "Tue 01-20 03:30", "Tue 01-20 03:45"], id="every-15-min"),
    pytest.param("0 9 * * 1", "Asia/Tokyo", ["Mon 01-26 09:00", "Mon 02-02 09:00", "Mon 02-09 09:00"],
                 id="1-is-monday-as-in-crontab"),
    pytest.param("0 9 * * 0", "Asia/Tokyo", ["Sun 01-25 09:00", "Sun 02-01 09:00", "Sun 02-08 09:00"],
                 id="0-is-sunday"),
    pytest.param("0 9 * * 7", "Asia/Tokyo", ["Sun 01-25 09:00", "Sun 02-01 09:00", "Sun 02-08 09:00"],
                 id="7-is-sunday-too"),
    pytest.param("0 9 * * 1-5", "Asia/Tokyo", ["Wed 01-21 09:00", "Thu 01-22 09:00", "Fri 01-23 09:00"],
                 id="weekdays-by-number"),
    pytest.param("0 9 * * mon-fri", "Asia/Tokyo", ["Wed 01-21 09:00", "Thu 01-22 09:00", "Fri 01-23 09:00"],
                 id="weekdays-by-name"),
    pytest.param("0 9 * * */2", "Asia/Tokyo", ["Thu 01-22 09:00", "Sat 01-24 09:00", "Sun 01-25 09:00"],
                 id="step-counts-from-sunday"),
    pytest.param("0 0 1 * 1", "Asia/Tokyo", ["Mon 01-26 00:00", "Sun 02-01 00:00", "Mon 02-02 00:00"],
                 id="day-of-month-OR-weekday"),
    pytest.param("30 6 * * *", "America/New_York", ["Tue 01-20 06:30", "Wed 01-21 06:30", "Thu 01-22 06:30"],
                 id="in-the-topic-time-zone"),
])
def test_crontab_fires_when_crontab_would(expr: str, tz: str, expected: list[str]) -> None:
    trigger = crontab_trigger(expr, tz)
    from zoneinfo import ZoneInfo

    assert fire_times(trigger, TUESDAY.astimezone(ZoneInfo(tz))) == expected


@pytest.mark.parametrize("field, names", [
    pytest.param("*", "*", id="any"),
    pytest.param("0,6", "sun,sat", id="list"),
    pytest.param("5-7", "sun,fri,sat", id="range-to-7"),
    pytest.param("fri-sun", "sun,fri,sat", id="named-range-to-sunday"),
    pytest.param("1/2", "sun,mon,wed,fri", id="start-step"),
    pytest.param("*/3", "sun,wed,sat", id="star-step"),
])
def test_crontab_weekdays_become_names(field: str, names: str) -> None:
    assert crontab_weekdays(field) == names


def test_interval_and_cron_topics_get_their_own_triggers(tmp_path: Path) -> None:
    path = write_config(tmp_path / "config.toml", [
        topic("hourly"), topic("quick", interval="30s"), topic("morning", cron="0 7 * * *", timezone="Asia/Tokyo"),
    ], interval="1h", jitter="10s")
    config = load_config(path)
    start = datetime.now(UTC)  # an interval counts from when its trigger is made
    hourly = make_trigger(config.topic("hourly"), config)  # type: ignore[arg-type]
    first = hourly.get_next_fire_time(None, start)
    # one hour, plus 0-10 s of jitter (plus slack for a slow machine, never near the next hour)
    assert start + timedelta(hours=1) <= first <= start + timedelta(hours=1, seconds=70)
    quick = make_trigger(config.topic("quick"), config)  # type: ignore[arg-type]
    assert start + timedelta(seconds=30) <= quick.get_next_fire_time(None, start) <= start + timedelta(seconds=100)
    morning = make_trigger(config.topic("morning"), config)  # type: ignore[arg-type]
    fire = morning.get_next_fire_time(None, TUESDAY)
    assert fire.astimezone(UTC) >= datetime(2026, 1, 20, 22, 0, tzinfo=UTC)  # 07:00 JST
    assert fire.astimezone(UTC) <= datetime(2026, 1, 20, 22, 0, 10, tzinfo=UTC)


# --------------------------------------------------------------------------- the job


def test_a_refresh_logs_one_info_line_with_its_numbers(make_daemon, recorder: Recorder, caplog) -> None:
    d = make_daemon([topic("peace-talks")])
    caplog.set_level(logging.INFO, logger="feedsvc.daemon")
    d.refresh_topic("peace-talks")
    assert recorder.topics() == ["peace-talks"]
    lines = [r for r in caplog.records if r.name == "feedsvc.daemon"]
    assert len(lines) == 1
    record = lines[0]
    assert record.levelno == logging.INFO
    assert record.getMessage().startswith(
        "peace-talks: 7 entries, 2 new, 1 updated, 1 failed source, 0.25s (failed: https://example.com/gone")
    assert record.fields == {"topic": "peace-talks", "entries": 7, "new": 2, "updated": 1,  # type: ignore[attr-defined]
                             "failed_sources": 1, "backed_off_sources": 0, "feed_written": True,
                                 "duration_s": 0.25}


def test_a_crash_is_logged_with_traceback_and_the_schedule_goes_on(make_daemon, recorder: Recorder,
                                                                    caplog) -> None:
    caplog.set_level(logging.INFO, logger="feedsvc.daemon")
    recorder.fail_first = RuntimeError("boom in the pipeline")
    d = make_daemon([topic("fragile", interval="1s")], initial_refresh=True)
    d.start()
    wait_for(lambda: len(recorder.calls) >= 2, what="a second scheduled refresh after the crash")
    crash = [r for r in caplog.records if r.name == "feedsvc.daemon" and r.levelno == logging.ERROR]
    assert crash and "refresh crashed" in crash[0].getMessage()
    assert crash[0].exc_info and "boom in the pipeline" in str(crash[0].exc_info[1])


def test_a_domain_error_is_one_line_without_traceback(make_daemon, recorder: Recorder, caplog) -> None:
    from feedsvc.errors import StoreError

    recorder.fail_first = StoreError("database disk image is malformed")
    d = make_daemon([topic("t")])
    caplog.set_level(logging.INFO, logger="feedsvc.daemon")
    assert d.refresh_topic("t") is None
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert [r.getMessage() for r in errors] == ["t: refresh failed: database disk image is malformed"]
    assert not errors[0].exc_info


def test_a_job_waits_for_the_lock_then_skips_naming_the_holder(make_daemon, recorder: Recorder, caplog) -> None:
    d = make_daemon([topic("t")], lock_timeout=0.2)
    caplog.set_level(logging.INFO, logger="feedsvc.daemon")
    with StateLock(d.config.lock_path, timeout=0, who="feedsvc refresh"):
        assert d.refresh_topic("t") is None
    assert recorder.calls == []
    warning = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warning) == 1 and "refresh skipped" in warning[0] and "(feedsvc refresh)" in warning[0]
    d.refresh_topic("t")  # and the next run goes ahead
    assert recorder.topics() == ["t"]


def test_the_job_holds_the_state_lock_while_it_refreshes(make_daemon, recorder: Recorder) -> None:
    from feedsvc.errors import LockedError
    from feedsvc.lock import read_holder

    d = make_daemon([topic("t")])
    recorder.gate = threading.Event()
    worker = threading.Thread(target=d.refresh_topic, args=("t",))
    worker.start()
    try:
        assert recorder.entered.wait(WAIT)
        assert read_holder(d.config.lock_path)["who"] == "feedsvc run, topic t"
        with pytest.raises(LockedError), StateLock(d.config.lock_path, timeout=0):
            pass
    finally:
        recorder.gate.set()
        worker.join(WAIT)
    with StateLock(d.config.lock_path, timeout=0):  # released once the refresh is done
        pass


def test_jobs_have_stable_ids_coalesce_and_one_instance(make_daemon, recorder: Recorder) -> None:
    d = make_daemon([topic("a"), topic("b", cron="0 0 1 1 *")])  # a cron that cannot come due mid-test
    d.start()
    jobs = {j.id: j for j in d.scheduler.get_jobs()}
    assert set(jobs) == {"a", "b"}
    for job in jobs.values():
        assert job.coalesce is True and job.max_instances == 1
        assert job.next_run_time > datetime.now(UTC) + timedelta(seconds=5)  # no initial refresh
    assert recorder.calls == []


def test_first_refresh_at_start_for_every_topic(make_daemon, recorder: Recorder) -> None:
    d = make_daemon([topic("a"), topic("b", cron="0 0 1 1 *")], initial_refresh=True)
    d.start()
    wait_for(lambda: sorted(recorder.topics()) == ["a", "b"], what="one refresh of each topic at start")
    assert recorder.most_inside == 1  # the lock lets one refresh write at a time


def test_the_daemon_keeps_one_pool_of_parse_workers(tmp_path: Path, http_server, monkeypatch) -> None:
    """The real refresh, twice through the daemon's job: the same worker processes serve both
    (a pool per refresh every few seconds was the daemon's churn), and stop() ends them."""
    def page(i: int) -> str:
        cards = "".join(f'<li><h3><a href="/s{i}/a{n}.html">Harbour council story {n} of site {i} in full</a></h3>'
                        f"<p>The council met for the {n}th time at site {i} and voted on the budget.</p></li>"
                        for n in range(3))
        return f"<html><body><ul>{cards}</ul></body></html>"

    sources = [{"url": http_server.route(f"/s{i}", page(i), headers={"Content-Type": "text/html; charset=utf-8"})}
               for i in range(4)]
    path = write_config(tmp_path / "config.toml", [{"id": "t", "title": "T", "sources": sources}])
    monkeypatch.setenv("FEEDSVC_WORKERS", "2")
    d = Daemon(path, load_config(path), initial_refresh=False, lock_timeout=5.0)
    try:
        assert d.refresh_topic("t").new == 12
        workers = d._workers
        pids = set(workers.pool._processes)
        assert 1 <= len(pids) <= 2  # started on demand, up to FEEDSVC_WORKERS
        assert d.refresh_topic("t").unchanged == 12
        assert d._workers is workers and pids <= set(workers.pool._processes)  # still the same processes
    finally:
        d.stop(grace=5)
    assert workers.pool is None
    assert len(feedparser.parse((tmp_path / "feeds" / "t.atom").read_bytes()).entries) == 12


# --------------------------------------------------------------------------- reload and stop


def test_reload_adds_removes_and_reschedules_topics(make_daemon, tmp_path: Path, caplog) -> None:
    d = make_daemon([topic("keep"), topic("drop"), topic("move")])
    d.start()
    before = {j.id: j.next_run_time for j in d.scheduler.get_jobs()}
    write_config(tmp_path / "config.toml", [topic("keep"), topic("move", cron="0 6 * * *"), topic("new")])
    caplog.set_level(logging.INFO, logger="feedsvc.daemon")
    assert d.reload() is True
    after = {j.id: j for j in d.scheduler.get_jobs()}
    assert set(after) == {"keep", "move", "new"}
    assert after["keep"].next_run_time == before["keep"]  # untouched
    assert after["move"].next_run_time.astimezone(UTC).strftime("%H:%M") == "06:00"
    assert [t.id for t in d.config.topics] == ["keep", "move", "new"]
    assert any("added: new; removed: drop; rescheduled: move" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("broken", [
    pytest.param("[feedsvc\n", id="not-toml"),
    pytest.param('[feedsvc]\ninterval = "soon"\n[[topics]]\nid = "a"\ntitle = "A"\nsources = [{url = "https://e.com"}]\n',
                 id="bad-duration"),
    pytest.param("[feedsvc]\n", id="no-topics"),
])
def test_reload_refuses_a_broken_config_and_keeps_running(make_daemon, tmp_path: Path, caplog,
                                                          broken: str) -> None:
    d = make_daemon([topic("a"), topic("b")])
    d.start()
    running = d.config
    (tmp_path / "config.toml").write_text(broken, encoding="utf-8")
    caplog.set_level(logging.INFO, logger="feedsvc.daemon")
    assert d.reload() is False
    assert d.config is running
    assert {j.id for j in d.scheduler.get_jobs()} == {"a", "b"}
    refused = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(refused) == 1 and "reload refused" in refused[0] and "config.toml" in refused[0]


def test_stop_abandons_a_refresh_that_outlives_the_grace(make_daemon, recorder: Recorder) -> None:
    recorder.gate = threading.Event()
    d = make_daemon([topic("slow")], initial_refresh=True)
    d.start()
    try:
        assert recorder.entered.wait(WAIT)
        assert d.stop(grace=0.1) == {"slow"}
        assert not d.scheduler.running
    finally:
        recorder.gate.set()


def test_stop_waits_for_a_refresh_that_finishes_within_the_grace(make_daemon, recorder: Recorder) -> None:
    recorder.gate = threading.Event()
    d = make_daemon([topic("t")], initial_refresh=True)
    d.start()
    assert recorder.entered.wait(WAIT)
    threading.Timer(0.1, recorder.gate.set).start()
    assert d.stop(grace=WAIT) == set()


def test_stop_ends_a_wait_for_the_lock(make_daemon, recorder: Recorder) -> None:
    d = make_daemon([topic("t")], lock_timeout=WAIT)
    with StateLock(d.config.lock_path, timeout=0):
        worker = threading.Thread(target=d.refresh_topic, args=("t",))
        worker.start()
        wait_for(lambda: d.running() == {"t"}, what="the job to wait for the lock")
        assert d.stop(grace=WAIT) == set()
        worker.join(WAIT)
        assert not worker.is_alive()
    assert recorder.calls == []


def test_run_in_the_main_thread_reloads_on_sighup_and_exits_0_on_sigterm(tmp_path: Path, caplog) -> None:
    path = write_config(tmp_path / "config.toml", [topic("a")])
    caplog.set_level(logging.INFO, logger="feedsvc.daemon")
    before = signal.getsignal(signal.SIGTERM)

    def signals() -> None:
        wait_for(lambda: any("feedsvc run:" in r.getMessage() for r in caplog.records), what="start")
        write_config(path, [topic("a"), topic("b")])
        os.kill(os.getpid(), signal.SIGHUP)
        wait_for(lambda: any("config reloaded" in r.getMessage() for r in caplog.records), what="reload")
        os.kill(os.getpid(), signal.SIGTERM)

    sender = threading.Thread(target=signals, daemon=True)
    sender.start()
    assert daemon_mod.run(path, initial_refresh=False) == 0
    sender.join(WAIT)
    messages = [r.getMessage() for r in caplog.records]
    assert any("added: b" in m for m in messages)
    assert "SIGTERM: stopping" in messages
    assert signal.getsignal(signal.SIGTERM) == before
    with StateLock(load_config(path).lock_path, timeout=0):
        pass


# --------------------------------------------------------------------------- a job stuck past its deadline


def test_the_job_deadline_is_the_sources_fetch_deadlines_plus_a_margin(tmp_path: Path) -> None:
    path = write_config(tmp_path / "config.toml", [
        {"id": "one", "title": "One", "sources": [{"url": "https://a.example/1"}]},
        {"id": "queue", "title": "Queue", "sources": [{"url": "https://a.example/1"}, {"url": "https://a.example/2"},
                                                     {"url": "https://b.example/1"}]},
        {"id": "articles", "title": "Articles", "article": "meta", "sources": [{"url": "https://a.example/1"}]},
    ], timeout="10s", host_delay="1s", article_limit=3)
    config = load_config(path)
    page = 10 + 1 * 3  # its deadline, plus the host's gap before the page and each of two retries
    assert daemon_mod.job_deadline(config.topic("one"), config, margin=5) == page + 5
    # a host's pages one after another, the hosts side by side: a.example's queue is the longer
    assert daemon_mod.job_deadline(config.topic("queue"), config, margin=0) == 2 * page
    # article pages: article_limit of them on the source's host, after the listing
    assert daemon_mod.job_deadline(config.topic("articles"), config, margin=0) == page + 3 * page
    assert daemon_mod.job_deadline(config.topic("one"), config) == page + daemon_mod.JOB_MARGIN


def abandoned_lines(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if "refresh stuck for" in r.getMessage()]


FOREVER = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT count(*) FROM n"


@pytest.mark.parametrize("hang", ["python", "sqlite"])
def test_a_stuck_refresh_is_abandoned_once_and_the_next_ones_run(tmp_path: Path, http_server, caplog,
                                                                 hang: str) -> None:
    """The stuck topic's first refresh never returns: it opened the store, took SQLite's write lock
    (as a save group does) and then loops in Python (a parse that never returns) or runs an SQLite
    statement that never ends (blocked in C: only Store.interrupt gets it out). It holds the state
    lock too. At its deadline it is abandoned: one ERROR line; its thread unwinds (its transaction
    rolls back); the healthy topic's real refreshes write its feed on schedule; the stuck topic runs
    again."""
    from feedsvc import abandon, pipeline
    from feedsvc.store import Store

    caplog.set_level(logging.INFO)
    healthy_url = serve_stories(http_server, "/healthy", [1, 2])
    stuck_url = serve_stories(http_server, "/stuck", [5, 6])
    path = write_config(tmp_path / "config.toml", [live_topic("stuck", stuck_url), live_topic("healthy", healthy_url)],
                        timeout="1s", host_delay="0s")
    inside = threading.Event()
    calls: list[str] = []

    def refresh(config: Any, topic_ids: list[str], *, now: datetime) -> Any:
        calls.append(topic_ids[0])
        if topic_ids == ["stuck"] and calls.count("stuck") == 1:
            with Store.open(config.state) as store:
                abandon.on_abandon(store.interrupt)  # as pipeline.refresh does
                store.begin()  # SQLite's write lock: no other refresh could save while this is open
                inside.set()
                while hang == "python":
                    time.sleep(0.01)
                store._db.execute(FOREVER).fetchone()
        return pipeline.refresh(config, topic_ids, now=now)

    d = Daemon(path, load_config(path), initial_refresh=False, lock_timeout=WAIT, refresh=refresh, job_margin=2.0)
    deadline = daemon_mod.job_deadline(d.config.topic("stuck"), d.config, d.job_margin)
    assert deadline == 3.0  # 1 s for the page, no gaps, the margin
    threading.Thread(target=d.refresh_topic, args=("stuck",), daemon=True).start()  # stuck first, for sure
    assert inside.wait(WAIT)
    t0 = time.monotonic()
    try:
        d.start()  # both topics' jobs every second from now on
        healthy = tmp_path / "feeds" / "healthy.atom"
        wait_for(lambda: feed_titles(healthy) == titles([1, 2]), what="the healthy topic's feed")
        assert time.monotonic() - t0 < deadline + 5  # it waited for the stuck one's deadline, not longer
        lines = abandoned_lines(caplog)
        assert len(lines) == 1 and lines[0].levelno == logging.ERROR
        message = lines[0].getMessage()
        assert message.startswith("stuck: refresh stuck for 3s, past its 3s deadline: abandoned"), message
        assert "the state lock goes to the next refreshes" in message
        wait_for(lambda: any("the abandoned refresh has ended" in r.getMessage() for r in caplog.records),
                 what="the stuck thread to end")
        # the stuck topic runs again, and the healthy one keeps following its page
        wait_for(lambda: feed_titles(tmp_path / "feeds" / "stuck.atom") == titles([5, 6]), what="the stuck topic again")
        serve_stories(http_server, "/healthy", [1, 2, 3])
        wait_for(lambda: feed_titles(healthy) == titles([1, 2, 3]), what="the healthy feed to follow its page")
        assert calls.count("healthy") >= 2
    finally:
        d.stop(grace=WAIT)
    assert len(abandoned_lines(caplog)) == 1  # reported once
    assert not [r for r in caplog.records if "crashed" in r.getMessage() or "left behind" in r.getMessage()]
    with StateLock(d.config.lock_path, timeout=0):
        pass


def test_a_refresh_blocked_for_good_is_left_behind_and_its_topic_runs_again(make_daemon, recorder: Recorder,
                                                                            caplog) -> None:
    """A refresh blocked in C (a wait that never ends: Python cannot stop it there) keeps its thread,
    but not the state lock nor its job instance: the other topic and its own next runs go on."""
    caplog.set_level(logging.INFO)
    gate = threading.Event()
    blocked: list[str] = []
    record = recorder.__call__

    def refresh(config: Any, topic_ids: list[str], *, now: datetime) -> Any:
        if topic_ids == ["stuck"] and not blocked:
            blocked.append("stuck")
            gate.wait()  # for good (until the test ends)
        return record(config, topic_ids, now=now)

    d = make_daemon([topic("stuck", interval="1s"), topic("other", interval="1s")], initial_refresh=True,
                    timeout="1s", host_delay="0s")
    d._refresh, d.job_margin = refresh, 1.0
    try:
        d.start()
        wait_for(lambda: recorder.topics().count("stuck") >= 2, what="the stuck topic to run again")
        mark = len(caplog.records)
        wait_for(lambda: recorder.topics().count("stuck") >= 4, what="the stuck topic on its schedule")
        wait_for(lambda: recorder.topics().count("other") >= 4, what="the other topic to keep running")
        # once counted out, the blocked run no longer takes the topic's one instance (max_instances = 1)
        assert not [r for r in caplog.records[mark:] if "maximum number" in r.getMessage()]
        lines = abandoned_lines(caplog)
        assert len(lines) == 1 and lines[0].getMessage().startswith("stuck: refresh stuck for 2s, past its 2s")
        assert any(r.getMessage().startswith("stuck: the abandoned refresh is blocked") and "left behind"
                   in r.getMessage() for r in caplog.records)
        assert d.stop(grace=WAIT) == {"stuck"}  # still blocked: `run` exits at once rather than wait for it
    finally:
        gate.set()
    wait_for(lambda: any("the abandoned refresh has ended" in r.getMessage() for r in caplog.records),
             what="the blocked thread to end once it is let go")
    assert len(abandoned_lines(caplog)) == 1


# --------------------------------------------------------------------------- the real daemon, as a subprocess

SELECTORS = {"item": "li.story", "title": "h3", "link": "a@href", "summary": "p", "date": "time@datetime"}


def story_page(numbers: range | list[int]) -> str:
    """An HTML listing of stories n (newest first), each with its own link, text and date."""
    items = "\n".join(
        f'<li class="story"><a href="/story/{n}"><h3>Story number {n}</h3></a>'
        f"<p>What happened in story {n}, told in one sentence.</p>"
        f'<time datetime="2026-01-{n % 28 + 1:02d}T09:00:00+00:00">Jan {n % 28 + 1}</time></li>'
        for n in sorted(numbers, reverse=True))
    return f"<!doctype html><html><head><title>Stories</title></head><body><ul>\n{items}\n</ul></body></html>"


def serve_stories(server: Any, path: str, numbers: range | list[int]) -> str:
    return server.route(path, story_page(numbers), headers={"Content-Type": "text/html; charset=utf-8"})


def live_topic(topic_id: str, url: str, **extra: Any) -> dict[str, Any]:
    return {"id": topic_id, "title": f"Topic {topic_id}", "interval": "1s",
            "sources": [{"url": url, **SELECTORS}], **extra}


def feed_titles(path: Path) -> list[str]:
    if not path.exists():
        return []
    feed = feedparser.parse(path.read_bytes())
    assert not feed.bozo, f"{path.name} is not well-formed: {feed.bozo_exception}"
    return sorted(e.title for e in feed.entries)


def feed_ids(path: Path) -> dict[str, str]:
    return {e.title: e.id for e in feedparser.parse(path.read_bytes()).entries}


def titles(numbers: range | list[int]) -> list[str]:
    return sorted(f"Story number {n}" for n in numbers)


def feedsvc_argv(config: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "feedsvc", "--config", str(config), *args]


class DaemonProcess:
    """`feedsvc run` in a subprocess, its stderr in a file the test can wait on."""

    def __init__(self, argv: list[str], cwd: Path) -> None:
        self.log_path = cwd / f"daemon-{time.monotonic_ns()}.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(argv, cwd=cwd, stdout=self._log, stderr=subprocess.STDOUT)

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def wait_log(self, text: str, count: int = 1, timeout: float = WAIT) -> None:
        def seen() -> bool:
            if self.proc.poll() is not None:
                pytest.fail(f"the daemon exited ({self.proc.returncode}) before logging {text!r}:\n{self.log()}")
            return self.log().count(text) >= count

        wait_for(seen, timeout, what=f"{text!r} x{count} in the daemon log")

    def send(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int:
        self.send(sig)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the daemon did not stop within {timeout}s of {signal.Signals(sig).name}:\n{self.log()}")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self._log.close()


@pytest.fixture
def start_daemon(tmp_path: Path):
    running: list[DaemonProcess] = []

    def start(config: Path, *args: str, argv: list[str] | None = None, options: tuple[str, ...] = ()) -> DaemonProcess:
        d = DaemonProcess(argv or feedsvc_argv(config, *options, "run", *args), tmp_path)
        running.append(d)
        return d

    yield start
    for d in running:
        d.close()


def assert_lock_free(config: Path) -> None:
    with StateLock(load_config(config).lock_path, timeout=0):
        pass


def test_daemon_feed_follows_the_page_and_sigterm_ends_it_cleanly(tmp_path: Path, http_server,
                                                                    start_daemon) -> None:
    url = serve_stories(http_server, "/list", [1, 2])
    cfg = write_config(tmp_path / "config.toml", [live_topic("news", url)])
    feed = tmp_path / "feeds" / "news.atom"
    d = start_daemon(cfg, options=("--log-format", "json"))
    wait_for(lambda: feed_titles(feed) == titles([1, 2]), what="the first feed")
    first_ids = feed_ids(feed)
    serve_stories(http_server, "/list", [2, 3, 4])  # 1 scrolled off the page, 3 and 4 are new
    wait_for(lambda: feed_titles(feed) == titles([1, 2, 3, 4]), what="the feed to follow the page")
    assert {t: i for t, i in feed_ids(feed).items() if t in first_ids} == first_ids  # ids never change
    d.wait_log("news: 4 entries, 2 new, 0 updated, 0 failed sources")
    assert d.stop(signal.SIGTERM) == 0
    records = [json.loads(line) for line in d.log().splitlines()]  # --log-format json: every line
    messages = [r["message"] for r in records]
    assert "SIGTERM: stopping" in messages and not any("exception" in r for r in records)
    refreshes = [r for r in records if r["logger"] == "feedsvc.daemon" and "duration_s" in r]
    assert {"topic": "news", "entries": 4, "new": 2, "updated": 0, "failed_sources": 0}.items() <= refreshes[-1].items()
    assert all(r["level"] == "info" for r in refreshes)
    assert not [r for r in records if r["logger"].startswith("apscheduler") and r["level"] == "info"]
    assert_lock_free(cfg)
    assert feed_titles(feed) == titles([1, 2, 3, 4])
    assert not [p.name for p in feed.parent.iterdir() if p.name.startswith(".")]  # no temp files left


def test_sigint_stops_it_too_and_serve_serves_the_feeds_meanwhile(tmp_path: Path, http_server,
                                                                     start_daemon) -> None:
    pytest.importorskip("feedsvc.serve")
    cfg = write_config(tmp_path / "config.toml", [live_topic("news", serve_stories(http_server, "/l", [1]))])
    (tmp_path / "feeds").mkdir()
    (tmp_path / "feeds" / "hello.atom").write_bytes(b'<feed xmlns="http://www.w3.org/2005/Atom"/>')
    port = free_port()
    d = start_daemon(cfg, "--no-initial-refresh", "--serve", "--host", "127.0.0.1", "--port", str(port))
    d.wait_log(f"on http://127.0.0.1:{port}/")
    status, headers, body = get(f"http://127.0.0.1:{port}/hello.atom")
    assert status == 200 and body.startswith(b"<feed")
    assert headers["Content-Type"].startswith("application/atom+xml")
    assert d.stop(signal.SIGINT) == 0
    assert "SIGINT: stopping" in d.log()
    with socket.socket() as s:  # nobody listens on the port any more (TIME_WAIT is allowed, as for any server)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", port))


def test_serve_on_a_busy_port_is_one_clear_error(tmp_path: Path, http_server) -> None:
    pytest.importorskip("feedsvc.serve")
    from feedsvc.errors import FeedsvcError

    host, port = http_server.httpd.server_address[:2]
    with pytest.raises(FeedsvcError, match=f"cannot serve .*feeds on {host}:{port}: "):
        daemon_mod.start_server(tmp_path / "feeds", host, port)


@pytest.mark.slow
def test_sigterm_abandons_a_refresh_in_flight_and_keeps_the_feed_whole(tmp_path: Path, http_server,
                                                                       start_daemon) -> None:
    serve_stories(http_server, "/list", [1, 2, 3])
    release = threading.Event()

    def hang(handler: Any) -> None:  # the page stops answering half-way through a refresh
        handler.send_response(200)
        handler.send_header("Content-Type", "text/html; charset=utf-8")
        handler.send_header("Content-Length", "100000")
        handler.end_headers()
        handler.wfile.write(b"<html><body><ul>")
        handler.wfile.flush()
        release.wait(WAIT)

    cfg = write_config(tmp_path / "config.toml", [live_topic("news", http_server.url("/list"))])
    feed = tmp_path / "feeds" / "news.atom"
    d = start_daemon(cfg)
    try:
        wait_for(lambda: feed_titles(feed) == titles([1, 2, 3]), what="the first feed")
        before = feed.read_bytes()
        http_server.route("/list", handler=hang)
        hits = len(http_server.hits_for("/list"))
        wait_for(lambda: len(http_server.hits_for("/list")) > hits and
                 http_server.routes["/list"].handler is hang, what="a refresh stuck on the page")
        time.sleep(0.2)  # let it get into the read
        assert d.stop(signal.SIGTERM) == 0
    finally:
        release.set()
    assert "abandoning the refresh of news" in d.log()
    assert_lock_free(cfg)
    assert feed.read_bytes() == before
    assert not [p.name for p in feed.parent.iterdir() if p.name.startswith(".")]


@pytest.mark.slow
def test_a_one_shot_refresh_beside_the_daemon_loses_nothing(tmp_path: Path, http_server, start_daemon) -> None:
    """The page shows only the latest stories; every refresh, daemon's or cron's, must keep all it saw."""
    current: dict[str, bytes] = {}

    def slow_page(handler: Any) -> None:  # slow enough that the daemon and `refresh` meet at the lock
        body = current["body"]
        time.sleep(0.1)
        handler.send_response(200)
        handler.send_header("Content-Type", "text/html; charset=utf-8")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    def show(numbers: list[int]) -> None:
        current["body"] = story_page(numbers).encode()

    show([1, 2])
    http_server.route("/list", handler=slow_page)
    cfg = write_config(tmp_path / "config.toml", [live_topic("news", http_server.url("/list"))])
    feed = tmp_path / "feeds" / "news.atom"
    d = start_daemon(cfg)
    wait_for(lambda: feed_titles(feed) == titles([1, 2]), what="the daemon's first refresh")
    seen_ids = feed_ids(feed)
    for newest in (3, 4):
        show([newest - 1, newest])  # a sliding window: older stories leave the page
        one_shot = subprocess.run(feedsvc_argv(cfg, "refresh"), check=False, cwd=tmp_path, capture_output=True,
                                  text=True, timeout=60)
        assert one_shot.returncode == 0, one_shot.stderr
        ids = feed_ids(feed)
        assert {t: ids[t] for t in seen_ids} == seen_ids  # nothing lost, no id changed
        seen_ids = ids
    assert feed_titles(feed) == titles(range(1, 5))
    assert len(set(seen_ids.values())) == 4
    assert d.proc.poll() is None
    assert d.stop() == 0
    assert_lock_free(cfg)


def test_sighup_adds_a_topic_and_refuses_a_broken_config(tmp_path: Path, http_server, start_daemon) -> None:
    cfg = write_config(tmp_path / "config.toml", [live_topic("one", serve_stories(http_server, "/a", [1]))])
    feeds = tmp_path / "feeds"
    d = start_daemon(cfg)
    wait_for(lambda: feed_titles(feeds / "one.atom") == titles([1]), what="the first topic's feed")
    write_config(cfg, [live_topic("one", http_server.url("/a")),
                       live_topic("two", serve_stories(http_server, "/b", [5, 6]))])
    d.send(signal.SIGHUP)
    wait_for(lambda: feed_titles(feeds / "two.atom") == titles([5, 6]), what="the new topic's feed")
    d.wait_log("added: two")

    cfg.write_text(cfg.read_text() + "\n[[topics]]\nid = \"Bad Id\"\n", encoding="utf-8")
    d.send(signal.SIGHUP)
    d.wait_log("config reload refused")
    serve_stories(http_server, "/b", [5, 6, 7])  # the running config still refreshes both topics
    wait_for(lambda: feed_titles(feeds / "two.atom") == titles([5, 6, 7]), what="refreshes after the refusal")
    assert d.proc.poll() is None
    assert d.stop() == 0
    assert "topics[2]" in d.log()  # the refusal names the key


def test_run_refuses_a_broken_config_before_installing_anything(tmp_path: Path) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text("[feedsvc]\ninterval = \"often\"\n", encoding="utf-8")
    before = signal.getsignal(signal.SIGHUP)
    with pytest.raises(ConfigError, match="interval"):
        daemon_mod.run(cfg)
    assert signal.getsignal(signal.SIGHUP) == before


# --------------------------------------------------------------------------- deployment snippets (deploy/)

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
SRV = "/srv/feedsvc"  # where the snippets install feedsvc; tests put it under tmp_path


def install_like_srv(tmp_path: Path, topics: list[dict[str, Any]]) -> Path:
    """tmp_path/srv/feedsvc laid out as the snippets expect: config.toml (default paths) and .venv/bin/feedsvc."""
    root = tmp_path / "srv" / "feedsvc"
    (root / ".venv" / "bin").mkdir(parents=True)
    path = root / "config.toml"
    write_config(path, topics)
    text = path.read_text().replace('output_dir = "feeds"\n', "").replace('state = "state/feedsvc.sqlite"\n', "")
    path.write_text(text, encoding="utf-8")  # the defaults: feeds/ and state/feedsvc.sqlite beside the config
    script = Path(sys.executable).parent / "feedsvc"  # the console script pip installed
    target = root / ".venv" / "bin" / "feedsvc"
    if script.exists():
        target.symlink_to(script)
    else:  # an environment without the entry point: the same program
        target.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m feedsvc "$@"\n')
        target.chmod(0o755)
    return root


def cron_env(tmp_path: Path) -> dict[str, str]:
    return {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "SHELL": "/bin/sh", "LANG": "C.UTF-8"}


def test_crontab_line_refreshes_quietly_and_speaks_up_on_failure(tmp_path: Path, http_server) -> None:
    lines = [line for line in (DEPLOY / "crontab").read_text().splitlines()
             if line.strip() and not line.lstrip().startswith("#") and not re.match(r"^\w+=", line)]
    assert len(lines) == 1, lines
    fields = lines[0].split(None, 5)
    schedule, command = " ".join(fields[:5]), fields[5]
    check_cron(schedule)
    assert fire_times(crontab_trigger(schedule, "UTC"), TUESDAY) == ["Tue 01-20 03:15", "Tue 01-20 03:30",
                                                                     "Tue 01-20 03:45"]
    url = serve_stories(http_server, "/list", [1, 2])
    root = install_like_srv(tmp_path, [live_topic("news", url)])
    shell_command = command.replace(SRV, str(root))
    run = subprocess.run(["/bin/sh", "-c", shell_command], check=False, env=cron_env(tmp_path), capture_output=True,
                         text=True, timeout=60)
    assert (run.returncode, run.stdout, run.stderr) == (0, "", "")  # cron mails nothing
    assert feed_titles(root / "feeds" / "news.atom") == titles([1, 2])

    http_server.route("/list", "gone", status=404)  # (a 404 is not retried: one quick failure)
    run = subprocess.run(["/bin/sh", "-c", shell_command], check=False, env=cron_env(tmp_path), capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 1 and url in run.stderr  # cron mails this
    assert feed_titles(root / "feeds" / "news.atom") == titles([1, 2])  # the feed keeps its entries


def read_unit() -> configparser.SectionProxy:
    unit = configparser.ConfigParser(interpolation=None, strict=True)
    unit.optionxform = str  # type: ignore[assignment,method-assign]  # systemd keys are case-sensitive
    unit.read(DEPLOY / "feedsvc.service", encoding="utf-8")
    assert unit["Install"]["WantedBy"] == "multi-user.target"
    return unit["Service"]


def test_systemd_unit_starts_reloads_and_stops_the_daemon(tmp_path: Path, http_server, start_daemon) -> None:
    service = read_unit()
    assert service["Type"] == "simple" and service["Restart"] == "on-failure"
    assert service["User"] not in ("", "root")
    # a bad config or an unusable state: no restart loop
    assert {int(c) for c in service["RestartPreventExitStatus"].split()} == {ConfigError.exit_code, StoreError.exit_code}
    assert service.get("KillSignal", "SIGTERM") == "SIGTERM"
    root = install_like_srv(tmp_path, [live_topic("one", serve_stories(http_server, "/a", [1]))])
    config = load_config(root / "config.toml")
    writable = [Path(p.replace(SRV, str(root))) for p in service["ReadWritePaths"].split()]
    assert any(config.output_dir.is_relative_to(p) for p in writable)
    assert any(config.lock_path.is_relative_to(p) for p in writable)  # state db, its journal, its lock

    argv = shlex.split(service["ExecStart"].replace(SRV, str(root)))
    workdir = Path(service["WorkingDirectory"].replace(SRV, str(root)))
    d = start_daemon(root / "config.toml", argv=argv)
    assert workdir == root
    wait_for(lambda: feed_titles(root / "feeds" / "one.atom") == titles([1]), what="the service's first feed")

    write_config(root / "config.toml", [live_topic("one", http_server.url("/a")),
                                        live_topic("two", serve_stories(http_server, "/b", [2]))],
                 output_dir="feeds", state="state/feedsvc.sqlite")
    reload_argv = shlex.split(service["ExecReload"].replace("$MAINPID", str(d.proc.pid)))
    assert subprocess.run(reload_argv, check=False, timeout=30).returncode == 0  # `systemctl reload feedsvc`
    wait_for(lambda: feed_titles(root / "feeds" / "two.atom") == titles([2]), what="the reloaded topic's feed")
    assert d.stop(signal.SIGTERM, timeout=float(service["TimeoutStopSec"])) == 0  # `systemctl stop feedsvc`
    assert_lock_free(root / "config.toml")


def nginx_types() -> dict[str, str]:
    """extension -> media type, from the `types { ... }` block of deploy/nginx.conf."""
    block = re.search(r"types\s*\{(.*?)\}", (DEPLOY / "nginx.conf").read_text(), re.DOTALL)
    assert block, "deploy/nginx.conf has no types block"
    out = {}
    for line in block.group(1).strip().split(";"):
        if line.strip():
            media_type, *extensions = line.split()
            out.update({ext: media_type for ext in extensions})
    return out


def sample_files(root: Path) -> dict[str, bytes]:
    files = {"news.atom": b'<?xml version="1.0" encoding="utf-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom"/>\n',
             "news.rss": b'<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel/></rss>\n',
             "news.json": b'{"version": "https://jsonfeed.org/version/1.1", "items": []}\n',
             "index.opml": b'<?xml version="1.0" encoding="utf-8"?>\n<opml version="2.0"/>\n',
             "index.html": b"<!doctype html><title>feeds</title>\n",
             ".news.atom.abc123.tmp": b"half a feed"}
    for name, data in files.items():
        (root / name).write_bytes(data)
    return files


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers.items()), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers.items()), exc.read()


def test_nginx_snippet_types_are_those_feedsvc_serve_sends(tmp_path: Path) -> None:
    serve = pytest.importorskip("feedsvc.serve")
    types = nginx_types()
    assert {"atom", "rss", "json", "opml"} <= set(types)
    sample_files(tmp_path)
    httpd = serve.make_server(tmp_path, "127.0.0.1", 0)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        host, port = httpd.server_address[:2]
        for ext, media_type in types.items():
            name = "index." + ext if ext in ("opml", "html") else "news." + ext
            status, headers, _ = get(f"http://{host}:{port}/{name}")
            assert status == 200
            assert headers["Content-Type"].split(";")[0].strip() == media_type, name
    finally:
        httpd.shutdown()
        httpd.server_close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed")
def test_nginx_serves_the_feeds_with_the_snippet(tmp_path: Path) -> None:
    feeds = tmp_path / "feeds"
    feeds.mkdir()
    files = sample_files(feeds)
    snippet = (DEPLOY / "nginx.conf").read_text().replace(f"{SRV}/feeds/", f"{feeds}/")
    (tmp_path / "feedsvc.conf").write_text(snippet, encoding="utf-8")
    port = free_port()
    nginx = nginx_argv(tmp_path, tmp_path / "feedsvc.conf", port, foreground=True)
    check = subprocess.run([*nginx, "-t"], check=False, capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, check.stderr
    proc = subprocess.Popen(nginx, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        def up() -> bool:
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    return True
            except OSError:
                return False

        wait_for(up, what="nginx to listen")
        base = f"http://127.0.0.1:{port}/feeds/"
        for ext, media_type in nginx_types().items():
            name = "index." + ext if ext in ("opml", "html") else "news." + ext
            status, headers, body = get(base + name)
            assert status == 200 and body == files[name]
            assert headers["Content-Type"] == f"{media_type}; charset=utf-8"
        status, headers, _ = get(base + "news.atom")
        assert headers.get("ETag") and headers.get("Last-Modified")
        assert get(base + "news.atom", {"If-None-Match": headers["ETag"]})[0] == 304
        assert get(base + "news.atom", {"If-Modified-Since": headers["Last-Modified"]})[0] == 304
        assert get(base + ".news.atom.abc123.tmp")[0] == 404  # publish's temp files stay private
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stderr:
            proc.stderr.close()


def test_each_refresh_gives_freed_memory_back(make_daemon, recorder: Recorder, monkeypatch) -> None:
    """glibc keeps what a refresh's threads freed in their arenas: the daemon trims after every
    refresh, failed or not (bench/soak.py shows the effect on its memory over time)."""
    trims: list[int] = []
    monkeypatch.setattr(daemon_mod, "_malloc_trim", lambda pad: trims.append(pad) or 1)
    d = make_daemon([topic("a")])
    d.refresh_topic("a")
    recorder.fail_first = RuntimeError("boom")
    d.refresh_topic("a")
    assert trims == [0, 0]


ARENAS_SCRIPT = """
import ctypes, sys, threading
from feedsvc import daemon
if sys.argv[1] == "limit":
    daemon.limit_malloc_arenas()
go = threading.Barrier(8)
def work():
    go.wait()
    for _ in range(200):
        blocks = [bytearray(4096) for _ in range(50)]
threads = [threading.Thread(target=work) for _ in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join()
ctypes.CDLL("libc.so.6").malloc_stats()  # one "Arena n:" paragraph per arena, on stderr
"""


@pytest.mark.skipif(daemon_mod._mallopt is None, reason="glibc only (mallopt, malloc_stats)")
def test_the_daemon_keeps_to_one_malloc_arena() -> None:
    """Eight threads allocating at once get eight glibc arenas, each keeping its freed memory; the
    daemon (whose refreshes run on new threads) asks for one before starting any."""
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}

    def arenas(mode: str) -> int:
        run = subprocess.run([sys.executable, "-c", ARENAS_SCRIPT, mode], capture_output=True, text=True,
                             timeout=60, env=env)
        assert run.returncode == 0, run.stderr
        return len(re.findall(r"^Arena \d+:", run.stderr, re.M))

    assert arenas("free") > 2  # what the limit is for
    assert arenas("limit") <= daemon_mod.MALLOC_ARENAS
