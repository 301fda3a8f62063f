"""Dates found in text and read from markup: tables, Japanese first.

`now` is the fetch time of the sample topic page: 2026-01-20T03:00Z (12:00 in Tokyo, a Tuesday).
Expected values: "YYYY-MM-DD" = midnight of that day in the case's zone; a full ISO string = that instant
with that UTC offset; None = no date. Strings marked with a page name are copied as written on that page
(../shared/samples/ and ../shared/corpus/).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from feedsvc.normalize.dates import (
    DAY,
    FULL,
    MONTH_DAY,
    RELATIVE,
    find_date,
    find_date_detail,
    parse_markup_date,
)

NOW = datetime(2026, 1, 20, 3, 0, tzinfo=UTC)
TOKYO = "Asia/Tokyo"

P = pytest.param
FIND_CASES = [
    # --- the sample topic page (../shared/samples/topic-page-peace-talks.txt), as written ---
    P("国際社会の注目を集める中、現地13日、トランプ氏は", "2026-01-13", id="sample-l2-genchi-day"),
    P("1月16日発表のキーウ国際社会学研究所(KIIS)の世論調査では", "2026-01-16", id="sample-l6-month-day-happyo"),
    P("ロシア国防省は、2025年12月28〜29日夜にノヴゴロド州で", "2025-12-28", id="sample-l9-range-night"),
    P("ロシアは2025年12月28〜29日にノブゴロド州の…WSJは31日、米中央情報局", "2025-12-28",
      id="sample-l10-first-date-named"),
    P("2025年12月25日、ロシア外務省のマリア・ザハロワ報道官は", "2025-12-25", id="sample-l12-leading-date"),
    P("ロシアの侵攻が続くウクライナ戦争で、12月6日、米大統領特使ケロッグは", "2025-12-06",
      id="sample-l14-month-day-last-year"),
    P("大統領府長官イェルマークが11月28日、国家反汚職局の家宅捜索を受け", "2025-11-28", id="sample-l17"),
    P("非合法組織PKKが2025年10月26日、トルコ国内の全戦闘員撤退を表明", "2025-10-26", id="sample-l18"),
    P("J・D・ヴァンス米副大統領は10月21日、イスラエル訪問で", "2025-10-21", id="sample-l19"),
    P("ホワイトハウスの車寄せで20日夜、トランプ大統領は", "2026-01-20", id="sample-l20-day-alone-today"),
    P("ホワイトハウスでの握手から二日、ゼレンスキー大統領は19日放送の", "2026-01-19",
      id="sample-l21-kanji-two-days-is-not-a-date"),
    P("発言は米国時間の番組出演直後で、日本時間2025年9月29日に伝えられた。", "2025-09-29",
      id="sample-l23-nihon-jikan"),
    P("モスクワで行われた米露協議は約5時間に及ぶ協議は妥協なく終了", None, id="sample-l16-duration-hours"),
    P("40年超の流血を経た対立に現実的な和平", None, id="sample-l18-years-duration"),
    P("本ページでは「和平交渉」をテーマとした記事を一覧で掲載しています。", None, id="sample-l3-no-date"),
    # --- real pages in ../shared/corpus/ ---
    P("2016年03月18日  23時5分", "2016-03-18T23:05+09:00", id="corpus-kijonan-ja-time-jifun"),
    P("作成日時 ： 2008/02/05 00:14", "2008-02-05T00:14+09:00", id="corpus-webry-slash-time"),
    P("[発売日] 2025年10月30日（木）　※Steam®版のみ、2025年10月31日（金）発売", "2025-10-30",
      id="corpus-dqx-weekday-first-of-two"),
    P("2018年6月18日 10:01 発信地：カノ/ナイジェリア", "2018-06-18T10:01+09:00", id="corpus-afpbb-ja-colon-time"),
    P("2018/6/19 5:50", "2018-06-19T05:50+09:00", id="corpus-nikkei-slash-single-digits"),
    P("（1/3ページ）", None, id="corpus-nikkei-page-fraction-is-not-a-date"),
    P("2010年1月12日（火）", "2010-01-12", id="corpus-yahoo-jp-weekday"),
    P("2023/11/02 22:27", "2023-11-02T22:27+09:00", id="corpus-yomiuri-slash"),
    P("2019.8.15", "2019-08-15", id="corpus-yomiuri-dotted"),
    P("uploads/2016/03/0308.jpg", None, id="corpus-ediary-url-path-is-not-a-date"),
    P("Feb 18, 2020", "2020-02-18", id="corpus-japantimes-mon-d-y"),
    P("Mar 09, 2016", "2016-03-09", id="corpus-icontact-zero-padded-day"),
    P("Friday, December 23, 2016", "2016-12-23", id="corpus-python-blog-weekday-long"),
    P("Tuesday, 8 July 2008 @ 11:34am", "2008-07-08T11:34+09:00", id="corpus-tenderlove-d-month-at-time"),
    P("January 11, 2010 12:49PM", "2010-01-11T12:49+09:00", id="corpus-newscomau-time-pm"),
    P("February 28, 2016", "2016-02-28", id="corpus-ecochildsplay-long-month"),
    # --- Japanese forms ---
    P("令和7年12月28日", "2025-12-28", id="ja-era-reiwa"),
    P("平成元年1月8日", "1989-01-08", id="ja-era-heisei-gannen"),
    P("昭和64年1月7日", "1989-01-07", id="ja-era-showa"),
    P("２０２５年１２月２８日", "2025-12-28", id="ja-fullwidth-digits"),
    P("１２月２８日", "2025-12-28", id="ja-fullwidth-month-day"),
    P("2025年12月28日〜29日", "2025-12-28", id="ja-range-both-days-marked"),
    P("2025年12月28日～2026年1月3日", "2025-12-28", id="ja-range-fullwidth-tilde"),
    P("28日〜29日に開かれた", "2025-12-28", id="ja-day-range-alone"),
    P("12月28日", "2025-12-28", id="ja-month-day-resolves-last-year"),
    P("1月20日", "2026-01-20", id="ja-month-day-today"),
    P("1月21日", "2025-01-21", id="ja-month-day-tomorrow-goes-back-a-year"),
    P("12月28日（日）", "2025-12-28", id="ja-month-day-weekday-matches"),
    P("12月28日(月)", "2020-12-28", id="ja-month-day-weekday-picks-year"),
    P("28日", "2025-12-28", id="ja-day-alone-last-month"),
    P("31日", "2025-12-31", id="ja-day-31"),
    P("30日", "2025-12-30", id="ja-day-30"),
    P("2025/12/28", "2025-12-28", id="ja-slash-ymd"),
    P("2025.12.28", "2025-12-28", id="ja-dotted-ymd"),
    P("12/28", "2025-12-28", id="ja-slash-md"),
    P("12/28(日) 19:00", "2025-12-28T19:00+09:00", id="ja-slash-md-weekday-time"),
    P("2025年12月28日 14時30分", "2025-12-28T14:30+09:00", id="ja-time-ji-fun"),
    P("2025年12月28日午後3時", "2025-12-28T15:00+09:00", id="ja-time-gogo"),
    P("2025年12月28日午前9時半", "2025-12-28T09:30+09:00", id="ja-time-gozen-han"),
    P("2025年12月28日 14:30", "2025-12-28T14:30+09:00", id="ja-time-colon"),
    P("28日未明", "2025-12-28", id="ja-part-of-day-mimei-sets-no-time"),
    P("28日朝", "2025-12-28", id="ja-part-of-day-asa"),
    P("日本時間2025年12月28日午前10時", "2025-12-28T10:00+09:00", id="ja-marker-nihon-jikan"),
    P("米国時間12月27日", "2025-12-27T00:00-05:00", id="ja-marker-beikoku-jikan"),
    P("12月28日 14:30（日本時間）", "2025-12-28T14:30+09:00", id="ja-marker-after-time"),
    P("昨年12月28日", "2025-12-28", id="ja-sakunen"),
    P("きょう、政府は", "2026-01-20", id="ja-rel-kyou"),
    P("昨日の会見で", "2026-01-19", id="ja-rel-kinou"),
    P("おととい発表", "2026-01-18", id="ja-rel-ototoi"),
    P("3時間前", "2026-01-20T09:00+09:00", id="ja-rel-hours-ago"),
    P("2日前", "2026-01-18", id="ja-rel-days-ago"),
    P("30日間の停戦", None, id="ja-duration-days-not-a-date"),
    P("3日目の協議", None, id="ja-nth-day-not-a-date"),
    P("2026年3月1日に開催、2025年12月1日発表", "2025-12-01", id="ja-future-date-skipped"),
    P("2025年2月30日", None, id="ja-impossible-date"),
    # --- English forms ---
    P("Dec. 28, 2025", "2025-12-28", id="en-abbrev-dot"),
    P("28 December 2025", "2025-12-28", id="en-day-month-year"),
    P("2025-12-28", "2025-12-28", id="en-iso-date"),
    P("December 28, Monday", "2020-12-28", id="en-month-day-weekday-picks-year"),
    P("Monday", "2026-01-19", id="en-weekday-alone"),
    P("3 hours ago", "2026-01-20T09:00+09:00", id="en-hours-ago"),
    P("an hour ago", "2026-01-20T11:00+09:00", id="en-an-hour-ago"),
    P("yesterday", "2026-01-19", id="en-yesterday"),
    P("Dec. 28, 2025, 3 p.m. ET", "2025-12-28T15:00-05:00", id="en-zone-et"),
    P("Dec 28, 2025 10:00 UTC+9", "2025-12-28T10:00+09:00", id="en-zone-utc-offset"),
    P("Dec 28 2025 10:00 GMT", "2025-12-28T10:00+00:00", id="en-zone-gmt"),
    P("July 4, 2025 8:00 PM EDT", "2025-07-04T20:00-04:00", id="en-zone-edt"),
    P("2025-12-28T14:30:00+09:00", "2025-12-28T14:30+09:00", id="en-iso-with-offset"),
    P("Sept. 3", "2025-09-03", id="en-sept-no-year"),
    P("you may 5 times", None, id="en-may-is-a-verb"),
    P("in March 2016", None, id="en-month-year-no-day"),
    P("24/7 support", None, id="en-24-7-not-a-date"),
]


def _expected(value: str, tz: str) -> datetime:
    if "T" in value:
        return datetime.fromisoformat(value)
    y, m, d = map(int, value.split("-"))
    return datetime(y, m, d, tzinfo=ZoneInfo(tz))


@pytest.mark.parametrize(("text", "expected"), FIND_CASES)
def test_find_date(text: str, expected: str | None) -> None:
    got = find_date(text, NOW, TOKYO)
    if expected is None:
        assert got is None
        return
    want = _expected(expected, TOKYO)
    assert got is not None, f"no date found in {text!r}"
    assert got == want and got.utcoffset() == want.utcoffset(), (got.isoformat(), want.isoformat())


LANG_CASES = [
    P("13/02/2016", "el", "UTC", "2016-02-13", id="corpus-eordaialive-el-dd-mm-yyyy"),
    P("03/04/2016", "el", "UTC", "2016-04-03", id="el-ambiguous-is-day-month"),
    P("03/04/2016", "en-US", "UTC", "2016-03-04", id="en-us-ambiguous-is-month-day"),
    P("13/02/2016", "en-US", "UTC", "2016-02-13", id="en-us-impossible-month-swaps"),
    P("12/28", "en", "UTC", None, id="en-bare-slash-not-read"),
    P("12/28", "ja", "Asia/Tokyo", "2025-12-28", id="ja-bare-slash-read"),
    P("20日夜", "ja", "UTC", "2026-01-20", id="utc-page-day-alone"),
    P("Dec 28, 2025 10:00", "en", "America/New_York", "2025-12-28T10:00-05:00", id="page-zone-applies"),
]


@pytest.mark.parametrize(("text", "language", "tz", "expected"), LANG_CASES)
def test_find_date_language_and_zone(text: str, language: str, tz: str, expected: str | None) -> None:
    got = find_date(text, NOW, tz, language=language)
    assert got == (None if expected is None else _expected(expected, tz))


CERTAINTY_CASES = [
    P("2025年12月28日", FULL, id="ja-full"),
    P("12月28日", MONTH_DAY, id="ja-month-day"),
    P("28日", DAY, id="ja-day"),
    P("昨日", RELATIVE, id="ja-relative"),
    P("Dec 28", MONTH_DAY, id="en-month-day"),
    P("昨年12月28日", FULL, id="ja-sakunen-is-full"),
]


@pytest.mark.parametrize(("text", "certainty"), CERTAINTY_CASES)
def test_certainty(text: str, certainty: str) -> None:
    found = find_date_detail(text, NOW, TOKYO)
    assert found is not None and found.certainty == certainty


def test_dates_are_aware_and_never_far_in_the_future() -> None:
    for p in FIND_CASES:
        got = find_date(p.values[0], NOW, TOKYO)
        if got is not None:
            assert got.tzinfo is not None
            assert got <= NOW + timedelta(hours=1)


MARKUP_CASES = [
    P("2023-11-02T22:27:00+09:00", "2023-11-02T22:27+09:00", id="corpus-yomiuri-json-ld"),
    P("2023-11-02T22:27", "2023-11-02T22:27+09:00", id="corpus-yomiuri-time-no-zone"),
    P("2016-03-18T23:05:27+0900", "2016-03-18T23:05:27+09:00", id="corpus-kijonan-offset-no-colon"),
    P("20180619T055000+0900", "2018-06-19T05:50+09:00", id="corpus-nikkei-compact-iso"),
    P("2023-11-02T19:16:18+09:00", "2023-11-02T19:16:18+09:00", id="corpus-auone-article-published-time"),
    P("2018/06/18", "2018-06-18", id="corpus-afpbb-meta-slash"),
    P("1529283660000", "2018-06-18T01:01+00:00", id="corpus-afpbb-epoch-ms"),
    P("2016-02-28T08:46:17+00:00", "2016-02-28T08:46:17+00:00", id="corpus-ecochildsplay-time"),
    P("2025-12-28", "2025-12-28", id="date-only"),
    P("2025-12-28T05:00:00Z", "2025-12-28T05:00+00:00", id="zulu"),
    P("Tue, 18 Jun 2018 13:57:57 GMT", "2018-06-18T13:57:57+00:00", id="rfc2822"),
    P("2025年12月28日", "2025-12-28", id="ja-written"),
    P("12月28日", None, id="no-year-no-date"),
    P("2025-02-30", None, id="impossible"),
    P("garbage", None, id="garbage"),
    P("", None, id="empty"),
    P("9999999999999", None, id="epoch-out-of-range"),
]


@pytest.mark.parametrize(("value", "expected"), MARKUP_CASES)
def test_parse_markup_date(value: str, expected: str | None) -> None:
    got = parse_markup_date(value, TOKYO)
    if expected is None:
        assert got is None
    else:
        want = _expected(expected, TOKYO)
        assert got == want and got is not None and got.utcoffset() == want.utcoffset()
