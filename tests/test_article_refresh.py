"""Article pages through a real refresh (issue 22): a listing and its articles served over loopback HTTP,
the feed read back with feedparser. Each article page is read once, politely and within bounds."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import feedparser
import pytest

from feedsvc import pipeline
from feedsvc.config import load_config
from feedsvc.errors import ConfigError

NOW = datetime(2026, 1, 20, 3, 0, tzinfo=UTC)
HTML = {"Content-Type": "text/html; charset=utf-8"}

# (path, listing date as the listing writes it, the article's datePublished)
STORIES = [
    ("/a/1", "12月25日", "2025-12-25T14:03:00+09:00"),  # day-only listing date: the article's time wins
    ("/a/2", "", "2025-12-24T09:30:00+09:00"),  # no listing date: the article's
    ("/a/3", "12月23日 18:00", "2025-12-22T08:00:00+09:00"),  # the article disagrees on the day: the listing's
    ("/a/4", "", "2025-12-21T07:00:00+09:00"),
    ("/a/5", "", "2025-12-20T07:00:00+09:00"),
]


def listing(stories=STORIES) -> str:
    rows = "".join(f'<li><a href="{p}">和平協議の記事 その{p[-1]}について</a> <span class="date">{d}</span>'
                   f"<p>一覧の要約 {p[-1]}: 協議は続いている。</p></li>" for p, d, _ in stories)
    return f'<html><body><ul class="news">{rows}</ul></body></html>'


def article(path: str, published: str) -> str:
    n = path[-1]
    ld = json.dumps({"@context": "https://schema.org", "@type": "NewsArticle", "headline": f"記事 {n}",
                     "datePublished": published, "image": f"/img/{n}.jpg"})
    return (f'<html><head><script type="application/ld+json">{ld}</script></head><body><article>'
            f"<h1>記事 {n}</h1><p>本文 {n} の一段落目。仲介国の外相は、停戦協議が最終局面に入ったと述べた。</p>"
            f"<p>本文 {n} の二段落目。両国の代表団は来週も協議を続ける予定だという。</p></article></body></html>")


def serve(http_server, stories=STORIES) -> str:
    for p, _, published in stories:
        http_server.route(p, article(p, published), headers=HTML)
    return http_server.route("/news", listing(stories), headers=HTML)


def config(tmp_path: Path, url: str, *, mode: str = "full", extra: str = "", source_extra: str = ""):
    path = tmp_path / "config.toml"
    path.write_text(f"""
[feedsvc]
host_delay = "0s"
timeout = "2s"
{extra}

[[topics]]
id = "talks"
title = "和平交渉"
language = "ja"
timezone = "Asia/Tokyo"
article = "{mode}"

