"""Automatic detection of the article listing in an HTML page (lxml: one parse, a few linear walks).

Order of signals, cheapest and most reliable first:
1. JSON-LD (schema.org ItemList / Article kinds / @graph) with two or more titled items; an ItemList
   of bare URLs cannot make items, but it says which links are the items (a bonus for their group);
2. flat posts: unlinked headlines, each followed by its "posted … permalink" line (old blogs);
3. repeated blocks: every link with text is grouped by the structural signature of its path
   (tag + first stable class of each ancestor). A group's links are the headlines of a listing when
   they are many, headline-like (long enough, distinct), sit in headings, and their blocks carry
   dates, summaries, images, <article> or schema.org Article microdata; groups inside navigation,
   menus, rankings, ads, footers, sidebars and "related" boxes are penalised by tag and by
   id/class/role vocabulary (rules.py), tickers and sliders less (they may be the main list), lists
   outside a page's <main> and lists of links to other sites more. The winner's sibling groups of
   the same shape join it (sections of a portal; a featured card in the same list), and so do the
   section headlines above its lists; pagination, promotions and labelled ads in it are dropped, and
   one link is one item.
4. Text signals (dates and lengths written in the text) only weigh the groups above: free text
   of an HTML page is never turned into items, since a page with no listing must give none.
"""

from __future__ import annotations

import logging
import re
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urldefrag, urlsplit

from lxml import etree

from feedsvc import uri
from feedsvc.extract import rules
from feedsvc.extract.rules import fold_ws, weight
from feedsvc.extract.structured import StructuredItem, items_from_jsonld, load_json, parse_iso_date
from feedsvc.model import RawItem

log = logging.getLogger(__name__)

HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
LOOK_CHARS = 600  # how far into a block's text to look for a written date
TOP_GROUPS = 10  # only this many groups get the costlier per-block look (keeps the walk linear)


@dataclass
class Outcome:
    items: list[RawItem]
    strategy: str  # the found_by of the items, or "none"
    reason: str  # one line for `preview` / debug logs
    # When another list scored close to the chosen one: its score against the winner's, and the
    # selectors that would pick it (`preview` shows them; a user decides).
    runner_up: RunnerUp | None = None


@dataclass
class RunnerUp:
    score: float
    best_score: float
    item: str  # CSS selector of its blocks
    title: str | None  # CSS selector of the headline link in a block (None: the block is the link)
    example: str  # its first headline


# ----------------------------------------------------------------------------- parsing helpers


def parse_document(text: str) -> etree._Element | None:
    """Parse once. Bytes in, so an <?xml encoding?> declaration in the text cannot make lxml refuse it.

    The plain etree.HTMLParser (the one lxml.html builds on, same tree) and not lxml.html's: that one
    picks each element's Python class through a Python callback, which doubled the cost of every walk."""
    if not text or not text.strip():
        return None
    try:
        # a parser per call: lxml parsers must not be shared between threads
        root = etree.fromstring(text.encode("utf-8", "surrogatepass"), etree.HTMLParser(encoding="utf-8"))
    except (etree.ParserError, ValueError, UnicodeError) as exc:
        log.debug("page does not parse as HTML: %s", exc)
        return None
    if root is None:  # what lxml.html.document_fromstring refuses as "Document is empty"
        log.debug("page does not parse as HTML: the document is empty")
        return None
    return root


def base_of(page_url: str, root: etree._Element) -> str | None:
    """The absolute <base href> of the page, or None when it has none."""
    for el in root.iter("base"):
        href = (el.get("href") or "").strip()
        if href:
            base = uri.join(page_url, href)
            # a base that cannot hold documents (javascript:, data:) would resolve every link into it
            return base if urlsplit(base).scheme.lower() in ("http", "https", "file") else None
    return None


def clean_href(href: str | None) -> str | None:
    """The href as written, less surrounding and embedded line breaks; None for dead links."""
    if href is None:
        return None
    href = href.strip().replace("\n", "").replace("\r", "").replace("\t", "")
    if not href or rules.DEAD_LINK.match(href):
        return None
    return href


def resolve(href: str, base: str | None) -> str:
    """Absolute against <base href> when the page has one (normalize only knows the page URL)."""
    return uri.join(base, href) if base else href


def link_key(href: str, page_url: str, base: str | None) -> str:
    """Two forms of one link (relative/absolute, with a #fragment) compare equal."""
    return urldefrag(uri.join(base or page_url, href))[0]


def _attr_words(el: etree._Element) -> str:
    return f"{el.get('id') or ''} {el.get('class') or ''}".lower()


def is_bad_container(el: etree._Element) -> bool:
    """Navigation, menus, rankings, tickers, ads, footers, sidebars, related boxes."""
    if el.tag in ("html", "body"):
        return False  # their classes describe the page ("mobile-sidebar-hide"), not a box in it
    if el.tag in rules.BAD_TAGS:
        return True
    role = (el.get("role") or "").lower()
    if role in rules.BAD_ROLES:
        return True
    words = _attr_words(el)
    if not words.strip():
        return False
    words = rules.LAYOUT_WORDS.sub(" ", words)
    if any(s in words for s in rules.BAD_SUBSTRINGS):
        return True
    for token in words.split():
        if token in rules.BAD_TOKENS:
            return True
        if any(part in rules.BAD_PARTS for part in token.replace("_", "-").split("-")):
            return True
    return False


