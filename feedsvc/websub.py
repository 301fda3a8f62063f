"""WebSub publisher pings: tell the hub that a feed changed (hub.mode=publish).

Feeds name the hub with <link rel="hub"> (publish.py); after write_feeds() wrote a feed, the
pipeline calls ping_hub() with the public URLs of the feeds that changed. The hub then fetches
them and pushes to subscribers. WebSub leaves the publish ping to the hub; the de-facto form,
which the common hubs accept, is a form-encoded POST of hub.mode=publish and hub.url.

HTTP goes through urllib, not requests: requests belongs to fetch.py (one owning module per
library), and a form POST needs nothing more. A failed ping is logged and reported as False;
it never stops a refresh (the feed is written; subscribers will catch up on the next change).
"""

from __future__ import annotations

import logging
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from urllib.parse import urlencode, urlsplit

log = logging.getLogger(__name__)

TIMEOUT_SECONDS = 10.0
BACKOFF_SECONDS = 1.0  # first wait; doubles per retry (tests set it to 0)
MAX_BACKOFF_SECONDS = 60.0
# Worth another try: the hub or the way to it is having a bad moment.
RETRY_STATUSES = {408, 425, 429, 500, 502, 503, 504}


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """urllib would turn a redirected POST into a GET without the form: report it instead."""

    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirect)


def _post(hub: str, body: bytes, user_agent: str) -> tuple[int, str | None]:
    """(status, Retry-After) of one POST; status 0 for a network error."""
    req = urllib.request.Request(hub, data=body, method="POST", headers={
        "Content-Type": "application/x-www-form-urlencoded",
        "User-Agent": user_agent,
    })
    try:
        with _opener.open(req, timeout=TIMEOUT_SECONDS) as resp:
            resp.read(65536)
            return resp.status, None
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.headers.get("Retry-After") if exc.headers else None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        log.info("websub: %s unreachable: %s", hub, getattr(exc, "reason", exc))
        return 0, None


def _wait(attempt: int, retry_after: str | None) -> float:
    delay = BACKOFF_SECONDS * (2 ** attempt)
    if retry_after and retry_after.strip().isdigit():
        delay = max(delay, float(retry_after.strip()))
    return min(delay, MAX_BACKOFF_SECONDS)


def ping_hub(hub: str, topic_urls: Sequence[str], *, user_agent: str, retries: int = 3) -> bool:
    """POST hub.mode=publish&hub.url=<url> to `hub` for each URL, retrying transient failures.

    `retries` is the number of extra tries per URL after the first (with exponential backoff).
    True when the hub accepted every URL (2xx); False otherwise (logged, never raised).
    """
    if urlsplit(hub).scheme not in ("http", "https"):
        log.warning("websub: hub %r is not an http(s) URL; not pinging", hub)
        return False
    ok = True
    for url in topic_urls:
        body = urlencode([("hub.mode", "publish"), ("hub.url", url)]).encode("ascii")
        for attempt in range(retries + 1):
            status, retry_after = _post(hub, body, user_agent)
            if 200 <= status < 300:
                log.info("websub: %s accepted %s (%d)", hub, url, status)
                break
            transient = status == 0 or status in RETRY_STATUSES
            if not transient or attempt == retries:
                log.warning("websub: %s refused %s (%s) after %d tries", hub, url,
                            status or "unreachable", attempt + 1)
                ok = False
                break
            time.sleep(_wait(attempt, retry_after))
    return ok
