"""The schema, as migrations: MIGRATIONS for SQLite, PG_MIGRATIONS for PostgreSQL, numbered alike.

A store at schema version N has run the first N of its list. Plain strings: importing this module
loads no database driver.
"""

from __future__ import annotations

# 8, the same in both dialects
USUAL_COUNTS = """
    ALTER TABLE sources ADD COLUMN usual_item_count INTEGER;
    ALTER TABLE sources ADD COLUMN degraded_runs INTEGER NOT NULL DEFAULT 0;
    UPDATE sources SET usual_item_count = last_item_count;
"""

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
    USUAL_COUNTS,
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
    # 10: a fleet of workers sharing one state (used with PostgreSQL, kept by both): each topic's next due
    # time and lease, the workers alive, and each host's next request slot (its gap, fleet-wide)
    """
    CREATE TABLE topic_runs (
        topic TEXT PRIMARY KEY,
        next_due_at TEXT NOT NULL,
        lease_holder TEXT,
        lease_expires_at TEXT,
        last_started_at TEXT,
        last_finished_at TEXT,
        last_worker TEXT
    ) WITHOUT ROWID;
    CREATE INDEX topic_runs_due ON topic_runs(next_due_at);
    CREATE TABLE workers (
        name TEXT PRIMARY KEY,
        host TEXT NOT NULL,
        pid INTEGER NOT NULL,
        started_at TEXT NOT NULL,
        seen_at TEXT NOT NULL
    ) WITHOUT ROWID;
    CREATE TABLE hosts (
        host TEXT PRIMARY KEY,
        next_at REAL NOT NULL
    ) WITHOUT ROWID;
    """,
    # 11: a count of the writes that dedupe's plans read from (stories, their keys, LSH buckets and
    # topics). PostgreSQL's triggers move it, so that a worker may plan a topic without the writers'
    # lock and then, holding it, see whether anything was saved meanwhile. SQLite keeps the table for
    # the same schema but never moves it: its one writer holds the file's lock from a group's start.
    """
    CREATE TABLE dedupe_writes (n INTEGER NOT NULL);
    INSERT INTO dedupe_writes VALUES (0);
    """,
]


