"""`feedsvc run`: refresh each topic on its own schedule until SIGTERM. The only user of APScheduler.

One job per topic, with the topic id as its job id, so a reload can add, remove or
reschedule exactly the topics that changed. Each job calls the same `pipeline.refresh`
as `feedsvc refresh`, inside the same state lock, so a cron refresh beside the daemon
waits for it (or gives up with exit code 3) instead of writing beside it.

A job stuck past its deadline (job_deadline: its sources' fetch deadlines plus a margin) is
abandoned by the daemon's watchdog thread, reported in one ERROR line, and the next jobs run:
see Daemon._abandon for what is let go of and why that is safe.

Signals are only queued by their handlers; the main thread acts on them (APScheduler's
methods take locks, which a signal handler must not do). SIGHUP reloads the config,
SIGTERM and SIGINT stop: running refreshes get a short grace period, then are abandoned.
Abandoning is safe because feeds are written to a temporary file and renamed, and the
store commits whole transactions only; the kernel drops the flock when the process ends.
"""

from __future__ import annotations

import dataclasses
import functools
import gc
import logging
import os
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from apscheduler.executors.base import BaseExecutor, run_job
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.combining import OrTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from feedsvc import abandon
from feedsvc.config import Config, TopicConfig, describe_schedule, load_config
from feedsvc.errors import FeedsvcError, LockedError
from feedsvc.lock import StateLock
from feedsvc.model import RefreshResult

log = logging.getLogger(__name__)

INDEX_EVERY = 60.0  # seconds: index.html (the operator's page) is rewritten at most this often by `run`
STOP_GRACE = 2.0  # seconds a running refresh may take to finish after SIGTERM before it is abandoned
WORKER_TASKS = 1000  # pages (or feeds) a parse worker handles before the daemon replaces it
# Seconds a job may take beyond fetching its pages before it is called stuck: parsing (a batch is cut
# off at pipeline.PARSE_TIMEOUT, 60 s), saving, publishing, a site's Crawl-delay beyond its gap.
JOB_MARGIN = 120.0
UNWIND_WAIT = 1.0  # seconds an abandoned job's thread is given to unwind before its state lock is released
RefreshFn = Callable[..., Sequence[RefreshResult]]

# --------------------------------------------------------------------------- triggers

_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")  # crontab numbering: 0 (and 7) is Sunday


def _weekday(text: str) -> int:
    text = text.strip().lower()
    if text.isdigit():
        return int(text)
    if text[:3] in _WEEKDAYS:
        return _WEEKDAYS.index(text[:3])
    raise ValueError(f"{text!r} is not a weekday")


def crontab_weekdays(field: str) -> str:
    """A crontab weekday field as APScheduler 3 day names.

    APScheduler 3 counts weekdays from Monday = 0 (its issue 286), crontab from
    Sunday = 0, so `1` and `*/2` mean other days there; names mean the same in both.
    """
    days: set[int] = set()
    for part in field.lower().split(","):
        base, slash, step_text = part.partition("/")
        step = int(step_text) if slash else 1
        if base in ("*", "?"):
            lo, hi = 0, 6
        elif "-" in base:
            a, b = base.split("-", 1)
            lo, hi = _weekday(a), _weekday(b)
            if hi < lo and hi == 0:
                hi = 7  # "fri-sun": Sunday written as the end of a range
        else:
            lo = _weekday(base)
            hi = 7 if slash else lo  # "1/2" is "1-7/2", as in Vixie cron
        if step < 1 or not 0 <= lo <= hi <= 7:
            raise ValueError(f"{field!r} is not a crontab weekday field")
        days.update(d % 7 for d in range(lo, hi + 1, step))
    if len(days) == 7:
        return "*"
    return ",".join(_WEEKDAYS[d] for d in sorted(days))


def crontab_trigger(expr: str, tz: str, jitter: float | None = None) -> BaseTrigger:
    """A trigger that fires when crontab would, in time zone `tz`.

    As in crontab, when both day-of-month and day-of-week are restricted, either one
    matching is enough (APScheduler's CronTrigger wants both: hence the OrTrigger).
    """
    minute, hour, dom, month, dow = expr.split()
    zone = ZoneInfo(tz)
    dow_names = crontab_weekdays(dow)

    def cron(day: str, day_of_week: str, with_jitter: float | None) -> CronTrigger:
        return CronTrigger(minute=minute, hour=hour, day=day, month=month, day_of_week=day_of_week,
                           timezone=zone, jitter=with_jitter)

    dom_restricted = not dom.startswith(("*", "?"))
    dow_restricted = not dow.startswith(("*", "?"))
    if dom_restricted and dow_restricted:
        return OrTrigger([cron(dom, "*", None), cron("*", dow_names, None)], jitter=jitter)
    return cron(dom, dow_names, jitter)


