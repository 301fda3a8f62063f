"""Charset decoding: labels, BOMs, lies, detection, and the legacy Japanese pages that made us do it.

Fixture bytes are made here by encoding known text, so each case says what it expects to get back.
"""

from __future__ import annotations

import re
import warnings

import pytest

from feedsvc.decode import decode_body, header_charset, media_type, meta_charset
from feedsvc.errors import SourceError

JA = "株式会社①のお知らせ：新商品は㈱髙島屋で発売、詳しくはこちら～"  # ①, ㈱, 髙, ～ exist only in CP932
JA_PLAIN = "日本語のニュース一覧です。今日の天気は晴れ、明日は雨でしょう。"  # plain JIS X 0208
RU = "Новости: Правительство объявило о новых мерах поддержки малого бизнеса в регионах."
ZH = "今日新聞：政府宣佈新的經濟措施，支持中小企業發展。"
EN_QUOTES = "\u201cSmart quotes\u201d \u2014 and a caf\u00e9 costs 3 \u20ac."


def page(body: str, head: str = "") -> str:
    return f"<html><head>{head}<title>t</title></head><body><p>{body}</p></body></html>"


def meta(cs: str) -> str:
    return f'<meta charset="{cs}">'


def http_equiv(cs: str) -> str:
    return f'<meta http-equiv="Content-Type" content="text/html; charset={cs}">'


CASES = [
    # (text, bytes codec, Content-Type header, override, expected codec)
    pytest.param(page("héllo wörld"), "utf-8", "text/html; charset=utf-8", None, "utf-8", id="header-utf8"),
    pytest.param(page(RU), "cp1251", "text/html; charset=windows-1251", None, "cp1251", id="header-windows-1251"),
    pytest.param(page(RU, meta("windows-1251")), "cp1251", None, None, "cp1251", id="meta-windows-1251"),
    pytest.param(page(JA, meta("Shift_JIS")), "cp932", None, None, "cp932", id="meta-shift_jis-cp932-chars"),
    pytest.param(page(JA, http_equiv("x-sjis")), "cp932", None, None, "cp932", id="http-equiv-x-sjis"),
    pytest.param(page(JA, http_equiv("MS_Kanji")), "cp932", None, None, "cp932", id="http-equiv-ms_kanji"),
    pytest.param(page(JA), "cp932", "text/html; charset=Shift_JIS", None, "cp932", id="header-shift_jis"),
    pytest.param(page(JA_PLAIN, meta("EUC-JP")), "euc_jp", None, None, "euc_jp", id="meta-euc-jp"),
    pytest.param(page("①㈱" + JA_PLAIN, meta("EUC-JP")), "euc_jis_2004", None, None, "euc_jis_2004",
                 id="meta-euc-jp-needs-jis2004"),
    pytest.param(page(JA_PLAIN, meta("ISO-2022-JP")), "iso2022_jp", None, None, "iso2022_jp",
                 id="meta-iso-2022-jp"),
    pytest.param(page(ZH, meta("big5")), "big5", None, None, "big5hkscs", id="meta-big5"),
    pytest.param(page(ZH), "big5", "text/html; charset=Big5", None, "big5hkscs", id="header-big5"),
    pytest.param(page(EN_QUOTES), "cp1252", "text/html; charset=ISO-8859-1", None, "cp1252",
                 id="iso-8859-1-is-windows-1252"),
    pytest.param(page(EN_QUOTES, meta("us-ascii")), "cp1252", None, None, "cp1252", id="us-ascii-is-windows-1252"),
    pytest.param(page(EN_QUOTES, meta("latin-1")), "cp1252", None, None, "cp1252", id="latin-1-is-windows-1252"),
    # BOM wins over everything that is declared
    pytest.param("\ufeff" + page(JA, meta("x-sjis")), "utf-16-le", "text/html; charset=shift_jis", None,
                 "utf-16-le", id="utf16le-bom-meta-lies"),
    pytest.param("\ufeff" + page(RU, meta("windows-1251")), "utf-16-be", None, None, "utf-16-be",
                 id="utf16be-bom"),
    pytest.param("\ufeff" + page(JA), "utf-8", "text/html; charset=iso-8859-1", None, "utf-8",
                 id="utf8-bom-beats-header"),
    pytest.param("\ufeff" + page(RU), "utf-32-le", None, None, "utf-32-le", id="utf32le-bom"),
    # the header or the meta lies: the one that decodes wins
    pytest.param(page(JA, meta("shift_jis")), "cp932", "text/html; charset=utf-8", None, "cp932",
                 id="header-lies-utf8-meta-right"),
    pytest.param(page(JA, meta("utf-8")), "cp932", None, None, "cp932", id="meta-lies-utf8"),
    pytest.param(page(JA_PLAIN, meta("utf-8")), "euc_jp", "text/html; charset=utf-8", None, "euc_jp",
                 id="both-lie-euc-jp-detected"),
    pytest.param(page(JA, meta("Shift_JIS")), "cp932", "text/html; charset=iso-8859-1", None, "cp932",
                 id="server-default-latin1-meta-sjis"),
    pytest.param(page(JA), "utf-8", "text/html; charset=iso-8859-1", None, "utf-8",
                 id="server-default-latin1-body-utf8"),
    pytest.param(page(JA), "cp932", "text/html; charset=no-such-charset", None, "cp932", id="unknown-label"),
    # nothing declared: detection
    pytest.param(page(JA), "utf-8", None, None, "utf-8", id="detect-utf8"),
    pytest.param(page(JA), "cp932", None, None, "cp932", id="detect-cp932"),
    pytest.param(page(JA_PLAIN), "euc_jp", None, None, "euc_jp", id="detect-euc-jp"),
    pytest.param(page(JA_PLAIN), "iso2022_jp", None, None, "iso2022_jp", id="detect-iso-2022-jp"),
    pytest.param(page("plain ascii"), "ascii", None, None, "ascii", id="detect-ascii"),
    pytest.param(page(RU * 3), "cp1251", None, None, "cp1251", id="detect-windows-1251"),
    pytest.param(page(JA), "utf-16-le", None, None, "utf-16-le", id="detect-utf16le-no-bom"),
    # the per-source override beats every label
    pytest.param(page("Привет, мир. " * 5), "koi8-r", "text/html; charset=windows-1251", "koi8-r", "koi8-r",
                 id="override-koi8-r"),
    pytest.param(page(JA, meta("euc-jp")), "cp932", "text/html; charset=euc-jp", "shift_jis", "cp932",
                 id="override-shift_jis-means-cp932"),
]


