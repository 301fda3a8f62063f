"""Quality and speed of automatic extraction (no selectors).

    python bench/eval_extract.py            fixtures + ../shared/corpus (pages and edge), with timings
    python bench/eval_extract.py --no-time  figures only

Fixtures (tests/data/pages/NAME.{html,txt,json} + NAME.expected.json) are scored item by item:
precision = found items that are expected / found, recall = expected found / expected, an item
matching when its absolute link (fragment dropped) is the expected one, or, for items with no
link, its folded title. Real pages (../shared/corpus/pages/MANIFEST.tsv) carry a hand count and
three example titles with hrefs: recall there is examples found with the right absolute link and
title, and precision is estimated as min(found, count) / found. Edge pages must give 0 items.
The timing column compares one extract_items call with one BeautifulSoup(text, "lxml") parse.
"""

from __future__ import annotations

import csv
import json
import re
import statistics
import sys
import time
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urldefrag

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "data" / "pages"
CORPUS = ROOT.parent / "shared" / "corpus"
sys.path.insert(0, str(ROOT))

from feedsvc import uri
from feedsvc.config import FieldSelector, Selectors
from feedsvc.decode import decode_body
from feedsvc.extract import explain, extract_items
from feedsvc.model import Page, RawItem

FETCHED = datetime(2026, 1, 20, 3, 0, tzinfo=UTC)
CONTENT_TYPES = {".html": "text/html", ".txt": "text/plain", ".json": "application/ld+json"}


def fold(text: str | None) -> str:
    t = unicodedata.normalize("NFKC", text or "").casefold()
    return re.sub(r"[\W_]+", "", t)


def absolute(link: str | None, page_url: str) -> str | None:
    return urldefrag(uri.join(page_url, link))[0] if link else None


@dataclass
class Score:
    name: str
    expected: int
    found: int
    matched: int  # found items that match an expected one (precision numerator)
    recalled: int  # expected items found (recall numerator)
    excluded_hits: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    field_misses: list[str] = field(default_factory=list)  # expected summary/image/date_text not given
    count_target: float | None = None  # real pages: the hand count
    tolerance: float = 0.10

    @property
    def precision(self) -> float:
        return self.matched / self.found if self.found else (1.0 if self.expected == 0 else 0.0)

    @property
    def recall(self) -> float:
        return self.recalled / self.expected if self.expected else 1.0

    @property
    def count_error(self) -> float:
        target = self.count_target if self.count_target is not None else self.expected
        if not target:
            return float(self.found)
        return abs(self.found - target) / target


# ----------------------------------------------------------------------------- fixtures


@dataclass
class Fixture:
    name: str
    page: Page
    expected: list[dict]
    must_exclude: list[str]
    selectors: Selectors | None


def load_fixtures(folder: Path = FIXTURES) -> list[Fixture]:
    out = []
    for exp_path in sorted(folder.glob("*.expected.json")):
        name = exp_path.name.removesuffix(".expected.json")
        spec = json.loads(exp_path.read_text(encoding="utf-8"))
        page_path = next(p for p in folder.glob(name + ".*") if not p.name.endswith(".expected.json"))
        page = Page(url=spec["url"], text=page_path.read_text(encoding="utf-8"),
                    content_type=CONTENT_TYPES[page_path.suffix], encoding="utf-8", fetched_at=FETCHED)
        sel = None
        if spec.get("selectors"):
            s = spec["selectors"]
            sel = Selectors(item=s["item"], **{k: FieldSelector.parse(v) for k, v in s.items() if k != "item"})
        out.append(Fixture(name, page, spec["items"], spec.get("must_exclude", []), sel))
    return out


def score_items(name: str, items: list[RawItem], page_url: str, expected: list[dict],
                must_exclude: list[str] = ()) -> Score:
    def key(title: str | None, link: str | None, summary: str | None) -> str:
        return absolute(link, page_url) or ("title:" + fold(title) if title else "summary:" + fold(summary))

    want = {key(e.get("title"), e.get("link"), e.get("summary")): e for e in expected}
    got = [key(i.title, i.link, i.summary) for i in items]
    matched = sum(1 for k in got if k in want)
    recalled = len(set(got) & set(want))
    missing = [want[k].get("title") or k for k in want if k not in set(got)]
    excl = {fold(t) for t in must_exclude}
    hits = [i.title or "" for i in items if fold(i.title) in excl]
    # fields a fixture names (summary, image as an absolute URL, date_text) must come out as written
    misses = []
    for item, k in zip(items, got):
        exp = want.get(k)
        for name_ in ("summary", "image", "date_text"):
            if exp is None or name_ not in exp:
                continue
            value = getattr(item, name_)
            if name_ == "image":
                value = absolute(value, page_url)
            if value != exp[name_]:
                misses.append(f"{exp.get('title')}: {name_} {value!r}")
    return Score(name, len(want), len(items), matched, recalled, hits, missing, misses)


