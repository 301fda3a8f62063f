"""The pipeline's own promises: failures are data, validators are kept, parsing may use processes."""

from __future__ import annotations

import random
import time

from datetime import datetime, timedelta, timezone
from pathlib import Path

import feedparser
import pytest

from atomcheck import assert_valid_atom
from conftest import conditional
from feedsvc import dedupe, pipeline
from feedsvc.config import Config, load_config

NOW = datetime(2026, 3, 1, 0, 0, tzinfo=timezone.utc)


WORDS = ("政府", "停戦", "交渉", "選挙", "経済", "物価", "宇宙", "研究", "大学", "鉄道", "台風", "港湾", "漁業",
         "医療", "病院", "学校", "議会", "予算", "輸出", "株価", "観光", "空港", "電力", "農業", "裁判", "警察")


def story(tag: str, i: int, words: int) -> str:
    """A sentence of its own for each (tag, i): pages made of near-identical lines would be near-duplicates."""
    rng = random.Random(f"{tag}/{i}")
    return "の".join(rng.sample(WORDS, words)) + f"について{tag}が伝えた"


def listing(n: int, tag: str) -> str:
    cards = "\n".join(
        f'<li class="card"><h3><a href="/{tag}/article-{i}.html">{story(tag, i, 4)}</a></h3>'
        f'<p>{story(tag, i, 9)}。詳しくは本文で。</p><time datetime="2026-02-{i + 1:02d}T09:00:00+09:00">'
        f'2月{i + 1}日</time></li>' for i in range(n))
    return (f"<html><head><title>{tag}</title></head><body><nav><a href='/'>トップ</a><a href='/a'>社会</a></nav>"
            f"<ul class='cards'>{cards}</ul><footer><a href='/about'>会社案内</a></footer></body></html>")


def make_config(tmp_path: Path, urls: dict[str, list[str]], extra: str = "") -> Config:
    text = f'[feedsvc]\nhost_delay = "0s"\nformats = ["atom", "json"]\n{extra}\n'
    for topic, sources in urls.items():
        text += f'[[topics]]\nid = "{topic}"\ntitle = "{topic}"\nlanguage = "ja"\ntimezone = "Asia/Tokyo"\n'
        for url in sources:
            text += f'[[topics.sources]]\nurl = "{url}"\n'
    (tmp_path / "config.toml").write_text(text, encoding="utf-8")
    return load_config(tmp_path / "config.toml")


def feed_ids(path: Path) -> list[str]:
    data = path.read_bytes()
    assert_valid_atom(data)
    return [e.id for e in feedparser.parse(data).entries]


def test_worker_processes_give_the_same_feeds_as_one(http_server, tmp_path: Path, monkeypatch) -> None:
    urls = {f"t{i}": [http_server.route(f"/p{i}", listing(8, f"p{i}"),
                                        headers={"Content-Type": "text/html; charset=utf-8"})]
            for i in range(6)}
    outputs = {}
    for workers in ("1", "2"):
        monkeypatch.setenv("FEEDSVC_WORKERS", workers)
        work = tmp_path / f"w{workers}"
        work.mkdir()
        config = make_config(work, urls)
        assert pipeline.parse_workers(6) == int(workers)
        results = pipeline.refresh(config, now=NOW)
        assert [r.new for r in results] == [8] * 6 and not any(r.failures for r in results)
        outputs[workers] = {p.name: p.read_bytes() for p in sorted(config.output_dir.glob("t*.*"))}
    assert outputs["1"] == outputs["2"]
    assert len(outputs["2"]) == 12


def test_304_costs_no_parse_and_no_write(http_server, tmp_path: Path) -> None:
    body = listing(5, "c").encode()
    url = http_server.route("/c", handler=conditional(body, '"v1"'))
    config = make_config(tmp_path, {"c": [url]})
    pipeline.refresh(config, now=NOW)
    feed = config.output_dir / "c.atom"
    mtime = feed.stat().st_mtime_ns
    results = pipeline.refresh(config, now=NOW + timedelta(hours=1))
    assert results[0].sources[0].status == "not-modified"
    assert results[0].entries == 5 and not results[0].feed_written
    assert http_server.hits_for("/c")[-1].headers.get("If-None-Match") == '"v1"'
    assert feed.stat().st_mtime_ns == mtime


