"""The SQLite state: stories (entries), the topics that list them, every key they were seen under, the
near-duplicate index, and what we remember about each source. The only module that imports sqlite3.

Tables (schema version in PRAGMA user_version, migrations in MIGRATIONS):
- entries: one row per story; `n` is a compact integer handle used by the other tables, `id` the URI that
  feeds publish. `folded` keeps the comparison text; `buckets` the LSH bucket ids it is indexed under, so
  that replacing or pruning a story removes exactly its index rows without an extra index.
- entry_topics(topic, n, last_listed_at): which feeds list a story.
- keys(key, n): every canonical URL, link and folded-text hash a story was seen under (exact matches).
- lsh(bucket, n): a WITHOUT ROWID table keyed by (bucket, n): a near-duplicate check is BANDS index seeks.
- sources: SourceState.
- topic_versions(topic, version, entries): moved by triggers whenever anything a topic's feed shows
  changes, so that a refresh can tell a feed is current without reading it.
- rendered, robots: what each published file was rendered from; robots.txt kept a day.
Times are stored as fixed-width UTC ISO strings (they sort as they compare) and read back aware.
"""

from __future__ import annotations

import functools
import heapq
import logging
import sqlite3
import struct
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from itertools import chain
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Concatenate, ParamSpec, TypeVar

from feedsvc.errors import StoreError
from feedsvc.model import Article, Entry, RobotsTxt, SourceState

if TYPE_CHECKING:  # for annotations only: steps do not import each other at run time
    from feedsvc.dedupe import Plan

log = logging.getLogger(__name__)

