"""Dedupe measured on items, as a reader sees them: items lost, duplicates shown.

    python bench/eval_items.py        # per real page and overall, then the written cases by kind
    python bench/eval_items.py -v     # also every wrong case

Two sources of truth:

1. Real pages (../shared/corpus/pages and the seed sample, when ../shared is there): every pair of
   items with different links on one page is a labelled negative (they are different items, always).
   Each page goes through extract, normalize and dedupe.plan() into a real SQLite store, twice (a
   second refresh of the same page must change nothing). Reported per page: items, distinct links,
   entries, items lost (links whose entry another link took), and pairs wrongly merged.
2. Cases written here (Japanese and English), each a story seen in one refresh and again in a later
   one: positives that must keep their entry (light edits of link-less text, the same link with new
   text, syndication across two sources, a story whose URL moved, figures updated in place) and
   negatives that must not (another report in the same template, cards sharing a teaser, a routine
   title, a link still listed). The light-edit texts are the "same" pairs of
   tests/data/dedupe_pairs.tsv, the other-story texts its "different" pairs.

Goals (issue 17): 0 items lost on the real pages, >= 95 % of the positives merged, no negative merged.
tests/test_dedupe_items.py keeps the floors.
"""

from __future__ import annotations

import csv
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from feedsvc import dedupe
from feedsvc.model import Item, Page
from feedsvc.normalize import fold
from feedsvc.normalize.evidence import without_boilerplate
from feedsvc.pipeline import read_page
from feedsvc.store import Store

PAIRS = ROOT / "tests" / "data" / "dedupe_pairs.tsv"
SHARED = ROOT.parent / "shared"
NOW = datetime(2026, 1, 20, 3, 0, tzinfo=UTC)
LATER = NOW + timedelta(hours=1)

# ------------------------------------------------------------------------------------- real pages


@dataclass
class PageScore:
    name: str
    items: int
    links: int
    entries: int
    lost: int  # distinct links that share an entry with another link
    negatives: int  # pairs of items with different links
    wrong_merges: int  # of those, pairs given one entry
    unstable: int  # links given another entry (or a new one) by a second refresh of the same page
    merges: list[str] = field(default_factory=list)


def _entry_of_links(plan: dedupe.Plan) -> dict[str, str]:
    """link -> entry id, from the keys the plan records for each entry."""
    return {k: entry_id for entry_id, keys in plan.keys.items() for k in keys if "://" in k}


def score_page(name: str, page: Page, root: Path) -> PageScore:
    _, items = read_page(page, None, "Asia/Tokyo", None)
    links = sorted({it.link for it in items if it.link})
    with Store.open(root / f"{name}.sqlite") as store:
        first = dedupe.plan(items, store, "t", NOW)
        store.save(first, "t", NOW)
        second = dedupe.plan(items, store, "t", LATER)
    by_link = _entry_of_links(first)
    again = _entry_of_links(second)
    per_entry = Counter(by_link[link] for link in links)
    lost = sum(n - 1 for n in per_entry.values())
    wrong = sum(n * (n - 1) // 2 for n in per_entry.values())
    unstable = sum(1 for link in links if again.get(link) != by_link[link]) + len(second.new)
    merges = [f"{it.link or it.title[:40]} -> {eid} ({why})" for it, eid, why in first.merged
              if it.link and why != "same-url"]
    return PageScore(name, len(items), len(links), len(first.new), lost, len(links) * (len(links) - 1) // 2,
                     wrong, unstable, merges)


def real_pages() -> list[tuple[str, Page]]:
    """The shared corpus pages, decoded as feedsvc decodes them, and the seed sample (a text page)."""
    import eval_extract

    out = [(row["filename"], page) for row, page in eval_extract.load_corpus_pages(SHARED / "corpus" / "pages")]
    sample = SHARED / "samples" / "topic-page-peace-talks.txt"
    out.append((sample.name, Page(url="https://example.org/peace-talks", text=sample.read_text(encoding="utf-8"),
                                  content_type="text/plain", encoding="utf-8", fetched_at=NOW)))
    return out


# ----------------------------------------------------------------------------------- written cases


@dataclass
class Story:
    summary: str
    link: str | None = None
    title: str | None = None  # None: derived from the summary
    source: str = "https://one.example/topic"


@dataclass
class Case:
    kind: str
    lang: str
    same: bool  # must the later story keep the earlier one's entry?
    before: list[Story]  # the first refresh (the story under test first)
    after: list[Story]  # the later refresh (the story under test first)


def _item(s: Story, position: int) -> Item:
    folded = fold(s.summary) or fold(s.title or "")
    return Item(title=s.title or s.summary[:30], title_is_derived=s.title is None, link=s.link, summary=s.summary,
                summary_html=None, published=None, published_from=None, image=None, source_url=s.source,
                position=position, key=s.link or "text:" + dedupe.text_key(folded)[7:23], folded=folded)


def _page(stories: list[Story]) -> list[Item]:
    """A refresh's items, page by page, with the boilerplate rule applied per page as read_page does."""
    out: list[Item] = []
    for source in dict.fromkeys(s.source for s in stories):
        out += without_boilerplate([_item(s, i) for i, s in enumerate(stories) if s.source == source])
    return out


def _entry_of_keys(plan: dedupe.Plan) -> dict[str, str]:
    """item key -> entry id: every item's key is among the keys its entry records."""
    return {k: entry_id for entry_id, keys in plan.keys.items() for k in keys}


def run_case(case: Case, path: Path) -> bool:
    """Whether the later story under test got the earlier one's entry."""
    with Store.open(path) as store:
        first = dedupe.plan(_page(case.before), store, "t", NOW)
        store.save(first, "t", NOW)
        second = dedupe.plan(_page(case.after), store, "t", LATER)
    target = _entry_of_keys(first)[_item(case.before[0], 0).key]
    return _entry_of_keys(second)[_item(case.after[0], 0).key] == target


def _pairs() -> list[dict[str, str]]:
    with PAIRS.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))


