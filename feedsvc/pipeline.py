"""The one place that wires the steps together: fetch -> extract -> normalize -> dedupe -> store -> publish.

`refresh()` is what `feedsvc refresh` and every scheduled job of `feedsvc run` call. It
does not take the state lock (its callers do) and does not read the clock (`now` is
passed in), so a test can replay any moment.

A source's failure is data: it is recorded in the store, backed off, reported in the
RefreshResult, and the topic's feed keeps the entries it had. Store and publish errors
stop the run.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import BrokenExecutor, Future
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar
from urllib.parse import urlsplit

from feedsvc import __version__, abandon, dedupe, publish, websub
from feedsvc.config import Config, Selectors, SourceConfig, TopicConfig
from feedsvc.errors import SourceError, UsageError
from feedsvc.fetch import Fetcher, next_try_at
from feedsvc.fetch import time_bound as time_bound  # re-exported: the daemon bounds its jobs with it
from feedsvc.model import (Article, Entry, Item, NotModified, Page, RawItem, RefreshResult, RobotsTxt, SourceOutcome,
                           SourceState)
from feedsvc.store import Store

if TYPE_CHECKING:
    from concurrent.futures import ProcessPoolExecutor

log = logging.getLogger(__name__)

Progress = Callable[[str], None]
T = TypeVar("T")
K = TypeVar("K")
V = TypeVar("V")


@dataclass
class SourceItems:
    """What one source gave in this run: its items, or why it gave none."""

    outcome: SourceOutcome
    items: list[Item] = field(default_factory=list)
    fresh: bool = False  # True when the page was fetched and parsed (not 304, not failed)
    groups: dedupe.Groups | None = None  # the items' clusters on their page (dedupe.group_page)
    state: SourceState | None = None  # its state after this run, to record (none when backed off)


@dataclass
class TopicPlan:
    """What a refresh would do to one topic: the dry-run report and the input to save."""

    topic: TopicConfig
    plan: dedupe.Plan
    sources: list[SourceOutcome]


def select_topics(config: Config, topic_ids: Sequence[str] | None) -> list[TopicConfig]:
    if not topic_ids:
        return list(config.topics)
    unknown = [t for t in topic_ids if config.topic(t) is None]
    if unknown:
        known = ", ".join(t.id for t in config.topics)
        raise UsageError(f"unknown topic {', '.join(map(repr, unknown))} in {config.path}; known topics: {known}")
    return [t for t in config.topics if t.id in topic_ids]


# RFC 9309: a crawler should not use a cached robots.txt for more than 24 hours.
ROBOTS_TTL = timedelta(hours=24)


def make_fetcher(config: Config, robots: dict[str, RobotsTxt] | None = None,
                 store: Store | None = None) -> Fetcher:
    """The polite fetcher of a refresh. With a shared (PostgreSQL) `store`, hosts are paced fleet-wide."""
    return Fetcher(
        user_agent=config.user_agent,
        timeout=config.timeout.total_seconds(),
        max_bytes=config.max_bytes,
        host_delay=config.host_delay.total_seconds(),
        host_delays={h: d.total_seconds() for h, d in config.hosts.items()},
        robots=robots,
        allow_private=config.allow_private,
        source_urls=[s.url for t in config.topics for s in t.sources],
        reserve=store.reserve_host if store is not None and config.state_url else None,
    )


def refresh(config: Config, topic_ids: Sequence[str] | None = None, *, now: datetime, force: bool = False,
            progress: Progress | None = None, workers: Workers | None = None,
            index_every: float = 0.0) -> list[RefreshResult]:
    """Refresh the named topics (all when None) and publish what changed (a dry run: `plan_topics`).
    `index_every`: the daemon's bound on how often index.html is rewritten (see publish_indexes).

    `workers` parse pages and render feeds: by default a pool sized for this refresh, started and
    stopped with it; the daemon passes the one it keeps. A refresh of a few pages does it all
    in-process either way (see parse_workers)."""
    topics = select_topics(config, topic_ids)
    started = time.monotonic()
    results: list[RefreshResult] = []
    with ExitStack() as stack:
        stack.callback(dedupe.forget_texts)  # the plans' text caches serve this refresh only
        store = stack.enter_context(Store.open(config.state))
        abandon.on_abandon(store.interrupt)  # a `feedsvc run` job stuck past its deadline lets go of it
        restored = restore_lost_state(config, store, now)
        wanted = workers_for(topics)
        if workers is None or wanted == 1:
            workers = stack.enter_context(Workers(wanted))
        else:
            workers.renew()
        # A topic is planned and saved as soon as its last source is read, while the other pages
        # are still being fetched and parsed in the worker processes. Saves are grouped into one
        # transaction a second (Store.begin); a group's feeds are published once it is committed,
        # so a feed never shows what the state could still lose.
        group = SaveGroup(config, store, workers, now)
        waiting = {t.id: {s.url for s in t.sources} for t in topics}  # topic -> sources not yet read
        users: dict[str, list[TopicConfig]] = {}  # source -> topics that have not used its items yet
        for t in topics:
            for url in waiting[t.id]:
                users.setdefault(url, []).append(t)
        by_source: dict[str, SourceItems] = {}

        def idle() -> None:  # while a slow source is fetched, the topics already saved are published
            if group.due():
                results.extend(group.publish())
            results.extend(group.rendered(wait=False))

        for url, got in settled_sources(config, topics, store, workers, now=now, force=force,
                                        progress=progress, idle=idle, robots_fetched=group.record_robots):
            by_source[url] = got
            for topic in list(users[url]):
                waiting[topic.id].discard(url)
                if waiting[topic.id]:
                    continue
                group.save(topic, by_source)
                for u in {s.url for s in topic.sources}:
                    users[u].remove(topic)
                    if not users[u]:
                        by_source[u].items, by_source[u].groups = [], None  # nobody needs them any more
                        group.record(by_source[u].state)
            if group.due():
                results += group.publish()
            results += group.rendered(wait=False)
        store.touch_sources([url for url, got in by_source.items() if not got.fresh], now,
                            older_than=now - config.retention / 4)  # touched 3+ times before prune's cutoff
        store.prune(now, config.retention)
        results += group.publish()
        results += group.rendered(wait=True)
        group.end()  # the render keys of the last group's feeds
        # Article pages are read after every feed is written: a slow or failing article never holds
        # a feed back; what they add is published by a second render of the topics they touched.
        if any(s.article != "off" for t in topics for s in t.sources):
            read_articles(config, topics, store, now, results)
        publish_indexes(config, store, index_every)
        order = {t.id: i for i, t in enumerate(topics)}
        results.sort(key=lambda r: order[r.topic])
        for r in results:
            r.restored = restored.get(r.topic, 0)
        held, holds = store.write_lock_held, store.write_lock_holds
    if holds:  # PostgreSQL: the one lock every worker's saves wait for; near the cycle, the state is full
        log.info("refresh of %d topic(s) took %.2fs; the writers' lock held %.3f s in %d transaction(s); "
                 "%d plan(s) made again under it", len(topics), time.monotonic() - started, held, holds,
                 group.replans)
    else:
        log.debug("refresh of %d topic(s) took %.2fs", len(topics), time.monotonic() - started)
    return results


def restore_lost_state(config: Config, store: Store, now: datetime) -> dict[str, int]:
    """State lost is not items lost: when the state holds no story but feeds were published, store
    again what the feeds hold (ids, text, first-seen and updated times) before anything is planned.
    Returns the entries rebuilt per topic."""
    if store.has_entries():
        return {}
    from feedsvc.normalize.evidence import as_item, without_boilerplate  # (see read_page)

    restored: dict[str, int] = {}
    known: set[str] = set()
    for topic in config.topics:
        entries = publish.read_entries(topic, config)
        if not entries:
            continue
        items = [as_item(e) for e in entries]
        by_page: dict[str, list[int]] = {}
        for i, it in enumerate(items):
            by_page.setdefault(it.source_url, []).append(i)
        for indexes in by_page.values():  # the boilerplate rule, page by page, as when they were read
            for i, it in zip(indexes, without_boilerplate([items[i] for i in indexes])):
                items[i] = it
        store.save(dedupe.restored(entries, items, known), topic.id, now)
        known.update(e.id for e in entries)
        restored[topic.id] = len(entries)
        log.warning("topic %s: the state had no stories; rebuilt %d entries from %s", topic.id, len(entries),
                    publish.feed_path(config, topic.id, "atom"))
    return restored


# How long saved topics wait for their group's commit (and their feeds for publishing).
GROUP_SECONDS = 1.0


@dataclass
class Rendering:
    """A committed topic whose feeds are being rendered (None: its feeds are current)."""

    plan: TopicPlan
    topic: TopicConfig  # with its icon
    seconds: float
    entries: int
    key: str
    future: Future[list[Path]] | None


class PlansAhead:
    """Whether planning before the writers' lock pays, from how often it did lately in this process.

    A plan made ahead is thrown away when another worker committed a save meanwhile. While the
    lock is busy that is most plans (a cold start of a fleet: 85 % of them), and planning twice
    costs the worker's CPU, which its parse workers and the database need: then plans are made
    under the lock, as without this, and every PROBE-th save still tries ahead, so that it is taken
    up again when the lock quietens."""

    WINDOW, PROBE = 16, 8

    def __init__(self) -> None:
        self.outcomes: collections.deque[bool] = collections.deque(maxlen=self.WINDOW)  # (held?)
        self.skipped = 0

    def worth_it(self) -> bool:
        if self.outcomes.count(False) * 2 <= len(self.outcomes) or self.skipped >= self.PROBE:
            self.skipped = 0
            return True
        self.skipped += 1
        return False

    def record(self, held: bool) -> None:
        self.outcomes.append(held)


_PLANS_AHEAD = PlansAhead()


class SaveGroup:
    """Topics saved in the open transaction, published when it commits.

    The store is always in a group while a refresh runs: source states and render keys join it.
    Feeds are rendered and written by the workers (feedgen is pure CPU work, like parsing); the
    refresh collects them with rendered() and records their render keys."""

    def __init__(self, config: Config, store: Store, workers: Workers, now: datetime) -> None:
        self.config, self.store, self.workers, self.now = config, store, workers, now
        # what a worker needs to render one topic's feeds: not the list of every topic, which
        # would be pickled with each job (at 1,000 topics, more than the rendering itself)
        self.render_config = dataclasses.replace(config, topics=())
        self.saved: list[tuple[TopicPlan, float]] = []  # (plan, seconds spent on it so far)
        self.replans = 0  # plans made again under the writers' lock (see save)
        self.rendering: list[Rendering] = []
        # Written just before the group commits, not when they are known: each write takes the
        # writers' lock (PostgreSQL) until the commit, and a source is known before its topics are
        # saved, a render key while the next pages are still awaited. (A source's new validators
        # committed before its stories would turn a crash in between into a 304 for a page whose
        # stories were never saved.)
        self.states: list[SourceState] = []  # of sources whose every topic is saved in this group
        self.robots: list[RobotsTxt] = []
        self.render_keys: dict[str, str] = {}  # of feeds written
        self.store.begin()
        self.started = time.monotonic()

    def save(self, topic: TopicConfig, by_source: dict[str, SourceItems]) -> None:
        """Plan and save one topic whose sources have all been read.

        The plan reads what is stored, so no other writer may save between it and this save. On
        PostgreSQL it is made before the writers' lock is taken, which every worker's saves wait
        for, and made again under the lock only when a write it read from was committed meanwhile
        (Store.dedupe_writes moved): planning was half the time a changed page held the lock."""
        t0 = time.monotonic()
        tp = None
        if any(by_source[s.url].items for s in topic.sources):  # (no items: an empty plan, nothing written)
            seen = None if self.store.holds_write_lock or not _PLANS_AHEAD.worth_it() else self.store.dedupe_writes()
            if seen is not None:
                tp = plan_topic(topic, by_source, self.store, now=self.now)
            self.store.lock_for_write()
            if seen is not None:
                held = self.store.dedupe_writes() == seen
                _PLANS_AHEAD.record(held)
                if not held:
                    tp = None
                    self.replans += 1
        if tp is None:
            tp = plan_topic(topic, by_source, self.store, now=self.now)
        self.store.save(tp.plan, topic.id, self.now)
        self.saved.append((tp, time.monotonic() - t0))

    def record(self, state: SourceState | None) -> None:
        """A source's state after this run, recorded with the save of the last topic that uses it."""
        if state is not None:
            self.states.append(state)

    def record_robots(self, records: list[RobotsTxt]) -> None:
        self.robots += records

    def due(self) -> bool:
        # PostgreSQL: a group that holds the writers' lock (from its first write) is due at once. Every
        # worker's saves wait for that one lock, and a group kept open for its second held it while
        # this process waited for pages: 160-200 ms a new page (bench/scale.py), against a few for a
        # commit. SQLite groups for GROUP_SECONDS: there a commit writes every page the save touched.
        if self.store.holds_write_lock:
            return True
        return bool(self.saved) and time.monotonic() - self.started >= GROUP_SECONDS

    def publish(self) -> list[RefreshResult]:
        """Commit the group, open the next one, and start rendering the committed topics' feeds."""
        # sources' states and render keys in one statement each (a refresh whose pages all answer
        # 304 records every source's success: one statement a source was a tenth of its work)
        self.end()
        self.store.begin()
        self.started = time.monotonic()
        saved, self.saved = self.saved, []
        if not saved:
            return self.rendered(wait=False)
        # what deciding needs of the store, for the whole group in three queries (not three a topic)
        t0 = time.monotonic()
        topics = [tp.topic for tp, _ in saved]
        icons = self.store.source_icons({s.url for t in topics if not t.icon for s in t.sources})
        versions = self.store.topic_versions([t.id for t in topics])
        stored = self.store.render_keys([f"topic:{t.id}" for t in topics])
        shared = (time.monotonic() - t0) / len(saved)
        for tp, seconds in saved:
            t0 = time.monotonic()
            topic = with_icon(tp.topic, icons)
            version, listed = versions[topic.id]
            key = feed_key(self.config, topic, version)
            future = None
            if not feeds_current(self.config, topic, stored.get(f"topic:{topic.id}"), key):
                entries = feed_entries(topic, self.store)
                future = self.workers.submit(publish.write_feeds, topic, entries, self.render_config)
            self.rendering.append(Rendering(tp, topic, seconds + shared + time.monotonic() - t0,
                                            min(listed, topic.max_entries), key, future))
        return self.rendered(wait=False)

    def end(self) -> None:
        """Write what was recorded for the group, and commit it (publish() then opens the next)."""
        if self.states:
            self.store.save_source_states(self.states)
            self.states = []
        if self.robots:
            self.store.save_robots(self.robots)
            self.robots = []
        if self.render_keys:
            self.store.set_render_keys(self.render_keys)
            self.render_keys = {}
        self.store.commit()

    def rendered(self, *, wait: bool) -> list[RefreshResult]:
        """The topics whose feeds are written (all of them, with wait), in the order they were saved."""
        out = []
        while self.rendering and (wait or self.rendering[0].future is None or self.rendering[0].future.done()):
            out.append(self._finish(self.rendering.pop(0)))
        return out

    def _finish(self, r: Rendering) -> RefreshResult:
        written: list[Path] = []
        if r.future is not None:
            written = r.future.result()  # a PublishError stops the run, as it would in-process
            self.render_keys[f"topic:{r.topic.id}"] = r.key
        announce(self.config, r.topic.id, written)
        plan = r.plan.plan
        joined = set(plan.joined_topic)  # known stories new to this topic are new in its feed
        return RefreshResult(
            topic=r.topic.id, entries=r.entries, new=len(plan.new) + len(joined),
            updated=len([1 for _, e in plan.updated if e.id not in joined]),
            unchanged=len(plan.unchanged), feed_written=bool(written), sources=r.plan.sources,
            seconds=r.seconds, merged=merges(plan),
        )