# The same schema for PostgreSQL, one migration for each of MIGRATIONS (a store at version N has the
# same tables, whichever the backend). The differences, each for a reason:
# - BIGINT for row numbers and LSH buckets (64-bit in SQLite's INTEGER), BYTEA for BLOB;
# - COLLATE "C" on the text that is sorted or compared (ids, urls, topics, keys, times): the
#   database's locale would otherwise order them unlike SQLite, and feeds would list ties differently;
# - new row numbers come from a sequence (several workers), not max(n) + 1 under SQLite's single writer;
# - triggers call plpgsql functions; WITHOUT ROWID has no equivalent (every table is a heap).
# The version itself is in the one-row table schema_version (SQLite: PRAGMA user_version).
PG_MIGRATIONS: list[str] = [
    # 1: the first schema
    """
    CREATE TABLE entries (
        n BIGINT PRIMARY KEY,
        id TEXT COLLATE "C" NOT NULL UNIQUE,
        title TEXT NOT NULL,
        title_is_derived INTEGER NOT NULL,
        link TEXT,
        summary TEXT NOT NULL,
        summary_html TEXT,
        published TEXT COLLATE "C",
        published_from TEXT,
        image TEXT,
        source_url TEXT COLLATE "C" NOT NULL,
        position INTEGER NOT NULL,
        first_seen_at TEXT COLLATE "C" NOT NULL,
        last_seen_at TEXT COLLATE "C" NOT NULL,
        updated_at TEXT COLLATE "C" NOT NULL,
        folded TEXT NOT NULL,
        buckets BYTEA NOT NULL
    );
    CREATE SEQUENCE entries_n OWNED BY entries.n;
    CREATE INDEX entries_last_seen ON entries(last_seen_at);
    CREATE TABLE entry_topics (
        topic TEXT COLLATE "C" NOT NULL,
        n BIGINT NOT NULL REFERENCES entries(n) ON DELETE CASCADE,
        last_listed_at TEXT COLLATE "C" NOT NULL,
        PRIMARY KEY (topic, n)
    );
    CREATE INDEX entry_topics_n ON entry_topics(n);
    CREATE TABLE keys (
        key TEXT COLLATE "C" PRIMARY KEY,
        n BIGINT NOT NULL REFERENCES entries(n) ON DELETE CASCADE
    );
    CREATE INDEX keys_n ON keys(n);
    CREATE TABLE lsh (
        bucket BIGINT NOT NULL,
        n BIGINT NOT NULL,
        PRIMARY KEY (bucket, n)
    );
    CREATE TABLE sources (
        url TEXT COLLATE "C" PRIMARY KEY,
        etag TEXT,
        last_modified TEXT,
        last_success_at TEXT COLLATE "C",
        last_failure_at TEXT COLLATE "C",
        last_error TEXT,
        consecutive_failures INTEGER NOT NULL DEFAULT 0,
        next_try_at TEXT COLLATE "C",
        last_item_count INTEGER
    );
    """,
    # 2
    """
    CREATE INDEX entries_source ON entries(source_url);
    """,
    # 3
    """
    ALTER TABLE sources ADD COLUMN icon TEXT;
    """,
    # 4
    """
    CREATE TABLE rendered (name TEXT COLLATE "C" PRIMARY KEY, key TEXT NOT NULL);
    """,
    # 5
    """
    CREATE TABLE robots (
        origin TEXT COLLATE "C" PRIMARY KEY,
        status INTEGER NOT NULL,
        body TEXT NOT NULL,
        fetched_at TEXT COLLATE "C" NOT NULL
    );
    """,
    # 6
    """
    DROP INDEX entries_source;
    CREATE INDEX entries_source_seen ON entries(source_url, last_seen_at);
    """,
    # 7: topic versions, moved by triggers as in SQLite (IS DISTINCT FROM is SQLite's IS NOT)
    """
    CREATE TABLE topic_versions (
        topic TEXT COLLATE "C" PRIMARY KEY,
        version BIGINT NOT NULL,
        entries BIGINT NOT NULL
    );
    INSERT INTO topic_versions SELECT topic, 1, count(*) FROM entry_topics GROUP BY topic;
    CREATE FUNCTION topic_listed() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO topic_versions (topic, version, entries) VALUES (NEW.topic, 1, 1)
        ON CONFLICT (topic) DO UPDATE SET version = topic_versions.version + 1,
                                          entries = topic_versions.entries + 1;
        RETURN NULL;
    END $$;
    CREATE TRIGGER topic_listed AFTER INSERT ON entry_topics FOR EACH ROW EXECUTE FUNCTION topic_listed();
    CREATE FUNCTION topic_unlisted() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE topic_versions SET version = version + 1, entries = entries - 1 WHERE topic = OLD.topic;
        RETURN NULL;
    END $$;
    CREATE TRIGGER topic_unlisted AFTER DELETE ON entry_topics FOR EACH ROW EXECUTE FUNCTION topic_unlisted();
    CREATE FUNCTION story_changed() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE topic_versions SET version = version + 1
        WHERE topic IN (SELECT topic FROM entry_topics WHERE n = NEW.n);
        RETURN NULL;
    END $$;
    CREATE TRIGGER topic_entry_changed AFTER UPDATE ON entries FOR EACH ROW
    WHEN (OLD.id IS DISTINCT FROM NEW.id OR OLD.title IS DISTINCT FROM NEW.title
        OR OLD.title_is_derived IS DISTINCT FROM NEW.title_is_derived OR OLD.link IS DISTINCT FROM NEW.link
        OR OLD.summary IS DISTINCT FROM NEW.summary OR OLD.summary_html IS DISTINCT FROM NEW.summary_html
        OR OLD.published IS DISTINCT FROM NEW.published OR OLD.published_from IS DISTINCT FROM NEW.published_from
        OR OLD.image IS DISTINCT FROM NEW.image OR OLD.source_url IS DISTINCT FROM NEW.source_url
        OR OLD.position IS DISTINCT FROM NEW.position OR OLD.first_seen_at IS DISTINCT FROM NEW.first_seen_at
        OR OLD.updated_at IS DISTINCT FROM NEW.updated_at)
    EXECUTE FUNCTION story_changed();
    """,
    # 8
    USUAL_COUNTS,
    # 9
    """
    CREATE TABLE articles (
        n BIGINT PRIMARY KEY REFERENCES entries(n) ON DELETE CASCADE,
        url TEXT NOT NULL,
        status TEXT NOT NULL,
        fetched_at TEXT COLLATE "C" NOT NULL,
        failures INTEGER NOT NULL DEFAULT 0,
        next_try_at TEXT COLLATE "C",
        error TEXT,
        published TEXT,
        precise INTEGER NOT NULL DEFAULT 0,
        modified TEXT,
        image TEXT,
        canonical TEXT,
        content_html TEXT
    );
    CREATE TRIGGER article_read AFTER INSERT ON articles FOR EACH ROW WHEN (NEW.status = 'ok')
    EXECUTE FUNCTION story_changed();
    CREATE TRIGGER article_reread AFTER UPDATE ON articles FOR EACH ROW WHEN (NEW.status = 'ok')
    EXECUTE FUNCTION story_changed();
    """,
    # 10
    """
    CREATE TABLE topic_runs (
        topic TEXT COLLATE "C" PRIMARY KEY,
        next_due_at TEXT COLLATE "C" NOT NULL,
        lease_holder TEXT,
        lease_expires_at TEXT COLLATE "C",
        last_started_at TEXT COLLATE "C",
        last_finished_at TEXT COLLATE "C",
        last_worker TEXT
    );
    CREATE INDEX topic_runs_due ON topic_runs(next_due_at);
    CREATE TABLE workers (
        name TEXT PRIMARY KEY,
        host TEXT NOT NULL,
        pid BIGINT NOT NULL,
        started_at TEXT COLLATE "C" NOT NULL,
        seen_at TEXT COLLATE "C" NOT NULL
    );
    CREATE TABLE hosts (
        host TEXT PRIMARY KEY,
        next_at DOUBLE PRECISION NOT NULL
    );
    """,
    # 11: one statement trigger a table, so that no write can forget it (a statement touching no row
    # moves it too: a plan is then made again, which is only slower)
    """
    CREATE TABLE dedupe_writes (n BIGINT NOT NULL);
    INSERT INTO dedupe_writes VALUES (0);
    CREATE FUNCTION dedupe_written() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE dedupe_writes SET n = n + 1;
        RETURN NULL;
    END $$;
    CREATE TRIGGER entries_written AFTER INSERT OR UPDATE OR DELETE ON entries
    FOR EACH STATEMENT EXECUTE FUNCTION dedupe_written();
    CREATE TRIGGER keys_written AFTER INSERT OR UPDATE OR DELETE ON keys
    FOR EACH STATEMENT EXECUTE FUNCTION dedupe_written();
    CREATE TRIGGER lsh_written AFTER INSERT OR UPDATE OR DELETE ON lsh
    FOR EACH STATEMENT EXECUTE FUNCTION dedupe_written();
    CREATE TRIGGER entry_topics_written AFTER INSERT OR UPDATE OR DELETE ON entry_topics
    FOR EACH STATEMENT EXECUTE FUNCTION dedupe_written();
    """,
]
