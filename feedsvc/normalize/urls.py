"""URLs: one article, one URL.

canonical_url makes a link absolute (against the page URL or <base href>), lowercases scheme and host (IDN
hosts as punycode), drops the default port, the fragment and tracking parameters (TRACKING_PARAMS,
TRACKING_PREFIXES), percent-encodes what must be encoded (non-ASCII, spaces) with upper-case hex, and
resolves dot segments. The remaining query parameters keep their order: servers may depend on it.

A link never changes target: the path is kept as written, empty segments included ("/*-http://host/" is not
"/*-http:/host/", which urllib's urljoin would make of it: _join resolves relative links itself), and
percent-encoding changes only where the server reads the same path (hex case, unreserved characters).
Anything that is not an http(s) or file URL (javascript:, mailto:, data:, tel:, bare fragments) is None.
"""

from __future__ import annotations

import re
from functools import lru_cache
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from feedsvc.uri import join, remove_dot_segments

# Parameters that say where a click came from, never which article it is.
TRACKING_PREFIXES = ("utm_", "hsa_", "pk_", "mtm_", "ga_")
TRACKING_PARAMS = frozenset({
    "fbclid", "gclid", "gclsrc", "dclid", "gbraid", "wbraid", "msclkid", "yclid", "twclid", "ttclid",
    "igshid", "igsh", "mc_cid", "mc_eid", "_ga", "_gl", "_hsenc", "_hsmi", "hsctatracking", "mkt_tok",
    "li_fat_id", "vero_id", "vero_conv", "oly_anon_id", "oly_enc_id", "rb_clickid", "s_cid", "wickedid",
    "ncid", "cmpid", "spm", "scm", "sr_share", "__twitter_impression", "at_medium", "at_campaign",
})
_SCHEMES = ("http", "https", "file")
_DEFAULT_PORTS = {"http": "80", "https": "443"}
_JUNK = re.compile(r"[\t\n\r]")
_EDGE = re.compile(r"^[\x00-\x20]+|[\x00-\x20]+$")
_PCT = re.compile(r"%[0-9a-fA-F]{2}")
_BAD_PCT = re.compile(r"%(?![0-9a-fA-F]{2})")
_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.\-]*):")
# Characters kept as they are in paths and queries (RFC 3986 reserved + unreserved, and '%').
_PATH_SAFE = "/:@!$&'()*+,;=-._~%"
_QUERY_SAFE = "/?:@!$&'()*+,;=-._~%"
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def _pct_upper(m: re.Match[str]) -> str:
    ch = chr(int(m.group(0)[1:], 16))
    return ch if ch in _UNRESERVED else m.group(0).upper()


def _encode(part: str, safe: str) -> str:
    if "%" in part:  # (the regular expressions cost more than the test, and most parts have no %)
        part = _BAD_PCT.sub("%25", part)
    part = quote(part, safe=safe, errors="surrogatepass")
    return _PCT.sub(_pct_upper, part) if "%" in part else part


def _host(netloc: str) -> str | None:
    userinfo, _, hostport = netloc.rpartition("@")
    if hostport.startswith("["):  # IPv6 literal
        host, _, port = hostport.partition("]")
        host += "]"
        port = port[1:] if port.startswith(":") else ""
    else:
        host, _, port = hostport.partition(":")
    host = host.lower().rstrip(".")
    if not host:
        return None
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:  # not a name any resolver could look up
            return None
        host = host.rstrip(".")
        if not host:
            return None
    if port and not port.isdigit():
        return None
    return (userinfo + "@" if userinfo else "") + host + (":" + port if port else "")


def _query(q: str) -> str:
    if not q:
        return ""
    kept = []
    for pair in q.split("&"):
        if not pair:
            continue
        name = unquote(pair.partition("=")[0]).lower()
        if name in TRACKING_PARAMS or name.startswith(TRACKING_PREFIXES):
            continue
        kept.append(_encode(pair, _QUERY_SAFE))
    return "&".join(kept)


def _slashes(u: str) -> str:
    """Backslashes as slashes before the query, as browsers read web URLs; one in the query is data
    (?q=a\\b is not ?q=a/b) and is only percent-encoded."""
    if "\\" not in u:
        return u
    cut = min((i for i in (u.find("?"), u.find("#")) if i >= 0), default=len(u))
    return u[:cut].replace("\\", "/") + u[cut:]


def _clean_edges(u: str) -> str:
    """Tabs and line breaks out, C0 controls and spaces off the ends (the tests are cheaper than the regexes)."""
    if "\t" in u or "\n" in u or "\r" in u:
        u = _JUNK.sub("", u)
    if u and (u[0] <= "\x20" or u[-1] <= "\x20"):
        u = _EDGE.sub("", u)
    return u


@lru_cache(maxsize=256)
def _base_of(base: str) -> tuple[str, bool] | None:
    """The cleaned base and whether it is a file: URL; None when it cannot resolve a web link."""
    b = _clean_edges(base)
    bm = _SCHEME.match(b)
    if bm is None or bm.group(1).lower() not in _SCHEMES:
        return None
    is_file = bm.group(1).lower() == "file"
    return (b if is_file else _slashes(b)), is_file


def canonical_url(url: str | None, base: str | None = None) -> str | None:
    """The canonical absolute form of `url` (relative to `base`), or None if it is not a web link."""
    if not url:
        return None
    u = _clean_edges(url).strip()
    if not u or u.startswith("#"):
        return None
    m = _SCHEME.match(u)
    if m is None:
        if base is None:
            if not u.startswith("//"):
                return None
            base = "https:"
        based = _base_of(base)
        if based is None:
            return None
        b, is_file = based
        if not is_file:
            u = _slashes(u)
        try:
            u = join(b, u)
        except ValueError:
            return None
    scheme = (_SCHEME.match(u) or m).group(1).lower()  # type: ignore[union-attr]
    if scheme not in _SCHEMES:
        return None
    if scheme != "file":
        u = _slashes(u)
    try:
        parts = urlsplit(u)
    except ValueError:
        return None
    if scheme == "file":
        netloc = parts.netloc.lower()
    else:
        host = _host(parts.netloc)
        if host is None:
            return None
        netloc = host
        port = _DEFAULT_PORTS.get(scheme)
        if port and netloc.endswith(":" + port) and not netloc.endswith("]"):
            netloc = netloc[: -len(port) - 1]
        elif netloc.endswith(":"):
            netloc = netloc[:-1]
    path = _encode(parts.path, _PATH_SAFE) or "/"
    if "/." in path:
        path = remove_dot_segments(path) or "/"
    if not netloc and path.startswith("//"):  # urlunsplit would read the first segment as a host
        path = "/" + path.lstrip("/")
    return urlunsplit((scheme, netloc, path, _query(parts.query), ""))