def test_failing_source_keeps_its_entries_and_backs_off(http_server, tmp_path: Path) -> None:
    url = http_server.route("/f", listing(4, "f"), headers={"Content-Type": "text/html; charset=utf-8"})
    config = make_config(tmp_path, {"f": [url]})
    pipeline.refresh(config, now=NOW)
    ids = feed_ids(config.output_dir / "f.atom")
    assert len(ids) == 4

    http_server.route("/f", "down", status=500)
    later = NOW + timedelta(hours=1)
    result = pipeline.refresh(config, now=later)[0]
    assert result.failures and "500" in result.failures[0].error
    assert feed_ids(config.output_dir / "f.atom") == ids  # the feed keeps every entry

    # backed off: the next run soon after does not even ask the server
    hits = len(http_server.hits_for("/f"))
    result = pipeline.refresh(config, now=later + timedelta(minutes=1))[0]
    assert result.sources[0].status == "skipped" and len(http_server.hits_for("/f")) == hits
    # --force asks anyway
    result = pipeline.refresh(config, now=later + timedelta(minutes=2), force=True)[0]
    assert result.sources[0].status == "failed" and len(http_server.hits_for("/f")) > hits


def test_a_page_that_lost_its_listing_is_drift_not_an_empty_feed(http_server, tmp_path: Path) -> None:
    url = http_server.route("/d", listing(6, "d"), headers={"Content-Type": "text/html; charset=utf-8"})
    config = make_config(tmp_path, {"d": [url]})
    pipeline.refresh(config, now=NOW)
    ids = feed_ids(config.output_dir / "d.atom")
    http_server.route("/d", "<html><body><p>メンテナンス中です</p></body></html>",
                      headers={"Content-Type": "text/html; charset=utf-8"})
    result = pipeline.refresh(config, now=NOW + timedelta(hours=1))[0]
    assert result.failures and result.failures[0].error.startswith("drift:")
    assert "6" in result.failures[0].error
    assert feed_ids(config.output_dir / "d.atom") == ids


def test_a_page_with_no_listing_is_reported_never_invented(http_server, tmp_path: Path) -> None:
    url = http_server.route("/e", "<html><body><p>ようこそ</p><a href='/'>トップ</a></body></html>",
                            headers={"Content-Type": "text/html; charset=utf-8"})
    config = make_config(tmp_path, {"e": [url]})
    result = pipeline.refresh(config, now=NOW)[0]
    assert result.entries == 0
    assert result.failures and result.failures[0].error.startswith("empty:")


def test_same_story_on_two_topics_has_one_id(http_server, tmp_path: Path) -> None:
    a = http_server.route("/a", listing(3, "s"), headers={"Content-Type": "text/html; charset=utf-8"})
    b = http_server.route("/b", listing(3, "s").replace("/s/", "/mirror/s/"),  # other URLs, same stories
                          headers={"Content-Type": "text/html; charset=utf-8"})
    config = make_config(tmp_path, {"one": [a], "two": [b]})
    pipeline.refresh(config, now=NOW)
    one, two = feed_ids(config.output_dir / "one.atom"), feed_ids(config.output_dir / "two.atom")
    assert len(one) == 3 and sorted(one) == sorted(two)


def test_a_story_edited_through_one_topic_is_republished_in_the_other_whose_page_answered_304(
        http_server, tmp_path: Path) -> None:
    """A feed is skipped when its topic's version has not moved: an edit seen on another topic's page
    must move it, or the unchanged page's feed would show the old text for ever."""
    page = listing(3, "s")
    a = http_server.route("/a", page, headers={"Content-Type": "text/html; charset=utf-8"})
    b = http_server.route("/b", handler=conditional(page.replace("/s/", "/mirror/s/").encode(), '"b1"'))
    config = make_config(tmp_path, {"one": [a], "two": [b]})
    pipeline.refresh(config, now=NOW)
    old = story("s", 1, 9)
    http_server.route("/a", page.replace(old, old + "と関係者が明らかにした"),
                      headers={"Content-Type": "text/html; charset=utf-8"})
    results = {r.topic: r for r in pipeline.refresh(config, now=NOW + timedelta(hours=1))}
    assert results["two"].sources[0].status == "not-modified" and results["two"].feed_written
    for name in ("one.atom", "two.atom"):
        summaries = [e.summary for e in feedparser.parse((config.output_dir / name).read_bytes()).entries]
        assert any("と関係者が明らかにした" in s for s in summaries), name
    # and nothing moves when nothing changed
    again = pipeline.refresh(config, now=NOW + timedelta(hours=2))
    assert not any(r.feed_written for r in again)


