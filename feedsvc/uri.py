"""Reference resolution (RFC 3986 §5.2) that never changes a link's target. Stdlib only.

urllib's urljoin drops empty path segments while it merges ("/a/*-http://host/x" relative to a
<base href> becomes "/a/*-http:/host/x"), which points somewhere else; browsers keep them. Every
step that resolves a link (extract against <base href>, normalize's canonical form, sanitized
summaries) uses join() so that all of them agree with the browser.
"""

from __future__ import annotations

from functools import lru_cache
from urllib.parse import SplitResult, urlsplit, urlunsplit


def remove_dot_segments(path: str) -> str:
    """RFC 3986 5.2.4, keeping empty segments ("a//b")."""
    out: list[str] = []
    segs = path.split("/")
    for i, seg in enumerate(segs):
        last = i == len(segs) - 1
        if seg == ".":
            if last:
                out.append("")
        elif seg == "..":
            if len(out) > 1:
                out.pop()
            if last:
                out.append("")
        else:
            out.append(seg)
    joined = "/".join(out)
    return joined if not path.startswith("/") or joined.startswith("/") else "/" + joined


@lru_cache(maxsize=256)
def _split_base(base: str) -> SplitResult:
    return urlsplit(base)  # every link of a page is resolved against the same base


def join(base: str, ref: str) -> str:
    """Resolve `ref` against the absolute `base` (RFC 3986 5.2.2)."""
    b = _split_base(base)
    r = urlsplit(ref)
    if r.scheme:
        return ref
    if ref.startswith("//"):
        return b.scheme + ":" + ref
    if not r.path:
        path, query = b.path, (r.query if "?" in ref else b.query)
    elif r.path.startswith("/"):
        path, query = remove_dot_segments(r.path), r.query
    else:
        merged = (b.path.rpartition("/")[0] if b.path else "") + "/" + r.path
        path, query = remove_dot_segments(merged), r.query
    return urlunsplit((b.scheme, b.netloc, path, query, r.fragment))