MIGRATIONS: list[str] = [
    # 1: the first schema
    """
    CREATE TABLE entries (
        n INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        title TEXT NOT NULL,
        title_is_derived INTEGER NOT NULL,
        link TEXT,
        summary TEXT NOT NULL,
        summary_html TEXT,
        published TEXT,
        published_from TEXT,
        image TEXT,
        source_url TEXT NOT NULL,
        position INTEGER NOT NULL,
        first_seen_at TEXT NOT NULL,
        last_seen_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        folded TEXT NOT NULL,
        buckets BLOB NOT NULL
    );
    CREATE INDEX entries_last_seen ON entries(last_seen_at);
    CREATE TABLE entry_topics (
        topic TEXT NOT NULL,
        n INTEGER NOT NULL REFERENCES entries(n) ON DELETE CASCADE,
        last_listed_at TEXT NOT NULL,
        PRIMARY KEY (topic, n)
    ) WITHOUT ROWID;
    CREATE INDEX entry_topics_n ON entry_topics(n);
    CREATE TABLE keys (
        key TEXT PRIMARY KEY,
        n INTEGER NOT NULL REFERENCES entries(n) ON DELETE CASCADE
    ) WITHOUT ROWID;
    CREATE INDEX keys_n ON keys(n);
    CREATE TABLE lsh (
        bucket INTEGER NOT NULL,
        n INTEGER NOT NULL,
        PRIMARY KEY (bucket, n)
    ) WITHOUT ROWID;
    CREATE TABLE sources (
        url TEXT PRIMARY KEY,
        etag TEXT,
        last_modified TEXT,
        last_success_at TEXT,
        last_failure_at TEXT,
        last_error TEXT,
        consecutive_failures INTEGER NOT NULL DEFAULT 0,
        next_try_at TEXT,
        last_item_count INTEGER
    );
    """,
    # 2: touch_sources() finds a source's stories without a scan
    """
    CREATE INDEX entries_source ON entries(source_url);
    """,
    # 3: the site's icon, for the feed's <icon>
    """
    ALTER TABLE sources ADD COLUMN icon TEXT;
    """,
    # 4: what each published file was last rendered from, so an unchanged feed is not rendered again
    """
    CREATE TABLE rendered (name TEXT PRIMARY KEY, key TEXT NOT NULL) WITHOUT ROWID;
    """,
    # 5: robots.txt per site, kept for a day: without it every refresh asked each site twice
    """
    CREATE TABLE robots (
        origin TEXT PRIMARY KEY,
        status INTEGER NOT NULL,
        body TEXT NOT NULL,
        fetched_at TEXT NOT NULL
    ) WITHOUT ROWID;
    """,
    # 6: touch_sources() finds a source's stories that are getting old without reading the others
    """
    DROP INDEX entries_source;
    CREATE INDEX entries_source_seen ON entries(source_url, last_seen_at);
    """,
    # 7: a version per topic, moved by SQLite itself whenever anything its feed shows changes, and its
    # story count: a refresh of unchanged pages tells its feeds are current without reading them.
    # Triggers, not code in save()/prune(), so that no way of writing can forget to move it.
    """
    CREATE TABLE topic_versions (
        topic TEXT PRIMARY KEY,
        version INTEGER NOT NULL,
        entries INTEGER NOT NULL
    ) WITHOUT ROWID;
    INSERT INTO topic_versions SELECT topic, 1, count(*) FROM entry_topics GROUP BY topic;
    CREATE TRIGGER topic_listed AFTER INSERT ON entry_topics BEGIN
        INSERT INTO topic_versions (topic, version, entries) VALUES (NEW.topic, 1, 1)
        ON CONFLICT (topic) DO UPDATE SET version = version + 1, entries = entries + 1;
    END;
    CREATE TRIGGER topic_unlisted AFTER DELETE ON entry_topics BEGIN
        UPDATE topic_versions SET version = version + 1, entries = entries - 1 WHERE topic = OLD.topic;
    END;
    CREATE TRIGGER topic_entry_changed AFTER UPDATE ON entries
    WHEN OLD.id IS NOT NEW.id OR OLD.title IS NOT NEW.title OR OLD.title_is_derived IS NOT NEW.title_is_derived
        OR OLD.link IS NOT NEW.link OR OLD.summary IS NOT NEW.summary OR OLD.summary_html IS NOT NEW.summary_html
        OR OLD.published IS NOT NEW.published OR OLD.published_from IS NOT NEW.published_from
        OR OLD.image IS NOT NEW.image OR OLD.source_url IS NOT NEW.source_url OR OLD.position IS NOT NEW.position
        OR OLD.first_seen_at IS NOT NEW.first_seen_at OR OLD.updated_at IS NOT NEW.updated_at
    BEGIN
        UPDATE topic_versions SET version = version + 1
        WHERE topic IN (SELECT topic FROM entry_topics WHERE n = NEW.n);
    END;
    """,
    # 8: a source's usual item count and how many refreshes in a row found far fewer ("degraded")
    """
    ALTER TABLE sources ADD COLUMN usual_item_count INTEGER;
    ALTER TABLE sources ADD COLUMN degraded_runs INTEGER NOT NULL DEFAULT 0;
    UPDATE sources SET usual_item_count = last_item_count;
    """,
    # 9: each story's own page, read once (article = "meta" / "full"): what it added, or why it could not be
    # read and when to try again. Kept apart from the story's row, which stays what the listing gave: the
    # listing is compared with it on every refresh. Reading one moves its topics' versions (a feed shows it).
    """
    CREATE TABLE articles (
        n INTEGER PRIMARY KEY REFERENCES entries(n) ON DELETE CASCADE,
        url TEXT NOT NULL,
        status TEXT NOT NULL,
        fetched_at TEXT NOT NULL,
        failures INTEGER NOT NULL DEFAULT 0,
        next_try_at TEXT,
        error TEXT,
        published TEXT,
        precise INTEGER NOT NULL DEFAULT 0,
        modified TEXT,
        image TEXT,
        canonical TEXT,
        content_html TEXT
    );
    CREATE TRIGGER article_read AFTER INSERT ON articles WHEN NEW.status = 'ok' BEGIN
        UPDATE topic_versions SET version = version + 1
        WHERE topic IN (SELECT topic FROM entry_topics WHERE n = NEW.n);
    END;
    CREATE TRIGGER article_reread AFTER UPDATE ON articles WHEN NEW.status = 'ok' BEGIN
        UPDATE topic_versions SET version = version + 1
        WHERE topic IN (SELECT topic FROM entry_topics WHERE n = NEW.n);
    END;
    """,
]

