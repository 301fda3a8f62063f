"""canonical_url: one article, one URL. Table of (href as written, base, expected), Japanese pages first.

hrefs marked "corpus-…" are copied as written in ../shared/corpus/pages/ (their MANIFEST.tsv lists them).
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from feedsvc.normalize.urls import canonical_url

P = pytest.param
YAHOO_BASE = "http://www.yahoo.co.jp/_ylh=X3oDMTB0NWxnaGxsBF9TAzIwNzYyNjkyMDAEdGlkAzEyBHRtcGwDZ2Ex/"

CASES = [
    # --- Japanese pages ---
    P("http://kijonan.com/archives/56805248.html", "http://kijonan.com/archives/cat_103640.html",
      "http://kijonan.com/archives/56805248.html", id="corpus-kijonan-absolute"),
    P("http://ediaryhiroko.com/?p=1531", "http://ediaryhiroko.com/", "http://ediaryhiroko.com/?p=1531",
      id="corpus-ediary-query-id-kept"),
    P("f/topics/top/1/*-http://dailynews.yahoo.co.jp/fc/economy/japan_air_line/?1263260393", YAHOO_BASE,
      YAHOO_BASE + "f/topics/top/1/*-http://dailynews.yahoo.co.jp/fc/economy/japan_air_line/?1263260393",
      id="corpus-yahoo-relative-to-base-href"),
    P("https://www3.nhk.or.jp/news/html/20190619/k10011959621000.html", None,
      "https://www3.nhk.or.jp/news/html/20190619/k10011959621000.html", id="corpus-nhk-absolute-no-base"),
    P("https://www.yomiuri.co.jp/world/20231102-OYT1T50240/", None,
      "https://www.yomiuri.co.jp/world/20231102-OYT1T50240/", id="corpus-yomiuri-trailing-slash-kept"),
    P("/news/detail/6a30e32e56fce5cf381895dfe6ca7b6f/", "https://hiroba.dqx.jp/sc/news/",
      "https://hiroba.dqx.jp/news/detail/6a30e32e56fce5cf381895dfe6ca7b6f/", id="corpus-dqx-root-relative"),
    P("detail/6a30e32e56fce5cf381895dfe6ca7b6f/", "https://hiroba.dqx.jp/sc/news/",
      "https://hiroba.dqx.jp/sc/news/detail/6a30e32e56fce5cf381895dfe6ca7b6f/", id="corpus-dqx-path-relative"),
    P("https://ja.wikipedia.org/wiki/和平交渉", None,
      "https://ja.wikipedia.org/wiki/%E5%92%8C%E5%B9%B3%E4%BA%A4%E6%B8%89", id="ja-path-percent-encoded"),
    P("https://ja.wikipedia.org/wiki/%e5%92%8c%e5%b9%b3%e4%ba%a4%e6%b8%89", None,
      "https://ja.wikipedia.org/wiki/%E5%92%8C%E5%B9%B3%E4%BA%A4%E6%B8%89", id="ja-lowercase-hex-uppercased"),
    P("https://example.jp/search?q=和平", None, "https://example.jp/search?q=%E5%92%8C%E5%B9%B3",
      id="ja-query-percent-encoded"),
    P("https://日本語.jp/記事", None, "https://xn--wgv71a119e.jp/%E8%A8%98%E4%BA%8B", id="ja-idn-host-punycode"),
    P("https://news.example.jp/articles/123?utm_source=twitter&utm_medium=social", None,
      "https://news.example.jp/articles/123", id="ja-utm-removed"),
    P("　https://news.example.jp/a/1　", None, "https://news.example.jp/a/1",
      id="ja-ideographic-space-around-kept-out"),
    P("./記事/1", "https://news.example.jp/topics/", "https://news.example.jp/topics/%E8%A8%98%E4%BA%8B/1",
      id="ja-relative-non-ascii"),
    # --- the rest of the corpus ---
    P("news.php?lang=173&newid=12654&cat=155", "http://www.eordaialive.com/live/index.php?page=26&ipp=20",
      "http://www.eordaialive.com/live/news.php?lang=173&newid=12654&cat=155", id="corpus-eordaialive-query"),
    P("/173239-philosophy-of-knife-iskanov-dvd-mercato-europeo/", "http://www.darkveins.com/horror-news/",
      "http://www.darkveins.com/173239-philosophy-of-knife-iskanov-dvd-mercato-europeo/",
      id="corpus-darkveins-root-relative"),
    P("/world/drug-prisoners-bid-to-save-bali-nine-member/story-e6frfkyi-1225817906863",
      "http://www.news.com.au/", "http://www.news.com.au/world/drug-prisoners-bid-to-save-bali-nine-member/"
      "story-e6frfkyi-1225817906863", id="corpus-newscomau-root-relative"),
    P("http://tenderlovemaking.com/2008/07/08/back-home/#comments", None,
      "http://tenderlovemaking.com/2008/07/08/back-home/", id="corpus-tenderlove-permalink-fragment-dropped"),
    P("http://www.newschittagong24.com/?p=128317", None, "http://www.newschittagong24.com/?p=128317",
      id="corpus-newschittagong24"),
    P("https://www.icontact.com/blog/10-reasons-why-you-need-email-marketing", None,
      "https://www.icontact.com/blog/10-reasons-why-you-need-email-marketing", id="corpus-icontact"),
    P("http://binarymarket.ru/strategy/strategiya-denezhnyy-potok.html", None,
      "http://binarymarket.ru/strategy/strategiya-denezhnyy-potok.html", id="corpus-binarymarket"),
    # --- scheme, host, port, fragment ---
    P("HTTPS://WWW.Example.COM/Path", None, "https://www.example.com/Path", id="scheme-host-lowercased-path-not"),
    P("http://example.com:80/a", None, "http://example.com/a", id="http-default-port-dropped"),
    P("https://example.com:443/a", None, "https://example.com/a", id="https-default-port-dropped"),
    P("https://example.com:8443/a", None, "https://example.com:8443/a", id="other-port-kept"),
    P("http://example.com:443/a", None, "http://example.com:443/a", id="https-port-on-http-kept"),
    P("https://example.com/a#section-2", None, "https://example.com/a", id="fragment-dropped"),
    P("https://example.com", None, "https://example.com/", id="empty-path-is-slash"),
    P("https://example.com.", None, "https://example.com/", id="trailing-dot-host"),
    P("https://user@example.com/a", None, "https://user@example.com/a", id="userinfo-kept"),
    P("http://[2001:DB8::1]:80/a", None, "http://[2001:db8::1]/a", id="ipv6-host"),
    P("https://example.com/a/./b/../c", None, "https://example.com/a/c", id="dot-segments-resolved"),
    P("../c", "https://example.com/a/b/", "https://example.com/a/c", id="relative-dot-dot"),
    P("//cdn.example.com/img.png", "http://example.com/", "http://cdn.example.com/img.png",
      id="protocol-relative-takes-base-scheme"),
    P("//cdn.example.com/img.png", None, "https://cdn.example.com/img.png", id="protocol-relative-no-base"),
    P("?page=2", "https://example.com/list?page=1", "https://example.com/list?page=2", id="query-only-relative"),
    P("https://example.com/a%7Eb", None, "https://example.com/a~b", id="unreserved-escape-decoded"),
    P("https://example.com/a b", None, "https://example.com/a%20b", id="space-encoded"),
    P("https://example.com/100%", None, "https://example.com/100%25", id="bare-percent-encoded"),
    P("https://exa\nmple.com/a\t/b", None, "https://example.com/a/b", id="tabs-newlines-removed"),
    P("https:\\\\example.com\\a\\b", None, "https://example.com/a/b", id="backslashes-are-slashes"),
    # --- tracking parameters ---
    P("https://example.com/a?utm_source=x&utm_medium=y&utm_campaign=z&utm_term=t&utm_content=c", None,
      "https://example.com/a", id="utm-all-removed"),
    P("https://example.com/a?id=5&fbclid=IwAR0abc", None, "https://example.com/a?id=5", id="fbclid"),
    P("https://example.com/a?gclid=abc&id=5", None, "https://example.com/a?id=5", id="gclid-first"),
    P("https://example.com/a?mc_cid=1&mc_eid=2", None, "https://example.com/a", id="mailchimp"),
    P("https://example.com/a?UTM_Source=x&b=1", None, "https://example.com/a?b=1", id="tracking-case-insensitive"),
    P("https://example.com/a?msclkid=1&yclid=2&_ga=3&igshid=4", None, "https://example.com/a", id="other-clids"),
    P("https://example.com/a?b=2&a=1", None, "https://example.com/a?b=2&a=1", id="param-order-kept"),
    P("https://example.com/a?utm_source=x#top", None, "https://example.com/a", id="tracking-and-fragment"),
    P("https://example.com/a?", None, "https://example.com/a", id="empty-query-dropped"),
    P("https://example.com/a?x=&y", None, "https://example.com/a?x=&y", id="blank-values-kept"),
    P("https://example.com/a?q=a+b", None, "https://example.com/a?q=a+b", id="plus-kept"),
    P("https://example.com/a?source=rss", None, "https://example.com/a?source=rss", id="non-tracking-kept"),
    # --- not web links ---
    P("javascript:void(0)", "https://example.com/", None, id="javascript"),
    P(" JavaScript:alert(1)", "https://example.com/", None, id="javascript-mixed-case-space"),
    P("mailto:a@example.com", "https://example.com/", None, id="mailto"),
    P("tel:+81312345678", "https://example.com/", None, id="tel"),
    P("data:text/html,hi", "https://example.com/", None, id="data"),
    P("#comments", "https://example.com/a", None, id="bare-fragment"),
    P("", "https://example.com/", None, id="empty"),
    P("   ", "https://example.com/", None, id="blank"),
    P(None, "https://example.com/", None, id="none"),
    P("/a/b", None, None, id="relative-without-base"),
    P("ftp://example.com/file", None, None, id="ftp"),
    P("http://", None, None, id="no-host"),
    P("http://example.com:abc/", None, None, id="bad-port"),
    P("/a", "javascript:x", None, id="non-web-base"),
    P("file:///srv/pages/topic.html", None, "file:///srv/pages/topic.html", id="file-url-for-local-pages"),
    P("item.html", "file:///srv/pages/topic.html", "file:///srv/pages/item.html", id="relative-to-file-page"),
]


@pytest.mark.parametrize(("url", "base", "expected"), CASES)
def test_canonical_url(url: str | None, base: str | None, expected: str | None) -> None:
    assert canonical_url(url, base) == expected


@pytest.mark.parametrize(("url", "base", "expected"), [c for c in CASES if c.values[2] is not None])
def test_canonical_url_is_a_fixed_point(url: str | None, base: str | None, expected: str) -> None:
    assert canonical_url(expected) == expected
    assert canonical_url(expected, base) == expected


# --- a link never changes target (issue 18, point 8) -------------------------------------------------------
# canonical_url may drop tracking parameters and the fragment, lowercase scheme and host and drop a default
# port; the path is the server's and stays as written: empty segments ("//") are kept, encoded reserved
# characters stay encoded.
YAHOO_LINK = "f/topics/top/1/*-http://dailynews.yahoo.co.jp/fc/economy/japan_air_line/?1263260393"
SAME_TARGET = [
    P("http://www.yahoo.co.jp/" + YAHOO_LINK, None, "http://www.yahoo.co.jp/" + YAHOO_LINK,
      id="corpus-yahoo-absolute-double-slash-kept"),
    P("/*-http://dailynews.yahoo.co.jp/fc/economy/", "https://news.yahoo.co.jp/list/",
      "https://news.yahoo.co.jp/*-http://dailynews.yahoo.co.jp/fc/economy/", id="root-relative-double-slash"),
    P("*-http://dailynews.yahoo.co.jp/fc/economy/", "https://news.yahoo.co.jp/list/",
      "https://news.yahoo.co.jp/list/*-http://dailynews.yahoo.co.jp/fc/economy/",
      id="path-relative-double-slash-urljoin-would-collapse"),
    P("https://example.com//a//b/", None, "https://example.com//a//b/", id="leading-and-inner-empty-segments"),
    P("HTTPS://Example.COM:443/a//b?utm_source=x&id=1#top", None, "https://example.com/a//b?id=1",
      id="allowed-changes-only-around-a-double-slash"),
    P("c//d", "https://example.com/a//b/", "https://example.com/a//b/c//d", id="base-with-empty-segment"),
    P("../d", "https://example.com/a//b/c", "https://example.com/a//d", id="dot-dot-next-to-empty-segment"),
    P("//cdn.example.com/x//y.png", "http://example.com/", "http://cdn.example.com/x//y.png",
      id="protocol-relative-with-double-slash"),
    P("https://example.com/go?to=http://other.example/a//b", None, "https://example.com/go?to=http://other.example/a//b",
      id="url-in-query-kept"),
    P("https://example.com/a%2Fb", None, "https://example.com/a%2Fb", id="encoded-slash-stays-encoded"),
    P("https://example.com/a%3Fb%23c", None, "https://example.com/a%3Fb%23c", id="encoded-question-and-hash"),
    P("https://example.com/a%252Fb", None, "https://example.com/a%252Fb", id="double-encoding-kept"),
    P("https://example.com/a+b%20c", None, "https://example.com/a+b%20c", id="plus-and-space-in-path"),
    P("https://example.com/a;v=1/b", None, "https://example.com/a;v=1/b", id="path-parameters-kept"),
    P("https://example.com/a?q=a\\b", None, "https://example.com/a?q=a%5Cb", id="backslash-in-query-is-data"),
    P("p\\q?r=s\\t", "https://example.com/d/", "https://example.com/d/p/q?r=s%5Ct",
      id="relative-backslash-in-path-only"),
]


@pytest.mark.parametrize(("url", "base", "expected"), SAME_TARGET)
def test_canonical_url_keeps_the_target(url: str, base: str | None, expected: str) -> None:
    assert canonical_url(url, base) == expected
    assert canonical_url(expected) == expected


_SEGMENT = st.text(alphabet="abcXYZ019-_~*!$'(),;=:@", max_size=6).filter(lambda s: s not in (".", ".."))


@settings(max_examples=300, deadline=None)
@given(st.lists(_SEGMENT, min_size=1, max_size=6))
def test_paths_without_dot_segments_are_never_altered(segments: list[str]) -> None:
    # any mix of empty segments and characters a path may hold as they are: the path comes back unchanged,
    # as an absolute link and as a link relative to the site root ("//x" would be a host, not a path)
    path = "/" + "/".join(segments)
    assert urlsplit(canonical_url("https://example.com" + path) or "").path == path
    if not path.startswith("//"):
        assert urlsplit(canonical_url(path, "https://example.com/list/") or "").path == path
        assert urlsplit(canonical_url("x" + path, "https://example.com/list/") or "").path == "/list/x" + path
