"""No invented dates (issue 18, point 7): a date comes from the item's date line, a dateline, or a date
written in full in its text, never from "Friday", "today" or "this morning" in a post's body.

`now` is 2026-01-20T03:00Z (a Tuesday). Each case gives the RawItem's date line (date_text: extraction fills
it from the item's date/byline element), summary and title, and the date normalize must give it: "YYYY-MM-DD"
= midnight of that day in the case's zone, a full ISO string = that instant, None = no date (a wrong date is
worse than none).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import feedparser
import pytest

from atomcheck import assert_valid_atom
from feedsvc import pipeline
from feedsvc.config import load_config
from feedsvc.model import RawItem
from feedsvc.normalize import NormalizeContext, normalize_item, normalize_items
from feedsvc.normalize.dates import find_date, find_dateline

NOW = datetime(2026, 1, 20, 3, 0, tzinfo=UTC)
P = pytest.param


def _when(value: str | None, tz: str) -> datetime | None:
    if value is None:
        return None
    if "T" in value:
        return datetime.fromisoformat(value)
    y, m, d = map(int, value.split("-"))
    return datetime(y, m, d, tzinfo=ZoneInfo(tz))


# (date_text, summary, title, language, zone, expected)
ITEM_CASES = [
    # --- relative words in free text give no date (the pages that failed: a 2019 post, a 2010 page) ---
    P(None, "We met the mayor on Friday and talked about the new bridge.", "Bridge talks", "en", "UTC", None,
      id="weekday-in-body"),
    P(None, "Today the council votes on the budget.", "Budget", "en", "UTC", None, id="today-in-body"),
    P(None, "Sunday morning I took the kids to the lake.", "A morning at the lake", "en", "UTC", None,
      id="sunday-morning-in-body"),
    P(None, "This morning the rain finally stopped.", "Rain", "en", "UTC", None, id="this-morning-in-body"),
    P(None, "Three hours ago nobody knew. 3 hours ago the news broke.", "News", "en", "UTC", None,
      id="hours-ago-in-body"),
    P(None, "Last night's game went to overtime.", "Overtime", "en", "UTC", None, id="last-night-in-body"),
    P(None, "首相は昨日の会見で停戦案に触れた。", "停戦案", "ja", "Asia/Tokyo", None, id="ja-kinou-in-body"),
    P(None, "本日は晴天なり。今朝の気温は3度。", "天気", "ja", "Asia/Tokyo", None, id="ja-honjitsu-kesa-in-body"),
    P(None, "2日前に発表された調査によると", "調査", "ja", "Asia/Tokyo", None, id="ja-days-ago-in-body"),
    P(None, "Story", "See you on Monday", "en", "UTC", None, id="weekday-in-title"),
    P(None, "", "Today in history", "en", "UTC", None, id="today-in-title"),
    # --- relative words in the item's date line still work ---
    P("3 hours ago", "Friday was busy.", "T", "en", "UTC", "2026-01-20T00:00+00:00", id="date-line-hours-ago"),
    P("yesterday", "", "T", "en", "UTC", "2026-01-19", id="date-line-yesterday"),
    P("Friday", "", "T", "en", "UTC", "2026-01-16", id="date-line-weekday"),
    P("this morning", "", "T", "en", "UTC", "2026-01-20", id="date-line-this-morning"),
    P("Posted today", "Sunday morning we sailed.", "T", "en", "UTC", "2026-01-20", id="date-line-posted-today"),
    P("昨日", "", "T", "ja", "Asia/Tokyo", "2026-01-19", id="date-line-ja-kinou"),
    P("5分前", "", "T", "ja", "Asia/Tokyo", "2026-01-20T11:55+09:00", id="date-line-ja-minutes-ago"),
    # --- a dateline beats the dates of free text ---
    P(None, "On August 1 we bought a boat. Friday we sailed. Posted on August 23, 2019 at 6:19 PM", "Boat",
      "en", "UTC", "2019-08-23T18:19+00:00", id="dateline-beats-earlier-date-in-body"),
    P(None, "We sailed on Friday. posted by Ann on Aug 2, 2019", "Boat", "en", "UTC", "2019-08-02",
      id="dateline-lowercase-posted-by"),
    P(None, "Posted 3 hours ago by Ann. Friday we sailed.", "Boat", "en", "UTC", "2026-01-20T00:00+00:00",
      id="dateline-relative-right-after-posted"),
    P(None, "I posted today about the boat.", "Boat", "en", "UTC", None, id="posted-in-prose-is-no-dateline"),
    P(None, "2025年12月1日に着工した橋。投稿日：2025年12月20日", "橋", "ja", "Asia/Tokyo", "2025-12-20",
      id="dateline-ja-label"),
    P(None, "The report, published on March 3, 2025, says so. The vote was on March 9, 2025.", "Vote", "en", "UTC",
      "2025-03-03", id="published-in-prose-is-not-a-dateline-first-date-stays"),
    P("Jan 5, 2026", "Posted on August 23, 2019", "T", "en", "UTC", "2026-01-05", id="date-line-beats-dateline"),
    # --- a title's date that opens a period or a start is not the item's date ---
    P(None, "", "2016年10月1日より営業時間を変更します", "ja", "Asia/Tokyo", None, id="title-yori"),
    P(None, "", "10月1日(土)から新ダイヤ", "ja", "Asia/Tokyo", None, id="title-kara-with-weekday"),
    P(None, "", "2025年12月28日〜2026年1月3日は休業", "ja", "Asia/Tokyo", None, id="title-range"),
    P(None, "", "New hours starting Oct. 1, 2016", "en", "UTC", None, id="title-starting"),
    P(None, "", "Exhibition from March 3, 2025 until April 1, 2025", "en", "UTC", None, id="title-from-until"),
    P(None, "", "2025年12月28日の会見で首相が表明", "ja", "Asia/Tokyo", "2025-12-28", id="title-plain-date-kept"),
    P(None, "2025年9月1日に発表した。", "2016年10月1日より営業時間を変更", "ja", "Asia/Tokyo", "2025-09-01",
      id="title-period-summary-date-wins"),
    # --- what works stays: dates written in summaries of link-less items (../shared/samples/) ---
    P(None, "国際社会の注目を集める中、現地13日、トランプ氏は", None, "ja", "Asia/Tokyo", "2026-01-13",
      id="sample-genchi-day"),
    P(None, "1月16日発表のキーウ国際社会学研究所(KIIS)の世論調査では", None, "ja", "Asia/Tokyo", "2026-01-16",
      id="sample-month-day-happyo"),
    P(None, "ロシアは2025年12月28〜29日にノブゴロド州の…WSJは31日、", None, "ja", "Asia/Tokyo", "2025-12-28",
      id="sample-range-in-summary-is-its-first-day"),
    P(None, "ホワイトハウスの車寄せで20日夜、トランプ大統領は", None, "ja", "Asia/Tokyo", "2026-01-20",
      id="sample-day-alone-night"),
    P(None, "He spoke on Friday, December 23, 2016 in Rome.", "Rome", "en", "UTC", "2016-12-23",
      id="weekday-written-with-its-date-is-fine"),
]


@pytest.mark.parametrize(("date_text", "summary", "title", "language", "tz", "expected"), ITEM_CASES)
def test_item_date(date_text: str | None, summary: str, title: str | None, language: str, tz: str,
                   expected: str | None) -> None:
    ctx = NormalizeContext("https://example.org/list", NOW, tz, language)
    item = normalize_item(RawItem(position=0, found_by="test", title=title, summary=summary, date_text=date_text),
                          ctx)
    assert item is not None
    want = _when(expected, tz)
    assert item.published == want, (item.published, want)
    if want is not None:
        assert item.published is not None and item.published.utcoffset() == want.utcoffset()
        assert item.published_from == "text"


@pytest.mark.parametrize(("text", "date_line", "free"), [
    P("Friday", "2026-01-16", None, id="weekday"),
    P("on Friday, December 23, 2016", "2016-12-23", "2016-12-23", id="weekday-before-its-date"),
    P("today", "2026-01-20", None, id="today"),
    P("tonight", "2026-01-20", None, id="tonight"),
    P("this  evening", "2026-01-20", None, id="this-evening"),
    P("last night", "2026-01-19", None, id="last-night"),
    P("今夜", "2026-01-20", None, id="ja-konya"),
    P("Friday, after the Dec 28, 2025 vote", "2026-01-16", "2025-12-28", id="free-text-skips-to-written-date"),
])
def test_relative_words_only_in_date_lines(text: str, date_line: str, free: str | None) -> None:
    assert find_date(text, NOW, "UTC") == _when(date_line, "UTC")
    assert find_date(text, NOW, "UTC", relative=False) == _when(free, "UTC")


def test_dateline_needs_a_marker() -> None:
    assert find_dateline("The vote was on March 9, 2025.", NOW, "UTC") is None
    found = find_dateline("Body text. Posted on August 23, 2019 at 6:19 PM", NOW, "UTC")
    assert found is not None and found.when == datetime(2019, 8, 23, 18, 19, tzinfo=UTC)


def test_weekday_in_body_does_not_anchor_the_list() -> None:
    # A relative date anchors the list-level refinement: a body's "Monday" taken as 2026-01-19 would move
    # the "20日夜" below it to 2025-12-20; with no date from it, 2025-10-26 anchors it to 2025-10-20.
    ctx = NormalizeContext("https://example.jp/list", NOW, "Asia/Tokyo", "ja")
    summaries = ["2025年10月26日、表明。", "Monday の会見で述べた。", "20日夜、述べた。", "2025年10月5日、発表。",
                 "2025年10月2日、発表。", "2025年9月30日、発表。"]
    got = [i.published for i in normalize_items(
        [RawItem(position=i, found_by="test", summary=s) for i, s in enumerate(summaries)], ctx)]
    assert got == [_when(v, "Asia/Tokyo") for v in
                   ("2025-10-26", None, "2025-10-20", "2025-10-05", "2025-10-02", "2025-09-30")]


# --- through a real refresh -------------------------------------------------------------------------------

BLOG = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Sailing log</title></head><body>
<main>
<article class="post"><h2><a href="/2019/08/boat">We bought a boat</a></h2>
<p>Friday we finally signed the papers, and today the boat is ours. Sunday morning we sail.</p>
<p class="byline">Posted on August 23, 2019 at 6:19 PM</p></article>
<article class="post"><h2><a href="/2019/08/harbour">The harbour</a></h2>
<p>This morning the harbour master showed us our berth, and we met the neighbours on Monday.</p>
<p class="byline">Posted on August 20, 2019 at 9:05 AM</p></article>
<article class="post"><h2><a href="/2019/08/plans">Plans</a></h2>
<p>Today we sit down and plan the summer, three hours ago it stopped raining at last.</p>
<p class="byline">Posted by Ann</p></article>
<article class="post"><h2><a href="/2016/09/hours">2016年10月1日より営業時間を変更します</a></h2>
<p>The marina office changes its opening hours, effective from the first of the month.</p>
<p class="byline">Posted by the marina</p></article>
</main></body></html>
"""


