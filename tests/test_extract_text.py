"""Plain-text pages: headline/summary lines, page-description lines, repeats."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from feedsvc.extract import explain, extract_items
from feedsvc.extract.rules import is_headline_line, is_page_description
from feedsvc.model import Page

FETCHED = datetime(2026, 1, 20, 3, 0, tzinfo=UTC)


def text_page(text: str) -> Page:
    return Page(url="https://example.jp/topic.txt", text=text, content_type="text/plain", encoding="utf-8",
                fetched_at=FETCHED)


def test_sample_topic_page_gives_twenty_items_first_with_headline(shared_dir):
    lines = (shared_dir / "samples" / "topic-page-peace-talks.txt").read_text(encoding="utf-8").splitlines()
    items = extract_items(text_page("\n".join(lines)))

    assert len(items) == 20
    assert items[0].title == lines[0].strip()
    assert items[0].summary == lines[1].strip()
    assert all(i.title is None for i in items[1:])
    summaries = [i.summary for i in items]
    assert lines[2].strip() not in summaries  # the page describing itself is not an item
    assert summaries.count(lines[3].strip()) == 1  # the featured summary repeated as line 4 is dropped
    assert summaries[1:] == [ln.strip() for ln in lines[4:23]]
    assert [i.position for i in items] == list(range(20))
    assert {i.found_by for i in items} == {"text-lines"}


@pytest.mark.parametrize("text, expected", [
    pytest.param("Talks resume in Geneva\nNegotiators returned to the table on Sunday after a pause of two weeks.\n"
                 "Aid convoy reaches the city\nTrucks crossed the front line under a local truce, officials said.",
                 [("Talks resume in Geneva", "Negotiators returned"), ("Aid convoy reaches the city", "Trucks crossed")],
                 id="headline-summary-pairs"),
    pytest.param("A long summary line that ends like a sentence and has no headline of its own.\n"
                 "Second headline here\nIts summary follows on the next line and ends with a full stop.",
                 [(None, "A long summary"), ("Second headline here", "Its summary")], id="pair-after-summary"),
    pytest.param("Headline one\nHeadline two\nSummary of the second story, which ends with a full stop.",
                 [("Headline one", None), ("Headline two", "Summary of the second")], id="headline-without-summary"),
    pytest.param("First story headline\nFirst story summary, written as a sentence.\n\n"
                 "Second story headline\nSecond story summary, in two lines\nthat belong together.",
                 [("First story headline", "First story summary"), ("Second story headline", "Second story summary")],
                 id="blank-line-blocks"),
    pytest.param("This page lists articles about the river.\nA summary of the only story on the page, as a sentence.",
                 [(None, "A summary of the only story")], id="english-description-dropped"),
    pytest.param("本ページでは「物流」をテーマとした記事を一覧で掲載しています。\n運送各社が値上げを表明した。荷主との交渉が続く。",
                 [(None, "運送各社が値上げを表明した")], id="japanese-description-dropped"),
    pytest.param("同じ要約の行です。繰り返しは一度だけ残る。\n同じ要約の行です。繰り返しは一度だけ残る。",
                 [(None, "同じ要約の行です")], id="exact-repeat-dropped"),
    pytest.param("", [], id="empty"),
    pytest.param("\n\n   \n", [], id="blank"),
])
def test_text_lines(text, expected):
    items = extract_items(text_page(text))
    got = [(i.title, (i.summary or "")[: len(s)] if s else i.summary) for i, (_, s) in zip(items, expected)]
    assert len(items) == len(expected)
    assert got == [(t, s) for t, s in expected]


def test_date_only_line_becomes_date_text():
    items = extract_items(text_page("Dam release delayed\nA judge paused the release until surveys finish.\n"
                                    "March 11, 2016\n\nNext headline\nNext summary, as a sentence."))
    assert items[0].date_text == "March 11, 2016"


@pytest.mark.parametrize("line, description", [
    pytest.param("本ページでは「和平交渉」をテーマとした記事を一覧で掲載しています。", True, id="ja-honpeeji"),
    pytest.param("このページは最新ニュースの一覧です。", True, id="ja-kono-peeji"),
    pytest.param("Articles tagged \"water rights\"", True, id="en-tagged"),
    pytest.param("This page lists every story about the election.", True, id="en-this-page"),
    pytest.param("政府は支援策の一覧を公表した。", False, id="ja-article-mentions-ichiran"),
    pytest.param("The page of history turned on Tuesday, the minister said.", False, id="en-article"),
])
def test_page_description_vocabulary(line, description):
    assert is_page_description(line) is description


@pytest.mark.parametrize("line, headline", [
    pytest.param("トランプ氏、ゼレンスキー氏に「和平好機逃すな」 交渉加速促す", True, id="ja-headline"),
    pytest.param("停戦への機運は高まる。", False, id="ja-sentence"),
    pytest.param("Talks resume in Geneva", True, id="en-headline"),
    pytest.param("Talks resumed in Geneva.", False, id="en-sentence"),
    pytest.param("x" * 120, False, id="too-long"),
])
def test_headline_lines(line, headline):
    assert is_headline_line(line) is headline


def test_explain_names_text_strategy():
    assert explain(text_page("Headline\nSummary as a sentence.")).startswith("text-lines:")
