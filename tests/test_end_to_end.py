"""The whole flow, end to end: a topic page served over real HTTP becomes a valid Atom feed.

In-process tests call pipeline.refresh() with a fixed `now` (dates without a year resolve
against it); CLI tests run `python -m feedsvc` as a user would. State is a real SQLite
file, feeds are read back with feedparser and checked against RFC 4287.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import feedparser
import pytest

from atomcheck import assert_valid_atom
from feedsvc import pipeline
from feedsvc.config import Config, load_config

ROOT = Path(__file__).resolve().parent.parent
TOKYO = ZoneInfo("Asia/Tokyo")
NOW = datetime(2026, 1, 20, 3, 0, tzinfo=timezone.utc)  # 12:00 in Tokyo, a week after the newest story


def sample_lines(shared: Path) -> list[str]:
    return (shared / "samples" / "topic-page-peace-talks.txt").read_text(encoding="utf-8").splitlines()


def write_config(tmp_path: Path, topics: str, extra: str = "") -> Config:
    path = tmp_path / "config.toml"
    path.write_text(f'[feedsvc]\nhost_delay = "0s"\n{extra}\n{topics}', encoding="utf-8")
    return load_config(path)


def topic_toml(topic_id: str, url: str, *, title: str = "和平交渉", tz: str = "Asia/Tokyo", more: str = "") -> str:
    return (f'[[topics]]\nid = "{topic_id}"\ntitle = "{title}"\nlanguage = "ja"\ntimezone = "{tz}"\n{more}\n'
            f'[[topics.sources]]\nurl = "{url}"\n')


def run_cli(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "feedsvc", *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=timeout)


def read_feed(path: Path) -> feedparser.FeedParserDict:
    data = path.read_bytes()
    assert_valid_atom(data)
    feed = feedparser.parse(data)
    assert feed.bozo == 0, feed.get("bozo_exception")
    return feed


@pytest.fixture
def sample_feed(shared_dir: Path, http_server, tmp_path: Path):
    """The real sample page served as text/plain, refreshed once at NOW."""
    body = (shared_dir / "samples" / "topic-page-peace-talks.txt").read_bytes()
    url = http_server.route("/theme/peace-talks", body, headers={"Content-Type": "text/plain; charset=utf-8"})
    config = write_config(tmp_path, topic_toml("peace-talks", url))
    results = pipeline.refresh(config, now=NOW)
    path = config.output_dir / "peace-talks.atom"
    return config, results, path, read_feed(path), sample_lines(shared_dir)


def entry_for(feed, summary_line: str):
    matches = [e for e in feed.entries if e.summary == summary_line]
    assert len(matches) == 1, f"{len(matches)} entries for {summary_line[:30]}…"
    return matches[0]


# ---------------------------------------------------------------- issue 2, point 5


def test_sample_page_gives_exactly_twenty_entries(sample_feed) -> None:
    config, results, path, feed, lines = sample_feed
    assert len(feed.entries) == 20
    assert results[0].new == 20 and results[0].entries == 20 and not results[0].failures


def test_featured_headline_titles_its_entry_and_repeat_is_one_entry(sample_feed) -> None:
    _, _, _, feed, lines = sample_feed
    featured = entry_for(feed, lines[1])  # line 2 (its summary) — and line 4 repeats it
    assert featured.title == lines[0]
    assert sum(1 for e in feed.entries if e.summary == lines[3]) == 1


def test_page_description_line_is_no_entry_and_no_title(sample_feed) -> None:
    _, _, _, feed, lines = sample_feed
    description = lines[2]
    assert "本ページでは" in description
    for e in feed.entries:
        assert e.summary != description
        assert "本ページでは" not in e.title


def test_untitled_summaries_get_readable_titles_of_their_own(sample_feed) -> None:
    _, _, _, feed, lines = sample_feed
    titles = []
    for line in lines[4:]:
        e = entry_for(feed, line)
        title = e.title
        titles.append(title)
        assert title and title != line, "a title, not the whole summary"
        assert len(title) <= 61
        assert not re.match(r"^\d{4}年\d{1,2}月\d{1,2}日", title), "no bare date phrase at the start"
        core = without_asides(title.rstrip("…"))
        assert core and core in without_asides(line), "made from its own text"
    assert len(set(titles)) == len(titles), "different stories, different titles"
    # lines 12 and 13 both open with the same date phrase: their titles differ
    assert entry_for(feed, lines[11]).title != entry_for(feed, lines[12]).title


def without_asides(text: str) -> str:
    """Text without parenthetical asides, which a title may leave out: キーウ(ウクライナ)での → キーウでの."""
    return re.sub(r"[(（][^)）]*[)）]", "", text)


# line number (1-based) -> the date its text supports, in Asia/Tokyo; None: no date in the text
SAMPLE_DATES = {
    2: (2026, 1, 13),   # 現地13日: that day in the most recent month where it is not in the future
    5: None,
    6: (2026, 1, 16),   # 1月16日発表: the most recent January 16 not after the fetch
    9: (2025, 12, 28),  # 2025年12月28〜29日: a range is its first day
    10: (2025, 12, 28),
    12: (2025, 12, 25),
    13: (2025, 12, 25),
    14: (2025, 12, 6),
    17: (2025, 11, 28),
    18: (2025, 10, 26),
    19: (2025, 10, 21),
    23: (2025, 9, 29),  # 日本時間2025年9月29日
}


@pytest.mark.parametrize("line_no", sorted(SAMPLE_DATES), ids=lambda n: f"line{n}")
def test_dates_are_the_best_the_text_supports(sample_feed, line_no: int) -> None:
    _, _, _, feed, lines = sample_feed
    e = entry_for(feed, lines[line_no - 1])
    expected = SAMPLE_DATES[line_no]
    if expected is None:
        assert "published" not in e
        return
    published = datetime.fromisoformat(e.published).astimezone(TOKYO)
    assert published.date() == datetime(*expected).date()


def test_undated_summaries_take_fetch_time_in_page_order(sample_feed) -> None:
    _, _, _, feed, lines = sample_feed
    undated = [(i, entry_for(feed, line)) for i, line in enumerate(lines) if i >= 4]
    undated = [(i, e) for i, e in undated if "published" not in e]
    assert len(undated) >= 5
    times = [datetime.fromisoformat(e.updated) for _, e in undated]
    for t in times:
        assert NOW - timedelta(minutes=5) <= t <= NOW
    assert times == sorted(times, reverse=True), "earlier on the page = newer"
    assert len(set(times)) == len(times), "staggered, so a reader keeps the page's order"


# ---------------------------------------------------------------- issue 2, point 6 and 7


def test_ids_are_uris_and_second_refresh_leaves_feed_untouched(sample_feed) -> None:
    config, _, path, feed, _ = sample_feed
    ids = [e.id for e in feed.entries]
    assert all(re.match(r"^(urn:uuid:[0-9a-f-]{36}|tag:.+|https?://.+)$", i) for i in ids)
    assert len(set(ids)) == 20
    before_bytes, before_mtime = path.read_bytes(), path.stat().st_mtime_ns
    results = pipeline.refresh(config, now=NOW + timedelta(hours=1))
    assert results[0].new == 0 and results[0].updated == 0 and not results[0].feed_written
    assert path.read_bytes() == before_bytes
    assert path.stat().st_mtime_ns == before_mtime
    again = read_feed(path)
    assert [e.id for e in again.entries] == ids


def test_feed_metadata(shared_dir: Path, http_server, tmp_path: Path) -> None:
    body = (shared_dir / "samples" / "topic-page-peace-talks.txt").read_bytes()
    url = http_server.route("/t", body, headers={"Content-Type": "text/plain; charset=utf-8"})
    config = write_config(tmp_path, topic_toml("peace-talks", url, more='subtitle = "記事一覧"'),
                          extra='base_url = "https://feeds.example.org/"')
    pipeline.refresh(config, now=NOW)
    raw = (config.output_dir / "peace-talks.atom").read_bytes()
    feed = read_feed(config.output_dir / "peace-talks.atom")
    assert b'xml:lang="ja"' in raw
    assert feed.feed.title == "和平交渉"
    links = {(link.rel, link.href) for link in feed.feed.links}
    assert ("self", "https://feeds.example.org/peace-talks.atom") in links
    assert ("alternate", url) in links
    assert feed.feed.updated == max(e.updated for e in feed.entries)
    assert "generator" in feed.feed or "author" in feed.feed
    for e in feed.entries:
        assert e.link  # no article URLs on a text page: the link is the source page
        assert e.link == url


# ---------------------------------------------------------------- through the CLI, as a user


def copy_shipped_config(tmp_path: Path) -> Path:
    shutil.copy(ROOT / "config.toml", tmp_path / "config.toml")
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    return tmp_path


def test_shipped_config_runs_offline_through_the_cli(tmp_path: Path) -> None:
    work = copy_shipped_config(tmp_path)
    proc = run_cli("refresh", "-v", cwd=work)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert lines[0].startswith("peace-talks: 20 entries, 20 new, 0 updated, 0 failed sources")
    assert lines[1].startswith("space: 10 entries, 10 new")
    assert proc.stderr == ""
    talks = read_feed(work / "feeds" / "peace-talks.atom")
    assert len(talks.entries) == 20
    assert talks.entries[0].title  # every entry has a readable title
    space = read_feed(work / "feeds" / "space.atom")
    assert len(space.entries) == 10
    titles = [e.title for e in space.entries]
    assert titles[0].startswith("国産月着陸機")  # the featured story, once, with its real headline
    assert not any("ランキング" in t or "転職" in t or "会社案内" in t for t in titles)
    links = [e.link for e in space.entries]
    # the saved page's <base href> points at the site, so links are the articles' real URLs, untracked
    assert all(link.startswith("https://www.minato-shimbun.example/articles/") for link in links), links
    assert not any("utm_" in link for link in links)
    assert (work / "state" / "feedsvc.sqlite").exists()
    # second run: nothing new, files untouched
    mtime = (work / "feeds" / "space.atom").stat().st_mtime_ns
    again = run_cli("refresh", "-v", cwd=work)
    assert again.returncode == 0
    assert "0 new" in again.stdout and "(feed unchanged)" in again.stdout
    assert (work / "feeds" / "space.atom").stat().st_mtime_ns == mtime


def test_sample_page_through_the_cli(shared_dir: Path, http_server, tmp_path: Path) -> None:
    body = (shared_dir / "samples" / "topic-page-peace-talks.txt").read_bytes()
    url = http_server.route("/peace", body, headers={"Content-Type": "text/plain; charset=utf-8"})
    write_config(tmp_path, topic_toml("peace-talks", url))
    proc = run_cli("refresh", "-v", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("peace-talks: 20 entries, 20 new")
    feed = read_feed(tmp_path / "feeds" / "peace-talks.atom")
    lines = sample_lines(shared_dir)
    assert len(feed.entries) == 20
    assert entry_for(feed, lines[1]).title == lines[0]


def test_failing_source_is_named_other_topics_written_exit_1(http_server, tmp_path: Path) -> None:
    good = http_server.route("/good", "見出し\n本文の一行目です。これは要約です。\n二つ目の記事の要約です。",
                             headers={"Content-Type": "text/plain; charset=utf-8"})
    bad = http_server.route("/bad", "oops", status=500)
    write_config(tmp_path, topic_toml("good", good) + topic_toml("broken", bad, title="壊れた"))
    proc = run_cli("refresh", "-v", cwd=tmp_path)
    assert proc.returncode == 1
    assert f"source failed: {bad}" in proc.stderr and "500" in proc.stderr
    assert (tmp_path / "feeds" / "good.atom").exists()
    assert "good: 2 entries" in proc.stdout


def test_quiet_prints_nothing_when_all_is_well(tmp_path: Path) -> None:
    work = copy_shipped_config(tmp_path)
    proc = run_cli("--quiet", "refresh", cwd=work)
    assert proc.returncode == 0 and proc.stdout == "" and proc.stderr == ""
    # and not on a terminal (as under cron) the summary lines stay quiet without --quiet too
    proc = run_cli("refresh", cwd=work)
    assert proc.returncode == 0 and proc.stdout == ""


def test_unknown_topic_is_a_usage_error(tmp_path: Path) -> None:
    work = copy_shipped_config(tmp_path)
    proc = run_cli("refresh", "nope", cwd=work)
    assert proc.returncode == 2
    assert "unknown topic 'nope'" in proc.stderr and "peace-talks" in proc.stderr


def test_include_and_exclude_keywords(http_server, tmp_path: Path) -> None:
    page = "停戦協議が再開された。仲介国が発表した。\n物価の動向について日銀が見解を示した。\n停戦監視団の派遣費用を負担する方針を確認した。\n"
    url = http_server.route("/kw", page, headers={"Content-Type": "text/plain; charset=utf-8"})
    config = write_config(tmp_path, topic_toml("kw", url, more='include = ["停戦"]\nexclude = ["監視団"]'))
    pipeline.refresh(config, now=NOW)
    feed = read_feed(config.output_dir / "kw.atom")
    assert [e.summary for e in feed.entries] == ["停戦協議が再開された。仲介国が発表した。"]


def test_help_shows_examples() -> None:
    for args in (["--help"], ["refresh", "--help"], ["run", "--help"], ["preview", "--help"],
                 ["status", "--help"], ["serve", "--help"], ["check", "--help"]):
        proc = run_cli(*args, cwd=ROOT)
        assert proc.returncode == 0
        assert "examples:" in proc.stdout and "feedsvc " in proc.stdout


def test_websub_hub_is_pinged_when_a_feed_changes(http_server, tmp_path: Path) -> None:
    page = http_server.route("/p", "最初の記事の要約です。\n", headers={"Content-Type": "text/plain; charset=utf-8"})
    hub = http_server.route("/hub", "", status=204)
    config = write_config(tmp_path, topic_toml("t", page),
                          extra=f'base_url = "https://feeds.example.org/"\nwebsub_hub = "{hub}"')
    pipeline.refresh(config, now=NOW)
    pings = [h for h in http_server.hits_for("/hub") if h.method == "POST"]
    assert len(pings) == 1
    assert b"hub.mode=publish" in pings[0].body
    assert b"hub.url=https%3A%2F%2Ffeeds.example.org%2Ft.atom" in pings[0].body
    pipeline.refresh(config, now=NOW + timedelta(hours=1))  # nothing changed: no ping
    assert len([h for h in http_server.hits_for("/hub") if h.method == "POST"]) == 1


def test_status_json_after_a_failure(http_server, tmp_path: Path) -> None:
    good = http_server.route("/ok", "要約の一行目です。\n二行目の要約です。\n", headers={"Content-Type": "text/plain"})
    bad = http_server.route("/gone", "", status=404)
    write_config(tmp_path, topic_toml("mixed", good, more="") + f'[[topics.sources]]\nurl = "{bad}"\n')
    assert run_cli("refresh", cwd=tmp_path).returncode == 1
    proc = run_cli("status", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    import json

    status = json.loads(proc.stdout)
    (topic,) = status["topics"]
    assert topic["id"] == "mixed" and topic["entries"] == 2
    ok, failed = topic["sources"]
    assert ok["url"] == good and ok["consecutive_failures"] == 0 and ok["items"] == 2 and ok["last_success"]
    assert failed["url"] == bad and failed["consecutive_failures"] == 1 and "404" in failed["last_error"]
    assert failed["next_try"] > failed["last_failure"]
    table = run_cli("status", cwd=tmp_path).stdout
    assert "FAILING x1" in table and bad in table


def test_preview_json_touches_no_state_and_no_feed(http_server, tmp_path: Path) -> None:
    url = http_server.route("/list", (ROOT / "examples" / "space.html").read_bytes(),
                            headers={"Content-Type": "text/html; charset=utf-8"})
    proc = run_cli("preview", url, "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    import json

    items = json.loads(proc.stdout)
    assert len(items) == 10
    assert {"title", "link", "published", "summary", "found_by"} <= set(items[0])
    assert items[0]["link"] == "https://www.minato-shimbun.example/articles/20261124-moonlander/"
    assert list(tmp_path.iterdir()) == []  # no state, no feeds
    # selectors from the command line override detection
    proc = run_cli("preview", url, "--json", "--item", "section.ranking li", "--title", "a", "--link", "a@href",
                   cwd=tmp_path)
    ranked = json.loads(proc.stdout)
    assert len(ranked) == 5 and all(i["found_by"] == "selectors" for i in ranked)


def test_dry_run_lists_new_updated_and_merged(http_server, tmp_path: Path) -> None:
    first = ("停戦協議の第三回会合が首都で開かれ、双方は捕虜交換の手順について大筋で合意した。\n"
             "物価上昇を受けて中央銀行は政策金利を据え置くと発表し、市場の反応は限られた。\n")
    url = http_server.route("/dr", first, headers={"Content-Type": "text/plain; charset=utf-8"})
    write_config(tmp_path, topic_toml("dr", url))
    assert run_cli("refresh", cwd=tmp_path).returncode == 0
    state = (tmp_path / "state" / "feedsvc.sqlite").read_bytes()
    edited = first.replace("大筋で合意した。", "大筋で合意した。来月にも実施する。")
    http_server.route("/dr", edited + "台風の接近に備えて沿岸の自治体が避難所を開設した。\n"
                      + "停戦協議の第三回会合が首都で開かれ、双方は捕虜交換の手順について大筋で合意した。\n",
                      headers={"Content-Type": "text/plain; charset=utf-8"})
    proc = run_cli("refresh", "--dry-run", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert out.startswith("dr: would add 1, update 1, keep 1, merge 1 duplicate(s)")
    assert "new      台風の接近に備えて" in out
    assert "summary was: 停戦協議の第三回会合" in out and "来月にも実施する。" in out
    assert "merged" in out
    assert (tmp_path / "state" / "feedsvc.sqlite").read_bytes() == state