# Jitter spreads the topics' runs, but a schedule must still be kept: whatever `jitter` says, a run is
# delayed by at most this share of the time between runs ("2s" with the default 30 s jitter once took
# more than 20 s to show a change).
JITTER_SHARE = 0.1


def cron_period(expr: str, tz: str) -> float:
    """The shortest time between two runs of a crontab expression, in seconds (over its next 24 runs)."""
    trigger = crontab_trigger(expr, tz)
    start = datetime(2026, 1, 1, tzinfo=ZoneInfo(tz))  # any fixed moment: the gaps do not depend on it
    times = [trigger.get_next_fire_time(None, start)]
    for _ in range(24):
        last = times[-1]
        if last is None:
            break
        times.append(trigger.get_next_fire_time(last, last + timedelta(microseconds=1)))
    gaps = [(b - a).total_seconds() for a, b in zip(times, times[1:]) if a is not None and b is not None]
    return min(gaps, default=86400.0)


def effective_jitter(topic: TopicConfig, config: Config) -> float | None:
    """The configured jitter, capped at JITTER_SHARE of the topic's period; None for none."""
    period = cron_period(topic.cron, topic.timezone) if topic.cron else topic.interval.total_seconds()
    return min(config.jitter.total_seconds(), period * JITTER_SHARE) or None


def make_trigger(topic: TopicConfig, config: Config) -> BaseTrigger:
    jitter = effective_jitter(topic, config)
    if topic.cron:
        return crontab_trigger(topic.cron, topic.timezone, jitter)
    return IntervalTrigger(seconds=topic.interval.total_seconds(), timezone=ZoneInfo(topic.timezone),
                           jitter=jitter)


def next_due(config: Config, topic: TopicConfig, now: datetime) -> datetime:
    """When the topic is next due after a refresh at `now`, by its schedule (jitter included): what a
    fleet worker writes into the state for whichever worker claims it next."""
    trigger = make_trigger(topic, config) if topic.cron else IntervalTrigger(
        seconds=topic.interval.total_seconds(), start_date=now + topic.interval, timezone=ZoneInfo(topic.timezone),
        jitter=effective_jitter(topic, config))
    return trigger.get_next_fire_time(None, now) or now + topic.interval


def schedule_key(topic: TopicConfig, config: Config) -> tuple[Any, ...]:
    """What a job's trigger is made of: when it changes on reload, the job is rescheduled."""
    return (topic.cron, topic.interval, topic.timezone, config.jitter)


# --------------------------------------------------------------------------- executor


class _DaemonThreadExecutor(BaseExecutor):
    """Runs each job in its own daemon thread.

    APScheduler's ThreadPoolExecutor uses concurrent.futures, whose worker threads the
    interpreter joins at exit: a refresh stuck in a 30 s fetch would hold up SIGTERM.
    Daemon threads are simply abandoned at exit, which the pipeline is built to survive.
    (max_instances is still enforced by BaseExecutor.submit_job.)
    """

    def __init__(self) -> None:
        super().__init__()
        self._threads: dict[int, str] = {}  # thread id -> the job it runs, while it runs
        self._counted_out: set[int] = set()  # threads of abandoned jobs, no longer an instance of theirs

    def _do_submit_job(self, job: Any, run_times: list[datetime]) -> None:
        def target() -> None:
            with self._lock:
                self._threads[threading.get_ident()] = job.id
            try:
                events = run_job(job, job._jobstore_alias, run_times, self._logger.name)
            except BaseException as exc:  # noqa: BLE001 - as APScheduler's own executors do
                outcome: Callable[[], None] = functools.partial(self._run_job_error, job.id, exc, exc.__traceback__)
            else:
                outcome = functools.partial(self._run_job_success, job.id, events)
            with self._lock:
                me = threading.get_ident()
                del self._threads[me]
                if me in self._counted_out:  # abandoned: its instance was counted out then
                    self._counted_out.discard(me)
                    return
                outcome()  # (takes the same RLock)

        threading.Thread(target=target, name=f"feedsvc-{job.id}", daemon=True).start()

    def count_out(self, job_id: str, thread_id: int) -> None:
        """The job running in thread `thread_id` no longer counts against job_id's max_instances:
        it was abandoned, and its next run must not be refused as "maximum number of running
        instances reached". When the thread ends after all, it is not counted out twice."""
        with self._lock:
            if self._threads.get(thread_id) != job_id or thread_id in self._counted_out:
                return  # not one of this executor's runs of the job (a test's direct call), or counted out
            self._counted_out.add(thread_id)
            if self._instances.get(job_id, 0) > 0:
                self._instances[job_id] -= 1
                if self._instances[job_id] == 0:
                    del self._instances[job_id]


