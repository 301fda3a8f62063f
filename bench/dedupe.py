"""How fast is the near-duplicate check, and how big is its index, as the store grows?

    python bench/dedupe.py                       # 10k, 100k, 1M stored stories (1M takes several minutes)
    python bench/dedupe.py --sizes 10000,100000  # quick run

Fills a real store (a temporary SQLite file, or --db PATH) with synthetic Japanese news-like summaries, then
times dedupe.find_stored() — the check plan() runs for each new story: sketch, exact-key look-ups, LSH bucket
seeks, verdicts on the candidates — for fresh stories and for lightly edited copies of stored ones.
The synthetic text is built to be hard on the index: a Zipf vocabulary shared by all stories, and a third of
the stories opening with one of a few hundred date phrases and naming one of 200 people.
Baseline (same run, smallest size): the same check done by scanning every stored text, as without an index.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from feedsvc import dedupe
from feedsvc.model import Entry
from feedsvc.store import Store

NOW = datetime(2026, 1, 20, 3, 0, tzinfo=timezone.utc)
KANJI = [chr(c) for c in range(0x4E00, 0x4E00 + 2500)]
KATA = [chr(c) for c in range(0x30A1, 0x30F6)]
PARTICLES = ["は", "が", "を", "に", "で", "と", "の", "も", "へ", "から", "について", "によると"]


class Writer:
    def __init__(self, seed: int) -> None:
        rnd = random.Random(seed)
        self.rnd = rnd
        words = []
        for i in range(30000):
            alphabet = KATA if i % 4 == 0 else KANJI
            words.append("".join(rnd.choice(alphabet) for _ in range(rnd.randint(2, 5))))
        self.words = words
        total, cum = 0.0, []
        for i in range(len(words)):  # Zipf: some words are everywhere
            total += 1 / (i + 1) ** 1.05
            cum.append(total)
        self.cum = cum
        self.people = ["".join(rnd.choice(KATA) for _ in range(rnd.randint(3, 6))) + "大統領" for _ in range(200)]
        self.openings = [f"2025年{m}月{d}日、" for m in range(1, 13) for d in range(1, 29)]

    def summary(self) -> str:
        rnd = self.rnd
        out = []
        if rnd.random() < 0.33:
            out.append(rnd.choice(self.openings) + rnd.choice(self.people) + "は")
        target = rnd.randint(80, 150)
        while sum(map(len, out)) < target:
            ws = rnd.choices(self.words, cum_weights=self.cum, k=rnd.randint(3, 6))
            out.append("".join(w + rnd.choice(PARTICLES) for w in ws) + rnd.choice(["した。", "、", "と述べた。"]))
        return "".join(out)

    def edit(self, text: str) -> str:
        """A light edit: a clause inserted, or a sentence appended, or digits made full-width + a word cut."""
        rnd = self.rnd
        kind = rnd.randrange(3)
        if kind == 0:
            cut = rnd.randrange(10, len(text) - 10)
            return text[:cut] + "".join(rnd.choices(self.words, k=2)) + "の" + text[cut:]
        if kind == 1:
            return text + "".join(rnd.choices(self.words, k=5)) + "とした。"
        cut = rnd.randrange(10, len(text) - 10)
        return (text[:cut] + text[cut + 3:]).translate(str.maketrans("0123456789", "０１２３４５６７８９"))


def fill(store: Store, writer: Writer, start: int, stop: int, kept: list[str]) -> None:
    batch = 5000
    for lo in range(start, stop, batch):
        plan = dedupe.Plan()
        for n in range(lo, min(stop, lo + batch)):
            text = writer.summary()
            folded = dedupe.fold(text)
            key = f"https://news.example/{n}"
            eid = dedupe.mint_id(key)
            first = NOW - timedelta(days=1, seconds=n)
            plan.new.append(Entry(eid, text[:20], True, key, text, None, None, None, None,
                                  "https://news.example/topic", 0, first, first, first, ("t",)))
            plan.texts[eid] = (folded, dedupe.buckets(folded))
            plan.keys[eid] = {key, dedupe.text_key(folded)}
            if n % 997 == 0 and len(kept) < 400:
                kept.append(text)
        store.save(plan, "t", NOW - timedelta(days=1))
        print(f"  filled {min(stop, lo + batch):>9,}", end="\r", file=sys.stderr)
    print(file=sys.stderr)


def check(store: Store, text: str) -> tuple[float, bool, int]:
    t0 = time.perf_counter()
    folded = dedupe.fold(text)
    found = dedupe.find_stored({"text:" + dedupe.text_key(folded)[7:], dedupe.text_key(folded)}, folded, store)
    elapsed = time.perf_counter() - t0
    return elapsed, found is not None, len(store.near_candidates([dedupe.buckets(folded)])[0])


def scan_check(store: Store, text: str) -> float:
    """No index: compare with every stored text (what the index avoids)."""
    t0 = time.perf_counter()
    folded = dedupe.fold(text)
    for (stored,) in store._db.execute("SELECT folded FROM entries"):  # noqa: SLF001 - the bench's baseline
        dedupe.same_story(folded, stored)
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="10000,100000,1000000", help="comma-separated store sizes")
    ap.add_argument("--probes", type=int, default=300, help="checks timed per size and kind")
    ap.add_argument("--db", type=Path, help="keep the store here instead of a temporary file")
    args = ap.parse_args(argv)
    sizes = sorted(int(s) for s in args.sizes.split(","))
    writer = Writer(5)
    with tempfile.TemporaryDirectory() as tmp:
        path = args.db or Path(tmp) / "bench.db"
        kept: list[str] = []
        print(f"sketch {dedupe.SKETCH_VERSION}; verdict {dedupe.PARAMS}")
        print(f"{'stored':>9} {'fresh median':>13} {'p95':>8} {'edited median':>14} {'p95':>8} "
              f"{'found':>7} {'cands':>6} {'lsh B/item':>10} {'keys B/item':>11} {'file B/item':>11} {'fill s':>7}")
        with Store.open(path) as store:
            have = 0
            baseline = None
            for size in sizes:
                t0 = time.perf_counter()
                fill(store, writer, have, size, kept)
                fill_s = time.perf_counter() - t0
                have = size
                probe_writer = Writer(1000 + size)
                fresh = [check(store, probe_writer.summary()) for _ in range(args.probes)]
                edited = [check(store, probe_writer.edit(probe_writer.rnd.choice(kept)))
                          for _ in range(args.probes)]
                sizes_b = store.index_bytes()
                lsh = sizes_b.get("lsh", 0)
                keys = sizes_b.get("keys", 0) + sizes_b.get("keys_n", 0)
                file_b = path.stat().st_size + (path.with_name(path.name + "-wal").stat().st_size
                                                if path.with_name(path.name + "-wal").exists() else 0)
                ft = sorted(x[0] for x in fresh)
                et = sorted(x[0] for x in edited)
                print(f"{size:>9,} {statistics.median(ft) * 1e3:>10.3f} ms {ft[int(len(ft) * .95)] * 1e3:>5.2f} ms "
                      f"{statistics.median(et) * 1e3:>11.3f} ms {et[int(len(et) * .95)] * 1e3:>5.2f} ms "
                      f"{sum(x[1] for x in edited) / len(edited):>7.1%} "
                      f"{statistics.mean(x[2] for x in fresh):>6.2f} {lsh / size:>10.0f} {keys / size:>11.0f} "
                      f"{file_b / size:>11.0f} {fill_s:>7.1f}")
                print(f"{'':>9} fresh stories wrongly merged: {sum(x[1] for x in fresh)} of {len(fresh)}")
                if baseline is None:
                    baseline = statistics.median(scan_check(store, probe_writer.summary()) for _ in range(5))
                    print(f"{'':>9} baseline (scan all {size:,} texts, no index): {baseline * 1e3:.1f} ms per check, "
                          f"{baseline / statistics.median(ft):.0f}x the indexed check")
    return 0


if __name__ == "__main__":
    sys.exit(main())
