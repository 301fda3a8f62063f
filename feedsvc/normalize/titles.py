"""Titles made from a summary, for items whose page gives no headline.

derive_title takes the summary's first sentence, without a date phrase that opens it ("2025年12月25日、",
"Dec. 28, 2025 — "): two summaries that start with the same date would otherwise share a title. If the
sentence is longer than the limit (TITLE_LIMIT_CJK characters for Chinese/Japanese/Korean text,
TITLE_LIMIT_LATIN for other text, "…" included) it is cut at the last natural boundary within the limit:
after a closing bracket (」』）】), before an opening one or a comma (、，,), at a space; with no boundary in
the last 60% of the room, at the limit. Before cutting, short parenthetical glosses ("キーウ(ウクライナ)")
are dropped, as a headline writer would. A cut title ends with "…". Titles never come back empty for a
summary with any text.
"""

from __future__ import annotations

import re

from .dates import strip_leading_date
from .text import cjk_share, clean_text

TITLE_LIMIT_CJK = 60
TITLE_LIMIT_LATIN = 100
ELLIPSIS = "…"

_CJK_STOP = re.compile(r"[。！？!?「『（(【［\[〈《」』）)】］\]〉》]|\.(?=\s)")
_ABBREV = frozenset(
    ["mr", "mrs", "ms", "dr", "st", "jr", "sr", "vs", "etc", "e.g", "i.e", "u.s", "u.k", "u.n",
     "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec",
     "no", "gov", "sen", "rep", "gen", "col", "lt", "inc", "corp", "co", "ltd", "fig", "approx", "p.m", "a.m"]
)
_LATIN_END = re.compile(r"[.!?…][\"”’)\]]?(?=\s+[\"“‘(\[]?[A-Z0-9\u00C0-\u024F\u0370-\u04FF])")
_OPENERS = "「『（(【［[〈《"
_CLOSERS = "」』）)】］]〉》"
_COMMAS = "、，,;；:："
_GLOSS = re.compile(r"\s*[(（][^()（）]{1,20}[)）]")
_SPACES = re.compile(r"\s{2,}")
_TRIM = " 、，,;；:：・-–—/／|｜"


def _is_cjk_text(s: str, language: str | None) -> bool:
    if language and language[:2].lower() in ("ja", "zh", "ko"):
        return True
    return cjk_share(s[:120]) >= 0.3


def _first_sentence(s: str, cjk: bool) -> str:
    if cjk:
        depth = 0  # a 。 or ？ inside 「…」 ends the quoted sentence, not ours
        for m in _CJK_STOP.finditer(s):
            ch = m.group(0)
            if ch in _OPENERS:
                depth += 1
            elif ch in _CLOSERS:
                depth = max(0, depth - 1)
            elif depth == 0:
                return s[: m.start()] if ch in "。." else s[: m.end()]
        return s
    for m in _LATIN_END.finditer(s):
        word = s[: m.start()].rsplit(None, 1)[-1].lower().rstrip(".") if s[: m.start()].strip() else ""
        if word in _ABBREV or (len(word) == 1 and word.isalpha()):
            continue
        end = m.start() if m.group(0) == "." else m.end()
        return s[:end]
    return s[:-1] if s.endswith(".") and not s.endswith("..") else s


def _cut(s: str, limit: int, cjk: bool) -> str:
    room = limit - len(ELLIPSIS)
    best = -1
    for i in range(min(room, len(s) - 1), 0, -1):
        ch, nxt = s[i - 1], s[i]
        # a boundary between s[i-1] and s[i]
        if ch in _CLOSERS or nxt in _OPENERS or nxt in _COMMAS or nxt == " " or ch in _COMMAS:
            best = i
            break
        if cjk and ch == " ":
            best = i
            break
    if best < room * 0.4:
        best = room
    head = s[:best].rstrip(_TRIM)
    return (head or s[:room]) + ELLIPSIS


def derive_title(summary: str, language: str | None = None) -> str:
    """A readable title from a summary: its first sentence or clause, cut at a natural boundary."""
    text = clean_text(summary)
    if not text:
        return ""
    body = text
    for _ in range(3):  # "2025年12月25日（木）、日本時間…" may open with more than one date phrase
        stripped = strip_leading_date(body)
        if stripped == body:
            break
        body = stripped.lstrip(_TRIM) or body
    cjk = _is_cjk_text(body, language)
    limit = TITLE_LIMIT_CJK if cjk else TITLE_LIMIT_LATIN
    sentence = _first_sentence(body, cjk).strip(_TRIM) or body
    if len(sentence) <= limit:
        return sentence
    # Parenthetical glosses ("キーウ(ウクライナ)", "(KIIS)") are what a headline leaves out first.
    shorter = _SPACES.sub(" ", _GLOSS.sub("", sentence)).strip(_TRIM)
    if shorter and len(shorter) <= limit:
        return shorter
    return _cut(shorter or sentence, limit, cjk)