# --------------------------------------------------------------------------- stuck jobs


def batch_deadline(topics: Sequence[TopicConfig], config: Config, margin: float = JOB_MARGIN) -> float:
    """job_deadline() of a fleet worker's batch: its topics' sources, fetched together."""
    sources = {s.url: s for t in topics for s in t.sources}
    return job_deadline(dataclasses.replace(topics[0], sources=tuple(sources.values())), config, margin)


def job_deadline(topic: TopicConfig, config: Config, margin: float = JOB_MARGIN) -> float:
    """Seconds a refresh of `topic` may hold the state lock before the daemon calls it stuck.

    Its sources' pages each have the config's one deadline (robots.txt, DNS, redirects and retries
    included), so fetching them is bounded (fetch.time_bound: hosts in parallel, a host's pages in
    turn, with their pacing); with article pages, those too (article_limit a host). `margin` is for
    the rest: parsing, saving, publishing. A refresh that is only slow stays well inside this; one
    past it is waiting for something that is not coming (a parse that never returns, a bug)."""
    from feedsvc.pipeline import time_bound  # imported late: it imports requests

    bound = functools.partial(time_bound, timeout=config.timeout.total_seconds(),
                              host_delay=config.host_delay.total_seconds(),
                              host_delays={h: d.total_seconds() for h, d in config.hosts.items()})
    seconds = bound(topic.sources)
    readers = list({(urlsplit(s.url).hostname or "").lower(): s for s in topic.sources if s.article != "off"}.values())
    if readers:  # article pages: at most article_limit a host (its sources' hosts), read after the listings
        seconds += bound(readers, pages_per_source=config.article_limit)
    return seconds + margin


def _raise_in(thread_id: int, exc_type: type[BaseException] | None) -> None:
    """Raise `exc_type` in another thread the next time it runs Python code (None: take back one
    not yet raised). CPython's PyThreadState_SetAsyncExc: it cannot stop a thread blocked in C (a
    socket, a lock, SQLite), but the moment that call returns, the thread unwinds."""
    import ctypes

    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id),
                                               ctypes.py_object(exc_type) if exc_type is not None else None)


class _Run:
    """One run of a topic's job, as the watchdog sees it."""

    def __init__(self, topic_id: str, deadline: float, *, job_id: str | None = None,
                 topic_ids: Sequence[str] = ()) -> None:
        self.topic_id = topic_id  # what the log names (a fleet batch: its topics, joined)
        self.job_id = job_id or topic_id  # the APScheduler job it is an instance of
        self.topic_ids = list(topic_ids) or [topic_id]
        self.deadline = deadline  # seconds, counted from when it holds the state lock
        self.thread_id = threading.get_ident()
        self.thread = threading.current_thread()
        self.scope = abandon.Scope()
        self.lock: StateLock | None = None
        self.started: float | None = None  # monotonic: when it got the state lock (waiting is not stuck)
        self.finished = False
        self.abandoned = False
        self.guard = threading.Lock()  # finished/abandoned, and the state lock's one release

    def overdue(self, now: float) -> float | None:
        """Seconds until its deadline (negative: past it); None while it is not refreshing."""
        started = self.started
        return None if started is None else started + self.deadline - now

    def release_lock(self) -> None:
        """Release the state lock once, from whichever thread comes first (the job, or the watchdog).

        Under the guard, which the watchdog holds to send Abandoned: so Abandoned is never sent while the
        job's thread is inside StateLock.release, and cannot cut it off between forgetting the lock's
        descriptor and closing it (that would hold the lock for the life of the process). One sent
        earlier is raised before the job gets here; `self.lock` is cleared only once it is released."""
        with self.guard:
            if self.lock is not None:
                self.lock.release()
                self.lock = None

    def finish(self) -> None:
        """The job's thread is done with the refresh: from now on it is never abandoned."""
        with self.guard:
            self.finished = True
            if self.abandoned:
                _raise_in(self.thread_id, None)  # an Abandoned sent but not yet raised: not any more


# --------------------------------------------------------------------------- the daemon