def announce(config: Config, topic_id: str, written: Sequence[Path], why: str = "") -> None:
    """The feeds a refresh wrote: one log line each, and a WebSub ping for them when a hub is set."""
    for path in written:
        log.info("topic %s: wrote %s%s", topic_id, path, why)
    if written and config.websub_hub and config.base_url:
        # a failed ping never fails the refresh: readers still poll
        websub.ping_hub(config.websub_hub, [config.base_url + p.name for p in written], user_agent=config.user_agent)


def source_of(topic: TopicConfig, source_url: str) -> SourceConfig | None:
    """The configured source a story was found on (its page's URL may be the source's after redirects)."""
    return next((s for s in topic.sources if s.url == source_url),
                topic.sources[0] if len(topic.sources) == 1 else None)


def feed_entries(topic: TopicConfig, store: Store) -> list[Entry]:
    """The topic's newest stories as its feed shows them: with what their article pages added."""
    entries = store.entries(topic.id, limit=topic.max_entries)
    if not any(s.article != "off" for s in topic.sources):
        return entries
    from feedsvc.normalize.article import with_article  # (see read_page)

    read = store.articles([e.id for e in entries])
    out = []
    for e in entries:
        article = read.get(e.id)
        if article is not None:
            source = source_of(topic, e.source_url)
            e = with_article(e, article, source.timezone if source else topic.timezone)
        out.append(e)
    return out


