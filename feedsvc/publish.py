"""Entries -> feed files: Atom (RFC 4287), RSS 2.0, JSON Feed 1.1, index.opml and index.html.

The only module that imports feedgen. Rules it keeps:

- Same state in, same bytes out. Nothing here reads the clock: a feed's `updated` is its
  newest entry's `updated_at`; a feed with no entries says 1970-01-01T00:00:00+00:00 (the Unix
  epoch, `EMPTY_FEED_UPDATED`), a fixed time that any entry will move forward.
- A file is written only when its bytes change (temp file in the same folder, fsync, os.replace),
  so an unchanged feed keeps its mtime and static hosts keep answering 304.
- Every text is made XML-safe here, defensively, even though normalize already does it; links
  and images that are not http(s) (javascript:, data:, …) never reach an output.
- feedgen raises ValueError late (at serialization): each is turned into a PublishError that
  names the topic and the field.
"""

from __future__ import annotations

import html
import json
import logging
import os
import re
import tempfile
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from feedsvc import PROJECT_URL, __version__
from feedsvc.config import TOPIC_ID, Config, TopicConfig, describe_schedule
from feedsvc.errors import PublishError
from feedsvc.model import Entry, SourceState

if TYPE_CHECKING:
    from feedgen.feed import FeedGenerator

log = logging.getLogger(__name__)

EXTENSIONS = {"atom": ".atom", "rss": ".rss", "json": ".json"}
MEDIA_TYPES = {"atom": "application/atom+xml", "rss": "application/rss+xml", "json": "application/feed+json"}
EMPTY_FEED_UPDATED = datetime(1970, 1, 1, tzinfo=UTC)
_FORMAT_NAMES = {"atom": "Atom", "rss": "RSS", "json": "JSON Feed"}
INDEX_ENTRIES = 10  # entries per topic on index.html
JSONFEED_VERSION = "https://jsonfeed.org/version/1.1"
ATOM_NS = "http://www.w3.org/2005/Atom"
# An Atom extension element (RFC 4287 §6.4) on each entry with what a reader does not need but lost
# state does: when feedsvc first saw the story, where, and how far to trust its date (read_entries).
STATE_NS = PROJECT_URL + "/ns/entry-state/1"
# uuid5 namespace for feed ids when there is no base_url: fixed forever, so the id never changes.
FEED_ID_NAMESPACE = uuid.UUID("6f0c7f2e-4b8a-5d35-9a57-7c1d8e0f2a61")