def is_good_container(el: etree._Element) -> bool:
    if el.tag in rules.GOOD_TAGS or (el.get("role") or "").lower() == "main":
        return True
    words = _attr_words(el)
    return any(t in rules.GOOD_TOKENS for t in words.split()) or any(s in words for s in rules.GOOD_SUBSTRINGS)


def is_stream_container(el: etree._Element) -> bool:
    words = _attr_words(el)
    return el.tag not in ("html", "body") and any(s in words for s in rules.STREAM_SUBSTRINGS)


def site_of(host: str | None) -> str:
    """The registrable part of a host: news.chinatimes.com and www.chinatimes.com are one site."""
    labels = (host or "").lower().removeprefix("www.").split(".")
    keep = 3 if len(labels) >= 3 and len(labels[-1]) == 2 and labels[-2] in rules.SECOND_LEVEL_LABELS else 2
    return ".".join(labels[-keep:])


def is_mild_bad_container(el: etree._Element) -> bool:
    words = _attr_words(el)
    return el.tag not in ("html", "body") and any(s in words for s in rules.MILD_BAD_SUBSTRINGS)


def is_ad_block(el: etree._Element) -> bool:
    for token in (el.get("class") or "").lower().split():
        if any(part in rules.AD_BLOCK_PARTS for part in token.replace("_", "-").split("-")):
            return True
    return False


def _sig_part(el: etree._Element) -> str:
    cls = ""
    row = el.tag in rules.ROW_TAGS
    for token in (el.get("class") or "").split():
        low = token.lower()
        if not rules.UNSTABLE_CLASS.search(low) and not (row and rules.UNSTABLE_ROW_CLASS.search(low)):
            cls = token.lower()
            break
    return f"{el.tag}.{cls}" if cls else str(el.tag)


# lxml.html's text_content() is this XPath; compiled once (XPath objects lock around each call).
_STRING = etree.XPath("string()", smart_strings=False)


def text_of(el: etree._Element) -> str:
    # Most links and cells have no child node: their .text is the whole string(), without an XPath call.
    return fold_ws(_STRING(el) if len(el) else el.text)


def spaced_text_of(el: etree._Element) -> str:
    """Text with a space between elements, so that table cells and <dt>/<dd> do not run together."""
    return fold_ws(" ".join(el.itertext()))


def _sibling_date(block: etree._Element) -> str | None:
    """A date written just before the block, as in <dt>2026.01.15</dt><dd><a>…</a></dd>."""
    prev = block.getprevious()
    if prev is not None and isinstance(prev.tag, str) and prev.tag != "a":
        text = spaced_text_of(prev)
        if len(text) <= 40:
            return rules.find_date_text(text)
    return None


# ----------------------------------------------------------------------------- link collection


@dataclass
class Anchor:
    el: etree._Element
    href: str
    title: str
    sig: tuple[str, ...]  # signature parts from <html> down to the anchor
    ancestors: tuple[etree._Element, ...]  # from <html> down to the parent
    order: int
    in_heading: bool
    block: etree._Element | None = None
    block_depth: int = 0  # index of the block in ancestors (len(ancestors) when the block is the link)


def _title_of(a: etree._Element) -> str:
    if len(a):  # (a link with no child element has no heading inside)
        for el in a.iter(*HEADINGS):  # a card that is one big link: its heading is the headline
            t = text_of(el)
            if t:
                return t
    t = text_of(a)
    if not t:
        t = fold_ws(a.get("title") or "")
    return t


# Past this many links a page is no listing a reader would read (100,000 sibling links would take
# ~40 s to score); the first MAX_ANCHORS, in document order, hold any real listing.
MAX_ANCHORS = 10_000


def collect_anchors(root: etree._Element) -> list[Anchor]:
    """One walk over the tree: every link with text (the first MAX_ANCHORS), its signature path and ancestors."""
    anchors: list[Anchor] = []
    stack: list[etree._Element] = []
    sigs: list[str] = []
    order = 0
    # a page repeats a few (tag, class) pairs many times: each signature part is worked out once
    parts: dict[tuple[str, str | None], str] = {}
    words: dict[etree._Element, str] = {}  # the link's parents are shared with its siblings
    for event, el in etree.iterwalk(root, events=("start", "end")):
        tag = el.tag
        if not isinstance(tag, str):
            continue
        if event == "end":
            stack.pop()
            sigs.pop()
            continue
        stack.append(el)
        key = (tag, el.get("class"))
        part = parts.get(key)
        if part is None:
            part = parts[key] = _sig_part(el)
        sigs.append(part)
        if tag != "a":
            continue
        href = clean_href(el.get("href"))
        if href is None:
            continue
        title = _title_of(el)
        if not title:
            continue  # image-only links carry no headline
        order += 1
        parents = tuple(stack[:-1])
        in_heading = any(p.tag in HEADINGS for p in parents[-3:]) or (
            len(el) > 0 and next(el.iter(*HEADINGS), None) is not None)
        if not in_heading:
            near: list[str] = []
            for p in parents[-2:]:
                w = words.get(p)
                if w is None:
                    w = words[p] = _attr_words(p)
                near.append(w)
            near.append(_attr_words(el))
            text = " ".join(near)
            in_heading = "title" in text or "headline" in text or "heading" in text
        anchors.append(Anchor(el, href, title, tuple(sigs), parents, order, in_heading))
        if len(anchors) >= MAX_ANCHORS:
            log.debug("more than %d links: the rest of the page is not read", MAX_ANCHORS)
            break
    return anchors