def test_a_refresh_leaves_no_text_cache_behind(http_server, tmp_path: Path) -> None:
    """The dedupe text caches serve one refresh: a daemon must not carry them from one to the next."""
    a = http_server.route("/a", listing(3, "s"), headers={"Content-Type": "text/html; charset=utf-8"})
    # the same stories lightly edited, at other addresses: checked against topic one's by their n-grams
    edited = listing(3, "s").replace("/s/", "/m/s/").replace("詳しくは本文で", "詳細は本文で")
    b = http_server.route("/b", edited, headers={"Content-Type": "text/html; charset=utf-8"})
    config = make_config(tmp_path, {"one": [a], "two": [b]})
    results = pipeline.refresh(config, now=NOW)
    assert [len(r.sources) for r in results] == [1, 1]
    assert dedupe.shingles.cache_info().currsize == 0 and dedupe._figures.cache_info().currsize == 0


def test_dry_run_writes_nothing(http_server, tmp_path: Path) -> None:
    url = http_server.route("/x", listing(3, "x"), headers={"Content-Type": "text/html; charset=utf-8"})
    config = make_config(tmp_path, {"x": [url]})
    plans = pipeline.plan_topics(config, now=NOW)
    assert [len(p.plan.new) for p in plans] == [3]
    assert not config.state.exists() and not config.output_dir.exists()
    pipeline.refresh(config, now=NOW)
    http_server.route("/x", listing(4, "x"), headers={"Content-Type": "text/html; charset=utf-8"})
    state_before = config.state.read_bytes()
    plans = pipeline.plan_topics(config, now=NOW + timedelta(hours=1))
    assert [len(p.plan.new) for p in plans] == [1]
    assert config.state.read_bytes() == state_before


@pytest.mark.parametrize("topics,expected", [
    pytest.param(None, ["a", "b"], id="all"),
    pytest.param(["b"], ["b"], id="one"),
])
def test_select_topics(tmp_path: Path, topics, expected) -> None:
    config = make_config(tmp_path, {"a": ["https://example.org/a"], "b": ["https://example.org/b"]})
    assert [t.id for t in pipeline.select_topics(config, topics)] == expected


def test_retention_prunes_stories_gone_from_a_page_but_not_those_of_an_unread_source(http_server,
                                                                                        tmp_path: Path) -> None:
    body = listing(4, "r").encode()
    url = http_server.route("/r", handler=conditional(body, '"r1"'))
    gone = http_server.route("/g", listing(3, "g"), headers={"Content-Type": "text/html; charset=utf-8"})
    config = make_config(tmp_path, {"r": [url], "g": [gone]}, extra='retention = "30d"')
    pipeline.refresh(config, now=NOW)
    ids_r = feed_ids(config.output_dir / "r.atom")
    # /g now lists one other story; /r answers 304 every time for 60 days
    http_server.route("/g", listing(5, "other"), headers={"Content-Type": "text/html; charset=utf-8"})
    for day in (20, 40, 60):
        pipeline.refresh(config, now=NOW + timedelta(days=day))
    assert feed_ids(config.output_dir / "r.atom") == ids_r  # unread for 60 days, still the same stories
    # the stories that left /g were pruned after 30 days: the feed keeps what it had published,
    # but the store forgot them
    from feedsvc.store import Store

    with Store.open(config.state) as store:
        assert store.entry_count() == 4 + 5  # not 4 + 3 + 5


def test_feed_icon_is_the_sites_and_survives_a_304(http_server, tmp_path: Path) -> None:
    body = listing(4, "i").replace("<head>", '<head><link rel="shortcut icon" href="/static/favicon.png">').encode()
    url = http_server.route("/i", handler=conditional(body, '"i1"'))
    config = make_config(tmp_path, {"i": [url]})
    pipeline.refresh(config, now=NOW)
    icon = http_server.url("/static/favicon.png")
    feed = feedparser.parse((config.output_dir / "i.atom").read_bytes())
    assert feed.feed.icon == icon
    import json

    assert json.loads((config.output_dir / "i.json").read_text())["favicon"] == icon
    before = (config.output_dir / "i.atom").read_bytes()
    result = pipeline.refresh(config, now=NOW + timedelta(hours=1))[0]
    assert result.sources[0].status == "not-modified"
    assert (config.output_dir / "i.atom").read_bytes() == before


