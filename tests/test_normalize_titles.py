"""derive_title: a readable title from a summary. Table of (summary, language, expected title).

Sample cases are the openings of ../shared/samples/topic-page-peace-talks.txt lines (enough text to decide the
title); corpus cases are openings of entries on ../shared/corpus/pages/ (kijonan, ecochildsplay, darkveins,
eordaialive, binarymarket).
"""

from __future__ import annotations

import pytest

from feedsvc.normalize.titles import ELLIPSIS, TITLE_LIMIT_CJK, TITLE_LIMIT_LATIN, derive_title

P = pytest.param
CASES = [
    P('停戦への機運は高まる一方、ウクライナ情勢では当事者の足並みがそろわず混迷が続く。国際社会の注目を集める中、現地13日、トランプ氏は',
      None, '停戦への機運は高まる一方、ウクライナ情勢では当事者の足並みがそろわず混迷が続く', id='sample-l2-first-sentence'),
    P('ロシアの無人機戦が「量」で次の段階に入りつつあるとウクライナ総司令官シルスキーが警告。和平交渉の兆しは見えず、',
      None, 'ロシアの無人機戦が「量」で次の段階に入りつつあるとウクライナ総司令官シルスキーが警告', id='sample-l5-sentence-under-limit'),
    P('1月16日発表のキーウ国際社会学研究所(KIIS)の世論調査では、停戦や「安全の保証」を条件に領土譲歩を議論する中、過半がドンバスからの撤退案に反対と回答し、ウクライナ世論は撤退に厳しい姿勢を示した 背景には',
      None, '1月16日発表のキーウ国際社会学研究所の世論調査では、停戦や「安全の保証」を条件に領土譲歩を議論する中…', id='sample-l6-date-inside-sentence-kept'),
    P('イエメン大統領評議会(PLC)は、サウジ支援部隊が東部ハドラマウト県の要衝ムカラを再掌握したと発表。ムカラ周辺の制圧は',
      None, 'イエメン大統領評議会(PLC)は、サウジ支援部隊が東部ハドラマウト県の要衝ムカラを再掌握したと発表', id='sample-l7-parenthesis-kept-when-short'),
    P('トランプ米大統領は、ロシアが主張する「ウクライナ軍によるプーチン公邸への無人機攻撃」について、攻撃自体は起きていないと述べ、近くで何かがあった可能性はあるが問題の攻撃とは無関係だと説明した。',
      None, 'トランプ米大統領は、ロシアが主張する「ウクライナ軍によるプーチン公邸への無人機攻撃」について…', id='sample-l8-cut-after-closing-bracket-clause'),
    P('ロシア国防省は、2025年12月28〜29日夜にノヴゴロド州で起きたとする攻撃未遂で、ウクライナ軍がプーチン大統領公邸を狙った証拠とするドローン部品を在ロシア米大使館の付武官に手渡したと発表。',
      None, 'ロシア国防省は、2025年12月28〜29日夜にノヴゴロド州で起きたとする攻撃未遂で…', id='sample-l9-cut-at-comma'),
    P('ロシアは2025年12月28〜29日にノブゴロド州のプーチン大統領公邸がウクライナの長距離ドローンに狙われたと主張。WSJは31日、',
      None, 'ロシアは2025年12月28〜29日にノブゴロド州のプーチン大統領公邸がウクライナの長距離ドローンに狙われたと主張', id='sample-l10-fits'),
    P('ロシアが「ウクライナがプーチン大統領公邸を攻撃しようとした」と主張、トランプ米大統領も「怒りを感じる」と述べたことで和平の機運が損なわれかねない。',
      None, 'ロシアが「ウクライナがプーチン大統領公邸を攻撃しようとした」と主張、トランプ米大統領も「怒りを感じる」…', id='sample-l11-quotes'),
    P('2025年12月25日、ロシア外務省のマリア・ザハロワ報道官は、ウクライナ紛争の解決を巡る米国との協議が遅いが着実に前進していると述べ、西欧諸国の妨害を批判し、米側に対抗を促した。',
      None, 'ロシア外務省のマリア・ザハロワ報道官は、ウクライナ紛争の解決を巡る米国との協議が遅いが着実に前進していると述べ…', id='sample-l12-leading-date-stripped'),
    P('2025年12月25日、タイとカンボジアの軍事衝突が続く中、米国のマルコ・ルビオ国務長官がフン・マネット首相と電話協議。戦闘終結と',
      None, 'タイとカンボジアの軍事衝突が続く中、米国のマルコ・ルビオ国務長官がフン・マネット首相と電話協議', id='sample-l13-leading-date-stripped'),
    P('ロシアの侵攻が続くウクライナ戦争で、12月6日、米大統領特使ケロッグは和平合意が「非常に近い」と述べた。残る二つの',
      None, 'ロシアの侵攻が続くウクライナ戦争で、12月6日、米大統領特使ケロッグは和平合意が「非常に近い」と述べた', id='sample-l14-date-mid-sentence-kept'),
    P('米国が主導するロシアとの和平交渉に対し、ウクライナと欧州は歩調をどこまで合わせるか。独誌報道によれば',
      None, '米国が主導するロシアとの和平交渉に対し、ウクライナと欧州は歩調をどこまで合わせるか', id='sample-l15-question'),
    P('モスクワで行われたプーチン大統領と米特使ウィトコフ氏らの約5時間に及ぶ米露協議は妥協なく終了。ウシャコフ氏は',
      None, 'モスクワで行われたプーチン大統領と米特使ウィトコフ氏らの約5時間に及ぶ米露協議は妥協なく終了', id='sample-l16'),
    P('ゼレンスキー大統領の側近で和平交渉を担った大統領府長官イェルマークが11月28日、国家反汚職局の家宅捜索を受け汚職疑惑で辞任。',
      None, 'ゼレンスキー大統領の側近で和平交渉を担った大統領府長官イェルマークが11月28日…', id='sample-l17-cut-before-date-clause'),
    P('カンディル山脈拠点の非合法組織PKKが2025年10月26日、トルコ国内の全戦闘員撤退を表明。政府に',
      None, 'カンディル山脈拠点の非合法組織PKKが2025年10月26日、トルコ国内の全戦闘員撤退を表明', id='sample-l18'),
    P('J・D・ヴァンス米副大統領は10月21日、イスラエル訪問で「停戦の履行は順調」と表明。合意維持を',
      None, 'J・D・ヴァンス米副大統領は10月21日、イスラエル訪問で「停戦の履行は順調」と表明', id='sample-l19'),
    P('ホワイトハウスの車寄せで20日夜、トランプ大統領はウクライナがロシアとの戦争に『勝てるとは思わない』と述べ、『何が起きても不思議ではない』と含みを残し、米欧の支援や',
      None, 'ホワイトハウスの車寄せで20日夜、トランプ大統領はウクライナがロシアとの戦争に『勝てるとは思わない』と述べ…', id='sample-l20-double-brackets'),
    P('ホワイトハウスでの握手から二日、ゼレンスキー大統領は19日放送の米テレビのインタビューで、現在の前線で戦闘を停止しその停戦線を起点に和平交渉を始めるべきだと表明。',
      None, 'ホワイトハウスでの握手から二日、ゼレンスキー大統領は19日放送の米テレビのインタビューで…', id='sample-l21'),
    P('キーウ(ウクライナ)での記者会見でゼレンスキー大統領は、停戦が実現すればトランプ米大統領をノーベル平和賞に推薦する意向を表明。和平交渉が',
      None, 'キーウでの記者会見でゼレンスキー大統領は、停戦が実現すればトランプ米大統領をノーベル平和賞に推薦する意向を表明', id='sample-l22-gloss-dropped-to-fit'),
    P('バンス米副大統領が、ウクライナ要請の長射程巡航ミサイル「トマホーク」取得案を検討中と表明。米が欧州へ',
      None, 'バンス米副大統領が、ウクライナ要請の長射程巡航ミサイル「トマホーク」取得案を検討中と表明', id='sample-l23'),
    P('トランプ氏、ゼレンスキー氏に「和平好機逃すな」 交渉加速促す',
      None, 'トランプ氏、ゼレンスキー氏に「和平好機逃すな」 交渉加速促す', id='sample-l1-headline-as-summary'),
    P('711：名無しの心子知らず：2005/08/04(木) 00:52:48 ID:TSlV/J2o話豚切りｽﾏｿ。 いつも行く公園には６～７組の親子が',
      None, '711：名無しの心子知らず：2005/08/04(木) 00:52:48 ID:TSlV/J2o話豚切りｽﾏｿ', id='corpus-kijonan-2ch-header'),
    P('近所に４歳児（未就園児）で１日中外にいて、誰彼なく「あそぼー、あそぼー」という極度の構ってちゃんがいます。',
      None, '近所に４歳児（未就園児）で１日中外にいて、誰彼なく「あそぼー、あそぼー」という極度の構ってちゃんがいます', id='corpus-kijonan-fullwidth-kept'),
    P('先週の話。プールネタです いいだけ泳いだ後着替えて',
      None, '先週の話', id='corpus-kijonan-short-first-sentence'),
    P('近所のプールは化粧と日焼け止め禁止だそうで、入場の時に 「日焼け止めを塗っているか？化粧してるか？」と聞かれるそうだ。',
      None, '近所のプールは化粧と日焼け止め禁止だそうで、入場の時に 「日焼け止めを塗っているか？化粧してるか？」と聞かれるそうだ', id='corpus-kijonan-question-mark'),
    P('2025年12月28日（日）14時30分、首相官邸で会見が開かれた。',
      None, '首相官邸で会見が開かれた', id='ja-date-with-weekday-and-time'),
    P('12月28日、政府は新たな支援策を発表した。',
      None, '政府は新たな支援策を発表した', id='ja-month-day-comma'),
    P('現地13日、首脳会談が行われた。',
      None, '首脳会談が行われた', id='ja-genchi-day-comma'),
    P('日本時間2025年9月29日、ミサイル供与案が伝えられた。',
      None, 'ミサイル供与案が伝えられた', id='ja-nihonjikan-date'),
    P('【2025年12月28日】新サービスの提供を開始しました。',
      None, '新サービスの提供を開始しました', id='ja-bracketed-date'),
    P('2025年12月28日',
      None, '2025年12月28日', id='ja-date-only-kept'),
    P('あ' * 80,
      None, "あ" * 59 + "…", id='ja-no-punctuation-hard-cut'),
    P('新作ゲームがついに発売！予約は本日から。',
      None, '新作ゲームがついに発売！', id='ja-fullwidth-exclamation-kept'),
    P('日航株ストップ安 売買不成立',
      None, '日航株ストップ安 売買不成立', id='ja-space-separated-headline'),
    P('米&amp;露が協議&nbsp;再開',
      None, '米&露が協議 再開', id='ja-html-entities'),
    P('停戦\u200b合意が\ufeff成立。',
      None, '停戦合意が成立', id='ja-zero-width'),
    P('  停戦\u3000合意が\n成立した  ',
      None, '停戦 合意が 成立した', id='ja-whitespace-folded'),
    P('国際社会の注目を集める中でウクライナ情勢は当事者の足並みがそろわず混迷が続くなか国連安全保障理事会は緊急会合を開催し、各国代表が意見を述べた。',
      None, '国際社会の注目を集める中でウクライナ情勢は当事者の足並みがそろわず混迷が続くなか国連安全保障理事会は緊急会合を開催し…', id='ja-long-no-boundary-then-comma'),
    P('外交部发言人表示，中方愿同各方一道推动和平进程。会议将于下周举行。',
      'zh', '外交部发言人表示，中方愿同各方一道推动和平进程', id='zh-sentence'),
    P('정부는 28일 새로운 지원책을 발표했다. 이번 조치는',
      'ko', '정부는 28일 새로운 지원책을 발표했다', id='ko-sentence'),
    P('There are certain ingredients in personal care that have become buzz words of caution. Carrageenan, sodium lauryl sulfate (SLS), 1,4-Dioxane, fluoride, and nanoparticles are just a few examples.',
      None, 'There are certain ingredients in personal care that have become buzz words of caution', id='corpus-ecochildsplay-first-sentence'),
    P('When my first child began to crawl, I bought a steam floor cleaner that promised to kill germs and I would religiously steam clean the floors every couple of days.',
      None, 'When my first child began to crawl, I bought a steam floor cleaner that promised to kill germs and…', id='corpus-ecochildsplay-long-sentence-word-break'),
    P('Visit any candy or cereal aisle in a grocery store, and you will be accosted with a rainbow of colors. Designed to make',
      None, 'Visit any candy or cereal aisle in a grocery store, and you will be accosted with a rainbow of…', id='corpus-ecochildsplay-number-comma'),
    P("The transition from breast or bottle to sippy cup is a major one. It's a transition to independent feeding.",
      None, 'The transition from breast or bottle to sippy cup is a major one', id='corpus-ecochildsplay-short-sentences'),
    P('La label svedese Last Exit Entertainment ha annunciato la release di un’edizione limitata in 500 copie di Philosophy of a Knife (2008), film del regista russo Andrey Iskanov. Trattasi di',
      None, 'La label svedese Last Exit Entertainment ha annunciato la release di un’edizione limitata in 500…', id='corpus-darkveins-italian'),
    P('È attualmente in crowdfunding sulla piattaforma Kickstarter Abyzou: Taker of Children, il progetto indipendente horror scritto e diretto da Jordan Pacheco. Obiettivo è',
      None, 'È attualmente in crowdfunding sulla piattaforma Kickstarter Abyzou: Taker of Children, il progetto…', id='corpus-darkveins-accented-start'),
    P('Πολιτιστικός Σύλλογος Κομάνου-Ημερήσια Εκδρομή στον Άγιο Παϊσιο και Αγία Αναστασία Φαρμακολύτρια Περαία 18/03/2016',
      None, 'Πολιτιστικός Σύλλογος Κομάνου-Ημερήσια Εκδρομή στον Άγιο Παϊσιο και Αγία Αναστασία Φαρμακολύτρια…', id='corpus-eordaialive-greek-date-tail'),
    P('Стратегия «Денежный поток» подходит для начинающих трейдеров. Она основана на',
      None, 'Стратегия «Денежный поток» подходит для начинающих трейдеров', id='corpus-binarymarket-russian'),
    P('Dec. 28, 2025 — The ministry announced new talks with its neighbours.',
      None, 'The ministry announced new talks with its neighbours', id='en-leading-date-dash'),
    P('December 28, 2025: Officials met in Geneva.',
      None, 'Officials met in Geneva', id='en-leading-date-colon'),
    P('2025-12-28 Officials met in Geneva.',
      None, 'Officials met in Geneva', id='en-leading-iso-date'),
    P('The U.S. envoy said a deal was close. Talks resume Monday.',
      None, 'The U.S. envoy said a deal was close', id='en-abbreviation-us'),
    P('Mr. Smith resigned on Friday. His deputy takes over.',
      None, 'Mr. Smith resigned on Friday', id='en-abbreviation-mr'),
    P('Talks began on Dec. 28 in Geneva and ended without a deal. More talks are planned.',
      None, 'Talks began on Dec. 28 in Geneva and ended without a deal', id='en-month-abbreviation'),
    P('Will the ceasefire hold? Analysts are divided.',
      None, 'Will the ceasefire hold?', id='en-question'),
    P('Python 3.6.0 is now available! It brings many new features.',
      None, 'Python 3.6.0 is now available!', id='en-exclamation'),
    P('Python 3.6.0 is now available with many new features.',
      None, 'Python 3.6.0 is now available with many new features', id='en-decimal-not-sentence-end'),
    P('Back Home',
      None, 'Back Home', id='en-no-final-period'),
    P('x' * 150,
      None, "x" * 99 + "…", id='en-one-long-word'),
    P('He said "we are close." Negotiators disagreed.',
      None, 'He said "we are close."', id='en-quote-after-period'),
    P('J. D. Vance visited Israel. He praised the ceasefire.',
      None, 'J. D. Vance visited Israel', id='en-single-letter-initial'),
    P('Not everything went to plan… The team will try again.',
      None, 'Not everything went to plan…', id='en-ellipsis-sentence'),
    P(("word " * 20).strip() + " end.",
      None, 'word word word word word word word word word word word word word word word word word word word word…', id='en-long-sentence-exact-limit'),
    P('',
      None, '', id='empty'),
    P('   \u3000  ',
      None, '', id='only-spaces'),
    P('。。。',
      None, '。。。', id='only-punctuation'),
]


