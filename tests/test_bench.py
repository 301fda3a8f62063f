"""Each benchmark script runs once on a tiny N, so that it keeps working. No timing is asserted.

The figures the scripts print are checked for consistency only (every run exited 0, every page was
served, the warm run was all 304, the feeds were written and parse), never for speed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import feedparser
import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"

sys.path.insert(0, str(BENCH))
import pages  # noqa: E402  (bench/ is not a package: it is put on sys.path just above)


def test_the_cli_is_timed_with_bytecode_caching_on(monkeypatch):
    """Where PYTHONDONTWRITEBYTECODE is set, every timed run would compile feedsvc again: not a user's cost."""
    import refresh

    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    env = refresh.cli_env({"FEEDSVC_WORKERS": "1"})
    assert "PYTHONDONTWRITEBYTECODE" not in env and env["FEEDSVC_WORKERS"] == "1" and env["PATH"]


def test_generated_pages_look_like_a_news_topic_page():
    body = pages.page(7)
    assert 120_000 < len(body) < 200_000
    text = body.decode("utf-8")
    assert text.count('<li class="p-list__item">') == pages.ITEMS
    for furniture in ("<script", "<style", 'role="navigation"', "ranking", "<footer", "ad-slot"):
        assert furniture in text, furniture
    moved = pages.page(7, version=1).decode("utf-8")
    assert moved != text and text.split('<li class="p-list__item">')[1] in moved  # old stories stay, shifted


def test_loopback_servers_answer_304_to_their_etag():
    import requests

    with pages.LoopbackServers(2) as servers:
        url = servers.url(1)
        assert "127.0.1.2" in url
        first = requests.get(url, timeout=5)
        assert first.status_code == 200 and first.content == pages.page(1)
        again = requests.get(url, headers={"If-None-Match": first.headers["ETag"]}, timeout=5)
        assert again.status_code == 304
        servers.bump(1)
        moved = requests.get(url, headers={"If-None-Match": first.headers["ETag"]}, timeout=5)
        assert moved.status_code == 200 and moved.headers["ETag"] != first.headers["ETag"]


def _run(script: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(BENCH / script), *args], check=False, capture_output=True, text=True,
                          timeout=timeout, cwd=str(ROOT))


@pytest.mark.slow
def test_refresh_bench_runs(tmp_path):
    out = tmp_path / "figures.json"
    proc = _run("refresh.py", "--sources", "4", "--sample", "2", "--repeat", "1", "--json", str(out),
                "--keep", str(tmp_path / "work"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    figures = json.loads(out.read_text())
    assert figures["ok"] and figures["feeds"] == 4
    runs = {r["name"]: r for r in figures["runs"]}
    assert set(runs) == {"cold", "warm", "changed", "cold/1w"}
    assert [r["name"] for r in figures["runs"]].count("warm") == 3  # a second-long run: the median of three
    assert all(r["exit_code"] == 0 and r["fetched"] == 4 for r in runs.values())
    assert runs["warm"]["not_modified"] == 4 and runs["cold"]["not_modified"] == 0
    assert runs["changed"]["not_modified"] == 3  # 10 % of 4 pages, rounded up to one, changed
    for feed in (tmp_path / "work" / "main" / "feeds").glob("*.atom"):
        parsed = feedparser.parse(feed.read_bytes())
        assert not parsed.bozo and len(parsed.entries) == 50, feed
    assert "ratios" in proc.stdout
    # the parsers are timed before the refreshes and after them; the ratios use the mean
    for parser in ("bs4_lxml", "lxml_html"):
        before, after = figures["parse_ms_before"][parser], figures["parse_ms_after"][parser]
        assert before > 0 and after > 0 and figures["parse_ms"][parser] == pytest.approx((before + after) / 2)


@pytest.mark.slow
def test_vs_morss_bench_runs_or_says_why_not(tmp_path):
    out = tmp_path / "figures.json"
    proc = _run("vs_morss.py", "--sources", "3", "--json", str(out), timeout=600)
    if proc.returncode == 2:  # morss cannot be installed here (offline): the script must say why
        assert "morss cannot be run here" in proc.stderr or "morss failed" in proc.stderr
        pytest.skip(proc.stderr.strip().splitlines()[-1])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    figures = json.loads(out.read_text())
    assert figures["morss_items"] == 50  # morss was given rules that find the same items
    assert figures["feeds"] == 3 and figures["feedsvc_exit"] == 0


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the probe reads /proc and glibc's mallinfo2")
def test_soak_bench_runs_with_its_memory_probe(tmp_path):
    probe = tmp_path / "memory.tsv"
    proc = _run("soak.py", "--minutes", "0.25", "--every", "5", "--warmup", "0", "--sources", "4", "--topics", "2",
                "--probe", str(probe), timeout=120)
    assert proc.returncode in (0, 1), proc.stdout + proc.stderr  # 1: "growing", which 15 s cannot rule out
    assert "tracebacks in the log: 0" in proc.stdout and "verdict:" in proc.stdout
    refreshes = int(proc.stdout.split("refreshes: ")[1].split(",")[0])
    assert refreshes >= 4  # two topics on a 1-second schedule
    rows = [line.split("\t") for line in probe.read_text().splitlines()]
    assert rows[0][:3] == ["t_s", "rss_kib", "anon_kib"] and len(rows) >= 2
    assert all(len(r) == len(rows[0]) and int(r[1]) > 0 for r in rows[1:])


def test_scale_bench_runs_or_says_why_not(tmp_path, pg_server):
    """bench/scale.py on 4 sources: every phase refreshed every topic, both backends stored the stories."""
    out = tmp_path / "scale.json"
    proc = _run("scale.py", "--sources", "4", "--json", str(out), timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    figures = json.loads(out.read_text())
    names = [p["name"] for p in figures["phases"]]
    assert names == [f"{kind} {temp}" for kind in ("sqlite refresh", "pg refresh", "pg run x1", "pg run x2")
                     for temp in ("cold", "warm", "changed") if temp != "changed" or kind == "pg refresh"]
    assert all(p["pages"] == 4 and p["wall"] > 0 and p["cpu"] > 0 for p in figures["phases"])
    assert all(p["pg_cpu"] > 0 for p in figures["phases"] if p["name"].startswith("pg"))
    # the writers' lock, from the refreshes' INFO lines: held while the cold and changed phases saved stories
    assert all(p["lock"] > 0 for p in figures["phases"] if p["name"].startswith("pg") and "warm" not in p["name"])
    assert figures["changed"] == 1 and "ms a changed page" in proc.stdout
    for backend in ("sqlite", "postgresql"):
        assert figures["storage"][backend]["stories"] == 4 * 50  # 50 stories a generated page
    assert "2 workers ÷ 1" in proc.stdout
