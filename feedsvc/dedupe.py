"""Deduplication: is this item a story we already know? Pure decisions; the store only answers look-ups.

Three layers, cheapest first:

1. Exact: the same key (canonical URL or text hash), the same link, or the same folded text. These are
   point look-ups in the store's `keys` table (every key a story was ever seen under).
2. Candidates: a MinHash sketch of the folded text's character 5-grams, cut into LSH bands; each band is a
   bucket id in the store's `lsh` table. A new item looks up its BANDS buckets (index seeks, never a scan)
   and gets back the few stored stories that share one.
3. Verdict: `same_story(a, b)` compares the two folded texts precisely (Jaccard and containment of
   character 3-grams, plus guards for short texts and changed figures). Only it decides a merge; the
   sketch only decides what to look at. bench/eval_dedupe.py measures it on tests/data/dedupe_pairs.tsv.

The sketch is one-permutation hashing (one 64-bit hash per shingle, binned, with "optimal densification"
for empty bins) rather than k independent permutations: the same Jaccard estimate at O(shingles) cost in
pure Python, so no numpy (datasketch's k-permutation MinHash needs numpy and its LSH keeps buckets in
memory or Redis, not SQLite).

Nothing here writes: `plan()` reads the store and returns a Plan; `Store.save(plan)` writes it. A dry run
is `plan()` without `save()`.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import random
import re
import unicodedata
import uuid
import zlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from itertools import chain
from typing import Protocol

from feedsvc.model import Entry, Item

log = logging.getLogger(__name__)

# --- sketch parameters (changing any of them changes SKETCH_VERSION: stored buckets must be rebuilt) ---
SKETCH_SHINGLE = 5  # characters per shingle for the index: long enough that unrelated texts rarely collide
BINS = 64  # one-permutation-hashing bins
ROWS = 3  # bins per band
BANDS = 21  # ROWS * BANDS <= BINS; P(candidate) = 1 - (1 - J**ROWS) ** BANDS: 0.94 at J=0.5, 0.994 at 0.6
SKETCH_VERSION = f"oph-crc32mix2-s{SKETCH_SHINGLE}-k{BINS}-r{ROWS}-b{BANDS}"
BUCKET_BITS = 47  # fits SQLite's 6-byte integer: smaller index rows than 8-byte ids


@dataclass(frozen=True, slots=True)
class Params:
    """The verdict's thresholds, chosen by the sweep in bench/eval_dedupe.py (see its output)."""

    shingle: int = 3  # characters per shingle for the precise comparison
    min_len: int = 8  # below this many folded characters only an exact match counts
    short_len: int = 40  # texts shorter than this (titles) need a higher Jaccard
    jaccard_short: float = 0.60
    jaccard: float = 0.55
    containment: float = 0.90  # shorter text (>= contain_len chars) almost wholly inside the longer one
    contain_len: int = 40
    numbers_guard: bool = True  # a figure changed on both sides (13日 vs 14日) means a different report


PARAMS = Params()

# ---------------------------------------------------------------------------------------------- text


def fold(text: str) -> str:
    """Comparison text: NFKC, casefold, keep only letters, marks and digits.

    normalize owns the production fold (Item.folded); this one serves tests and benches that build
    Items by hand, and is the same definition the data contract gives.
    """
    text = unicodedata.normalize("NFKC", text).casefold()
    return "".join(ch for ch in text if unicodedata.category(ch)[0] in "LMN")


# The text caches are kept across a refresh's plans and emptied by forget_texts() when it ends. Why
# across plans: a stored story with boilerplate text (a "hub") is an LSH candidate of new stories on
# page after page, and building its n-grams was the main process's largest cost in a cold refresh.
# Bounded: a set of n-grams is ~9 KB (a 70-character text), so 1,024 of them are ~9 MB.
TEXT_CACHE = 1024


@functools.lru_cache(maxsize=TEXT_CACHE)
def shingles(folded: str, n: int) -> frozenset[str]:
    """Character n-grams. Cached: one refresh compares each text with several others."""
    if len(folded) <= n:
        return frozenset({folded}) if folded else frozenset()
    # a set comprehension: a third faster than map(slice) (or a generator) on CPython 3.11
    return frozenset({folded[i : i + n] for i in range(len(folded) - n + 1)})


