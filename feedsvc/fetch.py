"""Polite, bounded fetching. The only module that imports requests.

Every page fetch is bounded: a connect timeout, a read timeout per socket read, a total deadline
per page (a server that drips one byte a second is cut off), a size cap on the *decoded* bytes (a
gzip bomb stops at the cap), a redirect cap with loop detection. Politeness: robots.txt for our
User-Agent, one request at a time per host with a minimum gap (and the site's Crawl-delay),
Retry-After on 429/503, retries with exponential backoff and jitter for connection errors and 5xx
only. Conditional GET with the validators the store kept; 304 -> NotModified without a body.
"""

from __future__ import annotations

import collections
import email.utils
import functools
import heapq
import ipaddress
import itertools
import logging
import math
import os
import queue
import random
import re
import socket
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit
from urllib.robotparser import RobotFileParser

import requests
import urllib3.connection
import urllib3.connectionpool
import urllib3.exceptions
import urllib3.response
from requests.adapters import HTTPAdapter
from requests.cookies import RequestsCookieJar, extract_cookies_to_jar
from requests.utils import check_header_validity

from feedsvc import abandon, uri
from feedsvc.config import SourceConfig
from feedsvc.decode import decode_body, media_type
from feedsvc.errors import FetchError, PrivateAddressError, SourceError
from feedsvc.model import NotModified, Page, RobotsTxt, SourceState

log = logging.getLogger(__name__)

CHUNK = 64 * 1024
RETRY_AFTER_MAX_SLEEP = 30.0  # longer than this: do not block, let the pipeline back the source off
ROBOTS_TIMEOUT = 10.0
ROBOTS_MAX_BYTES = 512 * 1024  # what Google reads of a robots.txt
CRAWL_DELAY_MAX = 60.0
REDIRECT_STATUSES = (301, 302, 303, 307, 308)
MAX_WORKERS = 8  # hosts fetched at once
# A fetching thread is added only when no page came for this long while hosts are waiting: threads
# overlap the network's waits, and where answers come quicker than this (a 304 from a nearby server)
# one or two threads keep up, and more only take turns at the GIL (8 threads cost 0.25 ms of CPU a
# page more than 1 on 2 cores). A slow network has all of them running within MAX_WORKERS × this.
RAMP_AFTER = 0.002
MAX_RETRIES = 2
_ERRNO = re.compile(r"\[Errno -?\d+\] ([^'\")\]]+)")


def next_try_at(consecutive_failures: int, now: datetime, retry_after: float | None = None,
                base: timedelta = timedelta(minutes=5), cap: timedelta = timedelta(hours=6)) -> datetime:
    """When to try a failing source again: base, 2×base, 4×base … up to cap; never before retry_after."""
    n = max(1, consecutive_failures)
    delay = min(cap, base * (2 ** min(n - 1, 32)))
    if retry_after is not None and retry_after > 0:
        delay = max(delay, timedelta(seconds=min(retry_after, 7 * 86400)))  # a week bounds a silly header
    return now + delay


def parse_retry_after(value: str | None, date_header: str | None, now: datetime) -> float | None:
    """Retry-After as seconds: delta-seconds or an HTTP date (measured against the server's Date if sent)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    ref = now
    if date_header:
        try:
            ref = email.utils.parsedate_to_datetime(date_header)
        except (TypeError, ValueError, IndexError):
            pass
    if when.tzinfo is None or ref.tzinfo is None:
        return None
    return max(0.0, (when - ref).total_seconds())


def time_bound(sources: Sequence[SourceConfig], *, timeout: float, host_delay: float,
               host_delays: dict[str, float] | None = None, pages_per_source: int = 1,
               max_retries: int = MAX_RETRIES, max_workers: int = MAX_WORKERS) -> float:
    """How long Fetcher.fetch_many of these sources may take when every page uses its whole deadline:
    what a `feedsvc run` job allows for fetching before it calls the job stuck (daemon.job_deadline).

    A page's deadline covers everything it asks the server (robots.txt, DNS, redirects, retries); our
    own pacing extends it: the host's gap before the page and before each retry (robots.txt is not
    paced). One host's pages are fetched one after another, up to max_workers hosts at once, the
    longest queues first, as fetch_many does. A Crawl-delay longer than the configured gap is not
    known before the site is asked: the caller's margin covers it. Local files take no time here."""
    delays = {k.lower(): v for k, v in (host_delays or {}).items()}
    queues: dict[str, float] = {}
    for source in sources:
        if source.is_local:
            continue
        host = (urlsplit(source.url).hostname or "").lower()
        page = timeout + delays.get(host, host_delay) * (1 + max_retries)
        queues[host] = queues.get(host, 0.0) + pages_per_source * page
    busy = [0.0] * min(max_workers, len(queues))  # when each fetching thread is free (a min-heap)
    for queue_seconds in sorted(queues.values(), reverse=True):
        heapq.heapreplace(busy, busy[0] + queue_seconds)  # the next queue goes to the first one free
    return max(busy, default=0.0)


@dataclass
class _Deadline:
    """A page's time budget. Our own pacing waits extend it: the budget is for the server."""

    end: float

    def remaining(self) -> float:
        return self.end - time.monotonic()

    def extend(self, seconds: float) -> None:
        self.end += seconds


@dataclass
class _Host:
    lock: threading.Lock = field(default_factory=threading.Lock)  # one request at a time
    next_at: float = 0.0  # monotonic time before which no request may start
    crawl_delay: float = 0.0


@dataclass
class _Origin:
    """robots.txt is per origin (scheme, host, port), not per host name."""

    lock: threading.Lock = field(default_factory=threading.Lock)  # one robots.txt fetch
    rules: RobotFileParser | None = None
    error: FetchError | None = None  # it timed out: the origin's other sources fail at once this run


