"""Bytes -> text, done by us rather than by the parser. Pure: stdlib + charset-normalizer.

Why we decode ourselves: parsers guess from the label and give up quietly. A page labelled
Shift_JIS is nearly always CP932 (Windows) in practice; decoded as strict Shift_JIS, its ①, ㈱ or 髙
break the decode and a parser falls back to something that drops or garbles text. Browsers follow
the WHATWG Encoding Standard, which maps these labels to the superset codecs; so do we.

Order (first that decodes wins):
  1. the per-source `encoding` override (the user knows better than the page);
  2. a byte order mark (UTF-8/16/32): it wins over every label;
  3. the HTTP header charset and the <meta> charset in the first 4 KB; when both are there and
     disagree, the one that strictly decodes wins, a multi-byte codec before a single-byte one;
  4. detection from the bytes: UTF-8, then the Japanese legacy codecs (strict decode, scored),
     then charset-normalizer, then windows-1252 (the web's default).
A label whose strict decode fails (the header or meta lies) is skipped, not obeyed.

A few bad bytes are not a lie. A page that decodes with its declared charset but for a few invalid byte
sequences (a stray 0xE9 in a UTF-8 page, one truncated character) keeps that charset, the bad sequences
replaced by U+FFFD: switching the whole page to another codec for them turned every accent of a French
page into mojibake, and a Japanese page into an error. The line between "a few bad bytes" and "a wrong
label" is the share of bad sequences among the non-ASCII ones (_few_bad): a wrong label fails on most of
them (Shift_JIS read as UTF-8, windows-1252 read as UTF-8), a damaged page on a handful. The same
tolerance applies to a BOM, to the per-source override, to UTF-8 behind a single-byte server default and
to UTF-8 found by detection. Strict decodes still come first: a label that decodes cleanly beats one
that decodes with replacements.
"""

from __future__ import annotations

import codecs
import logging
import mimetypes
import re
from urllib.parse import urlsplit

from feedsvc.errors import SourceError

log = logging.getLogger(__name__)

META_SCAN_BYTES = 4096

