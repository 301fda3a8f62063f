"""Dates: read from markup values, or found in an item's own text (Japanese and English).

Which date of a text is the item's date: the FIRST date the text names that resolves to a day not in the
future of `now`. News summaries name the event's date first ("2025年12月28〜29日に…主張。WSJは31日、…");
later dates are reactions, reports and background. A range (28〜29日, Dec. 28-29) is its first day. A date
that resolves to more than FUTURE_TOLERANCE after `now` is an announcement of something to come, not the
item's date: it is skipped and the next date named is tried.

Resolution of incomplete dates, against `now` in the zone the date is written in:
- year given (2025年12月28日, 令和7年12月28日, Dec. 28, 2025, 2025/12/28, 13/02/2016): as written;
- month and day (12月28日, Dec 28, 12/28): the most recent such day not in the future; a weekday written
  with it (12月28日（日）, December 28, Monday) picks the most recent year where that day is that weekday;
- day alone (28日, 現地13日): the most recent month in which that day exists and is not in the future;
- relative words (きょう, 昨日, 今朝, おととい, 3時間前, 2日前, yesterday, 3 hours ago, this morning, Monday):
  from `now`, and only in an item's date line (find_date_detail's `relative`): in a summary or title they
  name the story's days, not the post's ("Friday we signed…" in a 2019 post is no date in 2026).

Free text vs date lines: a dateline written inside free text ("… Posted on August 23, 2019 at 6:19 PM",
投稿日：…) is the item's own date and beats every other date of the text (find_dateline). In a title, a date
that opens a period or announces a start (2016年10月1日より…, 10月1日〜, from/until/starting Oct. 1) is
skipped (`periods`): it says when something begins, not when the item was published.
A date with a day and no time is midnight in its zone. Part-of-day words (夜, 朝, 未明, …) are recognised but
set no time: they name no hour, and a made-up hour would only move the date across `now`.

Zones: an explicit offset or zone name (UTC+9, GMT, JST, ET, EST, 日本時間, 米国時間 = America/New_York)
wins; 現地 ("local time at the scene", place unknown) and no marker mean the page's zone `tz`.

Slash dates with the year last (13/02/2016) are day/month except for en-US; a bare a/b without year is
month/day (Japanese usage) and only read on pages in Chinese, Japanese, Korean or of unknown language.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from email.utils import parsedate_to_datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

log = logging.getLogger(__name__)

# A date this far after `now` is still accepted (server clocks, zone slips); beyond it, it is not a
# publication date.
FUTURE_TOLERANCE = timedelta(hours=1)

# How certain a found date is: FULL and RELATIVE are determined; MONTH_DAY (no year) and DAY (no month)
# were resolved against `now` and may be refined by the neighbours' dates (see normalize_items).
FULL, MONTH_DAY, DAY, RELATIVE = "full", "month-day", "day", "relative"


@dataclass(frozen=True, slots=True)
class FoundDate:
    when: datetime  # aware
    certainty: str  # FULL, MONTH_DAY, DAY or RELATIVE
    start: int  # span of the date phrase in the searched text
    end: int

    @property
    def ambiguous(self) -> bool:
        return self.certainty in (MONTH_DAY, DAY)


@lru_cache(maxsize=64)
def zone(name: str) -> tzinfo:
    """The tzinfo for an IANA name (cached); UTC for an unknown name, with a warning."""
    try:
        return ZoneInfo(name)
    except (ValueError, KeyError, OSError):  # ZoneInfoNotFoundError is a KeyError
        log.warning("unknown timezone %r, using UTC", name)
        return UTC


def _fixed(hours: int, minutes: int = 0) -> tzinfo:
    sign = -1 if hours < 0 else 1
    return timezone(timedelta(hours=hours, minutes=sign * minutes))


# Zone names written after a time or before a date. None = the page's zone (現地: place unknown).
_NAMED_ZONES: dict[str, tzinfo | None] = {
    "JST": ZoneInfo("Asia/Tokyo"), "日本時間": ZoneInfo("Asia/Tokyo"), "KST": ZoneInfo("Asia/Seoul"),
    "UTC": UTC, "GMT": UTC, "Z": UTC,
    "ET": ZoneInfo("America/New_York"), "米国時間": ZoneInfo("America/New_York"),
    "米東部時間": ZoneInfo("America/New_York"), "米西部時間": ZoneInfo("America/Los_Angeles"),
    "CT": ZoneInfo("America/Chicago"), "MT": ZoneInfo("America/Denver"), "PT": ZoneInfo("America/Los_Angeles"),
    "EST": _fixed(-5), "EDT": _fixed(-4), "CST": _fixed(-6), "CDT": _fixed(-5), "MST": _fixed(-7),
    "MDT": _fixed(-6), "PST": _fixed(-8), "PDT": _fixed(-7), "BST": _fixed(1), "CET": _fixed(1),
    "CEST": _fixed(2), "AEST": _fixed(10), "AEDT": _fixed(11), "英国時間": ZoneInfo("Europe/London"),
    "現地": None, "現地時間": None,
}

_MONTHS = {
    "jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6, "jul": 7, "aug": 8, "sep": 9, "oct": 10,
    "nov": 11, "dec": 12,
}
_JA_WEEKDAYS = {"月": 0, "火": 1, "水": 2, "木": 3, "金": 4, "土": 5, "日": 6}
_EN_WEEKDAYS = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}
_ERAS = {"令和": 2018, "平成": 1988, "昭和": 1925}

# --- patterns (compiled once; \d also matches full-width digits, and int() reads them) -------------------

_RSEP = r"[〜～~\-−–—・]"  # range separators: 28〜29日, 28-29日
_JA_DAY = rf"(?P<d>\d{{1,2}})(?:\s*日)?(?:\s*{_RSEP}\s*(?:\d{{1,2}}\s*月\s*)?\d{{1,2}})?\s*日"
_EN_MONTH = (r"(?P<mon>Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?"
             r"|Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\b\.?")
_EN_WD = r"(?:Mon|Tue|Tues|Wed|Thu|Thur|Thurs|Fri|Sat|Sun)(?:day|nesday|rsday|urday|sday)?\b\.?"
_EN_WD_FULL = r"(?P<wd>Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)\b"

_I = re.IGNORECASE
# (name, certainty when no year, pattern); order breaks ties between matches starting at the same place.
_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("ja_rel", re.compile(
        r"(?P<word>きょう|今日|本日|今朝|今夜|今晩|きのう|昨日|昨夜|昨晩|おととい|一昨日)"
        r"|(?<!\d)(?P<n>\d{1,3})\s*(?P<unit>分|時間|日|週間)\s*前")),
    ("ja_full", re.compile(
        r"(?<!\d)(?:(?P<era>令和|平成|昭和)\s*(?P<ey>\d{1,2}|元)|(?P<y>\d{4}))\s*年\s*(?P<m>\d{1,2})\s*月\s*"
        + _JA_DAY)),
    ("ja_md", re.compile(
        r"(?:(?P<ry>一昨年|昨年|去年|今年|本年)\s*)?(?<!\d)(?P<m>\d{1,2})\s*月\s*" + _JA_DAY)),
    ("ymd", re.compile(
        r"(?<![\d/.．／])(?P<y>\d{4})\s*(?P<sep>[/／.．\-])\s*(?P<m>\d{1,2})\s*(?P=sep)\s*(?P<d>\d{1,2})"
        r"(?![\d/／])(?!\.\d)")),
    ("dmy", re.compile(
        r"(?<![\d/.．／])(?P<a>\d{1,2})\s*(?P<sep>[/／.\-])\s*(?P<b>\d{1,2})\s*(?P=sep)\s*(?P<y>\d{4})(?![\d/])")),
    ("en_rel", re.compile(
        r"\b(?:(?P<n>\d{1,3}|an?|one)\s+(?P<unit>minute|min|hour|hr|day|week)s?\s+ago"
        r"|(?P<word>yesterday|today|tonight|this\s+(?:morning|afternoon|evening)|last\s+night))\b", _I)),
    ("en_mdy", re.compile(
        rf"(?:\b{_EN_WD},?\s+)?\b{_EN_MONTH}\s*(?P<d>\d{{1,2}})(?:st|nd|rd|th)?\b(?:\s*[-–]\s*\d{{1,2}}\b)?"
        r"(?:,?\s+(?P<y>\d{4})(?!\d))?", _I)),
    ("en_dmy", re.compile(
        rf"(?:\b{_EN_WD},?\s+)?(?<!\d)(?P<d>\d{{1,2}})(?:st|nd|rd|th)?(?:\s*[-–]\s*\d{{1,2}})?\s+(?:of\s+)?"
        + _EN_MONTH + r"(?:,?\s+(?P<y>\d{4})(?!\d))?", _I)),
    ("md_slash", re.compile(
        r"(?<![\d/.．／])(?P<a>\d{1,2})\s*[/／]\s*(?P<b>\d{1,2})(?![\d/／%.,])"
        r"(?!\s*(?:ページ|頁|件|人|回|本|個|点|倍|位|試合|勝|敗))")),
    ("ja_day", re.compile(
        r"(?<![\d月第/／.])(?P<d>\d{1,2})(?:\s*日)?(?:\s*" + _RSEP + r"\s*\d{1,2})?\s*日"
        r"(?!間|目|前|後|分|ぶり|連続|以内|以上|未満|付け?で|本|程度|余り)")),
    ("en_wd", re.compile(r"\b(?:last\s+|on\s+)?" + _EN_WD_FULL)),
]

# After a date: a weekday, a time, a part of day, a zone. Read with .match at the date's end.
_TAIL = re.compile(
    r"(?:\s*[（(]\s*(?P<jwd>[月火水木金土日])(?:曜日?)?\s*(?:・?祝日?)?\s*[）)]"
    rf"|\s*,?\s*(?P<ewd>{_EN_WD}))?"
    r"(?:(?:T|\s*(?:at|@|,|-|–)?\s*)"
    r"(?:(?P<ampm>午前|午後)?\s*(?P<jh>\d{1,2})\s*時(?!間)(?:\s*(?P<jm>\d{1,2})\s*分|(?P<half>半))?"
    r"|(?P<h>\d{1,2})[:：](?P<mi>\d{2})(?:[:：](?P<s>\d{2})(?:\.\d+)?)?"
    r"(?:\s*(?P<ap>[AaPp]\.?\s?[Mm]\.?))?(?P<off>Z|[+-]\d{2}:?\d{2}(?!\d))?"
    r"|(?P<h2>\d{1,2})\s*(?P<ap2>[AaPp]\.?[Mm]\.?)(?![A-Za-z])"
    r"|(?:深夜|未明|早朝|夕方|夜|朝|昼|午前中|午前|午後)(?!\s*\d)))?"
    r"(?:\s*[（(]?\s*(?P<zone>(?:UTC|GMT)(?:\s*(?P<zoff>[+-]\d{1,2}(?::?\d{2})?))?(?![A-Za-z])"
    r"|(?:JST|KST|ET|EST|EDT|CT|CST|CDT|MT|MST|MDT|PT|PST|PDT|BST|CEST|CET|AEST|AEDT)(?![A-Za-z])"
    r"|日本時間|米国時間|米東部時間|米西部時間|英国時間|現地時間)\s*[）)]?)?"
)
# Just before a date: a zone marker (日本時間2025年9月29日, 現地13日, 米国時間19日).
_PREFIX_ZONE = re.compile(
    r"(?P<zone>日本時間|現地時間|現地|米国時間|米東部時間|米西部時間|英国時間|JST|KST|ET|UTC|GMT)\s*[:：]?\s*$")
_QUICK = re.compile(r"\d|きょう|今日|本日|今朝|今夜|今晩|きのう|昨|おととい|一昨日|yesterday|today|tonight|night\b"
                    r"|morning\b|afternoon\b|evening\b|day\b|ago\b", _I)


# --- resolution --------------------------------------------------------------------------------------

def _mk(y: int, m: int, d: int, t: time, tz: tzinfo) -> datetime | None:
    try:
        return datetime(y, m, d, t.hour, t.minute, t.second, tzinfo=tz)
    except ValueError:
        return None


def _back_months(y: int, m: int, k: int) -> tuple[int, int]:
    idx = y * 12 + (m - 1) - k
    return idx // 12, idx % 12 + 1


def shift_back(when: datetime, certainty: str, steps: int) -> datetime | None:
    """`when` moved back by `steps` months (a DAY date) or years (a MONTH_DAY date); None if no such day."""
    if certainty == DAY:
        y, m = _back_months(when.year, when.month, steps)
    elif certainty == MONTH_DAY:
        y, m = when.year - steps, when.month
    else:
        return None
    return _mk(y, m, when.day, when.timetz(), when.tzinfo or UTC)


def _resolve(y: int | None, m: int | None, d: int, t: time, tz: tzinfo, now: datetime,
             weekday: int | None) -> tuple[datetime | None, str]:
    limit = now + FUTURE_TOLERANCE
    if y is not None and m is not None:
        dt = _mk(y, m, d, t, tz)
        return (dt if dt is not None and dt <= limit else None), FULL
    local_now = now.astimezone(tz)
    if m is not None:  # month-day: walk back years
        fallback = None
        for k in range(8):
            dt = _mk(local_now.year - k, m, d, t, tz)
            if dt is None or dt > limit:
                continue
            if weekday is None or dt.weekday() == weekday:
                return dt, MONTH_DAY
            fallback = fallback or dt
        return fallback, MONTH_DAY
    fallback = None  # day alone: walk back months
    for k in range(13):
        yy, mm = _back_months(local_now.year, local_now.month, k)
        dt = _mk(yy, mm, d, t, tz)
        if dt is None or dt > limit:
            continue
        if weekday is None or dt.weekday() == weekday:
            return dt, DAY
        fallback = fallback or dt
    return fallback, DAY


def _tail(text: str, pos: int, tz: tzinfo) -> tuple[time, tzinfo, int | None, int]:
    """Time, zone, weekday and end position of what follows a date at `pos`."""
    t = _TAIL.match(text, pos)
    if t is None or t.end() == pos:
        return time(0), tz, None, pos
    weekday = None
    if t["jwd"]:
        weekday = _JA_WEEKDAYS[t["jwd"]]
    elif t["ewd"]:
        weekday = _EN_WEEKDAYS.get(t["ewd"][:3].lower())
    hh = mi = ss = 0
    ok = True
    if t["jh"]:
        hh, mi = int(t["jh"]), int(t["jm"] or 0) + (30 if t["half"] else 0)
        if t["ampm"] == "午後" and hh < 12:
            hh += 12
    elif t["h"]:
        hh, mi, ss = int(t["h"]), int(t["mi"]), int(t["s"] or 0)
        ap = (t["ap"] or "").lower()[:1]
        if ap:
            ok = 1 <= hh <= 12
            hh = hh % 12 + (12 if ap == "p" else 0)
    elif t["h2"]:
        hh = int(t["h2"])
        ok = 1 <= hh <= 12
        hh = hh % 12 + (12 if t["ap2"].lower()[0] == "p" else 0)
    if not (ok and hh <= 23 and mi <= 59 and ss <= 59):
        hh = mi = ss = 0  # not a time we can trust: keep the day
    if t["off"]:
        tz = _offset(t["off"])
    if t["zone"]:
        if t["zoff"]:
            tz = _offset(t["zoff"])
        else:
            named = _NAMED_ZONES.get(t["zone"])
            tz = named if named is not None else tz
    return time(hh, mi, ss), tz, weekday, t.end()


def _offset(s: str) -> tzinfo:
    s = s.strip()
    if s == "Z":
        return UTC
    sign = -1 if s[0] == "-" else 1
    digits = s[1:].replace(":", "")
    if len(digits) <= 2:
        h, m = int(digits), 0
    else:
        h, m = int(digits[:-2]), int(digits[-2:])
    if h > 14 or m > 59:
        return UTC
    return timezone(sign * timedelta(hours=h, minutes=m))


def _cjk_or_unknown(language: str | None) -> bool:
    return language is None or language[:2].lower() in ("ja", "zh", "ko")


def _candidate(name: str, m: re.Match[str], text: str, now: datetime, page_tz: tzinfo,
               language: str | None) -> tuple[datetime | None, str, int]:
    """Resolve one match: (datetime or None, certainty, end of the phrase)."""
    tz = page_tz
    pre = _PREFIX_ZONE.search(text, max(0, m.start() - 8), m.start())
    if pre is not None:
        marked = _NAMED_ZONES.get(pre["zone"])
        tz = marked if marked is not None else page_tz
    g = m.groupdict()
    if name in ("ja_rel", "en_rel"):
        local = now.astimezone(tz)
        word = (g.get("word") or "").lower()
        if word:
            word = " ".join(word.split())  # "this  morning"
            back = {"きょう": 0, "今日": 0, "本日": 0, "今朝": 0, "今夜": 0, "今晩": 0, "today": 0, "tonight": 0,
                    "this morning": 0, "this afternoon": 0, "this evening": 0, "きのう": 1, "昨日": 1, "昨夜": 1,
                    "昨晩": 1, "yesterday": 1, "last night": 1, "おととい": 2, "一昨日": 2}[word]
            day = local.date() - timedelta(days=back)
            return datetime(day.year, day.month, day.day, tzinfo=tz), RELATIVE, m.end()
        n_s = g["n"].lower()
        n = 1 if n_s in ("a", "an", "one") else int(n_s)
        unit = g["unit"].lower()
        if unit in ("分", "minute", "min"):
            return (now - timedelta(minutes=n)).astimezone(tz), RELATIVE, m.end()
        if unit in ("時間", "hour", "hr"):
            return (now - timedelta(hours=n)).astimezone(tz), RELATIVE, m.end()
        days = n * 7 if unit in ("週間", "week") else n
        day = local.date() - timedelta(days=days)
        return datetime(day.year, day.month, day.day, tzinfo=tz), RELATIVE, m.end()
    if name == "en_wd":
        local = now.astimezone(tz)
        want = _EN_WEEKDAYS[g["wd"][:3].lower()]
        day = local.date() - timedelta(days=(local.weekday() - want) % 7)
        return datetime(day.year, day.month, day.day, tzinfo=tz), RELATIVE, m.end()

    y: int | None = None
    mo: int | None = None
    if name == "ja_full":
        if g["era"]:
            y = _ERAS[g["era"]] + (1 if g["ey"] == "元" else int(g["ey"]))
        else:
            y = int(g["y"])
        mo, d = int(g["m"]), int(g["d"])
    elif name == "ja_md":
        mo, d = int(g["m"]), int(g["d"])
        if g["ry"]:
            y = now.astimezone(tz).year - {"一昨年": 2, "昨年": 1, "去年": 1, "今年": 0, "本年": 0}[g["ry"]]
    elif name == "ymd":
        y, mo, d = int(g["y"]), int(g["m"]), int(g["d"])
    elif name == "dmy":
        a, b, y = int(g["a"]), int(g["b"]), int(g["y"])
        us = (language or "").lower().replace("_", "-") == "en-us"
        d, mo = (b, a) if us else (a, b)
        if mo > 12 and d <= 12:  # the other order is the only valid one
            d, mo = mo, d
    elif name in ("en_mdy", "en_dmy"):
        if m["mon"][0].islower():  # "may", "march" as words, not months
            return None, FULL, m.end()
        mo, d = _MONTHS[m["mon"][:3].lower()], int(g["d"])
        y = int(g["y"]) if g["y"] else None
    elif name == "md_slash":
        if not _cjk_or_unknown(language):
            return None, FULL, m.end()
        mo, d = int(g["a"]), int(g["b"])
    else:  # ja_day
        d = int(g["d"])
    if not (1 <= d <= 31) or (mo is not None and not 1 <= mo <= 12) or (y is not None and not 1800 <= y <= 2200):
        return None, FULL, m.end()
    t, tz, weekday, end = _tail(text, m.end(), tz)
    dt, certainty = _resolve(y, mo, d, t, tz, now, weekday)
    return dt, certainty, end


# A pattern only runs on a text holding one of its needles (a plain `in` test): most patterns never match a
# given summary, and skipping them is most of the cost of normalize_items.
_NEEDLES: dict[str, tuple[str, ...]] = {
    "ja_rel": ("きょう", "今日", "本日", "今朝", "今夜", "今晩", "きのう", "昨", "おととい", "前"),
    "ja_full": ("年",), "ja_md": ("月",), "ja_day": ("日",),
    "ymd": ("/", "／", ".", "．", "-"), "dmy": ("/", "／", ".", "-"), "md_slash": ("/", "／"),
    "en_rel": ("ago", "AGO", "Ago", "day", "DAY", "Day", "ight", "IGHT", "ing", "ING", "oon", "OON"),
    "en_wd": ("day",),
}
_EN_MONTH_HINT = re.compile(r"(?i)(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)")


def _matches(text: str) -> list[tuple[int, int, str, re.Match[str]]]:
    found = []
    months: bool | None = None
    for prio, (name, pat) in enumerate(_PATTERNS):
        needles = _NEEDLES.get(name)
        if needles is not None:
            if not any(n in text for n in needles):
                continue
        else:  # en_mdy, en_dmy
            if months is None:
                months = _EN_MONTH_HINT.search(text) is not None
            if not months:
                continue
        for m in pat.finditer(text):
            found.append((m.start(), prio, name, m))
    found.sort(key=lambda f: (f[0], f[1]))
    return found


_RELATIVE = frozenset({"ja_rel", "en_rel", "en_wd"})

# A date that opens a period or announces a start ("2016年10月1日より…", "10月1日〜", "from Oct. 1",
# "starting Monday") is when something begins, not when the item was published.
_PERIOD_AFTER = re.compile(
    r"\s*(?:より|から|まで|以降|以後|[〜～~]|開始|スタート|開幕|施行|(?:until|till|through|thru|onwards?)\b)", _I)
_PERIOD_BEFORE = re.compile(
    r"(?:\b(?:from|until|till|through|thru|starting|beginning|effective|begins|starts|opens|opening|since|by)"
    r"\s+(?:on\s+|the\s+)?|(?:より|から|[〜～~])\s*)$", _I)

# What opens an item's own dateline when it sits inside free text: "Posted on August 23, 2019 at 6:19 PM",
# "posted by Ann on …", "投稿日：2019年8月23日". Capitalized English words (a line's first word) and the
# Japanese labels introduce a dateline; a lower-case "posted" does only before an absolute date, and
# "published" in prose ("the report, published on March 3") is another document's date.
_DATELINE = re.compile(
    r"(?P<strong>\b(?:Posted|POSTED|Published|PUBLISHED|Written|WRITTEN|Submitted|SUBMITTED|Dated|DATED)\b"
    r"|(?:投稿|公開|掲載|配信|作成|更新|登録|発行)日時?|投稿時間)"
    r"|(?P<weak>\bposted\b)")
_DATELINE_REACH = 60  # the date starts at most this many characters after the marker...
_DATELINE_RELATIVE_REACH = 12  # ...and a relative word ("Posted 3 hours ago", "投稿日：昨日") right after it
_DATELINE_BREAK = re.compile(r"[。\n]")


def _scan(text: str, now: datetime, page_tz: tzinfo, language: str | None, *, relative: bool, periods: bool,
          window: tuple[int, int, int] | None = None) -> FoundDate | None:
    """The first acceptable date of `text` (window: start, end, end for relative words)."""
    limit = now + FUTURE_TOLERANCE
    covered = 0
    found = _matches(text)
    for i, (start, _prio, name, m) in enumerate(found):
        if start < covered:  # inside a phrase already read (the "12月28日" of "2025年12月28日")
            continue
        if window is not None:
            if start < window[0]:
                continue
            if start > window[1]:
                break
        if name in _RELATIVE:
            if not (relative or (window is not None and start <= window[2])):
                continue  # "Friday" in a post's body says nothing of the post's date
            if any(f[2] not in _RELATIVE and f[0] < m.end() for f in found[i + 1:i + 4]):
                continue  # "on Friday, December 23, 2016": the weekday of the date that follows
        dt, certainty, end = _candidate(name, m, text, now, page_tz, language)
        covered = max(covered, m.end())
        if dt is None or dt > limit:
            continue
        if periods and (_PERIOD_AFTER.match(text, end) or _PERIOD_BEFORE.search(text, max(0, start - 16), start)):
            continue
        return FoundDate(dt, certainty, start, end)
    return None


def find_date_detail(text: str, now: datetime, tz: str, *, language: str | None = None, relative: bool = True,
                     periods: bool = False) -> FoundDate | None:
    """The item's date in `text` with how certain it is (see the module docstring for the rules).

    relative=False: `text` is free text (a summary, a title), not the item's date line: relative words
    (today, 3 hours ago, 昨日, Friday, this morning) give no date there. periods=True: a date that opens a
    period or announces a start (より, から, 〜, from, until, starting) is skipped (for titles).
    """
    if not text or _QUICK.search(text) is None:
        return None
    return _scan(text, now, zone(tz), language, relative=relative, periods=periods)


def find_dateline(text: str, now: datetime, tz: str, *, language: str | None = None) -> FoundDate | None:
    """The date of a dateline written inside free text ("… Posted on August 23, 2019 at 6:19 PM"), or None.

    Such a date is the item's own and beats any other date of the text. A relative word counts only right
    after a strong marker ("Posted 3 hours ago"), never after a lower-case "posted" in prose.
    """
    if not text or _QUICK.search(text) is None or _DATELINE.search(text) is None:
        return None
    page_tz = zone(tz)
    for marker in _DATELINE.finditer(text):
        stop = _DATELINE_BREAK.search(text, marker.end(), marker.end() + _DATELINE_REACH)
        reach = (stop.start() if stop else marker.end() + _DATELINE_REACH)
        rel_reach = marker.end() + _DATELINE_RELATIVE_REACH if marker["strong"] else -1
        found = _scan(text, now, page_tz, language, relative=False, periods=False,
                      window=(marker.end(), reach, rel_reach))
        if found is not None:
            return found
    return None


def find_date(text: str, now: datetime, tz: str, *, language: str | None = None,
              relative: bool = True) -> datetime | None:
    """The item's date written in its text: the first date named that is not in the future, or None."""
    found = find_date_detail(text, now, tz, language=language, relative=relative)
    return found.when if found else None


