"""Never lose an item (issue 17): pages of my own, through `feedsvc refresh` with a real loopback server,
feeds read back with feedparser.

1. links first: different links on one page are different entries, whatever their text; text joins a
   story that moved, and the same story on two sources;
2. boilerplate is no evidence: a shared teaser or routine title neither merges cards nor lets a stored
   key catch a later card;
3. developing stories keep their id (same link, new text; figures updated in place, without links);
4. a summary that begins with the headline is kept;
5. state lost is not items lost; and merges are shown (-v -v, --dry-run).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import feedparser
import pytest

from atomcheck import assert_valid_atom
from conftest import conditional

ROOT = Path(__file__).resolve().parent.parent
HTML = {"Content-Type": "text/html; charset=utf-8"}
TEXT = {"Content-Type": "text/plain; charset=utf-8"}
SELECTORS = 'item = "article"\ntitle = "h2"\nlink = "h2 a@href"\nsummary = "p.teaser"\n'


def cards(rows: list[tuple[str, str, str]]) -> str:
    """A listing page: (href, headline, teaser) per card."""
    body = "".join(f'<article><h2><a href="{href}">{title}</a></h2><p class="teaser">{teaser}</p></article>\n'
                   for href, title, teaser in rows)
    return f"<!doctype html><html><head><title>News</title></head><body><main>{body}</main></body></html>"


def setup(tmp_path: Path, sources: list[str], *, selectors: bool = True, max_entries: int = 100) -> None:
    src = "".join(f'[[topics.sources]]\nurl = "{u}"\n' + (SELECTORS if selectors and not u.endswith(".txt") else "")
                  for u in sources)
    (tmp_path / "config.toml").write_text(
        f'[feedsvc]\nhost_delay = "0s"\nmax_entries = {max_entries}\n\n'
        f'[[topics]]\nid = "news"\ntitle = "News"\ntimezone = "Asia/Tokyo"\n{src}', encoding="utf-8")


def refresh(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "feedsvc", "refresh", *args], capture_output=True, text=True,
                          cwd=tmp_path, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc


def feed(tmp_path: Path) -> feedparser.FeedParserDict:
    data = (tmp_path / "feeds" / "news.atom").read_bytes()
    assert_valid_atom(data)
    parsed = feedparser.parse(data)
    assert parsed.bozo == 0
    return parsed


def ids_by_link(tmp_path: Path) -> dict[str, str]:
    return {e.link: e.id for e in feed(tmp_path).entries}


# ----------------------------------------------------------------------------------- 1. links first


def test_same_title_every_month_and_read_more_cards_keep_every_item(http_server, tmp_path: Path) -> None:
    rows = [(f"/news/{m}", "Monthly report on the state of the network", f"Report for month {m}.")
            for m in range(1, 9)]
    rows += [(f"/card/{n}", f"Story number {n} of the week about something else", "Read more…") for n in range(8)]
    rows += [(f"/column/{n}", f"Column {n}: a new angle", "A weekly column on parenting, health and the planet, "
              "written by our team of green parents.") for n in range(6)]
    url = http_server.route("/list", cards(rows), headers=HTML)
    setup(tmp_path, [url])
    refresh(tmp_path)
    links = ids_by_link(tmp_path)
    assert len(links) == len(rows) == len(set(links.values()))  # 22 links, 22 entries, 22 ids
    # and a second refresh of the same page changes nothing and keeps every id
    assert "feed unchanged" in refresh(tmp_path, "-v").stdout
    assert ids_by_link(tmp_path) == links


def test_a_story_that_moved_keeps_its_id_and_takes_its_new_link(http_server, tmp_path: Path) -> None:
    story = ("Rail strike talks resume", "Unions and the operator met again on Monday after a week of strikes "
             "that cancelled half of all trains in the region.")
    other = ("Harbour bridge reopens", "The bridge reopened to traffic after three months of repairs to its deck.")
    url = http_server.route("/list", cards([("/2026/01/rail-strike", *story), ("/2026/01/bridge", *other)]),
                            headers=HTML)
    setup(tmp_path, [url])
    refresh(tmp_path)
    before = ids_by_link(tmp_path)
    http_server.route("/list", cards([("/news/rail-strike-talks-resume", *story), ("/2026/01/bridge", *other)]),
                      headers=HTML)
    proc = refresh(tmp_path, "-v", "-v")
    after = ids_by_link(tmp_path)
    assert len(after) == 2
    assert after[http_server.url("/news/rail-strike-talks-resume")] == before[http_server.url("/2026/01/rail-strike")]
    assert "moved" in proc.stdout and "1 merged" in proc.stdout


def test_a_link_still_listed_is_never_taken_by_a_new_one(http_server, tmp_path: Path) -> None:
    story = ("Rail strike talks resume", "Unions and the operator met again on Monday after a week of strikes.")
    url = http_server.route("/list", cards([("/a/1", *story), ("/b/1", "Other", "Something else entirely here.")]),
                            headers=HTML)
    setup(tmp_path, [url])
    refresh(tmp_path)
    http_server.route("/list", cards([("/a/2", *story), ("/a/1", *story), ("/b/1", "Other", "Something else.")]),
                      headers=HTML)
    refresh(tmp_path)
    assert len(feed(tmp_path).entries) == 3


def test_the_same_story_on_two_sources_is_one_entry(http_server, tmp_path: Path) -> None:
    text = ("The central bank held its policy rate at 0.5 percent on Thursday and said it would watch "
            "wages and the yen before raising it again.")
    one = http_server.route("/one", cards([("/one/rates", "Bank holds rates", text)]), headers=HTML)
    two = http_server.route("/two", cards([("/two/markets/boj", "Central bank keeps rate at 0.5%",
                                            text.replace("on Thursday", "on Thursday,"))]), headers=HTML)
    setup(tmp_path, [one, two])
    refresh(tmp_path)
    assert len(feed(tmp_path).entries) == 1


# ------------------------------------------------------------------------------ 2. boilerplate


def test_a_stored_teaser_does_not_catch_a_later_card(http_server, tmp_path: Path) -> None:
    url = http_server.route("/list", cards([("/c/1", "First story of the series", "Read more…")]), headers=HTML)
    setup(tmp_path, [url])
    refresh(tmp_path)
    # the first card left the page; a new card with the same teaser took its place
    http_server.route("/list", cards([("/c/2", "Second story of the series", "Read more…")]), headers=HTML)
    refresh(tmp_path)
    assert sorted(ids_by_link(tmp_path)) == [http_server.url("/c/1"), http_server.url("/c/2")]


# ------------------------------------------------------------------------- 3. developing stories


def test_same_link_new_text_is_an_update_with_the_same_id(http_server, tmp_path: Path) -> None:
    url = http_server.route("/list", cards([("/a/1", "Storm nears the coast", "The storm is 200 km offshore.")]),
                            headers=HTML)
    setup(tmp_path, [url])
    refresh(tmp_path)
    (first,) = feed(tmp_path).entries
    time.sleep(1.1)  # Atom times are written to the second: the edit must land in a later one
    http_server.route("/list", cards([("/a/1", "Storm makes landfall", "The storm made landfall at noon, "
                                       "cutting power to thousands.")]), headers=HTML)
    refresh(tmp_path)
    (second,) = feed(tmp_path).entries
    assert second.id == first.id and second.title == "Storm makes landfall"
    assert second.updated_parsed > first.updated_parsed


def test_a_linkless_story_whose_figures_change_keeps_its_id(http_server, tmp_path: Path) -> None:
    lines = ["13日午後3時現在、東北電力管内で約25万戸が停電している。復旧の見通しは立っていないという。",
             "大雪の影響で、新潟県内の高速道路は一部区間で通行止めが続いている。除雪作業は夜通し行われる。"]
    url = http_server.route("/t.txt", "\n".join(lines) + "\n", headers=TEXT)
    setup(tmp_path, [url])
    refresh(tmp_path)
    ids = {e.summary: e.id for e in feed(tmp_path).entries}
    updated = lines[0].replace("約25万戸", "約31万戸")
    http_server.route("/t.txt", "\n".join([updated, lines[1]]) + "\n", headers=TEXT)
    refresh(tmp_path)
    now = {e.summary: e.id for e in feed(tmp_path).entries}
    assert now == {updated: ids[lines[0]], lines[1]: ids[lines[1]]}
    # a light edit later attaches to that same story, not to a second one
    edited = updated.replace("という。", "と電力会社は説明した。")
    http_server.route("/t.txt", "\n".join([edited, lines[1]]) + "\n", headers=TEXT)
    refresh(tmp_path)
    assert {e.summary: e.id for e in feed(tmp_path).entries} == {edited: ids[lines[0]], lines[1]: ids[lines[1]]}
    # the next day's report in the same words is a story of its own
    next_day = "14日午後3時現在、東北電力管内で約8万戸が停電している。復旧の見通しは立っていないという。"
    http_server.route("/t.txt", next_day + "\n" + edited + "\n", headers=TEXT)
    refresh(tmp_path)
    assert len(feed(tmp_path).entries) == 3


# ------------------------------------------------------------------------ 4. summaries are kept


def test_a_teaser_that_repeats_the_headline_is_kept_as_the_summary(http_server, tmp_path: Path) -> None:
    rows = [(f"/s/{n}", f"Council approves budget {n}",
             f"Council approves budget {n} after a long night of talks over school funding and roads.")
            for n in range(5)]
    url = http_server.route("/list", cards(rows), headers=HTML)
    setup(tmp_path, [url], selectors=False)  # automatic detection
    refresh(tmp_path)
    entries = feed(tmp_path).entries
    assert len(entries) == 5
    assert all("long night of talks" in e.summary for e in entries)


# ---------------------------------------------------------------------- 5. state lost, merges shown


def test_a_refresh_after_the_state_is_deleted_keeps_every_entry_and_id(http_server, tmp_path: Path) -> None:
    rows = [(f"/n/{n}", f"Headline {n} of the day", f"Teaser {n}: what happened and why it matters.")
            for n in range(12)]
    url = http_server.route("/list", cards(rows), headers=HTML)
    setup(tmp_path, [url])
    refresh(tmp_path)
    before = {e.id: (e.link, e.title, e.summary, e.updated) for e in feed(tmp_path).entries}
    (tmp_path / "state" / "feedsvc.sqlite").unlink()
    http_server.route("/list", cards(rows[:5] + [("/n/new", "A new headline", "Something new today.")]),
                      headers=HTML)
    proc = refresh(tmp_path, "--quiet")
    assert "rebuilt 12 entries" in proc.stderr
    after = {e.id: (e.link, e.title, e.summary, e.updated) for e in feed(tmp_path).entries}
    assert len(after) == 13
    assert {k: v for k, v in after.items() if k in before} == before  # every id, with its text and times
    # and the story listed again is still the same entry on the next refresh
    refresh(tmp_path)
    assert {e.id for e in feed(tmp_path).entries} == set(after)


def test_an_emptied_state_file_is_rebuilt_too(http_server, tmp_path: Path) -> None:
    url = http_server.route("/t.txt", "停戦協議の第三回会合が首都で開かれ、双方は捕虜交換の手順について大筋で合意した。\n"
                            "台風の接近に備えて沿岸の自治体が避難所を開設した。\n", headers=TEXT)
    setup(tmp_path, [url])
    refresh(tmp_path)
    ids = sorted(e.id for e in feed(tmp_path).entries)
    (tmp_path / "state" / "feedsvc.sqlite").write_bytes(b"")
    proc = refresh(tmp_path)
    assert "rebuilt 2 entries" in proc.stderr
    assert sorted(e.id for e in feed(tmp_path).entries) == ids


def test_merges_are_counted_with_v_and_listed_with_v_v_and_dry_run(http_server, tmp_path: Path) -> None:
    text = ("The central bank held its policy rate at 0.5 percent on Thursday and said it would watch "
            "wages and the yen before raising it again.")
    one = http_server.route("/one", cards([("/one/rates", "Bank holds rates", text),
                                           ("/one/typhoon", "Typhoon nears", "Shelters opened on the coast.")]),
                            headers=HTML)
    two = http_server.route("/two", cards([("/two/boj", "Central bank keeps rate at 0.5%", text + " Markets were calm.")]),
                            headers=HTML)
    setup(tmp_path, [one, two])
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    dry = subprocess.run([sys.executable, "-m", "feedsvc", "refresh", "--dry-run"], capture_output=True, text=True,
                         cwd=tmp_path, env=env, timeout=60)
    assert f"merged   Central bank keeps rate at 0.5% <{http_server.url('/two/boj')}>  -> Bank holds rates" in dry.stdout
    one_v = refresh(tmp_path, "-v")
    assert "2 entries, 2 new, 0 updated, 1 merged" in one_v.stdout and "merged   " not in one_v.stdout
    (tmp_path / "state" / "feedsvc.sqlite").unlink()
    (tmp_path / "feeds" / "news.atom").unlink()
    two_v = refresh(tmp_path, "-v", "-v")
    assert "  merged   Central bank keeps rate at 0.5%" in two_v.stdout
    assert "-> Bank holds rates (near-duplicate)" in two_v.stdout


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_page_read_while_its_topic_waits_for_a_slow_source_is_read_again_after_a_kill(
        http_server, tmp_path: Path, request: pytest.FixtureRequest, backend: str) -> None:
    """A changed page's new ETag is stored with its stories, never before: the refresh is killed while
    the page's topic waits for its other, slow source (another topic saved meanwhile, so a group
    commits). The next refresh must read the page again, not take a 304 for it and lose its story."""
    import signal

    first = [("/a/1", "First story", "It happened first.")]
    slow = {"seconds": 0.0}

    def serve_b(handler) -> None:  # type: ignore[no-untyped-def]
        time.sleep(slow["seconds"])
        body = cards([("/b/1", "A story on the slow page", "It is always there.")]).encode()
        handler.send_response(200)
        handler.send_header("Content-Type", "text/html; charset=utf-8")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    a = http_server.route("/a", handler=conditional(cards(first).encode(), '"a1"'))
    b = http_server.route("/b", handler=serve_b)
    c = http_server.route("/c", cards([("/c/1", "Elsewhere", "Another topic's story.")]), headers=HTML)
    c = c.replace("127.0.0.1", "localhost")  # another host: fetched while /b is awaited, not after it
    (tmp_path / "config.toml").write_text(
        '[feedsvc]\nhost_delay = "0s"\ntimeout = "60s"\nlease = "3s"\n\n'  # (PostgreSQL: the killed run's)
        f'[[topics]]\nid = "news"\ntitle = "News"\n[[topics.sources]]\nurl = "{a}"\n{SELECTORS}'
        f'[[topics.sources]]\nurl = "{b}"\n{SELECTORS}\n'
        f'[[topics]]\nid = "other"\ntitle = "Other"\n[[topics.sources]]\nurl = "{c}"\n{SELECTORS}',
        encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if backend == "postgresql":
        env["FEEDSVC_STATE"] = request.getfixturevalue("pg_url")
    argv = [sys.executable, "-m", "feedsvc", "refresh"]
    assert subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, timeout=120).returncode == 0

    http_server.route("/a", handler=conditional(cards([("/a/2", "Second story", "It happened next."), *first])
                                                .encode(), '"a2"'))
    slow["seconds"] = 20.0
    proc = subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + 15
    while len(http_server.hits_for("/b")) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(3)  # /a read, "other" saved and its group committed (1 s on SQLite), /b still sending
    assert proc.poll() is None, "the refresh ended before the kill: /b was not slow"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()

    slow["seconds"] = 0.0
    time.sleep(3.5 if backend == "postgresql" else 0)  # the killed run's leases run out
    assert subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, timeout=120).returncode == 0
    links = {e.link for e in feed(tmp_path).entries}
    assert http_server.url("/a/2") in links, "the story of the page read before the kill was lost"


@pytest.mark.parametrize("corpus_page", ["all"])
def test_every_corpus_page_gives_one_entry_per_distinct_link(shared_dir, http_server, tmp_path: Path,
                                                            corpus_page: str) -> None:
    """Every page of ../shared/corpus/pages served over HTTP: the feed has one entry per distinct link
    that preview finds, and no two items of one page share an entry."""
    import json

    pages = sorted((shared_dir / "corpus" / "pages").glob("*.html"))
    assert len(pages) >= 23
    topics = ""
    for n, page in enumerate(pages):
        url = http_server.route(f"/p{n}/", page.read_bytes(), headers={"Content-Type": "text/html"})
        topics += f'[[topics]]\nid = "p{n}"\ntitle = "{page.stem}"\n[[topics.sources]]\nurl = "{url}"\n\n'
    (tmp_path / "config.toml").write_text(f'[feedsvc]\nhost_delay = "0s"\nmax_entries = 1000\n\n{topics}',
                                          encoding="utf-8")
    refresh(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    short = []
    for n, page in enumerate(pages):
        preview = subprocess.run([sys.executable, "-m", "feedsvc", "preview", http_server.url(f"/p{n}/"), "--json"],
                                 capture_output=True, text=True, cwd=tmp_path, env=env, timeout=60)
        links = {i["link"] for i in json.loads(preview.stdout) if i.get("link")}
        data = (tmp_path / "feeds" / f"p{n}.atom").read_bytes()
        assert_valid_atom(data)
        got = feedparser.parse(data).entries
        if len({e.link for e in got}) != len(links) or len(got) != len(links):
            short.append((page.name, len(links), len(got)))
    assert short == []