# Figures updated in place (positives) and the same template filled in again (negatives), written here.
DEVELOPING = [
    ("ja", "13日午後3時現在、東北電力管内で約25万戸が停電している。復旧の見通しは立っていないという。",
     "13日午後3時現在、東北電力管内で約31万戸が停電している。復旧の見通しは立っていないという。"),
    ("ja", "大雨の影響で、熊本県内では13日朝までに住民約1200人が避難所に身を寄せている。",
     "大雨の影響で、熊本県内では13日朝までに住民約3400人が避難所に身を寄せている。"),
    ("ja", "トルコ南部で12日に起きた地震で、これまでに死者は約120人に上ると当局が発表した。",
     "トルコ南部で12日に起きた地震で、これまでに死者は約480人に上ると当局が発表した。"),
    ("ja", "山火事は14日も燃え続け、焼失面積は約800ヘクタールに広がった。消防は約300人態勢で消火にあたっている。",
     "山火事は14日も燃え続け、焼失面積は約1500ヘクタールに広がった。消防は約300人態勢で消火にあたっている。"),
    ("en", "At least 40 people have died after flooding in the north of the country, officials said on Monday.",
     "At least 73 people have died after flooding in the north of the country, officials said on Monday."),
    ("en", "Around 250,000 homes were without power on Tuesday evening after the storm hit the east coast.",
     "Around 310,000 homes were without power on Tuesday evening after the storm hit the east coast."),
    ("en", "The wildfire has burned 12,000 acres and is 5 percent contained, fire officials said this morning.",
     "The wildfire has burned 19,500 acres and is 5 percent contained, fire officials said this morning."),
]
TEMPLATED = [  # another day's report in the same words: a different story
    ("ja", "13日午後3時現在、東北電力管内で約25万戸が停電している。復旧の見通しは立っていないという。",
     "14日午後3時現在、東北電力管内で約8万戸が停電している。復旧の見通しは立っていないという。"),
    ("ja", "東京都は12日、新たに320人が新型コロナウイルスに感染したと発表した。前週の同じ曜日より41人多い。",
     "東京都は13日、新たに415人が新型コロナウイルスに感染したと発表した。前週の同じ曜日より63人多い。"),
    ("en", "On March 3, 1,204 flights were cancelled across Europe as air traffic controllers went on strike.",
     "On March 4, 987 flights were cancelled across Europe as air traffic controllers went on strike."),
]
HEADLINES = [  # (lang, title a, title b): different stories' headlines, for cards sharing a teaser
    ("en", "Natural ingredients to avoid: why is SLS bad?", "Hygiene hypothesis: don't be afraid of dirt"),
    ("en", "mechanize 0.7.1 has been released!", "Nokogiri 1.0.0 is out"),
    ("ja", "公園で子供がセミをとって水の中に入れて遊んでた", "プールにいたお父さんと小学生の女の子２人"),
    ("ja", "ソフトウェアトークンの機種変更を行う際のご注意", "RMT・詐欺行為への取り組みに関するご報告"),
]
TEASERS = [("en", "Read more…"), ("ja", "続きを読む"), ("en", "A column on parenting, health and the planet, "
                                                        "written every week by our team of green parents.")]
ROUTINE = [("ja", "定期メンテナンスのお知らせ"), ("en", "Monthly report on the state of the network")]