@pytest.mark.parametrize("text,codec,content_type,override,expected", CASES)
def test_decode_body(text, codec, content_type, override, expected):
    body = text.encode(codec)
    decoded, used = decode_body(body, content_type=content_type, override=override)
    assert used == expected
    assert decoded == text.lstrip("\ufeff")  # every character back, the BOM stripped


def test_windows_1252_bytes_python_leaves_undefined_pass_through():
    # WHATWG windows-1252 maps 0x81 0x8D 0x8F 0x90 0x9D to the C1 code points; Python's cp1252 refuses them
    body = b"<p>a\x93quoted\x94 \x81 b</p>"
    assert decode_body(body, content_type="text/html; charset=iso-8859-1") == ("<p>a\u201cquoted\u201d \x81 b</p>",
                                                                              "cp1252")


def test_override_that_does_not_decode_falls_back_to_the_page():
    body = page(JA, meta("shift_jis")).encode("cp932")
    assert decode_body(body, override="utf-8") == (page(JA, meta("shift_jis")), "cp932")


@pytest.mark.parametrize("body", [
    pytest.param(bytes(range(256)) * 40, id="all-bytes"),
    pytest.param(b"\x89PNG\r\n\x1a\n" + bytes(range(32)) * 200, id="png-ish"),
])
def test_binary_is_a_decode_error(body):
    with pytest.raises(SourceError) as info:
        decode_body(body, content_type="text/html")
    assert info.value.kind == "decode" and f"{len(body)} bytes" in info.value.message


@pytest.mark.parametrize("content_type,expected", [
    pytest.param("text/html; charset=UTF-8", "utf-8", id="plain"),
    pytest.param('text/html; charset="Shift_JIS"', "shift_jis", id="quoted"),
    pytest.param("text/html;charset=euc-jp;foo=bar", "euc-jp", id="tight"),
    pytest.param("text/html", None, id="none"),
    pytest.param(None, None, id="no-header"),
])
def test_header_charset(content_type, expected):
    assert header_charset(content_type) == expected