class Daemon:
    """The scheduler, its jobs and the running config. `run()` adds signals and the main loop.

    `refresh` is `pipeline.refresh` unless a test passes another function with its signature.
    `job_margin` is what a job may take beyond fetching before it is called stuck (job_deadline).
    """

    def __init__(self, config_path: Path, config: Config, *, initial_refresh: bool = True,
                 lock_timeout: float = 600.0, refresh: RefreshFn | None = None,
                 job_margin: float = JOB_MARGIN) -> None:
        self.config_path = Path(config_path)
        self.config = config  # replaced whole on reload; a job reads it once when it starts
        self.initial_refresh = initial_refresh
        self.lock_timeout = lock_timeout
        self.job_margin = job_margin
        self._refresh = refresh
        self._workers: Any = None  # pipeline.Workers, started by the first refresh that needs it
        self._workers_lock = threading.Lock()
        self.stopping = threading.Event()
        self._runs: set[_Run] = set()  # the jobs running (an abandoned one no longer is)
        self._stuck: list[_Run] = []  # abandoned runs, until their thread ends
        self._idle = threading.Condition()
        self.fleet: Any = None  # fleet.Fleet with a PostgreSQL state: topics are leased, not locked
        self._polling = threading.Lock()  # held by the fleet job's claim-and-refresh loop
        self._wake = threading.Event()  # a run started its clock: the watchdog looks again
        self._watchdog: threading.Thread | None = None
        self._executor = _DaemonThreadExecutor()
        self.scheduler = BackgroundScheduler(
            executors={"default": self._executor},
            job_defaults={
                "coalesce": True,  # runs missed while asleep or busy collapse into one
                "max_instances": 1,  # never two refreshes of one topic at once
                # With coalesce, a late run is one catch-up refresh however late it is: a feed
                # that is refreshed late beats one that waits a whole period (a daily cron).
                "misfire_grace_time": None,
            },
            timezone=UTC,
        )

    # -- jobs

    def _add_job(self, topic: TopicConfig, config: Config, *, run_now: bool) -> None:
        kwargs: dict[str, Any] = {}
        if run_now:
            kwargs["next_run_time"] = datetime.now(UTC)
        self.scheduler.add_job(self.refresh_topic, make_trigger(topic, config), args=[topic.id], id=topic.id,
                               name=f"refresh {topic.id}", replace_existing=True, **kwargs)

    def start(self) -> None:
        if self.config.state_url:
            self._start_fleet()
            return
        for topic in self.config.topics:
            self._add_job(topic, self.config, run_now=self.initial_refresh)
        self.scheduler.start()
        self._watchdog = threading.Thread(target=self._watch, name="feedsvc-job-watchdog", daemon=True)
        self._watchdog.start()
        for topic in self.config.topics:
            job = self.scheduler.get_job(topic.id)
            log.info("%s: scheduled %s, next refresh %s", topic.id, describe_schedule(topic),
                     job.next_run_time.isoformat(timespec="seconds") if job and job.next_run_time else "-")

    def refresh_topic(self, topic_id: str) -> RefreshResult | None:
        """The job: one topic, under the state lock. Never raises: the schedule goes on."""
        if self.stopping.is_set():
            return None
        config = self.config
        topic = config.topic(topic_id)
        if topic is None:  # removed by a reload while this run was due
            return None
        run = _Run(topic_id, job_deadline(topic, config, self.job_margin))
        try:
            with self._watched(run):
                with abandon.scope(run.scope):
                    return self._refresh_locked(config, topic_id, run)
        except BaseException as exc:  # noqa: BLE001 - Abandoned is one, and is expected
            if run.abandoned:  # reported when it was abandoned; whatever it ended with is no news
                since = time.monotonic() - (run.started or time.monotonic())
                log.info("%s: the abandoned refresh has ended, %.0fs after it started (%s)", topic_id, since,
                         type(exc).__name__)
            elif isinstance(exc, LockedError):
                if self.stopping.is_set():
                    log.info("%s: refresh not started, stopping", topic_id)
                else:
                    log.warning("%s: refresh skipped: %s", topic_id, exc)
            elif isinstance(exc, FeedsvcError):
                log.error("%s: refresh failed: %s", topic_id, exc, extra={"fields": {"topic": topic_id}})
            elif isinstance(exc, Exception):  # a bug: keep the traceback, keep the schedule
                log.exception("%s: refresh crashed (a bug; the schedule goes on)", topic_id,
                              extra={"fields": {"topic": topic_id}})
            else:
                raise
        finally:
            if run.abandoned:
                collect_abandoned()
            release_memory()
        return None

    @contextmanager
    def _watched(self, run: _Run) -> Iterator[None]:
        """The block is `run`, which the watchdog sees until it ends (or abandons it past its deadline)."""
        with self._idle:
            self._runs.add(run)
        self._wake.set()
        try:
            try:
                yield
            finally:
                run.finish()
        finally:
            with self._idle:
                self._runs.discard(run)
                if run in self._stuck:
                    self._stuck.remove(run)
                self._idle.notify_all()

    def _refresh_locked(self, config: Config, topic_id: str, run: _Run) -> RefreshResult | None:
        refresh = self._pipeline_refresh()
        asked = time.monotonic()
        with run.guard:
            run.lock = StateLock(config.lock_path, timeout=self.lock_timeout, who=f"feedsvc run, topic {topic_id}",
                                 cancel=self.stopping)
        try:
            run.lock.acquire()
            started = run.started = time.monotonic()  # the clock of its deadline starts
            self._wake.set()
            if started - asked > 1:
                log.info("%s: waited %.1fs for the state lock", topic_id, started - asked)
            results = refresh(config, [topic_id], now=datetime.now(UTC))
            seconds = time.monotonic() - started
        finally:
            run.release_lock()  # (unless the watchdog has released it already)
        for result in results:
            log_result(result, result.seconds or seconds)
        return results[0] if results else None

    # -- fleet mode (PostgreSQL state): the state says which topics are due; leases say whose they are

    def _start_fleet(self) -> None:
        from feedsvc.fleet import POLL_SECONDS, Fleet

        self.fleet = Fleet(self.config, next_due)
        self.fleet.start_heartbeat()
        # two instances: while one refreshes a batch, the next poll finds it busy and returns at once
        # (with one, APScheduler would log a "skipped" warning every second of a long batch)
        self.scheduler.add_job(self.refresh_due, IntervalTrigger(seconds=POLL_SECONDS), id="fleet",
                               name="refresh due topics", next_run_time=datetime.now(UTC), max_instances=2)
        self.scheduler.start()
        self._watchdog = threading.Thread(target=self._watch, name="feedsvc-job-watchdog", daemon=True)
        self._watchdog.start()
        log.info("fleet worker %s: %d topic(s), due ones claimed every %.0f s, leases of %d s",
                 self.fleet.name, len(self.config.topics), POLL_SECONDS, self.config.lease.total_seconds())

    def refresh_due(self) -> list[RefreshResult]:
        """The fleet job: claim due topics no other worker holds, refresh them together, let them go with
        their next due times; again while topics are due (a backlog is not left to the next poll).
        Never raises: the schedule goes on."""
        polling = self._polling  # (replaced when a batch is abandoned: its thread may never let go)
        if not polling.acquire(blocking=False):
            return []  # the loop below is running: it claims again as soon as its batch is done
        try:
            return self._refresh_due()
        finally:
            polling.release()

    def _refresh_due(self) -> list[RefreshResult]:
        done: list[RefreshResult] = []
        while not self.stopping.is_set():
            config = self.config  # a reload applies from the next batch
            self.fleet.config = config
            results: Sequence[RefreshResult] = []
            abandoned = False
            try:
                # A failed refresh still moves the topics to their next due time (the failure is in
                # their sources' health): retried at once, a broken topic would take every poll.
                with self.fleet.leased([t.id for t in config.topics], due_only=True,
                                       initial=self.initial_refresh) as claimed:
                    if not claimed:
                        return done
                    results = self._refresh_batch(config, claimed)
            except FeedsvcError as exc:  # the state itself: claiming or letting go failed
                log.error("fleet: %s", exc)
                return done
            except abandon.Abandoned:  # reported when it was abandoned; its leases were let go on the way out
                abandoned = True
                return done
            finally:
                if abandoned:
                    collect_abandoned()
                release_memory()
            for result in results:
                log_result(result, result.seconds or 0.0)
            done += results
        return done

    def _refresh_batch(self, config: Config, claimed: list[str]) -> Sequence[RefreshResult]:
        """Refresh the claimed topics under the watchdog, as refresh_topic does one topic: past the batch's
        deadline it is abandoned, and its leases are no longer renewed (fleet.abandon), so that they expire
        and another worker takes the topics."""
        topics = [t for t in config.topics if t.id in set(claimed)]
        run = _Run(", ".join(claimed), batch_deadline(topics, config, self.job_margin), job_id="fleet",
                   topic_ids=claimed)
        run.started = time.monotonic()  # no state lock to wait for: the clock starts now
        try:
            with self._watched(run), abandon.scope(run.scope):
                return self._pipeline_refresh()(config, claimed, now=datetime.now(UTC))
        except FeedsvcError as exc:
            log.error("%s: refresh failed: %s", run.topic_id, exc)
        except abandon.Abandoned:
            raise
        except Exception:  # a bug: keep the traceback, keep the schedule
            log.exception("%s: refresh crashed (a bug; the schedule goes on)", run.topic_id)
        return []

    def _pipeline_refresh(self) -> RefreshFn:
        if self._refresh is not None:
            return self._refresh
        from feedsvc import pipeline  # imported late: `feedsvc run --help` needs none of it

        # One pool of parse workers for the daemon's life (each worker replaced after a
        # while): a pool per refresh, every few seconds, was the daemon's main churn.
        with self._workers_lock:  # two topics' jobs may get here at once
            if self._workers is None:
                self._workers = pipeline.Workers(pipeline.default_workers(), tasks_per_worker=WORKER_TASKS)
        return functools.partial(pipeline.refresh, workers=self._workers, index_every=INDEX_EVERY)

    def running(self) -> set[str]:
        with self._idle:
            return {run.topic_id for run in self._runs}

    # -- stuck jobs

    def _watch(self) -> None:
        """The watchdog: abandons each run still refreshing past its deadline."""
        while not self.stopping.is_set():
            self._wake.clear()
            now = time.monotonic()
            with self._idle:
                runs = list(self._runs)
            wait = 60.0
            for run in runs:
                left = run.overdue(now)
                if left is None:
                    continue
                if left <= 0:
                    self._abandon(run)
                else:
                    wait = min(wait, left)
            self._wake.wait(wait + 0.05)

    def _abandon(self, run: _Run) -> None:
        """Give up on a run stuck past its deadline, so that the next jobs run: its topic's and the others'.

        Its thread cannot be killed, so it is stopped where Python can, and what it holds is let go of:
        1. Abandoned is raised in its thread the moment it runs Python code again, so it never goes on
           to commit or publish what it was doing (a BaseException: no `except Exception` swallows it).
           Its `with` blocks unwind as for any error: the store rolls back and closes, temp files go
           (and what a cleanup cut short by Abandoned left open is collected when the thread ends).
        2. Its store's running statement is interrupted and its fetchers' requests are cut off
           (abandon.Scope), so that a thread blocked in SQLite or on a socket gets back to Python, to 1.
        3. After UNWIND_WAIT for that, the state lock is released, blocked or not. Safe because the lock
           only keeps two writers apart, and this one can no longer write: feeds are written to a temp
           file and renamed (a rename is whole or not at all), and the store commits whole transactions
           only; an interrupted one is rolled back by SQLite, and one left open by a thread still blocked
           in C keeps SQLite's own write lock, so a later refresh waits (busy timeout) and fails with a
           store error instead of writing beside it.
        4. Its job instance is counted out, so that APScheduler (max_instances = 1) runs the topic again.
        """
        with run.guard:
            if run.finished or run.abandoned:
                return
            run.abandoned = True
            _raise_in(run.thread_id, abandon.Abandoned)
        with self._idle:
            self._runs.discard(run)  # stop() does not wait for it
            self._stuck.append(run)
        started = run.started or time.monotonic()
        seconds = time.monotonic() - started
        log.error("%s: refresh stuck for %.0fs, past its %.0fs deadline: abandoned (nothing it did after its "
                  "last commit is kept); the state lock goes to the next refreshes", run.topic_id, seconds,
                  run.deadline, extra={"fields": {"topic": run.topic_id, "stuck_s": round(seconds, 1),
                                                  "deadline_s": round(run.deadline, 1)}})
        if self.fleet is not None:  # its leases expire: another worker (or this one's next poll) takes them
            self.fleet.abandon(run.topic_ids)
            self._polling = threading.Lock()
        run.scope.abandon()
        run.thread.join(UNWIND_WAIT)
        if run.thread.is_alive():
            log.warning("%s: the abandoned refresh is blocked where Python cannot stop it; its thread is left "
                        "behind, and stops when it next runs Python code", run.topic_id)
        run.release_lock()
        self._executor.count_out(run.job_id, run.thread_id)

    # -- reload and stop

    def reload(self) -> bool:
        """Re-read the config file; apply it, or keep the running config if it is broken."""
        try:
            new = load_config(self.config_path)
        except FeedsvcError as exc:
            log.error("config reload refused, still running the previous config: %s", exc)
            return False
        except Exception:
            log.exception("config reload refused (unexpected error), still running the previous config")
            return False
        old = self.config
        old_ids = {t.id for t in old.topics}
        new_ids = {t.id for t in new.topics}
        added = [t for t in new.topics if t.id not in old_ids]
        removed = sorted(old_ids - new_ids)
        rescheduled = [t for t in new.topics if t.id in old_ids
                       and schedule_key(t, new) != schedule_key(old.topic(t.id), old)]  # type: ignore[arg-type]
        self.config = new  # jobs read it when they start, so source or title changes apply next run
        if self.fleet is not None:  # the fleet job claims from the new list: a removed topic is not leased
            log.info("config reloaded from %s: %d topics", self.config_path, len(new.topics))
            return True
        for topic_id in removed:
            if self.scheduler.get_job(topic_id):
                self.scheduler.remove_job(topic_id)
        for topic in added:
            self._add_job(topic, new, run_now=self.initial_refresh)
        for topic in rescheduled:
            self.scheduler.reschedule_job(topic.id, trigger=make_trigger(topic, new))
        if new.output_dir != old.output_dir or new.state != old.state:
            log.warning("config reload: output_dir or state changed; refreshes use the new paths, "
                        "but --serve keeps serving %s until a restart", old.output_dir)
        log.info("config reloaded from %s: %d topics (added: %s; removed: %s; rescheduled: %s)",
                 self.config_path, len(new.topics), ", ".join(t.id for t in added) or "none",
                 ", ".join(removed) or "none", ", ".join(t.id for t in rescheduled) or "none",
                 extra={"fields": {"added": [t.id for t in added], "removed": removed,
                                   "rescheduled": [t.id for t in rescheduled]}})
        return True

    def stop(self, grace: float = STOP_GRACE) -> set[str]:
        """Stop scheduling; give running refreshes `grace` seconds; return those abandoned."""
        self.stopping.set()  # also ends any wait for the state lock
        self._wake.set()  # and the watchdog
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        deadline = time.monotonic() + grace
        with self._idle:
            while self._runs and (left := deadline - time.monotonic()) > 0:
                self._idle.wait(left)
            abandoned = {run.topic_id for run in self._runs}
            # a run abandoned earlier whose thread is still blocked: the process must not wait for it
            abandoned |= {run.topic_id for run in self._stuck if run.thread.is_alive()}
        if self.fleet is not None:
            self.fleet.close()  # every lease let go: another worker takes the topics at once
        if abandoned:
            log.warning("stopping: abandoning the refresh of %s (feeds are replaced atomically and the "
                        "store rolls back an unfinished transaction)", ", ".join(sorted(abandoned)))
        elif self._workers is not None:
            self._workers.close()  # (with a refresh abandoned, the process exits and the workers follow)
        return abandoned