class Fetcher:
    """Fetches source pages: one requests.Session, polite per host, bounded per page. Thread-safe."""

    retry_base = 0.5  # seconds; first retry waits about this, then doubles (with jitter)

    def __init__(self, *, user_agent: str, timeout: float = 30.0, max_bytes: int = 5_000_000,
                 host_delay: float = 1.0, host_delays: dict[str, float] | None = None,
                 max_retries: int = MAX_RETRIES, max_redirects: int = 5, max_workers: int = MAX_WORKERS,
                 robots: dict[str, RobotsTxt] | None = None, allow_private: bool = False,
                 source_urls: Sequence[str] = (), reserve: Callable[[str, float], float] | None = None) -> None:
        self.user_agent = user_agent
        self.timeout = float(timeout)
        self.connect_timeout = min(10.0, self.timeout)
        self.max_bytes = max_bytes
        self.host_delay = host_delay
        self.host_delays = {k.lower(): v for k, v in (host_delays or {}).items()}
        self.max_retries = max_retries
        self.max_redirects = max_redirects
        self.max_workers = max_workers
        self._session = requests.Session()
        self._session.headers.update({
            "User-Agent": user_agent,
            "Accept": "text/html,application/xhtml+xml,application/json;q=0.9,text/plain;q=0.8,*/*;q=0.5",
            "Accept-Encoding": "gzip, deflate",
        })
        # No urllib3-level retries (ours are deadline-aware). urllib3 keeps a pool per host (the last
        # max(10, max_workers) hosts); a host is asked one request at a time (_turn), so its pool
        # lends one connection at a time: 2 leaves a margin. (A pool is filled with `pool_maxsize`
        # empty slots when made and drained when dropped: at 10, 51 µs a host instead of 26, on a
        # refresh that meets a new host for nearly every page.)
        adapter = self._adapter = _WatchedAdapter(pool_connections=max(10, max_workers), pool_maxsize=2,
                                                  max_retries=0)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        # The environment's proxies and CA bundle, read once per host: with trust_env, requests reads
        # all of os.environ twice and looks for a ~/.netrc on every request, a fifth of the CPU of a
        # conditional GET. (.netrc credentials are not sent: feedsvc reads public pages.)
        self._session.trust_env = False
        template = requests.PreparedRequest()
        template.prepare_headers(self._session.headers)  # (checks each)
        self._headers = template.headers
        bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
        self._verify: bool | str = bundle or True
        self._session.verify = self._verify
        self._proxies: dict[tuple[str, str], dict[str, str]] = {}  # (scheme, netloc) -> proxies
        # With no proxy in the environment (the usual case), no host needs asking: each ask reads
        # all of os.environ twice, half a millisecond per host on a warm refresh of distinct sites.
        self._any_proxy = any(scheme != "no" for scheme in urllib.request.getproxies())  # ("no": NO_PROXY)
        self._hosts: dict[str, _Host] = {}
        self._origins: dict[str, _Origin] = {}
        # robots.txt known from earlier runs (fresh ones only: the caller keeps them a day), by
        # origin; what this fetcher asked the network for is in `fetched_robots`, for the caller
        self.known_robots = dict(robots or {})
        self.fetched_robots: list[RobotsTxt] = []
        self._hosts_lock = threading.Lock()
        self._watchdog = _Watchdog()
        # Non-public addresses are for configured sources only (their own host:port), unless allowed
        self.allow_private = allow_private
        self.source_origins = _origins(tuple(source_urls))
        # With workers on several machines, a host's gap is the fleet's: `reserve(host, gap)` books the
        # next request slot in the shared state and says how long to wait for it (0: none).
        self.reserve = reserve
        self._abandoned = False
        abandon.on_abandon(self.abandon)  # inside a `feedsvc run` job: cut off if the job gets stuck

    # ------------------------------------------------------------------ lifecycle

    def abandon(self) -> None:
        """From another thread, for a refresh given up on (a daemon job stuck past its deadline):
        every request in flight is cut off now (its socket shut down, as at its deadline), and no
        request starts any more. Safe at any moment: a fetch only hands back pages, it writes nothing."""
        self._abandoned = True
        self._watchdog.fire_all()
        self.close()

    def _check_abandoned(self, url: str) -> None:
        if self._abandoned:
            raise FetchError("timeout", f"{url}: not asked, the refresh was abandoned (stuck past its deadline)")

    def close(self) -> None:
        self._watchdog.close()
        self._session.close()

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ public

    def fetch(self, source: SourceConfig, state: SourceState | None, *, now: datetime,
              force: bool = False) -> Page | NotModified:
        """Fetch and decode one source. Raises FetchError (kind: network, timeout, http, too-large,
        decode, robots, redirects, empty, private-address, file)."""
        if source.is_local:
            return self._fetch_file(source, now)
        if not source.robots:
            log.info("%s: robots.txt not consulted (robots = false in the config)", source.url)
        headers: dict[str, str] = {}
        if state is not None and not force:
            if state.etag:
                headers["If-None-Match"] = state.etag
            if state.last_modified:
                headers["If-Modified-Since"] = state.last_modified
        deadline = _Deadline(time.monotonic() + self.timeout)
        url = source.url
        chain = [url]
        # A fetcher that knows the configured sources trusts their origins only: a URL it is handed that
        # is none of them (an item's own page, read for its article) gets no trust from being asked for.
        own = None if self.source_origins else _host_port(url)
        _tls.guard = _Guard(self.allow_private or source.allow_private, self.source_origins, own)
        try:
            return self._follow(source, url, chain, headers, deadline, now)
        except PrivateAddressError as exc:
            if len(chain) > 1:
                raise PrivateAddressError(f"{exc.message}; redirects: {' -> '.join(chain)}") from None
            raise
        except FetchError as exc:
            if exc.kind == "http" and len(chain) > 1:  # the error is the redirect target's: name it
                raise FetchError("http", f"{exc.message} from {chain[-1]}", retry_after=exc.retry_after) from None
            raise
        finally:
            _tls.guard = None

    def _follow(self, source: SourceConfig, url: str, chain: list[str], headers: dict[str, str],
                deadline: _Deadline, now: datetime) -> Page | NotModified:
        for _hop in range(self.max_redirects + 1):
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise FetchError("redirects", f"redirected to {url!r}, which is not an http(s) URL")
            if source.robots:
                self._check_robots(url, deadline, now)
            result = self._get_with_retries(url, headers, deadline, now)
            if isinstance(result, str):  # a redirect target
                nxt = result
                if nxt in chain:
                    raise FetchError("redirects", "redirect loop: " + " -> ".join(chain + [nxt]))
                chain.append(nxt)
                url = nxt
                continue
            status, resp_headers, body = result
            if status == 304:
                return NotModified(url=url, fetched_at=now)
            return self._page(url, status, resp_headers, body, source, now)
        raise FetchError("redirects", f"more than {self.max_redirects} redirects: " + " -> ".join(chain))

    def fetch_many(self, jobs: Sequence[tuple[SourceConfig, SourceState | None]], *, now: datetime,
                   force: bool = False, idle: Callable[[], None] | None = None, idle_every: float = 0.25
                   ) -> Iterator[tuple[SourceConfig, Page | NotModified | FetchError]]:
        """Fetch many sources: hosts in parallel (up to max_workers threads, added while the network
        keeps them waiting: RAMP_AFTER), each host's queue in order with its gap.
        Yields (source, Page | NotModified | FetchError) as each finishes. While none comes, `idle` is
        called (in the caller's thread) every `idle_every` s: one slow source must not hold back
        what the caller could already finish with the others."""
        groups: dict[str, list[tuple[SourceConfig, SourceState | None]]] = {}
        for i, (source, state) in enumerate(jobs):
            # local files need no pacing: each is its own queue
            key = f"file#{i}" if source.is_local else (urlsplit(source.url).hostname or "").lower()
            groups.setdefault(key, []).append((source, state))
        if not groups:
            return
        # Bounded: when the caller is slower than the network (it parses and saves what it gets),
        # fetching waits for it instead of holding hundreds of pages in memory.
        results: queue.Queue[tuple[SourceConfig, object]] = queue.Queue(maxsize=self.max_workers)
        stop = threading.Event()

        def put(item: tuple[SourceConfig, object]) -> None:
            while not stop.is_set():  # the caller may have stopped reading
                try:
                    results.put(item, timeout=0.1)
                    return
                except queue.Full:
                    continue

        # the longest queues first, so the total is close to the longest host's queue; each thread
        # takes the next host's queue when it is done with one (one task a thread, not one a host:
        # a task a host cost a tenth of the main thread of a refresh whose pages all answer 304)
        todo = collections.deque(sorted(groups.values(), key=len, reverse=True))

        def run() -> None:
            while not stop.is_set():
                try:
                    group = todo.popleft()  # (atomic)
                except IndexError:
                    return
                for source, state in group:
                    if stop.is_set():
                        return
                    try:
                        put((source, self.fetch(source, state, now=now, force=force)))
                    except FetchError as exc:
                        put((source, exc))
                    except BaseException as exc:  # a bug: hand it to the caller's thread
                        put((source, _Crash(exc)))

        threads = min(self.max_workers, len(groups))
        pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="feedsvc-fetch")
        try:
            pool.submit(run)
            started = 1
            next_idle = time.monotonic() + idle_every
            for _ in range(len(jobs)):
                while True:
                    ramping = started < threads and todo  # hosts no thread has taken yet
                    wait = RAMP_AFTER if ramping else idle_every if idle is not None else None
                    try:
                        source, outcome = results.get(timeout=wait)
                        break
                    except queue.Empty:
                        if ramping:
                            pool.submit(run)
                            started += 1
                        if idle is not None and time.monotonic() >= next_idle:
                            idle()
                            next_idle = time.monotonic() + idle_every
                if isinstance(outcome, _Crash):
                    raise outcome.exc
                yield source, outcome  # type: ignore[misc]
        finally:
            stop.set()
            pool.shutdown(wait=True, cancel_futures=True)

    # ------------------------------------------------------------------ one request

    def _proxies_for(self, url: str) -> dict[str, str]:
        """HTTP(S)_PROXY / ALL_PROXY for this URL, unless NO_PROXY exempts its host (as requests would)."""
        if not self._any_proxy:
            return {}
        parts = urlsplit(url)
        key = (parts.scheme, parts.netloc)
        proxies = self._proxies.get(key)
        if proxies is None:
            proxies = self._proxies[key] = requests.utils.get_environ_proxies(url)
        return proxies

    def _host(self, hostname: str) -> _Host:
        with self._hosts_lock:
            return self._hosts.setdefault(hostname, _Host())

    def _gap(self, hostname: str, host: _Host) -> float:
        return max(self.host_delays.get(hostname, self.host_delay), host.crawl_delay)

    @contextmanager
    def _turn(self, url: str, deadline: _Deadline, paced: bool = True) -> Iterator[None]:
        """Hold the host for one request, after its minimum gap since the previous request started.

        An unpaced request (robots.txt) still waits its turn but opens no gap: the page it guards
        follows at once. Otherwise every host costs a full host_delay per run before its first page,
        which made a refresh of N hosts take N / max_workers × host_delay even when all answer 304.
        """
        hostname = (urlsplit(url).hostname or "").lower()
        host = self._host(hostname)
        waited_from = time.monotonic()
        with host.lock:
            wait = host.next_at - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            if paced and self.reserve is not None:
                gap = self._gap(hostname, host)
                wait = self.reserve(hostname, gap)
                if wait > 0:  # other workers asked this host first
                    time.sleep(wait)
            start = time.monotonic()
            deadline.extend(start - waited_from)  # queueing for politeness is not the server's time
            if paced:
                host.next_at = start + self._gap(hostname, host)
            yield

    def _get_with_retries(self, url: str, headers: dict[str, str], deadline: _Deadline,
                          now: datetime) -> str | tuple[int, dict[str, str], bytes]:
        """GET one URL with retries. Returns a redirect target, or (status, headers, body)."""
        attempt = 0
        while True:
            retry_after: float | None = None
            try:
                with self._turn(url, deadline):
                    return self._get_once(url, headers, deadline, now)
            except _Retryable as exc:
                error, retry_after = exc.error, exc.error.retry_after
            if attempt >= self.max_retries:
                raise error
            attempt += 1
            if retry_after is not None:
                wait = retry_after
                if wait > RETRY_AFTER_MAX_SLEEP or wait > deadline.remaining() - 1:
                    raise error  # carries retry_after: the pipeline backs the source off
            else:
                wait = self.retry_base * (2 ** (attempt - 1)) * random.uniform(0.75, 1.25)
                if wait > deadline.remaining() - 1:
                    raise error
            log.info("%s: %s; retry %d/%d in %.1f s", url, error, attempt, self.max_retries, wait)
            time.sleep(wait)

    def _get_once(self, url: str, headers: dict[str, str], deadline: _Deadline,
                  now: datetime) -> str | tuple[int, dict[str, str], bytes]:
        self._check_abandoned(url)
        remaining = deadline.remaining()
        if remaining <= 0:
            raise FetchError("timeout", f"the {self.timeout:g} s deadline was used up (robots.txt, redirects, "
                                        f"retries) before {url} was asked")
        # Timeouts bound each socket read; a server dripping its *headers* a byte at a time defeats
        # them. The watchdog shuts the socket down at the deadline (plus a little grace, so that the
        # ordinary checks report first when they can).
        watch = _Watch(deadline.end)
        _tls.watch = watch
        self._watchdog.arm(remaining + 0.25, watch)
        try:
            return self._request(url, headers, deadline, now, watch)
        except Exception:
            if watch.fired:
                raise FetchError("timeout", f"{url}: cut off at the {self.timeout:g} s deadline "
                                            "(the server was still sending)") from None
            raise
        finally:
            watch.finish()
            _tls.watch = None

    def _request(self, url: str, headers: dict[str, str], deadline: _Deadline, now: datetime,
                 watch: _Watch) -> str | tuple[int, dict[str, str], bytes]:
        remaining = deadline.remaining()
        netloc = urlsplit(url).netloc
        try:
            prep = self._prepare(url, headers)
            # Handed to the adapter Session.send() would pick (requests still sends, pools and reads it):
            # of what Session.send() adds, feedsvc uses only the cookies a response sets, kept below.
            # It also reads a redirect's whole body, decoded, to pass the connection on (_response
            # reads at most max_bytes of it, as sent), times the request, runs the session's
            # response hooks (there are none) and prepares the request a redirect would lead to.
            resp = self._adapter.send(prep, stream=True, verify=self._verify, cert=self._session.cert,
                                      proxies=self._proxies_for(url),
                                      timeout=(min(self.connect_timeout, remaining), remaining))
        except requests.exceptions.ConnectTimeout:
            raise _Retryable(FetchError("timeout", f"could not connect to {netloc} within "
                                                   f"{min(self.connect_timeout, remaining):.3g} s")) from None
        except requests.exceptions.ReadTimeout:
            raise FetchError("timeout", f"{netloc} accepted the connection but sent no response "
                                        f"within {remaining:.3g} s") from None
        except requests.exceptions.TooManyRedirects as exc:  # not expected: we follow redirects ourselves
            raise FetchError("redirects", str(exc)) from None
        except requests.exceptions.ConnectionError as exc:
            raise _Retryable(FetchError("network", f"cannot reach {netloc}: {_reason(exc)}")) from None
        except requests.exceptions.RequestException as exc:
            raise FetchError("network", f"{url}: {_reason(exc)}") from None
        with resp:
            try:
                _keep_cookies(self._session.cookies, prep, resp.raw)
                return self._response(resp, url, deadline, now)
            finally:
                watch.disarm()  # before the connection goes back to the pool

    def _prepare(self, url: str, headers: dict[str, str]) -> requests.PreparedRequest:
        """The request Session.get(url, headers=headers) sends: the session's headers, then ours, its
        cookies, the URL's own credentials if any. Prepared here, not by Session.request(), whose
        merging of settings we never use (no params, body, per-request cookies or auth) goes through
        isinstance() checks against typing Protocols, slow on Python 3.11: 84 µs a request, 28 here."""
        prep = requests.PreparedRequest()
        prep.prepare_method("GET")
        prep.url = _prepared_url(url)
        # the session's headers (set once, in __init__) checked once; ours, as prepare_headers() does
        merged = self._headers.copy()
        for header in headers.items():
            check_header_validity(header)
            merged[header[0]] = header[1]
        prep.headers = merged
        prep.prepare_cookies(self._session.cookies)
        prep.prepare_body(None, None)
        prep.prepare_auth(None, url)
        prep.prepare_hooks(self._session.hooks)
        return prep

    def _response(self, resp: requests.Response, url: str, deadline: _Deadline,
                  now: datetime) -> str | tuple[int, dict[str, str], bytes]:
        status = resp.status_code
        resp_headers = dict(resp.headers)
        if status in REDIRECT_STATUSES:
            location = resp.headers.get("Location")
            if not location:
                raise FetchError("redirects", f"HTTP {status} from {url} without a Location header")
            self._drain(resp.raw)
            return uri.join(url, location.strip())  # as a browser follows it: '//' in a path kept
        if status == 304:
            return status, resp_headers, b""
        if status >= 400:
            reason = f"HTTP {status} {resp.reason or ''}".strip()  # the source's URL is said once, by the caller
            if status in (429, 503):
                ra = parse_retry_after(resp.headers.get("Retry-After"), resp.headers.get("Date"), now)
                if ra is not None:
                    err = FetchError("http", f"{reason} (Retry-After: {ra:g} s)", retry_after=ra)
                    raise _Retryable(err)
            if status >= 500:
                raise _Retryable(FetchError("http", reason))
            raise FetchError("http", reason)
        return status, resp_headers, self._read_body(resp, url, deadline)

    def _drain(self, raw: urllib3.response.BaseHTTPResponse) -> None:
        """Read a redirect's body (as sent, at most max_bytes), so that its connection can serve the
        next request; one that sends more, or fails, is closed instead. (Session.send() read it whole.)"""
        left = self.max_bytes
        try:
            while left > 0:
                chunk = raw.read1(CHUNK, decode_content=False)
                if not chunk:
                    return
                left -= len(chunk)
        except (urllib3.exceptions.HTTPError, OSError):
            pass

    def _read_body(self, resp: requests.Response, url: str, deadline: _Deadline) -> bytes:
        """Read the body as a stream: decoded bytes counted against the cap, the clock against the deadline."""
        declared = resp.headers.get("Content-Length")
        if declared and declared.strip().isdigit() and int(declared) > self.max_bytes:
            raise FetchError("too-large", f"{url} is {int(declared):,} bytes (Content-Length); "
                                          f"the limit is {self.max_bytes:,}")
        raw = resp.raw
        buf = bytearray()
        encoded = resp.headers.get("Content-Encoding", "").strip().lower()
        try:
            while True:
                remaining = deadline.remaining()
                if remaining <= 0:
                    raise FetchError("timeout", f"{url}: body not complete after the {self.timeout:g} s "
                                                f"deadline ({len(buf):,} bytes received)")
                _set_read_timeout(raw, remaining)
                # read1 returns what one socket read brings (a drip cannot hold us past the deadline);
                # decode_content=True decompresses in bounded steps, so the cap counts decoded bytes
                chunk = raw.read1(CHUNK, decode_content=True)
                if not chunk:
                    break
                buf += chunk
                if len(buf) > self.max_bytes:
                    what = f"after {encoded} decompression" if encoded and encoded != "identity" else "read"
                    raise FetchError("too-large", f"{url} is more than {self.max_bytes:,} bytes ({what}); "
                                                  "stopped reading")
        except urllib3.exceptions.ReadTimeoutError:
            if deadline.remaining() <= 0.1:  # the socket timeout was the deadline's remainder
                raise FetchError("timeout", f"{url}: body not complete after the {self.timeout:g} s "
                                            f"deadline ({len(buf):,} bytes received)") from None
            raise FetchError("timeout", f"{url}: the server stopped sending the body "
                                        f"({len(buf):,} bytes received)") from None
        except urllib3.exceptions.ProtocolError as exc:
            incomplete = next((a for a in exc.args if isinstance(a, urllib3.exceptions.IncompleteRead)), None)
            if incomplete is not None or "IncompleteRead" in str(exc):
                expected = declared or "?"
                raise _Retryable(FetchError("network", f"{url}: connection closed after {len(buf):,} of "
                                                       f"{expected} bytes (truncated body)")) from None
            raise _Retryable(FetchError("network", f"{url}: connection broken while reading the body "
                                                   f"({_reason(exc)})")) from None
        except urllib3.exceptions.DecodeError as exc:
            raise FetchError("decode", f"{url}: cannot decompress the body "
                                       f"(Content-Encoding: {encoded}): {_reason(exc)}") from None
        except OSError as exc:  # the socket itself failed mid-body
            raise _Retryable(FetchError("network", f"{url}: {_reason(exc)} while reading the body")) from None
        watch = getattr(_tls, "watch", None)
        if watch is not None and watch.fired:  # the watchdog's shutdown reads as an end of file
            raise FetchError("timeout", f"{url}: body not complete after the {self.timeout:g} s "
                                        f"deadline ({len(buf):,} bytes received)")
        if declared and declared.strip().isdigit() and not encoded and len(buf) < int(declared):
            raise _Retryable(FetchError("network", f"{url}: connection closed after {len(buf):,} of "
                                                   f"{int(declared):,} bytes (truncated body)"))
        return bytes(buf)

    # ------------------------------------------------------------------ pages

    def _page(self, url: str, status: int, headers: dict[str, str], body: bytes, source: SourceConfig,
              now: datetime) -> Page:
        ctype = _header(headers, "Content-Type")
        text, codec = self._decode(body, url, ctype, source)
        return Page(url=url, text=text, content_type=media_type(ctype, url), encoding=codec,
                    fetched_at=now, status=status, etag=_header(headers, "ETag"),
                    last_modified=_header(headers, "Last-Modified"))

    def _decode(self, body: bytes, url: str, ctype: str | None, source: SourceConfig) -> tuple[str, str]:
        if not body.strip():
            raise FetchError("empty", f"{url} returned an empty page ({len(body)} bytes)")
        try:
            text, codec = decode_body(body, content_type=ctype, override=source.encoding)
        except SourceError as exc:
            raise FetchError("decode", f"{url}: {exc.message}") from None
        if not text.strip():
            raise FetchError("empty", f"{url} returned a page with no text ({len(body)} bytes)")
        return text, codec

    def _fetch_file(self, source: SourceConfig, now: datetime) -> Page:
        path = source.local_path
        try:
            with path.open("rb") as f:
                body = f.read(self.max_bytes + 1)
        except OSError as exc:
            raise FetchError("file", f"cannot read {path}: {exc.strerror or exc}") from None
        if len(body) > self.max_bytes:
            raise FetchError("too-large", f"{path} is more than {self.max_bytes:,} bytes")
        text, codec = self._decode(body, source.url, None, source)
        return Page(url=source.url, text=text, content_type=media_type(None, source.url), encoding=codec,
                    fetched_at=now)

    # ------------------------------------------------------------------ robots.txt

    def _check_robots(self, url: str, deadline: _Deadline, now: datetime) -> None:
        parts = urlsplit(url)
        hostname = (parts.hostname or "").lower()
        origin = f"{parts.scheme}://{parts.netloc}".lower()
        with self._hosts_lock:
            o = self._origins.setdefault(origin, _Origin())
        with o.lock:
            if o.error is not None:
                raise FetchError(o.error.kind, f"{o.error.message}; not asked again in this run")
            if o.rules is None:
                known = self.known_robots.get(origin)
                if known is not None:
                    o.rules = _PARSED_ROBOTS.get(known)
                else:
                    try:
                        o.rules = self._load_robots(origin, deadline, now)
                    except FetchError as exc:
                        if exc.kind == "timeout":
                            o.error = exc
                        raise
                delay = o.rules.crawl_delay(self.user_agent)
                if delay:
                    host = self._host(hostname)
                    host.crawl_delay = max(host.crawl_delay, min(float(delay), CRAWL_DELAY_MAX))
                    log.info("%s asks for Crawl-delay %s s; using %.3g s", hostname, delay, host.crawl_delay)
            rules = o.rules
        if not rules.can_fetch(self.user_agent, url):
            agent = self.user_agent.split("/")[0]
            raise FetchError("robots", f"{parts.scheme}://{parts.netloc}/robots.txt disallows "
                                       f"{parts.path or '/'} for user agent {agent!r}")

    def _load_robots(self, origin: str, deadline: _Deadline, now: datetime) -> RobotFileParser:
        """Ask the origin for its robots.txt within the source's deadline (at most ROBOTS_TIMEOUT).

        Unreachable (refused, reset, DNS) or failing with 5xx: allow all, logged. Connected but no
        complete answer in time: a timeout error for the source. The watchdog bounds the whole
        answer, headers and body, whatever the server drips."""
        robots_url = f"{origin}/robots.txt"
        self._check_abandoned(robots_url)
        with self._turn(robots_url, deadline, paced=False):
            budget = min(ROBOTS_TIMEOUT, deadline.remaining())
            if budget <= 0:
                raise FetchError("timeout", f"robots.txt: the {self.timeout:g} s deadline was used up "
                                            f"before it could be asked ({robots_url})")
            started = time.monotonic()
            watch = _Watch(started + budget)
            _tls.watch = watch
            self._watchdog.arm(budget, watch)
            body = bytearray()

            def too_slow() -> FetchError:
                return FetchError("timeout", f"robots.txt: no complete answer within {budget:.3g} s "
                                             f"({robots_url}, {len(body):,} bytes received)")
            try:
                resp = self._session.get(robots_url, timeout=(min(budget, self.connect_timeout), budget),
                                         proxies=self._proxies_for(robots_url), stream=True)
                with resp:
                    status = resp.status_code
                    while status == 200 and len(body) < ROBOTS_MAX_BYTES:
                        left = budget - (time.monotonic() - started)
                        if left <= 0 or watch.fired:
                            raise too_slow()
                        _set_read_timeout(resp.raw, left)
                        chunk = resp.raw.read1(CHUNK, decode_content=True)
                        if not chunk:
                            break
                        body += chunk
                    if watch.fired:  # the socket was shut down: what we read may be cut short
                        raise too_slow()
                    watch.disarm()
            except FetchError:
                raise
            except (requests.exceptions.ReadTimeout, urllib3.exceptions.ReadTimeoutError):
                raise too_slow() from None
            except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
                if watch.fired:
                    raise too_slow() from None
                log.warning("%s unreachable (%s); allowing all", robots_url, _reason(exc))
                return _robots_rules(robots_url, 599, "")
            finally:
                watch.finish()
                _tls.watch = None
        if status >= 500:
            log.warning("%s answered HTTP %d; allowing all", robots_url, status)
        else:  # kept for a day; an unreachable or failing site is asked again next run
            text = bytes(body[:ROBOTS_MAX_BYTES]).decode("utf-8", "replace")
            self.fetched_robots.append(RobotsTxt(origin, status, text, now))
            return _robots_rules(robots_url, status, text)
        return _robots_rules(robots_url, status, "")