def read_articles(config: Config, topics: Sequence[TopicConfig], store: Store, now: datetime,
                  results: list[RefreshResult]) -> None:
    """Read the own page of the stories that still need it (article = "meta" / "full"), each once: at most
    config.article_limit pages per host in this refresh (newest stories first; the rest wait for the next
    refresh), through the same polite fetcher as the listings (robots.txt, the per-host gap, the deadline).
    A page that cannot be read is recorded and tried again later with a backoff; its story keeps what the
    listing gave. Then the feeds of the topics whose stories changed are written again."""
    # entry id -> what reading it needs: (story, failures so far, its source, its topic, "meta" | "full")
    wanted: dict[str, tuple[Entry, int, SourceConfig, TopicConfig, str]] = {}
    for topic in topics:
        if all(s.article == "off" for s in topic.sources):
            continue
        for entry, failures in store.article_candidates(topic.id, topic.max_entries, now):
            source = source_of(topic, entry.source_url)
            mode = source.article if source else topic.article
            if mode != "off" and entry.link and entry.link.startswith(("http://", "https://")):
                wanted.setdefault(entry.id, (entry, failures, source or SourceConfig(entry.source_url), topic, mode))
    per_host: dict[str, int] = {}
    jobs: list[tuple[SourceConfig, SourceState | None]] = []
    by_url: dict[str, list[str]] = {}  # article URL -> entry ids (two stories may share one page)
    for entry_id, (entry, _failures, source, _topic, _mode) in wanted.items():
        link = entry.link or ""
        if link not in by_url:
            host = (urlsplit(link).hostname or "").lower()
            if per_host.get(host, 0) >= config.article_limit:
                continue  # the host's share of this refresh is used: the next refresh reads it
            per_host[host] = per_host.get(host, 0) + 1
            jobs.append((SourceConfig(url=link, robots=source.robots, timezone=source.timezone,
                                      allow_private=source.allow_private), None))
        by_url.setdefault(link, []).append(entry_id)
    if not jobs:
        return
    with make_fetcher(config, store.robots(since=now - ROBOTS_TTL), store) as fetcher:
        for job, answer in fetcher.fetch_many(jobs, now=now, force=True):
            for entry_id in by_url[job.url]:
                _entry, failures, source, topic, mode = wanted[entry_id]
                error = answer if isinstance(answer, SourceError) else SourceError("http", "answered 304")
                if isinstance(answer, Page):
                    try:
                        article = read_article(answer, mode, source.timezone, topic.language)
                    except Exception as exc:  # a bug, but one page must not cost the other stories theirs
                        log.error("could not read the article %s", job.url, exc_info=True)
                        error = SourceError("parse", f"{type(exc).__name__}: {exc}")
                    else:
                        store.save_article(entry_id, answer.url, now, article)
                        continue
                log.warning("article page failed: %s: %s", job.url, error)
                store.save_article(entry_id, job.url, now, error=str(error), failures=failures + 1,
                                   next_try_at=next_try_at(failures + 1, now, error.retry_after))
        store.save_robots(fetcher.fetched_robots)
    by_topic = {r.topic: r for r in results}
    render_config = dataclasses.replace(config, topics=())
    icons = store.source_icons({s.url for t in topics if not t.icon for s in t.sources})
    for topic in topics:
        topic = with_icon(topic, icons)
        key = feed_key(config, topic, store.topic_version(topic.id)[0])
        if feeds_current(config, topic, store.render_key(f"topic:{topic.id}"), key):
            continue
        written = publish.write_feeds(topic, feed_entries(topic, store), render_config)
        store.set_render_key(f"topic:{topic.id}", key)
        announce(config, topic.id, written, " (with its article pages)")
        if written and topic.id in by_topic:
            by_topic[topic.id].feed_written = True


