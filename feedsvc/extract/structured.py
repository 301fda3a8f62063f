"""Structured data: JSON-LD (schema.org ItemList, Article kinds, @graph) and ISO 8601 dates.

Pure functions over parsed JSON; the HTML walker hands over the text of each
<script type="application/ld+json">, a JSON page is handed over whole.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from feedsvc.extract.rules import fold_ws

log = logging.getLogger(__name__)

ARTICLE_TYPES = frozenset({
    "article", "newsarticle", "blogposting", "reportagenewsarticle", "analysisnewsarticle",
    "opinionnewsarticle", "reviewnewsarticle", "backgroundnewsarticle", "report", "scholarlyarticle",
    "techarticle", "liveblogposting", "socialmediaposting", "posting", "creativework", "webpage",
    "videoobject", "podcastepisode",
})
# Of those, the ones that are stories by themselves (a lone WebPage or CreativeWork is the page).
STORY_TYPES = ARTICLE_TYPES - {"webpage", "creativework"}
CONTAINER_KEYS = ("mainEntity", "hasPart", "blogPost", "blogPosts", "articles", "itemListElement", "@graph")


@dataclass(frozen=True, slots=True)
class StructuredItem:
    title: str | None
    link: str | None
    summary: str | None
    date: datetime | None
    date_text: str | None
    image: str | None


def parse_iso_date(text: str | None) -> tuple[datetime | None, str | None]:
    """ISO 8601 -> (aware datetime, None); naive or unparsable -> (None, text as written)."""
    if not text or not isinstance(text, str):
        return None, None
    s = text.strip()
    if not s:
        return None, None
    try:
        value = datetime.fromisoformat(s)
    except ValueError:
        return None, s
    if value.tzinfo is None:
        return None, s
    return value, None


def load_json(text: str) -> Any:
    """JSON as sites write it in <script>: tolerate HTML comment wrappers, CDATA and a trailing ';'."""
    s = text.strip()
    s = re.sub(r"^(<!--|//\s*<!\[CDATA\[|<!\[CDATA\[)", "", s).strip()
    s = re.sub(r"(-->|//\s*\]\]>|\]\]>)$", "", s).strip().rstrip(";")
    try:
        return json.loads(s, strict=False)
    except ValueError as exc:
        log.debug("skipping JSON-LD that does not parse: %s", exc)
        return None
    except RecursionError:  # [[[[… thousands deep: json's C decoder gives up on the recursion limit
        log.debug("skipping JSON nested too deeply to parse")
        return None


def _types(node: dict[str, Any]) -> set[str]:
    t = node.get("@type")
    values = t if isinstance(t, list) else [t]
    return {str(v).rsplit("/", 1)[-1].lower() for v in values if v}


def _text(value: Any) -> str | None:
    if isinstance(value, list):
        value = value[0] if value else None
    if isinstance(value, dict):
        value = value.get("name") or value.get("@value") or value.get("text")
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return fold_ws(str(value)) or None
    return None


def _url(value: Any) -> str | None:
    if isinstance(value, list):
        value = value[0] if value else None
    if isinstance(value, dict):
        value = value.get("url") or value.get("@id") or value.get("contentUrl")
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def _item_from(node: dict[str, Any], fallback_url: str | None = None) -> StructuredItem | None:
    title = _text(node.get("headline")) or _text(node.get("name")) or _text(node.get("title"))
    link = _url(node.get("url")) or _url(node.get("mainEntityOfPage")) or fallback_url
    if link is None and isinstance(node.get("@id"), str) and "://" in node["@id"]:
        link = node["@id"].split("#", 1)[0] or None
    if not title and not link:
        return None
    date, date_text = parse_iso_date(_text(node.get("datePublished")) or _text(node.get("dateCreated"))
                                     or _text(node.get("uploadDate")))
    return StructuredItem(
        title=title, link=link,
        summary=_text(node.get("description")) or _text(node.get("abstract")),
        date=date, date_text=date_text,
        image=_url(node.get("image")) or _url(node.get("thumbnailUrl")),
    )


def _walk(node: Any, depth: int = 0) -> Iterator[tuple[str, StructuredItem]]:
    """Yield (kind, item): kind "list" for ItemList members, "story" for Article-like nodes."""
    if depth > 12:  # hostile nesting
        return
    if isinstance(node, list):
        for child in node:
            yield from _walk(child, depth + 1)
        return
    if not isinstance(node, dict):
        return
    types = _types(node)
    if "itemlist" in types or "breadcrumblist" in types:
        if "breadcrumblist" in types:  # breadcrumbs are navigation
            return
        for element in node.get("itemListElement") or []:
            if isinstance(element, str):
                yield "list", StructuredItem(None, element, None, None, None, None)
                continue
            if not isinstance(element, dict):
                continue
            inner = element.get("item")
            if isinstance(inner, dict):
                found = _item_from(inner, _url(element.get("url")))
                if found and not found.title and _text(element.get("name")):
                    found = StructuredItem(_text(element.get("name")), found.link, found.summary,
                                           found.date, found.date_text, found.image)
            else:
                found = _item_from(element, _url(inner))
            if found:
                yield "list", found
        return
    if types & STORY_TYPES:
        found = _item_from(node)
        if found:
            yield "story", found
    for key in CONTAINER_KEYS:
        if key in node:
            yield from _walk(node[key], depth + 1)


def items_from_jsonld(documents: list[Any]) -> list[StructuredItem]:
    """Listing items from JSON-LD documents: ItemList members, else every Article-like node.

    A page with one Article node is an article page, not a listing: the caller decides what
    one item means. Items are unique by link (else title), in document order.
    """
    listed: list[StructuredItem] = []
    stories: list[StructuredItem] = []
    for doc in documents:
        for kind, item in _walk(doc):
            (listed if kind == "list" else stories).append(item)
    chosen = listed or stories
    seen: set[str] = set()
    out: list[StructuredItem] = []
    for item in chosen:
        key = item.link or f"title:{item.title}"
        if key in seen:
            continue
        seen.add(key)
        out.append(item)
    return out


def items_from_json_feed(doc: Any) -> list[StructuredItem]:
    """A JSON Feed (jsonfeed.org) or a bare {"items": [...]} list: cheap to read, so read it."""
    if not isinstance(doc, dict) or not isinstance(doc.get("items"), list):
        return []
    out = []
    for node in doc["items"]:
        if not isinstance(node, dict):
            continue
        date, date_text = parse_iso_date(_text(node.get("date_published")) or _text(node.get("datePublished")))
        title = _text(node.get("title")) or _text(node.get("headline"))
        link = _url(node.get("url")) or _url(node.get("external_url"))
        if title or link:
            out.append(StructuredItem(title, link, _text(node.get("summary")) or _text(node.get("content_text")),
                                      date, date_text, _url(node.get("image"))))
    return out
