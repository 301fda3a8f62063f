"""Which text of a page's items is evidence of identity, and which is boilerplate.

Text shared by two or more items with different links on one page — a series label, "Read more…",
"続きを読む", a category blurb, a routine title such as 定期メンテナンスのお知らせ — tells none of those
stories apart. Such text stays in the item (a reader still sees it) but not in `Item.folded`, the text
dedupe keys, stores and compares: the item's evidence is then its other text (the headline when the
teaser is shared), or nothing, and only its link identifies it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from feedsvc.model import Entry, Item

from .text import fold


def _parts(item: Item) -> tuple[str, str]:
    """(folded summary, folded headline); a headline derived from the summary is no text of its own."""
    return fold(item.summary), "" if item.title_is_derived else fold(item.title)


def shared_texts(items: Sequence[Item]) -> set[str]:
    """Folded texts (summaries or headlines) that items with different links share on this page."""
    links: dict[str, set[str]] = {}
    for item in items:
        if item.link:
            for text in set(_parts(item)) - {""}:
                links.setdefault(text, set()).add(item.link)
    return {text for text, seen in links.items() if len(seen) > 1}


def without_boilerplate(items: Sequence[Item]) -> list[Item]:
    """One page's items, each linked item's `folded` cleared of text it shares with items of other links.

    Link-less items keep theirs: their text is all that identifies them, and the same text twice
    without links is the same story (a featured item repeated in the list)."""
    shared = shared_texts(items)
    if not shared:
        return list(items)
    out = []
    for item in items:
        if item.link and item.folded:
            summary, title = _parts(item)
            evidence = next((t for t in (summary, title) if t and t not in shared), "")
            if evidence != item.folded:
                item = replace(item, folded=evidence, buckets=())
        out.append(item)
    return out


def as_item(entry: Entry) -> Item:
    """A published entry as the Item it came from (its keys and evidence text), to rebuild lost state."""
    from . import _text_key  # (normalize's __init__ never imports this module: no cycle)

    summary, title = fold(entry.summary), fold(entry.title)
    return Item(title=entry.title, title_is_derived=entry.title_is_derived, link=entry.link, summary=entry.summary,
                summary_html=entry.summary_html, published=entry.published, published_from=entry.published_from,
                image=entry.image, source_url=entry.source_url, position=entry.position,
                key=entry.link or _text_key(summary, title, entry.summary, entry.title), folded=summary or title)