def merges(plan: dedupe.Plan) -> list[tuple[str, str, str]]:
    """The plan's merges as a user reads them: (item title <link>, the entry's title, why)."""
    titles = {e.id: e.title for e in plan.entries}
    return [(item.title + (f" <{item.link}>" if item.link else ""), titles.get(entry_id, entry_id), why)
            for item, entry_id, why in plan.merged]


def feed_key(config: Config, topic: TopicConfig, version: int) -> str:
    """A hash of everything a topic's feeds are made of: the topic, the publishing config, feedsvc's
    version, and the topic's stories (Store.topic_version moves whenever one of them changes)."""
    return digest(__version__, topic, config.base_url, config.websub_hub, version)


def feeds_current(config: Config, topic: TopicConfig, stored: str | None, key: str) -> bool:
    """Whether the topic's feeds on disk were rendered from `key` (`stored`: the render key the state
    holds for them): rendering is most of what a refresh of unchanged pages costs, so it is skipped then.

    The files are looked for by name in output_dir, not through feed_path(), which resolves the
    folder's real path twice a feed (a third of the main thread's CPU on a refresh of unchanged
    pages): the config checked the topic's id and formats, and feeds are only written through
    feed_path(), which refuses a name that would land outside output_dir (an unknown format here
    counts as not current, so that rendering reports it)."""
    return (stored == key
            and all(fmt in publish.EXTENSIONS
                    and os.path.exists(os.path.join(config.output_dir, topic.id + publish.EXTENSIONS[fmt]))
                    for fmt in topic.formats))


def publish_indexes(config: Config, store: Store, at_most_every: float = 0.0) -> list[Path]:
    """index.opml and index.html, re-rendered only when a feed, the list of topics or the health
    that index.html shows (each source's state, last refresh) changed; and, with `at_most_every`
    (the daemon's), no more than once in that many seconds while the list of topics stays the same:
    at 1,000 topics, rendering it after every batch of a worker was most of a warm cycle."""
    topics_key = digest(__version__, config.topics, config.base_url)
    html = config.output_dir / "index.html"
    there = html.exists() and (config.output_dir / "index.opml").exists()
    if there and at_most_every and store.render_key("index:topics") == topics_key \
            and time.time() - html.stat().st_mtime < at_most_every:
        return []  # (the daemon's usual case: every topic's render key is read only past this point)
    keys = store.render_keys([f"topic:{t.id}" for t in config.topics] + ["index", "index:topics"])
    states = {s.url: s for s in store.source_states()}
    health = publish.index_health(config, states)
    key = digest(topics_key, [keys.get(f"topic:{t.id}") for t in config.topics], health)
    if there and keys.get("index") == key:
        return []
    # entry counts change only with a feed, whose render key is in the key already
    counts = {t.id: min(store.topic_entry_count(t.id), t.max_entries) for t in config.topics}
    written = publish.write_indexes(
        config, {t.id: store.entries(t.id, limit=min(t.max_entries, publish.INDEX_ENTRIES)) for t in config.topics},
        health, counts)
    store.set_render_key("index", key)
    store.set_render_key("index:topics", topics_key)
    return written