class _ParsedRobots:
    """robots.txt kept in the store, parsed once for all the fetchers of a process (the refreshes of
    `feedsvc run`, each with a fetcher of its own, read the same stored copy for a day). Keyed by the
    origin and when it was fetched; the status and text are compared too, so that a different copy
    is parsed anew. A parsed RobotFileParser is only read after parse() (can_fetch, crawl_delay), so
    fetchers in several threads can share one. Bounded by entries and by the text they hold."""

    MAX_ENTRIES = 4096
    MAX_CHARS = 16_000_000

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: dict[tuple[str, datetime], tuple[int, str, RobotFileParser]] = {}
        self._chars = 0

    def get(self, known: RobotsTxt) -> RobotFileParser:
        key = (known.origin, known.fetched_at)
        with self._lock:
            hit = self._rules.get(key)
        if hit is not None and hit[0] == known.status and hit[1] == known.body:
            return hit[2]
        rules = _robots_rules(f"{known.origin}/robots.txt", known.status, known.body)
        with self._lock:
            old = self._rules.pop(key, None)
            if old is not None:
                self._chars -= len(old[1])
            self._rules[key] = (known.status, known.body, rules)
            self._chars += len(known.body)
            while self._rules and (len(self._rules) > self.MAX_ENTRIES or self._chars > self.MAX_CHARS):
                self._chars -= len(self._rules.pop(next(iter(self._rules)))[1])  # the oldest first
        return rules


