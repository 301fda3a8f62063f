"""publish: Atom / RSS / JSON Feed rendering, read back with real parsers; atomic, change-only writes.

The builders at the top (make_config, make_entry, …) are imported by the other publish tests.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import uuid
import xml.etree.ElementTree as ET
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import feedparser
import pytest
from atomcheck import assert_valid_atom
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feedsvc import __version__, publish
from feedsvc.config import Config, config_from_dict
from feedsvc.errors import PublishError
from feedsvc.model import Entry, SourceState

T0 = datetime(2026, 1, 15, 9, 30, tzinfo=UTC)
PAGE = "https://www.example.jp/topics/peace-talks"
ATOM_NS = {"a": "http://www.w3.org/2005/Atom", "media": "http://search.yahoo.com/mrss/"}
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


# --------------------------------------------------------------------------- builders


def make_config(tmp_path: Path, *, topics: list[dict[str, Any]] | None = None, **feedsvc: Any) -> Config:
    raw = {
        "feedsvc": {"output_dir": str(tmp_path / "feeds"), "state": str(tmp_path / "state.sqlite"), **feedsvc},
        "topics": topics if topics is not None else [
            {"id": "peace-talks", "title": "和平交渉", "language": "ja", "sources": [{"url": PAGE}]}],
    }
    return config_from_dict(raw, tmp_path / "config.toml")


def entry_id(n: int) -> str:
    return uuid.uuid5(uuid.NAMESPACE_URL, f"https://www.example.jp/news/{n}").urn


def make_entry(n: int, **over: Any) -> Entry:
    """Entry n: older for larger n, as the store hands them out (newest first)."""
    first_seen = T0 - timedelta(hours=n)
    fields: dict[str, Any] = {
        "id": entry_id(n), "title": f"Story {n}: talks resume", "title_is_derived": False,
        "link": f"https://www.example.jp/news/{n}", "summary": f"Summary of story {n}.", "summary_html": None,
        "published": first_seen - timedelta(minutes=30), "published_from": "markup", "image": None,
        "source_url": PAGE, "position": n, "first_seen_at": first_seen, "last_seen_at": T0,
        "updated_at": first_seen, "topics": ("peace-talks",),
    }
    return Entry(**(fields | over))


def make_entries(count: int) -> list[Entry]:
    return [make_entry(n) for n in range(count)]


def parse_atom(data: bytes) -> ET.Element:
    return ET.fromstring(data)


# --------------------------------------------------------------------------- Atom


@pytest.mark.parametrize("settings_", [
    pytest.param({}, id="no-base-url"),
    pytest.param({"base_url": "https://feeds.example.org/sub"}, id="base-url"),
    pytest.param({"base_url": "https://feeds.example.org/", "websub_hub": "https://hub.example.org/"}, id="hub"),
])
def test_atom_is_valid_and_reads_back(tmp_path: Path, settings_: dict[str, Any]) -> None:
    config = make_config(tmp_path, **settings_)
    topic = config.topics[0]
    entries = make_entries(4)
    entries[1] = make_entry(1, image="https://img.example.jp/1.jpg",
                            summary_html="<p>Talks <b>resume</b> in Geneva</p>")
    entries[2] = make_entry(2, published=None, published_from=None)
    data = publish.render_feed(topic, entries, config, "atom")
    assert data.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
    assert_valid_atom(data)

    parsed = feedparser.parse(data)
    assert parsed.bozo == 0 and parsed.version == "atom10"
    feed = parsed.feed
    assert feed.title == "和平交渉"
    assert feed.subtitle
    assert feed.language == "ja"
    assert feed.generator_detail.name == "feedsvc" and feed.generator_detail.version == __version__
    assert {ln.rel: ln.href for ln in feed.links}["alternate"] == PAGE
    # the newest entry's updated_at, never "now"
    assert feed.updated == max(e.updated_at for e in entries).isoformat()
    base = config.base_url
    if base:
        assert feed.id == base + "peace-talks.atom"
        assert {ln.rel: ln.href for ln in feed.links}["self"] == base + "peace-talks.atom"
    else:
        assert feed.id == uuid.uuid5(publish.FEED_ID_NAMESPACE, "peace-talks").urn
        assert "self" not in {ln.rel for ln in feed.links}
    hub = [ln.href for ln in feed.links if ln.rel == "hub"]
    assert hub == ([config.websub_hub] if config.websub_hub else [])

    assert [e.id for e in parsed.entries] == [e.id for e in entries]  # order kept: newest first
    for got, want in zip(parsed.entries, entries):
        assert got.title == want.title
        assert got.link == want.link
        assert got.links[0].rel == "alternate"
        assert got.author == "example.jp"
        assert [t.term for t in got.tags] == ["peace-talks"]
        assert got.updated == want.updated_at.isoformat()
        if want.published:
            assert got.published == want.published.isoformat()
        else:
            assert "published" not in got
    assert parsed.entries[0].summary == "Summary of story 0."
    assert parsed.entries[0].summary_detail.type == "text/plain"
    assert parsed.entries[1].summary_detail.type == "text/html"
    assert parsed.entries[1].summary == "<p>Talks <b>resume</b> in Geneva</p>"
    assert parsed.entries[1].media_thumbnail == [{"url": "https://img.example.jp/1.jpg"}]


def test_atom_dates_are_rfc3339_utc_whatever_the_input_zone(tmp_path: Path) -> None:
    from zoneinfo import ZoneInfo

    config = make_config(tmp_path)
    tokyo = datetime(2026, 1, 16, 18, 0, 0, 123456, tzinfo=ZoneInfo("Asia/Tokyo"))
    entry = make_entry(0, published=tokyo, updated_at=tokyo, first_seen_at=tokyo)
    root = parse_atom(publish.render_feed(config.topics[0], [entry], config))
    dates = [el.text for el in root.iter() if el.tag.endswith(("}updated", "}published"))]
    assert dates == ["2026-01-16T09:00:00+00:00"] * 3


def test_same_state_gives_same_bytes_and_empty_feed_uses_the_epoch(tmp_path: Path) -> None:
    config = make_config(tmp_path, formats=["atom", "rss", "json"])
    topic = config.topics[0]
    for fmt in topic.formats:
        assert publish.render_feed(topic, make_entries(5), config, fmt) == \
            publish.render_feed(topic, make_entries(5), config, fmt)
    empty = publish.render_feed(topic, [], config)
    assert_valid_atom(empty)
    assert feedparser.parse(empty).feed.updated == "1970-01-01T00:00:00+00:00"
    assert empty == publish.render_feed(topic, [], config)


def test_feed_id_is_stable_across_configs(tmp_path: Path) -> None:
    a = make_config(tmp_path / "a")
    b = make_config(tmp_path / "b", max_entries=5)
    ida = feedparser.parse(publish.render_feed(a.topics[0], [], a)).feed.id
    idb = feedparser.parse(publish.render_feed(b.topics[0], make_entries(2), b)).feed.id
    assert ida == idb and ida.startswith("urn:uuid:")


def test_order_is_the_stores_not_the_dates(tmp_path: Path) -> None:
    """feedgen prepends by default; the store's order (newest first by its own rule) must survive."""
    config = make_config(tmp_path, formats=["atom", "rss", "json"])
    entries = [make_entry(3), make_entry(0), make_entry(7), make_entry(1)]
    want = [e.id for e in entries]
    for fmt in ("atom", "rss"):
        got = [e.id for e in feedparser.parse(publish.render_feed(config.topics[0], entries, config, fmt)).entries]
        assert got == want, fmt
    doc = json.loads(publish.render_feed(config.topics[0], entries, config, "json"))
    assert [i["id"] for i in doc["items"]] == want