def digest(*parts: object) -> str:
    """A stable hash of records made of dataclasses, strings, numbers, datetimes and timedeltas.

    The hash of repr(parts); a topic's config, or config.topics, has its repr computed once per object
    (a TopicConfig's repr was most of a warm refresh's digests, and the config changes only on SIGHUP)."""
    # repr(parts), piece by piece: a tuple's repr is its items' joined by ", " (a 1-tuple's with a comma)
    text = ", ".join(_REPRS(p) if _is_config(p) else repr(p) for p in parts)
    text = f"({text},)" if len(parts) == 1 else f"({text})"
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _is_config(part: object) -> bool:
    """A TopicConfig or a tuple of them (config.topics): frozen all the way down (strings, numbers,
    timedeltas, tuples and frozen dataclasses), so one object's repr never changes."""
    return type(part) is TopicConfig or (type(part) is tuple and bool(part)
                                         and all(type(t) is TopicConfig for t in part))


class _ByIdentity(Generic[K, V]):
    """make(obj), computed once per object, for objects that never change (frozen config).

    Kept by the object's identity: an entry holds its object, so that its id() is not reused by
    another while the entry lives. Emptied when it holds `size` entries (a config reloaded on SIGHUP
    leaves its old objects here until then)."""

    def __init__(self, make: Callable[[K], V], size: int = 1 << 14) -> None:
        self.make, self.size = make, size
        self.entries: dict[int, tuple[K, V]] = {}

    def __call__(self, obj: K) -> V:
        hit = self.entries.get(id(obj))
        if hit is not None and hit[0] is obj:
            return hit[1]
        value = self.make(obj)
        if len(self.entries) >= self.size:
            self.entries.clear()
        self.entries[id(obj)] = (obj, value)
        return value


_REPRS: _ByIdentity[object, str] = _ByIdentity(repr)
# per topic without an icon of its own: its copy with each site icon it was given (see with_icon)
_ICONED: _ByIdentity[TopicConfig, dict[str, TopicConfig]] = _ByIdentity(lambda topic: {})


def with_icon(topic: TopicConfig, icons: Mapping[str, str]) -> TopicConfig:
    """The topic with its feed icon: the configured one, else the first source's site icon (`icons`:
    the site icons stored, by source URL; Store.source_icons).

    The same icon gives the same object, refresh after refresh, so that digest() finds its repr cached."""
    if topic.icon:
        return topic
    icon = next((i for s in topic.sources if (i := icons.get(s.url))), None)
    if not icon:
        return topic
    copies = _ICONED(topic)
    copy = copies.get(icon)
    if copy is None:
        copy = copies[icon] = dataclasses.replace(topic, icon=icon)
    return copy


def plan_topics(config: Config, topic_ids: Sequence[str] | None = None, *, now: datetime,
                force: bool = False) -> list[TopicPlan]:
    """Fetch and compare with the stored state, writing nothing: what `refresh --dry-run` shows."""
    topics = select_topics(config, topic_ids)
    with ExitStack() as stack:
        stack.callback(dedupe.forget_texts)
        path = config.state
        if isinstance(path, Path) and not path.exists():
            # A dry run must not create the state file: compare against an empty store.
            path = Path(stack.enter_context(tempfile.TemporaryDirectory())) / "empty.sqlite"
        store = stack.enter_context(Store.open(path))
        workers = stack.enter_context(Workers(workers_for(topics)))
        by_source = dict(settled_sources(config, topics, store, workers, now=now, force=force, progress=None))
        return [plan_topic(topic, by_source, store, now=now) for topic in topics]


def settled_sources(config: Config, topics: Sequence[TopicConfig], store: Store, workers: Workers, *,
                    now: datetime, force: bool, progress: Progress | None,
                    idle: Callable[[], None] | None = None,
                    robots_fetched: Callable[[list[RobotsTxt]], None] | None = None,
                    ) -> Iterator[tuple[str, SourceItems]]:
    """Fetch every distinct source of the topics once (concurrently across hosts) and parse it,
    yielding each source's outcome as soon as it is known, with the state to record for it (this
    writes nothing: a page's new validators must be stored with the stories they came with)."""
    sources: dict[str, tuple[SourceConfig, TopicConfig]] = {}
    for topic in topics:
        for source in topic.sources:
            sources.setdefault(source.url, (source, topic))
    states = store.source_states_of(sources)  # one query, not one a source
    jobs: list[tuple[SourceConfig, SourceState]] = []
    for url, (source, _topic) in sources.items():
        state = states[url]
        if not force and state.next_try_at is not None and now < state.next_try_at:
            failures = state.consecutive_failures
            yield url, SourceItems(SourceOutcome(
                url, "skipped", error=f"backed off until {state.next_try_at:%Y-%m-%d %H:%M %Z} after {failures} "
                f"failure{'s' if failures != 1 else ''} in a row (last: {state.last_error})"))
            continue
        jobs.append((source, state))
    if not jobs:
        return
    if force or any(source.is_local or not (state.etag or state.last_modified) for source, state in jobs):
        workers.start()  # a page will be parsed for sure

    def settle(source: SourceConfig, answer: NotModified | SourceError | Parsed) -> tuple[str, SourceItems]:
        state = states[source.url]
        got = settle_source(source, state, answer, now=now)
        got.state = state
        return source.url, got

    parser = Parser(workers)
    with make_fetcher(config, store.robots(since=now - ROBOTS_TTL), store) as fetcher:
        fetched = 0
        for source, answer in fetcher.fetch_many(jobs, now=now, force=force, idle=idle):
            fetched += 1
            if progress:
                progress(f"{fetched}/{len(jobs)} {source.url}")
            if isinstance(answer, Page):
                parser.submit(source, answer, sources[source.url][1].language)
            else:
                yield settle(source, answer)
            for source, parsed in parser.ready():
                yield settle(source, parsed)
            for source, parsed in parser.backlog(PARSE_BACKLOG * workers.size):
                yield settle(source, parsed)
        if robots_fetched is not None:
            robots_fetched(fetcher.fetched_robots)
        for source, parsed in parser.results():
            yield settle(source, parsed)