def test_configured_icon_wins(http_server, tmp_path: Path) -> None:
    url = http_server.route("/j", listing(4, "j").replace("<head>", '<head><link rel="icon" href="/f.ico">'),
                            headers={"Content-Type": "text/html; charset=utf-8"})
    (tmp_path / "config.toml").write_text(
        f'[feedsvc]\nhost_delay = "0s"\n[[topics]]\nid = "j"\ntitle = "J"\nicon = "https://cdn.example.org/j.png"\n'
        f'[[topics.sources]]\nurl = "{url}"\n', encoding="utf-8")
    config = load_config(tmp_path / "config.toml")
    pipeline.refresh(config, now=NOW)
    assert feedparser.parse((config.output_dir / "j.atom").read_bytes()).feed.icon == "https://cdn.example.org/j.png"


def test_digests_of_a_config_are_cached_by_object_yet_every_change_gives_another_key(tmp_path: Path) -> None:
    """digest() remembers a topic's repr (and config.topics') per object: the keys stay what hashing
    repr(parts) gave, so no feed is rendered again after an upgrade, and a changed config (a new
    object, as load_config and a SIGHUP give) gives a changed key."""
    import dataclasses
    import hashlib

    def plain(*parts: object) -> str:
        return hashlib.sha256(repr(parts).encode("utf-8", "surrogatepass")).hexdigest()

    config = make_config(tmp_path, {"a": ["https://a.example/"], "b": ["https://b.example/", "https://c.example/"]})
    topic = config.topics[0]
    for parts in [(), (topic,), (config.topics,), ("1.0", topic, None, "https://hub.example/", 7),
                  ("1.0", config.topics, "https://feeds.example/"), ((),), ("x", [None, "k"], {"a": ()})]:
        assert pipeline.digest(*parts) == plain(*parts), parts
        assert pipeline.digest(*parts) == plain(*parts), parts  # cached now: the same
    key = pipeline.feed_key(config, topic, 3)
    assert key == plain(pipeline.__version__, topic, None, None, 3) == pipeline.feed_key(config, topic, 3)
    hub = dataclasses.replace(config, base_url="https://feeds.example/", websub_hub="https://hub.example/")
    assert pipeline.feed_key(hub, topic, 3) == plain(pipeline.__version__, topic, hub.base_url, hub.websub_hub, 3)
    assert key == pipeline.feed_key(load_config(config.path), load_config(config.path).topics[0], 3)  # equal config
    assert key != pipeline.feed_key(config, topic, 4)
    assert key != pipeline.feed_key(config, dataclasses.replace(topic, max_entries=20), 3)
    assert key != pipeline.feed_key(dataclasses.replace(config, base_url="https://feeds.example/"), topic, 3)
    text = config.path.read_text(encoding="utf-8")
    (tmp_path / "changed.toml").write_text(text.replace('title = "a"', 'title = "A"'), encoding="utf-8")
    changed = load_config(tmp_path / "changed.toml")
    assert changed.topics[0].title == "A" and pipeline.feed_key(changed, changed.topics[0], 3) != key
    topics_key = pipeline.digest("1.0", config.topics)
    assert pipeline.digest("1.0", changed.topics) != topics_key

    # a topic given its site's icon is one object per icon, so that its repr is cached too
    iconed = pipeline.with_icon(topic, {"https://a.example/": "https://a.example/i.png"})
    assert iconed.icon == "https://a.example/i.png" and iconed == dataclasses.replace(topic, icon=iconed.icon)
    assert pipeline.with_icon(topic, {"https://a.example/": "https://a.example/i.png"}) is iconed
    assert pipeline.feed_key(config, iconed, 3) == plain(pipeline.__version__, iconed, None, None, 3) != key
    other = pipeline.with_icon(topic, {"https://a.example/": "https://a.example/j.png"})
    assert other.icon == "https://a.example/j.png" and pipeline.feed_key(config, other, 3) != pipeline.feed_key(
        config, iconed, 3)
    assert pipeline.with_icon(topic, {"https://a.example/": ""}) is topic
    assert pipeline.with_icon(config.topics[1], {"https://c.example/": "c.png"}).icon == "c.png"


