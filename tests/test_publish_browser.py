"""index.html in a real headless browser (Debian's chromium), driven over the DevTools protocol:
on a phone and on a desktop the table of topics comes first and nothing overflows sideways, the
console stays clean, every link and picture resolves, the autodiscovery links are in the head,
and hostile text stays text.

Skips when chromium is not installed, except under CI=true, where a missing browser is a failure
(.ci/run installs it: `apt-get install -y chromium`).
"""

from __future__ import annotations

import base64
import json
import os
import select
import shutil
import struct
import subprocess
import sys
import time
import urllib.request
import zlib
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
from test_publish import PAGE, T0, make_config, make_entry

from feedsvc import publish
from feedsvc.model import SourceState

BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def find_browser() -> str:
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    if os.environ.get("CI"):
        pytest.fail("CI is set but no chromium is installed: `apt-get install -y chromium` (see .ci/run)")
    pytest.skip("needs Debian's chromium (apt-get install -y chromium); CI installs it")


# dup first (a pipe end may already sit on fd 3 or 4); set_inheritable because dup2 onto the fd
# itself leaves it close-on-exec
TRAMPOLINE = ("import os, sys\nr, w = os.dup(int(sys.argv[1])), os.dup(int(sys.argv[2]))\n"
              "os.dup2(r, 3)\nos.dup2(w, 4)\nos.set_inheritable(3, True)\nos.set_inheritable(4, True)\n"
              "os.execvp(sys.argv[3], sys.argv[3:])\n")


