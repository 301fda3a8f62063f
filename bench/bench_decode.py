"""Charset detection for unlabelled pages: our strict-decode cascade vs charset-normalizer alone.

    python bench/bench_decode.py            # needs ../shared/corpus beside the project

Samples: the shared corpus's legacy pages with their charset labels stripped, plus snippets of
Japanese text (cut from the corpus's UTF-8 Japanese pages, tags removed) encoded in CP932, EUC-JP and
ISO-2022-JP at several lengths: short snippets are where detection is hard. A guess is right when it
decodes the bytes to the reference text. Prints accuracy and time per sample for each method, and the
ratio of their times.
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

from charset_normalizer import from_bytes

from feedsvc.decode import decode_body

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus"
LEGACY = {"edge/ja-2ch-top-sjis.html": "cp932", "edge/ja-geocities-videogame-top-sjis.html": "cp932",
          "edge/ja-rakuten-top-eucjp.html": "euc_jp", "articles/ja-webry-blog-entry-sjis.html": "cp932"}
LENGTHS = (20, 60, 200, 1000)
CODECS = ("cp932", "euc_jp", "iso2022_jp")


def samples() -> list[tuple[str, bytes, str]]:
    out: list[tuple[str, bytes, str]] = []
    for name, codec in LEGACY.items():
        body = (SHARED / name).read_bytes()
        unlabelled = re.sub(rb"charset\s*=\s*[\"']?[-\w]+", b"", body)
        out.append((f"page {name}", unlabelled, unlabelled.decode(codec)))
    text = ""
    for p in sorted((SHARED / "pages").glob("ja-*.html")) + sorted((SHARED / "articles").glob("ja-*.html")):
        try:
            t = p.read_bytes().decode("utf-8-sig")
        except UnicodeDecodeError:
            continue
        t = re.sub(r"(?s)<(script|style)\b.*?</\1>|<[^>]+>|&\w+;|\s+", " ", t)
        text += " ".join(re.findall(r"[\u3000-\u30ff\u4e00-\u9fff\uff01-\uff5e]{4,}", t)) + " "
    for n in LENGTHS:
        for i in range(0, min(len(text), 40 * n), n):
            chunk = text[i:i + n]
            for codec in CODECS:
                try:
                    out.append((f"snippet {n} {codec}", chunk.encode(codec), chunk))
                except UnicodeEncodeError:
                    pass
    return out


def ours(body: bytes) -> str | None:
    try:
        return decode_body(body)[0]
    except Exception:
        return None


def normalizer(body: bytes) -> str | None:
    best = from_bytes(body).best()
    return str(best) if best is not None else None


def main() -> int:
    if not SHARED.is_dir():
        print(f"needs {SHARED}", file=sys.stderr)
        return 2
    data = samples()
    groups = sorted({name.rsplit(" ", 1)[0] if name.startswith("snippet") else "pages" for name, _, _ in data})
    results: dict[str, dict[str, list[int]]] = {}
    times = {}
    for label, fn in (("cascade (decode_body)", ours), ("charset-normalizer", normalizer)):
        t0 = time.perf_counter()
        per: dict[str, list[int]] = {g: [0, 0] for g in groups}
        for name, body, ref in data:
            g = name.rsplit(" ", 1)[0] if name.startswith("snippet") else "pages"
            got = fn(body)
            per[g][0] += got is not None and got.lstrip("\ufeff") == ref
            per[g][1] += 1
        times[label] = time.perf_counter() - t0
        results[label] = per
    print(f"{len(data)} samples")
    print(f"{'group':24} " + "  ".join(f"{k:>22}" for k in results))
    for g in groups:
        print(f"{g:24} " + "  ".join(f"{results[k][g][0]:>10}/{results[k][g][1]:<4} right" for k in results))
    for k, t in times.items():
        print(f"{k:24} {t * 1000 / len(data):8.2f} ms per sample")
    a, b = times.values()
    print(f"charset-normalizer takes {b / a:.1f}x the time of the cascade")
    return 0


if __name__ == "__main__":
    sys.exit(main())
