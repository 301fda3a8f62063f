"""What both backends share: every query feedsvc makes, written once.

SQL here is written with `?` placeholders and in the dialect both engines speak (`ON CONFLICT ... DO
UPDATE / DO NOTHING`, `count(*) FILTER (WHERE ...)`); a backend runs it through `_exec`/`_execmany`
(PostgreSQL turns `?` into `%s` there, in one place) and supplies the few things that differ, each a
named hook: BEGIN, the topics aggregate, new row numbers, the schema version, the write lock, errors.
"""

from __future__ import annotations

import functools
import heapq
import json
import logging
import struct
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Concatenate, ParamSpec, TypeVar

from feedsvc.config import is_postgres_url
from feedsvc.errors import StoreError
from feedsvc.model import Article, Entry, RobotsTxt, SourceState, TopicRun, Worker

if TYPE_CHECKING:  # for annotations only: steps do not import each other at run time
    from feedsvc.dedupe import Plan

log = logging.getLogger("feedsvc.store")

_SOURCE_COLS = ("url, etag, last_modified, last_success_at, last_failure_at, last_error, consecutive_failures, "
                "next_try_at, last_item_count, icon, usual_item_count, degraded_runs")  # SourceState's order
_SOURCE_TYPES = "text, text, text, text, text, text, bigint, text, bigint, text, bigint, bigint"  # (nullable)
_FEED_ORDER = "ORDER BY coalesce(e.published, e.first_seen_at) DESC, e.position ASC, e.id ASC"
_ENTRY_COLS = ("id, title, title_is_derived, link, summary, summary_html, published, published_from, image, "
               "source_url, position, first_seen_at, last_seen_at, updated_at")
_ARTICLE_COLS = ("n, url, status, fetched_at, failures, next_try_at, error, published, precise, modified, image, "
                 "canonical, content_html")

# Every table and column, in an order that satisfies the foreign keys: what migrate-state copies.
# topic_versions comes last, overwriting what the triggers wrote while the rest was copied.
TABLES: tuple[tuple[str, str], ...] = (
    ("entries", f"n, {_ENTRY_COLS}, folded, buckets"),
    ("entry_topics", "topic, n, last_listed_at"),
    ("keys", "key, n"),
    ("lsh", "bucket, n"),
    ("sources", _SOURCE_COLS),
    ("rendered", "name, key"),
    ("robots", "origin, status, body, fetched_at"),
    ("articles", _ARTICLE_COLS),
    ("topic_versions", "topic, version, entries"),
    ("topic_runs", "topic, next_due_at, lease_holder, lease_expires_at, last_started_at, last_finished_at, "
                   "last_worker"),
    ("workers", "name, host, pid, started_at, seen_at"),
    ("hosts", "host, next_at"),
)


def _t(dt: datetime | None) -> str | None:
    if dt is None:
        return None
    if dt.tzinfo is None:
        raise ValueError(f"naive datetime {dt!r}: every datetime must be timezone-aware")
    return dt.astimezone(UTC).isoformat(timespec="microseconds")  # as strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