_PARSED_ROBOTS = _ParsedRobots()


@functools.lru_cache(maxsize=8192)
def _prepared_url(url: str) -> str:
    """The URL as PreparedRequest.prepare_url(url, None) makes it (IDNA host, quoting). A function of
    the URL alone, asked for the same sources every refresh of `feedsvc run`: kept (a quarter of
    preparing a request). A URL it refuses is not kept: it raises each time, as before."""
    template = requests.PreparedRequest()
    template.prepare_url(url, None)
    assert template.url is not None
    return template.url


def _keep_cookies(jar: RequestsCookieJar, prep: requests.PreparedRequest,
                  raw: urllib3.response.BaseHTTPResponse) -> None:
    """The cookies a response sets, into the session's jar, as Session.send() keeps them (a site's
    later requests in this run send them back). Most responses set none: nothing to parse then."""
    msg = getattr(raw, "_original_response", None)
    msg = getattr(msg, "msg", None)
    if msg is None or "Set-Cookie" in msg or "Set-Cookie2" in msg:
        extract_cookies_to_jar(jar, prep, raw)


class _Rules(RobotFileParser):
    """Parsed rules that remember their verdicts: kept across refreshes (_ParsedRobots), they are
    asked about the same page URLs each time, and can_fetch() quotes and splits the URL again
    each time. parse() is done before any verdict is asked, and no verdict changes after it."""

    MAX_VERDICTS = 1024

    def __init__(self, url: str = "") -> None:
        super().__init__(url)
        self._verdicts: dict[tuple[str, str], bool] = {}

    def can_fetch(self, useragent: str, url: str) -> bool:
        key = (useragent, url)
        verdict = self._verdicts.get(key)
        if verdict is None:
            verdict = super().can_fetch(useragent, url)
            if len(self._verdicts) < self.MAX_VERDICTS:
                self._verdicts[key] = verdict
        return verdict


