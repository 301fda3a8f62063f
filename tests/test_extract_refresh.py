"""Issue 18's page patterns through a real `refresh`: each fixture page served over loopback HTTP,
refreshed by the pipeline, the feed read back with feedparser.

The fixture pages (tests/data/pages) are also scored item by item by the fixture gate; here they
must come out the same through fetch, normalize, dedupe, store and publish. Links are compared
by path and query, since the page is served from 127.0.0.1 rather than its own host.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import feedparser
import pytest

from atomcheck import assert_valid_atom
from feedsvc import pipeline
from feedsvc.config import load_config

ROOT = Path(__file__).resolve().parent.parent
PAGES = ROOT / "tests" / "data" / "pages"
NOW = datetime(2026, 1, 20, 3, 0, tzinfo=UTC)

# fixture -> the issue 18 pattern it stands for
PATTERNS = {
    "front-cards-briefs": "1: cards in <main> over a longer column of dated briefs",
    "reviews-slider-offsite-news": "1: a slider of reviews over a news box fed from another site",
    "portal-bullet-lists": "1: a portal's sections of bulleted headlines over a video carousel of cards",
    "promo-pagination-list": "4: promotions, a labelled ad, pagination and navigation are no items",
    "jsonld-bare-urls": "2: a JSON-LD ItemList of bare URLs picks the HTML block that lists them",
    "flat-blog-permalink": "3: unlinked headlines, each followed by its body and a permalink line",
    "lazy-images-teasers": "5, 6: lazy-load images over icons and placeholders; teasers in a second <a> or "
                           "beginning with the headline",
}


def plain(html: str) -> str:
    """A feed summary (published as HTML) as text."""
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def spec_of(name: str) -> dict:
    return json.loads((PAGES / f"{name}.expected.json").read_text(encoding="utf-8"))


def local(link: str, page_url: str) -> str:
    """The path and query of a link, as the page at `page_url` means it."""
    parts = urlsplit(urljoin(page_url, link))
    return parts.path + (f"?{parts.query}" if parts.query else "")


def refresh_page(name: str, http_server, tmp_path: Path, selectors: str = "") -> feedparser.FeedParserDict:
    spec = spec_of(name)
    path = local(spec["url"], spec["url"])  # served at its own path: "this page's ?p=2" must still mean it
    url = http_server.route(path, (PAGES / f"{name}.html").read_bytes(),
                            headers={"Content-Type": "text/html; charset=utf-8"})
    config_path = tmp_path / "config.toml"
    config_path.write_text(f'[feedsvc]\nhost_delay = "0s"\n[[topics]]\nid = "t"\ntitle = "T"\n'
                           f'[[topics.sources]]\nurl = "{url}"\n{selectors}', encoding="utf-8")
    config = load_config(config_path)
    results = pipeline.refresh(config, now=NOW)
    assert not results[0].failures, results[0].failures
    data = (config.output_dir / "t.atom").read_bytes()
    assert_valid_atom(data)
    feed = feedparser.parse(data)
    assert feed.bozo == 0, feed.get("bozo_exception")
    return feed


@pytest.mark.parametrize("name", sorted(PATTERNS), ids=str)
def test_pattern_page_through_refresh(name, http_server, tmp_path):
    spec = spec_of(name)
    feed = refresh_page(name, http_server, tmp_path)
    got = {(e.title, local(e.link, e.link)) for e in feed.entries}
    want = {(e["title"], local(e["link"], spec["url"])) for e in spec["items"]}
    assert got == want
    titles = {e.title for e in feed.entries}
    assert not titles & set(spec.get("must_exclude", []))


def test_images_and_teasers_through_refresh(http_server, tmp_path):
    spec = spec_of("lazy-images-teasers")
    feed = refresh_page("lazy-images-teasers", http_server, tmp_path)
    by_title = {e.title: e for e in feed.entries}
    for want in spec["items"]:
        entry = by_title[want["title"]]
        assert local(entry.media_thumbnail[0]["url"], entry.link) == local(want["image"], spec["url"])
        assert plain(entry.summary) == want["summary"]


def test_flat_blog_with_the_following_selector_form_through_refresh(http_server, tmp_path):
    spec = spec_of("flat-blog-permalink")
    sel = spec["selectors"]
    toml = "".join(f'{k} = "{v}"\n' for k, v in sel.items())
    feed = refresh_page("flat-blog-permalink", http_server, tmp_path, selectors=toml)
    got = [(e.title, local(e.link, e.link), plain(e.summary)) for e in feed.entries]
    want = [(e["title"], local(e["link"], spec["url"]), e["summary"]) for e in spec["items"]]
    assert sorted(got) == sorted(want)
    # the date comes from each post's "Posted on …" line, not from "Friday"/"Sunday morning" in the body
    published = {e.title: e.published[:10] for e in feed.entries}
    assert published == {"Tomatoes at last": "2019-08-23", "The bean glut": "2019-08-17", "Slugs, again": "2019-08-09",
                         "A new roof for the shed": "2019-07-30"}


def test_flat_blog_automatic_reads_each_posted_line(http_server, tmp_path):
    feed = refresh_page("flat-blog-permalink", http_server, tmp_path)
    published = {e.title: e.published[:10] for e in feed.entries}
    assert published["Tomatoes at last"] == "2019-08-23" and published["Slugs, again"] == "2019-08-09"
    assert {plain(e.summary) for e in feed.entries} == {e["summary"] for e in spec_of("flat-blog-permalink")["items"]}


def test_bare_url_item_list_confirms_the_block_it_names():
    """Without its JSON-LD the page's editor's picks would win; the ItemList's URLs pick the topic list."""
    from dataclasses import replace

    from feedsvc.extract import explain, extract_items
    from feedsvc.model import Page

    spec = spec_of("jsonld-bare-urls")
    page = Page(url=spec["url"], text=(PAGES / "jsonld-bare-urls.html").read_text(encoding="utf-8"),
                content_type="text/html", encoding="utf-8", fetched_at=NOW)
    assert [i.title for i in extract_items(page)] == [e["title"] for e in spec["items"]]
    assert "in_json_ld=6" in explain(page)
    bare = replace(page, text=re.sub(r'<script type="application/ld\+json">.*?</script>', "", page.text))
    assert [i.title for i in extract_items(bare)] == spec["must_exclude"]


@pytest.mark.parametrize("edits", [
    pytest.param((), id="cards-in-main"),
    pytest.param((('<main class="col-8">', '<div class="col-8">'), ("</main>", "</div>")), id="no-main-but-a-rail"),
])
def test_cards_win_over_a_longer_column_of_briefs(edits):
    """Which of a page's two lists is the main one: <main> says so, else the side column's name, and
    cards (one link wrapping picture and headline) weigh more than a bare list of briefs."""
    from feedsvc.extract import extract_items
    from feedsvc.model import Page

    spec = spec_of("front-cards-briefs")
    text = (PAGES / "front-cards-briefs.html").read_text(encoding="utf-8")
    for old, new in edits:
        assert old in text
        text = text.replace(old, new)
    page = Page(url=spec["url"], text=text, content_type="text/html", encoding="utf-8", fetched_at=NOW)
    assert [i.title for i in extract_items(page)] == [e["title"] for e in spec["items"]]