_LEAD_SEP = re.compile(r"\s*(?:[、,，:：|｜/／]|[-–—]\s|\s)\s*")
_LEAD_OPEN = re.compile(r"\s*[【\[［(（]?\s*(?:日本時間|現地時間|現地|米国時間|JST)?\s*")
_LEAD_CLOSE = re.compile(r"\s*[】\]］)）]")


def strip_leading_date(text: str) -> str:
    """`text` without a date phrase that opens it ("2025年12月25日、…", "Dec. 28, 2025 — …").

    Only a date followed by a separator is stripped: "1月16日発表の世論調査" keeps its date, which is part of
    the sentence.
    """
    opened = _LEAD_OPEN.match(text)
    pos = opened.end() if opened else 0
    for name, pat in _PATTERNS:
        if name in ("ja_rel", "en_rel", "en_wd"):
            continue
        m = pat.match(text, pos)
        if m is None:
            continue
        t = _TAIL.match(text, m.end())
        end = t.end() if t else m.end()
        close = _LEAD_CLOSE.match(text, end)
        if close:
            end = close.end()
        sep = _LEAD_SEP.match(text, end)
        if sep is None or sep.end() == end:
            if close is None:
                return text
        else:
            end = sep.end()
        rest = text[end:]
        return rest if rest.strip() else text
    return text


