"""WebSub pings against a local hub stand-in (the http_server fixture records every POST)."""

from __future__ import annotations

import socket
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import parse_qs

import feedparser
import pytest
from test_publish import make_config, make_entries, make_entry

from feedsvc import publish, websub

UA = "feedsvc-test/1 (+https://example.org)"


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(websub, "BACKOFF_SECONDS", 0.0)


def form(body: bytes) -> dict[str, list[str]]:
    return parse_qs(body.decode("ascii"), strict_parsing=True)


def flaky(statuses: list[int]):
    """A hub that answers the given statuses in turn, then 204."""
    answers = iter(statuses)

    def handler(h: BaseHTTPRequestHandler) -> None:
        h.send_response(next(answers, 204))
        h.send_header("Content-Length", "0")
        h.end_headers()

    return handler


def test_ping_posts_publish_form_for_each_url(http_server) -> None:
    hub = http_server.route("/hub", status=204)
    urls = ["https://feeds.example.org/a.atom", "https://feeds.example.org/b.atom?x=1&y=2"]
    assert websub.ping_hub(hub, urls, user_agent=UA) is True
    hits = http_server.hits_for("/hub")
    assert [h.method for h in hits] == ["POST", "POST"]
    assert [form(h.body) for h in hits] == [{"hub.mode": ["publish"], "hub.url": [u]} for u in urls]
    assert all(h.headers["Content-Type"] == "application/x-www-form-urlencoded" for h in hits)
    assert all(h.headers["User-Agent"] == UA for h in hits)


@pytest.mark.parametrize("statuses,retries,ok,tries", [
    pytest.param([503, 502], 3, True, 3, id="two-5xx-then-ok"),
    pytest.param([429], 3, True, 2, id="rate-limited-then-ok"),
    pytest.param([503] * 10, 2, False, 3, id="gives-up-after-retries"),
    pytest.param([400], 3, False, 1, id="4xx-is-not-retried"),
    pytest.param([302], 3, False, 1, id="redirect-is-not-followed"),
    pytest.param([], 0, True, 1, id="no-retries-needed"),
])
def test_retries_transient_failures_only(http_server, statuses: list[int], retries: int, ok: bool,
                                         tries: int) -> None:
    hub = http_server.route("/hub", handler=flaky(statuses))
    assert websub.ping_hub(hub, ["https://feeds.example.org/a.atom"], user_agent=UA, retries=retries) is ok
    hits = http_server.hits_for("/hub")
    assert len(hits) == tries
    assert all(form(h.body)["hub.url"] == ["https://feeds.example.org/a.atom"] for h in hits)


def test_unreachable_hub_is_false_not_an_exception() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert websub.ping_hub(f"http://127.0.0.1:{port}/hub", ["https://f.example/a.atom"],
                           user_agent=UA, retries=1) is False


def test_not_an_http_hub_is_refused() -> None:
    assert websub.ping_hub("ftp://127.0.0.1/hub", ["https://f.example/a.atom"], user_agent=UA) is False


def test_hub_is_pinged_only_when_a_feed_changes(http_server, tmp_path: Path) -> None:
    """The pipeline's rule, end to end: write_feeds, then ping the hub with the URLs of what was written."""
    hub = http_server.route("/hub", status=204)
    config = make_config(tmp_path, base_url="https://feeds.example.org/", websub_hub=hub, formats=["atom", "rss"])
    topic = config.topics[0]

    def refresh(entries) -> None:
        written = publish.write_feeds(topic, entries, config)
        if written and config.websub_hub:
            urls = [config.base_url + p.name for p in written]
            assert websub.ping_hub(config.websub_hub, urls, user_agent=config.user_agent)

    refresh(make_entries(2))
    assert len(http_server.hits_for("/hub")) == 2  # one per format written
    refresh(make_entries(2))
    assert len(http_server.hits_for("/hub")) == 2  # unchanged: no ping
    refresh([make_entry(9, updated_at=make_entries(1)[0].updated_at)] + make_entries(2))
    pinged = [form(h.body)["hub.url"][0] for h in http_server.hits_for("/hub")]
    assert pinged[2:] == ["https://feeds.example.org/peace-talks.atom", "https://feeds.example.org/peace-talks.rss"]
    assert pinged[2] == publish.feed_url(config, topic.id, "atom")
    # and the feeds name the hub, so subscribers find it
    atom = feedparser.parse((tmp_path / "feeds" / "peace-talks.atom").read_bytes())
    assert [ln.href for ln in atom.feed.links if ln.rel == "hub"] == [hub]
    rss = feedparser.parse((tmp_path / "feeds" / "peace-talks.rss").read_bytes())
    assert [ln.href for ln in rss.feed.links if ln.get("rel") == "hub"] == [hub]
