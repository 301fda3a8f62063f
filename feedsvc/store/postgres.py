"""The PostgreSQL backend: one database that several feedsvc processes, on several machines, share.

The connection is in autocommit mode and transactions are explicit (BEGIN/COMMIT/SAVEPOINT), as on
SQLite. SQLite lets one writer in at a time; here every write takes one transaction-scoped advisory
lock first (lock_for_write), so writers are serialized the same way, but a refresh that is only
fetching pages holds nothing. Reads run at READ COMMITTED: after taking the lock, a writer sees what
the previous writer committed, so dedupe never plans a story as new that another worker just saved.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import psycopg
from psycopg import pq

from feedsvc.config import STATE_ENV, redact_url
from feedsvc.errors import StoreError
from feedsvc.store.base import Store
from feedsvc.store.migrations import PG_MIGRATIONS

log = logging.getLogger("feedsvc.store")

# The advisory lock every writer of a feedsvc database takes ("feedsvc" in ASCII). Advisory locks are
# per database: two feedsvc databases on one server do not wait for each other.
WRITE_LOCK = 0x66656564737663
CONNECT_TIMEOUT = 10  # seconds, unless the URL says otherwise: a wrong host fails in one line, soon


@functools.lru_cache(maxsize=1024)
def _pg(sql: str) -> str:
    """The shared SQL's `?` placeholders as psycopg's `%s` (a literal % doubled)."""
    return sql.replace("%", "%%").replace("?", "%s")


def _password(url: str) -> str | None:
    try:
        return psycopg.conninfo.conninfo_to_dict(url).get("password")  # type: ignore[return-value]
    except psycopg.Error:
        return None


def _one_line(ex: BaseException, password: str | None) -> str:
    """libpq's messages run over several lines (a DETAIL, a HINT): one line, with no password in it."""
    text = "; ".join(line.strip() for line in str(ex).splitlines() if line.strip()) or type(ex).__name__
    return text.replace(password, "***") if password else text


def pg_state_error(name: str, ex: BaseException, doing: str = "read", password: str | None = None) -> StoreError:
    """One line for a failing PostgreSQL state: which database (no password), what is wrong, what to do."""
    text = _one_line(ex, password)
    state = getattr(ex, "sqlstate", None) or ""
    if state == "57014":
        return StoreError(f"the {doing} of the PostgreSQL state {name} was interrupted ({text})")
    if state.startswith("08") or (isinstance(ex, psycopg.OperationalError) and not state):
        return StoreError(f"lost the connection to the PostgreSQL state {name} ({text}): check that the "
                          "server is up; the next refresh starts again from what was committed")
    if state == "53100":
        return StoreError(f"cannot write the PostgreSQL state {name}: the server's disk is full ({text})")
    if state == "42501":
        return StoreError(f"the PostgreSQL state {name} refused this role ({text}): the role feedsvc connects as "
                          "must own the database (CREATE DATABASE ... OWNER ...)")
    return StoreError(f"cannot {doing} the PostgreSQL state {name}: {text}")


def _arrays(rows: Sequence[Sequence[object]], types: str = "") -> str:
    """`?::text[], ?::bigint[], …`: the array parameters of rows' columns, of `types` or after the first row."""
    if types:
        return ", ".join(f"?::{t.strip()}[]" for t in types.split(","))
    return ", ".join(f"?::{_ARRAY_TYPES[type(value)]}[]" for value in rows[0])


_ARRAY_TYPES = {str: "text", int: "bigint"}


