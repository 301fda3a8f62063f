"""Issue 19.5: text too long or misleading. A 1 MB headline becomes a title of TITLE_MAX characters;
bidi embeddings, overrides and isolates never reach a title or summary in any format.

Tables for the cuts and the controls; one refresh over real HTTP reads every output file back."""

from __future__ import annotations

import json
import unicodedata

import feedparser
import pytest

from test_robust_support import SELECTORS, run_cli, write_config

from feedsvc.normalize.text import (ELLIPSIS, HTML_MAX, SUMMARY_MAX, TITLE_MAX, clean_summary, clean_text,
                                    clean_title, cut_text, html_to_text, sanitize_html)

BIDI = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"


@pytest.mark.parametrize("text, limit, expected", [
    pytest.param("short", 10, "short", id="fits"),
    pytest.param("one two three four five six", 16, "one two three…", id="at-a-space"),
    pytest.param("abcdefghijklmnop", 6, "abcde…", id="no-space"),
    pytest.param("e\u0301" * 10, 6, "e\u0301e\u0301" + ELLIPSIS, id="combining-mark-kept-whole"),
    pytest.param("ab👩\u200d👩\u200d👧cd", 6, "ab…", id="zwj-emoji-kept-whole"),
    pytest.param("a🇯🇵🇫🇷", 4, "a🇯🇵…", id="flag-kept-whole"),
    pytest.param("東京都" * 10, 7, "東京都東京都…", id="cjk"),
])
def test_cut_text(text, limit, expected):
    out = cut_text(text, limit)
    assert out == expected
    assert len(out) <= limit


def test_a_megabyte_headline_is_a_title_of_bounded_length():
    title = clean_title("Breaking news " * 75_000)
    assert len(title) <= TITLE_MAX and title.endswith(ELLIPSIS) and title.startswith("Breaking news")
    summary = clean_summary("word " * 250_000)
    assert len(summary) <= SUMMARY_MAX and summary.endswith(ELLIPSIS)
    assert len(sanitize_html("<p>" + "x" * 1_000_000 + "</p>")) <= HTML_MAX + 10
    assert len(html_to_text("<p>" + "x " * 500_000 + "</p>")) <= HTML_MAX


@pytest.mark.parametrize("raw", [
    "invoice\u202etxt.exe", "\u2066evil\u2069 title", "\u202aa\u202bb\u202cc\u202dd", "a &#x202E; b", "a &#8238; b",
], ids=["RLO", "isolates", "embeddings", "hex-reference", "decimal-reference"])
def test_bidi_overrides_and_isolates_are_removed(raw):
    for out in (clean_text(raw), clean_title(raw), sanitize_html(f"<p>{raw}</p>"), html_to_text(f"<p>{raw}</p>")):
        assert not set(out) & set(BIDI), repr(out)


def test_direction_marks_stay_in_right_to_left_text_and_go_elsewhere():
    assert "\u200f" in clean_text("שלום \u200f(2026)")
    assert "\u200e" not in clean_text("Hello \u200eworld") and clean_text("Hello \u200eworld") == "Hello world"


def test_refresh_caps_and_cleans_titles_in_every_format(tmp_path, http_server):
    huge = "Huge headline " * 75_000  # about 1 MB
    page = ("<html><body><ul>"
            f"<li class='story'><a href='/s/1'><h3>{huge}</h3></a><p>First.</p></li>"
            "<li class='story'><a href='/s/2'><h3>Pay \u202eorp.exe\u202c and \u2066hidden\u2069 now</h3></a>"
            "<p>Second \u202e summary.</p></li>"
            "</ul></body></html>")
    url = http_server.route("/p", page, headers={"Content-Type": "text/html; charset=utf-8"})
    config = write_config(tmp_path / "config.toml", [{"id": "t", "title": "T", "sources": [{"url": url, **SELECTORS}]}],
                          formats=["atom", "rss", "json"])
    proc = run_cli(config, "refresh", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    feeds = tmp_path / "feeds"
    titles = {}
    for fmt in ("atom", "rss"):
        parsed = feedparser.parse((feeds / f"t.{fmt}").read_bytes())
        titles[fmt] = [e.title for e in parsed.entries]
    titles["json"] = [i["title"] for i in json.loads((feeds / "t.json").read_text(encoding="utf-8"))["items"]]
    for fmt, got in titles.items():
        assert len(got) == 2, fmt
        assert all(len(t) <= TITLE_MAX for t in got), fmt
        assert any(t.startswith("Huge headline") and t.endswith(ELLIPSIS) for t in got), fmt
        assert "Pay orp.exe and hidden now" in got, (fmt, got)
    for path in feeds.iterdir():
        data = path.read_text(encoding="utf-8")
        assert not [c for c in data if unicodedata.category(c) == "Cf" and c in BIDI], path.name
        assert "&#8238;" not in data and "&#x202e;" not in data.lower(), path.name
        assert len(data) < 200_000, (path.name, len(data))  # was 2 MB
