"""Helpers shared by the tests/test_robust_*.py files (issue 10): configs, the CLI, reading outputs back.

No tests here; it is named test_robust_* because the robustness tests own that name space.
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from tomlwriter import toml_value, write_config  # noqa: F401  (re-exported for the robustness tests)

import feedparser

ROOT = Path(__file__).resolve().parent.parent
SELECTORS = {"item": "li.story", "title": "h3", "link": "a@href", "summary": "p", "date": "time@datetime"}


WORDS = ("harbour council budget river school bridge election festival railway museum hospital farm storm "
         "court library market airport forest theatre factory stadium orchestra garden village tunnel").split()


def sentence(prefix: str, n: int) -> str:
    """A summary of its own for each story: near-duplicate detection must not merge two stories."""
    rng = random.Random(f"{prefix}-{n}")
    return f"{prefix.capitalize()} report {n}: " + " ".join(rng.sample(WORDS, 8)) + "."


def story_page(prefix: str, numbers: range | list[int]) -> str:
    """An HTML listing (newest first) that SELECTORS read: title, link, one-sentence summary, date."""
    items = "\n".join(
        f'<li class="story"><a href="/{prefix}/story/{n}"><h3>{prefix} story number {n}</h3></a>'
        f"<p>{sentence(prefix, n)}</p>"
        f'<time datetime="2026-01-{n % 28 + 1:02d}T09:{n % 60:02d}:00+00:00">Jan {n % 28 + 1}</time></li>'
        for n in sorted(numbers, reverse=True))
    return f"<!doctype html><html><head><title>{prefix}</title></head><body><ul>\n{items}\n</ul></body></html>"


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def feedsvc_argv(config: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "feedsvc", "--config", str(config), *args]


def run_cli(config: Path, *args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(feedsvc_argv(config, *args), capture_output=True, text=True, cwd=cwd, env=env(),
                          timeout=timeout)


def feed_ids(path: Path) -> list[str]:
    """The entry ids of a complete, well-formed feed (Atom/RSS via feedparser, bozo 0; JSON Feed via json)."""
    data = path.read_bytes()
    if path.suffix == ".json":
        doc = json.loads(data)
        assert doc["version"].startswith("https://jsonfeed.org/version/"), path
        return [item["id"] for item in doc["items"]]
    feed = feedparser.parse(data)
    assert feed.bozo == 0, f"{path.name} is not well-formed: {feed.get('bozo_exception')}"
    assert data.rstrip().endswith(b"</feed>" if path.suffix == ".atom" else b"</rss>"), f"{path.name} is cut short"
    return [e.id for e in feed.entries]


def check_indexes(folder: Path) -> None:
    """index.opml parses as XML; index.html is whole (ends with </html>)."""
    if (folder / "index.opml").exists():
        ET.fromstring((folder / "index.opml").read_bytes())
    if (folder / "index.html").exists():
        assert (folder / "index.html").read_bytes().rstrip().endswith(b"</html>")


def check_state(path: Path) -> int:
    """The SQLite state opens and passes integrity_check; returns the number of entries (0 if none yet)."""
    if not path.exists():
        return 0
    db = sqlite3.connect(path)
    try:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        return db.execute("SELECT count(*) FROM entries").fetchone()[0] if "entries" in tables else 0
    finally:
        db.close()