def cases() -> list[Case]:
    out: list[Case] = []
    one, two = "https://one.example/topic", "https://two.example/world"
    pairs = _pairs()
    for n, p in enumerate(x for x in pairs if x["label"] == "same"):
        a, b, lang = p["text_a"], p["text_b"], p["lang"]
        out.append(Case("light-edit, no link", lang, True, [Story(a)], [Story(b)]))
        out.append(Case("same link, new text", lang, True, [Story(a, f"https://one.example/a/{n}", "Headline")],
                        [Story(b + " (update)", f"https://one.example/a/{n}", "Headline, updated")]))
        title = a[:24]
        out.append(Case("moved URL", lang, True, [Story(a, f"https://one.example/a/{n}", title)],
                        [Story(b, f"https://one.example/story/{n}", title)]))
        if min(len(fold(a)), len(fold(b))) >= dedupe.SYNDICATION_LEN:
            out.append(Case("syndication", lang, True, [Story(a, f"https://one.example/a/{n}", a[:24])],
                            [Story(b, f"https://two.example/n/{n}", b[:24], two),
                             Story(a, f"https://one.example/a/{n}", a[:24], one)]))
    for lang, a, b in DEVELOPING:
        out.append(Case("figures updated, no link", lang, True, [Story(a)], [Story(b)]))
    for lang, a, b in TEMPLATED:
        out.append(Case("template, another day", lang, False, [Story(a)], [Story(b)]))
    for p in (x for x in pairs if x["label"] == "different"):
        out.append(Case("another story, no link", p["lang"], False, [Story(p["text_a"])], [Story(p["text_b"])]))
    for lang, teaser in TEASERS:
        for n, (_, ta, tb) in enumerate(h for h in HEADLINES):
            cards = [Story(teaser, f"https://one.example/c/{n}-{k}", t) for k, t in enumerate((ta, tb))]
            # the next refresh: the first card has left the page and a new one took its place
            out.append(Case("new card, shared teaser", lang, False, [cards[0], cards[1]],
                            [Story(teaser, f"https://one.example/c/{n}-new", tb + " (2)"), cards[1]]))
            out.append(Case("two cards, one teaser", lang, False, [cards[0]], [cards[1], cards[0]]))
    for lang, title in ROUTINE:
        for month in range(1, 4):
            old = Story("", f"https://one.example/news/{month}", title)
            new = Story("", f"https://one.example/news/{month + 1}", title)
            out.append(Case("routine title", lang, False, [old], [new, old]))
    return out


def score_cases(root: Path, wrong: list[Case] | None = None) -> dict[tuple[str, bool], list[bool]]:
    """(kind, same) -> per case, whether dedupe decided as labelled; the wrong cases go to `wrong`."""
    out: dict[tuple[str, bool], list[bool]] = {}
    for n, case in enumerate(cases()):
        got = run_case(case, root / f"case{n}.sqlite")
        out.setdefault((case.kind, case.same), []).append(got == case.same)
        if got != case.same and wrong is not None:
            wrong.append(case)
    return out


def main(argv: list[str]) -> int:
    verbose = "-v" in argv
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        if (SHARED / "corpus" / "pages").is_dir():
            print("== real pages: items with different links are different items")
            total = Counter()
            for name, page in real_pages():
                s = score_page(name, page, root)
                total.update(items=s.items, links=s.links, entries=s.entries, lost=s.lost, negatives=s.negatives,
                             wrong=s.wrong_merges, unstable=s.unstable)
                flag = "" if not (s.lost or s.unstable) else "  <-"
                print(f"  {name:42} items {s.items:3}  links {s.links:3}  entries {s.entries:3}  lost {s.lost:2}"
                      f"  wrong pairs {s.wrong_merges:3}/{s.negatives:5}  unstable {s.unstable}{flag}")
                if verbose:
                    for m in s.merges:
                        print("      text merge:", m)
            print(f"  overall: {total['items']} items, {total['links']} links, {total['entries']} entries, "
                  f"{total['lost']} items lost, {total['wrong']} of {total['negatives']} negative pairs merged, "
                  f"{total['unstable']} unstable")
        else:
            print(f"(no {SHARED / 'corpus'}: real pages skipped)")
        print("== written cases (a story, then the same or another story in a later refresh)")
        wrong: list[Case] = []
        scores = score_cases(root, wrong)
        pos = [ok for (_, same), oks in scores.items() if same for ok in oks]
        neg = [ok for (_, same), oks in scores.items() if not same for ok in oks]
        for (kind, same), oks in sorted(scores.items(), key=lambda kv: (not kv[0][1], kv[0][0])):
            print(f"  {'same' if same else 'different':9} {kind:28} {sum(oks):4}/{len(oks):<4} right")
        for case in wrong if verbose else ():
            print(f"  wrong: {case.kind} ({case.lang}): {case.before[0].summary[:50]!r} | {case.after[0].summary[:50]!r}")
        print(f"  positives merged: {sum(pos)}/{len(pos)} = {sum(pos) / len(pos):.1%}; "
              f"negatives kept apart: {sum(neg)}/{len(neg)} = {sum(neg) / len(neg):.1%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
