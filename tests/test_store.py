"""The Store on both backends, real ones: SQLite files and a PostgreSQL server (tests/pgserver.py).
Schema and migrations, source state, ordering, pruning, persistence, groups; SQLite-only tests (the
file, its pragmas) say so in their name."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta, timezone

import pytest
from pathlib import Path

from feedsvc import dedupe
from feedsvc.errors import StoreError
from feedsvc.model import Item, SourceState
from feedsvc.store import MIGRATIONS, PG_MIGRATIONS, Store

UTC = timezone.utc


@pytest.fixture(params=["sqlite", "postgres"])
def state(request, tmp_path) -> Path | str:
    """Where a test's state is: a new SQLite file, or a new database on the test PostgreSQL server."""
    if request.param == "sqlite":
        return tmp_path / "s.db"
    return request.getfixturevalue("pg_url")


def item(summary: str, position: int = 0, published: datetime | None = None) -> Item:
    folded = dedupe.fold(summary)
    return Item(title=summary[:12], title_is_derived=True, link=None, summary=summary, summary_html=None,
                published=published, published_from="text" if published else None, image=None,
                source_url="https://example.org/p", position=position,
                key="text:" + dedupe.text_key(folded)[7:], folded=folded)


STORIES = [
    "東京株式市場で日経平均株価は大幅に続伸し、半導体関連株に買いが集まった。",
    "気象庁によると、北海道の日本海側を中心に大雪となり交通機関に乱れが出ている。",
    "政府は臨時閣議で、物価高対策を柱とする経済対策を決定した。",
    "横浜市の住宅で火災があり、木造住宅が全焼した。警察が身元の確認を進めている。",
]


def refresh(store: Store, items: list[Item], now: datetime, topic: str = "t") -> dedupe.Plan:
    plan = dedupe.plan(items, store, topic, now)
    store.save(plan, topic, now)
    return plan


def test_sqlite_open_creates_folders_schema_and_wal(tmp_path):
    path = tmp_path / "deep" / "er" / "state.db"
    with Store.open(path) as store:
        assert store.schema_version == len(MIGRATIONS)
    assert path.exists()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_schema WHERE type = 'table'")}
    assert {"entries", "entry_topics", "keys", "lsh", "sources"} <= tables
    conn.close()


def test_reopen_keeps_data_and_does_not_migrate_again(state, now):
    with Store.open(state) as store:
        ids = [e.id for e in refresh(store, [item(t, i) for i, t in enumerate(STORIES)], now).new]
    with Store.open(state) as store:
        assert [e.id for e in store.entries("t")] == ids
        assert not dedupe.plan([item(t, i) for i, t in enumerate(STORIES)], store, "t", now).new


