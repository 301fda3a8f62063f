"""Issue 19.4: config footguns refused by `check` (and every command) with one line naming the key
and the file: an output_dir that would publish the machine, the config or the state; a base_url
that would break ids and self links; an index.html or index.opml feedsvc did not write."""

from __future__ import annotations

from pathlib import Path

import pytest

from test_robust_support import run_cli, write_config

TOPIC = {"id": "t", "title": "T", "sources": [{"url": "page.html"}]}
PAGE = "<html><body><ul><li><a href='/a'>Alpha story headline here</a></li>" \
       "<li><a href='/b'>Beta story headline here</a></li><li><a href='/c'>Gamma story headline here</a></li>" \
       "</ul></body></html>"


def refused(tmp_path: Path, command: str = "check", **settings) -> str:
    config = write_config(tmp_path / "site" / "config.toml", [TOPIC], **settings)
    proc = run_cli(config, command, cwd=tmp_path / "site", timeout=30)
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert str(config) in lines[0]
    return lines[0]


@pytest.mark.parametrize("output_dir, state, words", [
    pytest.param("/", "state/feedsvc.sqlite", "root folder", id="root"),
    pytest.param(".", "state/feedsvc.sqlite", "config's own folder", id="config-folder"),
    pytest.param("..", "state/feedsvc.sqlite", "holds the config file", id="above-config"),
    pytest.param("var", "var/state/feedsvc.sqlite", "holds the state file", id="above-state"),
])
def test_output_dir_that_would_publish_too_much_is_refused(tmp_path, output_dir, state, words):
    line = refused(tmp_path, output_dir=output_dir, state=state)
    assert "feedsvc.output_dir" in line and words in line


def test_serve_refuses_it_too_before_serving_anything(tmp_path):
    assert "root folder" in refused(tmp_path, "serve", output_dir="/")


@pytest.mark.parametrize("url, words", [
    pytest.param("https://feeds.example.org/my feeds/", "space", id="space"),
    pytest.param('https://feeds.example.org/"x/', "quote", id="double-quote"),
    pytest.param("https://feeds.example.org/x'/", "quote", id="single-quote"),
    pytest.param("https://feeds.example.org/feeds/#top", "fragment", id="fragment"),
    pytest.param("https://feeds.example.org/<x>/", "'<'", id="angle"),
    pytest.param("/feeds/", "http", id="relative"),
])
def test_base_url_that_would_break_ids_is_refused(tmp_path, url, words):
    line = refused(tmp_path, base_url=url)
    assert "feedsvc.base_url" in line and words in line


@pytest.mark.parametrize("name", ["index.html", "index.opml"])
def test_an_index_file_feedsvc_did_not_write_is_never_overwritten(tmp_path, name):
    feeds = tmp_path / "site" / "feeds"
    feeds.mkdir(parents=True)
    mine = b"<html><body>My own home page</body></html>\n"
    (feeds / name).write_bytes(mine)
    (tmp_path / "site" / "page.html").write_text(PAGE)
    line = refused(tmp_path)
    assert "feedsvc.output_dir" in line and name in line and "not written by feedsvc" in line
    refused(tmp_path, "refresh")
    assert (feeds / name).read_bytes() == mine


def test_feedsvcs_own_index_files_are_rewritten_freely(tmp_path):
    site = tmp_path / "site"
    config = write_config(site / "config.toml", [TOPIC], base_url="https://feeds.example.org/feeds/")
    (site / "page.html").write_text(PAGE)
    for _ in range(2):  # the second run finds the first's index files and takes them as its own
        proc = run_cli(config, "refresh", cwd=site, timeout=60)
        assert proc.returncode in (0, 1), proc.stderr
        assert "not written by feedsvc" not in proc.stderr
    assert (site / "feeds" / "index.html").exists() and (site / "feeds" / "index.opml").exists()
    assert run_cli(config, "check", cwd=site, timeout=30).returncode == 0


def test_a_large_index_of_feedsvcs_own_is_still_its_own(tmp_path):
    """A 1,000-topic index.html is ~7 MB, its marks megabytes in (past any fixed prefix, and past the
    head's first 64 KB): read whole, a chunk at a time (it once made every refresh after the first exit 2
    with "not written by feedsvc")."""
    site = tmp_path / "site"
    config = write_config(site / "config.toml", [TOPIC], base_url="https://feeds.example.org/feeds/")
    (site / "page.html").write_text(PAGE)
    assert run_cli(config, "refresh", cwd=site, timeout=60).returncode in (0, 1)
    index = site / "feeds" / "index.html"
    html = index.read_bytes()
    # as if it listed thousands of topics: in its head (one <link> each), as in its table and body
    head = html.index(b'title="All feeds (OPML)"')
    middle = html.index(b"</table>")
    pad = b"<!-- " + b"x" * 3_000_000 + b" -->"
    index.write_bytes(html[:head] + pad + html[head:middle] + pad + html[middle:])
    proc = run_cli(config, "check", cwd=site, timeout=30)
    assert proc.returncode == 0 and "not written by feedsvc" not in proc.stderr, proc.stderr