# A page is parsed in well under a second; this bounds a pathological one (pages are
# already capped at max_bytes by fetch). Enforced where pages go to worker processes.
PARSE_TIMEOUT = 60.0
# Pages in the workers at once, per worker: beyond it the refresh waits for the oldest, so that
# fetching never runs hundreds of pages (and their items) ahead of what is saved.
PARSE_BACKLOG = 4


def workers_for(topics: Sequence[TopicConfig]) -> int:
    """parse_workers() for the distinct sources of these topics."""
    return parse_workers(len({s.url for t in topics for s in t.sources}))


def default_workers() -> int:
    """FEEDSVC_WORKERS, else the number of CPUs."""
    return max(1, int(os.environ.get("FEEDSVC_WORKERS") or os.cpu_count() or 1))


def parse_workers(pages: int) -> int:
    """Processes for parsing: Beautiful Soup and lxml hold the GIL, so threads would not help.

    FEEDSVC_WORKERS overrides the default (the number of CPUs); a refresh of a few pages
    parses in-process, where starting workers would cost more than it saves.
    """
    return 1 if pages < 4 else min(default_workers(), pages)


def read_page(page: Page, selectors: Selectors | None, timezone: str, language: str | None
              ) -> tuple[list[RawItem], list[Item]]:
    """extract + normalize one page: the items as found, and as they go on."""
    # Imported when a page is read: a refresh whose pages all answer 304 never pays for these
    # imports (the parse workers have them preloaded).
    from feedsvc import extract, normalize
    from feedsvc.normalize.evidence import without_boilerplate

    raws = extract.extract_items(page, selectors)
    items = normalize.normalize_items(raws, normalize.NormalizeContext(
        page_url=page.url, fetched_at=page.fetched_at, timezone=timezone, language=language))
    # text that items with different links share on this page (a teaser, a series label) is no evidence
    return raws, without_boilerplate(items)


def read_article(page: Page, mode: str, timezone: str, language: str | None = None) -> Article:
    """extract + normalize one article page (mode "meta" or "full"): what it adds to its entry."""
    from feedsvc.extract.article import read_article as extract_article  # (see read_page)
    from feedsvc.normalize.article import normalize_article

    return normalize_article(extract_article(page, full=mode == "full"), timezone, page.fetched_at, language)


@dataclass
class PageItems:
    """A parsed page's items, with what dedupe needs of them that is pure work on the page alone."""

    items: list[Item]
    groups: dedupe.Groups  # the page's near-duplicate clusters
    icon: str | None = None  # the site's icon, from the page's head


def parse_page(page: Page, selectors: Selectors | None, timezone: str, language: str | None
               ) -> PageItems | SourceError:
    """read_page() in a worker process, plus the dedupe work that needs only this page: each item's
    sketch and the page's clusters (done here, in parallel, not in the process that saves).
    Returns errors instead of raising."""
    from feedsvc.extract import page_icon  # (see read_page)

    try:
        items = read_page(page, selectors, timezone, language)[1]
        items = [dataclasses.replace(item, buckets=dedupe.item_buckets(item)) for item in items]
        return PageItems(items, dedupe.group_page(items), page_icon(page))
    except SourceError as exc:
        return exc
    except Exception as exc:  # a bug, but one page must not cost every other feed its refresh
        log.error("could not parse %s", page.url, exc_info=True)
        return SourceError("parse", f"{type(exc).__name__}: {exc}")


@dataclass
class Parsed:
    """A fetched page's items (or why there are none) and its validators, kept only on success."""

    result: PageItems | SourceError
    etag: str | None
    last_modified: str | None


def start_worker(pid: int, level: int) -> None:
    """A parse worker's start: its log records and library warnings (Beautiful Soup's, lxml's) at the
    level the user chose, as in the main process (a worker does not inherit its logging set-up)."""
    logging.captureWarnings(True)
    logging.getLogger().setLevel(level)
    watch_refresh(pid)


def watch_refresh(pid: int) -> None:
    """In a parse worker: exit when the refresh that started it is gone.

    A refresh killed with SIGKILL (the OOM killer, kill -9) cannot stop its workers, and a
    worker waiting for work never notices on its own; without this, each such kill would
    leave processes behind for ever (the forkserver and its resource tracker exit by
    themselves when their pipe from the refresh closes)."""

    def watch() -> None:
        while True:
            time.sleep(1)
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                os._exit(0)
            except PermissionError:  # the pid was reused by another user's process: ours is gone
                os._exit(0)

    threading.Thread(target=watch, name="feedsvc-watch-refresh", daemon=True).start()


