"""Article pages (issue 22): dates, image, canonical URL and main text read from an item's own page.

Fixture pages in tests/data/articles/ (written for these tests, one per way a page states its date),
then the 9 real pages of ../shared/corpus/articles/ (skipped without ../shared), through the
pipeline's reader, decoded as fetched pages are."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from feedsvc.decode import decode_body
from feedsvc.model import Article, Entry, Page
from feedsvc.normalize.article import with_article
from feedsvc.pipeline import read_article
from tests.benchload import load

DATA = Path(__file__).parent / "data" / "articles"
NOW = datetime(2026, 1, 20, 3, 0, tzinfo=UTC)
JST = timezone(timedelta(hours=9))


def page(name: str, url: str) -> Page:
    text, codec = decode_body((DATA / name).read_bytes(), content_type="text/html")
    return Page(url=url, text=text, content_type="text/html", encoding=codec, fetched_at=NOW)


def test_json_ld_wins_over_stale_meta_and_sidebar_time():
    a = read_article(page("jsonld.html", "https://www.minato-shimbun.example/articles/20251225-moon/?from=top"),
                     "meta", "Asia/Tokyo")
    assert a.published == datetime(2025, 12, 25, 14, 3, tzinfo=JST) and a.precise
    assert a.modified == datetime(2025, 12, 25, 18, 30, tzinfo=JST)
    assert a.image == "https://www.minato-shimbun.example/img/20251225-moon.jpg"
    assert a.canonical == "https://www.minato-shimbun.example/articles/20251225-moon/"
    assert a.content_html is None  # meta mode reads no text


def test_og_and_article_meta():
    a = read_article(page("ogmeta.html", "https://news.example.com/world/2025/12/28/ceasefire-talks/?utm=x"),
                     "meta", "UTC")
    assert a.published == datetime(2025, 12, 28, 7, 15, tzinfo=UTC) and a.precise
    assert a.modified == datetime(2025, 12, 28, 11, 40, tzinfo=UTC)
    assert a.image == "https://cdn.news.example.com/photos/geneva-talks.jpg"
    assert a.canonical == "https://news.example.com/world/2025/12/28/ceasefire-talks/"


def test_time_in_main_not_in_nav():
    a = read_article(page("time.html", "https://example.org/blog/3.2.html"), "meta", "UTC")
    assert a.published == datetime(2025, 3, 14, 16, 20, tzinfo=timezone(timedelta(hours=1)))


def test_text_only_date_line_read_in_the_sources_zone():
    a = read_article(page("textdate-sjis.html", "https://hitori.example.jp/2024/01/fuyu.html"), "meta", "Asia/Tokyo")
    assert a.published == datetime(2024, 1, 9, 7, 45, tzinfo=JST)
    assert a.precise


def test_full_mode_gives_sanitized_main_text():
    a = read_article(page("jsonld.html", "https://www.minato-shimbun.example/articles/20251225-moon/"),
                     "full", "Asia/Tokyo")
    assert a.content_html and "南極付近にある高台" in a.content_html and "2027年度" in a.content_html
    assert "<script" not in a.content_html and "関連" not in a.content_html  # the aside is not the story


def test_not_html_gives_nothing():
    a = read_article(Page(url="https://x.example/a.json", text="{}", content_type="application/json",
                          encoding="utf-8", fetched_at=NOW), "full", "UTC")
    assert a == Article(url="https://x.example/a.json")


def entry(published: datetime | None, source: str | None = "text", image: str | None = None) -> Entry:
    t = datetime(2025, 12, 25, 20, 0, tzinfo=UTC)
    return Entry(id="urn:uuid:1", title="t", title_is_derived=False, link="https://a.example/1", summary="s",
                 summary_html=None, published=published, published_from=source, image=image,
                 source_url="https://a.example/", position=0, first_seen_at=t, last_seen_at=t, updated_at=t)


@pytest.mark.parametrize(("listing", "article", "precise", "wins"), [
    (datetime(2025, 12, 25, tzinfo=JST), datetime(2025, 12, 25, 14, 3, tzinfo=JST), True, True),  # 12月25日 -> time
    (datetime(2025, 12, 25, tzinfo=JST), datetime(2025, 12, 26, 1, 0, tzinfo=JST), True, False),  # another day
    (datetime(2025, 12, 25, 9, 30, tzinfo=JST), datetime(2025, 12, 25, 14, 3, tzinfo=JST), True, False),  # listing has a time
    (datetime(2025, 12, 25, tzinfo=JST), datetime(2025, 12, 25, tzinfo=JST), False, False),  # not more precise
    (None, datetime(2025, 12, 24, tzinfo=JST), False, True),  # the listing gave none
])
def test_article_date_wins_only_when_more_precise_on_the_same_day(listing, article, precise, wins):
    e = entry(listing)
    merged = with_article(e, Article(url="u", published=article, precise=precise, image="https://a.example/i.jpg"),
                          "Asia/Tokyo")
    assert merged.published == (article if wins else listing)
    assert merged.updated_at == e.updated_at  # a date found on the article is not an edit
    assert merged.image == "https://a.example/i.jpg"
    assert with_article(entry(listing, image="https://a.example/own.jpg"), Article(url="u", image="x"),
                        "Asia/Tokyo").image == "https://a.example/own.jpg"  # the listing's image stays


def test_real_article_pages_dated_right(shared_dir):
    rows = load("eval_articles").evaluate(shared_dir / "corpus" / "articles")
    assert len(rows) == 9
    wrong = [(r.name, r.want, r.got) for r in rows if not r.right]
    assert len(rows) - len(wrong) >= 8, wrong


def test_articles_off_imports_no_article_library(tmp_path):
    """`article = "off"` (the default) costs nothing: a refresh loads neither htmldate nor trafilatura."""
    (tmp_path / "page.html").write_text("<ul>" + "".join(
        f'<li><a href="https://a.example/{i}">Story number {i} about the talks</a> <time datetime="2025-12-2{i}">'
        f"</time></li>" for i in range(5)) + "</ul>", encoding="utf-8")
    (tmp_path / "config.toml").write_text('[[topics]]\nid = "t"\ntitle = "T"\n[[topics.sources]]\nurl = "page.html"\n',
                                          encoding="utf-8")
    code = ("import sys; from feedsvc.cli import main; rc = main(['--config', sys.argv[1], '--quiet', 'refresh']); "
            "print(rc, [m for m in ('htmldate', 'trafilatura') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "config.toml")], capture_output=True,
                         text=True, timeout=60)
    assert out.stdout.split() == ["0", "[]"], out.stderr


def test_cost_bench_runs(shared_dir):
    """bench/eval_articles.py's cost part keeps working (no timing asserted, only that it measures)."""
    c = load("eval_articles").cost(shared_dir / "corpus" / "articles", rounds=1)
    assert c["stories"] == 9 and all(c[m] > 0 for m in ("off", "meta", "full"))
