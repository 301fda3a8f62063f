"""clean_text, fold and sanitize_html: tables."""

from __future__ import annotations

import pytest

from feedsvc.normalize.text import clean_text, fold, html_to_text, sanitize_html

P = pytest.param

CLEAN = [
    P("和平&amp;停戦", "和平&停戦", id="ja-entity-amp"),
    P("&lt;速報&gt;", "<速報>", id="ja-entity-lt-gt"),
    P("&#x548C;&#24179;", "和平", id="numeric-entities"),
    P("&amp;lt;b&amp;gt;", "<b>", id="double-escaped-decoded-fully"),
    P("停戦\u200b合意", "停戦合意", id="zero-width-space"),
    P("\ufeff和平", "和平", id="bom"),
    P("和\u00ad平", "和平", id="soft-hyphen"),
    P("停戦\x00合意\x1f\x7f\x85", "停戦合意", id="controls"),
    P("停戦\ud800合意", "停戦合意", id="lone-surrogate"),
    P("  停戦　　合意\n\t成立  ", "停戦 合意 成立", id="whitespace-folded-ideographic"),
    P("ｽﾏｿ　４歳児", "ｽﾏｿ ４歳児", id="half-and-full-width-kept-for-display"),
    P("a&nbsp;b", "a b", id="nbsp"),
    P("👨\u200d👩\u200d👧", "👨\u200d👩\u200d👧", id="zwj-emoji-kept"),
    P(None, "", id="none"),
    P("", "", id="empty"),
]


@pytest.mark.parametrize(("text", "expected"), CLEAN)
def test_clean_text(text: str | None, expected: str) -> None:
    assert clean_text(text) == expected


FOLD = [
    P("２０２５年１２月２８日", "2025年12月28日", id="ja-fullwidth-digits"),
    P("ｽﾏｿ", "スマソ", id="ja-halfwidth-katakana"),
    P("「和平」、停戦。", "和平停戦", id="ja-punctuation-dropped"),
    P("停戦 合意\u3000成立", "停戦合意成立", id="spaces-dropped"),
    P("Peace TALKS!", "peacetalks", id="casefold"),
    P("Straße", "strasse", id="casefold-sharp-s"),
    P("ＡＢＣ", "abc", id="fullwidth-latin"),
    P("①", "1", id="circled-digit"),
]


@pytest.mark.parametrize(("text", "expected"), FOLD)
def test_fold(text: str, expected: str) -> None:
    assert fold(text) == expected


BASE = "https://news.example.jp/topics/peace"
SANITIZE = [
    P("<p>停戦<b>合意</b></p>", "<p>停戦<b>合意</b></p>", id="ja-simple-markup-kept"),
    P("<script>alert(1)</script><p>本文</p>", "<p>本文</p>", id="script-dropped-with-content"),
    P("<style>p{}</style><p>本文</p>", "<p>本文</p>", id="style-dropped"),
    P('<iframe src="https://evil.example/"></iframe><p>本文</p>', "<p>本文</p>", id="iframe-dropped"),
    P('<p onclick="steal()" style="color:red">本文</p>', "<p>本文</p>", id="handlers-and-style-dropped"),
    P('<a href="javascript:alert(1)">x</a>', '<a rel="noopener noreferrer nofollow">x</a>', id="javascript-href"),
    P('<a href="java\nscript:alert(1)">x</a>', '<a rel="noopener noreferrer nofollow">x</a>',
      id="javascript-href-with-newline"),
    P('<img src="data:image/png;base64,AAAA">', "<img>", id="data-src"),
    P('<a href="/a/1">記事</a>', '<a href="https://news.example.jp/a/1" rel="noopener noreferrer nofollow">記事</a>',
      id="relative-link-made-absolute"),
    P('<img src="img/1.jpg" alt="写真">', '<img src="https://news.example.jp/topics/img/1.jpg" alt="写真">',
      id="relative-image-made-absolute"),
    P("<form><input name=q></form>本文", "本文", id="form-dropped"),
    P("", "", id="empty"),
]


@pytest.mark.parametrize(("html", "expected"), SANITIZE)
def test_sanitize_html(html: str, expected: str) -> None:
    assert sanitize_html(html, BASE) == expected


def test_html_to_text() -> None:
    assert html_to_text("<p>停戦&amp;合意</p><p>成立<br>した</p><script>x</script>") == "停戦&合意 成立 した"