_SOURCE_COLS = ("url, etag, last_modified, last_success_at, last_failure_at, last_error, consecutive_failures, "
                "next_try_at, last_item_count, icon, usual_item_count, degraded_runs")  # SourceState's order
_FEED_ORDER = "ORDER BY coalesce(e.published, e.first_seen_at) DESC, e.position ASC, e.id ASC"
_ENTRY_COLS = ("id, title, title_is_derived, link, summary, summary_html, published, published_from, image, "
               "source_url, position, first_seen_at, last_seen_at, updated_at")


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


def _statements(script: str) -> Iterator[str]:
    """The statements of an SQL script, each whole (a trigger's body has semicolons of its own)."""
    statement = ""
    for piece in script.split(";"):
        statement += piece + ";"
        if sqlite3.complete_statement(statement):
            if statement.strip(" \n;"):
                yield statement
            statement = ""


def _in_chunks(values: Iterable[object], size: int = 500) -> Iterator[tuple[str, list[object]]]:
    """`values` in slices small enough for one statement (SQLite caps its parameters), each with the
    "?,?,…" of its IN list."""
    values = list(values)
    for i in range(0, len(values), size):
        chunk = values[i : i + size]
        yield ",".join("?" * len(chunk)), chunk


NEAR_CANDIDATES = 32  # stored stories verified, at most, for one new text
CACHE_KIB = 32 * 1024  # SQLite page cache (the default is 2 MiB)


def state_error(path: Path, ex: BaseException, doing: str = "read") -> StoreError:
    """One line for a failing state file: which file, what is wrong, what to do about it."""
    text = str(ex)
    low = text.lower()
    if "malformed" in low or "not a database" in low or "corrupt" in low:
        return StoreError(f"the state database {path} is damaged ({text}): move it aside (mv {path} "
                          f"{path}.damaged); the next refresh rebuilds the stories from the published feeds")
    if "readonly" in low or "read-only" in low or "permission denied" in low:
        return StoreError(f"the state database {path} is read-only for this user ({text}): make the file and "
                          "its folder writable by the user that runs feedsvc")
    if "unable to open" in low:
        return StoreError(f"cannot open the state database {path} ({text}): its folder must exist and be "
                          "writable by the user that runs feedsvc")
    if "full" in low:
        return StoreError(f"cannot write the state database {path}: the disk is full ({text})")
    if "locked" in low or "busy" in low:
        return StoreError(f"the state database {path} stayed busy ({text}): another program holds it; "
                          "try again when it has finished")
    return StoreError(f"cannot {doing} the state database {path}: {text}")


_P = ParamSpec("_P")
_R = TypeVar("_R")