class PostgresStore(Store):
    """One PostgreSQL database."""

    ERRORS = (psycopg.Error,)
    BEGIN = "BEGIN"  # READ COMMITTED; the write lock is taken by the first write, not here
    TOPICS_OF_STORY = "(SELECT string_agg(topic, chr(31) ORDER BY topic) FROM entry_topics t WHERE t.n = e.n)"
    ANY = "= ANY(?)"
    SNAPSHOT = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
    SKIP_LOCKED = " FOR UPDATE SKIP LOCKED"  # two workers claiming at once never take one topic

    def __init__(self, conn: psycopg.Connection[Any], url: str) -> None:
        self._db = conn
        self.url = url
        self.name = redact_url(url)
        self._password = _password(url)
        self._locked = False  # WRITE_LOCK is held by the open transaction
        self._locked_at = 0.0
        self.write_lock_held = 0.0  # seconds WRITE_LOCK was held, over write_lock_holds transactions
        self.write_lock_holds = 0
        self._pacer: psycopg.Connection[Any] | None = None  # reserve_host's own connection (fetch threads)
        self._pacer_lock = threading.Lock()

    @classmethod
    def connect(cls, url: str) -> PostgresStore:
        password = _password(url)
        options: dict[str, Any] = {}
        if "connect_timeout" not in url:
            options["connect_timeout"] = CONNECT_TIMEOUT
        if "application_name" not in url:
            options["application_name"] = "feedsvc"
        try:
            conn = psycopg.connect(url, autocommit=True, **options)
        except psycopg.Error as ex:
            raise StoreError(f"cannot connect to the PostgreSQL state {redact_url(url)}: {_one_line(ex, password)}: "
                             f"check {STATE_ENV} / state") from ex
        store = cls(conn, url)
        try:
            store._migrate()
        except psycopg.Error as ex:
            conn.close()
            raise store._error(ex, "open") from ex
        except BaseException:
            conn.close()
            raise
        return store

    def _exec(self, sql: str, args: Sequence[object] = ()) -> Any:
        return self._db.execute(_pg(sql), args)

    # One statement for a save's rows, each column one array parameter: a changed page's ~300 key, LSH,
    # listing and last-seen rows, executed one by one (even pipelined), were most of the time a save
    # holds the writers' lock.
    def _insert_rows(self, table: str, columns: str, rows: Sequence[Sequence[object]], conflict: str = "",
                     types: str = "") -> None:
        if rows:
            self._exec(f"INSERT INTO {table} ({columns}) SELECT * FROM unnest({_arrays(rows, types)}) {conflict}",
                       [list(column) for column in zip(*rows)])

    def _update_rows(self, table: str, column: str, key: str, rows: Sequence[tuple[object, object]], *,
                     sets: str = "", sets_args: Sequence[object] = (), where: str = "",
                     where_args: Sequence[object] = ()) -> None:
        if rows:
            self._exec(f"UPDATE {table} SET {column} = v.value{sets} FROM unnest({_arrays(rows)}) AS v(value, key) "
                       f"WHERE {table}.{key} = v.key{where}", [*sets_args, *(list(c) for c in zip(*rows)), *where_args])

    def _chunks(self, sql: str, size: int) -> Iterator[list[Any]]:
        """Through a server-side cursor: a client-side one holds the whole result in memory at once
        (migrate-state of a state with millions of stories)."""
        with self._db.cursor(name="feedsvc_rows") as cursor:
            cursor.itersize = size
            cursor.execute(_pg(sql))
            while chunk := cursor.fetchmany(size):
                yield chunk

    def _in(self, values: Iterable[object]) -> Iterator[tuple[str, list[object]]]:
        """The whole list as one array parameter: an IN list of a thousand LSH buckets was a thousand
        parameters to adapt and bind, and the look-up most of a plan's time under the writers' lock."""
        values = list(values)
        if values:
            yield "= ANY(?)", [values]

    def _execmany(self, sql: str, rows: Iterable[Sequence[object]]) -> None:
        with self._db.cursor() as cur:
            cur.executemany(_pg(sql), rows)  # pipelined by psycopg: one round trip for the batch

    def _version(self) -> int:
        if self._db.execute("SELECT to_regclass('schema_version')").fetchone()[0] is None:
            return 0
        row = self._db.execute("SELECT version FROM schema_version").fetchone()
        return int(row[0]) if row else 0

    def _migrate(self) -> None:
        if self._version() == len(PG_MIGRATIONS):
            return  # the usual case: no lock taken to find it out
        with self._transaction():  # under the write lock: workers starting together migrate once
            self._db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            version = self._version()
            if version > len(PG_MIGRATIONS):
                raise StoreError(f"{self.name} has schema version {version}, newer than this feedsvc knows "
                                 f"({len(PG_MIGRATIONS)}): upgrade feedsvc")
            if not self._db.execute("SELECT 1 FROM schema_version").fetchone():
                self._db.execute("INSERT INTO schema_version VALUES (0)")
            for number in range(version + 1, len(PG_MIGRATIONS) + 1):
                log.info("migrating %s to schema version %d", self.name, number)
                self._db.execute(PG_MIGRATIONS[number - 1])  # no parameters: the whole script at once
                self._db.execute("UPDATE schema_version SET version = %s", (number,))

    def _error(self, ex: BaseException, doing: str = "read") -> StoreError:
        return pg_state_error(self.name, ex, doing, self._password)

    def _reason(self, ex: BaseException) -> str:
        return _one_line(ex, self._password)

    def _new_row_numbers(self, count: int) -> list[int]:
        if not count:
            return []
        return [r[0] for r in self._db.execute("SELECT nextval('entries_n') FROM generate_series(1, %s)", (count,))]

    def _after_copy(self) -> None:
        self._db.execute("SELECT setval('entries_n', coalesce(max(n), 0) + 1, false) FROM entries")

    @property
    def schema_version(self) -> int:
        try:
            return self._version()
        except psycopg.Error as ex:
            raise self._error(ex) from ex

    @property
    def in_group(self) -> bool:
        return self._db.info.transaction_status != pq.TransactionStatus.IDLE

    @property
    def broken(self) -> bool:
        return bool(self._db.broken or self._db.closed)

    def lock_for_write(self) -> None:
        if self._locked:
            return
        try:
            self._db.execute("SELECT pg_advisory_xact_lock(%s)", (WRITE_LOCK,))
        except psycopg.Error as ex:
            raise self._error(ex, "lock") from ex
        self._locked = self.in_group  # outside a transaction it was released as soon as it was taken
        self._locked_at = time.monotonic()

    def dedupe_writes(self) -> int | None:
        try:
            return int(self._db.execute("SELECT n FROM dedupe_writes").fetchone()[0])
        except psycopg.Error as ex:
            raise self._error(ex) from ex

    @property
    def holds_write_lock(self) -> bool:
        return self._locked

    def _end(self, how: str) -> None:
        held, self._locked = self._locked, False
        try:
            self._db.execute(how)
        finally:
            if held:  # (counted to the end of COMMIT: the lock goes with it)
                self.write_lock_held += time.monotonic() - self._locked_at
                self.write_lock_holds += 1

    def verify(self) -> None:
        """PostgreSQL checks its own pages; here, that the state answers and its schema is there."""
        try:
            self._db.execute("SELECT count(*) FROM schema_version").fetchone()
        except psycopg.Error as ex:
            raise self._error(ex) from ex

    def index_bytes(self) -> dict[str, int]:
        """Bytes per table (with its TOAST) and per index, for the benchmark."""
        try:
            rows = self._db.execute(
                "SELECT c.relname, CASE c.relkind WHEN 'r' THEN pg_table_size(c.oid) ELSE pg_relation_size(c.oid) END "
                "FROM pg_class c WHERE c.relnamespace = to_regnamespace(current_schema()) "
                "AND c.relkind IN ('r', 'i')").fetchall()
        except psycopg.Error:
            return {}
        return {name: int(size) for name, size in rows}

    def interrupt(self) -> None:
        cancel = getattr(self._db, "cancel_safe", None) or self._db.cancel  # cancel_safe: psycopg 3.2+
        cancel()

    def _list(self, values: Sequence[str]) -> object:
        return list(values)  # psycopg sends a list as an array

    def reserve_host(self, host: str, gap: float) -> float:
        """Book the host's next request slot for the whole fleet, `gap` seconds after the one before it,
        and return how long to wait for it. One statement (the row lock lasts only for it), timed by
        the server's clock, so workers on machines whose clocks differ still keep the gap."""
        with self._pacer_lock:  # called from the fetch threads: a connection of its own, one at a time
            try:
                if self._pacer is None:
                    self._pacer = psycopg.connect(self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT,
                                                  application_name="feedsvc pacing")
                row = self._pacer.execute(
                    "INSERT INTO hosts AS h (host, next_at) VALUES (%(host)s, extract(epoch FROM clock_timestamp())"
                    "::float8 + %(gap)s) ON CONFLICT (host) DO UPDATE SET next_at = greatest(h.next_at, "
                    "extract(epoch FROM clock_timestamp())::float8) + %(gap)s "
                    "RETURNING h.next_at - %(gap)s - extract(epoch FROM clock_timestamp())::float8",
                    {"host": host, "gap": float(gap)}).fetchone()
            except psycopg.Error as ex:  # the page is still fetched, paced by this process alone
                log.warning("cannot book a request slot for %s in %s: %s", host, self.name, self._reason(ex))
                return 0.0
        return max(0.0, float(row[0])) if row else 0.0

    def close(self) -> None:
        if self._pacer is not None:
            self._pacer.close()
        self._db.close()
