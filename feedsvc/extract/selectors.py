"""Config selectors: Beautiful Soup + soupsieve, the project's CSS engine for user-written selectors.

`item` selects the blocks; each field selector is relative to a block ("" = the block itself) and
may read an attribute (`a@href`, `time@datetime`, `img@src`). Without an attribute: link -> the
href of the matched element or of the first a[href] inside it, image -> src (or data-src), and the
other fields -> text. Fields not configured fall back to the obvious: the first link and its text,
a <time datetime> in the block.
"""

from __future__ import annotations

import logging

import soupsieve
from bs4 import BeautifulSoup, Tag
from soupsieve import SelectorSyntaxError

from feedsvc import uri
from feedsvc.config import FieldSelector, Selectors
from feedsvc.extract.html import HEADINGS, clean_href, dedupe_by_link, picture_of, resolve
from feedsvc.extract.rules import fold_ws
from feedsvc.extract.structured import parse_iso_date
from feedsvc.model import RawItem

log = logging.getLogger(__name__)
FOUND_BY = "selectors"


def _following(block: Tag, stop: Tag | None, css: str) -> Tag | None:
    """The first element matching `css` after `block` (outside it) and before `stop`, the next block."""
    try:
        matcher = soupsieve.compile(css)
    except (SelectorSyntaxError, ValueError, NotImplementedError) as exc:
        log.warning("selector %r failed: %s", css, exc)
        return None
    inside = {id(d) for d in block.descendants}
    for el in block.next_elements:
        if el is stop:
            break
        if isinstance(el, Tag) and id(el) not in inside and matcher.match(el):
            return el
    return None


def _select(block: Tag, sel: FieldSelector, stop: Tag | None = None) -> Tag | None:
    if sel.following:
        return _following(block, stop, sel.css)
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


def _field(block: Tag, sel: FieldSelector | None, kind: str, stop: Tag | None = None) -> tuple[str | None, Tag | None]:
    if sel is None:
        return None, None
    el = _select(block, sel, stop)
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
    base = uri.join(page_url, _attr(base_el, "href") or "") if base_el is not None and _attr(base_el, "href") else None
    if base is not None and not base.lower().startswith(("http:", "https:", "file:")):
        base = None  # a javascript: or data: base would resolve every link into it
    try:
        blocks = soup.select(selectors.item, limit=MAX_BLOCKS)
    except (SelectorSyntaxError, ValueError, NotImplementedError) as exc:
        log.warning("item selector %r failed: %s", selectors.item, exc)
        return []
    items: list[RawItem] = []
    for i, block in enumerate(blocks):
        stop = blocks[i + 1] if i + 1 < len(blocks) else None  # where "~ sel" stops looking
        title, _ = _field(block, selectors.title, "title", stop)
        raw_link, link_el = _field(block, selectors.link or FieldSelector(""), "link", stop)
        link = clean_href(raw_link) if raw_link else None
        if link is None and (raw_link or (link_el is not None and _dead_link(link_el))):
            continue  # the block's link is javascript: or empty: a widget, not an article
        if title is None and selectors.title is None:
            anchor = block if block.name == "a" else block.find("a", href=True)
            if anchor is None and block.name in HEADINGS:
                anchor = block  # an unlinked headline is the item (a flat blog's "h3", link "~ a.permalink")
            title = fold_ws(anchor.get_text(" ")) if anchor is not None else None
            title = title or None
        summary, summary_el = _field(block, selectors.summary, "summary", stop)
        summary_html = summary_el.decode_contents().strip() if summary_el is not None and summary else None
        if selectors.summary is not None and selectors.summary.attr:
            summary_html = None
        raw_date, _ = _field(block, selectors.date or FieldSelector("time[datetime]", "datetime"), "date", stop)
        date, date_text = parse_iso_date(raw_date)
        image, _ = _field(block, selectors.image, "image", stop)
        if not (title or link or summary):
            continue
        items.append(RawItem(position=len(items), found_by=FOUND_BY, title=title,
                             link=resolve(link, base) if link else None, summary=summary,
                             summary_html=summary_html, date=date, date_text=date_text,
                             image=resolve(image, base) if image else None))
    return dedupe_by_link(items, page_url, base)