@pytest.mark.parametrize("head,expected", [
    pytest.param(b'<meta charset="EUC-JP">', "euc-jp", id="meta-charset"),
    pytest.param(b"<meta charset=utf-8>", "utf-8", id="unquoted"),
    pytest.param(b'<META HTTP-EQUIV="Content-Type" CONTENT="text/html; charset=Shift_JIS">', "shift_jis",
                 id="http-equiv-upper"),
    pytest.param(b'<meta content="text/html; charset=x-sjis" http-equiv="Content-Type">', "x-sjis",
                 id="content-first"),
    pytest.param(b'<?xml version="1.0" encoding="windows-1251"?><html>', "windows-1251", id="xml-declaration"),
    pytest.param(b"<meta name=viewport content='width=device-width'>", None, id="no-charset"),
    pytest.param(b" " * 5000 + b'<meta charset="euc-jp">', None, id="beyond-4kb"),
])
def test_meta_charset(head, expected):
    doc = head if head.startswith(b"<?xml") else b"<html><head>" + head + b"</head></html>"
    assert meta_charset(doc) == expected


@pytest.mark.parametrize("content_type,url,expected", [
    pytest.param("text/html; charset=utf-8", "http://x/a.json", "text/html", id="header-wins"),
    pytest.param("Application/JSON", "http://x/a", "application/json", id="lowercased"),
    pytest.param(None, "file:///tmp/a.txt", "text/plain", id="txt"),
    pytest.param(None, "file:///tmp/a.HTM", "text/html", id="htm-upper"),
    pytest.param(None, "file:///tmp/a.json", "application/json", id="json"),
    pytest.param(None, "file:///tmp/dir.v2/page", "text/html", id="dot-in-folder"),
    pytest.param("application/octet-stream", "http://x/feed.json", "application/json", id="octet-stream"),
    pytest.param(None, "http://example.org/news/", "text/html", id="default-html"),
])
def test_media_type(content_type, url, expected):
    assert media_type(content_type, url) == expected


def test_why_we_decode_before_parsing():
    """Beautiful Soup + lxml given the raw bytes of a Shift_JIS page with CP932 characters loses the text.

    Observed with beautifulsoup4 4.15 / lxml 6.1: the meta says shift_jis, lxml is told shift_jis, strict
    Shift_JIS fails at ① and lxml returns an empty document (get_text() == ""). Decoding first keeps it all.
    """
    from bs4 import BeautifulSoup

    html = page(JA + "。ご案内", http_equiv("Shift_JIS"))
    raw = html.encode("cp932")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        direct = BeautifulSoup(raw, "lxml").get_text()
        text, codec = decode_body(raw)
        ours = BeautifulSoup(text, "lxml").get_text()
    assert codec == "cp932"
    assert JA in ours and "ご案内" in ours
    assert "ご案内" not in direct and JA not in direct, f"bs4 kept the text this time: {direct!r}"


# ---------------------------------------------------------------------- the shared corpus

CORPUS = [
    pytest.param("edge/ja-2ch-top-sjis.html", "cp932", ["２ちゃんねる掲示板へようこそ"], id="2ch-sjis"),
    pytest.param("edge/ja-geocities-videogame-top-sjis.html", "cp932", ["スカイファイターⅡ", "①"],
                 id="geocities-cp932"),
    pytest.param("edge/ja-rakuten-top-eucjp.html", "euc_jp", ["【楽天市場】Shopping is Entertainment!"],
                 id="rakuten-euc-jp"),
    pytest.param("edge/ko-kcna-utf16le-mislabelled-sjis.html", "utf-16-le", ["조선통신 朝鮮通信"],
                 id="kcna-utf16le-bom-beats-meta"),
    pytest.param("articles/ja-webry-blog-entry-sjis.html", "cp932",
                 ["Perl 5.8.x で shiftjis 、CP932、MacJapanese の違い", "NEC: JIS X 0212-1990", "№"],
                 id="webry-article-cp932"),
]


@pytest.mark.parametrize("name,codec,must_include", CORPUS)
def test_shared_corpus_pages_decode(shared_dir, name, codec, must_include):
    body = (shared_dir / "corpus" / name).read_bytes()
    text, used = decode_body(body, content_type="text/html")
    assert used == codec
    assert not text.startswith("\ufeff") and "\ufffd" not in text
    for s in must_include:
        assert s in text
    # and with the labels stripped, detection alone finds the same codec and the same text
    unlabelled = re.sub(rb"charset\s*=\s*[\"']?[-\w]+", b"", body)
    assert unlabelled != body or codec == "utf-16-le"  # (UTF-16's label is not ASCII bytes: nothing to strip)
    text2, used2 = decode_body(unlabelled)
    assert used2 == codec and all(s in text2 for s in must_include)