[[topics.sources]]
url = "{url}"
item = "ul.news li"
title = "a"
link = "a@href"
date = "span.date"
summary = "p"
{source_extra}
""", encoding="utf-8")
    return load_config(path)


def feed(cfg) -> feedparser.FeedParserDict:
    parsed = feedparser.parse((cfg.output_dir / "talks.atom").read_bytes())
    assert not parsed.bozo, parsed.bozo_exception
    return parsed


def by_path(parsed) -> dict:
    return {e.link.split("://", 1)[1].split("/", 1)[1]: e for e in parsed.entries}


def article_hits(http_server) -> dict[str, int]:
    return {p: len(http_server.hits_for(p)) for p, _, _ in STORIES}


def test_full_mode_dates_images_text_and_each_page_read_once(http_server, tmp_path):
    cfg = config(tmp_path, serve(http_server))
    pipeline.refresh(cfg, now=NOW)
    entries = by_path(feed(cfg))
    assert datetime(*entries["a/1"].published_parsed[:6], tzinfo=UTC) == datetime(2025, 12, 25, 5, 3, tzinfo=UTC)
    assert datetime(*entries["a/2"].published_parsed[:6], tzinfo=UTC) == datetime(2025, 12, 24, 0, 30, tzinfo=UTC)
    assert datetime(*entries["a/3"].published_parsed[:6], tzinfo=UTC) == datetime(2025, 12, 23, 9, 0, tzinfo=UTC)
    for p, e in entries.items():
        n = p[-1]
        assert e.media_thumbnail[0]["url"] == f"{http_server.base}/img/{n}.jpg"
        assert f"本文 {n} の一段落目" in e.content[0].value and f"本文 {n} の二段落目" in e.content[0].value
        assert e.content[0].type == "text/html"
        assert e.summary == f"一覧の要約 {n}: 協議は続いている。"  # the summary stays the listing's
        # reading the article is not an edit: `updated` stays when the story was first seen (publish staggers
        # equal times by a second per position)
        assert NOW - timedelta(minutes=1) <= datetime(*e.updated_parsed[:6], tzinfo=UTC) <= NOW
    assert article_hits(http_server) == {p: 1 for p, _, _ in STORIES}

    before = (cfg.output_dir / "talks.atom").read_bytes()
    pipeline.refresh(cfg, now=NOW + timedelta(hours=1))
    assert article_hits(http_server) == {p: 1 for p, _, _ in STORIES}  # never fetched again
    assert (cfg.output_dir / "talks.atom").read_bytes() == before


def test_meta_mode_adds_date_and_image_but_no_text(http_server, tmp_path):
    cfg = config(tmp_path, serve(http_server), mode="meta")
    pipeline.refresh(cfg, now=NOW)
    entries = by_path(feed(cfg))
    assert datetime(*entries["a/4"].published_parsed[:6], tzinfo=UTC) == datetime(2025, 12, 20, 22, 0, tzinfo=UTC)
    assert entries["a/4"].media_thumbnail[0]["url"].endswith("/img/4.jpg")
    assert all("content" not in e for e in entries.values())


def test_source_setting_overrides_the_topics(http_server, tmp_path):
    cfg = config(tmp_path, serve(http_server), mode="full", source_extra='article = "off"')
    assert cfg.topics[0].article == "full" and cfg.topics[0].sources[0].article == "off"
    pipeline.refresh(cfg, now=NOW)
    assert article_hits(http_server) == {p: 0 for p, _, _ in STORIES}
    assert "published" not in by_path(feed(cfg))["a/2"]  # the listing gave no date, and no article was read


def test_per_host_bound_leaves_the_rest_for_the_next_refresh(http_server, tmp_path):
    cfg = config(tmp_path, serve(http_server), extra="article_limit = 2")
    pipeline.refresh(cfg, now=NOW)
    assert sum(article_hits(http_server).values()) == 2
    pipeline.refresh(cfg, now=NOW + timedelta(hours=1))
    assert sum(article_hits(http_server).values()) == 4
    pipeline.refresh(cfg, now=NOW + timedelta(hours=2))
    pipeline.refresh(cfg, now=NOW + timedelta(hours=3))
    assert article_hits(http_server) == {p: 1 for p, _, _ in STORIES}  # each once, in the end
    assert all("content" in e for e in feed(cfg).entries)


def test_robots_txt_is_honoured_and_the_refusal_shown_in_status(http_server, tmp_path):
    http_server.route("/robots.txt", "User-agent: *\nDisallow: /a/2\n", headers={"Content-Type": "text/plain"})
    cfg = config(tmp_path, serve(http_server))
    results = pipeline.refresh(cfg, now=NOW)
    assert not results[0].failures  # the listing is fine; an article's failure is the article's
    assert article_hits(http_server)["/a/2"] == 0
    entries = by_path(feed(cfg))
    assert "content" not in entries["a/2"] and entries["a/2"].summary == "一覧の要約 2: 協議は続いている。"
    assert "content" in entries["a/1"]
    out = subprocess.run([sys.executable, "-m", "feedsvc", "--config", str(cfg.path), "status", "--json"],
                         capture_output=True, text=True, timeout=60)
    articles = json.loads(out.stdout)["topics"][0]["sources"][0]["articles"]
    assert articles["read"] == 4 and articles["failing"] == 1 and "robots.txt" in articles["last_error"]


def test_a_hanging_article_costs_only_its_own_deadline_and_is_retried_later(http_server, tmp_path):
    url = serve(http_server)
    released = []

    def hang(handler) -> None:
        time.sleep(8)  # past the 2 s deadline
        released.append(1)

    http_server.route("/a/3", handler=hang)
    cfg = config(tmp_path, url)
    t0 = time.monotonic()
    pipeline.refresh(cfg, now=NOW)
    assert time.monotonic() - t0 < 6
    entries = by_path(feed(cfg))
    assert "content" in entries["a/1"] and "content" not in entries["a/3"]
    assert datetime(*entries["a/3"].published_parsed[:6], tzinfo=UTC) == datetime(2025, 12, 23, 9, 0, tzinfo=UTC)
    hits = len(http_server.hits_for("/a/3"))
    http_server.route("/a/3", article("/a/3", STORIES[2][2]), headers=HTML)
    pipeline.refresh(cfg, now=NOW + timedelta(minutes=1))  # backed off: not yet
    assert len(http_server.hits_for("/a/3")) == hits
    pipeline.refresh(cfg, now=NOW + timedelta(hours=1))
    assert len(http_server.hits_for("/a/3")) == hits + 1
    assert "content" in by_path(feed(cfg))["a/3"]


@pytest.mark.parametrize(("where", "text", "key"), [
    ("topic", 'article = "yes"', "topics[0].article"),
    ("source", 'article = "all"', "topics[0].sources[0].article"),
    ("feedsvc", "article_limit = 0", "feedsvc.article_limit"),
])
def test_bad_article_settings_name_the_key(tmp_path, where, text, key):
    path = tmp_path / "config.toml"
    top, topic, source = (text, "", "") if where == "feedsvc" else ("", text, "") if where == "topic" else ("", "", text)
    path.write_text(f'[feedsvc]\n{top}\n[[topics]]\nid = "t"\ntitle = "T"\n{topic}\n[[topics.sources]]\n'
                    f'url = "https://a.example/"\n{source}\n', encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert key in str(err.value) and str(path) in str(err.value)


def test_article_is_off_by_default(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('[[topics]]\nid = "t"\ntitle = "T"\n[[topics.sources]]\nurl = "https://a.example/"\n',
                    encoding="utf-8")
    cfg = load_config(path)
    assert cfg.topics[0].article == "off" and cfg.topics[0].sources[0].article == "off" and cfg.article_limit == 10


def test_preview_shows_what_the_first_article_pages_would_add(http_server, tmp_path):
    url = serve(http_server)
    http_server.route("/a/5", status=404)
    args = [sys.executable, "-m", "feedsvc", "preview", url, "--item", "ul.news li", "--title", "a", "--link", "a@href",
            "--date", "span.date", "--summary", "p", "--timezone", "Asia/Tokyo", "--language", "ja", "--article"]
    out = subprocess.run(args + ["full"], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "article date: 2025-12-25T14:03:00+09:00 (replaces the listing's)" in out.stdout
    assert "article date: 2025-12-22T08:00:00+09:00 (the listing's stays)" in out.stdout
    assert f"article image: {http_server.base}/img/1.jpg" in out.stdout
    assert "article text: " in out.stdout and "本文 1 の一段落目" in out.stdout
    assert "article: could not be read: " in out.stdout and "404" in out.stdout
    out = subprocess.run(args + ["meta", "--json"], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    items = json.loads(out.stdout)
    assert items[1]["article"]["published"] == "2025-12-24T09:30:00+09:00" and items[1]["article"]["date_wins"]
    assert items[0]["article"]["content_html"] is None  # meta reads no text
    assert not (tmp_path / "state").exists()  # preview touches no state


def test_a_lost_state_keeps_ids_and_reads_the_articles_again_once(http_server, tmp_path):
    cfg = config(tmp_path, serve(http_server), mode="meta")
    pipeline.refresh(cfg, now=NOW)
    ids = {p: e.id for p, e in by_path(feed(cfg)).items()}
    cfg.state.unlink()  # the article dates were published: the rebuilt stories must take them back safely
    pipeline.refresh(cfg, now=NOW + timedelta(hours=1))
    entries = by_path(feed(cfg))
    assert {p: e.id for p, e in entries.items()} == ids
    assert datetime(*entries["a/1"].published_parsed[:6], tzinfo=UTC) == datetime(2025, 12, 25, 5, 3, tzinfo=UTC)
    assert all(n <= 2 for n in article_hits(http_server).values())


def test_rss_and_json_feed_carry_the_article_text_too(http_server, tmp_path):
    cfg = config(tmp_path, serve(http_server), extra='formats = ["atom", "rss", "json"]')
    pipeline.refresh(cfg, now=NOW)
    rss = feedparser.parse((cfg.output_dir / "talks.rss").read_bytes())
    assert not rss.bozo and len(rss.entries) == 5
    for e in rss.entries:
        assert "本文" in e.content[0].value and e.summary.startswith("一覧の要約")
    doc = json.loads((cfg.output_dir / "talks.json").read_text(encoding="utf-8"))
    for item in doc["items"]:
        assert "本文" in item["content_html"] and item["summary"].startswith("一覧の要約")


def test_an_item_linking_inside_the_network_is_not_read_for_its_article(http_server, tmp_path):
    """A listing is a configured source; the pages its items link to are not: an item whose link points
    at another loopback service (a private address, no source of the config) is refused, and nothing of
    that service reaches the feed, unless allow_private says otherwise."""
    from conftest import LocalServer

    internal = LocalServer()
    try:
        internal.route("/robots.txt", "User-agent: *\nAllow: /\n")
        internal.route("/admin", article("/admin9", "2025-12-25T14:03:00+09:00").replace("本文", "社外秘"),
                       headers=HTML)
        rows = (f'<li><a href="{internal.url("/admin")}">和平協議の記事 その9について</a> <span class="date"></span>'
                "<p>一覧の要約 9: 協議は続いている。</p></li>")
        http_server.route("/news", listing().replace('<ul class="news">', f'<ul class="news">{rows}'), headers=HTML)
        for p, _, published in STORIES:
            http_server.route(p, article(p, published), headers=HTML)
        cfg = config(tmp_path, http_server.url("/news"))
        pipeline.refresh(cfg, now=NOW)
        assert not internal.hits_for("/admin"), "the internal service was asked"
        assert "社外秘" not in (cfg.output_dir / "talks.atom").read_text(encoding="utf-8")
        assert article_hits(http_server) == {p: 1 for p, _, _ in STORIES}  # the listing's own site: read
        allowed = config(tmp_path, http_server.url("/news"), source_extra="allow_private = true")
        pipeline.refresh(allowed, now=NOW + timedelta(hours=1))  # (past the failure's backoff)
        assert internal.hits_for("/admin")
    finally:
        internal.close()
