"""`feedsvc run`: schedules, the job, reload and stop in-process; then the real daemon as a subprocess.

The in-process tests pass `Daemon` a refresh function of pipeline.refresh's signature that
records its calls, so they can stop a refresh half-way or make it crash; the subprocess
tests at the end run the real `python -m feedsvc run` against a real HTTP server.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

import pytest

from feedsvc import daemon as daemon_mod
from feedsvc.config import load_config
from feedsvc.daemon import Daemon, crontab_trigger, crontab_weekdays, make_trigger
from feedsvc.lock import StateLock
from feedsvc.model import RefreshResult, SourceOutcome

WAIT = 20.0  # upper bound on any wait for the scheduler; tests finish long before


def wait_for(predicate: Callable[[], Any], timeout: float = WAIT, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    pytest.fail(f"timed out after {timeout}s waiting for {what}")


def toml_value(value: Any) -> str:
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(value)


def write_config(path: Path, topics: list[dict[str, Any]], **settings: Any) -> Path:
    """A config.toml: [feedsvc] settings (fast test defaults) and one [[topics]] table per dict."""
    base = {"output_dir": "feeds", "state": "state/feedsvc.sqlite", "interval": "1h", "jitter": "0s",
            "host_delay": "0s"}
    base.update(settings)
    lines = ["[feedsvc]"] + [f"{k} = {toml_value(v)}" for k, v in base.items()]
    for topic in topics:
        lines += ["", "[[topics]]"] + [f"{k} = {toml_value(v)}" for k, v in topic.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


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

TUESDAY = datetime(2026, 1, 20, 3, 1, tzinfo=timezone.utc)  # 12:01 in Tokyo, a Tuesday


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
    start = datetime.now(timezone.utc)  # an interval counts from when its trigger is made
    hourly = make_trigger(config.topic("hourly"), config)  # type: ignore[arg-type]
    first = hourly.get_next_fire_time(None, start)
    # one hour, plus 0-10 s of jitter (plus slack for a slow machine, never near the next hour)
    assert start + timedelta(hours=1) <= first <= start + timedelta(hours=1, seconds=70)
    quick = make_trigger(config.topic("quick"), config)  # type: ignore[arg-type]
    assert start + timedelta(seconds=30) <= quick.get_next_fire_time(None, start) <= start + timedelta(seconds=100)
    morning = make_trigger(config.topic("morning"), config)  # type: ignore[arg-type]
    fire = morning.get_next_fire_time(None, TUESDAY)
    assert fire.astimezone(timezone.utc) >= datetime(2026, 1, 20, 22, 0, tzinfo=timezone.utc)  # 07:00 JST
    assert fire.astimezone(timezone.utc) <= datetime(2026, 1, 20, 22, 0, 10, tzinfo=timezone.utc)


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
                             "failed_sources": 1, "feed_written": True, "duration_s": 0.25}


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
        with pytest.raises(LockedError):
            with StateLock(d.config.lock_path, timeout=0):
                pass
    finally:
        recorder.gate.set()
        worker.join(WAIT)
    with StateLock(d.config.lock_path, timeout=0):  # released once the refresh is done
        pass


def test_jobs_have_stable_ids_coalesce_and_one_instance(make_daemon, recorder: Recorder) -> None:
    d = make_daemon([topic("a"), topic("b", cron="*/5 * * * *")])
    d.start()
    jobs = {j.id: j for j in d.scheduler.get_jobs()}
    assert set(jobs) == {"a", "b"}
    for job in jobs.values():
        assert job.coalesce is True and job.max_instances == 1
        assert job.next_run_time > datetime.now(timezone.utc) + timedelta(seconds=5)  # no initial refresh
    assert recorder.calls == []


def test_first_refresh_at_start_for_every_topic(make_daemon, recorder: Recorder) -> None:
    d = make_daemon([topic("a"), topic("b", cron="0 0 1 1 *")], initial_refresh=True)
    d.start()
    wait_for(lambda: sorted(recorder.topics()) == ["a", "b"], what="one refresh of each topic at start")
    assert recorder.most_inside == 1  # the lock lets one refresh write at a time


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
    assert after["move"].next_run_time.astimezone(timezone.utc).strftime("%H:%M") == "06:00"
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
