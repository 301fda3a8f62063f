"""Property tests: normalization never raises on any string, and is idempotent where it should be."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from feedsvc.model import RawItem
from feedsvc.normalize import NormalizeContext, normalize_item
from feedsvc.normalize.dates import FUTURE_TOLERANCE, find_date, parse_markup_date, strip_leading_date
from feedsvc.normalize.text import clean_text, fold, sanitize_html
from feedsvc.normalize.titles import TITLE_LIMIT_LATIN, derive_title
from feedsvc.normalize.urls import canonical_url

NOW = datetime(2026, 1, 20, 3, 0, tzinfo=UTC)
# Text that looks like what pages hold: dates, digits (also full-width), CJK, punctuation, entities, URLs.
PIECES = st.sampled_from([
    "2025", "年", "12", "月", "28", "日", "〜", "29", "/", ".", "-", ":", "時", "分", "午後", "夜", "現地", "日本時間",
    "令和", "元", "７", "１２", "Dec.", "December", "Monday", " ", "　", "、", "。", "「", "」", "(", ")", "&amp;",
    "&#x0;", "\u200b", "\x00", "ago", "3 hours", "昨日", "前", "http://", "HTTP://", "Ex.COM", ":80", "#", "?",
    "utm_source=x", "&", "=", "%", "%e5", "..", "//", "\\", "javascript:", "[", "]", "@", "和平", "a", "Z", "+09:00",
])
TEXT = st.one_of(st.text(max_size=200), st.lists(PIECES, max_size=30).map("".join))


@settings(max_examples=300, deadline=None)
@given(TEXT)
def test_text_functions_never_raise_and_are_idempotent(s: str) -> None:
    c = clean_text(s)
    assert clean_text(c) == c
    f = fold(s)
    assert fold(f) == f
    h = sanitize_html(s, "https://example.jp/a/")
    assert sanitize_html(h, "https://example.jp/a/") == h


@settings(max_examples=300, deadline=None)
@given(TEXT, st.sampled_from([None, "https://example.jp/a/b?c=1", "file:///srv/p.html"]))
def test_canonical_url_never_raises_and_is_idempotent(s: str, base: str | None) -> None:
    u = canonical_url(s, base)
    if u is not None:
        assert canonical_url(u) == u
        assert u.startswith(("http://", "https://", "file:"))


@settings(max_examples=300, deadline=None)
@given(TEXT, st.sampled_from(["Asia/Tokyo", "UTC", "America/New_York", "Not/AZone"]),
       st.sampled_from([None, "ja", "en-US", "el"]))
def test_dates_never_raise_and_never_lie_in_the_future(s: str, tz: str, language: str | None) -> None:
    d = find_date(s, NOW, tz, language=language)
    if d is not None:
        assert d.tzinfo is not None and d <= NOW + FUTURE_TOLERANCE
    m = parse_markup_date(s, tz)
    assert m is None or m.tzinfo is not None
    strip_leading_date(s)


@settings(max_examples=300, deadline=None)
@given(TEXT)
def test_derive_title_never_raises_and_is_bounded(s: str) -> None:
    t = derive_title(s)
    assert len(t) <= TITLE_LIMIT_LATIN
    if clean_text(s):
        assert t


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.none(), TEXT), st.one_of(st.none(), TEXT), st.one_of(st.none(), TEXT),
       st.one_of(st.none(), TEXT))
def test_normalize_item_never_raises(title, summary, link, html) -> None:
    ctx = NormalizeContext("https://example.jp/topic", NOW, "Asia/Tokyo")
    item = normalize_item(RawItem(position=0, found_by="t", title=title, summary=summary, link=link,
                                  summary_html=html, date_text=summary), ctx)
    if item is not None:
        assert item.title and item.key
        assert item.published is None or item.published <= NOW + FUTURE_TOLERANCE
