"""Partial drift (issue 18, 9): a page that suddenly lists far fewer items than usual is "degraded":
said in the summary line, on stderr and in `status`, with the feed's entries kept. Through the CLI,
with a real loopback server; feeds read back with feedparser."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import feedparser

ROOT = Path(__file__).resolve().parent.parent


def listing(n: int, start: int = 0) -> str:
    cards = "".join(f'<article><h2><a href="/story/{i}">Story {i}: a headline of some length</a></h2>'
                    f'<p>Summary {i}, which says what happened and why it matters to readers.</p>'
                    f'<time datetime="2026-01-{(i % 28) + 1:02d}T09:00:00+00:00"></time></article>'
                    for i in range(start, start + n))
    return f"<!doctype html><html><body><main>{cards}</main></body></html>"


def cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "feedsvc", *args], capture_output=True, text=True, cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)


def test_a_page_that_falls_from_twenty_items_to_two_is_degraded(http_server, tmp_path: Path) -> None:
    url = http_server.route("/list", listing(20), headers={"Content-Type": "text/html; charset=utf-8"})
    (tmp_path / "config.toml").write_text(f'[feedsvc]\nhost_delay = "0s"\n\n[[topics]]\nid = "t"\ntitle = "T"\n'
                                          f'[[topics.sources]]\nurl = "{url}"\n', encoding="utf-8")
    first = cli(tmp_path, "refresh", "-v")
    assert first.returncode == 0 and "degraded" not in first.stdout + first.stderr
    http_server.route("/list", listing(2, start=20), headers={"Content-Type": "text/html; charset=utf-8"})
    second = cli(tmp_path, "refresh", "-v")
    assert second.returncode == 0, second.stderr
    assert "1 degraded source" in second.stdout
    assert f"source degraded: {url}: 2 item(s) where it usually lists 20" in second.stderr
    entries = feedparser.parse((tmp_path / "feeds" / "t.atom").read_bytes()).entries
    assert len(entries) == 22  # the last good entries stay, and the two found are not lost
    status = json.loads(cli(tmp_path, "status", "--json").stdout)
    (source,) = status["topics"][0]["sources"]
    assert source["degraded"] and source["items"] == 2 and source["usual_items"] == 20
    assert "DEGRADED" in cli(tmp_path, "status").stdout
    assert cli(tmp_path, "--quiet", "refresh").stderr == ""  # a warning: not under --quiet
    # the page recovers: healthy again
    http_server.route("/list", listing(20), headers={"Content-Type": "text/html; charset=utf-8"})
    third = cli(tmp_path, "refresh", "-v")
    assert "degraded" not in third.stdout + third.stderr
    assert not json.loads(cli(tmp_path, "status", "--json").stdout)["topics"][0]["sources"][0]["degraded"]


def test_a_page_that_lists_a_few_less_is_not_degraded(http_server, tmp_path: Path) -> None:
    url = http_server.route("/list", listing(12), headers={"Content-Type": "text/html; charset=utf-8"})
    (tmp_path / "config.toml").write_text(f'[feedsvc]\nhost_delay = "0s"\n\n[[topics]]\nid = "t"\ntitle = "T"\n'
                                          f'[[topics.sources]]\nurl = "{url}"\n', encoding="utf-8")
    assert cli(tmp_path, "refresh").returncode == 0
    http_server.route("/list", listing(8, start=12), headers={"Content-Type": "text/html; charset=utf-8"})
    proc = cli(tmp_path, "refresh", "-v")
    assert proc.returncode == 0 and "degraded" not in proc.stdout + proc.stderr


def test_a_page_that_stays_shorter_becomes_its_usual_count() -> None:
    from feedsvc.model import SourceState
    from feedsvc.pipeline import DEGRADED_ACCEPT, degraded_from

    state = SourceState("https://example.org/list")
    assert degraded_from(state, 20) is None and state.usual_item_count == 20
    assert [degraded_from(state, 5) for _ in range(DEGRADED_ACCEPT - 1)] == [20] * (DEGRADED_ACCEPT - 1)
    assert state.degraded
    assert degraded_from(state, 5) is None and state.usual_item_count == 5 and not state.degraded