# ----------------------------------------------------------------------------- groups


@dataclass
class Group:
    sig: tuple[str, ...]
    members: list[Anchor]
    score: float = 0.0
    pre: float = 0.0
    notes: dict[str, float] = field(default_factory=dict)
    containers: set[int] = field(default_factory=set)
    rel: tuple[str, ...] = ()
    kind: str = "repeated-blocks"
    bare: bool = False

    def passes(self) -> bool:
        return self.score >= (rules.MIN_SCORE_BARE if self.bare else rules.MIN_SCORE)


def _assign_blocks(members: list[Anchor]) -> None:
    """Each link's block: its highest ancestor that holds no other link of the group."""
    counts: dict[etree._Element, int] = defaultdict(int)
    for m in members:
        for anc in m.ancestors:
            counts[anc] += 1
    for m in members:
        block, depth = m.el, len(m.ancestors)
        for i in range(len(m.ancestors) - 1, -1, -1):
            if counts[m.ancestors[i]] == 1:
                block, depth = m.ancestors[i], i
            else:
                break
        m.block, m.block_depth = block, depth


def _text_factor(members: list[Anchor]) -> tuple[float, float]:
    weights = sorted(weight(m.title) for m in members)
    med = weights[len(weights) // 2]
    if med < rules.MIN_TITLE_WEIGHT:
        return 0.0, med
    if med > rules.MAX_TITLE_WEIGHT:
        return 0.3, med
    return min(1.0, med / rules.GOOD_TITLE_WEIGHT), med


def _n_term(n: int) -> float:
    return float(n) if n <= 12 else 12 + (n - 12) * 0.4


class _PathFlag:
    """Whether any element of a path from <html> down holds a property. A path's answer is its last
    element's answer for the path that ends there; links of one list share their containers, so each
    element is looked at once and each path costs a look-up or two."""

    def __init__(self, own: Callable[[etree._Element], bool]) -> None:
        self.own = own
        self.upto: dict[etree._Element, bool] = {}

    def __call__(self, chain: tuple[etree._Element, ...]) -> bool:
        upto = self.upto
        if not chain:
            return False
        found = upto.get(chain[-1])
        if found is not None:
            return found
        i = len(chain) - 1
        while i > 0 and chain[i - 1] not in upto:
            i -= 1
        value = upto[chain[i - 1]] if i > 0 else False
        for el in chain[i:]:
            value = value or self.own(el)
            upto[el] = value
        return value


def _is_main(el: etree._Element) -> bool:
    return el.tag in rules.GOOD_TAGS or (el.get("role") or "").lower() == "main"


class _Memo:
    def __init__(self) -> None:
        self.good: dict[etree._Element, bool] = {}
        self.chain_bad = _PathFlag(is_bad_container)
        self.chain_mild = _PathFlag(is_mild_bad_container)
        self.chain_stream = _PathFlag(is_stream_container)
        self.chain_main = _PathFlag(_is_main)

    def chain_good(self, chain: tuple[etree._Element, ...]) -> bool:
        for el in chain:
            v = self.good.get(el)
            if v is None:
                v = self.good[el] = is_good_container(el)
            if v:
                return True
        return False


def _pre_score(g: Group, memo: _Memo, page_host: str) -> None:
    members = g.members
    _assign_blocks(members)
    # ads slotted into the list go, the rest of the group stays
    g.members = members = [m for m in members if m.block is None or not is_ad_block(m.block)]
    if len(members) < rules.MIN_ITEMS_STRONG:
        g.pre = 0.0
        return
    tf, med = _text_factor(members)
    texts = [m.title.casefold() for m in members]
    actions = sum(1 for t in texts if rules.ACTION_TEXT.match(t))
    distinct = len(set(texts)) / len(texts) * (1 - actions / len(texts))
    links = {urldefrag(m.href)[0] for m in members}
    bad = sum(1 for m in members if memo.chain_bad(m.ancestors[: m.block_depth]))
    # "main"/"news" words count near the blocks only: the whole page sits in some #main
    good = sum(1 for m in members if memo.chain_good(m.ancestors[max(0, m.block_depth - 3): m.block_depth]))
    mild = sum(1 for m in members if memo.chain_mild(m.ancestors[: m.block_depth]))
    stream = sum(1 for m in members if memo.chain_stream(m.ancestors[: m.block_depth]))
    in_main = sum(1 for m in members if memo.chain_main(m.ancestors))
    ads = sum(1 for m in members if rules.AD_LINK.search(m.href))
    article_links = sum(1 for m in members if rules.ARTICLE_LINK.search(m.href)) / len(members)
    heading = sum(1 for m in members if m.in_heading) / len(members)
    external = 0
    if page_host:
        site = site_of(page_host)
        for m in members:
            host = urlsplit(m.href).hostname if "://" in m.href[:12] else None
            if host and site_of(host) != site:
                external += 1
    n = len(members)
    penalty = 1 - 0.92 * bad / n
    g.pre = (_n_term(len(links)) * tf * distinct * penalty * (1 + 0.6 * heading) * (1 + 0.4 * good / n)
             * (1 - 0.5 * mild / n) * (1 - 0.5 * stream / n) * (1 + 0.5 * article_links) * (1 - 0.8 * ads / n)
             # a block of links to other sites (a partner's news feed) is not this page's listing
             * (1 - 0.8 * external / n))
    first = members[0]
    g.rel = tuple(first.sig[first.block_depth:])
    g.containers = {id(m.ancestors[m.block_depth - 1]) for m in members if m.block_depth > 0}
    g.notes = {"n": len(links), "median_width": med, "text": round(tf, 2), "distinct": round(distinct, 2),
               "in_bad_box": bad, "in_good_box": good, "in_mild_box": mild, "in_stream": stream, "in_main": in_main,
               "ad_links": ads,
               "article_links": round(article_links, 2), "headings": round(heading, 2), "external": external}


def _block_features(m: Anchor) -> tuple[bool, bool, bool, bool]:
    """(date, summary, image, article) for one block: one walk over the block."""
    block = m.block if m.block is not None else m.el
    has_date = has_summary = has_image = False
    article = block.tag == "article" or "article" in (block.get("itemtype") or "").lower() or any(
        a.tag == "article" for a in m.ancestors[m.block_depth:])
    for el in block.iter():
        tag = el.tag
        if tag == "time" or el.get("itemprop") in ("datePublished", "dateCreated"):
            has_date = True
        elif tag == "img":
            has_image = True
        elif tag == "article" or "blogposting" in (el.get("itemtype") or "").lower():
            article = True
    text = spaced_text_of(block)[:LOOK_CHARS]  # a date or a summary shows near the headline, if at all
    if not has_date and (rules.find_date_text(text) or _sibling_date(block)):
        has_date = True
    has_summary = weight(text) - weight(m.title) >= rules.MIN_SUMMARY_WEIGHT * 1.5
    return has_date, has_summary, has_image, article


def _final_score(g: Group) -> None:
    feats = [_block_features(m) for m in g.members]
    n = len(feats)
    date, summary, image, article = (sum(f[i] for f in feats) / n for i in range(4))
    # a card: one link wrapping the picture and the headline, the shape of a front page's main stories
    card = sum(1 for m in g.members if len(m.el) and next(m.el.iter("img"), None) is not None
               and next(m.el.iter(*HEADINGS), None) is not None) / n
    g.score = g.pre * (1 + 0.5 * date + 0.6 * summary + 0.2 * image) * (1 + 0.5 * article) * (1 + 0.5 * card)
    g.notes.update(date=round(date, 2), summary=round(summary, 2), image=round(image, 2),
                   article=round(article, 2), card=round(card, 2))
    if article > 0.5:
        g.kind = "article"
    if n < rules.MIN_ITEMS and not (article > 0.5 or date > 0.5):
        g.score = 0.0  # two links are a listing only when each block is an article or dated
    g.bare = max(date, summary, image, article, g.notes["headings"]) < 0.5


# ----------------------------------------------------------------------------- item fields


def _is_meta_line(text: str) -> bool:
    """A byline/date line ("Tuesday, 8 July 2008 @ 11:34am • life") is no summary."""
    found = rules.find_date_text(text)
    return found is not None and len(found) * 2 >= len(text)


def _is_teaser(text: str, title: str) -> bool:
    """Long enough to be a summary, and more than the headline again: a teaser that begins with the
    headline and goes on is kept (issue 17), one that only repeats it is not."""
    if weight(text) < rules.MIN_SUMMARY_WEIGHT:
        return False
    if title and title in text:
        return weight(text) - weight(title) >= rules.MIN_SUMMARY_WEIGHT
    return True


def _summary_of(m: Anchor) -> tuple[str | None, str | None]:
    block = m.block if m.block is not None else m.el
    if block is m.el and next(m.el.iter(*HEADINGS), None) is None:
        return None, None
    path = set(m.ancestors)
    in_anchor = m.block is not None and next(m.el.iter(*HEADINGS), None) is not None
    classed = para = None
    for el in block.iter():
        if el is m.el and not in_anchor:
            continue
        if el in path or el.tag in HEADINGS or not isinstance(el.tag, str):
            continue
        if classed is None:
            cls = (el.get("class") or "").lower()
            if cls and any(w in cls for w in rules.SUMMARY_WORDS) and "title" not in cls:
                t = text_of(el)
                if _is_teaser(t, m.title):
                    classed = (el, t)
        # a paragraph, or the teaser linked again to the story (a second <a> in the block)
        if para is None and (el.tag == "p" or (el.tag == "a" and el is not m.el and not len(el))):
            t = text_of(el)
            if _is_teaser(t, m.title) and not _is_meta_line(t) and not rules.ACTION_TEXT.match(t):
                para = (el, t)
        if classed is not None:
            break
    found = classed or para
    if found is None:
        return None, None
    el, text = found
    inner = (el.text or "") + "".join(etree.tostring(c, encoding="unicode", method="html") for c in el)
    return text, inner.strip() or None


def _date_of(m: Anchor) -> tuple[object, str | None]:
    block = m.block if m.block is not None else m.el
    date_text = None
    for el in block.iter():
        tag = el.tag
        if tag == "time" or el.get("itemprop") in ("datePublished", "dateCreated") or (
                tag == "abbr" and "published" in (el.get("class") or "")):
            raw = el.get("datetime") or el.get("content") or el.get("title")
            dt, as_written = parse_iso_date(raw)
            if dt is not None:
                return dt, None
            date_text = date_text or as_written or (text_of(el) or None)
    if date_text:
        return None, date_text
    text = spaced_text_of(block)[:LOOK_CHARS]
    if m.title and m.title in text:
        text = text.replace(m.title, " ", 1)
    return None, rules.find_date_text(text) or _sibling_date(block)


def _side(value: str | None) -> int | None:
    digits = (value or "").strip().removesuffix("px")
    return int(digits) if digits.isdigit() else None


def _widest(srcset: str) -> str | None:
    """The widest candidate of a srcset, parsed as browsers do: a URL runs to the next whitespace and
    may hold commas ("…&resize=616,411"); a comma ends a candidate at its URL's end or after its
    descriptor ("925w", "2x")."""
    best, best_w = None, -1.0
    url, descriptor = None, ""

    def weigh(url: str, descriptor: str) -> None:
        nonlocal best, best_w
        if not url or url.startswith("data:"):
            return
        number = descriptor[:-1]
        w = float(number) if descriptor[-1:] in ("w", "x") and number.replace(".", "", 1).isdigit() else 0.0
        if w > best_w:
            best, best_w = url, w

    for token in srcset.split():
        if url is None:
            if token.endswith(","):
                weigh(token.rstrip(","), "")
            else:
                url, descriptor = token.lstrip(","), ""
            continue
        descriptor = token.rstrip(",") or descriptor
        if token.endswith(","):
            weigh(url, descriptor)
            url = None
    if url is not None:
        weigh(url, descriptor)
    return best


class _Attrs(Protocol):
    def get(self, key: str) -> Any: ...


def picture_of(img: _Attrs) -> str | None:
    """The picture an <img> shows once loaded: lazy-load attributes, then src, then the widest of
    srcset; None for icons, spacers and placeholders (by written size or by file name)."""
    for side in (img.get("width"), img.get("height")):
        n = _side(side)
        if n is not None and n < rules.MIN_PICTURE_SIDE:
            return None
    # in order: lazy-load attributes, src, then srcset (parsed only when those hold no picture)
    for attr in rules.IMAGE_ATTRS:
        url = (img.get(attr) or "").strip()
        if url and not url.startswith("data:") and _is_picture_path(url):
            return url
    for attr in rules.SRCSET_ATTRS:
        url = _widest(img.get(attr) or "") or ""
        if url and _is_picture_path(url):
            return url
    return None


def _is_picture_path(url: str) -> bool:
    path = urlsplit(url).path
    return not rules.NOT_A_PICTURE.search(path) and not rules.SPACER_FILE.search(path)


_LAZY_HOLDERS = etree.XPath(".//*[@data-src or @data-original or @data-lazy-src or @data-bg][not(self::img)]"
                            "[not(self::iframe or self::script or self::video or self::audio)]")


def _image_of(m: Anchor, base: str | None) -> str | None:
    block = m.block if m.block is not None else m.el
    for img in block.iter("img", "source"):
        url = picture_of(img)
        if url:
            return resolve(url, base)
    for holder in _LAZY_HOLDERS(block):
        for attr in ("data-src", "data-original", "data-lazy-src", "data-bg"):
            url = (holder.get(attr) or "").strip()
            path = urlsplit(url).path
            if url and rules.PICTURE_URL.search(url) and not rules.NOT_A_PICTURE.search(path) \
                    and not rules.SPACER_FILE.search(path):
                return resolve(url, base)
    return None


def is_pagination(href: str, page_url: str, base: str | None) -> bool:
    """/page/3/, or this page's own path with another page number (?p=2): not a story."""
    path, _, query = href.partition("#")[0].partition("?")
    if rules.PAGE_PATH.search(path):
        return True
    if not query or not rules.PAGE_QUERY.search(query):
        return False
    return urlsplit(uri.join(base or page_url, href)).path == urlsplit(page_url).path


def _without_other_feeds(members: list[Anchor], page_host: str | None) -> list[Anchor]:
    """Drop the boxes of the list (links sharing a container) that link only to the site's blog,
    forum or shop (blogs.example.com): a portal's box of the same shape fed by another part of the
    site. Sections on other hosts of the news (news., sport., a partner) stay."""
    if len(members) < 4:
        return members
    hosts = [_host_of(m.href, page_host) for m in members]
    main_host = Counter(hosts).most_common(1)[0][0]
    boxes: dict[int, list[int]] = defaultdict(list)
    for i, m in enumerate(members):
        boxes[id(m.ancestors[m.block_depth - 1]) if m.block_depth > 0 else id(m.el)].append(i)
    if len(boxes) < 2:
        return members
    away = {i for box in boxes.values() if len(box) >= 2 and all(
        hosts[i] != main_host and (hosts[i] or "").split(".", 1)[0] in rules.OTHER_FEED_HOSTS for i in box)
        for i in box}
    return [m for i, m in enumerate(members) if i not in away]


def _host_of(href: str, default: str | None) -> str | None:
    host = urlsplit(href).hostname if "://" in href[:12] else default
    return host.removeprefix("www.") if host else host  # www.news.com.au is news.com.au


def not_an_item(m: Anchor, page_url: str, base: str | None) -> bool:
    """A block of the list that is no story: "More"/"次へ", pagination, a promotion, a labelled ad, home."""
    title = m.title.casefold()
    if rules.ACTION_TEXT.match(title) or rules.PROMO_TEXT.search(title):
        return True
    href = m.href
    if rules.PROMO_HREF.search(href) or is_pagination(href, page_url, base):
        return True
    path, _, query = href.partition("#")[0].partition("?")
    if "://" in path[:12]:
        path = urlsplit(path).path or "/"
    if path in ("/", "./") and not query:
        return True  # the site's home page
    block = m.block if m.block is not None else m.el
    for el in block.iter():
        if el is not m.el and isinstance(el.tag, str) and not len(el) and el.text and len(el.text) < 30 \
                and el.text.strip().casefold() in rules.AD_LABELS:
            return True
    return False


def _raw_item(m: Anchor, base: str | None, found_by: str) -> RawItem:
    date, date_text = _date_of(m)
    summary, summary_html = _summary_of(m)
    return RawItem(position=0, found_by=found_by, title=m.title, link=resolve(m.href, base),
                   summary=summary, summary_html=summary_html, date=date,  # type: ignore[arg-type]
                   date_text=date_text, image=_image_of(m, base))


def richness(item: RawItem) -> int:
    return sum(1 for v in (item.title, item.summary, item.date or item.date_text, item.image) if v)


def dedupe_by_link(items: list[RawItem], page_url: str, base: str | None) -> list[RawItem]:
    """Same link -> one item (a featured story repeated in the list): the richer copy, first place."""
    by_key: dict[str, int] = {}
    out: list[RawItem] = []
    for item in items:
        key = link_key(item.link, page_url, base) if item.link else None
        if key is None:
            out.append(item)
            continue
        if key in by_key:
            i = by_key[key]
            if richness(item) > richness(out[i]):
                out[i] = item
            continue
        by_key[key] = len(out)
        out.append(item)
    return [RawItem(position=i, found_by=it.found_by, title=it.title, link=it.link, summary=it.summary,
                    summary_html=it.summary_html, date=it.date, date_text=it.date_text, image=it.image)
            for i, it in enumerate(out)]


# ----------------------------------------------------------------------------- the strategies


def _structured_to_raw(items: list[StructuredItem], base: str | None, found_by: str) -> list[RawItem]:
    out: list[RawItem] = []
    for s in items:
        link = clean_href(s.link) if s.link else None
        out.append(RawItem(position=len(out), found_by=found_by, title=s.title,
                           link=resolve(link, base) if link else None, summary=s.summary,
                           date=s.date, date_text=s.date_text,
                           image=resolve(s.image, base) if s.image else None))
    return out


def extract_jsonld_documents(documents: list[object], base: str | None) -> list[RawItem]:
    return _structured_to_raw(items_from_jsonld(documents), base, "json-ld")


def _path_key(href: str, page_url: str, base: str | None) -> str:
    parts = urlsplit(uri.join(base or page_url, href))
    return f"{parts.path or '/'}?{parts.query}"


def _is_permalink(a: etree._Element, text: str) -> bool:
    # (not rel=bookmark: WordPress puts it on every thumbnail link before a linked headline)
    if rules.PERMALINK_TEXT.match(text) or rules.PERMALINK_TEXT.match(fold_ws(a.get("title"))):
        return True
    cls = (a.get("class") or "").lower()
    if any(w in cls for w in rules.PERMALINK_CLASS_WORDS):
        return True
    if rules.TIME_TEXT.match(text) or rules.is_date_only(text):
        for up in (a.getparent(), a.getparent().getparent() if a.getparent() is not None else None):
            if up is not None and rules.POSTED_LINE.match(spaced_text_of(up)[:80]):
                return True
    return False


_PRECEDING_HEADING = etree.XPath(
    "preceding::*[self::h1 or self::h2 or self::h3 or self::h4 or self::h5 or self::h6][1]")


def _between(start: etree._Element, end: etree._Element) -> list[etree._Element]:
    """The elements after `start` and before `end` in document order, as whole subtrees at the level
    where the two part (children of their lowest common ancestor)."""
    start_chain = [start, *start.iterancestors()]
    end_ancestors = set(end.iterancestors())
    common = next((el for el in start_chain if el in end_ancestors), None)
    if common is None:
        return []
    s_top = start_chain[start_chain.index(common) - 1] if common is not start else start
    e_top = next((el for el in [end, *end.iterancestors()] if el.getparent() is common), end)
    out: list[etree._Element] = []
    for sib in s_top.itersiblings():
        if sib is e_top:
            break
        if isinstance(sib.tag, str):
            out.append(sib)
    return out


def flat_posts(anchors: list[Anchor], page_url: str, base: str | None) -> list[RawItem]:
    """Posts written as an unlinked headline, the body, then a "posted … permalink" line (issue 18):
    the headline titles the item, the permalink links it, the elements between are its summary."""
    pairs: list[tuple[etree._Element, etree._Element, str]] = []
    last_heading = None
    for anchor in anchors:
        a, href = anchor.el, anchor.href
        if len(anchor.title) > 40 or not _is_permalink(a, anchor.title) or any(
                p.tag in HEADINGS for p in anchor.ancestors[-3:]):
            continue
        found = _PRECEDING_HEADING(a)
        heading = found[0] if found else None
        if heading is None or heading is last_heading or next(heading.iter("a"), None) is not None:
            continue  # no headline of its own, or a linked one (which the repeated blocks read)
        if weight(text_of(heading)) < rules.MIN_TITLE_WEIGHT // 2 or rules.is_date_only(text_of(heading)):
            continue
        last_heading = heading
        pairs.append((heading, a, href))
    if len(pairs) < rules.MIN_FLAT_POSTS or len({h for _, _, h in pairs}) < len(pairs):
        return []
    items: list[RawItem] = []
    for heading, a, href in pairs:
        line = a.getparent()
        between = _between(heading, a)
        body = [el for el in between if el is not line and a not in set(el.iter("a"))]
        summary = fold_ws(" ".join(spaced_text_of(el) for el in body)) or None
        if len(body) == 1:  # the body's one element (div.post-body): its inner markup, as other summaries
            one = body[0]
            summary_html = ((one.text or "") + "".join(etree.tostring(c, encoding="unicode", method="html")
                                                       for c in one)).strip() or None
        else:
            summary_html = "".join(etree.tostring(el, encoding="unicode", method="html", with_tail=False)
                                   for el in body).strip() or None
        date_text = rules.find_date_text(spaced_text_of(line)) if line is not None else None
        items.append(RawItem(position=len(items), found_by="flat-posts", title=text_of(heading),
                             link=resolve(href, base), summary=summary, summary_html=summary_html,
                             date_text=date_text))
    return dedupe_by_link(items, page_url, base)


def automatic(page_url: str, text: str) -> Outcome:
    root = parse_document(text)
    if root is None:
        return Outcome([], "none", "the page is empty or not HTML")
    base = base_of(page_url, root)

    # 1. JSON-LD, read before scripts are stripped
    docs = []
    for script in root.iter("script"):
        if "ld+json" in (script.get("type") or "").lower() and script.text:
            doc = load_json(script.text)
            if doc is not None:
                docs.append(doc)
    confirmed: set[str] = set()
    if docs:
        found = extract_jsonld_documents(docs, base)
        titled = sum(1 for i in found if i.title)
        if titled >= 2 and titled * 2 >= len(found):
            items = dedupe_by_link(found, page_url, base)
            return Outcome(items, "json-ld", f"JSON-LD lists {len(items)} items")
        # an ItemList of bare URLs cannot make items, but it says which of the page's links are the items
        # (compared by path and query: structured data often names the canonical https://www. form)
        confirmed = {_path_key(i.link, page_url, base) for i in found if i.link}
        if len(confirmed) < 2:
            confirmed = set()

    # 2. repeated blocks
    etree.strip_elements(root, "script", "style", "noscript", "template", etree.Comment, with_tail=False)
    anchors = collect_anchors(root)
    flat = flat_posts(anchors, page_url, base)
    if flat:
        return Outcome(flat, "flat-posts", f"{len(flat)} posts: unlinked headlines, each followed by its permalink")
    by_sig: dict[tuple[str, ...], list[Anchor]] = defaultdict(list)
    for a in anchors:
        by_sig[a.sig].append(a)
    memo = _Memo()
    host = urlsplit(base or page_url).hostname or ""
    groups = []
    for sig, members in by_sig.items():
        if len(members) < rules.MIN_ITEMS_STRONG or _text_factor(members)[0] == 0.0:
            continue
        g = Group(sig, members)
        _pre_score(g, memo, host)
        if confirmed and g.pre > 0:
            listed = sum(1 for m in g.members if _path_key(m.href, page_url, base) in confirmed)
            g.notes["in_json_ld"] = listed
            g.pre *= 1 + rules.STRUCTURED_CONFIRM_BONUS * listed / len(g.members)
        if g.pre > 0:
            groups.append(g)
    # a page that marks its main content (<main>, role=main): lists outside it are side columns,
    # once a real list (three links or more, not dwarfed by the best outside) sits inside it
    best_pre = max((g.pre for g in groups), default=0.0)
    if any(g.notes["in_main"] * 2 >= len(g.members) and g.notes["n"] >= rules.MIN_ITEMS
           and g.pre >= 0.2 * best_pre for g in groups):
        for g in groups:
            if g.notes["in_main"] * 2 < len(g.members):
                g.pre *= rules.OUTSIDE_MAIN_FACTOR
    groups.sort(key=lambda g: -g.pre)
    top = groups[:TOP_GROUPS]
    for g in top:
        _final_score(g)
    top.sort(key=lambda g: -g.score)
    if not top or not top[0].passes():
        why = (f"best candidate {'/'.join(top[0].sig[-3:])} scored {top[0].score:.1f}, under "
               f"{rules.MIN_SCORE_BARE if top[0].bare else rules.MIN_SCORE}" if top
               else "no repeated links with headline-like text")
        return Outcome([], "none", f"no listing found: {why}")
    best = top[0]
    chosen = [best]
    # a portal repeats one story shape in several sections: join groups ending in the same classed shape
    shape = best.sig[-3:] if any("." in part for part in best.sig[-3:]) else None
    per_link = best.pre / _n_term(int(best.notes["n"]))
    best_path: set[int] | None = None
    page_base = base or page_url
    page_host = urlsplit(page_base).hostname
    best_hosts = {_host_of(m.href, page_host) for m in best.members}
    for g in groups:
        if g is best or g.notes.get("in_bad_box") or g.notes.get("text", 0) < 0.5:
            continue
        # a small section of the same shape is as good as a big one when each link scores as well
        same_shape = g.sig[-3:] == shape and (
            g.pre >= 0.1 * best.pre or g.pre / _n_term(int(g.notes["n"])) >= 0.5 * per_link)
        heading = g.notes.get("headings", 0) >= 0.5
        same_list = bool(g.containers & best.containers) and heading
        section_head = False
        if heading and not (same_shape or same_list) and not all(rules.is_date_only(m.title) for m in g.members[:3]):
            # a section's headline above its list of links: its block holds links of the winner
            if best_path is None:
                best_path = {id(a) for m in best.members for a in m.ancestors}
            heads = sum(1 for m in g.members if m.block is not None and id(m.block) in best_path)
            section_head = heads * 2 > len(g.members)
        if not (same_shape or same_list or section_head):
            continue
        # a box of the same shape feeding another part of the site (its blog, its forum: hardly a link
        # to the hosts of the winner) is another list; a section mixing in partner sites' stories is not
        same_host = sum(1 for m in g.members if _host_of(m.href, page_host) in best_hosts)
        if same_host * 4 >= len(g.members):
            chosen.append(g)
    members = sorted((m for g in chosen for m in g.members if not not_an_item(m, page_url, base)),
                     key=lambda m: m.order)
    members = _without_other_feeds(members, page_host)
    items = dedupe_by_link([_raw_item(m, base, best.kind) for m in members], page_url, base)
    reason = (f"{best.kind}: {len(items)} items in blocks {'/'.join(best.sig[-4:])} "
              f"(score {best.score:.1f}; {', '.join(f'{k}={v}' for k, v in best.notes.items())})")
    if len(chosen) > 1:
        reason += f"; joined {len(chosen) - 1} sibling group(s) of the same shape"
    # the next best list of other links (a card's thumbnail or "Permalink" link to the same stories is
    # the same list, not another one)
    taken = {m.href for g in chosen for m in g.members}
    runner = next((g for g in top[1:] if g not in chosen
                   and sum(1 for m in g.members if m.href in taken) * 2 < len(g.members)), None)
    unsure = None
    if runner is not None:
        reason += f"; runner-up {'/'.join(runner.sig[-3:])} scored {runner.score:.1f}"
        if runner.score >= rules.UNSURE_SHARE * best.score:
            unsure = _runner_up(runner, best.score)
    return Outcome(items, best.kind, reason, unsure)


_CSS_PART = re.compile(r"^[a-z][a-z0-9]*(\.[a-z_][a-z0-9_-]*)?$")


def _runner_up(g: Group, best_score: float) -> RunnerUp | None:
    """The selectors that pick group `g`: its block by the last three steps of its path, the
    headline link by the steps from the block down (None where the block is the link)."""
    m = g.members[0]
    path = [p if _CSS_PART.match(p) else p.split(".")[0] for p in m.sig]
    depth = min(m.block_depth, len(path) - 1)
    item = " > ".join(path[max(0, depth - 2): depth + 1])
    title = " ".join(path[depth + 1:][-2:]) or None
    return RunnerUp(g.score, best_score, item, title, m.title)
