"""Issue 10.1, crash safety: `feedsvc refresh` SIGKILLed at random moments never leaves a broken feed or state.

A multi-topic config (three topics, six sources over HTTP and file:, Atom + RSS + JSON Feed; six
pages, so the refresh parses them in worker processes) is refreshed once. Then 50 trials run on
the same folder, one after the other, as months of bad luck would: before trial i every page grows
by one story (version i), `python -m feedsvc refresh` starts, and a SIGKILL lands after a seeded
random delay, spread over the length of an uninterrupted run (a third anywhere, two thirds after
its first request, where fetch, parse, SQLite and publish happen). After each kill:

- every feed file is whole and parses, and lists exactly the stories of one page version: the one
  it showed before the kill, or version i (never half a run, never going back);
- index.opml and index.html are whole;
- the SQLite state (checked on a copy, so the next run still faces the debris) passes integrity_check;

At the end one normal refresh exits 0, and every feed has exactly the entry ids that an
uninterrupted refresh of a fresh copy of the first state gives (ids are uuid5 of a story's first
key, so they compare across state files). Half the kills hit the whole process group, half only
the parent.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import sqlite3
import subprocess
import threading
import time
from pathlib import Path

import pytest

from test_robust_support import (SELECTORS, check_indexes, check_state, env, feed_ids, feedsvc_argv, run_cli,
                                 sentence, story_page, write_config)

TRIALS = 50
EXTRA_TRIALS = 20
SEED = 20260120
FORMATS = ["atom", "rss", "json"]
FIRST = 20  # stories on each page at the start; version v shows stories 1..FIRST+v


def serve_pages(server, folder: Path, version: int) -> list[dict[str, str]]:
    """Six sources: five HTML pages over HTTP and a plain-text file, each listing stories 1..FIRST+version."""
    numbers = range(1, FIRST + version + 1)
    sources = []
    for name in ("a", "b", "c", "d", "e"):
        url = server.route(f"/{name}", story_page(name, numbers), headers={"Content-Type": "text/html; charset=utf-8"})
        sources.append({"url": url, **SELECTORS})
    lines = [f"2026年1月{n % 28 + 1}日　{sentence('local', n)}" for n in sorted(numbers, reverse=True)]
    (folder / "local.txt").write_text("\n\n".join(lines) + "\n", encoding="utf-8")
    sources.append({"url": "local.txt"})
    return sources


def make_config(folder: Path, sources: list[dict[str, str]]) -> Path:
    topics = [
        {"id": "alpha", "title": "Alpha", "sources": sources[0:2]},
        {"id": "beta", "title": "Beta", "language": "en", "sources": sources[2:4]},
        {"id": "gamma", "title": "ガンマ", "language": "ja", "timezone": "Asia/Tokyo", "sources": sources[4:6]},
    ]
    return write_config(folder / "config.toml", topics, formats=FORMATS, max_entries=500)


def feeds_of(folder: Path) -> dict[str, list[str]]:
    """Every feed file in feeds/ -> its entry ids (asserting each is whole, well-formed, without repeats)."""
    out = {}
    for path in sorted((folder / "feeds").iterdir()):
        if path.name.startswith(".") or path.suffix not in (".atom", ".rss", ".json"):
            continue
        ids = feed_ids(path)
        assert len(ids) == len(set(ids)), f"{path.name} lists an entry twice"
        out[path.name] = ids
    return out


def story_numbers(json_feed: Path) -> dict[str, int]:
    """entry id -> story number, read from a JSON Feed's texts ("A report 12: ...")."""
    out = {}
    for item in json.loads(json_feed.read_bytes())["items"]:
        m = re.search(r"report (\d+):", item.get("content_text") or item.get("summary") or item["title"])
        assert m, item
        out[item["id"]] = int(m.group(1))
    return out


def state_copy_check(folder: Path, scratch: Path) -> int:
    """integrity_check on a copy of state/ with its -wal and -shm, leaving the original's debris in place."""
    shutil.rmtree(scratch, ignore_errors=True)
    shutil.copytree(folder / "state", scratch)
    return check_state(scratch / "feedsvc.sqlite")