def _glibc(name: str) -> Callable[..., int] | None:
    try:
        import ctypes

        return getattr(ctypes.CDLL("libc.so.6"), name)  # type: ignore[no-any-return]
    except (OSError, AttributeError):  # not glibc: musl, macOS
        return None


_malloc_trim = _glibc("malloc_trim")
_mallopt = _glibc("mallopt")
M_ARENA_MAX = -8  # mallopt() parameter, from glibc's <malloc.h>
MALLOC_ARENAS = 1


def limit_malloc_arenas() -> None:
    """One glibc malloc arena for all threads (unless MALLOC_ARENA_MAX says otherwise).

    glibc gives threads that allocate at the same time arenas of their own, up to 8 a core, and
    each keeps what was freed in it. A daemon runs each refresh on new threads (the job's, the
    fetchers'), so its free memory spread over ever more arenas: in the soak, RSS stepped up by
    8 MiB when a new arena appeared after half an hour, and crept with 2 arenas; with one it
    levels off within minutes. Contention is no cost here: the threads take turns on the GIL
    anyway. Must run before those threads start."""
    if _mallopt is not None and "MALLOC_ARENA_MAX" not in os.environ:
        _mallopt(M_ARENA_MAX, MALLOC_ARENAS)


def collect_abandoned() -> None:
    """After an abandoned refresh has unwound, once its exception is handled (until then its traceback
    keeps the frames alive). Abandoned may have landed inside a cleanup (a `with` block's exit) and cut
    it short: what it would have closed is garbage now, in reference cycles (exceptions and their
    frames). Collected here, in the thread that opened it: a store's connection closes and rolls back
    its open transaction, releasing SQLite's write lock for the refreshes after it."""
    gc.collect()


