"""extract: Page -> [RawItem]. The only user of Beautiful Soup and lxml.

    extract_items(page, selectors=None)   the pipeline's entry point; never raises on odd input
    explain(page, selectors=None)         one line naming the strategy that won and why (for `preview`)

The page's content type picks the reader: text/plain -> text lines (text.py); JSON -> JSON-LD or
JSON Feed (structured.py); anything else -> HTML, with the config's selectors when given
(selectors.py), else automatic detection (html.py). A page with no listing gives [].
"""

from __future__ import annotations

import html as html_lib
import logging
import re
from urllib.parse import urlsplit

from feedsvc import uri
from feedsvc.config import Selectors
from feedsvc.extract import html, structured, text
from feedsvc.model import Page, RawItem

__all__ = ["explain", "extract_items", "page_icon"]

log = logging.getLogger(__name__)

JSON_TYPES = ("application/json", "application/ld+json", "application/feed+json")


_LINK_TAG = re.compile(r"<link\b[^>]*>", re.I)
_ATTR = re.compile(r"""\b(rel|href)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))""", re.I)


def page_icon(page: Page) -> str | None:
    """The site's icon from <link rel="icon"> in the page's head (absolute), or None.

    A cheap scan of the first 64 KB: the icon must not cost a second parse of every page."""
    if not page.content_type.endswith("html"):
        return None
    head = page.text[:65536]
    end = head.lower().find("</head")
    found: dict[str, str] = {}
    for tag in _LINK_TAG.findall(head if end < 0 else head[:end]):
        attrs = {m.group(1).lower(): next(g for g in m.groups()[1:] if g is not None) for m in _ATTR.finditer(tag)}
        rels = set(attrs.get("rel", "").lower().split())
        href = attrs.get("href", "").strip()
        if href and not href.lower().startswith(("javascript:", "data:")):
            for rel in ("icon", "apple-touch-icon"):
                if rel in rels:
                    found.setdefault(rel, href)
    href = found.get("icon") or found.get("apple-touch-icon")
    if not href:
        return None
    url = uri.join(page.url, html_lib.unescape(href))
    return url if urlsplit(url).scheme in ("http", "https") else None


def _run(page: Page, selectors: Selectors | None) -> html.Outcome:
    ctype = (page.content_type or "").split(";")[0].strip().lower()
    if ctype == "text/plain":
        items = text.extract_text(page.text)
        return html.Outcome(items, text.FOUND_BY if items else "none",
                            f"plain text: {len(items)} items from its lines")
    if ctype in JSON_TYPES or ctype.endswith("+json"):
        doc = structured.load_json(page.text)
        if doc is None:
            return html.Outcome([], "none", "JSON page does not parse")
        items = html.extract_jsonld_documents([doc], None)
        if items:
            return html.Outcome(items, "json-ld", f"JSON-LD document: {len(items)} items")
        feed = structured.items_from_json_feed(doc)
        raw = [RawItem(position=i, found_by="json-feed", title=s.title, link=s.link, summary=s.summary,
                       date=s.date, date_text=s.date_text, image=s.image) for i, s in enumerate(feed)]
        return html.Outcome(raw, "json-feed" if raw else "none", f"JSON document: {len(raw)} feed items")
    if selectors is not None:
        # imported here: Beautiful Soup (and soupsieve) cost ~80 ms to import, which a refresh
        # whose pages all answer 304, or use automatic detection, does not need to pay
        from feedsvc.extract.selectors import extract_with_selectors

        items = extract_with_selectors(page.url, page.text, selectors)
        return html.Outcome(items, "selectors",
                            f"config selectors (item {selectors.item!r}) matched {len(items)} items")
    return html.automatic(page.url, page.text)


# A listing shows tens of items, a feed at most max_entries; a page with 100,000 of them is hostile
# or broken, and normalizing them all would cost tens of seconds. The first MAX_ITEMS, in page order.
MAX_ITEMS = 1000


def extract_items(page: Page, selectors: Selectors | None = None) -> list[RawItem]:
    """The items listed on `page`, in page order (at most MAX_ITEMS). [] when the page lists none."""
    outcome = _run(page, selectors)
    log.debug("%s: %s", page.url, outcome.reason)
    if len(outcome.items) > MAX_ITEMS:
        log.warning("%s lists %d items; keeping the first %d", page.url, len(outcome.items), MAX_ITEMS)
        return outcome.items[:MAX_ITEMS]
    return outcome.items


def runner_up(page: Page) -> html.RunnerUp | None:
    """When automatic detection was unsure: the list it did not take, with the selectors for it."""
    return _run(page, None).runner_up


def explain(page: Page, selectors: Selectors | None = None) -> str:
    """Which strategy found the items and why (or why none were found), in one line."""
    outcome = _run(page, selectors)
    return f"{outcome.strategy}: {outcome.reason}"
