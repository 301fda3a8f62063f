"""Issue 19.2: a page cannot make feedsvc read (or probe) services inside the network.

A source on 127.0.0.2 redirects to an "internal service" on 127.0.0.1 (another port): refused,
whatever name leads there, and a closed port gives the same answer as an open one. A configured
source's own host:port, `allow_private = true` (global or per source) and another configured
source host are allowed. Real servers throughout; one test stands in for a DNS answer that changes
between the check and the connect (rebinding) by patching the resolver the first check uses, another
by patching socket.getaddrinfo to answer differently the second time (the connect uses the first answer).
"""

from __future__ import annotations

import socket
import time

import pytest
from conftest import LocalServer

from test_robust_support import SELECTORS, feed_ids, run_cli, story_page, write_config

from feedsvc.config import SourceConfig
from feedsvc.errors import FetchError, PrivateAddressError
from feedsvc.fetch import Fetcher
from feedsvc.model import Page

UA = "feedsvc-test/1.0 (+https://example.org/feedsvc)"
SECRET = "INTERNAL-SECRET-7f3a"


@pytest.fixture
def site():
    """The source's host, 127.0.0.2 (not the internal service's)."""
    server = LocalServer(host="127.0.0.2")
    server.route("/robots.txt", "User-agent: *\nAllow: /\n")
    yield server
    server.close()


@pytest.fixture
def internal():
    """The internal service, on 127.0.0.1, that no source names."""
    server = LocalServer()
    server.route("/robots.txt", "User-agent: *\nAllow: /\n")
    server.route("/secret", f"<html><body><ul><li class='story'><a href='/x'><h3>{SECRET}</h3></a></li></ul>"
                            "</body></html>", headers={"Content-Type": "text/html"})
    yield server
    server.close()


def closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def fetch(url: str, now, **kw) -> Page:
    allow = kw.pop("source_allow", False)
    with Fetcher(user_agent=UA, host_delay=0, timeout=5, **kw) as f:
        answer = f.fetch(SourceConfig(url=url, allow_private=allow), None, now=now)
    assert isinstance(answer, Page)
    return answer


def test_a_redirect_to_an_internal_service_is_refused(site, internal, now):
    src = site.route("/news", status=302, headers={"Location": internal.url("/secret")})
    with pytest.raises(PrivateAddressError) as info:
        fetch(src, now)
    err = info.value
    assert err.kind == "private-address"
    assert "127.0.0.1" in err.message and "allow_private" in err.message and src in err.message
    assert not internal.hits_for("/secret"), "the internal service was asked"


def test_a_closed_internal_port_answers_the_same_as_an_open_one(site, internal, now):
    # no port probe: the refusal comes before any connection is tried
    port = closed_port()
    open_src = site.route("/a", status=302, headers={"Location": internal.url("/secret")})
    closed_src = site.route("/b", status=302, headers={"Location": f"http://127.0.0.1:{port}/secret"})
    kinds = []
    for url in (open_src, closed_src):
        with pytest.raises(FetchError) as info:
            fetch(url, now)
        kinds.append(info.value.kind)
    assert kinds == ["private-address", "private-address"]


@pytest.mark.parametrize("name", ["localhost", "127.1", "[::ffff:127.0.0.1]", "2130706433"],
                         ids=["localhost", "short-form", "v4-mapped-v6", "decimal"])
def test_no_name_or_spelling_gets_around_the_check(site, internal, now, name):
    port = internal.httpd.server_address[1]
    src = site.route("/n", status=302, headers={"Location": f"http://{name}:{port}/secret"})
    with pytest.raises(FetchError) as info:
        fetch(src, now)
    # refused, or (for a spelling the resolver does not take) unreachable: never fetched
    assert info.value.kind in ("private-address", "network"), info.value
    assert not internal.hits_for("/secret")


def test_a_dns_answer_that_changes_after_the_check_is_caught_on_the_connected_address(site, internal, now,
                                                                                       monkeypatch):
    # the check is told a public address; a connect that asks DNS again (as urllib3 would on its own)
    # still lands on 127.0.0.1: the peer is checked too
    monkeypatch.setattr("feedsvc.fetch._resolve", lambda host, port, within=None: ["93.184.216.34"])
    monkeypatch.setattr("feedsvc.fetch._connect_to", lambda conn, addresses, connect: connect())
    src = site.route("/r", status=302, headers={"Location": internal.url("/secret")})
    with pytest.raises(PrivateAddressError, match="127.0.0.1"):
        fetch(src, now)
    assert not internal.hits_for("/secret")


