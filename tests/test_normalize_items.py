"""normalize_item / normalize_items: fields of an Item, and the list-level date refinement."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from feedsvc.model import RawItem
from feedsvc.normalize import NormalizeContext, fold, normalize_item, normalize_items

NOW = datetime(2026, 1, 20, 3, 0, tzinfo=UTC)
TOKYO = ZoneInfo("Asia/Tokyo")
CTX = NormalizeContext("https://news.example.jp/topics/peace?utm_source=x", NOW, "Asia/Tokyo", "ja")
P = pytest.param


def raw(position: int = 0, **kw) -> RawItem:
    return RawItem(position=position, found_by="test", **kw)


def day(y: int, m: int, d: int) -> datetime:
    return datetime(y, m, d, tzinfo=TOKYO)


def test_item_with_headline_link_and_markup_date() -> None:
    item = normalize_item(raw(3, title=" 和平&amp;停戦 ", link="/a/1?utm_medium=rss#top", summary="本文。",
                              date=datetime(2025, 12, 28, 9, 0, tzinfo=TOKYO), image="//img.example.jp/1.jpg"), CTX)
    assert item is not None
    assert item.title == "和平&停戦" and not item.title_is_derived
    assert item.link == "https://news.example.jp/a/1" and item.key == item.link
    assert item.image == "https://img.example.jp/1.jpg"
    assert item.published == datetime(2025, 12, 28, 9, 0, tzinfo=TOKYO) and item.published_from == "markup"
    assert item.source_url == CTX.page_url and item.position == 3
    assert item.folded == fold("本文。")


def test_summary_only_item_gets_derived_title_and_text_key() -> None:
    summary = "2025年12月25日、タイとカンボジアの軍事衝突が続く中、米国務長官が首相と電話協議。戦闘終結を要請した。"
    item = normalize_item(raw(summary=summary, title="   "), CTX)
    assert item is not None and item.title_is_derived
    assert item.title == "タイとカンボジアの軍事衝突が続く中、米国務長官が首相と電話協議"
    assert item.link is None and item.key.startswith("text:") and len(item.key) == 5 + 16
    assert item.published == day(2025, 12, 25) and item.published_from == "text"
    # the same summary seen again, with other spacing and full-width forms, has the same key
    again = normalize_item(raw(7, summary=summary.replace("、", "、 ").replace("2025", "２０２５")), CTX)
    assert again is not None and again.key == item.key


def test_title_only_item_keeps_empty_summary() -> None:
    item = normalize_item(raw(title="日航株ストップ安 売買不成立"), CTX)
    assert item is not None and item.summary == "" and item.folded == fold("日航株ストップ安 売買不成立")
    assert item.key.startswith("text:")


@pytest.mark.parametrize("kw", [
    P({}, id="nothing"), P({"title": "  ", "summary": "\u200b"}, id="only-invisible"),
    P({"link": "https://example.jp/a"}, id="link-without-text"),
])
def test_items_without_text_are_dropped(kw: dict) -> None:
    assert normalize_item(raw(**kw), CTX) is None


def test_date_text_is_tried_before_summary_and_future_markup_is_ignored() -> None:
    item = normalize_item(raw(summary="12月6日に会談。", date_text="13/02/2016",
                              date=datetime(2027, 1, 1, tzinfo=UTC)), CTX)
    assert item is not None and item.published == day(2016, 2, 13) and item.published_from == "text"


def test_summary_html_is_sanitized_and_gives_plain_text() -> None:
    item = normalize_item(raw(summary_html='<p onclick="x()">停戦<script>alert(1)</script><a href="/a">合意</a></p>'),
                          CTX)
    assert item is not None
    assert item.summary == "停戦合意"
    assert item.summary_html is not None and "script" not in item.summary_html and "onclick" not in item.summary_html
    assert 'href="https://news.example.jp/a"' in item.summary_html


# --- list-level refinement ------------------------------------------------------------------------------
# Each case: the summaries of one page in page order, and the dates expected after normalize_items.
REFINE = [
    P(["2025年10月26日、表明。", "10月21日、表明。", "20日夜、述べた。", "19日放送の番組で。", "日本時間2025年9月29日に伝えた。"],
      [day(2025, 10, 26), day(2025, 10, 21), day(2025, 10, 20), day(2025, 10, 19), day(2025, 9, 29)],
      id="sample-tail-day-alone-moves-back-to-october"),
    P(["2025年3月2日、表明。", "12月28日、述べた。", "2024年12月20日、発表。", "2024年11月1日、発表。"],
      [day(2025, 3, 2), day(2024, 12, 28), day(2024, 12, 20), day(2024, 11, 1)],
      id="month-day-moves-back-a-year"),
    P(["現地13日、促した。", "1月16日発表の調査。", "2025年12月28日、主張。", "2025年12月25日、述べた。"],
      [day(2026, 1, 13), day(2026, 1, 16), day(2025, 12, 28), day(2025, 12, 25)],
      id="no-anchor-above-stays-as-resolved-alone"),
    P(["2025年10月1日、開始。", "2025年10月5日、続報。", "2025年10月9日、終了。", "20日、会見。"],
      [day(2025, 10, 1), day(2025, 10, 5), day(2025, 10, 9), day(2026, 1, 20)],
      id="oldest-first-list-is-not-refined"),
    P(["1945年8月15日の終戦から。", "2025年1月5日、述べた。", "2024年12月1日、発表。", "20日、会見。"],
      [day(1945, 8, 15), day(2025, 1, 5), day(2024, 12, 1), day(2026, 1, 20)],
      id="anchor-too-far-back-leaves-date-alone"),
    P(["2025年12月1日、表明。", "2025年11月30日、会見。", "31日、述べた。", "2025年10月2日、発表。"],
      [day(2025, 12, 1), day(2025, 11, 30), day(2025, 10, 31), day(2025, 10, 2)],
      id="day-31-skips-months-without-it"),
]


@pytest.mark.parametrize(("summaries", "expected"), REFINE)
def test_list_refinement(summaries: list[str], expected: list[datetime]) -> None:
    items = normalize_items([raw(i, summary=s) for i, s in enumerate(summaries)], CTX)
    assert [i.published for i in items] == expected


def test_single_item_rule_without_neighbours() -> None:
    # the same "20日夜" on its own resolves to the most recent 20th not in the future
    item = normalize_item(raw(summary="ホワイトハウスの車寄せで20日夜、述べた。"), CTX)
    assert item is not None and item.published == day(2026, 1, 20)


def test_items_come_back_in_page_order() -> None:
    items = normalize_items([raw(2, summary="c"), raw(0, summary="a"), raw(1), raw(3, title="d")], CTX)
    assert [i.position for i in items] == [0, 2, 3]


def test_context_needs_an_aware_fetch_time() -> None:
    with pytest.raises(ValueError):
        NormalizeContext("https://example.jp/", datetime(2026, 1, 20), "Asia/Tokyo")


# --- the real page the project exists for ----------------------------------------------------------------
SAMPLE_DATES = {  # line number -> expected date (None = no date), fetched 2026-01-20T03:00Z, Asia/Tokyo
    2: day(2026, 1, 13), 4: day(2026, 1, 13), 5: None, 6: day(2026, 1, 16), 7: None, 8: None,
    9: day(2025, 12, 28), 10: day(2025, 12, 28), 11: None, 12: day(2025, 12, 25), 13: day(2025, 12, 25),
    14: day(2025, 12, 6), 15: None, 16: None, 17: day(2025, 11, 28), 18: day(2025, 10, 26),
    19: day(2025, 10, 21), 20: day(2025, 10, 20), 21: day(2025, 10, 19), 22: None, 23: day(2025, 9, 29),
}


def test_sample_topic_page(shared_dir) -> None:
    lines = (shared_dir / "samples" / "topic-page-peace-talks.txt").read_text(encoding="utf-8").splitlines()
    # as the extractor gives them: lines 1+2 one item with a headline, line 3 dropped, one item per other line
    raws = [raw(0, title=lines[0], summary=lines[1])]
    raws += [raw(n - 3, summary=lines[n - 1]) for n in range(4, 24)]
    ctx = NormalizeContext("https://example.jp/theme/peace-talks", NOW, "Asia/Tokyo", "ja")
    items = normalize_items(raws, ctx)
    assert len(items) == 21
    line_of = {0: 2, **{n - 3: n for n in range(4, 24)}}
    got = {line_of[i.position]: i.published for i in items}
    assert got == SAMPLE_DATES
    assert items[0].title == lines[0] and not items[0].title_is_derived
    assert all(i.title_is_derived for i in items[1:])
    assert items[0].key == items[1].key, "line 4 repeats line 2: the same text key for dedupe"
    assert len({i.key for i in items}) == 20
    assert all(i.published_from == ("text" if i.published else None) for i in items)