def test_unchanged_feeds_are_not_rendered_but_config_changes_and_lost_files_are(http_server, tmp_path: Path,
                                                                                 monkeypatch) -> None:
    url = http_server.route("/k", listing(4, "k"), headers={"Content-Type": "text/html; charset=utf-8"})
    config = make_config(tmp_path, {"k": [url]})
    pipeline.refresh(config, now=NOW)
    from feedsvc import publish

    rendered: list[str] = []
    real = publish.write_feeds
    monkeypatch.setattr(publish, "write_feeds", lambda t, e, c: rendered.append(t.title) or real(t, e, c))
    pipeline.refresh(config, now=NOW + timedelta(hours=1))
    assert rendered == []  # same page, same topic: nothing to render
    (config.output_dir / "k.json").unlink()
    pipeline.refresh(config, now=NOW + timedelta(hours=2))
    assert rendered == ["k"] and (config.output_dir / "k.json").exists()
    text = config.path.read_text(encoding="utf-8").replace('title = "k"', 'title = "Kの記事"')
    config.path.write_text(text, encoding="utf-8")
    result = pipeline.refresh(load_config(config.path), now=NOW + timedelta(hours=3))[0]
    assert rendered == ["k", "Kの記事"] and result.feed_written
    assert feedparser.parse((config.output_dir / "k.atom").read_bytes()).feed.title == "Kの記事"
    assert "Kの記事" in (config.output_dir / "index.html").read_text(encoding="utf-8")


def test_feeds_written_by_workers_are_logged_by_the_refresh(http_server, tmp_path: Path, monkeypatch, caplog) -> None:
    """Feeds are rendered in the worker processes, which have no log handlers: the refresh logs them."""
    monkeypatch.setenv("FEEDSVC_WORKERS", "2")
    urls = {f"t{i}": [http_server.route(f"/l{i}", listing(3, f"l{i}"),
                                        headers={"Content-Type": "text/html; charset=utf-8"})] for i in range(4)}
    config = make_config(tmp_path, urls)
    with caplog.at_level("INFO", logger="feedsvc.pipeline"):
        results = pipeline.refresh(config, now=NOW)
    assert all(r.feed_written for r in results)
    wrote = sorted(r.getMessage() for r in caplog.records if ": wrote " in r.getMessage())
    assert len(wrote) == 8 and all(str(config.output_dir) in m for m in wrote)  # 4 topics x atom + json


def test_parsed_items_carry_their_dedupe_buckets() -> None:
    """The sketch is computed where the page is parsed; it must be the one dedupe would compute."""
    from feedsvc import dedupe
    from feedsvc.model import Page

    page = Page("https://news.example/topic", listing(5, "b"), "text/html", "utf-8", NOW)
    parsed = pipeline.parse_page(page, None, "Asia/Tokyo", "ja")
    assert isinstance(parsed, pipeline.PageItems) and len(parsed.groups) == 5
    items = parsed.items
    assert len(items) == 5
    assert all(it.buckets and list(it.buckets) == dedupe.buckets(it.folded) for it in items)


def test_no_feed_is_published_before_its_save_is_committed(http_server, tmp_path: Path, monkeypatch) -> None:
    """Saves are grouped into one transaction; a feed must never show what the state could still lose."""
    from feedsvc.errors import StoreError
    from feedsvc.store import Store

    url = http_server.route("/g", listing(4, "g"), headers={"Content-Type": "text/html; charset=utf-8"})
    config = make_config(tmp_path, {"g": [url]})

    def commit_fails(self: Store) -> None:
        raise StoreError("disk full (test)")

    monkeypatch.setattr(Store, "commit", commit_fails)
    with pytest.raises(StoreError):
        pipeline.refresh(config, now=NOW)
    assert not (config.output_dir / "g.atom").exists()
    with Store.open(config.state) as store:  # and the state holds nothing of the lost group
        assert store.entry_count() == 0


