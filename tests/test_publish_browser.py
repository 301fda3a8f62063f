"""index.html in a real headless browser (Debian's chromium): topics and entries render, the
autodiscovery links are in the DOM, and hostile text stays text.

Skips when chromium is not installed, except under CI=true, where a missing browser is a failure
(.ci/run installs it: `apt-get install -y chromium`).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from test_publish import PAGE, make_config, make_entries, make_entry

from feedsvc import publish

BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def find_browser() -> str:
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    if os.environ.get("CI"):
        pytest.fail("CI is set but no chromium is installed: `apt-get install -y chromium` (see .ci/run)")
    pytest.skip("needs Debian's chromium (apt-get install -y chromium); CI installs it")


def dump_dom(browser: str, page: Path, profile: Path) -> str:
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--disable-extensions", f"--user-data-dir={profile}", "--dump-dom", page.as_uri()]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


class Dom(HTMLParser):
    """What the browser built: the alternate links, h2 titles, entry items and every element name."""

    def __init__(self) -> None:
        super().__init__()
        self.alternates: list[dict[str, str | None]] = []
        self.h2: list[str] = []
        self.entries: list[str] = []
        self.tags: list[str] = []
        self._in: str | None = None
        self._buf: list[str] = []
        self._in_head = False
        self.alternates_in_head = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        self.tags.append(tag)
        if tag == "head":
            self._in_head = True
        if tag == "link" and a.get("rel") == "alternate":
            self.alternates.append(a)
            self.alternates_in_head += self._in_head
        if tag == "h2" or (tag == "li" and a.get("class") == "entry"):
            self._in, self._buf = tag, []

    def handle_endtag(self, tag: str) -> None:
        if tag == "head":
            self._in_head = False
        if tag == self._in:
            text = " ".join("".join(self._buf).split())
            (self.h2 if tag == "h2" else self.entries).append(text)
            self._in = None

    def handle_data(self, data: str) -> None:
        if self._in:
            self._buf.append(data)


def test_index_html_renders_in_chromium(tmp_path: Path) -> None:
    browser = find_browser()
    config = make_config(tmp_path, formats=["atom", "rss"], topics=[
        {"id": "peace-talks", "title": "和平交渉", "language": "ja", "sources": [{"url": PAGE}]},
        {"id": "rates", "title": "Rates & <Markets>", "sources": [{"url": "https://news.example.com/rates"}]},
    ])
    hostile = make_entry(0, title="<script>document.title='pwned'</script>Rates up", link="javascript:alert(1)",
                         summary="<img src=x onerror=alert(1)> & more")
    publish.write_indexes(config, {"peace-talks": make_entries(12), "rates": [hostile]})

    html = dump_dom(browser, tmp_path / "feeds" / "index.html", tmp_path / "profile")
    dom = Dom()
    dom.feed(html)

    assert dom.h2 == ["和平交渉", "Rates & <Markets>"]
    assert len(dom.entries) == publish.INDEX_ENTRIES + 1
    assert dom.entries[0].startswith("Story 0: talks resume") and "Summary of story 0." in dom.entries[0]
    assert dom.entries[-1].startswith("<script>document.title='pwned'</script>Rates up")  # shown as text
    atom = [(a["title"], a["href"]) for a in dom.alternates if a["type"] == "application/atom+xml"]
    assert atom == [("和平交渉", "peace-talks.atom"), ("Rates & <Markets>", "rates.atom")]
    assert {a["href"] for a in dom.alternates if a["type"] == "application/rss+xml"} == {"peace-talks.rss",
                                                                                          "rates.rss"}
    assert dom.alternates_in_head == len(dom.alternates)
    assert "script" not in dom.tags and "img" not in dom.tags
    assert "<title>Feeds</title>" in html and "pwned" not in html.split("</title>")[0]  # no script ran
