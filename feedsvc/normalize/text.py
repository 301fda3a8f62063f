"""Text: clean plain text for display, a folded form for comparison, sanitized HTML.

- clean_text: entities decoded (until none are left, so that it is idempotent), characters that XML 1.0
  forbids and C1 controls removed, invisible zero-width characters (U+200B, U+2060, U+FEFF, U+180E, soft
  hyphen) removed, every run of whitespace (also U+3000 and no-break space) folded to one space. ZWJ/ZWNJ
  stay: they shape emoji and scripts. Full-width and half-width forms are kept as written, for display.
- Bidi controls: embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069) are removed everywhere
  (a title that reads backwards, or hides what follows, is a spoof); the marks U+200E/U+200F/U+061C are kept
  only in text with right-to-left letters, where they are needed.
- Caps: clean_title / clean_summary cut at TITLE_MAX / SUMMARY_MAX characters (on a word boundary when
  one is near, never inside a combining sequence or an emoji, with "…"); HTML is read up to HTML_MAX.
- fold: NFKC, case-folded, without punctuation, spaces, controls and format characters: what dedupe compares.
- sanitize_html: nh3 (the Rust `ammonia` sanitizer) with an allow-list; script/style/iframe/object/embed/svg
  content dropped; event handlers and style attributes never pass; href/src made absolute and only
  http(s)/mailto kept (javascript:, data:, vbscript: … are dropped).
"""

from __future__ import annotations

import html as _html
import re
import unicodedata
from functools import lru_cache

import nh3

from feedsvc import uri

# XML 1.0 allows #x9 #xA #xD [#x20-#xD7FF] [#xE000-#xFFFD] [#x10000-#x10FFFF]; C1 controls are removed too,
# and the bidi embeddings, overrides and isolates (display spoofing: "txt.exe" shown as "exe.txt").
_FORBIDDEN = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff"
    "\u200b\u2060\ufeff\u180e\u00ad\u202a-\u202e\u2066-\u2069]"
)
_SPACES = re.compile(r"\s+")
_BIDI_MARKS = re.compile("[\u200e\u200f\u061c]")
_RTL = re.compile("[\u0590-\u08ff\ufb1d-\ufdff\ufe70-\ufefc\U00010800-\U00010fff\U0001e800-\U0001efff]")

TITLE_MAX = 300  # characters: a long real headline is under 200
SUMMARY_MAX = 5000  # a teaser is a paragraph or two; a whole article pasted in is not a summary
HTML_MAX = 50_000  # characters of an item's HTML read (sanitized, its tags closed, after the cut)
ELLIPSIS = "…"


def _strip_chars(s: str) -> str:
    s = _FORBIDDEN.sub("", s)
    if _BIDI_MARKS.search(s) and not _RTL.search(s):
        s = _BIDI_MARKS.sub("", s)  # direction marks in left-to-right text do nothing but mislead
    return s


def _joins_previous(s: str, i: int) -> bool:
    """Whether a cut before s[i] would split a character as the reader sees it (a grapheme)."""
    ch = s[i]
    cp = ord(ch)
    return (unicodedata.category(ch) in ("Mn", "Mc", "Me") or ch in "\u200d\ufe0e\ufe0f\u20e3"
            or 0x1F3FB <= cp <= 0x1F3FF or 0xE0020 <= cp <= 0xE007F  # skin tones, emoji tag sequences
            or s[i - 1] == "\u200d"  # after a zero-width joiner: the emoji goes on
            or _regional(ch) and _regional_run(s, i) % 2 == 1)  # a flag's second half


def _regional(ch: str) -> bool:
    return 0x1F1E6 <= ord(ch) <= 0x1F1FF  # flags are pairs of these


def _regional_run(s: str, i: int) -> int:
    """How many regional indicators come right before s[i]."""
    n = 0
    while i - n - 1 >= 0 and _regional(s[i - n - 1]):
        n += 1
    return n


def cut_text(s: str, limit: int) -> str:
    """`s` if it fits in `limit` characters, else cut to fit with "…": at a space when one is in the
    last fifth, never inside a grapheme."""
    if len(s) <= limit:
        return s
    cut = max(1, limit - len(ELLIPSIS))
    while cut > 1 and _joins_previous(s, cut):
        cut -= 1
    space = s.rfind(" ", int(cut * 0.8), cut + 1)
    if space > 0:
        cut = space
    return s[:cut].rstrip() + ELLIPSIS


def clean_title(s: str | None) -> str:
    """clean_text, capped at TITLE_MAX characters."""
    return cut_text(clean_text(s[:TITLE_MAX * 20] if s else s), TITLE_MAX)


def clean_summary(s: str | None) -> str:
    """clean_text, capped at SUMMARY_MAX characters."""
    return cut_text(clean_text(s[:SUMMARY_MAX * 20] if s else s), SUMMARY_MAX)