def group_gone(pgid: int, timeout: float) -> bool:
    """No live process left in the group (zombies do not count: a container's init may not reap them)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not group_pids(pgid):
            return True
        time.sleep(0.05)
    return False


@pytest.mark.slow
def test_sigkill_at_random_moments_never_breaks_feeds_or_state(http_server, tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    config = make_config(site, serve_pages(http_server, site, version=0))
    first = run_cli(config, "refresh", cwd=site)
    assert first.returncode == 0, first.stderr
    names = sorted(f"{t}.{ext}" for t in ("alpha", "beta", "gamma") for ext in FORMATS)
    assert sorted(feeds_of(site)) == names
    fresh = tmp_path / "fresh"  # the first state, for the reference run at the end
    shutil.copytree(site, fresh)

    # How long an uninterrupted refresh takes here, and when its first request comes (robots.txt):
    # before that the process is starting Python, importing and opening the state.
    robots_at: list[float] = []

    def robots(handler) -> None:
        robots_at.append(time.monotonic())
        body = b"User-agent: *\nAllow: /\n"
        handler.send_response(200)
        handler.send_header("Content-Type", "text/plain")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    http_server.route("/robots.txt", handler=robots)
    timing = tmp_path / "timing"
    shutil.copytree(site, timing)
    # robots.txt is kept for a day in the state: forget it here, so that this run asks for it first
    db = sqlite3.connect(next((timing / "state").glob("*.sqlite")))
    db.execute("DELETE FROM robots")
    db.commit()
    db.close()
    serve_pages(http_server, timing, version=1)
    started = time.monotonic()
    assert run_cli(timing / "config.toml", "refresh", cwd=timing).returncode == 0
    duration = time.monotonic() - started
    first_request = robots_at[-1] - started

    rng = random.Random(SEED)
    version_of = {name: 0 for name in names}  # the page version each feed shows
    seen: dict[str, dict[int, frozenset[str]]] = {name: {} for name in names}  # ids shown per version
    moved = orphaned = trial = 0
    # Past TRIALS, only while no kill has yet landed after a feed was replaced (the machine's speed
    # changed since the run was timed: another job started or ended): the kill time is searched for,
    # later after a kill that came before any feed moved, earlier after one that came once it was over.
    early, late = first_request, 2 * duration
    while trial < TRIALS or (not moved and trial < TRIALS + EXTRA_TRIALS):
        trial += 1
        serve_pages(http_server, site, version=trial)
        if trial > TRIALS:
            delay = rng.uniform(early, late)
        else:
            delay = rng.uniform(0, duration) if trial % 3 == 0 else rng.uniform(first_request, duration)
        proc = subprocess.Popen(feedsvc_argv(config, "refresh"), cwd=site, env=env(), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        time.sleep(delay)
        killed_running = proc.poll() is None  # (not a run that had finished on its own)
        whole_group = trial % 2 == 0
        if whole_group:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass  # the run had finished, its workers too
        else:
            proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        what = f"trial {trial} (killed {'group' if whole_group else 'parent'} at {delay:.3f}s of {duration:.2f}s)"
        if not group_gone(proc.pid, timeout=0.5):  # parse workers orphaned: see the xfail test below
            orphaned += 1
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass  # they were on their way out
            assert group_gone(proc.pid, timeout=10), what

        after = feeds_of(site)
        assert sorted(after) == names, what  # no feed lost
        moved_now = 0
        for name, ids in after.items():
            # a feed of version v lists stories 1..FIRST+v of its two pages: 2 * (FIRST + v) entries
            count = len(ids)
            assert count % 2 == 0, f"{what}: {name} has {count} entries: half a page version"
            version = count // 2 - FIRST
            assert version in (version_of[name], trial), (
                f"{what}: {name} shows page version {version}, neither the one before ({version_of[name]}) "
                f"nor this run's ({trial})")
            if version in seen[name]:
                assert frozenset(ids) == seen[name][version], f"{what}: {name} changed ids for one page version"
            seen[name][version] = frozenset(ids)
            moved_now += killed_running and version != version_of[name]
            version_of[name] = version
        moved += moved_now
        if not killed_running:
            late = delay
        elif not moved_now:
            early = delay
        check_indexes(site / "feeds")
        assert state_copy_check(site, tmp_path / "scratch") >= 3 * 2 * FIRST, what

    final = run_cli(config, "refresh", cwd=site)
    assert final.returncode == 0, final.stderr
    serve_pages(http_server, fresh, version=trial)
    reference = run_cli(fresh / "config.toml", "refresh", cwd=fresh)
    assert reference.returncode == 0, reference.stderr
    expected = feeds_of(fresh)
    # the same ids (order may differ: stories with equal dates sort by when they were first seen)
    assert {k: sorted(v) for k, v in feeds_of(site).items()} == {k: sorted(v) for k, v in expected.items()}
    assert all(len(ids) == 2 * (FIRST + trial) for ids in expected.values())
    for name in names:  # and every version a kill left behind was exactly that version's stories
        if name.endswith(".json"):
            numbers = story_numbers(fresh / "feeds" / name)
            for version, ids in seen[name].items():
                assert ids == {i for i, n in numbers.items() if n <= FIRST + version}, (name, version)
    assert check_state(site / "state" / "feedsvc.sqlite") == check_state(fresh / "state" / "feedsvc.sqlite")
    check_indexes(site / "feeds")
    stale = [p.name for p in (site / "feeds").iterdir() if p.name.startswith(".")]
    print(f"\n{trial} kills over a {duration:.2f}s refresh (first request at {first_request:.2f}s): "
          f"a feed moved to a newer version {moved} times; temp files left by kills: {len(stale)}; "
          f"parent-only kills that left parse workers behind: {orphaned}")
    assert moved, "no kill landed after a feed was replaced: the kill times do not cover the run"


def test_a_refresh_killed_alone_leaves_no_parse_worker_behind(http_server, tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    config = make_config(site, serve_pages(http_server, site, version=0))
    parsing = threading.Event()

    def slow_page(handler) -> None:  # the sixth page comes late: the refresh has workers parsing by then
        parsing.wait(10)
        body = story_page("e", range(1, FIRST + 1)).encode()
        handler.send_response(200)
        handler.send_header("Content-Type", "text/html; charset=utf-8")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    http_server.route("/e", handler=slow_page)
    proc = subprocess.Popen(feedsvc_argv(config, "refresh"), cwd=site, env=env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while len(group_pids(proc.pid)) < 3 and time.monotonic() < deadline:  # refresh + forkserver + worker
            time.sleep(0.05)
        assert len(group_pids(proc.pid)) >= 3, "the refresh started no parse worker"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        assert group_gone(proc.pid, timeout=10), f"still running: {group_pids(proc.pid)}"
    finally:
        parsing.set()
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def group_pids(pgid: int) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                pids.append(int(entry))
    return pids
