"""How well does the dedupe text verdict tell the same story from a different one? (Text pairs only:
bench/eval_items.py measures what a reader sees, items lost and duplicates shown on real pages.)

    python bench/eval_dedupe.py              # scores, confusion counts, misses by kind, threshold sweep
    python bench/eval_dedupe.py --end-to-end # also run every pair through a real Store + plan() (LSH included)

Reads tests/data/dedupe_pairs.tsv (label same|different, lang, kind, text_a, text_b). The verdict scored is
feedsvc.dedupe.verdict — the function plan() calls — with the shipped PARAMS, then with each point of a sweep
so that the chosen thresholds can be seen against their neighbours.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import sys
import tempfile
from collections import Counter
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

from feedsvc import dedupe
from feedsvc.model import Item

PAIRS = Path(__file__).resolve().parent.parent / "tests" / "data" / "dedupe_pairs.tsv"


def load(path: Path = PAIRS) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))


def score(pairs: list[dict[str, str]], decide) -> dict[str, float]:  # type: ignore[no-untyped-def]
    tp = fp = fn = tn = 0
    for p in pairs:
        said = decide(p)
        same = p["label"] == "same"
        tp += said and same
        fp += said and not same
        fn += (not said) and same
        tn += (not said) and not same
    return {"tp": tp, "fp": fp, "fn": fn, "tn": tn,
            "precision": tp / (tp + fp) if tp + fp else 1.0, "recall": tp / (tp + fn) if tp + fn else 1.0}


def by_verdict(params: dedupe.Params):  # type: ignore[no-untyped-def]
    return lambda p: dedupe.same_story(dedupe.fold(p["text_a"]), dedupe.fold(p["text_b"]), params)


def _item(text: str, position: int) -> Item:
    folded = dedupe.fold(text)
    return Item(title=text[:30], title_is_derived=True, link=None, summary=text, summary_html=None,
                published=None, published_from=None, image=None, source_url="https://example.org/page",
                position=position, key="text:" + dedupe.text_key(folded), folded=folded)


def end_to_end(pairs: list[dict[str, str]], root: Path):  # type: ignore[no-untyped-def]
    """Store text_a, then plan text_b against the store: merged into a's entry = "same"."""
    from feedsvc.store import Store  # the bench may use both steps; the steps never import each other

    now = datetime(2026, 1, 20, 3, 0, tzinfo=timezone.utc)
    counter = itertools.count()

    def decide(p: dict[str, str]) -> bool:
        with Store.open(root / f"{next(counter)}.db") as store:
            first = dedupe.plan([_item(p["text_a"], 0)], store, "t", now)
            store.save(first, "t", now)
            second = dedupe.plan([_item(p["text_b"], 0)], store, "t", now)
            return not second.new
    return decide


def show(name: str, s: dict[str, float]) -> None:
    print(f"{name:<58} precision {s['precision']:.4f}  recall {s['recall']:.4f}  "
          f"tp {s['tp']} fp {s['fp']} fn {s['fn']} tn {s['tn']}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pairs", type=Path, default=PAIRS)
    ap.add_argument("--end-to-end", action="store_true", help="also score Store + plan() (LSH recall)")
    args = ap.parse_args(argv)
    pairs = load(args.pairs)
    print(f"{len(pairs)} pairs: {dict(Counter((p['label'], p['lang']) for p in pairs))}")
    p = dedupe.PARAMS
    s = score(pairs, by_verdict(p))
    show(f"verdict {p}", s)
    decide = by_verdict(p)
    for pr in pairs:
        if decide(pr) != (pr["label"] == "same"):
            sim = dedupe.similarity(dedupe.fold(pr["text_a"]), dedupe.fold(pr["text_b"]), p.shingle)
            print(f"  wrong: {pr['label']:<9} {pr['lang']} {pr['kind']:<22} J={sim.jaccard:.2f} "
                  f"C={sim.containment:.2f} len={sim.shorter} nums={sim.numbers_conflict}  "
                  f"{pr['text_a'][:40]} | {pr['text_b'][:40]}")
    for lang in ("ja", "en"):
        show(f"  lang={lang}", score([x for x in pairs if x["lang"] == lang], decide))

    print("\nsweep (one parameter at a time around the shipped values):")
    grid = {
        "shingle": [2, 3, 4, 5],
        "jaccard": [0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.7],
        "jaccard_short": [0.5, 0.6, 0.7, 0.8, 0.9],
        "short_len": [20, 30, 40, 60],
        "containment": [0.7, 0.8, 0.85, 0.9, 0.95, 1.01],
        "numbers_guard": [True, False],
    }
    for name, values in grid.items():
        for v in values:
            q = replace(p, **{name: v})
            mark = " <- shipped" if getattr(p, name) == v else ""
            show(f"  {name}={v}{mark}", score(pairs, by_verdict(q)))

    if args.end_to_end:
        with tempfile.TemporaryDirectory() as tmp:
            print()
            show("end to end (Store + LSH + plan)", score(pairs, end_to_end(pairs, Path(tmp))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