# ----------------------------------------------------------------------------- real pages


def page_url_of(row: dict) -> str:
    m = re.search(r"\(([^)]*)\)", row["page_kind"])
    inner = m.group(1) if m else ""
    for token in re.split(r"[\s,]+", inner):
        if token.startswith(("http://", "https://")):
            return token
        if re.fullmatch(r"[\w.-]+\.[a-z]{2,}", token):
            return "http://" + (token if token.count(".") > 1 else "www." + token) + "/"
    return "http://example.invalid/"


def _base_href(text: str, page_url: str) -> str:
    m = re.search(r"<base\s[^>]*href\s*=\s*[\"']?([^\"'\s>]+)", text, re.IGNORECASE)
    return uri.join(page_url, m.group(1)) if m else page_url


def load_corpus_pages(folder: Path = CORPUS / "pages") -> list[tuple[dict, Page]]:
    rows = list(csv.DictReader((folder / "MANIFEST.tsv").open(encoding="utf-8"), delimiter="\t"))
    out = []
    for row in rows:
        # decoded as feedsvc decodes a fetched page: BOM, then the declared charset, then detection
        text, codec = decode_body((folder / row["filename"]).read_bytes(), content_type="text/html")
        out.append((row, Page(url=page_url_of(row), text=text, content_type="text/html", encoding=codec,
                              fetched_at=FETCHED)))
    return out


def score_corpus_page(row: dict, page: Page, items: list[RawItem]) -> Score:
    base = _base_href(page.text, page.url)
    links = {absolute(i.link, page.url): fold(i.title) for i in items}
    recalled, missing = 0, []
    for n in (1, 2, 3):
        # as a browser resolves it (urllib's urljoin would turn "/*-http://host/" into "/*-http:/host/")
        link = urldefrag(uri.join(base, row[f"ex{n}_href"].replace("&amp;", "&")))[0]
        title = fold(row[f"ex{n}_title"])
        if link in links and (title in links[link] or links[link] in title):
            recalled += 1
        else:
            missing.append(f"{row[f'ex{n}_title']} <{link}>")
    count_text = row["item_count"]
    approx = count_text.strip().startswith("~")
    count = float(re.search(r"\d+", count_text).group())
    est_matched = min(len(items), int(count))
    return Score(row["filename"], 3, len(items), est_matched, recalled, [], missing, count_target=count,
                 tolerance=0.30 if approx else 0.10)


def load_edge_pages(folder: Path = CORPUS / "edge") -> list[tuple[dict, Page]]:
    urls = {"ja-rakuten-top-eucjp.html": "http://www.rakuten.co.jp/", "ja-2ch-top-sjis.html": "http://www.2ch.net/",
            "ja-geocities-videogame-top-sjis.html": "http://www.geocities.jp/videogame/",
            "ko-kcna-utf16le-mislabelled-sjis.html": "http://www.kcna.co.jp/"}
    codecs = {"ja-rakuten-top-eucjp.html": "euc-jp", "ja-geocities-videogame-top-sjis.html": "cp932",
              "ja-2ch-top-sjis.html": "cp932", "ko-kcna-utf16le-mislabelled-sjis.html": "utf-16"}
    rows = list(csv.DictReader((folder / "MANIFEST.tsv").open(encoding="utf-8"), delimiter="\t"))
    out = []
    for row in rows:
        enc = codecs.get(row["filename"], "utf-8")
        text = (folder / row["filename"]).read_bytes().decode(enc, errors="replace")
        out.append((row, Page(url=urls.get(row["filename"], "http://edge.invalid/"), text=text, content_type="text/html", encoding=enc,
                              fetched_at=FETCHED)))
    return out


# ----------------------------------------------------------------------------- report


