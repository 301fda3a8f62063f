"""The SQLite backend: one file, one writer at a time (BEGIN IMMEDIATE), WAL for readers."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from feedsvc.errors import StoreError
from feedsvc.store.base import Store
from feedsvc.store.migrations import MIGRATIONS

log = logging.getLogger("feedsvc.store")

CACHE_KIB = 32 * 1024  # SQLite page cache (the default is 2 MiB)


def _statements(script: str) -> Iterator[str]:
    """The statements of an SQL script, each whole (a trigger's body has semicolons of its own)."""
    statement = ""
    for piece in script.split(";"):
        statement += piece + ";"
        if sqlite3.complete_statement(statement):
            if statement.strip(" \n;"):
                yield statement
            statement = ""


def state_error(path: Path | str, ex: BaseException, doing: str = "read") -> StoreError:
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


class SQLiteStore(Store):
    """One SQLite file."""

    ERRORS = (sqlite3.Error,)
    BEGIN = "BEGIN IMMEDIATE"  # the file's write lock at once: one writer, and it plans what it saves
    TOPICS_OF_STORY = ("(SELECT group_concat(topic, char(31)) FROM (SELECT topic FROM entry_topics t "
                       "WHERE t.n = e.n ORDER BY topic))")

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._db = conn
        self.path = path
        self.name = str(path)
        # the connection's own methods: no translation to do, and a warm refresh makes many calls
        self._exec = conn.execute  # type: ignore[assignment]

    def _execmany(self, sql: str, rows: Iterable[Sequence[object]]) -> None:
        self._db.executemany(sql, rows)

    @classmethod
    def connect(cls, path: Path) -> SQLiteStore:
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

    def _error(self, ex: BaseException, doing: str = "read") -> StoreError:
        return state_error(self.path, ex, doing)

    def _new_row_numbers(self, count: int) -> list[int]:
        # The write lock is held (BEGIN IMMEDIATE): nobody else can take these meanwhile.
        first = int(self._db.execute("SELECT coalesce(max(n), 0) + 1 FROM entries").fetchone()[0])
        return list(range(first, first + count))

    @property
    def schema_version(self) -> int:
        try:
            return int(self._db.execute("PRAGMA user_version").fetchone()[0])
        except sqlite3.Error as ex:
            raise self._error(ex) from ex

    @property
    def in_group(self) -> bool:
        return self._db.in_transaction

    def verify(self) -> None:
        """Read every page (PRAGMA quick_check): a damaged database raises the one-line StoreError.
        `status` calls it: damage in pages a status does not read must not look healthy."""
        try:
            problems = [row[0] for row in self._db.execute("PRAGMA quick_check(5)")]
        except sqlite3.Error as ex:
            raise self._error(ex) from ex
        if problems != ["ok"]:
            raise self._error(sqlite3.DatabaseError("database disk image is malformed: " + "; ".join(problems)))

    def index_bytes(self) -> dict[str, int]:
        """Bytes on disk per table and index (dbstat), for the benchmark."""
        try:
            rows: Any = self._db.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name").fetchall()
        except sqlite3.Error:
            return {}
        return {name: int(size) for name, size in rows}

    def interrupt(self) -> None:
        self._db.interrupt()