class Browser:
    """Chromium with --remote-debugging-pipe: DevTools messages are NUL-terminated JSON on fds 3
    (to the browser) and 4 (from it), so the standard library is enough to drive it."""

    def __init__(self, executable: str, profile: Path) -> None:
        to_browser, self._w = os.pipe()
        self._r, from_browser = os.pipe()
        args = [executable, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-extensions", f"--user-data-dir={profile}", "--remote-debugging-pipe", "about:blank"]
        # a small trampoline puts the two pipe ends where chromium looks for them, then becomes chromium
        self.proc = subprocess.Popen([sys.executable, "-c", TRAMPOLINE, str(to_browser), str(from_browser), *args],
                                     pass_fds=(to_browser, from_browser), stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        os.close(to_browser)
        os.close(from_browser)
        self._buf = b""
        self._id = 0
        self.events: list[dict[str, Any]] = []
        self.session = ""

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        self._id += 1
        message: dict[str, Any] = {"id": self._id, "method": method, "params": params}
        if self.session and not method.startswith("Target."):
            message["sessionId"] = self.session
        os.write(self._w, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._read()
            if reply.get("id") == self._id:
                assert "error" not in reply, (method, reply["error"])
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str) -> dict[str, Any]:
        while not any(e.get("method") == method for e in self.events):
            self.events.append(self._read())
        return next(e for e in self.events if e.get("method") == method)

    def _read(self) -> dict[str, Any]:
        deadline = time.monotonic() + 60
        while b"\0" not in self._buf:
            ready, _, _ = select.select([self._r], [], [], max(0.0, deadline - time.monotonic()))
            assert ready, "chromium did not answer within 60 s"
            chunk = os.read(self._r, 1 << 20)
            assert chunk, "chromium closed the DevTools pipe"
            self._buf += chunk
        message, self._buf = self._buf.split(b"\0", 1)
        return json.loads(message)

    def open(self, url: str, width: int, height: int, mobile: bool) -> None:
        target = self.send("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            self.send(f"{domain}.enable")
        self.send("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=mobile)
        self.events.clear()
        self.send("Page.navigate", url=url)
        self.wait_for("Page.loadEventFired")

    def js(self, expression: str) -> Any:
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        assert "exceptionDetails" not in result, result
        return result["result"].get("value")

    def screenshot(self) -> bytes:
        return base64.b64decode(self.send("Page.captureScreenshot", format="png", captureBeyondViewport=True)["data"])

    def console_errors(self) -> list[str]:
        out = []
        for e in self.events:
            params = e.get("params", {})
            if e.get("method") == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                out.append(json.dumps(params.get("args")))
            elif e.get("method") == "Runtime.exceptionThrown":
                out.append(json.dumps(params.get("exceptionDetails")))
            elif e.get("method") == "Log.entryAdded" and params["entry"]["level"] == "error":
                out.append(params["entry"].get("text", "") + " " + params["entry"].get("url", ""))
        return out

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=20)
        os.close(self._w)
        os.close(self._r)


def png(width: int, height: int) -> bytes:
    """A small grey picture, as a news site would serve."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    rows = b"".join(b"\0" + b"\x88\x88\x88" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


AS_OF = T0 + timedelta(hours=2)
HOSTILE_TITLE = "<script>document.title='pwned'</script>Rates up"

# What the page must do for an operator: the table first, then entries, on these screens.
SCREENS = [pytest.param(390, 844, True, id="phone"), pytest.param(1280, 800, False, id="desktop")]


@pytest.fixture
def index_page(tmp_path: Path, http_server) -> tuple[Path, Any]:
    """index.html for 12 topics (the issue's case), each source in another state of health, with
    entries whose links and pictures are served by a local HTTP server."""
    http_server.route("/story", "<!DOCTYPE html><title>story</title>", headers={"Content-Type": "text/html"})
    http_server.route("/pic.png", png(120, 80), headers={"Content-Type": "image/png"})
    topics = [{"id": f"topic-{n}", "title": f"Topic {n} 和平交渉", "language": "ja",
               "sources": [{"url": f"https://site{n}.example.jp/list"}], "interval": f"{15 * (n + 1)}m"}
              for n in range(11)]
    topics.append({"id": "rates", "title": "Rates & <Markets>", "sources": [{"url": "https://news.example.com/rates"}],
                   "formats": ["atom", "rss"]})
    config = make_config(tmp_path, topics=topics)
    kinds = [SourceState("", last_success_at=AS_OF, last_item_count=20),
             SourceState("", last_success_at=AS_OF, last_item_count=2, usual_item_count=20, degraded_runs=1),
             SourceState("", last_success_at=T0, last_failure_at=AS_OF, consecutive_failures=3,
                         next_try_at=AS_OF + timedelta(minutes=20), last_error="http: 503 <b>Service</b> Unavailable"),
             SourceState("", last_failure_at=T0, consecutive_failures=1, next_try_at=T0 + timedelta(minutes=5),
                         last_error="network: timed out after 20s connecting to a very-long-host-name.example.jp")]
    states = {t.sources[0].url: SourceState(**{**{f: getattr(kinds[i % 4], f) for f in kinds[0].__slots__},
                                               "url": t.sources[0].url})
              for i, t in enumerate(config.topics[:-1])}  # the last topic is not fetched yet
    entries = {t.id: [make_entry(k, link=http_server.url(f"/story?{t.id}-{k}"), source_url=PAGE,
                                 image=http_server.url("/pic.png") if k % 2 == 0 else None,
                                 summary="A long summary that goes on. " * 20) for k in range(3)]
               for t in config.topics[:-1]}
    entries["rates"] = [make_entry(0, title=HOSTILE_TITLE, link="javascript:alert(1)",
                                   summary="<img src=x onerror=alert(1)> & more", image="javascript:alert(2)")]
    publish.write_indexes(config, entries, publish.index_health(config, states), {"topic-0": 50})
    return config.output_dir / "index.html", http_server


@pytest.mark.parametrize("width,height,mobile", SCREENS)
def test_index_html_is_an_operators_page_in_chromium(tmp_path: Path, index_page, width: int, height: int,
                                                    mobile: bool) -> None:
    executable = find_browser()
    page, http_server = index_page
    browser = Browser(executable, tmp_path / "profile")
    try:
        browser.open(page.as_uri(), width, height, mobile)
        # the pictures load lazily: scroll through the page as a reader would, then wait for them
        browser.js("""new Promise(done => {
            const step = () => { window.scrollBy(0, window.innerHeight);
                (window.scrollY + window.innerHeight >= document.documentElement.scrollHeight)
                    ? done() : setTimeout(step, 20); };
            step(); })""")
        # then each picture brought into view and waited for in turn: a lazy picture the quick scroll
        # passed before the loaded machine laid it out never starts loading, and decode() waits for ever
        browser.js("""(async () => { const end = Date.now() + 40000;
            for (const i of document.images) {
                if (i.complete && i.naturalWidth > 0) continue;
                i.scrollIntoView();
                await Promise.race([i.decode().catch(() => null),
                                    new Promise(done => setTimeout(done, Math.max(0, end - Date.now())))]); }
            })()""")
        browser.js("window.scrollTo(0, 0)")
        shot = browser.screenshot()
        view = browser.js("""({
            scrollWidth: document.documentElement.scrollWidth, clientWidth: document.documentElement.clientWidth,
            tableTop: document.querySelector('table').getBoundingClientRect().top,
            firstSectionTop: document.querySelector('section.topic').getBoundingClientRect().top,
            rows: [...document.querySelectorAll('tr.topic-row')].map(r => ({
                cls: r.className, badges: [...r.querySelectorAll('.h')].map(b => b.textContent),
                visible: r.getBoundingClientRect().width > 0})),
            h2: [...document.querySelectorAll('h2')].map(h => h.textContent),
            entries: [...document.querySelectorAll('li.entry')].map(li => li.textContent.replace(/\\s+/g, ' ').trim()),
            links: [...document.querySelectorAll('a[href]')].map(a => a.href),
            images: [...document.images].map(i => ({src: i.src, ok: i.complete && i.naturalWidth > 0})),
            alternates: [...document.querySelectorAll('head link[rel=alternate]')].map(l => [l.type, l.title,
                                                                                            l.getAttribute('href')]),
            tags: [...new Set([...document.querySelectorAll('*')].map(e => e.localName))],
            title: document.title,
            fontSize: parseFloat(getComputedStyle(document.body).fontSize),
        })""")
        errors = browser.console_errors()
    finally:
        browser.close()

    assert errors == []
    # readable on this screen: no sideways scroll, legible text, the table of topics before the entries
    # (a desktop's scrollbar may take up to 20 px of the screen and of the full-page screenshot)
    assert width - 20 <= png_size(shot)[0] <= width and view["scrollWidth"] <= view["clientWidth"] <= width
    assert png_size(shot)[1] > height  # the whole page, below the first screen too
    assert view["fontSize"] >= 16
    assert view["tableTop"] < height / 4 and view["tableTop"] < view["firstSectionTop"]
    assert len(view["rows"]) == 12 and all(r["visible"] for r in view["rows"])
    assert [r["badges"] for r in view["rows"]] == [[k] for k in ["ok", "degraded", "backed off", "failing"] * 3
                                                   ][:11] + [["waiting"]]
    assert view["h2"] == [f"Topic {n} 和平交渉" for n in range(11)] + ["Rates & <Markets>"]

    # every link resolves: anchors to a section, feeds to a written file, entries to the server
    for href in view["links"]:
        parts = urlsplit(href)
        if parts.scheme == "file" and parts.fragment:
            assert parts.fragment in [f"topic-{t}" for t in [f"topic-{n}" for n in range(11)] + ["rates"]], href
        elif parts.scheme == "file":
            target = Path(unquote(parts.path))
            assert target.parent == page.parent and target.suffix in (".atom", ".rss", ".opml"), href
        elif parts.hostname == "127.0.0.1":
            with urllib.request.urlopen(href, timeout=10) as response:
                assert response.status == 200
        else:  # the example sources' own pages, and the project's
            assert parts.scheme == "https" and parts.hostname.endswith(("example.jp", "example.com", "github.com"))
    assert len(view["images"]) == 11 * 2 and all(i["ok"] for i in view["images"]), view["images"]
    assert len(http_server.hits_for("/pic.png")) >= 1

    # autodiscovery in the head; hostile text shown as text, and nothing of it ran
    atom = [(t, h) for kind, t, h in view["alternates"] if kind == "application/atom+xml"]
    assert atom[-1] == ("Rates & <Markets>", "rates.atom") and len(atom) == 12
    assert view["entries"][-1].startswith(HOSTILE_TITLE)
    assert view["title"] == "Feeds" and "script" not in view["tags"]
    assert all(not i["src"].startswith("javascript") for i in view["images"])