def test_a_newer_schema_is_refused(state):
    with Store.open(state) as store:
        if isinstance(state, Path):
            store._exec(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
        else:
            store._exec("UPDATE schema_version SET version = ?", (len(PG_MIGRATIONS) + 1,))
    with pytest.raises(StoreError, match="newer"):
        Store.open(state)


def test_both_backends_have_the_same_schema_versions(state):
    assert len(PG_MIGRATIONS) == len(MIGRATIONS)
    with Store.open(state) as store:
        assert store.schema_version == len(MIGRATIONS)
        tables = {"entries", "entry_topics", "keys", "lsh", "sources", "rendered", "robots", "topic_versions",
                  "articles"}
        for table in tables:  # each there, and empty
            assert store._exec(f"SELECT count(*) FROM {table}").fetchone()[0] == 0


def test_sqlite_unopenable_path_is_a_store_error(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(StoreError):
        Store.open(tmp_path / "file" / "s.db")


def test_source_state_round_trip(state, now):
    with Store.open(state) as store:
        assert store.source_state("https://a.example/") == SourceState("https://a.example/")
        state = SourceState("https://a.example/", etag='"x"', last_modified="Tue, 20 Jan 2026 03:00:00 GMT",
                            last_success_at=now, last_failure_at=now - timedelta(hours=1),
                            last_error="timeout: read timed out", consecutive_failures=2,
                            next_try_at=now + timedelta(minutes=30), last_item_count=20)
        store.save_source_state(state)
        store.save_source_state(SourceState("https://b.example/"))
        assert store.source_state("https://a.example/") == state
        assert [s.url for s in store.source_states()] == ["https://a.example/", "https://b.example/"]
        got = store.source_state("https://a.example/").last_success_at
        assert got is not None and got.tzinfo is not None and got.utcoffset() == timedelta(0)


def test_source_states_and_icons_of_many_sources_are_read_at_once(state, now):
    """What a refresh reads of its sources in one query: each one's state (a new one for a source never
    saved), and the site icons of those that have one. More URLs than one statement takes, too."""
    a = SourceState("https://a.example/", etag='"x"', last_success_at=now, last_item_count=20,
                    icon="https://a.example/favicon.ico")
    b = SourceState("https://b.example/", last_failure_at=now, last_error="http: 500", consecutive_failures=1,
                    next_try_at=now + timedelta(minutes=5))
    many = [f"https://c.example/{i}" for i in range(1200)]
    with Store.open(state) as store:
        store.save_source_states([a, b, *(SourceState(u, icon=f"{u}/i.png") for u in many[::2])])
        got = store.source_states_of(["https://new.example/", b.url, a.url])
        assert list(got) == ["https://new.example/", b.url, a.url]
        assert got == {"https://new.example/": SourceState("https://new.example/"), a.url: a, b.url: b}
        assert got[a.url] == store.source_state(a.url) and got[b.url] == store.source_state(b.url)
        states = store.source_states_of(many)
        assert [s.url for s in states.values()] == many
        assert [s.icon for s in states.values()] == [f"{u}/i.png" if i % 2 == 0 else None for i, u in enumerate(many)]
        assert store.source_states_of([]) == {}

        icons = store.source_icons([a.url, b.url, "https://new.example/", *many])
        assert icons == {a.url: a.icon, **{u: f"{u}/i.png" for u in many[::2]}}
        assert store.source_icons(set()) == {}


def test_times_come_back_aware_utc_whatever_zone_went_in(state, now):
    tokyo = timezone(timedelta(hours=9))
    published = datetime(2025, 12, 25, 9, 0, tzinfo=tokyo)
    with Store.open(state) as store:
        refresh(store, [item(STORIES[0], published=published)], now.astimezone(tokyo))
        (e,) = store.entries("t")
        assert e.published == published and e.published.utcoffset() == timedelta(0)
        assert e.first_seen_at == now and e.first_seen_at.tzinfo is not None


def test_entries_newest_first_by_date_then_position(state, now):
    with Store.open(state) as store:
        items = [item(STORIES[0], 0, published=now - timedelta(days=3)), item(STORIES[1], 1),
                 item(STORIES[2], 2, published=now - timedelta(days=3)), item(STORIES[3], 3)]
        refresh(store, items, now)
        # undated: first seen now-1s, now-3s; dated ties broken by page position
        assert [e.summary for e in store.entries("t")] == [STORIES[1], STORIES[3], STORIES[0], STORIES[2]]
        assert [e.summary for e in store.entries("t", limit=1)] == [STORIES[1]]
        assert store.topic_entry_count("t") == 4 and store.entries("other") == []


def test_prune_deletes_only_stories_unlisted_beyond_retention(state, now):
    retention = timedelta(days=90)
    with Store.open(state) as store:
        first = refresh(store, [item(t, i) for i, t in enumerate(STORIES)], now - timedelta(days=200))
        old_id = {e.summary: e.id for e in first.new}
        # STORIES[0] is still listed, every day: it is old but must keep its id
        refresh(store, [item(STORIES[0])], now - timedelta(days=1))
        refresh(store, [item(STORIES[1])], now - timedelta(days=80), topic="other")
        assert store.prune(now, retention) == 2
        assert {e.summary for e in store.entries("t")} == {STORIES[0], STORIES[1]}
        again = dedupe.plan([item(STORIES[0])], store, "t", now)
        assert not again.new and again.unchanged[0].id == old_id[STORIES[0]]
        # a pruned story seen again is a new entry; its index rows and keys went with it
        back = dedupe.plan([item(STORIES[2])], store, "t", now)
        assert len(back.new) == 1
        assert store.prune(now, retention) == 0


def test_topic_version_moves_with_what_its_feed_shows_and_only_then(state, now):
    """The version a refresh trusts to skip rendering: any change a reader sees moves it, whoever
    writes; seeing the same stories again does not."""
    with Store.open(state) as store:
        assert store.topic_version("t") == (0, 0)
        refresh(store, [item(t, i) for i, t in enumerate(STORIES[:3])], now)
        v1, listed = store.topic_version("t")
        assert listed == 3 and store.topic_entry_count("t") == 3

        refresh(store, [item(t, i) for i, t in enumerate(STORIES[:3])], now + timedelta(hours=1))  # seen again
        store.touch_sources(["https://example.org/p"], now + timedelta(hours=2), older_than=now + timedelta(days=1))
        assert store.topic_version("t") == (v1, 3)

        # the same story listed by a second topic: the first's feed is unchanged, the second's is new
        refresh(store, [item(STORIES[0])], now + timedelta(hours=3), topic="other")
        assert store.topic_version("t") == (v1, 3) and store.topic_version("other")[1] == 1
        v_other = store.topic_version("other")[0]

        # an edit seen through "t" changes the story in both feeds
        edited = item(STORIES[0] + "関係者が明らかにした。")
        plan = refresh(store, [edited, item(STORIES[1], 1), item(STORIES[2], 2)], now + timedelta(hours=4))
        assert plan.updated, "the edit should be a change of the stored story"
        v2 = store.topic_version("t")[0]
        assert v2 > v1 and store.topic_version("other")[0] > v_other

        # a story pruned (deleted with its listings, by cascade) changes the feeds that listed it
        v_other = store.topic_version("other")[0]
        assert store.prune(now + timedelta(days=400), timedelta(days=90)) == 3
        assert store.topic_version("t")[0] > v2 and store.topic_version("t")[1] == 0
        assert store.topic_version("other") == (store.topic_version("other")[0], 0)
        assert store.topic_version("other")[0] > v_other


def test_topic_versions_of_many_topics_are_read_at_once(state, now):
    with Store.open(state) as store:
        assert store.topic_versions(["t", "other"]) == {"t": (0, 0), "other": (0, 0)}
        refresh(store, [item(t, i) for i, t in enumerate(STORIES[:3])], now)
        refresh(store, [item(STORIES[3])], now, topic="other")
        topics = ["none", "other", "t", *(f"x{i}" for i in range(600))]
        got = store.topic_versions(topics)
        assert list(got) == topics
        assert got["t"] == store.topic_version("t") and got["t"][1] == 3
        assert got["other"] == store.topic_version("other") and got["other"][1] == 1
        assert got["none"] == got["x599"] == (0, 0)
        assert store.topic_versions([]) == {}


def test_touch_sources_keeps_old_stories_of_the_sources_named_and_only_those(state, now):
    """A source not read this run still lists its stories: those last seen before `older_than` are
    seen now; its newer ones, and every story of a source not named, are left as they are. Many
    sources at once (more than one statement takes)."""
    import dataclasses

    def seen(store: Store) -> dict[str, datetime]:
        return {e.summary: e.last_seen_at for t in ("a", "b") for e in store.entries(t)}

    with Store.open(state) as store:
        refresh(store, [dataclasses.replace(item(STORIES[0]), source_url="https://a.example/")], now, "a")
        refresh(store, [dataclasses.replace(item(STORIES[1]), source_url="https://b.example/")], now, "b")
        refresh(store, [dataclasses.replace(item(STORIES[2], 1), source_url="https://a.example/")],
                now + timedelta(days=5), "a")
        later = now + timedelta(days=6)
        others = [f"https://c.example/{i}" for i in range(700)]
        store.touch_sources([*others, "https://a.example/", *others], later, older_than=now + timedelta(days=1))
        assert seen(store) == {STORIES[0]: later, STORIES[1]: now, STORIES[2]: now + timedelta(days=5)}
        store.touch_sources([], later + timedelta(days=1), older_than=later + timedelta(days=1))
        assert seen(store)[STORIES[1]] == now


def test_sqlite_topic_versions_are_built_for_a_store_from_before_them(tmp_path, now):
    path = tmp_path / "old.db"
    with Store.open(path) as store:
        refresh(store, [item(t, i) for i, t in enumerate(STORIES)], now)
    conn = sqlite3.connect(path)
    conn.executescript("DROP TABLE dedupe_writes; DROP TABLE topic_runs; DROP TABLE workers; DROP TABLE hosts;"
                       "DROP TRIGGER article_read; DROP TRIGGER article_reread; DROP TABLE articles;"
                       "DROP TRIGGER topic_listed; DROP TRIGGER topic_unlisted; DROP TRIGGER topic_entry_changed;"
                       "DROP TABLE topic_versions; ALTER TABLE sources DROP COLUMN usual_item_count;"
                       "ALTER TABLE sources DROP COLUMN degraded_runs; PRAGMA user_version = 6;")
    conn.close()
    with Store.open(path) as store:
        assert store.schema_version == len(MIGRATIONS) and store.topic_version("t") == (1, 4)


def test_save_is_one_transaction(state, now):
    with Store.open(state) as store:
        plan = dedupe.plan([item(t, i) for i, t in enumerate(STORIES)], store, "t", now)
        plan.texts.pop(plan.new[-1].id)  # a broken plan: the last entry cannot be written
        with pytest.raises(KeyError):
            store.save(plan, "t", now)
        assert store.entry_count() == 0 and store.topic_entry_count("t") == 0


def test_replaced_text_moves_its_index_rows(state, now):
    with Store.open(state) as store:
        refresh(store, [item(STORIES[0], 0)], now)
        rows_before = store._exec("SELECT count(*) FROM lsh").fetchone()[0]
        refresh(store, [item(STORIES[0] + "円相場の下落も輸出株を支えた。")], now + timedelta(hours=1))
        assert store._exec("SELECT count(*) FROM lsh").fetchone()[0] == rows_before == dedupe.BANDS
        assert store._exec("SELECT count(*) FROM keys").fetchone()[0] == 4  # two texts, two text keys


def test_near_candidates_are_capped_on_templated_pages(state, now):
    """Summaries that differ only by their figures share bands with every stored one: a check stays bounded."""
    from feedsvc.store import NEAR_CANDIDATES

    with Store.open(state) as store:
        for batch in range(4):
            refresh(store, [item(f"東京都で新たに{batch * 50 + i}人の感染を確認したと発表した。前の週の同じ曜日より減った。",
                                 position=i) for i in range(50)], now + timedelta(hours=batch), topic=f"t{batch}")
        assert store.entry_count() == 200  # a figure changed on both sides: 200 different reports
        probe = dedupe.fold("東京都で新たに999人の感染を確認したと発表した。前の週の同じ曜日より減った。")
        [candidates] = store.near_candidates([dedupe.buckets(probe)])
        assert 0 < len(candidates) <= NEAR_CANDIDATES


def test_near_candidates_of_a_batch_are_those_of_each_text_alone(state, now):
    """One query for a page's texts picks, for each, what the per-text SQL ranking picked: the stories
    sharing the most buckets (ties by row number), NEAR_CANDIDATES at most, in row order."""
    from feedsvc.store import NEAR_CANDIDATES

    with Store.open(state) as store:
        for batch in range(3):
            refresh(store, [item(f"東京都で新たに{batch * 50 + i}人の感染を確認したと発表した。前の週の同じ曜日より減った。",
                                 position=i) for i in range(50)], now + timedelta(hours=batch), topic=f"t{batch}")
        refresh(store, [item(s) for s in STORIES], now, topic="other")
        probes = [dedupe.buckets(dedupe.fold(t)) for t in (
            "東京都で新たに999人の感染を確認したと発表した。前の週の同じ曜日より減った。",
            STORIES[2] + "財源の裏付けが焦点となる。", "まったく関係のない文章で、どの物語とも似ていない。", "")]
        batch = store.near_candidates(probes)
        assert batch == [store.near_candidates([b])[0] for b in probes]
        for buckets, got in zip(probes, batch):
            marks = ",".join("?" * len(buckets))
            expected = store._exec(
                "SELECT e.id, e.folded FROM entries e JOIN "
                f"(SELECT n FROM lsh WHERE bucket IN ({marks}) GROUP BY n ORDER BY count(*) DESC, n LIMIT ?) c "
                "ON e.n = c.n ORDER BY e.n", (*buckets, NEAR_CANDIDATES)).fetchall() if buckets else []
            assert got == [tuple(row) for row in expected]
        assert len(batch[0]) == NEAR_CANDIDATES and batch[1] and not batch[2] and not batch[3]


def test_the_plans_text_caches_are_bounded_and_forgotten_on_request(state, now):
    """plan() keeps n-gram sets across plans (a stored story is checked again by later pages), but
    never more than TEXT_CACHE of them; forget_texts(), called when a refresh ends, empties them."""
    dedupe.forget_texts()
    texts = [f"記事{i}の要約です。内容はそれぞれ違います。番号{i}、{i * 7919}件。" for i in range(dedupe.TEXT_CACHE + 60)]
    with Store.open(state) as store:
        refresh(store, [item(t, position=i) for i, t in enumerate(texts)], now)
        refresh(store, [item(t + "追記。") for t in texts[:40]], now, topic="other")
    assert 0 < dedupe.shingles.cache_info().currsize <= dedupe.TEXT_CACHE
    assert 0 < dedupe._figures.cache_info().currsize <= dedupe.TEXT_CACHE
    dedupe.forget_texts()
    assert dedupe.shingles.cache_info().currsize == 0 and dedupe._figures.cache_info().currsize == 0


def test_a_group_commits_its_saves_together(state, now):
    """begin() ... commit(): the saves of several topics become durable at once, and not before."""
    with Store.open(state) as store:
        store.begin()
        for topic, story in (("a", STORIES[0]), ("b", STORIES[1])):
            store.save(dedupe.plan([item(story)], store, topic, now), topic, now)
        assert store.in_group and store.entry_count() == 2  # this connection sees its own writes
        with Store.open(state) as other:
            assert other.entry_count() == 0  # nobody else does yet
            store.commit()
            assert other.entry_count() == 2


def test_a_failed_save_in_a_group_undoes_only_itself(state, now):
    with Store.open(state) as store:
        store.begin()
        store.save(dedupe.plan([item(STORIES[0])], store, "a", now), "a", now)
        broken = dedupe.plan([item(t, i) for i, t in enumerate(STORIES[1:])], store, "b", now)
        broken.texts.pop(broken.new[-1].id)
        with pytest.raises(KeyError):
            store.save(broken, "b", now)
        store.commit()
        assert store.topic_entry_count("a") == 1 and store.topic_entry_count("b") == 0
        assert store.entry_count() == 1


def test_a_group_never_committed_is_lost_whole(state, now):
    """A refresh killed mid-group: the state is as before the group, never half of it."""
    with Store.open(state) as store:
        store.save(dedupe.plan([item(STORIES[0])], store, "a", now), "a", now)
        store.begin()
        store.save(dedupe.plan([item(STORIES[1])], store, "b", now), "b", now)
        store.save_source_state(SourceState("https://b.example/", etag='"v2"'))
    # closed without commit (what a SIGKILL leaves is the same: an uncommitted WAL tail)
    with Store.open(state) as store:
        assert store.entry_count() == 1 and store.topic_entry_count("b") == 0
        assert store.source_state("https://b.example/").etag is None


def test_migrate_state_copies_every_column_of_every_table(state):
    """TABLES is what migrate-state copies: a migration that adds a table or a column must add it there."""
    from feedsvc.store import TABLES

    with Store.open(state) as store:
        if isinstance(state, Path):
            names = [r[0] for r in store._exec("SELECT name FROM sqlite_schema WHERE type = 'table'")]
            columns = {t: {r[1] for r in store._exec(f"PRAGMA table_info({t})")} for t in names}
        else:
            columns = {}
            for table, column in store._exec("SELECT table_name, column_name FROM information_schema.columns "
                                             "WHERE table_schema = current_schema()"):
                columns.setdefault(table, set()).add(column)
            del columns["schema_version"]
        del columns["dedupe_writes"]  # a count of this database's own writes (Store.dedupe_writes), not state
        assert columns == {t: {c.strip() for c in cols.split(",")} for t, cols in TABLES}


def test_migrate_state_copies_one_snapshot_while_a_refresh_writes(state, tmp_path, now):
    """copy_to() reads every table from one snapshot of the source, a row at a time from a server-side
    cursor on PostgreSQL: a story saved while the copy runs is copied whole or not at all (here not:
    it is saved once the stories' rows are copied, before their keys are read)."""
    with Store.open(state) as store:
        refresh(store, [item(t, i) for i, t in enumerate(STORIES[:2])], now)
    with Store.open(state) as source, Store.open(state) as writer, Store.open(tmp_path / "copy.db") as target:
        real = target._execmany
        saved: list[int] = []

        def execmany(sql: str, rows) -> None:  # type: ignore[no-untyped-def]
            real(sql, rows)
            if not saved and sql.startswith("INSERT INTO entries"):
                refresh(writer, [item(STORIES[2], 2)], now)
                saved.append(writer.entry_count())

        target._execmany = execmany  # type: ignore[method-assign]
        copied = source.copy_to(target, batch=1)
        assert saved == [3] and copied["entries"] == 2 and target.entry_count() == 2
        for table in ("keys", "lsh", "entry_topics"):  # each row of the copy belongs to a copied story
            assert target._exec(f"SELECT count(*) FROM {table} WHERE n NOT IN (SELECT n FROM entries)"
                                ).fetchone()[0] == 0, table


def test_topic_runs_of_some_topics_reads_those_only(state, now):
    """Who holds a few topics (a cron refresh naming the ones it left) reads their rows, not all of them."""
    with Store.open(state) as store:
        store.ensure_topics({"a": now, "b": now, "c": now + timedelta(hours=1)})
        assert store.claim_topics("w1", ["a", "b", "c"], now, timedelta(minutes=2), limit=1, due_only=True) == ["a"]
        assert [r.topic for r in store.topic_runs()] == ["a", "b", "c"]
        some = store.topic_runs(["c", "a", "gone"])
        assert [(r.topic, r.lease_holder) for r in some] == [("a", "w1"), ("c", None)]
        assert store.topic_runs([]) == []
