"""Config selectors: Beautiful Soup + soupsieve, the project's CSS engine for user-written selectors.

`item` selects the blocks; each field selector is relative to a block ("" = the block itself) and
may read an attribute (`a@href`, `time@datetime`, `img@src`). Without an attribute: link -> the
href of the matched element or of the first a[href] inside it, image -> src (or data-src), and the
other fields -> text. Fields not configured fall back to the obvious: the first link and its text,
a <time datetime> in the block.
"""

from __future__ import annotations

import logging
from urllib.parse import urljoin

from bs4 import BeautifulSoup, Tag
from soupsieve import SelectorSyntaxError

from feedsvc.config import FieldSelector, Selectors
from feedsvc.extract.html import clean_href, dedupe_by_link, picture_of, resolve
from feedsvc.extract.rules import fold_ws
from feedsvc.extract.structured import parse_iso_date
from feedsvc.model import RawItem

log = logging.getLogger(__name__)
FOUND_BY = "selectors"


def _select(block: Tag, sel: FieldSelector) -> Tag | None:
    if not sel.css:
        return block
    try:
        return block.select_one(sel.css)
    except (SelectorSyntaxError, ValueError, NotImplementedError) as exc:  # config checked the CSS already
        log.warning("selector %r failed: %s", sel.css, exc)
        return None


def _attr(el: Tag, name: str) -> str | None:
    value = el.get(name)
    if isinstance(value, list):
        value = " ".join(value)
    return value.strip() if isinstance(value, str) and value.strip() else None


def _link_of(el: Tag) -> str | None:
    if el.name == "a" and el.get("href") is not None:
        return clean_href(_attr(el, "href"))
    inner = el.find("a", href=True)
    return clean_href(_attr(inner, "href")) if inner is not None else None


def _dead_link(el: Tag) -> bool:
    a = el if el.name == "a" else el.find("a", href=True)
    return a is not None and clean_href(_attr(a, "href") or "") is None


def _image_of(el: Tag) -> str | None:
    # the first <img> that shows a picture: lazy-load attributes and srcset read, icons skipped
    for img in ([el] if el.name == "img" else el.find_all(["img", "source"])):
        url = picture_of(img)
        if url:
            return url
    return None


def _field(block: Tag, sel: FieldSelector | None, kind: str) -> tuple[str | None, Tag | None]:
    if sel is None:
        return None, None
    el = _select(block, sel)
    if el is None:
        return None, None
    if sel.attr:
        return _attr(el, sel.attr), el
    if kind == "link":
        return _link_of(el), el
    if kind == "image":
        return _image_of(el), el
    if kind == "date" and el.get("datetime"):
        return _attr(el, "datetime"), el
    return fold_ws(el.get_text(" ")) or None, el


# Each block costs a few CSS look-ups; a page matching 50,000 of them would take ~15 s. A feed needs
# far fewer (extract keeps 1,000 items at most): the first MAX_BLOCKS, in page order.
MAX_BLOCKS = 2000


def extract_with_selectors(page_url: str, text: str, selectors: Selectors) -> list[RawItem]:
    soup = BeautifulSoup(text, "lxml")
    base_el = soup.find("base", href=True)
    base = urljoin(page_url, _attr(base_el, "href") or "") if base_el is not None and _attr(base_el, "href") else None
    try:
        blocks = soup.select(selectors.item, limit=MAX_BLOCKS)
    except (SelectorSyntaxError, ValueError, NotImplementedError) as exc:
        log.warning("item selector %r failed: %s", selectors.item, exc)
        return []
    items: list[RawItem] = []
    for block in blocks:
        title, _ = _field(block, selectors.title, "title")
        raw_link, link_el = _field(block, selectors.link or FieldSelector(""), "link")
        link = clean_href(raw_link) if raw_link else None
        if link is None and (raw_link or (link_el is not None and _dead_link(link_el))):
            continue  # the block's link is javascript: or empty: a widget, not an article
        if title is None and selectors.title is None:
            anchor = block if block.name == "a" else block.find("a", href=True)
            title = fold_ws(anchor.get_text(" ")) if anchor is not None else None
            title = title or None
        summary, summary_el = _field(block, selectors.summary, "summary")
        summary_html = summary_el.decode_contents().strip() if summary_el is not None and summary else None
        if selectors.summary is not None and selectors.summary.attr:
            summary_html = None
        raw_date, _ = _field(block, selectors.date or FieldSelector("time[datetime]", "datetime"), "date")
        date, date_text = parse_iso_date(raw_date)
        image, _ = _field(block, selectors.image, "image")
        if not (title or link or summary):
            continue
        items.append(RawItem(position=len(items), found_by=FOUND_BY, title=title,
                             link=resolve(link, base) if link else None, summary=summary,
                             summary_html=summary_html, date=date, date_text=date_text,
                             image=resolve(image, base) if image else None))
    return dedupe_by_link(items, page_url, base)