_NUMBER = re.compile(r"(\d+)(\D?)")


@functools.lru_cache(maxsize=TEXT_CACHE)
def _figures(folded: str) -> dict[str, set[str]]:
    """Numbers by the character after them (their unit: 日, 人, 円, p of percent, ...)."""
    out: dict[str, set[str]] = {}
    for number, unit in _NUMBER.findall(folded):
        out.setdefault(unit, set()).add(number)
    return out


def _figures_conflict(a: str, b: str) -> bool:
    """A figure with the same unit changed on both sides (13日 vs 14日): a different report, not an edit.
    A figure only added or only removed (a sentence appended) is no conflict."""
    fa, fb = _figures(a), _figures(b)
    return any((fa[u] - fb[u]) and (fb[u] - fa[u]) for u in fa.keys() & fb.keys())


_DIGITS = re.compile(r"\d+")
# Figures that say which day a report is of: 13日, 12月, 2025年, march3 (folded text has no spaces).
_DATE_FIGURES = re.compile(r"(\d+)(?=[日月年])|(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*?(\d+)")


def _updated_in_place(a: str, b: str, short: bool) -> bool:
    """b is a: the same words with some figures updated (停電 約25万戸 → 約31万戸), not the same template
    filled in again for another day or with other figures throughout. A short text (a headline) must
    also keep a figure: "Magnitude 7.5 quake" and "Magnitude 6.7 quake" are two quakes."""
    if _DIGITS.sub("#", a) != _DIGITS.sub("#", b) or _DATE_FIGURES.findall(a) != _DATE_FIGURES.findall(b):
        return False
    fa, fb = _figures(a), _figures(b)
    changed = sum(1 for u in fa.keys() & fb.keys() if fa[u] != fb[u])
    kept = sum(len(fa[u] & fb[u]) for u in fa.keys() & fb.keys())
    return changed <= max(1, kept) and (kept > 0 or not short)


@dataclass(frozen=True, slots=True)
class Similarity:
    jaccard: float
    containment: float  # |A ∩ B| / min(|A|, |B|)
    shorter: int  # length of the shorter folded text
    numbers_conflict: bool


def similarity(a: str, b: str, n: int = PARAMS.shingle) -> Similarity:
    sa, sb = shingles(a, n), shingles(b, n)
    return _similarity_from(a, b, len(sa & sb), len(sa), len(sb))


def _similarity_from(a: str, b: str, inter: int, la: int, lb: int) -> Similarity:
    """The Similarity of two texts whose shingle sets (sizes la, lb) share `inter` shingles."""
    union = la + lb - inter
    return Similarity(
        jaccard=inter / union if union else 1.0,
        containment=inter / min(la, lb) if la and lb else 0.0,
        shorter=min(len(a), len(b)),
        numbers_conflict=_figures_conflict(a, b),
    )


def same_story(a: str, b: str, params: Params = PARAMS) -> bool:
    """The one merge decision on two folded texts. plan() and the quality gate both call this."""
    return verdict(a, b, params) is not None


def verdict(a: str, b: str, params: Params = PARAMS) -> str | None:
    """"same-text", "near-duplicate", or None (different stories)."""
    return _judged(a, b, params)[0]


def _judged(a: str, b: str, params: Params = PARAMS, *, over_time: bool = False) -> tuple[str | None, float]:
    """verdict() and the Jaccard it rests on (1.0 for the same text; 0.0 when too short to compare).

    `over_time`: b is stored and a is seen now, so figures updated in place are an edit of the story
    (two such texts side by side on one page are two reports)."""
    if a == b:
        return ("same-text" if a else None), 1.0
    if min(len(a), len(b)) < params.min_len:
        return None, 0.0
    sa, sb = shingles(a, params.shingle), shingles(b, params.shingle)
    inter, la, lb = len(sa & sb), len(sa), len(sb)
    if not _could_pass(inter, la, lb, params):  # most LSH candidates: no need to compare their figures
        return None, inter / (la + lb - inter)
    s = _similarity_from(a, b, inter, la, lb)
    if over_time and s.numbers_conflict and _updated_in_place(a, b, s.shorter < params.short_len):
        s = replace(s, numbers_conflict=False)
    return _decide(s, params), s.jaccard