class Workers:
    """Pure CPU work off the main process: parsing pages and rendering feeds.

    In-process for one worker (submit() then runs the call at once), else a process pool:
    forkserver, so that workers fork from a clean process that already imported the steps,
    not from this one with its fetch threads and open SQLite handle."""

    def __init__(self, workers: int, *, tasks_per_worker: int | None = None) -> None:
        self.size = workers
        # A pool kept between refreshes is replaced whole, between two refreshes, once it has
        # served this many tasks a worker. (Not ProcessPoolExecutor's max_tasks_per_child: on
        # Python 3.11 a pool using it stopped handing out work after some thousands of tasks.)
        self.tasks_per_worker = tasks_per_worker
        self.tasks = 0  # submitted to the current pool (close() starts the count again)
        self.pool: ProcessPoolExecutor | None = None  # started by start() or the first submit()
        self.futures: list[Future[Any]] = []  # submitted and not yet seen done

    def start(self) -> None:
        """Start the processes now, not at the first submit(): a refresh that will surely parse
        pages starts them while its first pages are fetched. (One whose pages all answer 304
        never starts them: a forkserver and its workers cost a warm refresh more than its fetches.)"""
        if self.size > 1 and self.pool is None:
            self._start()

    def _start(self) -> None:
        import multiprocessing  # (imported here: a refresh that starts no worker never needs it)
        from concurrent.futures import ProcessPoolExecutor

        ctx = multiprocessing.get_context("forkserver")
        # what the workers use, imported once in the forkserver rather than in each worker
        ctx.set_forkserver_preload(["feedsvc.pipeline", "feedsvc.extract", "feedsvc.extract.selectors",
                                     "feedsvc.normalize", "feedsvc.publish", "feedgen.feed", "feedgen.ext.base"])
        self.pool = ProcessPoolExecutor(max_workers=self.size, mp_context=ctx, initializer=start_worker,
                                        initargs=(os.getpid(), logging.getLogger().getEffectiveLevel()))
        self.futures = []
        self.pool.submit(int)  # start the processes now, not when the first real job comes

    def renew(self) -> None:
        """Before a refresh on a pool kept between refreshes: replace it when a worker died
        (the pool is then broken for good) or is still stuck on a page given up on."""
        if self.pool is None:
            return
        if getattr(self.pool, "_broken", False) or any(not f.done() for f in self.futures):
            log.warning("restarting the parse workers (one died or is stuck on a page)")
            self.close()  # new ones start when next needed
        elif self.tasks_per_worker and self.tasks >= self.tasks_per_worker * self.size:
            log.debug("replacing the parse workers after %d tasks", self.tasks)
            self.close()

    def submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        self.start()
        if self.pool is not None:
            future = self.pool.submit(fn, *args)
            self.tasks += 1
            self.futures = [f for f in self.futures if not f.done()]
            self.futures.append(future)
            return future
        future = Future()
        try:
            future.set_result(fn(*args))
        except Exception as exc:
            future.set_exception(exc)
        return future

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        pool, self.pool = self.pool, None
        self.tasks = 0
        if pool is None:
            return
        if getattr(pool, "_broken", False) or any(not f.done() for f in self.futures):
            # A stuck worker (a parse past PARSE_TIMEOUT) or a broken pool must not keep the
            # refresh, or the daemon, waiting: kill the workers and do not wait for the pool's
            # own thread, which may never wake up (it once hung a daemon here).
            for process in list(getattr(pool, "_processes", {}).values()):
                if process.is_alive():
                    process.kill()
            pool.shutdown(wait=False, cancel_futures=True)
            return
        pool.shutdown(wait=True, cancel_futures=True)


class Parser:
    """Parses pages as they arrive, in the workers, and hands them back in the order they came."""

    def __init__(self, workers: Workers) -> None:
        self.workers = workers
        # what is kept of a page while it is parsed: not its text (1,000 pages would be 200 MB)
        self.pending: list[tuple[SourceConfig, Parsed, Future[PageItems | SourceError]]] = []

    def submit(self, source: SourceConfig, page: Page, language: str | None) -> None:
        meta = Parsed(PageItems([], []), page.etag, page.last_modified)
        future = self.workers.submit(parse_page, page, source.selectors, source.timezone, language)
        self.pending.append((source, meta, future))

    def ready(self) -> Iterator[tuple[SourceConfig, Parsed]]:
        """The pages parsed so far, without waiting for the others."""
        while self.pending and self.pending[0][2].done():
            yield self._collect(*self.pending.pop(0), timeout=0)

    def backlog(self, limit: int) -> Iterator[tuple[SourceConfig, Parsed]]:
        """The oldest pages, waiting for them, until at most `limit` are still being parsed."""
        while len(self.pending) > limit:
            yield self._collect(*self.pending[0], timeout=PARSE_TIMEOUT)
            self.pending.pop(0)

    def results(self) -> Iterator[tuple[SourceConfig, Parsed]]:
        """The remaining pages, waiting for each (a batch's parse is bounded by PARSE_TIMEOUT)."""
        yield from self.ready()
        deadline = time.monotonic() + PARSE_TIMEOUT
        while self.pending:
            # every page had its chance since submission; the clock runs for the batch
            yield self._collect(*self.pending[0], timeout=max(0.0, deadline - time.monotonic()))
            self.pending.pop(0)
            deadline = max(deadline, time.monotonic() + PARSE_TIMEOUT / 10)

    @staticmethod
    def _collect(source: SourceConfig, meta: Parsed, future: Future[PageItems | SourceError], *,
                 timeout: float) -> tuple[SourceConfig, Parsed]:
        result: PageItems | SourceError
        try:
            result = future.result(timeout=timeout)
        except FutureTimeout:
            result = SourceError("parse", f"parsing took longer than {PARSE_TIMEOUT:.0f}s; page skipped")
        except BrokenExecutor as exc:  # (BrokenProcessPool's base: importing that imports multiprocessing)
            result = SourceError("parse", f"the parser process died ({exc})")
        return source, dataclasses.replace(meta, result=result)


def settle_source(source: SourceConfig, state: SourceState,
                  answer: NotModified | SourceError | Parsed, *, now: datetime) -> SourceItems:
    """Turn one source's answer into its outcome, updating `state` in place (validators, health)."""
    url = source.url
    if isinstance(answer, NotModified):
        mark_success(state, now)
        return SourceItems(SourceOutcome(url, "not-modified", items=state.last_item_count or 0))
    try:
        if isinstance(answer, SourceError):
            raise answer
        if isinstance(answer.result, SourceError):
            raise answer.result
        items = answer.result.items
        if not items:
            if state.last_item_count:
                raise SourceError("drift", f"found no items where the last good fetch found "
                                           f"{state.last_item_count}: the page may have changed; "
                                           "its entries stay in the feed")
            raise SourceError("empty", "found no items on the page (is it a listing? try `feedsvc preview`)")
    except SourceError as exc:
        mark_failure(state, exc, now)
        log.warning("source failed: %s: %s", url, exc)
        return SourceItems(SourceOutcome(url, "failed", error=str(exc)))
    mark_success(state, now)
    state.etag, state.last_modified = answer.etag, answer.last_modified
    state.icon = answer.result.icon
    state.last_item_count = len(items)
    usual = degraded_from(state, len(items))
    if usual is not None:
        log.warning("source degraded: %s: %d item(s) where it usually lists %d; its other entries stay in "
                    "the feed (is the page changing? `feedsvc preview` shows what is found)", url, len(items), usual)
    return SourceItems(SourceOutcome(url, "ok", items=len(items), usual=usual), items, fresh=True,
                       groups=answer.result.groups)