# --- markup values -------------------------------------------------------------------------------------

_ISO = re.compile(
    r"\s*(?P<y>\d{4})-?(?P<m>\d{2})-?(?P<d>\d{2})"
    r"(?:[T\s]+(?P<h>\d{2}):?(?P<mi>\d{2})(?::?(?P<s>\d{2})(?:[.,]\d+)?)?)?"
    r"\s*(?P<off>Z|[+-]\d{2}(?::?\d{2})?|UTC|GMT)?\s*$", _I)
_EPOCH = re.compile(r"\s*(\d{10}|\d{13})\s*$")
_EPOCH_MIN, _EPOCH_MAX = datetime(1995, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC)
_MARKUP_NOW = datetime(2200, 1, 1, tzinfo=UTC)  # markup values must carry a year: never resolve


def parse_markup_date(value: str, tz: str) -> datetime | None:
    """A date from markup (<time datetime>, JSON-LD datePublished, article:published_time, meta, microdata).

    ISO 8601 (also compact 20180619T055000+0900), RFC 2822, epoch seconds/milliseconds, and the written
    forms find_date reads, as long as they carry a year. No zone: `tz`.
    """
    if not value or len(value) > 200:
        return None
    page_tz = zone(tz)
    m = _ISO.match(value)
    if m:
        off = m["off"]
        tzi = page_tz if off is None else (UTC if off.upper() in ("Z", "UTC", "GMT") else _offset(off))
        try:
            return datetime(int(m["y"]), int(m["m"]), int(m["d"]), int(m["h"] or 0), int(m["mi"] or 0),
                            int(m["s"] or 0), tzinfo=tzi)
        except ValueError:
            return None
    e = _EPOCH.match(value)
    if e:
        n = int(e.group(1))
        dt = datetime.fromtimestamp(n / 1000 if len(e.group(1)) == 13 else n, tz=UTC)
        return dt if _EPOCH_MIN <= dt <= _EPOCH_MAX else None
    if "," in value or value[:3].isalpha():
        parsed: datetime | None
        try:
            parsed = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            parsed = None
        if parsed is not None:
            return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=page_tz)
    found = find_date_detail(value, _MARKUP_NOW, tz)
    if found is not None and found.certainty == FULL:
        return found.when
    return None


def local_date(when: datetime, tz: str) -> date:
    return when.astimezone(zone(tz)).date()