def _could_pass(inter: int, la: int, lb: int, params: Params = PARAMS) -> bool:
    """A cheap necessary condition for _decide() to merge: skips most pairs without computing figures."""
    union = la + lb - inter
    jaccard = inter / union if union else 1.0
    containment = inter / min(la, lb) if la and lb else 0.0
    return jaccard >= min(params.jaccard, params.jaccard_short) or containment >= params.containment


def _decide(s: Similarity, params: Params = PARAMS) -> str | None:
    if params.numbers_guard and s.numbers_conflict:
        return None
    if s.shorter < params.short_len:
        return "near-duplicate" if s.jaccard >= params.jaccard_short else None
    if s.jaccard >= params.jaccard:
        return "near-duplicate"
    if s.shorter >= params.contain_len and s.containment >= params.containment:
        return "near-duplicate"
    return None


# -------------------------------------------------------------------------------------------- sketch

_rng = random.Random(20260125)  # fixed: the probe order is part of SKETCH_VERSION
_PROBES = [[j for j in _rng.sample(range(BINS), BINS) if j != i] for i in range(BINS)]
_M64 = (1 << 64) - 1


def sketch(folded: str) -> list[int] | None:
    """One-permutation MinHash of the folded text's character 5-grams; None for empty text.

    Each shingle's 64-bit hash picks a bin (low bits) and a value (high bits); a bin keeps its least
    value. An empty bin (short texts) borrows from the first non-empty bin in its own fixed random probe
    order — "optimal densification" (Shrivastava 2017), which keeps P(bin equal) ≈ Jaccard.
    """
    if not folded:
        return None
    data = folded.encode("utf-32-le")  # 4 bytes a character: a shingle is a fixed-width byte slice
    width = 4 * SKETCH_SHINGLE
    mask = BINS - 1
    empty = 1 << 64
    bins = [empty] * BINS
    for i in range(0, max(len(data) - width, 0) + 1, 4):
        # crc32 of the shingle, spread to 64 bits by the splitmix64 finalizer: a fixed pseudo-random
        # permutation, at a third of the cost of a cryptographic hash per shingle
        h = zlib.crc32(data[i : i + width]) * 0x9E3779B97F4A7C15 & _M64
        h = (h ^ (h >> 31)) * 0xBF58476D1CE4E5B9 & _M64
        h ^= h >> 29
        b, v = h & mask, h >> 6
        bins[b] = min(bins[b], v)
    out = bins[:]
    for i, v in enumerate(bins):
        if v == empty:
            for j in _PROBES[i]:
                if bins[j] != empty:
                    out[i] = bins[j]
                    break
    return out


def buckets(folded: str) -> list[int]:
    return list(_buckets(folded))


def item_buckets(item: Item) -> tuple[int, ...]:
    """The item's bucket ids: computed where its page was parsed (a worker process), else here."""
    return item.buckets if item.buckets or not item.folded else _buckets(item.folded)


def _buckets(folded: str) -> tuple[int, ...]:
    """The LSH bucket ids of a folded text: one per band, band number mixed in, 47-bit."""
    sig = sketch(folded)
    if sig is None:
        return ()
    out = []
    for band in range(BANDS):
        h = band + 1
        for v in sig[band * ROWS : (band + 1) * ROWS]:
            h = _mix((h * 0x100000001B3) ^ v)  # order-sensitive fold of the band's values
        out.append(h & ((1 << BUCKET_BITS) - 1))
    return tuple(out)


def _mix(h: int) -> int:
    """splitmix64's finalizer: a fixed bijection on 64 bits that spreads every input bit."""
    h = (h ^ (h >> 30)) * 0xBF58476D1CE4E5B9 & _M64
    h = (h ^ (h >> 27)) * 0x94D049BB133111EB & _M64
    return h ^ (h >> 31)