def test_duplicate_ids_are_published_once(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    entries = [make_entry(0), make_entry(1), make_entry(0, title="a later copy")]
    data = publish.render_feed(config.topics[0], entries, config)
    assert_valid_atom(data)
    assert [e.title for e in feedparser.parse(data).entries] == ["Story 0: talks resume", "Story 1: talks resume"]


def test_file_source_entries_carry_content_and_no_local_path(tmp_path: Path) -> None:
    """A text page read from disk: no article links. The entry keeps Atom valid with content, and the
    author is the topic title (there is no site), and no file: path leaks into the entries."""
    page = tmp_path / "topic.txt"
    page.write_text("x\n", encoding="utf-8")
    config = make_config(tmp_path, topics=[{"id": "local", "title": "Local topic",
                                            "sources": [{"url": str(page)}]}])
    topic = config.topics[0]
    entries = [make_entry(n, link=None, source_url=page.as_uri()) for n in range(3)]
    data = publish.render_feed(topic, entries, config)
    assert_valid_atom(data)
    parsed = feedparser.parse(data)
    for got, want in zip(parsed.entries, entries):
        assert got.author == "Local topic"
        assert got.content[0].value == want.summary
        assert "links" not in dict(got)
    for entry in parse_atom(data).findall("a:entry", ATOM_NS):
        assert b"file:" not in ET.tostring(entry)


# --------------------------------------------------------------------------- hostile text


HOSTILE = [
    pytest.param("<script>alert(1)</script>Peace", id="script-tag"),
    pytest.param("Talks\x00\x01\x02\x03\x04\x05\x06\x07\x08 resume", id="c0-controls"),
    pytest.param("vertical\x0btab\x0cform feed", id="vt-ff"),
    pytest.param("non\ufffecharacter\uffff", id="fffe-ffff"),
    pytest.param("ends ]]> a CDATA section", id="cdata-end"),
    pytest.param("a & b < c > d \" e ' f", id="markup-chars"),
    pytest.param("<img src=x onerror=alert(1)>", id="img-onerror"),
]


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_text_never_reaches_an_output(tmp_path: Path, text: str) -> None:
    config = make_config(tmp_path, formats=["atom", "rss", "json"])
    topic = config.topics[0]
    entry = make_entry(0, title=text, summary=text, link="javascript:alert(1)", image="javascript:alert(2)",
                       summary_html=f"<p>{text}</p><script>alert(3)</script>")
    clean = publish.xml_safe(text)
    assert not re.search("[\x00-\x08\x0b\x0c\ufffe\uffff]", clean)
    outputs = {fmt: publish.render_feed(topic, [entry], config, fmt) for fmt in topic.formats}
    outputs["html"] = publish.render_index_html(config, {topic.id: [entry]})
    for name, data in outputs.items():
        text_out = data.decode("utf-8")
        assert "javascript:" not in text_out, name
        assert not re.search("[\x00-\x08\x0b\x0c\ufffe\uffff]", text_out), name
        if name != "json":  # XML and HTML: markup only ever appears escaped
            assert "<script" not in text_out.lower() and "<img" not in text_out.lower(), name
    assert_valid_atom(outputs["atom"])
    atom = feedparser.parse(outputs["atom"]).entries[0]
    assert atom.title == " ".join(clean.split())  # title is text: HTML in it stays text
    assert atom.link == PAGE  # the javascript: link fell back to the source page
    assert atom.summary_detail.type == "text/plain"  # active summary_html dropped for the plain text
    assert "media_thumbnail" not in atom
    rss = feedparser.parse(outputs["rss"])
    assert rss.bozo == 0 and rss.entries[0].link == PAGE
    doc = json.loads(outputs["json"])
    assert "content_html" not in doc["items"][0] and "image" not in doc["items"][0]
    assert doc["items"][0]["title"] == " ".join(clean.split())


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(title=st.text(min_size=1, max_size=40), summary=st.text(max_size=80))
def test_any_text_gives_valid_atom(tmp_path: Path, title: str, summary: str) -> None:
    config = make_config(tmp_path)
    data = publish.render_feed(config.topics[0], [make_entry(0, title=title, summary=summary)], config)
    assert_valid_atom(data)
    # read the title with a strict XML parser: feedparser "repairs" text that looks like mojibake ('Â¡' -> '¡')
    got = parse_atom(data).find("a:entry/a:title", ATOM_NS)
    assert got is not None and got.text == (" ".join(publish.xml_safe(title).split()) or "(untitled)")


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize("topic_id", [
    pytest.param("../x", id="dotdot"), pytest.param("a/b", id="slash"), pytest.param("/etc/passwd", id="absolute"),
    pytest.param("..", id="dotdot-only"), pytest.param("", id="empty"), pytest.param("x\x00", id="nul"),
    pytest.param("Peace", id="uppercase"), pytest.param("a\\b", id="backslash"),
])
def test_feed_path_refuses_ids_that_escape_output_dir(tmp_path: Path, topic_id: str) -> None:
    config = make_config(tmp_path)
    with pytest.raises(PublishError, match="topic"):
        publish.feed_path(config, topic_id)
    topic = replace(config.topics[0], id=topic_id)  # past config validation, straight to publish
    with pytest.raises(PublishError):
        publish.write_feeds(topic, make_entries(1), config)
    assert not any(tmp_path.parent.glob("x*")) and not (tmp_path / "x.atom").exists()


@pytest.mark.parametrize("fmt,suffix", [("atom", ".atom"), ("rss", ".rss"), ("json", ".json")])
def test_feed_path_names(tmp_path: Path, fmt: str, suffix: str) -> None:
    config = make_config(tmp_path)
    assert publish.feed_path(config, "peace-talks", fmt) == (tmp_path / "feeds" / f"peace-talks{suffix}").resolve()


def test_unknown_format_is_a_publish_error(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    with pytest.raises(PublishError, match="format 'xml'"):
        publish.feed_path(config, "peace-talks", "xml")
    with pytest.raises(PublishError, match="format 'xml'"):
        publish.render_feed(config.topics[0], [], config, "xml")


@pytest.mark.parametrize("entry,topic_over,match", [
    pytest.param(make_entry(0, updated_at=datetime(2026, 1, 1)), {}, r"'peace-talks'.*updated_at.*naive",
                 id="naive-updated"),
    pytest.param(make_entry(0, published=datetime(2026, 1, 1)), {}, r"'peace-talks'.*published.*naive",
                 id="naive-published"),
    pytest.param(make_entry(0, id="not a uri"), {}, r"'peace-talks'.*entry id 'not a uri'", id="relative-id"),
    pytest.param(make_entry(0), {"language": "Japanese language"}, r"'peace-talks'.*language", id="bad-language"),
])
def test_bad_values_are_publish_errors_naming_topic_and_field(tmp_path: Path, entry: Entry,
                                                              topic_over: dict[str, Any], match: str) -> None:
    config = make_config(tmp_path, formats=["atom", "rss", "json"])
    topic = replace(config.topics[0], **topic_over)
    for fmt in topic.formats:
        with pytest.raises(PublishError, match=match):
            publish.render_feed(topic, [entry], config, fmt)


def test_feedgen_late_value_error_becomes_publish_error(tmp_path: Path) -> None:
    """feedgen only complains at serialization (here: an RSS channel without a title)."""
    config = make_config(tmp_path)
    topic = replace(config.topics[0], title="\x00\x01")  # nothing left after the XML-safety pass
    with pytest.raises(PublishError, match=r"topic 'peace-talks'.*rss.*title"):
        publish.render_feed(topic, [], config, "rss")


# --------------------------------------------------------------------------- RSS and JSON Feed


def test_rss_reads_back_with_the_same_entries_and_ids(tmp_path: Path) -> None:
    config = make_config(tmp_path, base_url="https://feeds.example.org/", websub_hub="https://hub.example.org/",
                         formats=["rss"])
    entries = make_entries(3)
    entries[1] = make_entry(1, published=None, image="https://img.example.jp/1.jpg")
    data = publish.render_feed(config.topics[0], entries, config, "rss")
    parsed = feedparser.parse(data)
    assert parsed.bozo == 0 and parsed.version == "rss20"
    assert parsed.feed.title == "和平交渉" and parsed.feed.link == PAGE and parsed.feed.language == "ja"
    links = {ln.rel: ln.href for ln in parsed.feed.links if "rel" in ln}
    assert links["self"] == "https://feeds.example.org/peace-talks.rss"
    assert links["hub"] == "https://hub.example.org/"
    assert [e.id for e in parsed.entries] == [e.id for e in entries]
    assert [e.link for e in parsed.entries] == [e.link for e in entries]
    assert all(e.guidislink is False for e in parsed.entries)
    assert [e.summary for e in parsed.entries] == [e.summary for e in entries]
    assert parsed.entries[1].media_thumbnail == [{"url": "https://img.example.jp/1.jpg"}]
    # pubDate = the date the reader sees: published, else first seen
    got = [datetime(*e.published_parsed[:6], tzinfo=UTC) for e in parsed.entries]
    assert got == [e.date.replace(microsecond=0) for e in entries]
    assert parsed.entries[0].author == "example.jp"


def test_json_feed_has_the_spec_required_fields(tmp_path: Path) -> None:
    config = make_config(tmp_path, base_url="https://feeds.example.org/", websub_hub="https://hub.example.org/",
                         formats=["json"])
    entries = make_entries(3)
    entries[0] = make_entry(0, summary_html="<p>rich</p>", image="https://img.example.jp/0.jpg")
    data = publish.render_feed(config.topics[0], entries, config, "json")
    doc = json.loads(data)
    assert doc["version"] == "https://jsonfeed.org/version/1.1"
    assert isinstance(doc["title"], str) and doc["title"]
    assert doc["home_page_url"] == PAGE and doc["feed_url"] == "https://feeds.example.org/peace-talks.json"
    assert doc["hubs"] == [{"type": "WebSub", "url": "https://hub.example.org/"}]
    assert isinstance(doc["items"], list)
    assert [i["id"] for i in doc["items"]] == [e.id for e in entries]
    for item in doc["items"]:
        assert isinstance(item["id"], str) and item["id"]
        assert ("content_html" in item) or ("content_text" in item)
        for key in ("date_published", "date_modified"):
            assert RFC3339.match(item[key]), item[key]
        assert item["tags"] == ["peace-talks"] and item["authors"] == [{"name": "example.jp"}]
    assert doc["items"][0]["content_html"] == "<p>rich</p>" and doc["items"][0]["image"].endswith("0.jpg")
    assert doc["items"][1]["content_text"] == "Summary of story 1."
    assert "null" not in data.decode()  # absent, not null
    assert data == (json.dumps(doc, sort_keys=True, ensure_ascii=False, indent=2) + "\n").encode()
    assert "和平交渉".encode() in data  # ensure_ascii=False


# --------------------------------------------------------------------------- writing


def test_write_feeds_writes_only_what_changed(tmp_path: Path) -> None:
    config = make_config(tmp_path, formats=["atom", "rss", "json"])
    topic = config.topics[0]
    written = publish.write_feeds(topic, make_entries(3), config)
    assert [p.name for p in written] == ["peace-talks.atom", "peace-talks.rss", "peace-talks.json"]
    for path in written:
        os.utime(path, ns=(1_000_000_000_000_000_000, 1_000_000_000_000_000_000))  # a recognisable mtime
        assert oct(path.stat().st_mode & 0o777) == "0o644"
    assert publish.write_feeds(topic, make_entries(3), config) == []
    assert all(p.stat().st_mtime_ns == 1_000_000_000_000_000_000 for p in written)
    changed = [make_entry(0, title="Story 0: talks resume, ceasefire agreed", updated_at=T0 + timedelta(hours=1))]
    assert publish.write_feeds(topic, changed + make_entries(3)[1:], config) == written
    assert feedparser.parse(written[0].read_bytes()).entries[0].title.endswith("ceasefire agreed")
    assert sorted(p.name for p in written[0].parent.iterdir()) == sorted(p.name for p in written)  # no temp left


def test_write_atomic_returns_false_and_keeps_mtime_for_same_bytes(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "f.atom"
    assert publish.write_atomic(path, b"one") is True
    os.utime(path, (1000, 1000))
    assert publish.write_atomic(path, b"one") is False
    assert path.stat().st_mtime == 1000
    assert publish.write_atomic(path, b"two") is True and path.read_bytes() == b"two"


def test_render_error_leaves_every_old_file_intact(tmp_path: Path) -> None:
    config = make_config(tmp_path, formats=["atom", "rss", "json"])
    topic = config.topics[0]
    written = publish.write_feeds(topic, make_entries(2), config)
    before = {p: p.read_bytes() for p in written}
    broken = make_entries(2) + [make_entry(9, updated_at=datetime(2026, 1, 1))]  # naive: fails to render
    with pytest.raises(PublishError):
        publish.write_feeds(topic, broken, config)
    assert {p: p.read_bytes() for p in written} == before
    assert sorted(written[0].parent.iterdir()) == sorted(written)


def test_failed_replace_keeps_old_file_and_removes_temp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "t.atom"
    publish.write_atomic(path, b"old feed")

    def refuse(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(publish.os, "replace", refuse)
    with pytest.raises(PublishError, match=r"t\.atom.*No space left"):
        publish.write_atomic(path, b"new feed that will not land")
    assert path.read_bytes() == b"old feed"
    assert [p.name for p in tmp_path.iterdir()] == ["t.atom"]


def test_process_killed_mid_write_leaves_the_old_feed_whole(tmp_path: Path) -> None:
    """A real crash: a child process is SIGKILLed after writing the temp file, before the rename."""
    path = tmp_path / "feed.atom"
    path.write_bytes(b"<feed>old and complete</feed>")
    child = textwrap.dedent(f"""
        import os, sys, time
        from pathlib import Path
        from feedsvc import publish
        real_fsync = os.fsync
        def stall(fd):
            real_fsync(fd)
            print("in-fsync", flush=True)
            time.sleep(60)
        os.fsync = stall
        publish.write_atomic(Path({str(path)!r}), b"<feed>new " + b"x" * 1_000_000 + b"</feed>")
    """)
    proc = subprocess.Popen([sys.executable, "-c", child], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "in-fsync"
    finally:
        proc.kill()
        proc.wait(timeout=10)
    assert path.read_bytes() == b"<feed>old and complete</feed>"
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "feed.atom"]
    assert all(n.startswith(".feed.atom.") and n.endswith(".tmp") for n in leftovers)  # hidden, never served


# --------------------------------------------------------------------------- indexes


def two_topic_config(tmp_path: Path, **feedsvc: Any) -> Config:
    return make_config(tmp_path, **feedsvc, topics=[
        {"id": "peace-talks", "title": "和平交渉", "language": "ja", "sources": [{"url": PAGE}],
         "formats": ["atom", "rss"]},
        {"id": "rates", "title": "Rates & <Markets>", "subtitle": "Central banks",
         "sources": [{"url": "https://news.example.com/rates"}]},
    ])


@pytest.mark.parametrize("base_url,prefix", [
    pytest.param(None, "", id="relative"),
    pytest.param("https://feeds.example.org/x/", "https://feeds.example.org/x/", id="base-url"),
])
def test_opml_lists_every_topic(tmp_path: Path, base_url: str | None, prefix: str) -> None:
    config = two_topic_config(tmp_path, **({"base_url": base_url} if base_url else {}))
    written = publish.write_indexes(config, {})
    assert [p.name for p in written] == ["index.opml", "index.html"]
    root = ET.fromstring((tmp_path / "feeds" / "index.opml").read_bytes())
    assert root.tag == "opml" and root.get("version") == "2.0"
    assert root.find("head/title") is not None
    outlines = root.findall("body/outline")
    assert [(o.get("text"), o.get("xmlUrl"), o.get("htmlUrl")) for o in outlines] == [
        ("和平交渉", prefix + "peace-talks.atom", PAGE),
        ("Rates & <Markets>", prefix + "rates.atom", "https://news.example.com/rates"),
    ]
    assert publish.write_indexes(config, {}) == []


class _Page(HTMLParser):
    """Collects what a reader of index.html gets: alternate links, scripts, entry links, text."""

    def __init__(self) -> None:
        super().__init__()
        self.alternates: list[dict[str, str | None]] = []
        self.tags: list[str] = []
        self.hrefs: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        a = dict(attrs)
        if tag == "link" and a.get("rel") == "alternate":
            self.alternates.append(a)
        if tag == "a":
            self.hrefs.append(a.get("href") or "")

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_index_html_lists_topics_latest_entries_and_autodiscovery(tmp_path: Path) -> None:
    config = two_topic_config(tmp_path)
    entries = {"peace-talks": make_entries(14), "rates": [make_entry(0, title="Rates <b>up</b> & away",
                                                                      link="https://news.example.com/r/1")]}
    publish.write_indexes(config, entries)
    page = _Page()
    page.feed((tmp_path / "feeds" / "index.html").read_text(encoding="utf-8"))
    atom_links = [(a["title"], a["href"]) for a in page.alternates if a["type"] == "application/atom+xml"]
    assert atom_links == [("和平交渉", "peace-talks.atom"), ("Rates & <Markets>", "rates.atom")]
    assert any(a["type"] == "application/rss+xml" and a["href"] == "peace-talks.rss" for a in page.alternates)
    text = "".join(page.text)
    assert "Rates & <Markets>" in text and "Rates <b>up</b> & away" in text  # escaped, so read back as text
    assert "b" not in page.tags and "script" not in page.tags
    shown = [h for h in page.hrefs if h.startswith("https://www.example.jp/news/")]
    assert shown == [f"https://www.example.jp/news/{n}" for n in range(publish.INDEX_ENTRIES)]
    assert not re.search(r"(src|href)=\"(https?:)?//(?!www\.example\.jp|news\.example\.com|github\.com)",
                         (tmp_path / "feeds" / "index.html").read_text())  # no external resources


def test_indexes_are_written_only_when_changed(tmp_path: Path) -> None:
    config = two_topic_config(tmp_path)
    assert len(publish.write_indexes(config, {"rates": make_entries(2)})) == 2
    assert publish.write_indexes(config, {"rates": make_entries(2)}) == []
    assert [p.name for p in publish.write_indexes(config, {"rates": make_entries(3)})] == ["index.html"]


# --------------------------------------------------------------------------- index.html: the operator's table

AS_OF = T0 + timedelta(hours=3)  # the state's newest time: the last refresh
SRC_A, SRC_B = "https://a.example.com/list", "https://b.example.com/list"
B_OK = SourceState(SRC_B, last_success_at=AS_OF, last_item_count=5)


def health_config(tmp_path: Path) -> Config:
    return make_config(tmp_path, topics=[
        {"id": "peace-talks", "title": "和平交渉", "language": "ja", "sources": [{"url": PAGE}], "interval": "30m",
         "formats": ["atom", "rss"]},
        {"id": "rates", "title": "Rates & <Markets>", "cron": "0 6 * * *", "timezone": "Asia/Tokyo",
         "sources": [{"url": SRC_A}, {"url": SRC_B}]},
    ])


HEALTH = [
    pytest.param(SourceState(SRC_A, last_success_at=AS_OF, last_item_count=12), "ok", "12 items", id="ok"),
    pytest.param(SourceState(SRC_A, last_success_at=AS_OF, last_item_count=3, usual_item_count=12, degraded_runs=2),
                 "degraded", "3 items where it usually lists 12", id="degraded"),
    pytest.param(SourceState(SRC_A, last_success_at=T0, last_failure_at=AS_OF, last_error="http: 503 Unavailable",
                             consecutive_failures=2, next_try_at=AS_OF + timedelta(minutes=10)),
                 "backed-off", "until 2026-01-15 12:40 UTC after 2 failures in a row; "
                 "last ok 2026-01-15 09:30 UTC: http: 503 Unavailable", id="backed-off"),
    pytest.param(SourceState(SRC_A, last_failure_at=AS_OF - timedelta(hours=1), last_error="network: timed out",
                             consecutive_failures=1, next_try_at=AS_OF - timedelta(minutes=55)),
                 "failing", "1 failure in a row; never read: network: timed out", id="failing-retry-due"),
    pytest.param(None, "waiting", "not fetched yet", id="never-fetched"),
]


class _Table(HTMLParser):
    """index.html's table of topics as a reader sees it: per row, each cell's text and links, by label."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[dict[str, Any]] = []
        self.ids: list[str] = []
        self._cell: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("id"):
            self.ids.append(a["id"] or "")
        if tag == "tr" and "topic-row" in (a.get("class") or ""):
            self.rows.append({"class": a.get("class"), "links": []})
        elif tag == "td" and self.rows:
            self._cell = a.get("data-label")
            self.rows[-1][self._cell] = ""
        elif tag == "a" and self._cell:
            self.rows[-1]["links"].append((self._cell, a.get("href")))
        elif tag == "span" and self._cell and (a.get("class") or "").startswith("h h-"):
            self.rows[-1].setdefault("badges", []).append((a.get("class") or "")[4:])

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "tr"):
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell:
            self.rows[-1][self._cell] += data


def table_of(data: bytes) -> _Table:
    table = _Table()
    table.feed(data.decode("utf-8"))
    return table


@pytest.mark.parametrize("state,kind,detail", HEALTH)
def test_index_shows_each_sources_health(tmp_path: Path, state: SourceState | None, kind: str, detail: str) -> None:
    config = health_config(tmp_path)
    health = publish.index_health(config, {SRC_B: B_OK} | ({SRC_A: state} if state else {}))
    assert [(h.url, h.kind, h.detail) for h in health["rates"]] == [(SRC_A, kind, detail), (SRC_B, "ok", "5 items")]
    row = table_of(publish.render_index_html(config, {}, health)).rows[1]
    assert row["badges"] == [kind, "ok"]
    assert f"health-{kind}" in row["class"].split()  # the topic shows its worst source
    why = f" {detail}" if kind != "ok" else ""
    assert row["Sources"] == f"{kind.replace('-', ' ')} a.example.com{why}ok b.example.com"


def test_index_table_lists_every_topic_with_counts_times_schedule_and_feeds(tmp_path: Path) -> None:
    config = health_config(tmp_path)
    states = {PAGE: SourceState(PAGE, last_success_at=AS_OF + timedelta(seconds=42), last_item_count=14),
              SRC_A: SourceState(SRC_A, last_success_at=T0), SRC_B: B_OK}
    data = publish.render_index_html(config, {"peace-talks": make_entries(14), "rates": []},
                                     publish.index_health(config, states), {"peace-talks": 37})
    table = table_of(data)
    assert [(r["Topic"], r["Entries"], r["Last refresh"], r["Schedule"]) for r in table.rows] == [
        ("和平交渉", "37", "2026-01-15 12:30 UTC", "every 30m"),
        ("Rates & <Markets>", "0", "2026-01-15 12:30 UTC", "cron 0 6 * * * (Asia/Tokyo)"),  # its newest source
    ]
    assert table.rows[0]["links"] == [("Topic", "#topic-peace-talks"), ("Subscribe", "peace-talks.atom"),
                                      ("Subscribe", "peace-talks.rss")]
    assert table.rows[1]["links"] == [("Topic", "#topic-rates"), ("Subscribe", "rates.atom")]
    assert {"topic-peace-talks", "topic-rates"} <= set(table.ids)  # the table's links land on the sections
    assert b'<time datetime="2026-01-15T12:30:00+00:00">' in data
    assert data.index(b"<table>") < data.index(b'<section class="topic"')  # the table comes first
    config_b = health_config(tmp_path / "b")
    assert table_of(publish.render_index_html(config_b, {"rates": make_entries(2)})).rows[1]["Entries"] == "2"


def test_index_shows_entry_pictures_from_http_only(tmp_path: Path) -> None:
    config = make_config(tmp_path)
    entries = [make_entry(0, image="https://img.example.jp/0.jpg?w=1&h=2"), make_entry(1, image="javascript:alert(1)"),
               make_entry(2)]
    page = _Page()
    data = publish.render_index_html(config, {"peace-talks": entries})
    page.feed(data.decode("utf-8"))
    assert page.tags.count("img") == 1
    assert b'<img src="https://img.example.jp/0.jpg?w=1&amp;h=2" alt="" loading="lazy" referrerpolicy="no-referrer"' \
        in data  # no referrer: the picture's site does not learn where the index is


def test_index_health_text_from_the_network_stays_text(tmp_path: Path) -> None:
    config = health_config(tmp_path)
    evil = SourceState(SRC_A, last_failure_at=AS_OF, consecutive_failures=1, next_try_at=AS_OF,
                       last_error='http: 500 <script>alert(1)</script> "quoted" \x00\x0b')
    data = publish.render_index_html(config, {}, publish.index_health(config, {SRC_A: evil}))
    text = data.decode("utf-8")
    assert "<script" not in text and "\x00" not in text and "\x0b" not in text
    assert 'http: 500 <script>alert(1)</script> "quoted"' in table_of(data).rows[1]["Sources"]


def test_index_is_rerendered_when_the_health_it_shows_changes_and_only_then(tmp_path: Path) -> None:
    from feedsvc import pipeline
    from feedsvc.store import Store

    config = health_config(tmp_path)
    index = config.output_dir / "index.html"
    with Store.open(config.state) as store:
        for state in (SourceState(PAGE, last_success_at=AS_OF), SourceState(SRC_A, last_success_at=AS_OF), B_OK):
            store.save_source_state(state)
        assert [p.name for p in pipeline.publish_indexes(config, store)] == ["index.opml", "index.html"]
        first = index.read_bytes()
        assert pipeline.publish_indexes(config, store) == []
        store.save_source_state(SourceState(SRC_A, last_success_at=AS_OF + timedelta(seconds=30)))
        assert pipeline.publish_indexes(config, store) == []  # the same minute: the page would not change
        failed = SourceState(SRC_A, last_success_at=AS_OF, last_failure_at=AS_OF + timedelta(minutes=5),
                             last_error="http: 404", consecutive_failures=1, next_try_at=AS_OF + timedelta(minutes=10))
        store.save_source_state(failed)
        assert [p.name for p in pipeline.publish_indexes(config, store)] == ["index.html"]
        assert table_of(index.read_bytes()).rows[1]["badges"] == ["backed-off", "ok"]
        second = index.read_bytes()
        index.unlink()  # rendered again from the same state: the same bytes (no clock in the page)
        assert [p.name for p in pipeline.publish_indexes(config, store)] == ["index.html"]
        assert index.read_bytes() == second != first
