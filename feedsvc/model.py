"""The records that flow through feedsvc, in the order they flow. Stdlib only.

    fetch ──► Page ──► extract ──► RawItem ──► normalize ──► Item ──► dedupe/store ──► Entry ──► publish

Every datetime here is timezone-aware. Nothing in this module does any work.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Page:
    """A fetched and decoded source page."""

    url: str  # the final URL, after redirects (file: URL for local pages)
    text: str  # decoded text: extract never sees bytes
    content_type: str  # media type only, lowercased: "text/html", "text/plain", "application/json"
    encoding: str  # the codec the bytes were decoded with
    fetched_at: datetime
    status: int = 200
    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True, slots=True)
class NotModified:
    """The server answered 304 to a conditional GET: nothing to parse, nothing to write."""

    url: str
    fetched_at: datetime


@dataclass(frozen=True, slots=True)
class RawItem:
    """One item as found on a page. Nothing normalized yet: text as written, links as written."""

    position: int  # 0-based order on the page
    found_by: str  # which rule found it, e.g. "selectors", "json-ld", "repeated-blocks", "text-lines"
    title: str | None = None
    link: str | None = None  # as written in the page (may be relative)
    summary: str | None = None
    summary_html: str | None = None  # rich markup as found; sanitized later by normalize
    date: datetime | None = None  # aware datetime read from markup (<time datetime>, JSON-LD, …)
    date_text: str | None = None  # a date as written near the item, if any (besides the summary)
    image: str | None = None  # as written in the page (may be relative)


@dataclass(frozen=True, slots=True)
class Item:
    """A normalized item, ready for deduplication."""

    title: str  # never empty
    title_is_derived: bool  # True when made from the summary
    link: str | None  # canonical absolute URL, or None when the page gives none
    summary: str  # plain text, XML-safe
    summary_html: str | None  # sanitized HTML, or None
    published: datetime | None  # the date the item carries (aware), or None
    published_from: str | None  # "markup" or "text": how far to trust `published`
    image: str | None  # absolute URL
    source_url: str  # the page it was found on
    position: int
    key: str  # canonical URL, else "text:" + hash of the folded text
    folded: str  # NFKC-folded, case-folded, punctuation- and space-free text for comparison
    buckets: tuple[int, ...] = ()  # LSH bucket ids of `folded` (dedupe), when computed in the parse worker


@dataclass(slots=True)
class Entry:
    """A stored story, as published. `id` is minted once and never recomputed."""

    id: str  # a URI (urn:uuid:…)
    title: str
    title_is_derived: bool
    link: str | None
    summary: str
    summary_html: str | None
    published: datetime | None
    published_from: str | None
    image: str | None
    source_url: str
    position: int
    first_seen_at: datetime
    last_seen_at: datetime
    updated_at: datetime  # when its text last changed (first seen, for a new entry)
    topics: tuple[str, ...] = ()
    content_html: str | None = None  # the article's main text (`article = "full"`), sanitized

    @property
    def date(self) -> datetime:
        """The date a reader sees: the item's own date, else when feedsvc first saw it."""
        return self.published or self.first_seen_at


@dataclass(frozen=True, slots=True)
class RawArticle:
    """What an item's own page says about it, as found (extract.article). Dates as written: normalize
    reads them in the source's zone."""

    url: str  # the article page's URL
    published: str | None = None  # a publication date from markup (JSON-LD, meta, <time>), as written
    published_by: str | None = None  # which rule found it: "json-ld", "meta", "time", "htmldate"
    published_text: str | None = None  # a date line written in the page's text ("作成日時 ： 2008/02/05 00:14")
    modified: str | None = None  # a modification date from markup, as written
    image: str | None = None  # absolute URL
    canonical: str | None = None  # absolute URL
    text_html: str | None = None  # the main text as HTML (full mode), not yet sanitized


@dataclass(frozen=True, slots=True)
class Article:
    """An item's own page, read and normalized: what it adds to the entry (store keeps it by entry)."""

    url: str
    published: datetime | None = None
    precise: bool = False  # `published` carries a time of day (not only the day)
    modified: datetime | None = None
    image: str | None = None
    canonical: str | None = None
    content_html: str | None = None


@dataclass(slots=True)
class SourceState:
    """What feedsvc remembers about one source URL between runs."""

    url: str
    etag: str | None = None
    last_modified: str | None = None
    last_success_at: datetime | None = None
    last_failure_at: datetime | None = None
    last_error: str | None = None  # "kind: message" of the last failure
    consecutive_failures: int = 0
    next_try_at: datetime | None = None  # backoff: do not fetch before this
    last_item_count: int | None = None  # items found on the last successful parse
    icon: str | None = None  # the site's icon (<link rel="icon">), for the feed's <icon>
    usual_item_count: int | None = None  # what the page usually lists (not moved by a sharp fall)
    degraded_runs: int = 0  # successful fetches in a row that found far fewer items than usual

    @property
    def degraded(self) -> bool:
        return self.degraded_runs > 0


@dataclass(frozen=True, slots=True)
class RobotsTxt:
    """A site's robots.txt as fetched: kept between runs for a day (RFC 9309 caching)."""

    origin: str  # scheme://host[:port]
    status: int  # the HTTP status it was answered with (a 4xx means: no rules)
    body: str  # the rules, when the status was 200
    fetched_at: datetime


@dataclass(frozen=True, slots=True)
class TopicRun:
    """A topic's place in a fleet's schedule (PostgreSQL state): when it is next due, who holds it now,
    who refreshed it last."""

    topic: str
    next_due_at: datetime
    lease_holder: str | None = None
    lease_expires_at: datetime | None = None
    last_started_at: datetime | None = None
    last_finished_at: datetime | None = None
    last_worker: str | None = None


@dataclass(frozen=True, slots=True)
class Worker:
    """A `feedsvc run` (or refresh) process sharing the state, as it last said it was alive."""

    name: str  # host/pid
    host: str
    pid: int
    started_at: datetime
    seen_at: datetime


@dataclass(slots=True)
class SourceOutcome:
    """What happened to one source in one refresh."""

    url: str
    status: str  # "ok", "not-modified", "failed", "skipped" (backed off)
    items: int = 0
    error: str | None = None
    usual: int | None = None  # set when the page gave far fewer items than it usually lists (degraded)


@dataclass(slots=True)
class RefreshResult:
    """What one refresh of one topic did: what the CLI prints and the daemon logs."""

    topic: str
    entries: int = 0  # entries in the feed after the refresh
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    feed_written: bool = False
    sources: list[SourceOutcome] = field(default_factory=list)
    seconds: float = 0.0
    # items that became another item's entry: (the item's title and link, the entry's title, why)
    merged: list[tuple[str, str, str]] = field(default_factory=list)
    restored: int = 0  # entries rebuilt from the published feed because the state had none

    @property
    def failures(self) -> list[SourceOutcome]:
        return [s for s in self.sources if s.status == "failed"]

    @property
    def backed_off(self) -> list[SourceOutcome]:
        """Sources not fetched because they failed before: still failing, as far as anyone knows."""
        return [s for s in self.sources if s.status == "skipped"]

    @property
    def degraded(self) -> list[SourceOutcome]:
        return [s for s in self.sources if s.usual is not None]