def text_key(folded: str) -> str:
    """The key for "same folded text" in the store's keys table."""
    return "folded:" + hashlib.blake2b(folded.encode("utf-8"), digest_size=16).hexdigest()


_ID_NAMESPACE = uuid.NAMESPACE_URL.bytes


def mint_id(key: str) -> str:
    """An entry id: urn:uuid: + uuid5 of the first key the story was seen under. Minted once, stored.

    uuid.uuid5() spelled out (RFC 4122 §4.3: SHA-1 of namespace + name, version and variant bits set):
    a third of its cost, for a call per new story."""
    b = bytearray(hashlib.sha1(_ID_NAMESPACE + key.encode("utf-8")).digest()[:16])
    b[6] = (b[6] & 0x0F) | 0x50
    b[8] = (b[8] & 0x3F) | 0x80
    h = b.hex()
    return f"urn:uuid:{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


# ------------------------------------------------------------------------------------------------ plan


class StoreView(Protocol):
    """What plan() needs from the store: read-only look-ups (feedsvc.store.Store provides them).

    Each takes the whole batch at once: one query for a page's 50 stories, not three for each."""

    def find_by_keys(self, key_lists: Sequence[Sequence[str]]) -> list[tuple[Entry, str, str] | None]:
        """Per list: (entry, its folded text, the key that matched) for its first stored key, or None."""

    def near_candidates(self, bucket_lists: Sequence[Sequence[int]]) -> list[list[tuple[str, str]]]:
        """Per list: (entry id, its folded text) of the stored stories sharing the most buckets."""

    def entries_by_id(self, entry_ids: Iterable[str]) -> dict[str, Entry]: ...

    def existing_ids(self, entry_ids: Iterable[str]) -> set[str]: ...


@dataclass
class Plan:
    """What a refresh would change; Store.save() writes exactly this, a dry run prints it."""

    new: list[Entry] = field(default_factory=list)  # stories never seen before (ids minted now)
    updated: list[tuple[Entry, Entry]] = field(default_factory=list)  # (stored, merged): id kept, updated_at=now
    unchanged: list[Entry] = field(default_factory=list)  # seen again, nothing a reader sees changed
    merged: list[tuple[Item, str, str]] = field(default_factory=list)  # (item, entry id, why)
    # For save(): per entry id, the keys to record, and for new/updated entries the folded text + buckets.
    keys: dict[str, set[str]] = field(default_factory=dict)
    texts: dict[str, tuple[str, list[int]]] = field(default_factory=dict)
    # Known stories listed in this topic for the first time (also in updated/unchanged): the feed changes.
    joined_topic: list[str] = field(default_factory=list)

    @property
    def entries(self) -> list[Entry]:
        return self.new + [m for _, m in self.updated] + self.unchanged

    @property
    def feed_changed(self) -> bool:
        """Whether the topic's feed would change (lead: write feeds only then)."""
        return bool(self.new or self.updated or self.joined_topic)


@dataclass
class _Cluster:
    """Items of one batch that tell the same story; items[0] is the primary (first on the page)."""

    items: list[Item]
    whys: list[str]  # why items[i] joined (items[0]: "")
    folded: str
    links: dict[str, str] = field(default_factory=dict)  # source page -> the one link its items have there

    def __post_init__(self) -> None:
        for it in self.items:
            if it.link:
                self.links.setdefault(it.source_url, it.link)

    @property
    def buckets(self) -> list[int]:
        return list(item_buckets(self.items[0]))

    def add(self, item: Item, why: str) -> None:
        self.items.append(item)
        self.whys.append(why)
        if item.link:
            self.links.setdefault(item.source_url, item.link)


_TRUST = {"markup": 2, "text": 1, None: 0}

# Two items with different links on different sources join only on text at least this long (folded
# characters): syndication copies a story's text, while two sites' headlines can agree by chance.
SYNDICATION_LEN = 40


def _links_conflict(a: dict[str, str], b: dict[str, str]) -> bool:
    """Some page lists both with different links: two different items, whatever their text."""
    return any(a[s] != b[s] for s in a.keys() & b.keys())