def test_a_kept_pool_serves_many_refreshes_and_recovers_from_a_dead_worker(http_server, tmp_path: Path) -> None:
    """The daemon keeps one Workers between refreshes: same processes, same feeds; a worker killed
    (the OOM killer) costs the next refresh nothing."""
    import os
    import signal

    urls = {"k": [http_server.route(f"/k{i}", listing(3, f"k{i}"), headers={"Content-Type": "text/html; charset=utf-8"})
                  for i in range(4)]}
    config = make_config(tmp_path, urls)
    with pipeline.Workers(2) as workers:
        first = pipeline.refresh(config, now=NOW, workers=workers)[0]
        pids = set(workers.pool._processes)
        second = pipeline.refresh(config, now=NOW + timedelta(hours=1), workers=workers, force=True)[0]
        assert pids <= set(workers.pool._processes)  # the same worker processes
        assert first.new == 12 and second.unchanged == 12 and not second.failures

        os.kill(next(iter(pids)), signal.SIGKILL)
        deadline = time.monotonic() + 10
        while not getattr(workers.pool, "_broken", False) and time.monotonic() < deadline:
            time.sleep(0.05)
        third = pipeline.refresh(config, now=NOW + timedelta(hours=2), workers=workers, force=True)[0]
        assert not third.failures and third.unchanged == 12
        assert not set(workers.pool._processes) & pids  # a new pool
    assert workers.pool is None
    assert len(feed_ids(config.output_dir / "k.atom")) == 12


def test_robots_txt_is_kept_for_a_day(http_server, tmp_path: Path) -> None:
    """RFC 9309 caching: without it, every refresh asked each site twice (robots.txt, then the page)."""
    http_server.route("/robots.txt", "User-agent: *\nDisallow: /private/\n", headers={"Content-Type": "text/plain"})
    ok = http_server.route("/news", listing(3, "n"), headers={"Content-Type": "text/html; charset=utf-8"})
    blocked = http_server.route("/private/news", listing(3, "p"), headers={"Content-Type": "text/html; charset=utf-8"})
    config = make_config(tmp_path, {"n": [ok], "p": [blocked]})

    def run(at: datetime) -> dict[str, str]:
        return {r.topic: r.sources[0].status for r in pipeline.refresh(config, now=at, force=True)}

    assert run(NOW) == {"n": "ok", "p": "failed"}
    assert len(http_server.hits_for("/robots.txt")) == 1
    assert run(NOW + timedelta(hours=23)) == {"n": "ok", "p": "failed"}  # the kept rules still apply
    assert len(http_server.hits_for("/robots.txt")) == 1 and http_server.hits_for("/private/news") == []
    assert run(NOW + timedelta(hours=25)) == {"n": "ok", "p": "failed"}
    assert len(http_server.hits_for("/robots.txt")) == 2  # a day old: asked again


def test_a_failing_robots_txt_is_asked_again_next_run(http_server, tmp_path: Path) -> None:
    http_server.route("/robots.txt", "busy", status=503)
    url = http_server.route("/n", listing(3, "n"), headers={"Content-Type": "text/html; charset=utf-8"})
    config = make_config(tmp_path, {"n": [url]})
    pipeline.refresh(config, now=NOW)
    pipeline.refresh(config, now=NOW + timedelta(hours=1))
    assert len(http_server.hits_for("/robots.txt")) == 2


def test_a_warm_refresh_rewrites_no_story_until_it_gets_old(http_server, tmp_path: Path) -> None:
    """Stories of a page answering 304 are kept from pruning by touching them, but only once they get
    old (a quarter of retention): touching all of them on every run was most of a warm refresh."""
    import sqlite3

    url = http_server.route("/w", handler=conditional(listing(4, "w").encode(), '"w1"'))
    config = make_config(tmp_path, {"w": [url]}, extra='retention = "8d"')

    def seen() -> set[str]:
        db = sqlite3.connect(config.state)
        try:
            return {r[0][:19] for r in db.execute("SELECT last_seen_at FROM entries")}
        finally:
            db.close()

    pipeline.refresh(config, now=NOW)
    pipeline.refresh(config, now=NOW + timedelta(hours=1))
    assert seen() == {"2026-03-01T00:00:00"}  # not rewritten
    pipeline.refresh(config, now=NOW + timedelta(days=3))
    assert seen() == {"2026-03-04T00:00:00"}  # older than 2 days: touched