# Characters XML 1.0 forbids (C0 controls but tab/LF/CR, surrogates, U+FFFE, U+FFFF), and the C1
# controls it discourages (§2.2): readers turn those into cp1252 mojibake (feedparser reads \x80 as €).
_XML_FORBIDDEN = re.compile("[^\u0009\u000a\u000d\u0020-\u007e\u00a0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
# RFC 4287 atomLanguageTag (the schema's pattern): refuse before the schema would.
_LANG_TAG = re.compile(r"^([A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*)?$")
_ABS_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:[^\s]+$")
_SPACE = re.compile(r"\s")  # the same characters as str.isspace() (checked over every code point)
# summary_html is sanitized by normalize; if anything active slipped through, publish the plain text.
_ACTIVE_HTML = re.compile(r"<\s*/?\s*(script|style|iframe|object|embed|form|base|meta|link)\b"
                          r"|\son[a-z]+\s*=|javascript\s*:|vbscript\s*:|data\s*:\s*text/html", re.IGNORECASE)


# --------------------------------------------------------------------------- small helpers


def xml_safe(text: str | None) -> str:
    """Drop the characters XML 1.0 cannot carry (normalize does it too; this is the last gate)."""
    return _XML_FORBIDDEN.sub("", text or "")


def _http_url(url: str | None) -> str | None:
    """The URL when it is an absolute http(s) URL, else None: javascript: and friends never pass."""
    if not url:
        return None
    url = xml_safe(url).strip()
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname or _SPACE.search(url):
        return None
    return url


def _utc(dt: datetime, topic: str, field: str) -> datetime:
    """UTC, whole seconds: RFC 3339 with an offset, and no odd historical offsets like +09:18:59."""
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise PublishError(f"topic {topic!r}: {field} is a naive datetime ({dt.isoformat()}); "
                           "every time must carry a time zone")
    return dt.astimezone(UTC).replace(microsecond=0)


def rfc3339(dt: datetime) -> str:
    return dt.isoformat()


@lru_cache(maxsize=1024)
def _web_host(source_url: str) -> str | None:
    """The host without www. of an http(s) URL, else None (every entry of a page asks for the same one)."""
    parts = urlsplit(source_url)
    host = parts.hostname
    if not host or parts.scheme not in ("http", "https"):
        return None
    return host.removeprefix("www.")


def site_name(source_url: str, topic: TopicConfig) -> str:
    """The site's name for author elements: the host of the page (file: sources: the topic title)."""
    host = _web_host(source_url) if source_url else None
    return topic.title if host is None else host


def page_url(topic: TopicConfig, config: Config) -> str:
    """The topic's page for alternate/htmlUrl: its first http(s) source, else the index page, else the file."""
    for source in topic.sources:
        if _http_url(source.url):
            return source.url
    if config.base_url:
        return config.base_url + "index.html"
    return topic.sources[0].url


def feed_url(config: Config, topic_id: str, fmt: str = "atom") -> str | None:
    """The public URL of a feed (base_url + file), or None when base_url is not set."""
    name = feed_path(config, topic_id, fmt).name
    return config.base_url + name if config.base_url else None


def _href(config: Config, name: str) -> str:
    """A link to a file of output_dir: absolute with base_url, else relative (index files sit beside the feeds)."""
    return config.base_url + name if config.base_url else name


def feed_id(config: Config, topic_id: str) -> str:
    """Stable: base_url + <id>.atom when base_url is set, else urn:uuid:uuid5(topic id). Same every run."""
    if config.base_url:
        return config.base_url + topic_id + EXTENSIONS["atom"]
    return uuid.uuid5(FEED_ID_NAMESPACE, topic_id).urn


def feed_path(config: Config, topic_id: str, fmt: str = "atom") -> Path:
    """<output_dir>/<id>.atom|.rss|.json. Refuses a topic id that could land outside output_dir."""
    if fmt not in EXTENSIONS:
        raise PublishError(f"topic {topic_id!r}: unknown feed format {fmt!r}; choose from {', '.join(EXTENSIONS)}")
    # config validation refuses such ids too; this is the second lock on the same door.
    if not isinstance(topic_id, str) or not TOPIC_ID.match(topic_id):
        raise PublishError(f"topic {topic_id!r}: the id cannot name a file in output_dir "
                           "(lowercase letters, digits and '-')")
    root = Path(config.output_dir).resolve()
    path = (root / (topic_id + EXTENSIONS[fmt])).resolve()
    if path.parent != root:
        raise PublishError(f"topic {topic_id!r}: {path} is outside output_dir {root}")
    return path


class _Checked:
    """One entry with every field checked and cleaned, shared by the three formats."""

    def __init__(self, e: Entry, topic: TopicConfig, config: Config) -> None:
        tid = topic.id
        if not e.id or not _ABS_URI.match(e.id):
            raise PublishError(f"topic {tid!r}: entry id {e.id!r} is not an absolute URI")
        self.id = xml_safe(e.id)
        self.title = " ".join(xml_safe(e.title).split()) or "(untitled)"
        self.link = _http_url(e.link) or _http_url(e.source_url)  # the article, else the page it was on
        self.summary = xml_safe(e.summary).strip()
        self.summary_html: str | None = xml_safe(e.summary_html).strip() or None
        if self.summary_html and _ACTIVE_HTML.search(self.summary_html):
            log.warning("topic %s: entry %s: summary_html carries active content; publishing plain text",
                        tid, e.id)
            self.summary_html = None
        # the article's main text (article = "full"), sanitized by normalize as summaries are
        self.content_html: str | None = xml_safe(e.content_html).strip() or None
        if self.content_html and _ACTIVE_HTML.search(self.content_html):
            log.warning("topic %s: entry %s: its article text carries active content; left out", tid, e.id)
            self.content_html = None
        self.published = _utc(e.published, tid, f"entry {e.id} published") if e.published else None
        self.updated = _utc(e.updated_at, tid, f"entry {e.id} updated_at")
        self.date = self.published or _utc(e.first_seen_at, tid, f"entry {e.id} first_seen_at")
        self.image = _http_url(e.image)
        self.author = xml_safe(site_name(e.source_url, topic))
        self.state = {"first-seen": rfc3339(_utc(e.first_seen_at, tid, f"entry {e.id} first_seen_at")),
                      "linked": "true" if _http_url(e.link) else "false",
                      "title-derived": "true" if e.title_is_derived else "false"}
        if e.published_from:
            self.state["date-from"] = e.published_from
        if source := _http_url(e.source_url):  # never a local path (a file: source)
            self.state["source"] = xml_safe(source)


def _check_entries(topic: TopicConfig, entries: Sequence[Entry], config: Config) -> list[_Checked]:
    out: list[_Checked] = []
    seen: set[str] = set()
    for e in entries:
        c = _Checked(e, topic, config)
        if c.id in seen:  # Atom ids must be unique in a feed: keep the first (newest)
            log.warning("topic %s: entry id %s appears twice; keeping the first", topic.id, c.id)
            continue
        seen.add(c.id)
        out.append(c)
    return out


class _Meta:
    """Feed-level values, shared by the three formats."""

    def __init__(self, topic: TopicConfig, entries: list[_Checked], config: Config) -> None:
        if topic.language is not None and not _LANG_TAG.match(topic.language):
            raise PublishError(f"topic {topic.id!r}: language {topic.language!r} is not a language tag "
                               "(write it like 'ja' or 'en-GB')")
        self.id = feed_id(config, topic.id)
        self.title = " ".join(xml_safe(topic.title).split())
        self.page = xml_safe(page_url(topic, config))
        self.author = xml_safe(site_name(topic.sources[0].url, topic)) if topic.sources else self.title
        sites = list(dict.fromkeys(site_name(s.url, topic) for s in topic.sources))
        self.subtitle = xml_safe(topic.subtitle or f"{topic.title}: new entries from {', '.join(sites)}").strip()
        self.updated = max((e.updated for e in entries), default=EMPTY_FEED_UPDATED)
        self.language = topic.language or None
        self.hub = _http_url(config.websub_hub)
        self.urls = {fmt: feed_url(config, topic.id, fmt) for fmt in EXTENSIONS}
        self.icon = _http_url(topic.icon)


# --------------------------------------------------------------------------- Atom and RSS (feedgen)


@lru_cache(maxsize=None)
def _feedgen_types() -> tuple[type[FeedGenerator], type, type, type, type, type]:
    """feedgen and our extensions of it, imported when a feed is first rendered: with lxml and
    dateutil that is a tenth of the CLI's start, which a refresh of unchanged pages never needs."""
    from feedgen.ext.base import BaseEntryExtension, BaseExtension
    from feedgen.feed import FeedGenerator

    class _RssHubExtension(BaseExtension):
        """feedgen writes only rel=self into an RSS channel: add atom:link rel=hub for WebSub."""

        hub: str | None = None

        def extend_ns(self) -> dict[str, str]:
            return {"atom": ATOM_NS}

        def extend_rss(self, rss_feed: Any) -> Any:
            channel = rss_feed[0]
            if self.hub:
                link = channel.makeelement(f"{{{ATOM_NS}}}link", {"rel": "hub", "href": self.hub})
                # after the self link feedgen put near the top, before the items
                channel.insert(3, link)
            return rss_feed

        def extend_atom(self, atom_feed: Any) -> Any:
            return atom_feed

    class _AlternateLinkEntryExtension(BaseEntryExtension):
        """feedgen 1.0 drops rel from entry links (its loop rebinds `link`): write it back."""

        def extend_atom(self, entry: Any) -> Any:
            for link in entry.findall("link"):  # feedgen builds un-namespaced elements
                if "rel" not in link.attrib:
                    link.set("rel", "alternate")  # no type: the page may be text/plain or anything else
            return entry

        def extend_rss(self, item: Any) -> Any:
            return item

    class _NoFeedExtension(BaseExtension):
        def extend_atom(self, atom_feed: Any) -> Any:
            return atom_feed

    class _StateFeedExtension(_NoFeedExtension):
        def extend_ns(self) -> dict[str, str]:
            return {"feedsvc": STATE_NS}

    class _StateEntryExtension(BaseEntryExtension):
        """<feedsvc:state first-seen=… source=… linked=… title-derived=… date-from=…/>"""

        values: dict[str, str] = {}

        def extend_atom(self, entry: Any) -> Any:
            entry.append(entry.makeelement(f"{{{STATE_NS}}}state", self.values))
            return entry

        def extend_rss(self, item: Any) -> Any:
            return item

    return (FeedGenerator, _RssHubExtension, _AlternateLinkEntryExtension, _NoFeedExtension,
            _StateFeedExtension, _StateEntryExtension)


def _feedgen(topic: TopicConfig, meta: _Meta, entries: list[_Checked], fmt: str) -> FeedGenerator:
    feed_generator, rss_hub, alternate_link, no_feed, state_feed, state_entry = _feedgen_types()
    fg = feed_generator()
    fg.load_extension("media")
    fg.register_extension("altlink", no_feed, alternate_link, atom=True, rss=False)
    fg.register_extension("entrystate", state_feed, state_entry, atom=True, rss=False)
    fg.load_extension("dc", atom=False, rss=True)  # dc:creator: RSS <author> wants an email we lack
    fg.id(meta.id)
    fg.title(meta.title)
    fg.subtitle(meta.subtitle)  # also RSS <description>
    fg.updated(meta.updated)  # feedgen defaults to now: always set (also RSS lastBuildDate)
    fg.author({"name": meta.author})
    fg.generator("feedsvc", version=__version__, uri=PROJECT_URL)
    if meta.icon and fmt == "atom":
        fg.icon(meta.icon)
    if meta.language:
        fg.language(meta.language)  # xml:lang on <feed>, <language> in RSS
    if meta.urls[fmt]:
        fg.link(href=meta.urls[fmt], rel="self", type=MEDIA_TYPES[fmt])
    if meta.hub:
        if fmt == "atom":
            fg.link(href=meta.hub, rel="hub")
        else:
            fg.register_extension("websubhub", rss_hub, None, atom=False, rss=True)
            fg.websubhub.hub = meta.hub  # type: ignore[attr-defined]
    # RSS <link> is the LAST link feedgen was given: the page goes last.
    fg.link(href=meta.page, rel="alternate")  # no type: a source may be a text page

    for c in entries:
        fe = fg.add_entry(order="append")  # feedgen prepends by default; entries come newest first
        fe.id(c.id)  # also the RSS guid (isPermaLink=false)
        fe.title(c.title)
        fe.updated(c.updated)  # feedgen defaults to now: always set
        if fmt == "atom":
            if c.published:
                fe.published(c.published)
        else:
            fe.pubDate(c.date)  # RSS readers sort by pubDate: give the date the reader sees
        if c.link:
            fe.link(href=c.link, rel="alternate")
        else:
            # No http(s) article or page (a file: source): Atom then needs content instead of a link.
            fe.content(c.summary or c.title, type="text")
        fe.author({"name": c.author})
        if fmt == "rss":
            fe.dc.dc_creator(c.author)  # type: ignore[attr-defined]
        fe.category(term=topic.id, label=meta.title)
        if fmt == "atom":
            if c.summary_html:
                fe.summary(c.summary_html, type="html")
            elif c.summary:
                fe.summary(c.summary, type="text")
            if c.link and c.content_html:  # the whole story; `summary` stays the listing's text
                fe.content(c.content_html, type="html")
        else:
            # RSS <description> is entity-encoded HTML: plain text must be escaped to stay text.
            desc = c.summary_html or html.escape(c.summary or c.title, quote=False)
            fe.description(desc, isSummary=True)
            if fmt == "rss" and c.content_html:  # <content:encoded>: the article's text
                fe.content(c.content_html)  # entity-encoded, as <description> is
        if c.image:
            fe.media.thumbnail({"url": c.image}, group=None)  # type: ignore[attr-defined]
        fe.entrystate.values = c.state  # type: ignore[attr-defined]
    return fg


def _render_feedgen(topic: TopicConfig, meta: _Meta, entries: list[_Checked], fmt: str) -> bytes:
    try:
        fg = _feedgen(topic, meta, entries, fmt)
        data = fg.atom_str(pretty=True) if fmt == "atom" else fg.rss_str(pretty=True)
    except ValueError as exc:
        field = _guess_field(str(exc))
        raise PublishError(f"topic {topic.id!r}: cannot build the {fmt} feed ({field}): {exc}") from exc
    return data


def _guess_field(message: str) -> str:
    m = re.search(r"\(([^)]*)\)", message)
    if m:
        return m.group(1)
    for word in ("link", "title", "id", "updated", "published", "author", "category", "summary", "language"):
        if word in message.lower():
            return word
    return "unknown field"


# --------------------------------------------------------------------------- JSON Feed 1.1


def _render_json(topic: TopicConfig, meta: _Meta, entries: list[_Checked]) -> bytes:
    doc: dict[str, Any] = {
        "version": JSONFEED_VERSION,
        "title": meta.title,
        "home_page_url": meta.page if _http_url(meta.page) else None,
        "feed_url": meta.urls["json"],
        "description": meta.subtitle,
        "favicon": meta.icon,
        "language": meta.language,
        "authors": [{"name": meta.author}],
        "hubs": [{"type": "WebSub", "url": meta.hub}] if meta.hub else None,
        "items": [],
    }
    for c in entries:
        item: dict[str, Any] = {
            "id": c.id,  # the same id as the Atom entry and the RSS guid
            "url": c.link,
            "title": c.title,
            "date_published": rfc3339(c.date),
            "date_modified": rfc3339(c.updated),
            "authors": [{"name": c.author}],
            "tags": [topic.id],
            "image": c.image,
        }
        if c.content_html:  # the article's text (article = "full"): the listing's text is its summary
            item["content_html"] = c.content_html
            item["summary"] = c.summary or None
        elif c.summary_html:
            item["content_html"] = c.summary_html
            item["summary"] = c.summary or None
        else:
            item["content_text"] = c.summary or c.title
        doc["items"].append({k: v for k, v in item.items() if v is not None})
    doc = {k: v for k, v in doc.items() if v is not None}
    return (json.dumps(doc, sort_keys=True, ensure_ascii=False, indent=2) + "\n").encode("utf-8")


# --------------------------------------------------------------------------- public API


def render_feed(topic: TopicConfig, entries: Sequence[Entry], config: Config, fmt: str = "atom") -> bytes:
    """The bytes of one feed of `topic` in `fmt` ("atom", "rss" or "json"). Deterministic."""
    if fmt not in EXTENSIONS:
        raise PublishError(f"topic {topic.id!r}: unknown feed format {fmt!r}; choose from {', '.join(EXTENSIONS)}")
    checked = _check_entries(topic, entries, config)
    return _render(topic, _Meta(topic, checked, config), checked, fmt)


def _render(topic: TopicConfig, meta: _Meta, checked: list[_Checked], fmt: str) -> bytes:
    if fmt == "json":
        return _render_json(topic, meta, checked)
    return _render_feedgen(topic, meta, checked, fmt)


def write_atomic(path: Path, data: bytes) -> bool:
    """Write `data` to `path` atomically. False (file untouched, mtime kept) when it already holds them."""
    path = Path(path)
    try:
        if path.is_file() and path.stat().st_size == len(data) and path.read_bytes() == data:
            return False
        path.parent.mkdir(parents=True, exist_ok=True)
        # A dot-name in the same folder: os.replace stays on one file system, and serve hides dotfiles.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o644)  # mkstemp makes 0600; a web server must be able to read the feed
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise
        _fsync_dir(path.parent)
    except OSError as exc:
        raise PublishError(f"cannot write {path}: {exc.strerror or exc}") from exc
    return True


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (POSIX); not possible everywhere, so best effort."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_feeds(topic: TopicConfig, entries: Sequence[Entry], config: Config) -> list[Path]:
    """Render every format of topic.formats, then write those whose bytes changed. Returns the paths written."""
    # Render everything first: a render error then leaves every file of the topic as it was.
    rendered: list[tuple[Path, bytes]] = []
    checked: list[_Checked] = []
    meta: _Meta | None = None
    for fmt in topic.formats:
        path = feed_path(config, topic.id, fmt)  # refuses an unknown format, as render_feed does
        if meta is None:  # the formats show the same entries: check them once, not once per format
            checked = _check_entries(topic, entries, config)
            meta = _Meta(topic, checked, config)
        rendered.append((path, _render(topic, meta, checked, fmt)))
    # (the caller logs what was written: this may run in a worker process, which has no log handlers)
    return [path for path, data in rendered if write_atomic(path, data)]


def read_entries(topic: TopicConfig, config: Config) -> list[Entry]:
    """The entries of the topic's published Atom feed, as feedsvc wrote them: to rebuild lost state.

    [] when there is no such feed or it cannot be read. Entries written before feedsvc added its
    state element (or by hand) take their first-seen time from `updated`, their source from the topic."""
    from lxml import etree  # installed with feedgen; only needed on this rare path

    path = feed_path(config, topic.id, "atom")
    if not path.exists():
        return []
    try:
        root = etree.parse(str(path), etree.XMLParser(resolve_entities=False, no_network=True,
                                                      huge_tree=False)).getroot()
    except (OSError, etree.XMLSyntaxError) as exc:
        log.warning("topic %s: cannot read %s to rebuild state: %s", topic.id, path, exc)
        return []
    a = f"{{{ATOM_NS}}}"
    out = []
    for position, el in enumerate(root.iter(a + "entry")):
        try:
            out.append(_entry_of(el, topic, position))
        except ValueError as exc:  # a date written by hand, say: that entry only
            log.warning("topic %s: %s: skipping an entry: %s", topic.id, path, exc)
    return [e for e in out if e.id]


def _entry_of(el: Any, topic: TopicConfig, position: int) -> Entry:
    """One <entry> of a feed feedsvc wrote, as the Entry it was made from."""
    from lxml import etree

    a = f"{{{ATOM_NS}}}"

    def text(tag: str) -> str:
        found = el.find(a + tag)
        return "" if found is None or found.text is None else found.text

    state = el.find(f"{{{STATE_NS}}}state")
    st = dict(state.attrib) if state is not None else {}
    updated = datetime.fromisoformat(text("updated"))
    published = datetime.fromisoformat(text("published")) if text("published") else None
    link = next((x.get("href") for x in el.iter(a + "link") if x.get("rel", "alternate") == "alternate"), None)
    summary_el = el.find(a + "summary")
    summary_html = None
    summary = text("summary") or text("content")
    if summary_el is not None and summary_el.get("type") == "html":
        summary_html = summary
        summary = " ".join(etree.HTML(f"<div>{summary}</div>").xpath("string()").split()) if summary else ""
    thumb = el.find("{http://search.yahoo.com/mrss/}thumbnail")
    return Entry(
        id=text("id"), title=text("title"), title_is_derived=st.get("title-derived") == "true",
        link=link if st.get("linked", "true") == "true" else None, summary=summary,
        summary_html=summary_html, published=published,
        published_from=(st.get("date-from") or "text") if published else None,
        image=thumb.get("url") if thumb is not None else None,
        source_url=st.get("source") or (topic.sources[0].url if topic.sources else ""),
        position=position, first_seen_at=datetime.fromisoformat(st.get("first-seen") or text("updated")),
        last_seen_at=updated, updated_at=updated, topics=(topic.id,))


def write_indexes(config: Config, entries_by_topic: Mapping[str, Sequence[Entry]],
                  health: Mapping[str, tuple[SourceHealth, ...]] | None = None,
                  counts: Mapping[str, int] | None = None) -> list[Path]:
    """index.opml and index.html in output_dir, for all topics; written only when changed."""
    root = Path(config.output_dir)
    files = [(root / "index.opml", render_opml(config)),
             (root / "index.html", render_index_html(config, entries_by_topic, health, counts))]
    return [path for path, data in files if write_atomic(path, data)]


# --------------------------------------------------------------------------- index.opml, index.html


def render_opml(config: Config) -> bytes:
    """OPML 2.0 listing every topic's feed, to import all of them in one go."""
    opml = ET.Element("opml", version="2.0")
    head = ET.SubElement(opml, "head")
    ET.SubElement(head, "title").text = "feedsvc feeds"
    body = ET.SubElement(opml, "body")
    for topic in config.topics:
        fmt = "atom" if "atom" in topic.formats else topic.formats[0]
        title = " ".join(xml_safe(topic.title).split())
        attrs = {"type": "rss", "text": title, "title": title,
                 "xmlUrl": _href(config, feed_path(config, topic.id, fmt).name),
                 "htmlUrl": xml_safe(page_url(topic, config))}
        if topic.subtitle:
            attrs["description"] = xml_safe(topic.subtitle)
        if topic.language and _LANG_TAG.match(topic.language):
            attrs["language"] = topic.language
        ET.SubElement(body, "outline", attrs)
    ET.indent(opml)
    return ET.tostring(opml, encoding="utf-8", xml_declaration=True) + b"\n"


# What index.html says about each source. Nothing here reads the clock: "backed off" is judged
# against the newest time the state records (the last refresh), so the same state gives the same page.
HEALTH_ORDER = ("ok", "waiting", "degraded", "failing", "backed-off")  # worst last: a topic shows its worst


@dataclass(frozen=True, slots=True)
class SourceHealth:
    """One source's line on index.html: a kind (its CSS class and label) and a sentence for the operator."""

    url: str
    kind: str  # one of HEALTH_ORDER
    detail: str
    last_refresh: datetime | None  # its last fetch, successful or not


def _minute(dt: datetime) -> str:
    return f"{dt.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def source_health(state: SourceState | None, as_of: datetime | None) -> SourceHealth | None:
    """ok / degraded / failing / backed off (/ waiting: never fetched yet), from the stored state."""
    if state is None or (state.last_success_at is None and state.last_failure_at is None):
        return None
    # to the minute, as shown: the index's render key is made of these, and seconds would rewrite it for nothing
    last = max(t for t in (state.last_success_at, state.last_failure_at) if t is not None).replace(
        second=0, microsecond=0)
    error = " ".join(xml_safe(state.last_error).split())[:200] or "unknown error"
    n = state.consecutive_failures
    times = f"{n} failure{'s' if n != 1 else ''} in a row"
    since = f"last ok {_minute(state.last_success_at)}" if state.last_success_at else "never read"
    if n and state.next_try_at is not None and as_of is not None and state.next_try_at > as_of:
        return SourceHealth(state.url, "backed-off",
                            f"until {_minute(state.next_try_at)} after {times}; {since}: {error}", last)
    if n:
        return SourceHealth(state.url, "failing", f"{times}; {since}: {error}", last)
    if state.degraded:
        return SourceHealth(state.url, "degraded", f"{state.last_item_count} items where it usually lists "
                                                   f"{state.usual_item_count}", last)
    items = state.last_item_count
    return SourceHealth(state.url, "ok", "" if items is None else f"{items} item{'s' if items != 1 else ''}", last)


def _waiting(url: str) -> SourceHealth:
    return SourceHealth(url, "waiting", "not fetched yet", None)


def index_health(config: Config, states: Mapping[str, SourceState]) -> dict[str, tuple[SourceHealth, ...]]:
    """Each topic's sources as index.html shows them, in config order (also the index's render key)."""
    urls = {s.url for t in config.topics for s in t.sources}
    stamps = [t for u in urls if (s := states.get(u)) for t in (s.last_success_at, s.last_failure_at) if t]
    as_of = max(stamps, default=None)
    out = {}
    for topic in config.topics:
        out[topic.id] = tuple(source_health(states.get(s.url), as_of) or _waiting(s.url) for s in topic.sources)
    return out


def _source_name(url: str) -> str:
    """The host for a web page, the file name for a local one: short enough for a table cell."""
    host = _web_host(url) if _http_url(url) else None
    return host or url.rstrip("/").rsplit("/", 1)[-1] or url


_STYLE = """
:root{color-scheme:light dark;--fg:#222;--muted:#555;--bg:#fff;--line:#ddd;--link:#0645ad}
@media (prefers-color-scheme:dark){:root{--fg:#e8e8e8;--muted:#aaa;--bg:#16181b;--line:#3a3d42;--link:#8ab4f8}}
*{box-sizing:border-box}
body{font:16px/1.5 system-ui,sans-serif;max-width:64rem;margin:1.5rem auto;padding:0 1rem;color:var(--fg);
background:var(--bg);overflow-wrap:break-word}
h1{font-size:1.6rem;margin:0 0 .25rem}h2{font-size:1.25rem;margin:2rem 0 .25rem}
a{color:var(--link)}.meta,.feeds{color:var(--muted);font-size:.9rem}
table{border-collapse:collapse;width:100%;margin:1rem 0;font-size:.95rem}
th,td{text-align:left;vertical-align:top;padding:.4rem .5rem;border-bottom:1px solid var(--line)}
th{font-size:.85rem;color:var(--muted);font-weight:600;white-space:nowrap}td.num{text-align:right}
td time{white-space:nowrap}
.src{display:block}.why{display:block;color:var(--muted);font-size:.85rem;overflow-wrap:anywhere}
.h{display:inline-block;min-width:4.8rem;padding:0 .4rem;border-radius:.6rem;font-size:.8rem;
text-align:center;color:#fff;background:#666}
.h-ok{background:#1a7f37}.h-degraded{background:#9a6700}.h-failing{background:#cf222e}
.h-backed-off{background:#8250df}.h-waiting{background:#666}
ol{padding:0;list-style:none}li.entry{display:flex;gap:.75rem;margin:.8rem 0;align-items:flex-start}
li.entry img{flex:none;width:6rem;height:4rem;object-fit:cover;border-radius:.25rem;background:var(--line)}
li.entry>span{flex:1;min-width:0}li.entry p{margin:.2rem 0;color:var(--muted)}
@media (max-width:40rem){
table,tbody{display:block}thead{display:none}
tr{display:flex;flex-wrap:wrap;column-gap:.8rem;padding:.6rem 0;border-bottom:1px solid var(--line)}
td{border:0;padding:0;max-width:100%}td:first-child,td[data-label=Sources]{flex-basis:100%}
td:first-child{font-weight:600}td:not(:first-child)::before{content:attr(data-label) ": ";color:var(--muted);
font-size:.85rem}td[data-label=Sources]::before{content:""}
li.entry img{width:4.5rem;height:3rem}
}
"""


def _e(text: str | None) -> str:
    """Escape for HTML text and attributes, after dropping what XML/HTML cannot carry."""
    return html.escape(xml_safe(text), quote=True)


def _time(dt: datetime | None) -> str:
    if dt is None:
        return "never"
    dt = dt.astimezone(UTC).replace(microsecond=0)
    return f'<time datetime="{rfc3339(dt)}">{_minute(dt)}</time>'


def _topic_row(topic: TopicConfig, count: int, health: tuple[SourceHealth, ...], subscribe: str) -> str:
    """One row of the table of topics: what an operator checks first."""
    worst = max((h.kind for h in health), key=HEALTH_ORDER.index, default="waiting")
    stamps = [h.last_refresh for h in health if h.last_refresh]
    sources = []
    for h in health:
        why = f' <span class="why">{_e(h.detail)}</span>' if h.kind != "ok" and h.detail else ""
        sources.append(f'<span class="src"><span class="h h-{h.kind}">{h.kind.replace("-", " ")}</span> '
                       f'{_e(_source_name(h.url))}{why}</span>')
    return (f'<tr class="topic-row health-{worst}">'
            f'<td data-label="Topic"><a href="#topic-{_e(topic.id)}">{_e(topic.title)}</a></td>'
            f'<td class="num" data-label="Entries">{count}</td>'
            f'<td data-label="Last refresh">{_time(max(stamps, default=None))}</td>'
            f'<td data-label="Schedule">{_e(describe_schedule(topic))}</td>'
            f'<td data-label="Sources">{"".join(sources)}</td>'
            f'<td data-label="Subscribe">{subscribe}</td></tr>')


def _entry_item(c: _Checked) -> str:
    title = f'<a href="{_e(c.link)}">{_e(c.title)}</a>' if c.link else _e(c.title)
    summary = c.summary if len(c.summary) <= 280 else c.summary[:279].rstrip() + "…"
    summary_html = f"\n<p>{_e(summary)}</p>" if summary and summary != c.title else ""
    # the picture comes from the source's site: no referrer, so it does not learn where the index is
    image = (f'<img src="{_e(c.image)}" alt="" loading="lazy" referrerpolicy="no-referrer" width="96" height="64">'
             if c.image else "")
    return (f'<li class="entry">{image}<span>{title} <span class="meta">'
            f'<time datetime="{rfc3339(c.date)}">{c.date:%Y-%m-%d %H:%M} UTC</time> · '
            f'{_e(c.author)}</span>{summary_html}</span></li>')


def render_index_html(config: Config, entries_by_topic: Mapping[str, Sequence[Entry]],
                      health: Mapping[str, tuple[SourceHealth, ...]] | None = None,
                      counts: Mapping[str, int] | None = None) -> bytes:
    """The operator's page: a table of topics (entries, last refresh, schedule, each source's health,
    subscribe links), then each topic's latest entries with their pictures. Autodiscovery links in
    the head; no script, no outside stylesheet or font; readable on a phone. `health` comes from
    index_health(), `counts` are the entries in each feed (default: those given)."""
    health = health or {}
    counts = counts or {}
    langs = {t.language for t in config.topics}
    lang = next(iter(langs)) if len(langs) == 1 and None not in langs else None
    head_links: list[str] = []
    rows: list[str] = []
    sections: list[str] = []
    for topic in config.topics:
        links = []
        for fmt in topic.formats:
            href = _href(config, feed_path(config, topic.id, fmt).name)
            head_links.append(f'<link rel="alternate" type="{MEDIA_TYPES[fmt]}" title="{_e(topic.title)}'
                              f'{"" if fmt == "atom" else " (" + fmt.upper() + ")"}" href="{_e(href)}">')
            links.append(f'<a href="{_e(href)}" type="{MEDIA_TYPES[fmt]}">{_FORMAT_NAMES[fmt]}</a>')
        given = list(entries_by_topic.get(topic.id, ()))
        checked = _check_entries(topic, given[:INDEX_ENTRIES], config)
        rows.append(_topic_row(topic, counts.get(topic.id, len(given)),
                               health.get(topic.id) or tuple(_waiting(s.url) for s in topic.sources),
                               " · ".join(links)))
        page = page_url(topic, config)
        page_html = (f' · <a href="{_e(page)}">source page</a>' if _http_url(page) else "")
        items = [_entry_item(c) for c in checked]
        body = "<ol>\n" + "\n".join(items) + "\n</ol>" if items else '<p class="meta">No entries yet.</p>'
        sections.append(f'<section class="topic" id="topic-{_e(topic.id)}">\n<h2>{_e(topic.title)}</h2>\n'
                        f'<p class="feeds">Subscribe: {" · ".join(links)}{page_html}</p>\n{body}\n</section>')
    table = ["<table>",
             "<thead><tr><th>Topic</th><th>Entries</th><th>Last refresh</th><th>Schedule</th><th>Sources</th>"
             "<th>Subscribe</th></tr></thead>",
             "<tbody>", *rows, "</tbody>", "</table>"] if rows else []
    doc = "\n".join([
        "<!DOCTYPE html>",
        f'<html lang="{_e(lang)}">' if lang else "<html>",
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>Feeds</title>",
        *head_links,
        f'<link rel="alternate" type="text/x-opml" title="All feeds (OPML)" href="{_e(_href(config, "index.opml"))}">',
        f"<style>{_STYLE}</style>",
        "</head>",
        "<body>",
        "<h1>Feeds</h1>",
        (f'<p class="meta">{len(config.topics)} topic(s). Import them all at once: '
         f'<a href="{_e(_href(config, "index.opml"))}">index.opml</a>.</p>'),
        *table,
        *sections,
        f'<p class="meta">Made by <a href="{_e(PROJECT_URL)}">feedsvc</a> {_e(__version__)}.</p>',
        "</body>",
        "</html>",
        "",
    ])
    return doc.encode("utf-8")