def release_memory() -> None:
    """Give the memory a refresh freed back to the system (glibc's malloc_trim).

    A refresh allocates and frees tens of MB (pages, parsed items, SQLite's page cache) across
    threads that each take a malloc arena; glibc keeps freed pages in those arenas, so between
    refreshes a daemon's resident memory crept upward although nothing was still referenced
    (bench/soak.py; tracemalloc saw no growth). The daemon is idle most of its life: it returns them."""
    if _malloc_trim is not None:
        _malloc_trim(0)


def log_result(result: RefreshResult, seconds: float) -> None:
    """The one INFO line per refresh; with --log-format json its numbers are fields too."""
    failed, backed_off = result.failures, result.backed_off
    line = (f"{result.topic}: {result.entries} entries, {result.new} new, {result.updated} updated, "
            f"{len(failed)} failed source{'' if len(failed) == 1 else 's'}"
            + (f", {len(backed_off)} backed off" if backed_off else "") + f", {seconds:.2f}s")
    if failed:
        line += " (failed: " + "; ".join(f"{s.url}: {s.error}" for s in failed) + ")"
    if backed_off:
        line += " (backed off: " + "; ".join(f"{s.url}: {s.error}" for s in backed_off) + ")"
    log.info(line, extra={"fields": {
        "topic": result.topic, "entries": result.entries, "new": result.new, "updated": result.updated,
        "failed_sources": len(failed), "backed_off_sources": len(backed_off), "feed_written": result.feed_written,
        "duration_s": round(seconds, 3)}})