def _dt(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _pack(buckets: Sequence[int]) -> bytes:
    return struct.pack(f"<{len(buckets)}q", *buckets)


def _unpack(blob: bytes) -> list[int]:
    return list(struct.unpack(f"<{len(blob) // 8}q", blob))


def _replacing(columns: str, key: str) -> str:
    """The ON CONFLICT clause of an INSERT that replaces the row with the same `key` (SQLite's INSERT OR
    REPLACE, in words both speak)."""
    sets = ", ".join(f"{c} = excluded.{c}" for c in (c.strip() for c in columns.split(",")) if c != key)
    return f"ON CONFLICT ({key}) DO UPDATE SET {sets}"


NEAR_CANDIDATES = 32  # stored stories verified, at most, for one new text

_P = ParamSpec("_P")
_R = TypeVar("_R")


def _mapped_as(doing: str) -> Callable[[Callable[Concatenate[Store, _P], _R]], Callable[Concatenate[Store, _P], _R]]:
    """The backend's errors in a Store method become one StoreError line (mapped once, at this boundary)."""
    def decorate(method: Callable[Concatenate[Store, _P], _R]) -> Callable[Concatenate[Store, _P], _R]:
        @functools.wraps(method)
        def wrapper(self: Store, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
            try:
                return method(self, *args, **kwargs)
            except self.ERRORS as ex:
                raise self._error(ex, doing) from ex
        return wrapper
    return decorate


_mapped = _mapped_as("read")
_writes = _mapped_as("write")


class Store:
    """The state: reads for dedupe.plan(), one transaction per save(). Store.open() picks the backend."""

    ERRORS: ClassVar[tuple[type[BaseException], ...]] = ()  # the driver's error classes
    BEGIN: ClassVar[str] = "BEGIN"
    # The topics that list a story, sorted and joined by U+001F (group_concat / string_agg).
    TOPICS_OF_STORY: ClassVar[str] = ""
    # `topic {ANY}`: is one of a list given as one parameter (SQLite: json_each of a JSON array)
    ANY: ClassVar[str] = "IN (SELECT value FROM json_each(?))"
    SNAPSHOT: ClassVar[str] = "BEGIN"  # a read transaction: every table of a copy from one snapshot
    SKIP_LOCKED: ClassVar[str] = ""  # a claim's row locks (SQLite: none, it has one writer at a time)
    # PostgreSQL: how long this connection held the writers' lock (lock_for_write), for refresh's log line
    # and bench/scale.py: the one lock is what bounds the stories one database saves a second.
    write_lock_held: float = 0.0
    write_lock_holds: int = 0

    _db: Any  # the connection, in autocommit mode: transactions are BEGIN/COMMIT/SAVEPOINT of our own
    name: str  # the state as messages show it (a URL without its password)

    @staticmethod
    def open(state: Path | str) -> Store:
        """The store at `state`: a postgresql:// URL, else a SQLite file (created with its folders)."""
        if isinstance(state, str) and is_postgres_url(state):
            from feedsvc.store.postgres import PostgresStore  # psycopg is loaded only by those who use it

            return PostgresStore.connect(state)
        from feedsvc.store.sqlite import SQLiteStore

        return SQLiteStore.connect(Path(state))

    # -- what each backend supplies

    def _exec(self, sql: str, args: Sequence[object] = ()) -> Any:
        """Run one statement written with `?` placeholders; returns a cursor (iterable, fetchone, fetchall)."""
        raise NotImplementedError

    def _execmany(self, sql: str, rows: Iterable[Sequence[object]]) -> None:
        raise NotImplementedError

    def _insert_rows(self, table: str, columns: str, rows: Sequence[Sequence[object]], conflict: str = "",
                     types: str = "") -> None:
        """INSERT each row, in order (`conflict`: an ON CONFLICT clause). Rows an ON CONFLICT … DO UPDATE
        touches must differ in its target: PostgreSQL inserts them all in one statement. `types`: the
        columns' SQL types, where a column may hold NULL (else they are told from the first row)."""
        marks = ", ".join("?" * len(columns.split(",")))
        self._execmany(f"INSERT INTO {table} ({columns}) VALUES ({marks}) {conflict}", rows)

    def _update_rows(self, table: str, column: str, key: str, rows: Sequence[tuple[object, object]], *,
                     sets: str = "", sets_args: Sequence[object] = (), where: str = "",
                     where_args: Sequence[object] = ()) -> None:
        """UPDATE table SET column = value{sets} WHERE key = k{where}, for each (value, k); `sets` (", c = ?")
        and `where` (" AND c = ?") are the same for every row, their parameters in sets_args and where_args."""
        self._execmany(f"UPDATE {table} SET {column} = ?{sets} WHERE {key} = ?{where}",
                       [(value, *sets_args, k, *where_args) for value, k in rows])

    def _chunks(self, sql: str, size: int) -> Iterator[list[Any]]:
        """A query's rows, `size` at a time (SQLite's cursor steps through them as they are asked for)."""
        cursor = self._exec(sql)
        while chunk := cursor.fetchmany(size):
            yield chunk

    def _in(self, values: Iterable[object]) -> Iterator[tuple[str, list[object]]]:
        """`column {cond}` is one of `values`: (cond, its parameters) a statement. SQLite: `IN (?,?,…)`
        in slices small enough for one statement (it caps its parameters)."""
        values = list(values)
        for i in range(0, len(values), 500):
            chunk = values[i : i + 500]
            yield f"IN ({','.join('?' * len(chunk))})", chunk

    def _error(self, ex: BaseException, doing: str = "read") -> StoreError:
        """One line for a failing state: which, what is wrong, what to do about it."""
        raise NotImplementedError

    def _reason(self, ex: BaseException) -> str:
        """The driver's error as one line (no password in it)."""
        return str(ex)

    def _new_row_numbers(self, count: int) -> list[int]:
        """Row numbers for `count` new stories, inside the write lock."""
        raise NotImplementedError

    @property
    def schema_version(self) -> int:
        raise NotImplementedError

    @property
    def in_group(self) -> bool:
        raise NotImplementedError

    def verify(self) -> None:
        """Check that the state is readable throughout: a damaged one raises the one-line StoreError."""

    def index_bytes(self) -> dict[str, int]:
        """Bytes on disk per table and index, for the benchmark."""
        return {}

    def interrupt(self) -> None:
        """Abandon the statement running on this connection, from another thread (it raises StoreError)."""
        raise NotImplementedError

    @property
    def broken(self) -> bool:
        """The connection is gone (a database server restarted): open the store again. Never for a file."""
        return False

    def lock_for_write(self) -> None:
        """Serialize writers across processes: from here to the end of the open transaction, no other
        feedsvc writes this state. Call it before reading what a write decides from (dedupe's plan).
        SQLite: nothing to do, BEGIN IMMEDIATE took the file's write lock already."""

    def dedupe_writes(self) -> int | None:
        """A number that moves whenever a write that dedupe's plans read from is committed (PostgreSQL),
        or None where no such write can happen while this store is in a group (SQLite's one writer)."""
        return None

    @property
    def holds_write_lock(self) -> bool:
        """Whether the open group holds the lock lock_for_write() takes, which other writers wait for
        until commit(). Never on SQLite, where every group holds the file's lock from begin()."""
        return False

    def _after_copy(self) -> None:
        """After copy_state() wrote row numbers of its own choosing (PostgreSQL moves its sequence)."""

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------------------------------ sources

    def source_state(self, url: str) -> SourceState:
        return self.source_states_of([url])[url]

    @staticmethod
    def _source(row: tuple) -> SourceState:
        return SourceState(row[0], row[1], row[2], _dt(row[3]), _dt(row[4]), row[5], row[6], _dt(row[7]), row[8],
                           row[9], row[10], row[11])

    def save_source_state(self, state: SourceState) -> None:
        self.save_source_states([state])

    @_writes
    def save_source_states(self, states: Sequence[SourceState]) -> None:
        """Many sources' states in one statement: a refresh whose pages answer 304 records each one's
        success, and three statements a source (savepoint, insert, release) were a tenth of its work."""
        if not states:
            return
        rows = {state.url: (state.url, state.etag, state.last_modified, _t(state.last_success_at),
                            _t(state.last_failure_at), state.last_error, state.consecutive_failures,
                            _t(state.next_try_at), state.last_item_count, state.icon, state.usual_item_count,
                            state.degraded_runs) for state in states}  # (a URL once: the last state given)
        with self._transaction():
            self._insert_rows("sources", _SOURCE_COLS, list(rows.values()), _replacing(_SOURCE_COLS, "url"),
                              types=_SOURCE_TYPES)

    @_mapped
    def source_states_of(self, urls: Iterable[str]) -> dict[str, SourceState]:
        """source_state() of many sources in one query a chunk, by URL (a source never saved: a new state).
        A refresh reads every source's state before fetching: a query a source was ~5 % of the main
        thread's CPU in a refresh whose pages all answer 304."""
        urls = list(urls)
        found = {row[0]: self._source(row) for cond, chunk in self._in(urls)
                 for row in self._exec(f"SELECT {_SOURCE_COLS} FROM sources WHERE url {cond}", chunk)}
        return {url: found.get(url) or SourceState(url) for url in urls}

    @_mapped
    def source_icons(self, urls: Iterable[str]) -> dict[str, str]:
        """The site icon of those of these sources that have one, by URL (SourceState.icon), one query a chunk."""
        return {row[0]: row[1] for cond, chunk in self._in(urls)
                for row in self._exec(f"SELECT url, icon FROM sources WHERE icon IS NOT NULL AND url {cond}",
                                      chunk)}

    @_mapped
    def source_states(self) -> list[SourceState]:
        rows = self._exec(f"SELECT {_SOURCE_COLS} FROM sources ORDER BY url").fetchall()
        return [self._source(r) for r in rows]

    @_mapped
    def robots(self, since: datetime) -> dict[str, RobotsTxt]:
        """The robots.txt of each site fetched since `since`, by origin."""
        rows = self._exec("SELECT origin, status, body, fetched_at FROM robots WHERE fetched_at >= ?",
                          (_t(since),)).fetchall()
        return {r[0]: RobotsTxt(r[0], r[1], r[2], _dt(r[3])) for r in rows}  # type: ignore[arg-type]

    @_writes
    def save_robots(self, records: Sequence[RobotsTxt]) -> None:
        if not records:
            return
        columns = "origin, status, body, fetched_at"
        rows = {r.origin: (r.origin, r.status, r.body, _t(r.fetched_at)) for r in records}  # (an origin once)
        with self._transaction():
            self._insert_rows("robots", columns, list(rows.values()), _replacing(columns, "origin"))

    # ------------------------------------------------------------------------------------------ entries

    def _entries(self, where: str, args: Sequence[object], tail: str = "") -> list[tuple[int, Entry, str]]:
        """(row number, entry, folded text) of the stories the SQL `where` selects."""
        rows = self._exec(
            f"SELECT e.n, {', '.join('e.' + c.strip() for c in _ENTRY_COLS.split(','))}, e.folded, "
            f"{self.TOPICS_OF_STORY} FROM entries e {where} {tail}", tuple(args)).fetchall()
        out = []
        for r in rows:
            entry = Entry(
                id=r[1], title=r[2], title_is_derived=bool(r[3]), link=r[4], summary=r[5], summary_html=r[6],
                published=_dt(r[7]), published_from=r[8], image=r[9], source_url=r[10], position=r[11],
                first_seen_at=_dt(r[12]), last_seen_at=_dt(r[13]), updated_at=_dt(r[14]),  # type: ignore[arg-type]
                topics=tuple(r[16].split("\x1f")) if r[16] else (),
            )
            out.append((r[0], entry, r[15]))
        return out

    @_mapped
    def entries(self, topic_id: str, limit: int | None = None) -> list[Entry]:
        """The topic's stories, newest first: by date (published, else first seen), then page position."""
        args: tuple[object, ...] = (topic_id,) if limit is None else (topic_id, limit)
        rows = self._entries("JOIN entry_topics et ON et.n = e.n WHERE et.topic = ?", args,
                             _FEED_ORDER + ("" if limit is None else " LIMIT ?"))
        return [e for _, e, _ in rows]

    # ------------------------------------------------------------------------------------- articles

    @_mapped
    def articles(self, entry_ids: Iterable[str]) -> dict[str, Article]:
        """The article pages read for these stories (read ones only), by entry id."""
        out: dict[str, Article] = {}
        for cond, chunk in self._in(entry_ids):
            for r in self._exec(
                    "SELECT e.id, a.url, a.published, a.precise, a.modified, a.image, a.canonical, a.content_html "
                    f"FROM articles a JOIN entries e ON e.n = a.n WHERE a.status = 'ok' AND e.id {cond}",
                    chunk):
                out[r[0]] = Article(url=r[1], published=_dt(r[2]), precise=bool(r[3]), modified=_dt(r[4]),
                                    image=r[5], canonical=r[6], content_html=r[7])
        return out

    @_mapped
    def article_candidates(self, topic_id: str, limit: int, now: datetime) -> list[tuple[Entry, int]]:
        """(story, failures so far) of the topic's newest `limit` stories whose page is still to read: never
        tried, or failed and due again. A story read once is never fetched again."""
        rows = self._exec(
            "SELECT e.id, coalesce(a.failures, 0) FROM entries e JOIN entry_topics et ON et.n = e.n "
            "LEFT JOIN articles a ON a.n = e.n WHERE et.topic = ? "
            f"{_FEED_ORDER} LIMIT ?", (topic_id, limit)).fetchall()
        due = {r[0]: r[1] for r in self._exec(
            "SELECT e.id, a.status, a.next_try_at FROM entries e JOIN articles a ON a.n = e.n "
            "JOIN entry_topics et ON et.n = e.n WHERE et.topic = ?", (topic_id,))
            if r[1] == "ok" or (r[2] is not None and r[2] > _t(now))}
        wanted = [(i, f) for i, f in rows if i not in due]
        entries = self.entries_by_id([i for i, _ in wanted])
        return [(entries[i], f) for i, f in wanted if i in entries and entries[i].link]

    @_writes
    def save_article(self, entry_id: str, url: str, now: datetime, article: Article | None = None, *,
                     error: str | None = None, failures: int = 0, next_try_at: datetime | None = None) -> None:
        """What reading a story's page gave: the article, or the error (with the failures so far and when
        to try again)."""
        a = article or Article(url=url)
        sets = ", ".join(f"{c} = excluded.{c}" for c in _ARTICLE_COLS.split(", ")[1:])
        with self._transaction():
            self._exec(
                f"INSERT INTO articles ({_ARTICLE_COLS}) "
                "SELECT n, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ? FROM entries WHERE id = ? "
                f"ON CONFLICT (n) DO UPDATE SET {sets}",
                (url, "ok" if article is not None else "failed", _t(now), failures, _t(next_try_at), error,
                 _t(a.published), int(a.precise), _t(a.modified), a.image, a.canonical, a.content_html,
                 entry_id))

    @_mapped
    def article_health(self) -> dict[str, tuple[int, int, str | None]]:
        """Per source page: (article pages read, failing now, the last error)."""
        out: dict[str, tuple[int, int, str | None]] = {}
        for source, ok, failed, error in self._exec(
                "SELECT e.source_url, count(*) FILTER (WHERE a.status = 'ok'), "
                "count(*) FILTER (WHERE a.status != 'ok'), "
                "(SELECT a2.error FROM articles a2 JOIN entries e2 ON e2.n = a2.n WHERE e2.source_url = e.source_url "
                " AND a2.status != 'ok' ORDER BY a2.fetched_at DESC LIMIT 1) "
                "FROM articles a JOIN entries e ON e.n = a.n GROUP BY e.source_url"):
            out[source] = (int(ok or 0), int(failed or 0), error)
        return out

    def topic_version(self, topic_id: str) -> tuple[int, int]:
        """(version, stories listed) of a topic. The version moves whenever a story the topic lists
        is added, removed, or changes in anything but when it was last seen (triggers keep it)."""
        return self.topic_versions([topic_id])[topic_id]

    @_mapped
    def topic_versions(self, topic_ids: Iterable[str]) -> dict[str, tuple[int, int]]:
        """topic_version() of many topics, one query a chunk: (0, 0) for a topic with no row."""
        topic_ids = list(topic_ids)
        found = {row[0]: (int(row[1]), int(row[2])) for cond, chunk in self._in(topic_ids)
                 for row in self._exec(f"SELECT topic, version, entries FROM topic_versions WHERE topic {cond}",
                                       chunk)}
        return {t: found.get(t, (0, 0)) for t in topic_ids}

    def topic_entry_count(self, topic_id: str) -> int:
        return self.topic_version(topic_id)[1]

    @_mapped
    def entry_count(self) -> int:
        return int(self._exec("SELECT count(*) FROM entries").fetchone()[0])

    @_mapped
    def has_entries(self) -> bool:
        """Whether any story is stored: one row read, where count(*) reads them all."""
        return self._exec("SELECT 1 FROM entries LIMIT 1").fetchone() is not None

    # ---------------------------------------------------------------------- look-ups for dedupe.plan()

    @_mapped
    def find_by_keys(self, key_lists: Sequence[Sequence[str]]) -> list[tuple[Entry, str, str] | None]:
        """Per list of keys: the story stored under its first known key (entry, folded text, that key)."""
        hits: dict[str, int] = {}
        for cond, chunk in self._in({k for keys in key_lists for k in keys}):
            hits.update(self._exec(f"SELECT key, n FROM keys WHERE key {cond}", chunk).fetchall())
        if not hits:
            return [None] * len(key_lists)
        stored = {n: (e, folded) for n, e, folded in self._entries_in("n", set(hits.values()))}
        out: list[tuple[Entry, str, str] | None] = []
        for keys in key_lists:
            key = next((k for k in keys if hits.get(k) in stored), None)
            out.append(None if key is None else (*stored[hits[key]], key))
        return out

    def _entries_in(self, column: str, values: Iterable[object]) -> list[tuple[int, Entry, str]]:
        """_entries() of the stories whose `column` is one of `values`."""
        return [row for cond, chunk in self._in(values)
                for row in self._entries(f"WHERE e.{column} {cond}", chunk)]

    @_mapped
    def near_candidates(self, bucket_lists: Sequence[Sequence[int]]) -> list[list[tuple[str, str]]]:
        """Per list of LSH buckets: (entry id, folded text) of the stored stories sharing the most of them,
        by row number.

        Only what the verdict needs: most candidates are turned down, so their whole entries
        are not loaded (dedupe asks for the ones that win with entries_by_id())."""
        postings: dict[int, list[int]] = {}  # bucket -> stored stories indexed under it
        for cond, chunk in self._in({b for buckets in bucket_lists for b in buckets}):
            for bucket, n in self._exec(f"SELECT bucket, n FROM lsh WHERE bucket {cond}", chunk):
                postings.setdefault(bucket, []).append(n)
        chosen: list[list[int]] = []
        for buckets in bucket_lists:
            shared = Counter(chain.from_iterable(postings.get(b, ()) for b in set(buckets)))
            # The stories sharing the most bands first, and no more than NEAR_CANDIDATES of them: on
            # pages of near-identical templated summaries every stored story shares some band, and
            # verifying them all made a check grow with the store. A true near-duplicate shares many.
            chosen.append(sorted(n for n, _ in heapq.nsmallest(NEAR_CANDIDATES, shared.items(),
                                                               key=lambda kv: (-kv[1], kv[0]))))
        texts: dict[int, tuple[str, str]] = {}
        for cond, chunk in self._in({n for ns in chosen for n in ns}):
            texts.update((n, (i, f)) for n, i, f in self._exec(
                f"SELECT n, id, folded FROM entries WHERE n {cond}", chunk))
        return [[texts[n] for n in ns if n in texts] for ns in chosen]

    @_mapped
    def entries_by_id(self, entry_ids: Iterable[str]) -> dict[str, Entry]:
        return {e.id: e for _, e, _ in self._entries_in("id", entry_ids)}

    @_mapped
    def existing_ids(self, entry_ids: Iterable[str]) -> set[str]:
        return {row[0] for cond, chunk in self._in(entry_ids)
                for row in self._exec(f"SELECT id FROM entries WHERE id {cond}", chunk)}

    # ---------------------------------------------------------------------------------------- writing

    def _transaction(self) -> _Tx:
        return _Tx(self)

    def begin(self) -> None:
        """Open a group: until commit(), every save is part of one transaction (each save still
        rolls back alone on error, as a savepoint). Why: a commit writes every page the LSH index
        touched, and a topic's 1,000 bucket rows touch pages all over it; one commit per topic made
        commits most of what saving cost. A group of topics shares those page writes."""
        try:
            self._exec(self.BEGIN)
        except self.ERRORS as ex:
            raise self._error(ex, "write") from ex

    def commit(self) -> None:
        """Make the group durable: only then may feeds built from it be published."""
        try:
            self._end("COMMIT")
        except self.ERRORS as ex:
            raise self._error(ex, "write") from ex

    def _end(self, how: str) -> None:
        """COMMIT or ROLLBACK the open transaction (and with it the lock lock_for_write took)."""
        self._exec(how)

    def save(self, plan: Plan, topic_id: str, now: datetime) -> None:
        """Write one refresh of one topic in one transaction (statements batched: a page is ~50 stories)."""
        if not plan.entries:
            return  # its sources answered 304 or failed: nothing to write
        listed = _t(now)
        try:
            with self._transaction():
                ns = dict(zip((e.id for e in plan.new), self._new_row_numbers(len(plan.new))))
                self._execmany(
                    f"INSERT INTO entries (n, {_ENTRY_COLS}, folded, buckets) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [(ns[e.id], *self._row(e), plan.texts[e.id][0], _pack(plan.texts[e.id][1])) for e in plan.new])
                lsh_rows = [(b, ns[e.id]) for e in plan.new for b in plan.texts[e.id][1]]
                ns.update(self._ns([e.id for e in plan.entries if e.id not in ns]))
                for _, e in plan.updated:
                    n = ns[e.id]
                    if e.id in plan.texts:
                        folded, buckets = plan.texts[e.id]
                        old = self._exec("SELECT buckets FROM entries WHERE n = ?", (n,)).fetchone()[0]
                        self._execmany("DELETE FROM lsh WHERE bucket = ? AND n = ?", [(b, n) for b in _unpack(old)])
                        self._exec("UPDATE entries SET folded = ?, buckets = ? WHERE n = ?",
                                   (folded, _pack(buckets), n))
                        lsh_rows += [(b, n) for b in buckets]
                    self._exec(
                        "UPDATE entries SET title = ?, title_is_derived = ?, link = ?, summary = ?, "
                        "summary_html = ?, published = ?, published_from = ?, image = ?, source_url = ?, "
                        "position = ?, last_seen_at = ?, updated_at = ? WHERE n = ?",
                        (e.title, int(e.title_is_derived), e.link, e.summary, e.summary_html, _t(e.published),
                         e.published_from, e.image, e.source_url, e.position, _t(e.last_seen_at),
                         _t(e.updated_at), n))
                # in key order: each insert lands next to the last one in the B-tree, not on a random page
                self._insert_rows("lsh", "bucket, n", sorted(lsh_rows), "ON CONFLICT DO NOTHING")
                self._update_rows("entries", "last_seen_at", "n",
                                  [(_t(e.last_seen_at), ns[e.id]) for e in plan.unchanged])
                self._insert_rows("entry_topics", "topic, n, last_listed_at",
                                  [(topic_id, ns[e.id], listed) for e in plan.entries],
                                  "ON CONFLICT (topic, n) DO UPDATE SET last_listed_at = excluded.last_listed_at")
                # First story to claim a key keeps it, except a story's own link: that address is the
                # story's, even if an older story was once (wrongly) merged under it (the last of the
                # plan's stories to list a link takes it, as one upsert after another would).
                self._insert_rows("keys", "key, n", [(k, ns[e.id]) for e in plan.entries
                                                    for k in sorted(plan.keys.get(e.id, ())) if k != e.link],
                                  "ON CONFLICT DO NOTHING")
                self._insert_rows("keys", "key, n", list({e.link: ns[e.id] for e in plan.entries if e.link}.items()),
                                  "ON CONFLICT (key) DO UPDATE SET n = excluded.n WHERE keys.n != excluded.n")
        except self.ERRORS as ex:
            # (a read-only, full or damaged state says so, as every other write does)
            raise self._error(ex, f"save topic {topic_id!r} to") from ex

    def _ns(self, ids: Sequence[str]) -> dict[str, int]:
        """Row numbers of stored stories, by id."""
        out: dict[str, int] = {}
        for cond, chunk in self._in(ids):
            out.update(self._exec(f"SELECT id, n FROM entries WHERE id {cond}", chunk).fetchall())
        missing = [i for i in ids if i not in out]
        if missing:
            raise StoreError(f"entry {missing[0]} is not in {self.name}")
        return out

    @staticmethod
    def _row(e: Entry) -> tuple:
        return (e.id, e.title, int(e.title_is_derived), e.link, e.summary, e.summary_html, _t(e.published),
                e.published_from, e.image, e.source_url, e.position, _t(e.first_seen_at), _t(e.last_seen_at),
                _t(e.updated_at))

    @_mapped
    def render_key(self, name: str) -> str | None:
        row = self._exec("SELECT key FROM rendered WHERE name = ?", (name,)).fetchone()
        return row[0] if row else None

    @_mapped
    def render_keys(self, names: Iterable[str]) -> dict[str, str]:
        """render_key() of many files in one query a chunk (the index's key covers every topic's feed)."""
        return {row[0]: row[1] for cond, chunk in self._in(names)
                for row in self._exec(f"SELECT name, key FROM rendered WHERE name {cond}", chunk)}

    @_writes
    def set_render_key(self, name: str, key: str) -> None:
        self.set_render_keys({name: key})

    @_writes
    def set_render_keys(self, keys: dict[str, str]) -> None:
        """The render keys of feeds written (by file name): one statement, in the group's transaction
        or alone in autocommit."""
        if keys:
            self.lock_for_write()
            self._insert_rows("rendered", "name, key", list(keys.items()), _replacing("name, key", "name"))

    @_writes
    def touch_sources(self, urls: Sequence[str], now: datetime, older_than: datetime) -> None:
        """Sources not read this run (304, failed, backed off) still list what they listed last time:
        keep their stories from being pruned as if they had left the page.

        Only stories last seen before `older_than` are touched (prune's cutoff is further back):
        rewriting every story of every unchanged page on every run was most of a warm refresh."""
        if not urls:
            return
        at, cutoff = _t(now), _t(older_than)
        with self._transaction():  # one statement a chunk of sources, not one a source: a third of the time
            for cond, chunk in self._in(urls):
                self._exec(f"UPDATE entries SET last_seen_at = ? WHERE last_seen_at < ? AND source_url {cond}",
                           (at, cutoff, *chunk))

    @_mapped_as("prune")
    def prune(self, now: datetime, retention: timedelta) -> int:
        """Delete stories not listed on any page since now - retention. A listed story is never touched,
        so it never gets a new id. Returns how many stories were deleted."""
        cutoff = _t(now - retention)
        with self._transaction():
            rows = self._exec("SELECT n, buckets FROM entries WHERE last_seen_at < ?", (cutoff,)).fetchall()
            for n, blob in rows:
                self._execmany("DELETE FROM lsh WHERE bucket = ? AND n = ?", [(b, n) for b in _unpack(blob)])
                self._exec("DELETE FROM entries WHERE n = ?", (n,))  # cascades keys, topics
        if rows:
            log.info("pruned %d stories not listed since %s", len(rows), cutoff)
        return len(rows)

    # ------------------------------------------------------------------------------------------ fleet
    # Called on the fleet's own connection (fleet.Fleet), never inside a refresh's group: each claim or
    # renewal commits at once. Row locks are all they need, not the writers' lock a refresh holds.

    @contextmanager
    def _lease_transaction(self) -> Iterator[None]:
        self._exec(self.BEGIN)
        try:
            yield
        except BaseException:
            self._end("ROLLBACK")
            raise
        self._end("COMMIT")

    def _list(self, values: Sequence[str]) -> object:
        """A list as one parameter, for `topic {ANY}`."""
        return json.dumps(list(values))

    @_writes
    def ensure_topics(self, first_due: dict[str, datetime]) -> None:
        """Give the topics the state has not seen yet their first due time."""
        with self._lease_transaction():
            self._insert_rows("topic_runs", "topic, next_due_at", [(t, _t(due)) for t, due in first_due.items()],
                              "ON CONFLICT DO NOTHING")

    @_writes
    def claim_topics(self, worker: str, topic_ids: Sequence[str], now: datetime, lease: timedelta, *,
                     limit: int, due_only: bool) -> list[str]:
        """Lease to `worker` up to `limit` of these topics whose lease is free or expired (and that are due,
        with due_only), the longest due first. Rows another worker is claiming right now are skipped."""
        at = _t(now)
        with self._lease_transaction():
            rows = self._exec(
                f"SELECT topic FROM topic_runs WHERE topic {self.ANY} AND (? OR next_due_at <= ?) "
                "AND (lease_expires_at IS NULL OR lease_expires_at < ?) ORDER BY next_due_at, topic LIMIT ?"
                f"{self.SKIP_LOCKED}", (self._list(topic_ids), not due_only, at, at, limit)).fetchall()
            claimed = [r[0] for r in rows]
            self._exec(f"UPDATE topic_runs SET lease_holder = ?, lease_expires_at = ?, last_started_at = ? "
                             f"WHERE topic {self.ANY}", (worker, _t(now + lease), at, self._list(claimed)))
        return claimed

    @_writes
    def renew_leases(self, worker: str, topic_ids: Sequence[str], now: datetime, lease: timedelta) -> None:
        if topic_ids:
            with self._lease_transaction():
                self._exec(f"UPDATE topic_runs SET lease_expires_at = ? WHERE lease_holder = ? "
                                 f"AND topic {self.ANY}", (_t(now + lease), worker, self._list(topic_ids)))

    @_writes
    def finish_topics(self, worker: str, topic_ids: Sequence[str], next_due: dict[str, datetime],
                      now: datetime) -> None:
        """The worker refreshed these topics: record it, set when each is next due, let its leases go."""
        with self._lease_transaction():
            self._update_rows("topic_runs", "next_due_at", "topic", [(_t(next_due.get(t, now)), t) for t in topic_ids],
                              sets=", last_finished_at = ?, last_worker = ?, lease_holder = NULL, "
                                   "lease_expires_at = NULL", sets_args=(_t(now), worker),
                              where=" AND lease_holder = ?", where_args=(worker,))

    @_writes
    def release_topics(self, worker: str, topic_ids: Sequence[str]) -> None:
        """Let leases go unrefreshed: the topics stay due, for whichever worker polls first."""
        with self._lease_transaction():
            self._exec(f"UPDATE topic_runs SET lease_holder = NULL, lease_expires_at = NULL "
                             f"WHERE lease_holder = ? AND topic {self.ANY}", (worker, self._list(topic_ids)))

    @_mapped
    def fleet_load(self, topic_ids: Sequence[str], now: datetime, alive_since: datetime) -> tuple[int, int]:
        """(topics due now that nobody holds, workers seen since `alive_since`): a worker's fair share."""
        at = _t(now)
        due = self._exec(f"SELECT count(*) FROM topic_runs WHERE topic {self.ANY} AND next_due_at <= ? "
                         "AND (lease_expires_at IS NULL OR lease_expires_at < ?)",
                         (self._list(topic_ids), at, at)).fetchone()[0]
        alive = self._exec("SELECT count(*) FROM workers WHERE seen_at >= ?", (_t(alive_since),)).fetchone()[0]
        return int(due), int(alive)

    @_mapped
    def topic_runs(self, topic_ids: Sequence[str] | None = None) -> list[TopicRun]:
        """Every topic's schedule and lease (status), or these topics' only (who holds them)."""
        where, args = (f" WHERE topic {self.ANY}", (self._list(topic_ids),)) if topic_ids is not None else ("", ())
        rows = self._exec("SELECT topic, next_due_at, lease_holder, lease_expires_at, last_started_at, "
                          f"last_finished_at, last_worker FROM topic_runs{where} ORDER BY topic", args).fetchall()
        return [TopicRun(r[0], _dt(r[1]), r[2], _dt(r[3]), _dt(r[4]), _dt(r[5]), r[6]) for r in rows]  # type: ignore[arg-type]

    @_writes
    def register_worker(self, name: str, host: str, pid: int, now: datetime) -> None:
        with self._lease_transaction():
            self._exec("INSERT INTO workers (name, host, pid, started_at, seen_at) VALUES (?, ?, ?, ?, ?) "
                             "ON CONFLICT (name) DO UPDATE SET host = excluded.host, pid = excluded.pid, "
                             "started_at = excluded.started_at, seen_at = excluded.seen_at",
                             (name, host, pid, _t(now), _t(now)))

    @_writes
    def worker_seen(self, name: str, now: datetime) -> None:
        with self._lease_transaction():
            self._exec("UPDATE workers SET seen_at = ? WHERE name = ?", (_t(now), name))

    @_writes
    def forget_worker(self, name: str) -> None:
        with self._lease_transaction():
            self._exec("DELETE FROM workers WHERE name = ?", (name,))

    @_mapped
    def workers(self) -> list[Worker]:
        rows = self._exec("SELECT name, host, pid, started_at, seen_at FROM workers ORDER BY name").fetchall()
        return [Worker(r[0], r[1], r[2], _dt(r[3]), _dt(r[4])) for r in rows]  # type: ignore[arg-type]

    def reserve_host(self, host: str, gap: float) -> float:
        """Book the host's next request slot for the fleet; seconds to wait for it. One process with
        SQLite paces its hosts by itself (fetch.Fetcher): nothing to book."""
        return 0.0

    # ------------------------------------------------------------------------------ moving the state

    @_mapped
    def is_empty(self) -> bool:
        return all(self._exec(f"SELECT 1 FROM {table} LIMIT 1").fetchone() is None for table, _ in TABLES)

    def copy_to(self, target: Store, batch: int = 2000) -> dict[str, int]:
        """Copy every row into `target`, an empty store of either backend, in one transaction of its own:
        row numbers, ids, first-seen times, validators, robots.txt and render keys stay as they are, so
        the feeds do not change. Returns the rows copied per table."""
        if not target.is_empty():
            raise StoreError(f"{target.name} already holds a state: copy into a new, empty one")
        copied: dict[str, int] = {}
        table = ""
        try:
            # Every table from one snapshot of the source: a refresh writing it meanwhile must not leave
            # the copy with keys of a story whose row was read before the story was saved.
            self._exec(self.SNAPSHOT)
            try:
                with target._transaction():
                    for table, columns in TABLES:
                        if table == "topic_versions":  # moved by the triggers while the rest was copied
                            target._exec("DELETE FROM topic_versions")
                        marks = ", ".join("?" * (columns.count(",") + 1))
                        copied[table] = 0
                        for chunk in self._chunks(f"SELECT {columns} FROM {table}", batch):
                            target._execmany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", chunk)
                            copied[table] += len(chunk)
                    target._after_copy()
            finally:
                self._exec("ROLLBACK")  # (it only read)
        except self.ERRORS + target.ERRORS as ex:
            reason = target._reason(ex) if isinstance(ex, target.ERRORS) else self._reason(ex)
            raise StoreError(f"cannot copy the table {table} from {self.name} to {target.name}: {reason}") from ex
        return copied


class _Tx:
    """BEGIN ... COMMIT, ROLLBACK on any error (the connection is in autocommit mode), holding the
    write lock. Inside a group (Store.begin) it is a savepoint: an error undoes this write only."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._nested = False

    def __enter__(self) -> None:
        store = self._store
        self._nested = store.in_group
        if not self._nested:
            store._exec(store.BEGIN)
        try:
            store.lock_for_write()  # before the savepoint: a lock taken inside one would go with its rollback
        except BaseException:
            if not self._nested:
                store._end("ROLLBACK")
            raise
        if self._nested:
            store._exec("SAVEPOINT feedsvc_write")

    def __exit__(self, exc_type: object, *_: object) -> None:
        if not self._nested:
            self._store._end("ROLLBACK" if exc_type else "COMMIT")
            return
        if exc_type:
            self._store._exec("ROLLBACK TO feedsvc_write")
        self._store._exec("RELEASE feedsvc_write")