def _may_join_on_text(cluster: _Cluster, item: Item, folded: str) -> bool:
    """Links decide first; text may join an item to a cluster only where links cannot decide."""
    if not item.link or not cluster.links:
        return True  # a link-less side: text is all there is (and a link over none is kept)
    if item.source_url in cluster.links:
        return cluster.links[item.source_url] == item.link
    return min(len(folded), len(cluster.folded)) >= SYNDICATION_LEN  # the same story on another site


def _item_keys(item: Item) -> set[str]:
    keys = {item.key}
    if item.link:
        keys.add(item.link)
    if item.folded:
        keys.add(text_key(item.folded))
    return keys


def _cluster(items: Sequence[Item], params: Params = PARAMS) -> list[_Cluster]:
    """Group the batch: the same link first, then the same or near-duplicate text where links allow it.

    Items with different links on one page never join (_may_join_on_text). Among the clusters an
    item's text may join, the closest wins (the highest Jaccard; the earliest on a tie). An inverted
    index from shingle to cluster counts the shingles each earlier cluster shares with the item, which
    gives Jaccard and containment exactly without comparing every pair: the decisions are verdict()'s,
    at a fraction of the cost.
    """
    clusters: list[_Cluster] = []
    by_link: dict[str, int] = {}  # link or URL key -> cluster
    by_text: dict[str, int] = {}  # text key or folded text -> the first cluster with it
    postings: dict[str, list[int]] = {}  # shingle -> clusters whose primary text has it
    sizes: list[int] = []
    smallest = 0  # the fewest grams of any cluster's text
    for item in items:
        url_keys = [k for k in (item.link, None if item.key.startswith("text:") else item.key) if k]
        text_keys = [item.key] + ([item.folded] if item.folded else [])
        target = next((by_link[k] for k in url_keys if k in by_link), None)
        why = "same-url" if target is not None else None
        folded = item.folded
        grams = shingles(folded, params.shingle)
        if target is None:
            c = next((by_text[k] for k in text_keys if k in by_text), None)
            if c is not None and _may_join_on_text(clusters[c], item, folded):
                target, why = c, "same-text"
        if target is None and len(folded) >= params.min_len:
            shared = Counter(chain.from_iterable(postings.get(g, ()) for g in grams))  # counted in C
            # Clusters sharing a handful of common grams (particles, punctuation) cannot pass: a
            # Jaccard of j needs j * len(grams) shared, a containment of c needs c * the smaller set.
            floor = min(len(grams) * min(params.jaccard, params.jaccard_short),
                        params.containment * smallest)
            best = 0.0
            for c in sorted(c for c, k in shared.items() if k >= floor):  # earliest first: it wins ties
                other = clusters[c].folded
                if len(other) < params.min_len or not _could_pass(shared[c], len(grams), sizes[c], params):
                    continue
                s = _similarity_from(folded, other, shared[c], len(grams), sizes[c])
                if s.jaccard > best and _decide(s, params) and _may_join_on_text(clusters[c], item, folded):
                    target, why, best = c, "near-duplicate", s.jaccard
        if target is None:
            target = len(clusters)
            clusters.append(_Cluster([item], [""], folded))
            sizes.append(len(grams))
            smallest = len(grams) if len(sizes) == 1 else min(smallest, len(grams))
            for g in grams:
                postings.setdefault(g, []).append(target)
        else:
            clusters[target].add(item, why or "near-duplicate")
        for k in url_keys:
            by_link.setdefault(k, target)
        for k in text_keys:
            by_text.setdefault(k, target)
    return clusters


# One page's clusters as item indexes: (indexes, primary first; why each joined). A parse worker
# computes them with the page's items, so that the process that saves need not.
Groups = list[tuple[tuple[int, ...], tuple[str, ...]]]


def group_page(items: Sequence[Item]) -> Groups:
    """_cluster() of one page's items, as indexes into `items`."""
    try:
        index = {id(it): i for i, it in enumerate(items)}
        return [(tuple(index[id(it)] for it in c.items), tuple(c.whys)) for c in _cluster(items)]
    finally:
        forget_texts()  # a worker parses page after page: keep nothing of this one


