"""Normalize: RawItem -> Item. Pure functions; `now` is the context's fetch time.

Per item (normalize_item):
- text: title and summary through clean_text, capped (clean_title, clean_summary); a summary given only
  as HTML is turned into plain text, and rich markup is kept as sanitized HTML (text.sanitize_html, links absolute).
- title: the page's headline; a headline of only whitespace counts as none, and then the title is derived
  from the summary (titles.derive_title) and `title_is_derived` is set. An item with neither is dropped.
  A title-only item keeps summary "" (not the title again).
- link, image: canonical absolute URLs against the page URL (urls.canonical_url).
- published: the markup date (raw.date; "markup"), unless it lies in the future of the fetch time; else the
  first date written in raw.date_text (the item's date line), then a dateline inside the summary or title
  ("Posted on …"), then the first date written in the summary, then in the title ("text"); else None.
  Relative words (today, Friday, 3 hours ago, 昨日) count only in the date line and right after a dateline
  marker; a title's date that opens a period (より, から, 〜, from, until) is not the item's.
- key: the canonical link; without one, "text:" + sha1(fold(summary))[:16], or of fold(title) when there is
  no summary. The summary, not the (possibly derived) title, so that a later change of the title rule
  keeps the keys of stored items.
- folded: fold(summary or title).

List-level date refinement (normalize_items). A date written without year or month was resolved on its own
to the most recent such day not in the future. On a list that runs newest first, its neighbours know
better: "20日夜" below an item of 2025-10-26 is 2025-10-20, not the 20th of the current month. Rule:
1. The page runs newest first when, among consecutive dated items (page order, dates as resolved alone),
   more pairs go down than up (equal pairs do not count).
2. Then, walking down the page, an ambiguous date (day only, or month and day without year) that is later
   (by local calendar day, in the context zone) than the nearest fully-determined date above it (markup,
   a written year, or a relative word) moves back by months (day only) or years (month-day) until it is not;
   at most 12 months or 3 years: a larger gap means the anchor is a date of something else, and the date
   stays as resolved alone.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from itertools import pairwise

from feedsvc.model import Item, RawItem

from .dates import (
    DAY,
    FULL,
    FUTURE_TOLERANCE,
    MONTH_DAY,
    FoundDate,
    find_date,
    find_date_detail,
    find_dateline,
    parse_markup_date,
    shift_back,
    zone,
)
from .text import SUMMARY_MAX, clean_summary, clean_text, clean_title, cut_text, fold, html_to_text, sanitize_html
from .titles import derive_title
from .urls import canonical_url

__all__ = [
    "NormalizeContext",
    "canonical_url",
    "clean_text",
    "derive_title",
    "find_date",
    "fold",
    "normalize_item",
    "normalize_items",
    "parse_markup_date",
    "sanitize_html",
]

log = logging.getLogger(__name__)

_MAX_STEPS = {DAY: 12, MONTH_DAY: 3}


@dataclass(frozen=True, slots=True)
class NormalizeContext:
    page_url: str  # the page the items come from (final URL after redirects)
    fetched_at: datetime  # aware; "now" for dates without year/month and relative words
    timezone: str = "UTC"  # IANA name: dates written without a zone are in this zone
    language: str | None = None

    def __post_init__(self) -> None:
        if self.fetched_at.tzinfo is None or self.fetched_at.utcoffset() is None:
            raise ValueError("NormalizeContext.fetched_at must be timezone-aware")


def _text_key(summary_folded: str, title_folded: str, summary: str, title: str) -> str:
    basis = summary_folded or title_folded or summary or title
    return "text:" + hashlib.sha1(basis.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def _text_date(date_text: str, summary: str, title: str, ctx: NormalizeContext) -> FoundDate | None:
    """The date written for the item: its date line, else a dateline inside its text, else free text.

    Only the date line (date_text: the item's date/byline element) may hold relative words ("3 hours
    ago", 昨日, Friday): in a summary or title they are about the story, not the post, and a wrong date
    is worse than none. A title's date that opens a period ("2016年10月1日より…", "from Oct. 1") is when
    something starts, not when the item was published.
    """
    now, tz, lang = ctx.fetched_at, ctx.timezone, ctx.language
    found = find_date_detail(date_text, now, tz, language=lang)
    if found is None:
        found = find_dateline(summary, now, tz, language=lang) or find_dateline(title, now, tz, language=lang)
    if found is None:
        found = find_date_detail(summary, now, tz, language=lang, relative=False)
    if found is None:
        found = find_date_detail(title, now, tz, language=lang, relative=False, periods=True)
    return found


def _normalize(raw: RawItem, ctx: NormalizeContext) -> tuple[Item, FoundDate | None] | None:
    title = clean_title(raw.title)
    summary = clean_summary(raw.summary)
    if not summary and raw.summary_html:
        summary = cut_text(html_to_text(raw.summary_html), SUMMARY_MAX)
    if not title and not summary:
        return None
    summary_html = sanitize_html(raw.summary_html, ctx.page_url) if raw.summary_html else None

    published: datetime | None = None
    published_from: str | None = None
    found: FoundDate | None = None
    if raw.date is not None:
        d = raw.date if raw.date.tzinfo is not None else raw.date.replace(tzinfo=zone(ctx.timezone))
        if d <= ctx.fetched_at + FUTURE_TOLERANCE:
            published, published_from = d, "markup"
            found = FoundDate(d, FULL, 0, 0)
        else:
            log.debug("markup date %s is after the fetch time; looking in the text", d)
    if published is None:
        found = _text_date(clean_text(raw.date_text), summary, title, ctx)
        if found is not None:
            published, published_from = found.when, "text"

    summary_folded = fold(summary)
    title_folded = fold(title)
    link = canonical_url(raw.link, ctx.page_url)
    item = Item(
        title=title or derive_title(summary, ctx.language) or summary,
        title_is_derived=not title,
        link=link,
        summary=summary,
        summary_html=summary_html or None,
        published=published,
        published_from=published_from,
        image=canonical_url(raw.image, ctx.page_url),
        source_url=ctx.page_url,
        position=raw.position,
        key=link or _text_key(summary_folded, title_folded, summary, title),
        folded=summary_folded or title_folded,
    )
    return item, found


def normalize_item(raw: RawItem, ctx: NormalizeContext) -> Item | None:
    """One normalized Item, or None when the raw item has neither title nor summary."""
    done = _normalize(raw, ctx)
    return done[0] if done else None


def _runs_newest_first(dates: list[datetime]) -> bool:
    down = up = 0
    for a, b in pairwise(dates):
        if b < a:
            down += 1
        elif b > a:
            up += 1
    return down > up


def normalize_items(raws: Sequence[RawItem], ctx: NormalizeContext) -> list[Item]:
    """Items of one page in page order (items with no text dropped), dates refined by their neighbours."""
    done = [d for d in (_normalize(raw, ctx) for raw in raws) if d is not None]
    done.sort(key=lambda d: d[0].position)
    dated = [f.when for _, f in done if f is not None]
    if len(dated) < 3 or not _runs_newest_first(dated):
        return [item for item, _ in done]
    tz = zone(ctx.timezone)
    out: list[Item] = []
    anchor: datetime | None = None
    for item, found in done:
        if found is not None and not found.ambiguous:
            anchor = found.when
        elif found is not None and anchor is not None:
            limit_day = anchor.astimezone(tz).date()
            when: datetime | None = found.when
            steps = 0
            while when is not None and when.astimezone(tz).date() > limit_day and steps < _MAX_STEPS[found.certainty]:
                steps += 1
                when = shift_back(found.when, found.certainty, steps)
                while when is None and steps < _MAX_STEPS[found.certainty]:  # e.g. no 31st that month
                    steps += 1
                    when = shift_back(found.when, found.certainty, steps)
            if when is not None and when != found.when and when.astimezone(tz).date() <= limit_day:
                item = replace(item, published=when)
        out.append(item)
    return out
