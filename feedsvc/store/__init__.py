"""The state: stories (entries), the topics that list them, every key they were seen under, the
near-duplicate index, and what we remember about each source. The only package that imports sqlite3
and psycopg.

Two backends behind one Store: a SQLite file (the default: embedded, nothing to run) or a PostgreSQL
database (`state = "postgresql://..."` or FEEDSVC_STATE), which several processes on several machines
can share. Store.open() picks one; base.py holds every query both run, sqlite.py and postgres.py the
little that differs; migrations.py the schema of each, numbered alike.

Tables (schema version in PRAGMA user_version / the table schema_version, migrations in MIGRATIONS /
PG_MIGRATIONS):
- entries: one row per story; `n` is a compact integer handle used by the other tables, `id` the URI that
  feeds publish. `folded` keeps the comparison text; `buckets` the LSH bucket ids it is indexed under, so
  that replacing or pruning a story removes exactly its index rows without an extra index.
- entry_topics(topic, n, last_listed_at): which feeds list a story.
- keys(key, n): every canonical URL, link and folded-text hash a story was seen under (exact matches).
- lsh(bucket, n): keyed by (bucket, n) (WITHOUT ROWID in SQLite): a near-duplicate check is BANDS index seeks.
- sources: SourceState.
- topic_versions(topic, version, entries): moved by triggers whenever anything a topic's feed shows
  changes, so that a refresh can tell a feed is current without reading it.
- rendered, robots: what each published file was rendered from; robots.txt kept a day.
- articles: what each story's own page added (article = "meta" / "full").
- topic_runs, workers, hosts: the fleet's leases and schedule, the workers alive, each host's next slot.
- dedupe_writes(n): moved by PostgreSQL's triggers on each write to entries, entry_topics, keys or lsh, so
  that a worker plans a topic without the writers' lock and plans again under it only if n moved.
Times are stored as fixed-width UTC ISO strings (they sort as they compare) and read back aware, in
both backends: the same text, so a state copies from one to the other as it is (migrate-state).
"""

from __future__ import annotations

from feedsvc.store.base import NEAR_CANDIDATES, TABLES, Store
from feedsvc.store.migrations import MIGRATIONS, PG_MIGRATIONS
from feedsvc.store.sqlite import CACHE_KIB, state_error

__all__ = ["CACHE_KIB", "MIGRATIONS", "NEAR_CANDIDATES", "PG_MIGRATIONS", "TABLES", "Store", "state_error"]