def test_a_warm_refresh_records_each_sources_health_in_one_statement(http_server, tmp_path: Path,
                                                                      monkeypatch) -> None:
    """A 304 changes no validator and no story, only the source's health (its last success, its failures
    forgotten): the sources of a refresh are written together when their group commits, not with a
    statement and a savepoint each. A page that did change is recorded with its new validators, in
    the same statement (after its topic's stories were saved)."""
    from feedsvc.store import Store

    pages = {i: conditional(listing(3, f"h{i}").encode(), f'"h{i}"') for i in range(4)}
    urls = {"h": [http_server.route(f"/h{i}", handler=pages[i]) for i in range(4)]}
    config = make_config(tmp_path, urls)
    pipeline.refresh(config, now=NOW)
    http_server.route("/h0", "gone", status=404)
    assert pipeline.refresh(config, now=NOW + timedelta(hours=1))[0].failures
    http_server.route("/h0", handler=pages[0])
    http_server.route("/h3", handler=conditional(listing(4, "h3").encode(), '"h3-v2"'))

    writes: list[list[str]] = []  # the sources of each write to the store
    real_save = Store.save_source_states
    monkeypatch.setattr(Store, "save_source_states",
                        lambda self, states: writes.append(sorted(s.url for s in states)) or real_save(self, states))
    later = NOW + timedelta(hours=2)
    result = pipeline.refresh(config, now=later)[0]
    assert [s.status for s in result.sources] == ["not-modified"] * 3 + ["ok"] and result.new == 1
    assert writes == [sorted(urls["h"])]  # at once, changed or not
    with Store.open(config.state) as store:
        states = [store.source_state(url) for url in urls["h"]]
    assert [(s.etag, s.last_success_at, s.consecutive_failures, s.next_try_at) for s in states] == [
        ('"h0"', later, 0, None), ('"h1"', later, 0, None), ('"h2"', later, 0, None), ('"h3-v2"', later, 0, None)]
    assert states[0].last_failure_at == NOW + timedelta(hours=1)  # it failed an hour ago: forgiven, not forgotten


def test_worker_processes_start_only_when_a_page_will_be_parsed(http_server, tmp_path: Path, monkeypatch) -> None:
    """A refresh whose pages all answer 304 starts no forkserver and no workers: they cost a warm
    refresh more than its fetches. A cold one starts them before its first page arrives."""
    urls = {"w": [http_server.route(f"/w{i}", handler=conditional(listing(3, f"w{i}").encode(), f'"w{i}"'))
                  for i in range(4)]}
    config = make_config(tmp_path, urls)
    monkeypatch.setenv("FEEDSVC_WORKERS", "2")
    started: list[int] = []
    real_start = pipeline.Workers._start

    def counted(self: pipeline.Workers) -> None:
        started.append(len(http_server.hits))  # requests made before the processes were started
        real_start(self)

    monkeypatch.setattr(pipeline.Workers, "_start", counted)
    assert pipeline.refresh(config, now=NOW)[0].new == 12
    assert started == [0]  # cold: started before any page was asked for
    assert pipeline.refresh(config, now=NOW + timedelta(hours=1))[0].unchanged == 0
    assert started == [0]  # warm, every page 304: no processes
    http_server.route("/w2", handler=conditional(listing(4, "w2").encode(), '"w2-v2"'))
    result = pipeline.refresh(config, now=NOW + timedelta(hours=2))[0]
    assert result.new == 1 and len(started) == 2  # one page changed: started when it came


def test_a_refresh_whose_pages_all_answer_304_imports_no_page_reader_nor_feed_writer(http_server, tmp_path: Path) -> None:
    """Importing extract and normalize (lxml, the date rules) was a tenth of a warm refresh, and feedgen
    (with lxml and dateutil) a tenth of the CLI's start."""
    import subprocess
    import sys

    url = http_server.route("/w", handler=conditional(listing(3, "w").encode(), '"w1"'))
    make_config(tmp_path, {"w": [url]})
    script = ("import sys; from feedsvc.cli import main; code = main(['--config', sys.argv[1], 'refresh']); "
              "print(code, sorted(m for m in ('feedsvc.extract', 'feedsvc.normalize', 'feedgen', 'lxml', 'dateutil') "
              "if m in sys.modules))")
    runs = [subprocess.run([sys.executable, "-c", script, str(tmp_path / "config.toml")], capture_output=True,
                           text=True, timeout=60).stdout.split("\n")[-2] for _ in range(2)]
    # cold reads the page and renders its feed (in-process: one page); warm: 304, the feed is current
    assert runs == ["0 ['dateutil', 'feedgen', 'feedsvc.extract', 'feedsvc.normalize', 'lxml']", "0 []"]