@pytest.mark.parametrize(("summary", "language", "expected"), CASES)
def test_derive_title(summary: str, language: str | None, expected: str) -> None:
    assert derive_title(summary, language) == expected


@pytest.mark.parametrize(("summary", "language", "expected"), CASES)
def test_title_rules_hold(summary: str, language: str | None, expected: str) -> None:
    title = derive_title(summary, language)
    assert len(title) <= max(TITLE_LIMIT_CJK, TITLE_LIMIT_LATIN)
    assert title == title.strip()
    if summary.strip():
        assert title, "a summary with text always gives a title"
    if title.endswith(ELLIPSIS) and not summary.rstrip().endswith(ELLIPSIS):
        assert len(title) > 3, "a cut title keeps some text"


def _sample_summaries(shared_dir) -> list[str]:
    lines = (shared_dir / "samples" / "topic-page-peace-talks.txt").read_text(encoding="utf-8").splitlines()
    # line 2 is the featured summary (its title is line 1); line 3 describes the page; line 4 repeats line 2
    return [lines[1]] + lines[4:23]


def test_sample_summaries_get_distinct_readable_titles(shared_dir) -> None:
    summaries = _sample_summaries(shared_dir)
    assert len(summaries) == 20 and len(set(summaries)) == 20
    titles = [derive_title(s) for s in summaries]
    assert len(set(titles)) == 20, "two different items got the same title"
    for summary, title in zip(summaries, titles):
        assert title and len(title) <= TITLE_LIMIT_CJK
        assert title != summary, "a long summary is not its own title"
        assert not title[:1].isdigit() or "日発表" in title[:8], f"title starts with a bare date: {title}"
        assert title[:3] in summary, "the title is the summary's own words"


def test_same_leading_date_gives_different_titles(shared_dir) -> None:
    lines = (shared_dir / "samples" / "topic-page-peace-talks.txt").read_text(encoding="utf-8").splitlines()
    a, b = derive_title(lines[11]), derive_title(lines[12])  # lines 12 and 13 both open with 2025年12月25日、
    assert a != b
    assert not a.startswith("2025") and not b.startswith("2025")