_BOMS = (  # longest first: the UTF-32-LE BOM starts with the UTF-16-LE one
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


def _labels(names: str, codecs_to_try: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    return {n: codecs_to_try for n in names.split()}


# WHATWG labels -> the Python codecs that implement them, tried in order. Labels not listed go
# through codecs.lookup as they are.
_LABELS: dict[str, tuple[str, ...]] = {
    **_labels("utf-8 utf8 unicode-1-1-utf-8 unicode11utf8 unicode20utf8 x-unicode20utf8", ("utf-8",)),
    **_labels("shift_jis shift-jis sjis x-sjis ms_kanji ms932 cp932 windows-31j csshiftjis x-ms-cp932 "
              "shift_jisx0213 shift_jis_2004", ("cp932", "shift_jis_2004")),
    **_labels("euc-jp eucjp x-euc-jp euc_jp ujis cseucpkdfmtjapanese euc-jis-2004 euc_jis_2004 euc_jisx0213",
              ("euc_jp", "euc_jis_2004")),
    **_labels("iso-2022-jp csiso2022jp iso2022_jp iso-2022-jp-2 iso-2022-jp-ext",
              ("iso2022_jp", "iso2022_jp_2", "iso2022_jp_ext", "iso2022_jp_2004")),
    **_labels("big5 big5-hkscs cn-big5 csbig5 x-x-big5 cp950 x-big5", ("big5hkscs", "cp950", "big5")),
    **_labels("gb2312 gbk gb_2312 gb_2312-80 chinese csgb2312 csiso58gb231280 iso-ir-58 x-gbk gb18030 "
              "cp936 windows-936 euc-cn", ("gb18030",)),
    **_labels("euc-kr ks_c_5601-1987 ks_c_5601-1989 ksc5601 ksc_5601 korean csksc56011987 iso-ir-149 "
              "windows-949 cp949 uhc", ("cp949",)),
    # WHATWG: these all mean windows-1252 (0x80-0x9F are curly quotes, dashes, €, not C1 controls)
    **_labels("iso-8859-1 iso8859-1 iso_8859-1 iso_8859-1:1987 iso88591 latin1 latin-1 l1 cp819 ibm819 "
              "csisolatin1 iso-ir-100 us-ascii ascii ansi_x3.4-1968 windows-1252 cp1252 x-cp1252",
              ("cp1252",)),
    **_labels("iso-8859-9 iso8859-9 iso_8859-9 latin5 l5 csisolatin5 windows-1254 cp1254", ("cp1254",)),
    **_labels("iso-8859-11 tis-620 windows-874 cp874 dos-874", ("cp874",)),
    **_labels("windows-1251 cp1251 x-cp1251", ("cp1251",)),
    **_labels("utf-16 utf-16le", ("utf-16-le",)),
    **_labels("utf-16be", ("utf-16-be",)),
}

# By Python's codec name ("koi8-r", "iso8859-1"); cp932, cp936, cp949, cp950 and cp1361 are the double-byte
# code pages of Shift_JIS, GBK, UHC, Big5 and Johab.
_SINGLE_BYTE = re.compile(r"^(?:cp(?!(?:932|936|949|950|1361)$)\d{3,4}|latin[-_]1|iso8859[-_]\d+|koi8[-_]\w+"
                          r"|mac[-_]\w+|tis[-_]620|ascii|kz1048|ptcp154|hp[-_]roman8)$")
_JAPANESE = ("utf-8", "cp932", "euc_jp", "euc_jis_2004")  # the detection cascade, cheapest evidence first

_CHARSET_PARAM = re.compile(r"""charset\s*=\s*["']?\s*([-\w.:+]+)""", re.I)
_META_CHARSET = re.compile(rb"""<meta\s[^>]*?charset\s*=\s*["']?\s*([-\w.:+]+)""", re.I)
_XML_ENCODING = re.compile(rb"""^\s*<\?xml\s[^>]*?encoding\s*=\s*["']([-\w.:+]+)["']""", re.I)
_ISO2022_ESC = re.compile(rb"\x1b[$(][@BJDI(]")
# characters that real text almost never contains but a wrong decode produces
_JUNK = re.compile("[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f\ue000-\uf8ff\ufffd]")
_HALFWIDTH_KANA = re.compile("[\uff61-\uff9f]")  # EUC-JP read as CP932 turns kanji into these


def _c1_passthrough(exc: UnicodeError) -> tuple[str, int]:
    # WHATWG windows-1252 maps the five bytes Python's cp1252 leaves undefined to U+0081 etc.
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    return exc.object[exc.start:exc.end].decode("latin-1"), exc.end


codecs.register_error("feedsvc-c1", _c1_passthrough)


def header_charset(content_type: str | None) -> str | None:
    """The charset parameter of a Content-Type header, lowercased, or None."""
    if not content_type:
        return None
    m = _CHARSET_PARAM.search(content_type)
    return m.group(1).strip().lower() if m else None


def meta_charset(body: bytes) -> str | None:
    """The charset a page declares in its first 4 KB: <meta charset>, http-equiv, or an XML declaration."""
    head = body[:META_SCAN_BYTES]
    m = _META_CHARSET.search(head) or _XML_ENCODING.search(head)
    return m.group(1).decode("ascii", "replace").lower() if m else None


def codecs_for(label: str, *, from_meta: bool = False) -> tuple[str, ...]:
    """The Python codecs to try for a charset label, best first; () for an unknown label."""
    label = label.strip().lower()
    if from_meta and label.startswith("utf-16"):
        # a <meta> we could read as ASCII cannot be in UTF-16 (HTML spec: treat as UTF-8)
        return ("utf-8",)
    if label in _LABELS:
        return _LABELS[label]
    try:
        return (codecs.lookup(label).name,)
    except LookupError:
        return ()


def _strict(body: bytes, codec: str) -> str | None:
    try:
        return body.decode(codec, "feedsvc-c1" if codec == "cp1252" else "strict")
    except (UnicodeDecodeError, LookupError):
        return None


# How many bad sequences a page may have and still be in its charset (see the module docstring): a handful
# when nearly all the others decode, or at most one in MAX_BAD_SHARE of the non-ASCII sequences.
FEW_BAD = 4
MAX_BAD_SHARE = 100


def _few_bad(bad: int, good: int) -> bool:
    return bad * MAX_BAD_SHARE <= good or (bad <= FEW_BAD and bad * 4 <= good)


def _tolerant(body: bytes, codec: str) -> tuple[str, int] | None:
    """`body` decoded with `codec`, invalid sequences as U+FFFD, and how many there were; None when they
    are more than a few (the label is wrong, not the bytes)."""
    if _is_single_byte(codec):
        return None  # (a single-byte codec decodes anything: nothing to tolerate)
    try:
        text = body.decode(codec, "replace")
    except LookupError:
        return None
    bad = text.count("\ufffd")
    if codec == "utf-8":
        bad -= body.count(b"\xef\xbf\xbd")  # U+FFFD written in the page is not a bad byte
    non_ascii = len(text) - len(text.encode("ascii", "ignore"))
    if bad <= 0 or not _few_bad(bad, non_ascii - bad):
        return None
    if _junk(text) - text.count("\ufffd") > max(2, len(text) // 100):  # binary: _looks_sane, U+FFFD aside
        return None
    return text, bad


def _first_tolerant(body: bytes, labels: list[tuple[str, bool]]) -> tuple[str, str] | None:
    """The declared codec with the fewest bad sequences, when they are few; bad ones replaced by U+FFFD."""
    best: tuple[int, str, str] | None = None
    for label, from_meta in labels:
        for codec in codecs_for(label, from_meta=from_meta):
            done = _tolerant(body, codec)
            if done is not None and (best is None or done[1] < best[0]):
                best = (done[1], done[0], codecs.lookup(codec).name)
    if best is None:
        return None
    log.info("%d invalid byte sequence(s) in a %s page replaced by U+FFFD", best[0], best[2])
    return best[1], best[2]


def _junk(text: str) -> int:
    return len(_JUNK.findall(text))


def _looks_sane(text: str) -> bool:
    """Not binary or a wrong decode: at most 1 % control/private-use/replacement characters."""
    return _junk(text) <= max(2, len(text) // 100)


def _is_single_byte(codec: str) -> bool:
    return bool(_SINGLE_BYTE.match(codecs.lookup(codec).name))


def _first_decoding(body: bytes, label: str, *, from_meta: bool) -> tuple[str, str] | None:
    for codec in codecs_for(label, from_meta=from_meta):
        text = _strict(body, codec)
        if text is not None and _looks_sane(text):
            return text, codecs.lookup(codec).name
    return None


def _detect(body: bytes) -> tuple[str, str] | None:
    """Guess from the bytes alone. None if nothing decodes sensibly."""
    if body.isascii():
        if _ISO2022_ESC.search(body):  # ISO-2022-JP is 7-bit: the escapes give it away
            for codec in _LABELS["iso-2022-jp"]:
                text = _strict(body, codec)
                if text is not None:
                    return text, codec
        return body.decode("ascii"), "ascii"
    if len(body) >= 4 and body.count(0) > len(body) // 4:  # UTF-16 without a BOM
        codec = "utf-16-be" if body[0] == 0 else "utf-16-le"
        text = _strict(body, codec)
        if text is not None and _looks_sane(text):
            return text, codec
    # Cheap and, for Japanese, more accurate than statistics: a strict decode rarely succeeds by
    # accident, and when several do, the one with the least junk wins (EUC-JP read as CP932
    # "succeeds" as half-width katakana and private-use characters).
    best: tuple[int, str, str] | None = None
    for codec in _JAPANESE:
        text = _strict(body, codec)
        if text is None:
            continue
        if codec == "utf-8":
            return text, codec  # valid UTF-8 with non-ASCII bytes is UTF-8
        score = _junk(text) * 4 + len(_HALFWIDTH_KANA.findall(text))
        if best is None or score < best[0]:
            best = (score, text, codec)
    if best is not None and _looks_sane(best[1]) and best[0] <= max(4, len(best[1]) // 200):
        return best[1], best[2]
    tolerated = _tolerant(body, "utf-8")  # UTF-8 but for a few bad bytes: far likelier than any guess
    if tolerated is not None:
        return tolerated[0], "utf-8"
    guess = _normalizer_guess(body)
    if guess:
        for codec in codecs_for(guess):
            text = _strict(body, codec)
            if text is not None and _looks_sane(text):
                return text, codecs.lookup(codec).name
    if best is not None and _looks_sane(best[1]):
        return best[1], best[2]
    text = body.decode("cp1252", "feedsvc-c1")  # the web's default for unlabelled pages
    return (text, "cp1252") if _looks_sane(text) else None


def _normalizer_guess(body: bytes) -> str | None:
    try:
        from charset_normalizer import from_bytes
    except ImportError:  # optional: without it, unlabelled non-Japanese legacy pages fall to cp1252
        return None
    match = from_bytes(body).best()
    return match.encoding if match is not None else None


def decode_body(body: bytes, *, content_type: str | None = None,
                override: str | None = None) -> tuple[str, str]:
    """Decode a page: returns (text without BOM, the Python codec used).

    Raises SourceError("decode", ...) only when nothing decodes sensibly (binary, or garbage in
    every candidate encoding).
    """
    if override:
        found = _first_decoding(body, override, from_meta=False) or _first_tolerant(body, [(override, False)])
        if found:
            return found
        log.warning("the configured encoding %r does not decode this page; detecting instead", override)
    for bom, codec in _BOMS:
        if body.startswith(bom):
            text = _strict(body[len(bom):], codec)
            if text is not None:
                return text, codec
            with_bad = _tolerant(body[len(bom):], codec)
            if with_bad is not None:
                return with_bad[0], codec
            break  # a BOM on bytes that do not decode: fall through to the labels
    declared: list[tuple[str, bool]] = []
    if (h := header_charset(content_type)) is not None:
        declared.append((h, False))
    if (m := meta_charset(body)) is not None:
        declared.append((m, True))
    tried: dict[tuple[str, ...], tuple[str, str] | None] = {}  # header and <meta> usually agree: decode once
    results = []
    for label, from_meta in declared:
        codecs_named = codecs_for(label, from_meta=from_meta)
        if codecs_named not in tried:
            tried[codecs_named] = _first_decoding(body, label, from_meta=from_meta)
        if (r := tried[codecs_named]) is not None:
            results.append(r)
    if results:
        # Header and meta disagree, or a single-byte label (which "decodes" anything): a multi-byte
        # codec that strictly decodes is far stronger evidence than a single-byte one that can't fail.
        multi = [r for r in results if not _is_single_byte(r[1])]
        if multi:
            return multi[0]
        if not body.isascii():
            utf8 = _strict(body, "utf-8")
            if utf8 is not None:  # a server default of ISO-8859-1 in front of a UTF-8 page
                return utf8, "utf-8"
            tolerated = _first_tolerant(body, [("utf-8", False)])  # ... with a stray byte in it
            if tolerated is not None:
                return tolerated
        return results[0]
    if declared:
        # A few bad bytes in a page of the declared charset: keep the charset, replace those bytes.
        tolerated = _first_tolerant(body, declared)
        if tolerated is not None:
            return tolerated
        log.info("declared charset %s does not decode; detecting", " / ".join(label for label, _ in declared))
    found = _detect(body)
    if found is None:
        raise SourceError("decode", f"{len(body)} bytes do not decode as text in any likely encoding"
                          + (f" (declared: {', '.join(label for label, _ in declared)})" if declared else ""))
    return found


_EXT_TYPES = {".html": "text/html", ".htm": "text/html", ".xhtml": "application/xhtml+xml",
              ".txt": "text/plain", ".json": "application/json", ".xml": "application/xml"}


def media_type(content_type: str | None, url: str) -> str:
    """The media type, lowercased, without parameters: from the header, else from the file extension."""
    if content_type:
        mt = content_type.split(";", 1)[0].strip().lower()
        if mt and mt != "application/octet-stream":
            return mt
    path = urlsplit(url).path.lower()
    dot = path.rfind(".")
    ext = path[dot:] if dot > path.rfind("/") else ""
    if ext in _EXT_TYPES:
        return _EXT_TYPES[ext]
    guessed, _ = mimetypes.guess_type(path)
    return guessed or "text/html"
