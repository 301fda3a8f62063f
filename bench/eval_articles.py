"""Article pages read for their date (issue 22): the day found against the day the page states.

    python bench/eval_articles.py        # one line per page of ../shared/corpus/articles, then the total

Each page is decoded as a fetched page is (feedsvc.decode.decode_body: one of them is Shift_JIS), read by
the pipeline's article reader in `meta` mode, and its date compared, as a day in the page's zone, with
the date its MANIFEST.tsv gives. Japanese pages (and the Japan Times) are in Asia/Tokyo, the rest UTC.
Goal: the right day on >= 8 of 9 (tests/test_extract_article.py keeps the floor).
"""

from __future__ import annotations

import csv
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from feedsvc.decode import decode_body
from feedsvc.model import Page
from feedsvc.normalize.dates import local_date
from feedsvc.pipeline import read_article

CORPUS = ROOT.parent / "shared" / "corpus" / "articles"
NOW = datetime(2026, 1, 20, 3, 0, tzinfo=UTC)


@dataclass
class Row:
    name: str
    want: str  # the day the MANIFEST gives
    got: str | None  # the day read, in the page's zone
    found_by: str
    seconds: float

    @property
    def right(self) -> bool:
        return self.got == self.want


def page_zone(row: dict[str, str]) -> str:
    return "Asia/Tokyo" if row["language"] == "ja" or "japantimes" in row["url"] else "UTC"


def evaluate(corpus: Path = CORPUS) -> list[Row]:
    rows = []
    with (corpus / "MANIFEST.tsv").open(encoding="utf-8") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            text, codec = decode_body((corpus / row["filename"]).read_bytes(), content_type="text/html")
            url = row["url"].split()[0]
            tz = page_zone(row)
            t0 = time.perf_counter()
            article = read_article(Page(url=url, text=text, content_type="text/html", encoding=codec,
                                        fetched_at=NOW), "meta", tz, row["language"])
            seconds = time.perf_counter() - t0
            got = local_date(article.published, tz).isoformat() if article.published else None
            how = ("precise" if article.precise else "day") if article.published else "-"
            rows.append(Row(row["filename"], row["published_date"][:10], got, how, seconds))
    return rows


def main() -> int:
    if not (CORPUS / "MANIFEST.tsv").exists():
        print(f"no corpus at {CORPUS}")
        return 1
    rows = evaluate()
    for r in rows:
        print(f"{'ok  ' if r.right else 'MISS'} {r.name:40} want {r.want}  got {r.got or '-':10}  ({r.found_by}, "
              f"{r.seconds * 1000:.0f} ms)")
    right = sum(r.right for r in rows)
    print(f"right day on {right} of {len(rows)} article pages")
    return 0


if __name__ == "__main__":
    sys.exit(main())