def _robots_rules(robots_url: str, status: int, body: str) -> RobotFileParser:
    """The rules of a robots.txt answered with `status`: a 4xx (RFC 9309) or a 5xx (our choice, logged
    by the caller) mean none; a 200, the rules in `body`."""
    rp = _Rules(robots_url)
    if status >= 400:
        rp.allow_all = True  # type: ignore[attr-defined]  # RobotFileParser's own flag, not in typeshed
    else:
        rp.parse(body.splitlines())
    return rp


_tls = threading.local()


class _Watch:
    """The socket a thread is waiting on, so that a timer can cut it off at the deadline."""

    def __init__(self, end: float | None = None) -> None:
        self.end = end  # monotonic time the request's deadline ends: DNS is waited for until then
        self.lock = threading.Lock()
        self.sock: socket.socket | None = None
        self.fired = False
        self.over = False  # the request ended: the watchdog must leave it alone

    def attach(self, sock: socket.socket | None) -> None:
        with self.lock:
            self.sock = sock
            if self.fired:
                self._shutdown()

    def fire(self) -> None:
        with self.lock:
            if self.over:
                return
            self.fired = True
            self._shutdown()

    def disarm(self) -> None:
        with self.lock:
            self.sock = None

    def finish(self) -> None:
        with self.lock:
            self.sock = None
            self.over = True

    def _shutdown(self) -> None:
        if self.sock is not None:
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _Watchdog:
    """One thread that fires each request's _Watch at its deadline.

    (A threading.Timer per request started a thread per request: a tenth of the CPU of a
    refresh whose pages all answer 304.) Finished watches stay in the heap until their time
    comes, then are dropped: at most the requests of one timeout period."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, _Watch]] = []
        self._order = itertools.count()  # ties: never compare two _Watch objects
        self._thread: threading.Thread | None = None
        self._closed = False

    def arm(self, seconds: float, watch: _Watch) -> None:
        with self._cond:
            closed = self._closed  # only after Fetcher.abandon(): a request that slipped past its check
            if not closed:
                heapq.heappush(self._heap, (time.monotonic() + seconds, next(self._order), watch))
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, name="feedsvc-fetch-watchdog",
                                                    daemon=True)
                    self._thread.start()
                elif self._heap[0][2] is watch:
                    self._cond.notify()  # the new deadline is the nearest: wake up earlier
        if closed:
            watch.fire()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._heap.clear()
            self._cond.notify()

    def fire_all(self) -> None:
        """Cut off every request in flight now (Fetcher.abandon)."""
        with self._cond:
            due = [watch for _, _, watch in self._heap]
            self._heap.clear()
            self._cond.notify()
        for watch in due:
            watch.fire()

    def _run(self) -> None:
        while True:
            due: list[_Watch] = []
            with self._cond:
                if self._closed:
                    return
                now = time.monotonic()
                while self._heap and (self._heap[0][0] <= now or self._heap[0][2].over):
                    due.append(heapq.heappop(self._heap)[2])
                if not due:
                    self._cond.wait(self._heap[0][0] - now if self._heap else None)
            for watch in due:
                watch.fire()  # (outside the condition: fire() takes the watch's own lock)


@dataclass(frozen=True)
class _Guard:
    """What the fetching thread may connect to: any address, or non-public ones only for these origins."""

    allow_all: bool
    origins: frozenset[tuple[str, int]]  # the configured sources'
    own: tuple[str, int] | None  # this source's

    def trusts(self, host: str, port: int) -> bool:
        return self.allow_all or (host, port) == self.own or (host, port) in self.origins


@functools.lru_cache(maxsize=4)
def _origins(urls: tuple[str, ...]) -> frozenset[tuple[str, int]]:
    """The (host, port) of these URLs. The same config's are asked for at every refresh of `feedsvc
    run`: kept (a URL split a source each time was a tenth of the main thread)."""
    return frozenset(o for o in map(_host_port, urls) if o)


def _host_port(url: str) -> tuple[str, int] | None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    try:
        port = parts.port
    except ValueError:
        return None
    return parts.hostname.lower(), port or (443 if parts.scheme == "https" else 80)


def _non_public(ip: str) -> bool:
    """Loopback, private, link-local, shared, reserved, multicast, unspecified: anything not global."""
    try:
        addr = ipaddress.ip_address(ip.split("%", 1)[0])
    except ValueError:
        return True
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    return not addr.is_global or addr.is_multicast


def _resolve(host: str, port: int, within: float | None = None) -> list[str]:
    """The addresses of `host`, from one getaddrinfo, in its order (raises socket.gaierror as it does).

    With `within`, the answer is waited for at most that many seconds, then FetchError("timeout"): the
    lookup runs in a helper thread, because getaddrinfo itself cannot be cut off (a resolver that does
    not answer holds it for its own timeouts and retries, 5 s x attempts x servers and more). The helper
    is a daemon thread of its own, not a pool's: a lookup that hangs for ever must not hold up the exit
    of the process, nor take a pooled thread from the lookups after it."""
    literal = host.split("%", 1)[0]
    try:
        ipaddress.ip_address(literal)
        return [host]  # an address already: nothing to ask
    except ValueError:
        pass

    def lookup() -> list[str]:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        return list(dict.fromkeys(str(info[4][0]) for info in infos))  # each address once, in order

    if within is None:
        return lookup()
    answer: list[list[str] | BaseException] = []
    done = threading.Event()

    def run() -> None:
        try:
            answer.append(lookup())
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread
            answer.append(exc)
        finally:
            done.set()

    threading.Thread(target=run, name=f"feedsvc-dns-{host}"[:60], daemon=True).start()
    if not done.wait(max(within, 0.0)):
        waited = math.ceil(max(within, 0.0) * 10) / 10  # 1.99 s of a 2 s deadline is said as 2 s
        raise FetchError("timeout", f"DNS: no answer for {host} within {waited:g} s")
    result = answer[0]
    if isinstance(result, BaseException):
        raise result
    return result


def _refusal(host: str, port: int, ip: str) -> PrivateAddressError:
    return PrivateAddressError(f"refused to connect to {host}:{port}: {ip} is not a public address (loopback, "
                               "private or link-local) and not a configured source; set allow_private = true "
                               "for the source if it is meant")


def _guarded_conn(conn: urllib3.connection.HTTPConnection, connect: Callable[[], socket.socket]) -> socket.socket:
    """Open the connection's socket: the name resolved once, within the request's deadline, under the
    fetching thread's _Guard, and the socket connected to exactly the addresses that were checked.

    DNS counts against the source's one deadline (_resolve waits for it at most what is left). The
    addresses are checked before connecting (so a closed internal port cannot be told from an open
    one: no port probe), and urllib3 is then handed those addresses, not the name: it would resolve
    it again, and a second answer (DNS rebinding, a short TTL) could point somewhere unchecked. The
    peer is checked once more after connecting. Behind a proxy the peer is the proxy: the proxy decides."""
    guard: _Guard | None = getattr(_tls, "guard", None)
    watch: _Watch | None = getattr(_tls, "watch", None)
    host, port = (conn.host or "").strip("[]").lower(), int(conn.port or 80)
    name = conn._dns_host.strip("[]")  # with its trailing dot, if any: what DNS is asked
    checked = guard is not None and conn.proxy is None and not guard.trusts(host, port)
    try:
        if watch is None or watch.end is None:  # not a Fetcher request (none is made without a watch)
            addresses = _resolve(name, port) if checked else []
        else:
            addresses = _resolve(name, port, watch.end - time.monotonic())
    except socket.gaierror as exc:  # as urllib3 reports it: "cannot reach host: Name or service not known"
        raise urllib3.exceptions.NameResolutionError(conn.host, conn, exc) from exc
    if checked:
        bad = next((ip for ip in addresses if _non_public(ip)), None)
        if bad is not None:
            raise _refusal(host, port, bad)
    sock = _connect_to(conn, addresses, connect) if addresses else connect()
    if not checked:
        return sock
    try:
        peer = sock.getpeername()[0]
    except OSError:
        peer = ""
    if _non_public(peer):
        sock.close()
        raise _refusal(host, port, peer)
    return sock


def _connect_to(conn: urllib3.connection.HTTPConnection, addresses: Sequence[str],
                connect: Callable[[], socket.socket]) -> socket.socket:
    """urllib3's own connect (its timeouts, socket options and errors), to these addresses in turn.

    Only the name it resolves is swapped for an address, for the moment of connecting: TLS (SNI,
    the certificate's name) and the Host header still use the URL's host name."""
    name = conn._dns_host
    failure: Exception | None = None
    for ip in addresses:
        conn._dns_host = ip
        try:
            return connect()
        except urllib3.exceptions.NewConnectionError as exc:  # refused, unreachable: the next address
            failure = exc
        finally:
            conn._dns_host = name
    assert failure is not None
    raise failure


def _check_reused(conn: urllib3.connection.HTTPConnection) -> None:
    """A kept-alive connection opened for a source that allowed it must not serve one that does not."""
    guard: _Guard | None = getattr(_tls, "guard", None)
    sock = conn.sock
    if sock is None or guard is None or conn.proxy is not None:
        return  # a new connection: _guarded_conn checks it
    host, port = (conn.host or "").strip("[]").lower(), int(conn.port or 80)
    if guard.trusts(host, port):
        return
    try:
        peer = sock.getpeername()[0]
    except OSError:
        return  # not connected after all: connecting goes through _guarded_conn
    if _non_public(peer):
        raise _refusal(host, port, peer)


def _attach_socket(conn: urllib3.connection.HTTPConnection) -> None:
    watch = getattr(_tls, "watch", None)
    if watch is not None:
        watch.attach(conn.sock)


class _WatchedHTTPConnection(urllib3.connection.HTTPConnection):
    def _new_conn(self) -> socket.socket:
        return _guarded_conn(self, super()._new_conn)

    def request(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        _check_reused(self)
        return super().request(*args, **kwargs)

    def getresponse(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        _attach_socket(self)  # runs in the fetching thread, right before it waits for the headers
        return super().getresponse(*args, **kwargs)


class _WatchedHTTPSConnection(urllib3.connection.HTTPSConnection):
    def _new_conn(self) -> socket.socket:
        return _guarded_conn(self, super()._new_conn)

    def request(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        _check_reused(self)
        return super().request(*args, **kwargs)

    def getresponse(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        _attach_socket(self)
        return super().getresponse(*args, **kwargs)


class _WatchedHTTPPool(urllib3.connectionpool.HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(urllib3.connectionpool.HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


class _WatchedAdapter(HTTPAdapter):
    """requests' adapter whose connections let the deadline watchdog reach their socket."""

    def init_poolmanager(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}

    def build_connection_pool_key_attributes(self, request, verify, cert=None):  # type: ignore[no-untyped-def]
        # (requests >= 2.32.2 asks this for every request; its hook for subclasses)
        if not isinstance(request.url, str) or not isinstance(cert, (str, tuple, type(None))):
            return super().build_connection_pool_key_attributes(request, verify, cert)
        return _pool_key_attributes(request.url, verify, cert)


_KEYS = HTTPAdapter(pool_connections=1, pool_maxsize=1)


@functools.lru_cache(maxsize=8192)
def _pool_key_attributes(url: str, verify: bool | str, cert: str | tuple[str, str] | None
                         ) -> tuple[Any, Any]:
    """The pool key requests makes of a URL and the TLS settings: its scheme, host and port, and, when
    REQUESTS_CA_BUNDLE names a file, whether that is a directory, asked of the disk every request
    (8 % of the CPU of a conditional GET). The same URLs are asked every refresh: kept. The two
    dicts are only read (urllib3 merges them into a copy)."""
    request = requests.PreparedRequest()
    request.url = url
    return HTTPAdapter.build_connection_pool_key_attributes(_KEYS, request, verify, cert)


class _Retryable(Exception):
    """Internal: a failure worth another try (connection errors, 5xx, 429/503 with Retry-After)."""

    def __init__(self, error: FetchError) -> None:
        super().__init__(str(error))
        self.error = error


@dataclass
class _Crash:
    exc: BaseException


def _header(headers: dict[str, str], name: str) -> str | None:
    low = name.lower()
    return next((v for k, v in headers.items() if k.lower() == low), None)


def _reason(exc: BaseException) -> str:
    """The useful part of a requests/urllib3 error: 'Connection refused', not three nested reprs."""
    text = str(exc)
    m = _ERRNO.search(text)
    if m:
        return m.group(1).strip()
    for marker in ("Caused by ", "Failed to establish a new connection: "):
        if marker in text:
            text = text.rsplit(marker, 1)[1]
    return text.strip(" ()'\"") or type(exc).__name__


def _set_read_timeout(raw: object, seconds: float) -> None:
    """Shorten the socket's read timeout to what is left of the deadline (best effort)."""
    conn = getattr(raw, "connection", None) or getattr(raw, "_connection", None)
    sock = getattr(conn, "sock", None)
    if sock is not None:
        try:
            sock.settimeout(max(0.05, seconds))
        except OSError:
            pass
