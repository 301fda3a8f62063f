"""extract.article: an item's own page -> RawArticle (its dates, image, canonical URL, main text).

    read_article(page, full=False)   never raises on odd input; fields it cannot find are None

The page's own markup first, because the site states it on purpose: JSON-LD (NewsArticle, Article,
BlogPosting), then `article:` / `og:` meta, microdata and `<link rel=canonical>`, then a `<time datetime>`
inside the article or main part. Pages that write their date only as text ("作成日時 ： 2008/02/05 00:14",
a Blogger "Friday, December 23, 2016" header) give that text: normalize reads it in the source's zone
(extract does not know zones). htmldate, made for exactly this, finds the rest (it gives a day only).
`full` adds the main text as HTML, by trafilatura; normalize sanitizes it as it does summaries.

htmldate and trafilatura are imported only here and only when an article is read: a refresh with
articles off never loads them.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from lxml import etree

from feedsvc import uri
from feedsvc.extract.html import base_of, parse_document
from feedsvc.extract.structured import _types, _url, load_json
from feedsvc.model import Page, RawArticle

log = logging.getLogger(__name__)

ARTICLE_TYPES = {"newsarticle", "article", "blogposting", "reportagenewsarticle", "analysisnewsarticle",
                 "opinionnewsarticle", "backgroundnewsarticle", "techarticle", "scholarlyarticle", "report",
                 "liveblogposting", "socialmediaposting", "posting"}

# meta names / properties / itemprops that carry the publication date, best first
PUBLISHED_META = ("article:published_time", "og:article:published_time", "datepublished", "og:published_time",
                  "pubdate", "publishdate", "publish-date", "publish_date", "date", "dc.date.issued",
                  "dcterms.issued", "dc.date", "dcterms.date", "sailthru.date",
                  "parsely-pub-date")
MODIFIED_META = ("article:modified_time", "og:article:modified_time", "datemodified", "og:updated_time",
                 "dcterms.modified", "lastmod", "last-modified")
IMAGE_META = ("og:image", "og:image:url", "og:image:secure_url", "twitter:image", "twitter:image:src", "image",
              "thumbnailurl")

# class / id words of the element that holds a date written as text: p.date, p.newsDate, h2.date-header,
# span.posted-on, div.entry-date …
_DATE_CLASS = re.compile(r"(?i)(?:^|[\s_-])(?:date|news-?date|date-?header|entry-?date|post-?date|posted(?:-?on)?|"
                         r"published|pubdate|timestamp|datetime|dateline|time)(?:$|[\s_-])|newsdate|postdate|"
                         r"pubdate|entrydate|dateheader")
# a date line is short: a page's whole body is not one
_DATE_TEXT_MAX = 120
_DIGITS_OR_MONTH = re.compile(r"\d|(?i:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)")


def read_article(page: Page, *, full: bool = False) -> RawArticle:
    """What the article page at `page` says about its story (see the module docstring)."""
    root = parse_document(page.text) if page.content_type.endswith("html") else None
    if root is None:
        return RawArticle(url=page.url)
    base = base_of(page.url, root) or page.url
    found: dict[str, str] = {}
    by = None
    _from_jsonld(root, found)
    if "published" in found:
        by = "json-ld"
    _from_meta(root, found)
    if by is None and "published" in found:
        by = "meta"
    if "published" not in found:
        when = _main_time(root)
        if when:
            found["published"], by = when, "time"
    text = None
    if "published" not in found:
        text = _date_line(root)
        day = _htmldate(page)
        if day:
            found["published"], by = day, "htmldate"
    image = found.get("image")
    canonical = found.get("canonical")
    return RawArticle(
        url=page.url,
        published=found.get("published"), published_by=by if "published" in found else None,
        published_text=text,
        modified=found.get("modified"),
        image=_absolute(image, base),
        canonical=_absolute(canonical, base),
        text_html=_main_text(page) if full else None,
    )


def _absolute(href: str | None, base: str) -> str | None:
    if not href or href.strip().lower().startswith(("javascript:", "data:")):
        return None
    url = uri.join(base, href.strip())
    return url if url.startswith(("http://", "https://")) else None


def _str(value: Any) -> str | None:
    if isinstance(value, list):
        value = value[0] if value else None
    if isinstance(value, dict):
        value = value.get("@value")
    return value.strip() if isinstance(value, str) and value.strip() else None


def _article_nodes(node: Any, depth: int = 0) -> list[dict[str, Any]]:
    if depth > 12:  # hostile nesting
        return []
    if isinstance(node, list):
        return [n for child in node for n in _article_nodes(child, depth + 1)]
    if not isinstance(node, dict):
        return []
    out = [node] if _types(node) & ARTICLE_TYPES else []
    for key in ("@graph", "mainEntity", "mainEntityOfPage"):
        if isinstance(node.get(key), (dict, list)):
            out += _article_nodes(node[key], depth + 1)
    return out


def _from_jsonld(root: etree._Element, found: dict[str, str]) -> None:
    for script in root.iter("script"):
        if (script.get("type") or "").strip().lower() != "application/ld+json":
            continue
        for node in _article_nodes(load_json(script.text or "")):
            for key, names in (("published", ("datePublished", "dateCreated")), ("modified", ("dateModified",))):
                for name in names:
                    value = _str(node.get(name))
                    if value and key not in found:
                        found[key] = value
            image = _url(node.get("image")) or _url(node.get("thumbnailUrl"))
            if image and "image" not in found:
                found["image"] = image
            canonical = _url(node.get("url")) or _url(node.get("mainEntityOfPage"))
            if canonical and "canonical" not in found:
                found["canonical"] = canonical


def _from_meta(root: etree._Element, found: dict[str, str]) -> None:
    metas: dict[str, str] = {}
    for el in root.iter("meta"):
        value = (el.get("content") or el.get("datetime") or "").strip()
        if not value:
            continue
        for attr in ("property", "name", "itemprop"):
            name = (el.get(attr) or "").strip().lower()
            if name:
                metas.setdefault(name, value)
    for el in root.iter("time", "span", "abbr", "div", "p"):  # microdata on a visible element
        prop = (el.get("itemprop") or "").strip().lower()
        if prop in ("datepublished", "datemodified"):
            value = (el.get("datetime") or el.get("content") or "").strip()
            if value:
                metas.setdefault(prop, value)
    for key, names in (("published", PUBLISHED_META), ("modified", MODIFIED_META), ("image", IMAGE_META)):
        if key not in found:
            value = next((metas[n] for n in names if metas.get(n)), None)
            if value:
                found[key] = value
    if "canonical" not in found:
        for el in root.iter("link"):
            if "canonical" in (el.get("rel") or "").lower().split() and (el.get("href") or "").strip():
                found["canonical"] = el.get("href", "").strip()
                break
        else:
            if metas.get("og:url"):
                found["canonical"] = metas["og:url"]


def _main_time(root: etree._Element) -> str | None:
    """The first <time datetime> inside the page's <article> or <main>: outside them, a <time> is as likely
    a sidebar's or a related story's."""
    for part in root.iter("article", "main"):
        for el in part.iter("time"):
            value = (el.get("datetime") or "").strip()
            if value and re.search(r"\d{4}", value):
                return value
    return None


def _date_line(root: etree._Element) -> str | None:
    """The text of the first short element whose class or id says it holds a date (p.date, h2.date-header)."""
    for el in root.iter():
        if not isinstance(el.tag, str) or el.tag in ("script", "style", "head", "meta", "link", "body", "html"):
            continue
        words = f"{el.get('class') or ''} {el.get('id') or ''}".strip()
        if not words or not _DATE_CLASS.search(words):
            continue
        text = " ".join("".join(el.itertext()).split())
        if text and len(text) <= _DATE_TEXT_MAX and _DIGITS_OR_MONTH.search(text):
            return text
    return None


def _htmldate(page: Page) -> str | None:
    """The day htmldate finds (YYYY-MM-DD), or None. It reads the markup, the URL and the text."""
    try:
        from htmldate import find_date  # (see the module docstring)

        day = find_date(page.text, url=page.url if page.url.startswith("http") else None, original_date=True,
                        extensive_search=True, outputformat="%Y-%m-%d")
    except Exception:  # a library's bug must not cost the story its listing data
        log.debug("htmldate failed on %s", page.url, exc_info=True)
        return None
    return day or None


def _main_text(page: Page) -> str | None:
    """The page's main text as HTML (trafilatura), or None when it finds none."""
    try:
        import trafilatura  # (see the module docstring)

        html = trafilatura.extract(page.text, url=page.url, output_format="html", include_links=True,
                                   include_images=True, include_comments=False, include_tables=True)
    except Exception:
        log.debug("trafilatura failed on %s", page.url, exc_info=True)
        return None
    return html or None