def test_refresh_invents_no_dates(http_server, tmp_path: Path) -> None:
    url = http_server.route("/blog", BLOG.encode(), headers={"Content-Type": "text/html; charset=utf-8"})
    config_path = tmp_path / "config.toml"
    config_path.write_text(
        '[feedsvc]\nhost_delay = "0s"\n[[topics]]\nid = "log"\ntitle = "Sailing log"\nlanguage = "en"\n'
        f'timezone = "UTC"\n[[topics.sources]]\nurl = "{url}"\n', encoding="utf-8")
    config = load_config(config_path)
    pipeline.refresh(config, now=NOW)
    data = (config.output_dir / "log.atom").read_bytes()
    assert_valid_atom(data)
    feed = feedparser.parse(data)
    by_title = {e.title: e for e in feed.entries}
    assert set(by_title) == {"We bought a boat", "The harbour", "Plans", "2016年10月1日より営業時間を変更します"}
    assert by_title["We bought a boat"].published.startswith("2019-08-23T18:19:00")
    assert by_title["The harbour"].published.startswith("2019-08-20T09:05:00")
    # no date of their own: the feed gives them their first-seen time (NOW), never a day taken from the body
    # ("today", "three hours ago") or the title (2016-10-01)
    for title in ("Plans", "2016年10月1日より営業時間を変更します"):
        published = by_title[title].get("published", "")
        assert not published.startswith(("2016-10-01", "2026-01-16", "2026-01-18", "2026-01-19")), published