def forget_texts() -> None:
    """Empty the text caches: a refresh calls it when it ends (a daemon then holds none between
    refreshes), a parse worker after each page."""
    shingles.cache_clear()
    _figures.cache_clear()


def _clusters_of(items: Sequence[Item], groups: Groups) -> list[_Cluster]:
    return [_Cluster([items[i] for i in indexes], list(whys), items[indexes[0]].folded)
            for indexes, whys in groups]


def _best_of(items: Sequence[Item]) -> Item:
    """One item from a batch cluster: the primary's text, the best title, date, link and image."""
    primary = items[0]
    if len(items) == 1:  # most clusters: nothing to choose from
        return primary
    title, derived = primary.title, primary.title_is_derived
    for it in items:
        if derived and not it.title_is_derived:
            title, derived = it.title, False
            break
    published, source = primary.published, primary.published_from
    for it in items:
        if it.published is not None and _TRUST[it.published_from] > _TRUST[source]:
            published, source = it.published, it.published_from
    link = next((it.link for it in items if it.link), None)
    image = next((it.image for it in items if it.image), None)
    position = min(it.position for it in items)
    return replace(primary, title=title, title_is_derived=derived, published=published,
                   published_from=source, link=link, image=image, position=position)


def merge(stored: Entry, item: Item, now: datetime, *, moved: bool = False) -> Entry:
    """A stored story seen again: the best of each field; updated_at moves only if a reader sees a change.

    Text (summary, its HTML, and a title derived from it) is the newest; a real headline beats a derived
    one; a date is replaced only by a better-trusted one (markup > text > none); a link or image is kept
    once known.
    """
    if item.title_is_derived and not stored.title_is_derived:
        title, derived = stored.title, False
    else:
        title, derived = item.title, item.title_is_derived
    published, source = stored.published, stored.published_from
    if item.published is not None and _TRUST[item.published_from] > _TRUST[source]:
        published, source = item.published, item.published_from
    merged = replace(
        stored,
        title=title,
        title_is_derived=derived,
        link=item.link if moved and item.link else stored.link or item.link,  # a moved story's new address
        summary=item.summary or stored.summary,
        summary_html=item.summary_html if item.summary else stored.summary_html,
        published=published,
        published_from=source,
        image=stored.image or item.image,
        last_seen_at=now,
    )
    if _visible(merged) != _visible(stored):
        merged.updated_at = now
        merged.source_url = item.source_url
    return merged


def _visible(e: Entry) -> tuple:
    return (e.title, e.link, e.summary, e.summary_html, e.published, e.image)


def _new_entry(item: Item, entry_id: str, topic_id: str, now: datetime) -> Entry:
    # Staggered by page position so that undated stories first seen together keep the page's order
    # (Entry.date falls back to first_seen_at, and the feed is sorted newest first).
    first = now - timedelta(seconds=item.position)
    return Entry(
        id=entry_id, title=item.title, title_is_derived=item.title_is_derived, link=item.link,
        summary=item.summary, summary_html=item.summary_html, published=item.published,
        published_from=item.published_from, image=item.image, source_url=item.source_url,
        position=item.position, first_seen_at=first, last_seen_at=now, updated_at=first,
        topics=(topic_id,),
    )


@dataclass(frozen=True, slots=True)
class Query:
    """What find_stored_many() asks about one story of a batch."""

    keys: Iterable[str]  # its links and text keys
    folded: str  # its evidence text ("" when it has none: only its links identify it)
    buckets: Sequence[int]
    links: dict[str, str] = field(default_factory=dict)  # source page -> its link there
    title: str = ""  # its folded headline ("" when derived from the summary)


def find_stored(item_keys: Iterable[str], folded: str, store: StoreView,
                bucket_ids: Sequence[int] | None = None) -> tuple[Entry, str, str] | None:
    """The stored story a link-less text belongs to: (entry, stored folded text, why), or None.

    Exact keys first (index look-ups), then the LSH candidates, verified by same_story()."""
    return find_stored_many([Query(item_keys, folded, buckets(folded) if bucket_ids is None else bucket_ids)],
                            store)[0]


