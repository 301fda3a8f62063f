"""Article pages read for their date (issue 22): the day found against the day the page states.

    python bench/eval_articles.py        # one line per page of ../shared/corpus/articles, then the total,
                                         # then what `meta` and `full` cost per new story in a refresh

Each page is decoded as a fetched page is (feedsvc.decode.decode_body: one of them is Shift_JIS), read by
the pipeline's article reader in `meta` mode, and its date compared, as a day in the page's zone, with
the date its MANIFEST.tsv gives. Japanese pages (and the Japan Times) are in Asia/Tokyo, the rest UTC.
Goal: the right day on >= 8 of 9 (tests/test_extract_article.py keeps the floor).

Cost, in the same run: a listing of the 9 stories and the 9 article pages served over loopback HTTP, refreshed
(fresh state each time, host_delay 0) with article = "off", "meta" and "full"; the difference to "off",
per story, is what reading an article costs feedsvc. On a real site each article page also waits for the
host's gap (host_delay, 1 s by default) behind the one before it.
"""

from __future__ import annotations

import csv
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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


def serve(pages: dict[str, bytes]) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            body = pages.get(self.path)
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Type", "text/plain" if self.path == "/robots.txt" else "text/html")
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


def cost(corpus: Path = CORPUS, rounds: int = 3) -> dict[str, float]:
    """Seconds of one refresh of the listing (best of `rounds`) per article mode, fresh state each time."""
    from feedsvc import pipeline
    from feedsvc.config import load_config

    names = [r["filename"] for r in csv.DictReader((corpus / "MANIFEST.tsv").open(encoding="utf-8"), delimiter="\t")]
    pages = {f"/a/{n}": (corpus / n).read_bytes() for n in names}
    pages["/robots.txt"] = b"User-agent: *\nAllow: /\n"
    items = "".join(f'<li><a href="/a/{n}">Story {i}: {n}</a></li>' for i, n in enumerate(names))
    pages["/news"] = f'<html><body><ul class="news">{items}</ul></body></html>'.encode()
    httpd = serve(pages)
    url = f"http://127.0.0.1:{httpd.server_address[1]}/news"
    out: dict[str, float] = {}
    try:
        for mode in ("off", "meta", "full"):
            best = float("inf")
            for _ in range(rounds):
                with tempfile.TemporaryDirectory() as tmp:
                    path = Path(tmp) / "config.toml"
                    path.write_text(f'[feedsvc]\nhost_delay = "0s"\n[[topics]]\nid = "t"\ntitle = "T"\n'
                                    f'article = "{mode}"\n[[topics.sources]]\nurl = "{url}"\n'
                                    f'item = "ul.news li"\ntitle = "a"\nlink = "a@href"\n', encoding="utf-8")
                    config = load_config(path)
                    t0 = time.perf_counter()
                    pipeline.refresh(config, now=NOW)
                    best = min(best, time.perf_counter() - t0)
            out[mode] = best
    finally:
        httpd.shutdown()
        httpd.server_close()
    out["stories"] = len(names)
    return out


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
    c = cost()
    n = int(c["stories"])
    print(f"\none refresh of a listing of {n} new stories (loopback, host_delay 0, best of 3): "
          f"off {c['off'] * 1000:.0f} ms, meta {c['meta'] * 1000:.0f} ms, full {c['full'] * 1000:.0f} ms")
    print(f"per new story: meta +{(c['meta'] - c['off']) / n * 1000:.0f} ms, full +{(c['full'] - c['off']) / n * 1000:.0f} ms "
          "(plus the host's gap per article page on a real site; later refreshes read no article again)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
