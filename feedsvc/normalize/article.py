"""normalize.article: RawArticle -> Article, and what an article adds to its entry.

    normalize_article(raw, tz, now)   dates read in the source's zone, URLs absolute, text sanitized
    with_article(entry, article, tz)  the entry as published once its article was read
"""

from __future__ import annotations

import dataclasses
import re
from datetime import datetime, time, timedelta

from feedsvc.model import Article, Entry, RawArticle
from feedsvc.normalize.dates import (FULL, FUTURE_TOLERANCE, MONTH_DAY, find_date_detail, local_date,
                                    parse_markup_date, zone)
from feedsvc.normalize.text import sanitize_html
from feedsvc.normalize.urls import canonical_url

# a markup value that carries a time of day ("2025-12-25T14:03+09:00", "… 14:03:00 GMT")
_HAS_TIME = re.compile(r"\d{1,2}(?::|時)\d{2}|T\d{4}")


def _date(value: str | None, tz: str, now: datetime) -> tuple[datetime | None, bool]:
    """(the date, whether it has a time of day); (None, False) for none, or one after `now`."""
    if not value:
        return None, False
    when = parse_markup_date(value, tz)
    if when is None or when > now + FUTURE_TOLERANCE:
        return None, False
    return when, bool(_HAS_TIME.search(value))


def normalize_article(raw: RawArticle, tz: str, now: datetime, language: str | None = None) -> Article:
    published, precise = _date(raw.published, tz, now)
    if raw.published_text and (published is None or raw.published_by == "htmldate"):
        # a date line written on the page beats htmldate's guess: it has the time, and the zone is the source's
        found = find_date_detail(raw.published_text, now, tz, language=language)
        if found is not None and found.ambiguous and published is not None:
            # a date line without its year ("06月24日 11時30分"): the one nearest htmldate's day
            found = find_date_detail(raw.published_text, min(now, published + timedelta(days=183)), tz,
                                     language=language)
            if found is not None and found.certainty == MONTH_DAY:
                found = dataclasses.replace(found, certainty=FULL)
        if found is not None and found.certainty == FULL and (published is None or local_date(
                found.when, tz) == local_date(published, tz) or raw.published_by == "htmldate"):
            published = found.when
            precise = bool(_HAS_TIME.search(raw.published_text)) and found.when.timetz().replace(
                tzinfo=None) != time(0)
    modified, _ = _date(raw.modified, tz, now)
    content = sanitize_html(raw.text_html, raw.url) if raw.text_html else None
    return Article(
        url=raw.url, published=published, precise=precise, modified=modified,
        image=canonical_url(raw.image, raw.url) if raw.image else None,
        canonical=canonical_url(raw.canonical, raw.url) if raw.canonical else None,
        content_html=content or None,
    )


def with_article(entry: Entry, article: Article, tz: str) -> Entry:
    """The entry with what its article page adds. The listing's date stays unless the article's is more
    precise and on the same day (the listing said 12月25日, the article 2025-12-25T14:03+09:00), or the listing
    gave none. The article's image fills a missing one. `updated` never moves: a date or image found on the
    story's page is not an edit of the story, and neither is its full text arriving after the listing."""
    published, source = entry.published, entry.published_from
    if article_date_wins(published, article, tz):
        # "markup": the page states it for the machine (dedupe trusts no other words, and a feed read back
        # after a lost state must give dates it knows)
        published, source = article.published, "markup"
    return dataclasses.replace(entry, published=published, published_from=source,
                               image=entry.image or article.image,
                               content_html=article.content_html or entry.content_html)


def article_date_wins(listing: datetime | None, article: Article, tz: str) -> bool:
    """Whether the article's date replaces the listing's (see with_article)."""
    if article.published is None:
        return False
    if listing is None:
        return True
    return (article.precise and _day_only(listing, tz)
            and local_date(listing, tz) == local_date(article.published, tz))


def _day_only(when: datetime, tz: str) -> bool:
    """Whether a listing date names only its day (it was resolved to midnight in the source's zone)."""
    return when.astimezone(zone(tz)).timetz().replace(tzinfo=None) == time(0)