def _title_of(e: Entry) -> str:
    return "" if e.title_is_derived else fold(e.title)


def text_may_identify(stored: Entry, q: Query, on_page: dict[str, set[str]]) -> str | None:
    """Why the stored story may be this one on text alone ("same-text" stands for either text verdict),
    or None where links decide that it is not. The rules, in order:

    - a link-less story (either side): text decides;
    - the stored story came from another source: syndication, on a long text only;
    - it came from this source: only if its link is gone from the page now and the headlines agree
      (the story moved to a new address); a link still listed is a different item.
    """
    if not q.links or not stored.link:
        return "text"
    if stored.link in q.links.values():
        return "text"
    if stored.source_url not in q.links:
        return "syndicated" if len(q.folded) >= SYNDICATION_LEN else None
    if stored.link in on_page.get(stored.source_url, ()):
        return None
    title = _title_of(stored)
    if q.title and title:
        return "moved" if q.title == title or same_story(q.title, title) else None
    return "moved" if len(q.folded) >= SYNDICATION_LEN else None


def find_stored_many(queries: Sequence[Query], store: StoreView, on_page: dict[str, set[str]] | None = None
                     ) -> list[tuple[Entry, str, str] | None]:
    """The stored story of each query, with a handful of queries for all of them: (entry, its stored
    folded text, why: "same-url", "same-text", "near-duplicate" or "moved"), or None.

    `on_page`: the links each source page of the batch lists now (for the "moved" rule)."""
    on_page = on_page or {}
    # URLs before text hashes: a story's own address outranks a text another story once had
    hits = store.find_by_keys([sorted(q.keys, key=_url_first) for q in queries])
    found: list[tuple[Entry, str, str] | None] = [None] * len(queries)
    for i, (q, hit) in enumerate(zip(queries, hits)):
        if hit is None:
            continue
        entry, stored_folded, key = hit
        if not _is_text_key(key):
            found[i] = (entry, stored_folded, "same-url")
        elif (rule := text_may_identify(entry, q, on_page)) is not None:
            found[i] = (entry, stored_folded, "moved" if rule == "moved" else "same-text")
    near = [i for i, f in enumerate(found) if f is None and queries[i].folded]
    passing: dict[int, list[tuple[float, str, str]]] = {}  # query -> (score, entry id, stored text), best first
    for i, candidates in zip(near, store.near_candidates([queries[i].buckets for i in near])):
        scored = []
        for entry_id, stored_folded in candidates:
            why, score = _judged(queries[i].folded, stored_folded, over_time=True)
            if why is not None:
                scored.append((score, entry_id, stored_folded))
        if scored:
            passing[i] = sorted(scored, key=lambda t: (-t[0], t[1]))
    loaded = store.entries_by_id({entry_id for scored in passing.values() for _, entry_id, _ in scored})
    for i, scored in passing.items():
        # the best match that links allow, not the first that passes
        for _, entry_id, stored_folded in scored:
            candidate = loaded.get(entry_id)
            if candidate is not None and (rule := text_may_identify(candidate, queries[i], on_page)) is not None:
                found[i] = (candidate, stored_folded, "moved" if rule == "moved" else "near-duplicate")
                break
    return found


def _is_text_key(key: str) -> bool:
    """A key made from a story's text (a hash), not from its address."""
    return key.startswith(("folded:", "text:"))


def _url_first(key: str) -> tuple[bool, str]:
    return _is_text_key(key), key


def plan(items: Sequence[Item], store: StoreView, topic_id: str, now: datetime, groups: Groups | None = None
         ) -> Plan:
    """Decide, without writing anything, what the items of one topic's refresh mean for the store.

    `groups`: the items' clusters when already known (group_page() of the one page they came from).
    The text caches it fills are bounded (TEXT_CACHE); forget_texts() empties them."""
    on_page: dict[str, set[str]] = {}
    for it in items:
        if it.link:
            on_page.setdefault(it.source_url, set()).add(it.link)
    clusters = _cluster(items) if groups is None else _clusters_of(items, groups)
    return _plan(clusters, store, topic_id, now, on_page)