def clean_text(s: str | None) -> str:
    """Display text: entities decoded, invisible and XML-forbidden characters removed, whitespace folded."""
    if not s:
        return ""
    s = _strip_chars(s)
    # Decode to a fixed point: "&amp;lt;" from a double-escaping CMS is "<" to a reader, and a second call
    # must not change the result. html.unescape never lengthens a string, so this ends.
    for _ in range(8):
        if "&" not in s:
            break
        t = _strip_chars(_html.unescape(s))
        if t == s:
            break
        s = t
    return _SPACES.sub(" ", s).strip()


class _DropTable(dict[int, int | None]):
    """str.translate table that drops punctuation, separators, controls and format chars (cached per char)."""

    def __missing__(self, cp: int) -> int | None:
        cat = unicodedata.category(chr(cp))
        value = None if cat[0] in "PZC" else cp
        if len(self) < 20_000:  # a page of random code points must not grow a process-wide table for ever
            self[cp] = value
        return value


_DROP = _DropTable()


def fold(s: str) -> str:
    """Comparison form: NFKC, case-folded, no whitespace, punctuation or control/format characters."""
    if not s:
        return ""
    prev = None
    # Dropping a character can let NFKC compose its neighbours anew: repeat until stable (1-2 rounds).
    for _ in range(4):
        s = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", s).casefold()).translate(_DROP)
        if s == prev:
            break
        prev = s
    return s


CJK_CHARS = re.compile("[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af\uf900-\ufaff\uff66-\uff9f\U00020000-\U0002ffff]")
LETTERS = re.compile(r"[^\W\d_]")


def cjk_share(s: str) -> float:
    """Share of CJK characters (kana, han, hangul) among the letters of `s`: 0.0 when it has none."""
    letters = len(LETTERS.findall(s))
    return len(CJK_CHARS.findall(s)) / letters if letters else 0.0


_TAGS = {
    "a", "abbr", "b", "bdi", "bdo", "blockquote", "br", "caption", "cite", "code", "col", "colgroup", "dd",
    "del", "details", "dfn", "div", "dl", "dt", "em", "figcaption", "figure", "h1", "h2", "h3", "h4", "h5",
    "h6", "hr", "i", "img", "ins", "kbd", "li", "mark", "ol", "p", "pre", "q", "rp", "rt", "ruby", "s",
    "samp", "small", "span", "strong", "sub", "summary", "sup", "table", "tbody", "td", "tfoot", "th",
    "thead", "time", "tr", "u", "ul", "wbr",
}
_DROP_WITH_CONTENT = {"script", "style", "iframe", "object", "embed", "template", "svg", "math", "noembed",
                      "frameset", "frame", "applet"}
_ATTRIBUTES = {
    "a": {"href", "title", "hreflang"},
    "img": {"src", "alt", "title", "width", "height"},
    "time": {"datetime"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan", "scope"},
    "ol": {"start"},
    "blockquote": {"cite"},
    "q": {"cite"},
    "abbr": {"title"},
}
_SAFE_SCHEMES = ("http:", "https:", "mailto:")
_URL_ATTRS = {"href", "src", "cite"}
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.\-]*:")
_URL_JUNK = re.compile(r"[\x00-\x20\x7f]+")


def _url_filter(base: str | None):
    def filt(tag: str, attr: str, value: str) -> str | None:
        if attr not in _URL_ATTRS:
            return value
        v = _URL_JUNK.sub("", value)  # browsers ignore these inside URLs: "java\nscript:" is javascript:
        if not v:
            return None
        if _SCHEME.match(v):
            return v if v.lower().startswith(_SAFE_SCHEMES) else None
        if base:
            joined = uri.join(base, v)
            return joined if joined.lower().startswith(_SAFE_SCHEMES) else None
        return v  # relative, nothing to resolve against: harmless
    return filt


@lru_cache(maxsize=64)
def _cleaner(base_url: str | None) -> nh3.Cleaner:
    """One sanitizer per page URL: nh3.clean() rebuilt the allow-lists for every item (~2/3 of its cost)."""
    return nh3.Cleaner(
        tags=_TAGS,
        clean_content_tags=_DROP_WITH_CONTENT,
        attributes=_ATTRIBUTES,
        attribute_filter=_url_filter(base_url),
        url_schemes={"http", "https", "mailto"},
        strip_comments=True,
        link_rel="noopener noreferrer nofollow",
    )


def sanitize_html(html: str, base_url: str | None = None) -> str:
    """Safe HTML: an allow-list of tags/attributes, no active content, links absolute against `base_url`."""
    if not html:
        return ""
    html = _strip_chars(html[:HTML_MAX])
    # again after: the sanitizer turns character references (&#x202E;) into the characters
    return _strip_chars(_cleaner(base_url).clean(html)).strip()


_BLOCK_END = re.compile(r"(?i)<\s*(?:br|/p|/div|/li|/h[1-6]|/tr|/blockquote)\b[^>]*>")


def html_to_text(html: str) -> str:
    """Plain text of an HTML fragment (block ends become spaces), cleaned as clean_text."""
    if not html:
        return ""
    spaced = _BLOCK_END.sub(lambda m: m.group(0) + " ", _strip_chars(html[:HTML_MAX]))
    stripped = nh3.clean(spaced, tags=set(), clean_content_tags=_DROP_WITH_CONTENT | {"noscript"})
    return clean_text(stripped)
