"""Plain-text pages: one item per line (or per blank-line-separated block).

A short line that does not end like a sentence is a headline; when a longer line follows it,
the two are one item (title + summary). Lines that describe the page itself are dropped by
vocabulary (rules.is_page_description), and a line that repeats an earlier summary exactly is
dropped (the featured story shown again as the list's first entry).
"""

from __future__ import annotations

from dataclasses import dataclass

from feedsvc.extract.rules import fold_ws, is_date_only, is_headline_line, is_page_description
from feedsvc.model import RawItem

FOUND_BY = "text-lines"


@dataclass
class _Draft:
    title: str | None = None
    summary: str | None = None
    date_text: str | None = None


def _blocks(text: str) -> tuple[list[list[str]], bool]:
    """Split into blocks of non-empty lines; True when blank lines separate multi-line items."""
    blocks: list[list[str]] = [[]]
    for raw in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        line = fold_ws(raw.lstrip("\ufeff"))
        if line:
            blocks[-1].append(line)
        elif blocks[-1]:
            blocks.append([])
    blocks = [b for b in blocks if b]
    grouped = len(blocks) > 1 and any(len(b) > 1 for b in blocks)
    return blocks, grouped


def _from_lines(lines: list[str]) -> list[_Draft]:
    """One item per line, pairing a headline line with the summary line after it."""
    drafts: list[_Draft] = []
    pending: _Draft | None = None  # a headline waiting for its summary
    for line in lines:
        if is_date_only(line):
            target = pending or (drafts[-1] if drafts else None)
            if target is not None and target.date_text is None:
                target.date_text = line
            continue
        if is_headline_line(line):
            if pending is not None:
                drafts.append(pending)
            pending = _Draft(title=line)
            continue
        if pending is not None:
            pending.summary = line
            drafts.append(pending)
            pending = None
        else:
            drafts.append(_Draft(summary=line))
    if pending is not None:
        drafts.append(pending)
    return drafts


def _from_block(lines: list[str]) -> _Draft:
    """A blank-line-separated block: first line the headline when it looks like one, rest the summary."""
    draft = _Draft()
    body: list[str] = []
    for line in lines:
        if is_date_only(line) and draft.date_text is None:
            draft.date_text = line
        elif draft.title is None and not body and is_headline_line(line) and len(lines) > 1:
            draft.title = line
        else:
            body.append(line)
    draft.summary = " ".join(body) or None
    if draft.summary is None and draft.title is None and lines:
        draft.title = lines[0]
    return draft


def extract_text(text: str) -> list[RawItem]:
    blocks, grouped = _blocks(text)
    if grouped:
        drafts = [_from_block([ln for ln in b if not is_page_description(ln)]) for b in blocks]
        drafts = [d for d in drafts if d.title or d.summary]
    else:
        lines = [ln for b in blocks for ln in b if not is_page_description(ln)]
        drafts = _from_lines(lines)
    items: list[RawItem] = []
    seen_summaries: set[str] = set()
    seen_titles: set[str] = set()
    for d in drafts:
        if d.summary and d.summary in seen_summaries and not d.title:
            continue  # an exact repeat of an earlier summary: the first (with its headline) stays
        if d.title and not d.summary and d.title in seen_titles:
            continue
        if d.summary:
            seen_summaries.add(d.summary)
        if d.title:
            seen_titles.add(d.title)
        items.append(RawItem(position=len(items), found_by=FOUND_BY, title=d.title, summary=d.summary,
                             date_text=d.date_text))
    return items
