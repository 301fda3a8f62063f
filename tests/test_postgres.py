"""The PostgreSQL state (issue 21), on a real server (tests/pgserver.py): writers serialized by the advisory
lock, the CLI end to end with FEEDSVC_STATE, two processes saving the same stories at once, migrate-state
both ways, and errors as one line without the password. The Store's own suite runs on both backends in
test_store.py."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from test_robust_support import SELECTORS, env, feed_ids, feedsvc_argv, story_page, write_config

from feedsvc import dedupe, pipeline
from feedsvc.config import load_config
from feedsvc.errors import StoreError
from feedsvc.model import SourceState
from feedsvc.store import TABLES, Store
from test_store import STORIES, item


def with_password(url: str, password: str = "s3cret-pw") -> str:
    """The same database, with a password in the URL (trust auth ignores it): it must never be shown."""
    return url.replace("postgresql://postgres@", f"postgresql://postgres:{password}@")


def site(folder: Path, topic: str = "t", page: Path | None = None, stories: int = 30) -> Path:
    """A config with one topic reading one local page of `stories` stories."""
    folder.mkdir(parents=True, exist_ok=True)
    if page is None:
        page = folder / "page.html"
        page.write_text(story_page("local", range(1, stories + 1)), encoding="utf-8")
    return write_config(folder / "config.toml", [{"id": topic, "title": topic.upper(),
                                                  "sources": [{"url": str(page), **SELECTORS}]}])


def cli(config: Path, *args: str, state: str | None = None) -> subprocess.CompletedProcess[str]:
    extra = {"FEEDSVC_STATE": state} if state else {}
    return subprocess.run(feedsvc_argv(config, *args), capture_output=True, text=True, cwd=config.parent,
                          env={**env(), **extra}, timeout=120)


def rows(store: Store) -> dict[str, list[tuple]]:
    """Every row of every table, sorted: two states hold the same when these are equal."""
    return {table: sorted(tuple(r) for r in store._exec(f"SELECT {columns} FROM {table}").fetchall())
            for table, columns in TABLES}


# ------------------------------------------------------------------------------------------ the lock

def test_a_writer_waits_for_the_other_and_then_sees_its_stories(pg_url, now):
    """The race the lock closes: B plans the same new story while A's save is not committed yet. B's
    lock_for_write() waits for A's commit, so B's plan finds the story and stores no second copy."""
    with Store.open(pg_url) as a, Store.open(pg_url) as b:
        held = {s: (s.write_lock_holds, s.write_lock_held) for s in (a, b)}  # (opening a store may write)
        a.begin()
        a.lock_for_write()
        a.save(dedupe.plan([item(STORIES[0])], a, "a", now), "a", now)
        assert a.holds_write_lock
        got: dict[str, object] = {}

        def other() -> None:
            b.begin()
            b.lock_for_write()
            got["locked_at"] = time.monotonic()
            plan = dedupe.plan([item(STORIES[0])], b, "b", now)
            b.save(plan, "b", now)
            b.commit()
            got["new"] = len(plan.new)

        thread = threading.Thread(target=other)
        thread.start()
        time.sleep(0.5)
        assert "locked_at" not in got  # B waits while A holds the lock
        committed = time.monotonic()
        a.commit()
        assert not a.holds_write_lock
        # what refresh's log line tells (bench/scale.py reads it): A held it over B's wait, B to its commit
        a_held = a.write_lock_held - held[a][1]
        assert a.write_lock_holds - held[a][0] == 1 and 0.5 <= a_held < 30
        thread.join(30)
        assert b.write_lock_holds - held[b][0] == 1 and b.write_lock_held - held[b][1] < a_held
        assert got["new"] == 0 and float(got["locked_at"]) >= committed  # type: ignore[arg-type]
        assert a.entry_count() == 1 and a.topic_entry_count("a") == a.topic_entry_count("b") == 1


def test_the_lock_is_taken_by_the_first_write_of_a_group_not_by_begin(pg_url, tmp_path):
    """A refresh that is only fetching holds nothing; its first write takes the lock until the commit."""
    with Store.open(pg_url) as a, Store.open(pg_url) as b:
        a.begin()
        assert not a.holds_write_lock
        b.save_source_state(SourceState("https://b.example/"))  # not kept waiting by A's open group
        a.save_source_state(SourceState("https://a.example/"))
        assert a.holds_write_lock
        a.commit()
        assert not a.holds_write_lock
    with Store.open(tmp_path / "s.db") as s:  # SQLite: BEGIN IMMEDIATE holds the file's lock, nothing more
        s.begin()
        s.lock_for_write()
        s.save_source_state(SourceState("https://a.example/"))
        assert not s.holds_write_lock
        s.commit()


def test_a_group_holding_the_lock_is_due(pg_url, tmp_path, now):
    """SaveGroup.due(): a group that only saved source states commits too, releasing the lock other
    workers wait for, rather than hold it while a slow source is fetched."""
    config = load_config(site(tmp_path))
    with Store.open(pg_url) as store:
        group = pipeline.SaveGroup(config, store, workers=None, now=now)  # type: ignore[arg-type]
        group.started -= pipeline.GROUP_SECONDS
        assert not group.due()  # nothing written, nothing held
        store.save_source_state(SourceState("https://a.example/"))
        assert group.due()
        group.publish()
        assert not store.holds_write_lock
        store.commit()


def test_a_topic_with_items_commits_at_once_and_one_without_takes_no_lock(pg_url, tmp_path, now):
    """On PostgreSQL a group is due as soon as it holds the writers' lock (not GROUP_SECONDS later,
    which held it while the process waited for pages), and a topic whose pages brought no items
    (304s) plans nothing and so takes no lock at all."""
    config = load_config(site(tmp_path))
    topic = config.topics[0]
    url = topic.sources[0].url
    with Store.open(pg_url) as store:
        group = pipeline.SaveGroup(config, store, workers=None, now=now)  # type: ignore[arg-type]
        unchanged = pipeline.SourceItems(pipeline.SourceOutcome(url, "not-modified"))
        group.save(topic, {url: unchanged})
        assert not store.holds_write_lock and not group.due()
        fresh = pipeline.SourceItems(pipeline.SourceOutcome(url, "ok"), items=[item(STORIES[1])], fresh=True)
        group.save(topic, {url: fresh})
        assert store.holds_write_lock and group.due()  # at once: no time has passed
        store.commit()


def test_a_topic_is_planned_before_the_lock_and_again_under_it_only_when_a_save_came_between(
        pg_url, tmp_path, now, monkeypatch):
    """SaveGroup.save() on PostgreSQL plans without the writers' lock, which every worker's saves wait
    for, and plans again holding it only when a write the plan read from was committed meanwhile:
    here another worker stores the same story between the plan and the lock, and it is stored once."""
    config = load_config(site(tmp_path))
    topic = config.topics[0]
    url = topic.sources[0].url
    real_plan = pipeline.plan_topic
    with Store.open(pg_url) as store, Store.open(pg_url) as other:
        locked: list[bool] = []  # whether the store held the lock, at each plan

        def plan(*args, **kwargs):  # type: ignore[no-untyped-def]
            locked.append(store.holds_write_lock)
            made = real_plan(*args, **kwargs)
            if len(locked) == 2:  # the second topic's first plan is made: another worker saves its story
                other.begin()
                other.lock_for_write()
                other.save(dedupe.plan([item(STORIES[2])], other, "elsewhere", now), "elsewhere", now)
                other.commit()
            return made

        monkeypatch.setattr(pipeline, "plan_topic", plan)
        monkeypatch.setattr(pipeline, "_PLANS_AHEAD", pipeline.PlansAhead())  # (not what other tests left)

        def fresh(story: str) -> dict[str, pipeline.SourceItems]:
            return {url: pipeline.SourceItems(pipeline.SourceOutcome(url, "ok"), items=[item(story)], fresh=True)}

        group = pipeline.SaveGroup(config, store, workers=None, now=now)  # type: ignore[arg-type]
        group.save(topic, fresh(STORIES[1]))
        assert locked == [False] and group.replans == 0  # nobody wrote: planned once, without the lock
        group.end()
        store.begin()
        group.save(topic, fresh(STORIES[2]))
        assert locked == [False, False, True] and group.replans == 1
        group.end()
        assert store.entry_count() == 2  # the story the other worker saved first is stored once
        assert store.topic_entry_count(topic.id) == 2 and store.topic_entry_count("elsewhere") == 1


def test_interrupt_ends_a_wait_for_the_lock(pg_url):
    with Store.open(pg_url) as a, Store.open(pg_url) as b:
        a.begin()
        a.lock_for_write()
        b.begin()
        threading.Timer(0.3, b.interrupt).start()
        started = time.monotonic()
        with pytest.raises(StoreError, match="interrupted"):
            b.lock_for_write()
        assert time.monotonic() - started < 10
        a.commit()


# ------------------------------------------------------------------------------------- the CLI

def test_refresh_status_and_check_with_FEEDSVC_STATE(pg_url, tmp_path):
    config = site(tmp_path / "site")
    url = with_password(pg_url)
    proc = cli(config, "refresh", state=url)
    assert proc.returncode == 0, proc.stderr
    ids = feed_ids(tmp_path / "site" / "feeds" / "t.atom")
    assert len(ids) == 30 and len(set(ids)) == 30
    assert not (tmp_path / "site" / "state").exists()  # no SQLite file beside it
    with Store.open(pg_url) as store:
        assert store.entry_count() == 30 and [e.id for e in store.entries("t")] == ids
    status = cli(config, "status", "--json", state=url)
    assert status.returncode == 0, status.stderr
    doc = json.loads(status.stdout)
    assert doc["state"] == url.replace("s3cret-pw", "***") and doc["topics"][0]["entries"] == 30
    check = cli(config, "check", state=url)
    assert "postgresql://postgres:***@127.0.0.1" in check.stdout
    for p in (proc, status, check):
        assert "s3cret-pw" not in p.stdout + p.stderr


def test_two_processes_saving_the_same_stories_at_once_store_each_once(pg_url, tmp_path):
    """Two refreshes of two configs (two lock files: nothing but PostgreSQL between them) read one page
    at the same time: every story is stored once, and both feeds list the same ids."""
    page = tmp_path / "page.html"
    page.write_text(story_page("shared", range(1, 121)), encoding="utf-8")
    configs = [site(tmp_path / name, name, page) for name in ("a", "b")]
    procs = [subprocess.Popen(feedsvc_argv(c, "refresh"), cwd=c.parent, env={**env(), "FEEDSVC_STATE": pg_url},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for c in configs]
    for p in procs:
        _, err = p.communicate(timeout=180)
        assert p.returncode == 0, err
    with Store.open(pg_url) as store:
        assert store.entry_count() == 120
        assert store.topic_entry_count("a") == store.topic_entry_count("b") == 120
    a, b = (feed_ids(tmp_path / n / "feeds" / f"{n}.atom") for n in ("a", "b"))
    assert sorted(a) == sorted(b) and len(set(a)) == len(a)


def test_migrate_state_to_postgresql_and_back_keeps_ids_and_feeds(pg_url, tmp_path):
    config = site(tmp_path / "site")
    assert cli(config, "refresh").returncode == 0
    sqlite_state = tmp_path / "site" / "state" / "feedsvc.sqlite"
    feed = tmp_path / "site" / "feeds" / "t.atom"
    ids, written = feed_ids(feed), feed.read_bytes()

    moved = cli(config, "migrate-state", str(sqlite_state), with_password(pg_url))
    assert moved.returncode == 0, moved.stderr
    assert "30 entries" in moved.stdout and "s3cret-pw" not in moved.stdout
    with Store.open(sqlite_state) as src, Store.open(pg_url) as dst:
        assert rows(src) == rows(dst)

    again = cli(config, "refresh", "-v", state=pg_url)
    assert again.returncode == 0, again.stderr
    assert "0 new, 0 updated" in again.stdout and "(feed unchanged)" in again.stdout, again.stdout
    assert feed_ids(feed) == ids and feed.read_bytes() == written

    back = tmp_path / "back.sqlite"
    assert cli(config, "migrate-state", pg_url, str(back)).returncode == 0
    with Store.open(pg_url) as src, Store.open(back) as dst:
        assert rows(src) == rows(dst)
        dst.save(dedupe.plan([item(STORIES[0])], dst, "t", src.entries("t")[0].first_seen_at + timedelta(1)), "t",
                 src.entries("t")[0].first_seen_at + timedelta(1))
        assert dst.entry_count() == 31  # new row numbers go on after the copied ones
    refused = cli(config, "migrate-state", str(sqlite_state), pg_url)  # the target is not empty
    assert refused.returncode == 4 and "already holds a state" in refused.stderr


def test_a_refused_connection_is_one_line_without_the_password(tmp_path):
    import socket

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = site(tmp_path / "site")
    proc = cli(config, "refresh", state=f"postgresql://feedsvc:hunter2@127.0.0.1:{port}/feeds")
    assert proc.returncode == 4
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert lines[0].startswith(f"feedsvc: cannot connect to the PostgreSQL state postgresql://feedsvc:***@127.0.0.1:"
                               f"{port}/feeds: ")
    assert lines[0].endswith("check FEEDSVC_STATE / state") and "hunter2" not in proc.stderr