def _query(cluster: _Cluster, keys: set[str]) -> Query:
    primary = cluster.items[0]
    title = next((fold(it.title) for it in cluster.items if not it.title_is_derived), "")
    return Query(keys, cluster.folded, cluster.buckets, dict(cluster.links), title if primary.link else "")


def _plan(clusters: list[_Cluster], store: StoreView, topic_id: str, now: datetime,
          on_page: dict[str, set[str]]) -> Plan:
    result = Plan()
    claimed: dict[str, dict[str, str]] = {}  # entry id -> the links per page of the clusters it took
    minted: set[str] = set()
    cluster_keys = [set().union(*map(_item_keys, cluster.items)) for cluster in clusters]
    # Every look-up at once (plan writes nothing, so the store cannot change under the loop below).
    found_all = find_stored_many([_query(c, k) for c, k in zip(clusters, cluster_keys)], store, on_page)
    new_ids = {i: mint_id(c.items[0].key) for i, (c, f) in enumerate(zip(clusters, found_all)) if f is None}
    taken = store.existing_ids(new_ids.values())
    # A story found by its own link claims its entry before any found by text: two clusters may find
    # one stored story, and only those that no page lists with different links can both be it.
    order = sorted(range(len(clusters)), key=lambda i: (f := found_all[i]) is None or f[2] != "same-url")
    for i in order:
        cluster, keys, found = clusters[i], cluster_keys[i], found_all[i]
        if found is not None and found[0].id in claimed:
            entry_id = found[0].id
            if not _links_conflict(claimed[entry_id], cluster.links):
                # Another cluster of this batch already became this entry: fold this one in.
                for it in cluster.items:
                    result.merged.append((it, entry_id, found[2]))
                result.keys[entry_id] |= keys
                claimed[entry_id].update(cluster.links)
                continue
            found = None  # a page lists both with different links: this one is a story of its own
        item = _best_of(cluster.items)
        if found is None:
            entry_id = new_ids.get(i) or mint_id(cluster.items[0].key)
            if i not in new_ids:
                taken |= store.existing_ids([entry_id])
            n = 1
            while entry_id in minted or entry_id in taken:  # a key reused by another story
                entry_id = mint_id(f"{cluster.items[0].key}#{n}")
                taken |= store.existing_ids([entry_id])
                n += 1
            minted.add(entry_id)
            entry = _new_entry(item, entry_id, topic_id, now)
            result.new.append(entry)
            result.texts[entry_id] = (cluster.folded, cluster.buckets)
        else:
            stored, stored_folded, why = found
            entry = merge(stored, item, now, moved=why == "moved")
            if topic_id not in stored.topics:
                entry.topics = tuple(sorted({*stored.topics, topic_id}))
                result.joined_topic.append(entry.id)
            if _visible(entry) != _visible(stored):
                result.updated.append((stored, entry))
                if cluster.folded != stored_folded:
                    result.texts[entry.id] = (cluster.folded, cluster.buckets)
            else:
                result.unchanged.append(entry)
            entry_id = entry.id
            if why != "same-url" and not (why == "same-text" and item.link == stored.link):
                # text joined it to a story stored under another link, or none: show it, a user may disagree
                result.merged.append((cluster.items[0], entry_id, why))
        claimed[entry_id] = dict(cluster.links)
        result.keys[entry_id] = keys
        for it, why in zip(cluster.items[1:], cluster.whys[1:]):
            result.merged.append((it, entry_id, why))
    return result


def restored(entries: Sequence[Entry], items: Sequence[Item], known: set[str]) -> Plan:
    """A plan that stores published entries again, as they were (lost state rebuilt from a feed):
    their ids, times and text, with the keys and evidence of the items they came from. An entry
    already restored for another topic (`known` ids) is only listed in this one too."""
    result = Plan()
    for entry, item in zip(entries, items):
        if entry.id in known:
            result.unchanged.append(entry)
        else:
            result.new.append(entry)
            result.texts[entry.id] = (item.folded, list(item_buckets(item)))
        result.keys[entry.id] = _item_keys(item)
    return result