def fixture_scores(with_selectors: bool = False) -> list[Score]:
    scores = []
    for fx in load_fixtures():
        if with_selectors and fx.selectors is None:
            continue
        items = extract_items(fx.page, fx.selectors if with_selectors else None)
        scores.append(score_items(fx.name, items, fx.page.url, fx.expected, fx.must_exclude))
    return scores


def corpus_scores() -> list[Score]:
    return [score_corpus_page(row, page, extract_items(page)) for row, page in load_corpus_pages()]


def edge_counts() -> dict[str, int]:
    return {row["filename"]: len(extract_items(page)) for row, page in load_edge_pages()}


def totals(scores: list[Score]) -> tuple[float, float]:
    found = sum(s.found for s in scores)
    expected = sum(s.expected for s in scores)
    p = sum(s.matched for s in scores) / found if found else 1.0
    r = sum(s.recalled for s in scores) / expected if expected else 1.0
    return p, r


def _best_ms(fn, repeat: int = 7) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best * 1000


def main(argv: list[str]) -> int:
    timing = "--no-time" not in argv
    verbose = "-v" in argv
    print("== fixtures, automatic detection")
    fx = fixture_scores()
    for s in fx:
        flag = "" if s.precision >= 0.95 and s.recall >= 0.95 and not s.excluded_hits and not s.field_misses else "  <-"
        print(f"  {s.name:34} found {s.found:3} expected {s.expected:3}  P {s.precision:5.2f}  R {s.recall:5.2f}"
              f"{'  EXCLUDED ' + repr(s.excluded_hits) if s.excluded_hits else ''}"
              f"{'  FIELDS ' + repr(s.field_misses[:3]) if s.field_misses else ''}{flag}")
        if verbose and s.missing:
            print("      missing:", s.missing[:5])
    p, r = totals(fx)
    print(f"  overall: precision {p:.3f} recall {r:.3f} over {len(fx)} pages")
    print("== fixtures, hand-written selectors")
    fs = fixture_scores(with_selectors=True)
    for s in fs:
        if s.precision < 1 or s.recall < 1:
            print(f"  {s.name:34} P {s.precision:5.2f}  R {s.recall:5.2f}  missing {s.missing[:3]}")
    p2, r2 = totals(fs)
    print(f"  overall: precision {p2:.3f} recall {r2:.3f} over {len(fs)} pages")

    if CORPUS.is_dir():
        print("== real pages (../shared/corpus/pages), automatic detection")
        pages = load_corpus_pages()
        cs = []
        for row, page in pages:
            items = extract_items(page)
            s = score_corpus_page(row, page, items)
            cs.append(s)
            ok = s.recall == 1 and s.count_error <= s.tolerance
            print(f"  {s.name:40} found {s.found:3} count {row['item_count'][:3]:>3}  err {s.count_error:5.0%}"
                  f"  examples {s.recalled}/3  P~{s.precision:4.2f}{'' if ok else '  <-'}")
            if verbose:
                print("      ", explain(page))
                for m in s.missing:
                    print("      missing:", m)
        p3, r3 = totals(cs)
        mean_err = statistics.mean(s.count_error for s in cs)
        print(f"  overall: precision~{p3:.3f} example recall {r3:.3f} mean count error {mean_err:.1%}")
        print("== edge pages (expect 0 items)")
        for row, page in load_edge_pages():
            n = len(extract_items(page))
            print(f"  {row['filename']:44} {n:3} items{'' if n == 0 else '  <-'}")
            if verbose:
                print("      ", explain(page))
        if timing:
            from bs4 import BeautifulSoup

            print("== speed: extract_items (automatic) vs BeautifulSoup(text, 'lxml') parse, best of 7")
            ratios = []
            for row, page in pages:
                ms_ex = _best_ms(lambda page=page: extract_items(page))
                ms_bs = _best_ms(lambda page=page: BeautifulSoup(page.text, "lxml"))
                ratios.append(ms_ex / ms_bs)
                print(f"  {row['filename']:40} {len(page.text.encode()) / 1024:6.0f} KB  extract {ms_ex:6.1f} ms"
                      f"  bs4 parse {ms_bs:6.1f} ms  ratio {ms_ex / ms_bs:4.2f}")
            print(f"  median ratio {statistics.median(ratios):.2f}, worst {max(ratios):.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