def _mapped(method: Callable[Concatenate[Store, _P], _R]) -> Callable[Concatenate[Store, _P], _R]:
    """SQLite errors of a Store method become one StoreError line (mapped once, at this boundary)."""
    @functools.wraps(method)
    def wrapper(self: Store, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return method(self, *args, **kwargs)
        except sqlite3.Error as ex:
            raise state_error(self.path, ex) from ex
    return wrapper


class Store:
    """One SQLite file. Reads for dedupe.plan(), one transaction per save()."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._db = conn
        self.path = path

    @classmethod
    def open(cls, path: Path) -> Store:
        path = Path(path)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(path, isolation_level=None, timeout=30)  # autocommit; we BEGIN ourselves
            conn.execute("PRAGMA busy_timeout = 30000")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")  # WAL + NORMAL: durable across app crashes
            conn.execute("PRAGMA foreign_keys = ON")
            # A refresh writes its topics in a few large transactions (begin()); the LSH index takes
            # inserts at random places, so a bigger cache keeps its dirty pages from spilling mid-way.
            conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
            store = cls(conn, path)
            try:
                store._migrate()
            except BaseException:
                conn.close()
                raise
        except (sqlite3.Error, OSError) as e:
            raise state_error(path, e, "open") from e
        return store

    def _migrate(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > len(MIGRATIONS):
            raise StoreError(f"{self.path} has schema version {version}, newer than this feedsvc knows "
                             f"({len(MIGRATIONS)}): upgrade feedsvc")
        for number in range(version + 1, len(MIGRATIONS) + 1):
            log.info("migrating %s to schema version %d", self.path, number)
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for statement in _statements(MIGRATIONS[number - 1]):
                    self._db.execute(statement)
                self._db.execute(f"PRAGMA user_version = {number}")
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    @property
    @_mapped
    def schema_version(self) -> int:
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------------------------------ sources

    @_mapped
    def source_state(self, url: str) -> SourceState:
        row = self._db.execute(
            f"SELECT {_SOURCE_COLS} FROM sources WHERE url = ?", (url,)).fetchone()
        return SourceState(url) if row is None else self._source(row)

    @staticmethod
    def _source(row: tuple) -> SourceState:
        return SourceState(row[0], row[1], row[2], _dt(row[3]), _dt(row[4]), row[5], row[6], _dt(row[7]), row[8],
                           row[9], row[10], row[11])

    def save_source_state(self, state: SourceState) -> None:
        self.save_source_states([state])

    @_mapped
    def save_source_states(self, states: Sequence[SourceState]) -> None:
        """Many sources' states in one statement: a refresh whose pages answer 304 records each one's
        success, and three statements a source (savepoint, insert, release) were a tenth of its work."""
        if not states:
            return
        with self._transaction():
            self._db.executemany(
                "INSERT OR REPLACE INTO sources (url, etag, last_modified, last_success_at, last_failure_at, "
                "last_error, consecutive_failures, next_try_at, last_item_count, icon, usual_item_count, "
                "degraded_runs) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(state.url, state.etag, state.last_modified, _t(state.last_success_at),
                  _t(state.last_failure_at), state.last_error, state.consecutive_failures,
                  _t(state.next_try_at), state.last_item_count, state.icon, state.usual_item_count,
                  state.degraded_runs) for state in states])

    @_mapped
    def source_states(self) -> list[SourceState]:
        rows = self._db.execute(
            f"SELECT {_SOURCE_COLS} FROM sources ORDER BY url").fetchall()
        return [self._source(r) for r in rows]

    @_mapped
    def robots(self, since: datetime) -> dict[str, RobotsTxt]:
        """The robots.txt of each site fetched since `since`, by origin."""
        rows = self._db.execute("SELECT origin, status, body, fetched_at FROM robots WHERE fetched_at >= ?",
                                (_t(since),)).fetchall()
        return {r[0]: RobotsTxt(r[0], r[1], r[2], _dt(r[3])) for r in rows}  # type: ignore[arg-type]

    def save_robots(self, records: Sequence[RobotsTxt]) -> None:
        if not records:
            return
        try:
            with self._transaction():
                self._db.executemany("INSERT OR REPLACE INTO robots (origin, status, body, fetched_at) "
                                     "VALUES (?, ?, ?, ?)",
                                     [(r.origin, r.status, r.body, _t(r.fetched_at)) for r in records])
        except sqlite3.Error as ex:
            raise state_error(self.path, ex, "write") from ex

    # ------------------------------------------------------------------------------------------ entries

    def _entries(self, where: str, args: Sequence[object], tail: str = "") -> list[tuple[int, Entry, str]]:
        """(row number, entry, folded text) of the stories the SQL `where` selects."""
        rows = self._db.execute(
            f"SELECT e.n, {', '.join('e.' + c.strip() for c in _ENTRY_COLS.split(','))}, e.folded, "
            "(SELECT group_concat(topic, char(31)) FROM (SELECT topic FROM entry_topics t WHERE t.n = e.n "
            f"ORDER BY topic)) FROM entries e {where} {tail}", tuple(args)).fetchall()
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
        for marks, chunk in _in_chunks(entry_ids):
            for r in self._db.execute(
                    "SELECT e.id, a.url, a.published, a.precise, a.modified, a.image, a.canonical, a.content_html "
                    f"FROM articles a JOIN entries e ON e.n = a.n WHERE a.status = 'ok' AND e.id IN ({marks})",
                    chunk):
                out[r[0]] = Article(url=r[1], published=_dt(r[2]), precise=bool(r[3]), modified=_dt(r[4]),
                                    image=r[5], canonical=r[6], content_html=r[7])
        return out

    @_mapped
    def article_candidates(self, topic_id: str, limit: int, now: datetime) -> list[tuple[Entry, int]]:
        """(story, failures so far) of the topic's newest `limit` stories whose page is still to read: never
        tried, or failed and due again. A story read once is never fetched again."""
        rows = self._db.execute(
            "SELECT e.id, coalesce(a.failures, 0) FROM entries e JOIN entry_topics et ON et.n = e.n "
            "LEFT JOIN articles a ON a.n = e.n WHERE et.topic = ? "
            f"{_FEED_ORDER} LIMIT ?", (topic_id, limit)).fetchall()
        due = {r[0]: r[1] for r in self._db.execute(
            "SELECT e.id, a.status, a.next_try_at FROM entries e JOIN articles a ON a.n = e.n "
            "JOIN entry_topics et ON et.n = e.n WHERE et.topic = ?", (topic_id,))
            if r[1] == "ok" or (r[2] is not None and r[2] > _t(now))}
        wanted = [(i, f) for i, f in rows if i not in due]
        entries = self.entries_by_id([i for i, _ in wanted])
        return [(entries[i], f) for i, f in wanted if i in entries and entries[i].link]

    def save_article(self, entry_id: str, url: str, now: datetime, article: Article | None = None, *,
                     error: str | None = None, failures: int = 0, next_try_at: datetime | None = None) -> None:
        """What reading a story's page gave: the article, or the error (with the failures so far and when
        to try again)."""
        a = article or Article(url=url)
        try:
            with self._transaction():
                self._db.execute(
                    "INSERT OR REPLACE INTO articles (n, url, status, fetched_at, failures, next_try_at, error, "
                    "published, precise, modified, image, canonical, content_html) "
                    "SELECT n, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ? FROM entries WHERE id = ?",
                    (url, "ok" if article is not None else "failed", _t(now), failures, _t(next_try_at), error,
                     _t(a.published), int(a.precise), _t(a.modified), a.image, a.canonical, a.content_html,
                     entry_id))
        except sqlite3.Error as ex:
            raise state_error(self.path, ex, "write") from ex

    @_mapped
    def article_health(self) -> dict[str, tuple[int, int, str | None]]:
        """Per source page: (article pages read, failing now, the last error)."""
        out: dict[str, tuple[int, int, str | None]] = {}
        for source, ok, failed, error in self._db.execute(
                "SELECT e.source_url, sum(a.status = 'ok'), sum(a.status != 'ok'), "
                "(SELECT a2.error FROM articles a2 JOIN entries e2 ON e2.n = a2.n WHERE e2.source_url = e.source_url "
                " AND a2.status != 'ok' ORDER BY a2.fetched_at DESC LIMIT 1) "
                "FROM articles a JOIN entries e ON e.n = a.n GROUP BY e.source_url"):
            out[source] = (int(ok or 0), int(failed or 0), error)
        return out

    @_mapped
    def topic_version(self, topic_id: str) -> tuple[int, int]:
        """(version, stories listed) of a topic. The version moves whenever a story the topic lists
        is added, removed, or changes in anything but when it was last seen (triggers keep it)."""
        row = self._db.execute("SELECT version, entries FROM topic_versions WHERE topic = ?", (topic_id,)).fetchone()
        return (row[0], row[1]) if row else (0, 0)

    def topic_entry_count(self, topic_id: str) -> int:
        return self.topic_version(topic_id)[1]

    @_mapped
    def entry_count(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM entries").fetchone()[0])

    @_mapped
    def has_entries(self) -> bool:
        """Whether any story is stored: one row read, where count(*) reads them all."""
        return self._db.execute("SELECT 1 FROM entries LIMIT 1").fetchone() is not None

    @_mapped
    def verify(self) -> None:
        """Read every page (PRAGMA quick_check): a damaged database raises the one-line StoreError.
        `status` calls it: damage in pages a status does not read must not look healthy."""
        problems = [row[0] for row in self._db.execute("PRAGMA quick_check(5)")]
        if problems != ["ok"]:
            raise sqlite3.DatabaseError("database disk image is malformed: " + "; ".join(problems))

    # ---------------------------------------------------------------------- look-ups for dedupe.plan()

    @_mapped
    def find_by_keys(self, key_lists: Sequence[Sequence[str]]) -> list[tuple[Entry, str, str] | None]:
        """Per list of keys: the story stored under its first known key (entry, folded text, that key)."""
        hits: dict[str, int] = {}
        for marks, chunk in _in_chunks({k for keys in key_lists for k in keys}):
            hits.update(self._db.execute(f"SELECT key, n FROM keys WHERE key IN ({marks})", chunk).fetchall())
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
        return [row for marks, chunk in _in_chunks(values)
                for row in self._entries(f"WHERE e.{column} IN ({marks})", chunk)]

    @_mapped
    def near_candidates(self, bucket_lists: Sequence[Sequence[int]]) -> list[list[tuple[str, str]]]:
        """Per list of LSH buckets: (entry id, folded text) of the stored stories sharing the most of them,
        by row number.

        Only what the verdict needs: most candidates are turned down, so their whole entries
        are not loaded (dedupe asks for the ones that win with entries_by_id())."""
        postings: dict[int, list[int]] = {}  # bucket -> stored stories indexed under it
        for marks, chunk in _in_chunks({b for buckets in bucket_lists for b in buckets}):
            for bucket, n in self._db.execute(f"SELECT bucket, n FROM lsh WHERE bucket IN ({marks})", chunk):
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
        for marks, chunk in _in_chunks({n for ns in chosen for n in ns}):
            texts.update((n, (i, f)) for n, i, f in self._db.execute(
                f"SELECT n, id, folded FROM entries WHERE n IN ({marks})", chunk))
        return [[texts[n] for n in ns if n in texts] for ns in chosen]

    @_mapped
    def entries_by_id(self, entry_ids: Iterable[str]) -> dict[str, Entry]:
        return {e.id: e for _, e, _ in self._entries_in("id", entry_ids)}

    @_mapped
    def existing_ids(self, entry_ids: Iterable[str]) -> set[str]:
        return {row[0] for marks, chunk in _in_chunks(entry_ids)
                for row in self._db.execute(f"SELECT id FROM entries WHERE id IN ({marks})", chunk)}

    # ---------------------------------------------------------------------------------------- writing

    def _transaction(self) -> _Tx:
        return _Tx(self._db)

    def begin(self) -> None:
        """Open a group: until commit(), every save is part of one transaction (each save still
        rolls back alone on error, as a savepoint). Why: a commit writes every page the LSH index
        touched, and a topic's 1,000 bucket rows touch pages all over it; one commit per topic made
        commits most of what saving cost. A group of topics shares those page writes."""
        try:
            self._db.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as ex:
            raise state_error(self.path, ex, "write") from ex

    def commit(self) -> None:
        """Make the group durable: only then may feeds built from it be published."""
        try:
            self._db.execute("COMMIT")
        except sqlite3.Error as ex:
            raise state_error(self.path, ex, "write") from ex

    @property
    def in_group(self) -> bool:
        return self._db.in_transaction

    def save(self, plan: Plan, topic_id: str, now: datetime) -> None:
        """Write one refresh of one topic in one transaction (statements batched: a page is ~50 stories)."""
        if not plan.entries:
            return  # its sources answered 304 or failed: nothing to write
        listed = _t(now)
        try:
            with self._transaction():
                # Row numbers chosen here, so that new stories go in with one statement: the write lock
                # is held (BEGIN IMMEDIATE), so nobody else can take them meanwhile.
                first = self._db.execute("SELECT coalesce(max(n), 0) + 1 FROM entries").fetchone()[0]
                ns = {e.id: first + i for i, e in enumerate(plan.new)}
                self._db.executemany(
                    f"INSERT INTO entries (n, {_ENTRY_COLS}, folded, buckets) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [(ns[e.id], *self._row(e), plan.texts[e.id][0], _pack(plan.texts[e.id][1])) for e in plan.new])
                lsh_rows = [(b, ns[e.id]) for e in plan.new for b in plan.texts[e.id][1]]
                ns.update(self._ns([e.id for e in plan.entries if e.id not in ns]))
                for _, e in plan.updated:
                    n = ns[e.id]
                    if e.id in plan.texts:
                        folded, buckets = plan.texts[e.id]
                        old = self._db.execute("SELECT buckets FROM entries WHERE n = ?", (n,)).fetchone()[0]
                        self._db.executemany("DELETE FROM lsh WHERE bucket = ? AND n = ?",
                                             [(b, n) for b in _unpack(old)])
                        self._db.execute("UPDATE entries SET folded = ?, buckets = ? WHERE n = ?",
                                         (folded, _pack(buckets), n))
                        lsh_rows += [(b, n) for b in buckets]
                    self._db.execute(
                        "UPDATE entries SET title = ?, title_is_derived = ?, link = ?, summary = ?, "
                        "summary_html = ?, published = ?, published_from = ?, image = ?, source_url = ?, "
                        "position = ?, last_seen_at = ?, updated_at = ? WHERE n = ?",
                        (e.title, int(e.title_is_derived), e.link, e.summary, e.summary_html, _t(e.published),
                         e.published_from, e.image, e.source_url, e.position, _t(e.last_seen_at),
                         _t(e.updated_at), n))
                # in key order: each insert lands next to the last one in the B-tree, not on a random page
                self._db.executemany("INSERT OR IGNORE INTO lsh (bucket, n) VALUES (?, ?)", sorted(lsh_rows))
                self._db.executemany("UPDATE entries SET last_seen_at = ? WHERE n = ?",
                                     [(_t(e.last_seen_at), ns[e.id]) for e in plan.unchanged])
                self._db.executemany(
                    "INSERT INTO entry_topics (topic, n, last_listed_at) VALUES (?, ?, ?) "
                    "ON CONFLICT (topic, n) DO UPDATE SET last_listed_at = excluded.last_listed_at",
                    [(topic_id, ns[e.id], listed) for e in plan.entries])
                # First story to claim a key keeps it, except a story's own link: that address is the
                # story's, even if an older story was once (wrongly) merged under it.
                self._db.executemany("INSERT OR IGNORE INTO keys (key, n) VALUES (?, ?)",
                                     [(k, ns[e.id]) for e in plan.entries for k in sorted(plan.keys.get(e.id, ()))
                                      if k != e.link])
                self._db.executemany("INSERT INTO keys (key, n) VALUES (?, ?) ON CONFLICT (key) "
                                     "DO UPDATE SET n = excluded.n WHERE n != excluded.n",
                                     [(e.link, ns[e.id]) for e in plan.entries if e.link])
        except sqlite3.Error as ex:
            raise StoreError(f"cannot save topic {topic_id!r} to {self.path}: {ex}") from ex

    def _ns(self, ids: Sequence[str]) -> dict[str, int]:
        """Row numbers of stored stories, by id."""
        out: dict[str, int] = {}
        for marks, chunk in _in_chunks(ids):
            out.update(self._db.execute(f"SELECT id, n FROM entries WHERE id IN ({marks})", chunk).fetchall())
        missing = [i for i in ids if i not in out]
        if missing:
            raise StoreError(f"entry {missing[0]} is not in {self.path}")
        return out

    @staticmethod
    def _row(e: Entry) -> tuple:
        return (e.id, e.title, int(e.title_is_derived), e.link, e.summary, e.summary_html, _t(e.published),
                e.published_from, e.image, e.source_url, e.position, _t(e.first_seen_at), _t(e.last_seen_at),
                _t(e.updated_at))

    @_mapped
    def render_key(self, name: str) -> str | None:
        row = self._db.execute("SELECT key FROM rendered WHERE name = ?", (name,)).fetchone()
        return row[0] if row else None

    def set_render_key(self, name: str, key: str) -> None:
        try:
            self._db.execute("INSERT OR REPLACE INTO rendered (name, key) VALUES (?, ?)", (name, key))
        except sqlite3.Error as ex:
            raise state_error(self.path, ex, "write") from ex

    def touch_sources(self, urls: Sequence[str], now: datetime, older_than: datetime) -> None:
        """Sources not read this run (304, failed, backed off) still list what they listed last time:
        keep their stories from being pruned as if they had left the page.

        Only stories last seen before `older_than` are touched (prune's cutoff is further back):
        rewriting every story of every unchanged page on every run was most of a warm refresh."""
        if not urls:
            return
        try:
            with self._transaction():
                self._db.executemany("UPDATE entries SET last_seen_at = ? WHERE source_url = ? AND last_seen_at < ?",
                                     [(_t(now), url, _t(older_than)) for url in urls])
        except sqlite3.Error as ex:
            raise state_error(self.path, ex, "write") from ex

    def prune(self, now: datetime, retention: timedelta) -> int:
        """Delete stories not listed on any page since now - retention. A listed story is never touched,
        so it never gets a new id. Returns how many stories were deleted."""
        cutoff = _t(now - retention)
        try:
            with self._transaction():
                rows = self._db.execute("SELECT n, buckets FROM entries WHERE last_seen_at < ?",
                                        (cutoff,)).fetchall()
                for n, blob in rows:
                    self._db.executemany("DELETE FROM lsh WHERE bucket = ? AND n = ?",
                                         [(b, n) for b in _unpack(blob)])
                    self._db.execute("DELETE FROM entries WHERE n = ?", (n,))  # cascades keys, topics
        except sqlite3.Error as ex:
            raise state_error(self.path, ex, "prune") from ex
        if rows:
            log.info("pruned %d stories not listed since %s", len(rows), cutoff)
        return len(rows)

    def index_bytes(self) -> dict[str, int]:
        """Bytes on disk per table and index (dbstat), for the benchmark."""
        try:
            rows = self._db.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name").fetchall()
        except sqlite3.Error:
            return {}
        return {name: int(size) for name, size in rows}


class _Tx:
    """BEGIN IMMEDIATE ... COMMIT, ROLLBACK on any error (the connection is in autocommit mode).
    Inside a group (Store.begin) it is a savepoint: an error undoes this write only."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        self._nested = False

    def __enter__(self) -> None:
        self._nested = self._db.in_transaction
        self._db.execute("SAVEPOINT feedsvc_write" if self._nested else "BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *_: object) -> None:
        if not self._nested:
            self._db.execute("ROLLBACK" if exc_type else "COMMIT")
            return
        if exc_type:
            self._db.execute("ROLLBACK TO feedsvc_write")
        self._db.execute("RELEASE feedsvc_write")