def test_a_kept_pool_is_replaced_whole_after_its_tasks() -> None:
    with pipeline.Workers(2, tasks_per_worker=2) as workers:
        assert [workers.submit(pow, 2, i).result(timeout=30) for i in range(4)] == [1, 2, 4, 8]
        before = workers.pool
        workers.renew()  # 4 tasks = 2 a worker: time for new processes
        assert workers.pool is not before and workers.tasks == 0
        assert workers.submit(pow, 3, 2).result(timeout=30) == 9
        same = workers.pool
        workers.renew()
        assert workers.pool is same  # 1 task: kept


def test_closing_a_pool_with_a_stuck_worker_does_not_wait_for_it() -> None:
    workers = pipeline.Workers(2)
    stuck = workers.submit(time.sleep, 60)
    deadline = time.monotonic() + 10
    while not stuck.running() and time.monotonic() < deadline:
        time.sleep(0.05)
    started = time.monotonic()
    workers.close()
    assert time.monotonic() - started < 5 and workers.pool is None


def test_the_parser_waits_for_its_oldest_pages_past_its_backlog() -> None:
    """At most PARSE_BACKLOG pages a worker are in flight: the refresh settles the oldest first."""
    from feedsvc.config import SourceConfig
    from feedsvc.model import Page

    with pipeline.Workers(2) as workers:
        parser = pipeline.Parser(workers)
        for i in range(12):
            page = Page(f"https://news.example/{i}", listing(3, f"b{i}"), "text/html", "utf-8", NOW)
            parser.submit(SourceConfig(url=page.url), page, "ja")
        settled = [source.url for source, _ in parser.backlog(4)]
        assert settled == [f"https://news.example/{i}" for i in range(8)]  # oldest first, until 4 remain
        assert len(parser.pending) == 4
        assert [len(p.result.items) for _, p in parser.results()] == [3] * 4


@pytest.mark.parametrize("every", [0.0, 60.0])
def test_the_daemons_index_is_rewritten_at_most_once_a_minute_while_its_topics_stay(http_server, tmp_path: Path,
                                                                                    every: float) -> None:
    """`run` passes index_every: a changed page gives a new feed at once, the index.html that lists it
    waits for its minute (at 1,000 topics rendering it after every batch was most of a warm cycle);
    a new topic in the config is listed at once."""
    pages = {"a": listing(3, "a"), "b": listing(3, "b")}
    urls = {t: http_server.route(f"/{t}", handler=lambda h, t=t: conditional(pages[t].encode(),
                                                                              f'"{len(pages[t])}"')(h))
            for t in pages}
    config = make_config(tmp_path, {"a": [urls["a"]]})
    pipeline.refresh(config, now=NOW, index_every=every)
    index = config.output_dir / "index.html"
    before = index.read_bytes()
    pages["a"] = listing(5, "a")
    pipeline.refresh(config, now=NOW + timedelta(minutes=5), index_every=every)
    assert len(feedparser.parse((config.output_dir / "a.atom").read_bytes()).entries) == 5  # the feed: at once
    assert (index.read_bytes() == before) == bool(every)
    config = make_config(tmp_path, {"a": [urls["a"]], "b": [urls["b"]]})
    pipeline.refresh(config, now=NOW + timedelta(minutes=6), index_every=every)
    assert 'id="topic-b"' in index.read_text(encoding="utf-8")  # a new topic is listed at once


def test_plans_are_made_ahead_of_the_writers_lock_while_that_pays() -> None:
    """PlansAhead: ahead while at most half of the last plans made ahead were thrown away; beyond,
    under the lock, but every PROBE-th save tries ahead again, and a quiet lock brings it back."""
    ahead = pipeline.PlansAhead()
    assert ahead.worth_it()
    for held in [True] * 8 + [False] * 8:
        ahead.record(held)
    assert ahead.worth_it()  # 8 of 16 thrown away: still pays
    ahead.record(False)
    tries = [ahead.worth_it() for _ in range(2 * ahead.PROBE + 2)]
    assert tries == ([False] * ahead.PROBE + [True]) * 2  # a probe every PROBE-th save
    for _ in range(ahead.WINDOW // 2):  # the probes find the lock quiet again
        ahead.record(True)
    assert ahead.worth_it() and ahead.worth_it()