# A page that lists at most this share of its usual count (and at least DEGRADED_MIN fewer) is degraded:
# automatic detection may have taken another block, or the site broke its listing.
DEGRADED_SHARE = 0.5
DEGRADED_MIN = 3
DEGRADED_ACCEPT = 6  # degraded refreshes in a row after which the smaller count is the page's usual


def degraded_from(state: SourceState, found: int) -> int | None:
    """Record a successful parse's item count; the usual count when it fell sharply (else None)."""
    usual = state.usual_item_count
    if usual and found <= usual * DEGRADED_SHARE and usual - found >= DEGRADED_MIN:
        state.degraded_runs += 1
        if state.degraded_runs < DEGRADED_ACCEPT:
            return usual
        log.info("source %s: now lists %d items where it listed %d; taken as its usual count",
                 state.url, found, usual)
    state.usual_item_count, state.degraded_runs = found, 0
    return None


def mark_success(state: SourceState, now: datetime) -> None:
    state.last_success_at = now
    state.consecutive_failures = 0
    state.next_try_at = None


def mark_failure(state: SourceState, exc: SourceError, now: datetime) -> None:
    state.last_failure_at = now
    state.last_error = str(exc)
    state.consecutive_failures += 1
    state.next_try_at = next_try_at(state.consecutive_failures, now, exc.retry_after)


def plan_topic(topic: TopicConfig, by_source: dict[str, SourceItems], store: Store, *, now: datetime) -> TopicPlan:
    """Dedupe the items of the topic's fresh sources against the store. Writes nothing."""
    items: list[Item] = []
    outcomes: list[SourceOutcome] = []
    for source in topic.sources:
        got = by_source[source.url]
        outcomes.append(got.outcome)
        items.extend(keep(topic, got.items))
    # The usual topic (one page, no keyword filter): its items are that page's, clustered already.
    giving = [by_source[s.url] for s in topic.sources if by_source[s.url].items]
    if not items:  # its pages answered 304, failed or were filtered out: nothing to look up
        return TopicPlan(topic, dedupe.Plan(), outcomes)
    groups = giving[0].groups if len(giving) == 1 and not (topic.include or topic.exclude) else None
    return TopicPlan(topic, dedupe.plan(items, store, topic.id, now, groups), outcomes)


def keep(topic: TopicConfig, items: Sequence[Item]) -> list[Item]:
    """The topic's include / exclude keywords, matched on the folded title and summary."""
    if not items or (not topic.include and not topic.exclude):
        return list(items)
    from feedsvc.normalize import fold  # (see read_page)

    include = [fold(k) for k in topic.include]
    exclude = [fold(k) for k in topic.exclude]
    kept = []
    for item in items:
        text = fold(item.title + " " + item.summary)
        if include and not any(k in text for k in include):
            continue
        if any(k in text for k in exclude):
            continue
        kept.append(item)
    return kept


def alternative(page: Page) -> tuple[dict[str, str], float, str, int] | None:
    """When automatic detection was unsure (another list scored at least half as well): the selectors
    that pick that list, its score as a share of the winner's, its first headline and how many items
    those selectors give. None when it was sure, or the other list's selectors give fewer than two."""
    from feedsvc import extract  # (see read_page)
    from feedsvc.config import FieldSelector

    r = extract.runner_up(page)
    if r is None:
        return None
    fields = {"title": r.title, "link": r.title + "@href"} if r.title else {}
    selectors = Selectors(item=r.item, **{k: FieldSelector.parse(v) for k, v in fields.items()})
    found = len(extract.extract_items(page, selectors))
    return ({"item": r.item, **fields}, r.score / r.best_score, r.example, found) if found >= 2 else None


def preview(source: SourceConfig, config: Config, *, now: datetime, language: str | None = None
            ) -> tuple[Page, list[RawItem], list[Item]]:
    """Fetch one page and show what would become entries. Touches no state and no feed."""
    with make_fetcher(config) as fetcher:
        answer = fetcher.fetch(source, None, now=now, force=True)
    assert isinstance(answer, Page)  # force=True sends no validators, so no 304
    return (answer, *read_page(answer, source.selectors, source.timezone, language))


PREVIEW_ARTICLES = 5  # article pages `preview --article` reads: enough to judge, polite to the site


def preview_articles(source: SourceConfig, config: Config, items: Sequence[Item], mode: str, *, now: datetime,
                     language: str | None = None) -> list[tuple[Item, Article | SourceError, bool]]:
    """What the first items' own pages would add (mode "meta" or "full"): per item, the article or why it
    could not be read, and whether its date would replace the listing's. Touches no state and no feed."""
    from feedsvc.normalize.article import article_date_wins  # (see read_page)

    chosen = [i for i in items if i.link and i.link.startswith(("http://", "https://"))][:PREVIEW_ARTICLES]
    jobs: list[tuple[SourceConfig, SourceState | None]] = [
        (SourceConfig(url=i.link or "", robots=source.robots, timezone=source.timezone,
                      allow_private=source.allow_private), None) for i in chosen]
    got: dict[str, Article | SourceError] = {}
    # the previewed page is a source here (its own host may be a private one, as a configured source's may)
    with make_fetcher(dataclasses.replace(config, topics=(TopicConfig("preview", "preview", (source,)),))) as fetcher:
        for job, answer in fetcher.fetch_many(jobs, now=now, force=True):
            if isinstance(answer, Page):
                got[job.url] = read_article(answer, mode, source.timezone, language)
            else:
                got[job.url] = answer if isinstance(answer, SourceError) else SourceError("http", "answered 304")
    out: list[tuple[Item, Article | SourceError, bool]] = []
    for i in chosen:
        a = got[i.link or ""]
        out.append((i, a, isinstance(a, Article) and article_date_wins(i.published, a, source.timezone)))
    return out
