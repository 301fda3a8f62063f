"""Several workers, one PostgreSQL state: which worker refreshes which topic, and when.

The state is the schedule of record. Each topic has a row: when it is next due and, while a
worker refreshes it, that worker's lease. A worker claims due topics whose lease is free or
expired (PostgreSQL's FOR UPDATE SKIP LOCKED: two workers never claim one row), refreshes them,
then sets the next due time from the topic's schedule and lets the lease go. While it works, a
heartbeat thread renews its leases and says it is alive; a worker killed with kill -9 stops
renewing, its leases expire, and another worker claims those topics at its next poll.
`feedsvc refresh` (cron, by hand) claims the same leases, due or not, so it and the workers
never refresh one topic at once.

Nothing here but the state coordinates workers: no worker talks to another.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from feedsvc.config import Config, TopicConfig
from feedsvc.store import Store

log = logging.getLogger(__name__)

POLL_SECONDS = 1.0  # how often a worker looks for due topics: one indexed query
CLAIM_BATCH = 128  # topics one worker refreshes together (fetched in parallel, saved in groups)
NextDue = Callable[[Config, TopicConfig, datetime], datetime]  # daemon.next_due


def worker_name(role: str = "run") -> str:
    """host/pid, and what it is: what `status` shows and what a lease is held by."""
    return f"{socket.gethostname()}/{os.getpid()}" + ("" if role == "run" else f" {role}")


def alive_since(config: Config, now: datetime) -> datetime:
    """A worker seen since then is alive: its heartbeat says so three times a lease."""
    return now - 2 * config.lease


def now_utc() -> datetime:
    return datetime.now(UTC)


class Fleet:
    """This process's part in the fleet: its name, the leases it holds, its heartbeat.

    It has its own connection to the state, so that a claim or a renewal commits at once, beside
    the long transaction groups of a refresh. Thread-safe (one lock around the connection)."""

    def __init__(self, config: Config, next_due: NextDue, *, role: str = "run") -> None:
        self.config = config
        self.next_due = next_due
        self.name = worker_name(role)
        self._store = Store.open(config.state)
        self._lock = threading.Lock()
        self._claimed_at: dict[str, datetime] = {}  # the topics this worker holds -> when it claimed them
        self._renewed: set[str] = set()  # those the heartbeat renews (not an abandoned refresh's)
        self._ensured: set[str] = set()  # topics known to have a row in the state's schedule
        self._stop = threading.Event()
        self._heartbeat: threading.Thread | None = None
        with self._lock:
            self._store.register_worker(self.name, socket.gethostname(), os.getpid(), now_utc())

    def _state(self) -> Store:
        """The fleet's connection, opened again if the server dropped it (a restart): the heartbeat and
        the next poll carry on, where the old connection would fail until this worker restarted."""
        if self._store.broken:
            log.warning("fleet: the connection to %s was lost; connecting again", self.config.state_name)
            self._store = Store.open(self.config.state)
            self._store.register_worker(self.name, socket.gethostname(), os.getpid(), now_utc())
        return self._store

    @property
    def lease(self) -> timedelta:
        return self.config.lease  # (the daemon hands its fleet each reloaded config)

    # -- claiming

    def claim(self, topic_ids: Sequence[str], *, due_only: bool, limit: int = CLAIM_BATCH,
              initial: bool = True) -> list[str]:
        """Lease up to `limit` of these topics: the due ones (all of them, without due_only) whose
        lease is free or expired, the longest due first. A topic the state has not seen yet is due
        now (or, without `initial`, when its schedule first says)."""
        now = now_utc()
        new = set(topic_ids) - self._ensured  # (known ones are not written again: a poll a second)
        # "now" a minute back: a worker whose clock runs a little behind sees a new topic due too
        first_due = {t.id: now - timedelta(minutes=1) if initial else self.next_due(self.config, t, now)
                     for t in self.config.topics if t.id in new}
        with self._lock:
            if first_due:
                self._state().ensure_topics(first_due)
                self._ensured.update(first_due)
            if due_only:  # no more than a fair share of what is due: the other workers take the rest
                due, alive = self._state().fleet_load(topic_ids, now, alive_since(self.config, now))
                limit = min(limit, max(1, -(-due // max(alive, 1))))
            claimed = self._state().claim_topics(self.name, topic_ids, now, self.lease, limit=limit,
                                               due_only=due_only)
            for topic_id in claimed:
                self._claimed_at[topic_id] = now
            self._renewed.update(claimed)
        return claimed

    def finish(self, topic_ids: Sequence[str]) -> None:
        """The topics are refreshed (or failed: the failure is in their sources' health): each is next
        due when its schedule says, and its lease is let go."""
        now = now_utc()
        with self._lock:
            # counted from when the refresh started, so that a topic's refreshes start an interval apart
            # however long each takes (one that took longer than its interval is due again at once)
            due = {t.id: self.next_due(self.config, t, self._claimed_at.get(t.id, now)) for t in self.config.topics
                   if t.id in set(topic_ids)}
            self._state().finish_topics(self.name, topic_ids, due, now)
            self._forget(topic_ids)

    def release(self, topic_ids: Sequence[str]) -> None:
        """Let the leases go without a refresh (stopping): the topics stay due for another worker."""
        with self._lock:
            self._state().release_topics(self.name, topic_ids)
            self._forget(topic_ids)

    def _forget(self, topic_ids: Sequence[str]) -> None:
        for topic_id in topic_ids:
            self._claimed_at.pop(topic_id, None)
            self._renewed.discard(topic_id)

    def abandon(self, topic_ids: Sequence[str]) -> None:
        """A refresh stuck past its deadline: stop renewing its leases, so that they expire and
        another worker (or this one, later) takes the topics."""
        with self._lock:
            self._renewed.difference_update(topic_ids)

    @contextmanager
    def leased(self, topic_ids: Sequence[str], *, due_only: bool, limit: int = CLAIM_BATCH,
               initial: bool = True) -> Iterator[list[str]]:
        """claim(), then finish() the claimed topics when the block is done; if it raises (stopping, a
        refresh abandoned), release() them instead: due still, another worker takes them at once."""
        claimed = self.claim(topic_ids, due_only=due_only, limit=limit, initial=initial)
        try:
            yield claimed
        except BaseException:
            if claimed:
                self.release(claimed)
            raise
        if claimed:
            self.finish(claimed)

    def holders(self, topic_ids: Sequence[str]) -> dict[str, str]:
        """Who holds each of these topics' leases now (a topic whose lease ran out is not listed)."""
        now = now_utc()
        with self._lock:
            runs = {r.topic: r for r in self._state().topic_runs(topic_ids)}
        held = {}
        for topic_id in topic_ids:
            run = runs.get(topic_id)
            if run and run.lease_holder and run.lease_expires_at and run.lease_expires_at > now:
                held[topic_id] = run.lease_holder
        return held

    # -- heartbeat

    def start_heartbeat(self) -> None:
        """Renew held leases and say this worker is alive, three times a lease period."""
        if self._heartbeat is None:
            self._heartbeat = threading.Thread(target=self._beat, name="feedsvc-heartbeat", daemon=True)
            self._heartbeat.start()

    def _beat(self) -> None:
        every = max(self.lease.total_seconds() / 3, 0.2)
        while not self._stop.wait(every):
            try:
                self.renew()
            except Exception as exc:  # the state is down: the leases will expire; say so, keep trying
                log.error("heartbeat: cannot renew leases: %s", exc)

    def renew(self) -> None:
        now = now_utc()
        with self._lock:
            self._state().renew_leases(self.name, sorted(self._renewed), now, self.lease)
            self._state().worker_seen(self.name, now)

    def close(self) -> None:
        """Leave: stop the heartbeat, let every held lease go, and leave the list of live workers."""
        self._stop.set()
        if self._heartbeat is not None:
            self._heartbeat.join(timeout=5)
        with self._lock:
            try:
                if self._claimed_at:
                    self._state().release_topics(self.name, list(self._claimed_at))
                self._state().forget_worker(self.name)
            finally:
                self._store.close()

    def __enter__(self) -> Fleet:
        self.start_heartbeat()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