# --------------------------------------------------------------------------- run


def quiet_apscheduler() -> None:
    """APScheduler logs every job start and end at INFO: keep it at WARNING unless debugging."""
    if logging.getLogger().getEffectiveLevel() > logging.DEBUG:
        logging.getLogger("apscheduler").setLevel(logging.WARNING)


def run(config_path: Path, *, initial_refresh: bool = True, serve: tuple[str, int] | None = None,
        lock_timeout: float = 600.0, exit_now: bool = True) -> int:
    """Run in the foreground until SIGTERM or SIGINT (exit code 0). SIGHUP reloads the config.

    Must be called from the main thread (signal handlers live there). Raises ConfigError
    for a broken config at start, FeedsvcError when --serve cannot bind. When a refresh had
    to be abandoned, the process ends right here with os._exit(0) (unless exit_now=False),
    so that SIGTERM never waits for a fetch to time out.
    """
    limit_malloc_arenas()
    signals: queue.SimpleQueue[int] = queue.SimpleQueue()  # put() is safe inside a signal handler

    def on_signal(signum: int, frame: object) -> None:
        signals.put(signum)

    handled = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
    previous = {s: signal.signal(s, on_signal) for s in handled}
    daemon: Daemon | None = None
    httpd = None
    abandoned: set[str] = set()
    try:
        config = load_config(config_path)
        quiet_apscheduler()
        if serve is not None:
            httpd = start_server(config.output_dir, *serve)
        daemon = Daemon(Path(config_path), config, initial_refresh=initial_refresh, lock_timeout=lock_timeout)
        daemon.start()
        log.info("feedsvc run: %d topic(s) from %s, state %s (pid %d; SIGHUP reloads, SIGTERM stops)",
                 len(config.topics), config.path, config.state_name, os.getpid())
        while True:
            try:
                signum = signals.get(timeout=1.0)  # a timeout keeps the wait interruptible
            except queue.Empty:
                continue
            if signum == signal.SIGHUP:
                log.info("SIGHUP: reloading %s", config_path)
                daemon.reload()
            else:
                log.info("%s: stopping", signal.Signals(signum).name)
                break
    finally:
        if daemon is not None:
            abandoned = daemon.stop()
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()
        for s, handler in previous.items():
            signal.signal(s, handler)
    log.info("stopped")
    if abandoned and exit_now:
        # The abandoned refresh may sit in a fetch's worker pool, whose threads the interpreter
        # would join at exit (up to the fetch timeout). Nothing is left to save: the store has
        # rolled back, feeds are renamed into place whole or not at all, the kernel drops the lock.
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    return 0


def start_server(root: Path, host: str, port: int) -> Any:
    from feedsvc.serve import make_server  # written by another module's owner; only --serve needs it

    root.mkdir(parents=True, exist_ok=True)
    try:
        httpd = make_server(root, host, port)
    except OSError as exc:
        raise FeedsvcError(f"cannot serve {root} on {host}:{port}: {exc.strerror or exc}") from None
    threading.Thread(target=httpd.serve_forever, name="feedsvc-serve", daemon=True).start()
    bound_host, bound_port = httpd.server_address[:2]
    log.info("serving %s on http://%s:%d/", root, bound_host, bound_port)
    return httpd