def test_the_connection_goes_to_the_address_that_was_checked(site, now, monkeypatch):
    # rebind.test answers 127.0.0.2 (taken for a public address here) the first time it is asked, and
    # 127.0.0.1 after that: a second lookup for the connect would land on another host than was checked
    real = socket.getaddrinfo
    asked: list[str] = []

    def resolver(host, port, *args, **kwargs):
        if host == "rebind.test":
            asked.append(host)
            host = "127.0.0.2" if len(asked) == 1 else "127.0.0.1"
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    monkeypatch.setattr("feedsvc.fetch._non_public", lambda ip: ip == "127.0.0.1")
    site.route("/page", f"<html><body><p>{SECRET} on the checked host</p></body></html>",
               headers={"Content-Type": "text/html"})
    url = f"http://rebind.test:{site.base.rsplit(':', 1)[1]}/page"
    with Fetcher(user_agent=UA, host_delay=0, timeout=5, source_urls=["http://configured.example/"]) as f:
        page = f.fetch(SourceConfig(url=url, robots=False), None, now=now)
    assert isinstance(page, Page) and "on the checked host" in page.text
    assert asked == ["rebind.test"]  # one lookup: checked, then connected to


def test_redirects_within_the_sources_own_host_and_port_work(internal, now):
    src = internal.route("/old", status=301, headers={"Location": "/secret"})
    assert SECRET in fetch(src, now).text


def test_allowed_per_source_globally_or_to_another_configured_source(site, internal, now):
    src = site.route("/news", status=302, headers={"Location": internal.url("/secret")})
    assert SECRET in fetch(src, now, source_allow=True).text
    assert SECRET in fetch(src, now, allow_private=True).text
    # (the fetcher knows the config's sources: this one and another on the internal service's host:port)
    assert SECRET in fetch(src, now, source_urls=[src, internal.url("/feed-page")]).text  # same host:port


def test_a_redirect_of_robots_txt_is_guarded_too(site, internal, now):
    site.route("/robots.txt", status=302, headers={"Location": internal.url("/robots.txt")})
    src = site.route("/page", "<html><body><p>hello</p></body></html>", headers={"Content-Type": "text/html"})
    with pytest.raises(PrivateAddressError):
        fetch(src, now)
    assert not internal.hits_for("/robots.txt")


def test_refresh_names_the_refusal_and_publishes_nothing_internal(tmp_path, site, internal):
    good = site.route("/good", story_page("good", range(1, 3)), headers={"Content-Type": "text/html"})
    bad = site.route("/bad", status=302, headers={"Location": internal.url("/secret")})
    config = write_config(tmp_path / "config.toml", [
        {"id": "good", "title": "Good", "sources": [{"url": good, **SELECTORS}]},
        {"id": "bad", "title": "Bad", "sources": [{"url": bad, **SELECTORS}]},
    ])
    t0 = time.monotonic()
    proc = run_cli(config, "refresh", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert "private-address" in proc.stderr and "Traceback" not in proc.stderr
    assert len(feed_ids(tmp_path / "feeds" / "good.atom")) == 2
    for path in (tmp_path / "feeds").iterdir():
        assert SECRET not in path.read_text(encoding="utf-8"), path
    assert not internal.hits_for("/secret")
    assert time.monotonic() - t0 < 30

    # the user allows it for that source: followed
    text = config.read_text().replace(f'url = "{bad}"', f'url = "{bad}"\nallow_private = true')
    config.write_text(text)
    proc = run_cli(config, "refresh", "--force", "bad", cwd=tmp_path)  # (past its backoff)
    assert proc.returncode == 0, proc.stderr
    assert SECRET in (tmp_path / "feeds" / "bad.atom").read_text(encoding="utf-8")


def test_a_kept_alive_connection_allowed_for_one_source_is_not_reused_for_another(site, internal, now):
    # source A may reach the internal service; B, fetched next by the same fetcher, may not: the
    # connection A left open (keep-alive) must not carry B's request
    a = site.route("/a", status=302, headers={"Location": internal.url("/secret")})
    b = site.route("/b", status=302, headers={"Location": internal.url("/secret")})
    with Fetcher(user_agent=UA, host_delay=0, timeout=5) as f:
        assert isinstance(f.fetch(SourceConfig(url=a, allow_private=True), None, now=now), Page)
        asked = len(internal.hits_for("/secret"))
        with pytest.raises(PrivateAddressError):
            f.fetch(SourceConfig(url=b), None, now=now)
    assert len(internal.hits_for("/secret")) == asked
