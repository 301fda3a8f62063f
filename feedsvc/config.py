"""config.toml -> frozen Config / TopicConfig / SourceConfig.

Everything the user can get wrong is checked here, before anything is fetched, and
every error names the file, the key and what to do about it. Unknown keys are errors
(with a did-you-mean), because a misspelt key silently ignored is a feed that silently
does the wrong thing.
"""

from __future__ import annotations

import codecs
import difflib
import os
import re
import tomllib
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlsplit
from urllib.request import url2pathname
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from feedsvc import PROJECT_URL, __version__
from feedsvc.errors import ConfigError

DEFAULT_USER_AGENT = f"feedsvc/{__version__} (+{PROJECT_URL})"
FORMATS = ("atom", "rss", "json")
TOPIC_ID = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
SELECTOR_FIELDS = ("title", "link", "summary", "date", "image")


@dataclass(frozen=True, slots=True)
class FieldSelector:
    """A CSS selector for one field, optionally reading an attribute (`time@datetime`)."""

    css: str  # may be "" for "the item element itself", as in "@href"
    attr: str | None = None
    # "~ sel": the first match after the item and before the next one, for flat pages where an
    # item is a headline followed by its body and a "permalink" line rather than one element
    following: bool = False

    @classmethod
    def parse(cls, text: str) -> FieldSelector:
        text = text.strip()
        following = text.startswith("~")
        if following:
            text = text[1:].strip()
        m = re.fullmatch(r"(.*?)@([A-Za-z_:][-\w:.]*)", text)
        if m:
            return cls(m.group(1).strip(), m.group(2).lower(), following)
        return cls(text, None, following)


@dataclass(frozen=True, slots=True)
class Selectors:
    """CSS selectors from the config: `item` finds the blocks, the rest are relative to it."""

    item: str
    title: FieldSelector | None = None
    link: FieldSelector | None = None
    summary: FieldSelector | None = None
    date: FieldSelector | None = None
    image: FieldSelector | None = None


@dataclass(frozen=True, slots=True)
class SourceConfig:
    url: str  # http(s) or file: URL (paths in the file are resolved against it)
    selectors: Selectors | None = None  # None: automatic detection
    encoding: str | None = None  # override a page whose header and meta lie
    robots: bool = True
    timezone: str = "UTC"  # for dates written without one (inherits the topic's)
    allow_private: bool = False  # may redirect to non-public addresses of other hosts
    article: str = "off"  # read each new item's own page: "off", "meta" or "full" (inherits the topic's)

    @property
    def is_local(self) -> bool:
        return self.url.startswith("file:")

    @property
    def local_path(self) -> Path:
        """The file a file: source reads."""
        return Path(url2pathname(urlsplit(self.url).path))


@dataclass(frozen=True, slots=True)
class TopicConfig:
    id: str
    title: str
    sources: tuple[SourceConfig, ...]
    subtitle: str | None = None
    language: str | None = None
    timezone: str = "UTC"
    interval: timedelta = timedelta(hours=1)
    cron: str | None = None
    max_entries: int = 50
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    formats: tuple[str, ...] = ("atom",)
    icon: str | None = None  # the feed's icon; default: the first source's site icon
    article: str = "off"  # the sources' default for reading each new item's own page


@dataclass(frozen=True, slots=True)
class Config:
    path: Path  # the config file (absolute)
    output_dir: Path
    state: Path | str  # a SQLite file, or a postgresql:// URL (see state_url)
    topics: tuple[TopicConfig, ...]
    base_url: str | None = None
    user_agent: str = DEFAULT_USER_AGENT
    interval: timedelta = timedelta(hours=1)
    cron: str | None = None
    timezone: str = "UTC"
    max_entries: int = 50
    retention: timedelta = timedelta(days=90)
    formats: tuple[str, ...] = ("atom",)
    websub_hub: str | None = None
    host_delay: timedelta = timedelta(seconds=1)
    timeout: timedelta = timedelta(seconds=30)
    max_bytes: int = 5_000_000
    jitter: timedelta = timedelta(seconds=30)
    hosts: dict[str, timedelta] = field(default_factory=dict)  # per-host minimum gap
    allow_private: bool = False  # redirects may reach loopback/private addresses of unconfigured hosts
    article_limit: int = 10  # article pages fetched per host per refresh; the rest wait for the next one
    lease: timedelta = timedelta(minutes=2)  # with PostgreSQL: how long a dead worker keeps its topics

    @property
    def state_url(self) -> str | None:
        """The PostgreSQL URL the state is in, or None: a SQLite file."""
        return self.state if isinstance(self.state, str) else None

    @property
    def state_name(self) -> str:
        """The state as messages and status show it: a URL without its password."""
        return redact_url(self.state) if isinstance(self.state, str) else str(self.state)

    @property
    def lock_path(self) -> Path:
        """The flock file that lets one refresh at a time on this machine use the state: beside the
        SQLite file, or beside the config file for PostgreSQL (whose own lock serializes the writes)."""
        if isinstance(self.state, str):
            return self.path.with_name(self.path.name + ".lock")
        return self.state.with_name(self.state.name + ".lock")

    def topic(self, topic_id: str) -> TopicConfig | None:
        return next((t for t in self.topics if t.id == topic_id), None)


# --------------------------------------------------------------------------- values


STATE_ENV = "FEEDSVC_STATE"  # overrides the config's `state`: a URL's password need not be in the file
_POSTGRES_URL = re.compile(r"^postgres(?:ql)?://", re.I)
_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*://", re.I)


def is_postgres_url(value: object) -> bool:
    return isinstance(value, str) and bool(_POSTGRES_URL.match(value))


def redact_url(url: str) -> str:
    """The URL with its password (in the user part or a password= parameter) shown as ***."""
    url = re.sub(r"^([a-z][a-z0-9+.-]*://[^:/@?#]*):[^@/?#]*@", r"\1:***@", url, flags=re.I)
    return re.sub(r"([?&]password=)[^&#]*", r"\1***", url, flags=re.I)


def check_postgres_url(url: str) -> str:
    """postgresql://user[:password]@host[:port]/database[?options], as libpq reads it. Raises ValueError
    (naming the URL without its password)."""
    shown = redact_url(url)
    example = "write it like postgresql://feedsvc@db.example.org:5432/feedsvc"
    if any(c.isspace() for c in url):
        raise ValueError(f"{shown!r} contains a space; {example}")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises ValueError for a port that is not a number in range)
    except ValueError as exc:
        raise ValueError(f"{shown!r} is not a valid URL ({exc}); {example}") from None
    if parts.fragment:
        raise ValueError(f"{shown!r} has a fragment ('#'); {example}")
    if "/" in parts.path.strip("/"):
        raise ValueError(f"{shown!r}: the path must be one database name; {example}")
    for pair in filter(None, parts.query.split("&")):
        if not re.fullmatch(r"[a-z_]+=[^=]*", pair):
            raise ValueError(f"{shown!r}: {redact_url('?' + pair)[1:]!r} is not an option=value pair; {example}")
    return url


def parse_duration(text: str) -> timedelta:
    """`30s`, `15m`, `1h`, `1d`, `1h30m`, `500ms`. Raises ValueError."""
    s = str(text).strip().lower().replace(" ", "")
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)", s)
    if not s or "".join(n + u for n, u in parts) != s:
        raise ValueError(f"{text!r} is not a duration; write it like 30s, 15m, 1h, 1d or 1h30m")
    unit = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    return timedelta(seconds=sum(float(n) * unit[u] for n, u in parts))


def duration_text(d: timedelta) -> str:
    """1h30m, 15m, 1d, 500ms: as the config writes durations (parse_duration's inverse)."""
    ms = round(d.total_seconds() * 1000)
    if ms % 1000:
        return f"{ms}ms"
    rest, parts = ms // 1000, []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if rest >= size:
            parts.append(f"{rest // size}{unit}")
            rest %= size
    return "".join(parts) or "0s"


def describe_schedule(topic: TopicConfig) -> str:
    """`every 30m` or `cron 0 6 * * * (Asia/Tokyo)`: when `feedsvc run` refreshes the topic."""
    return f"cron {topic.cron} ({topic.timezone})" if topic.cron else f"every {duration_text(topic.interval)}"


_CRON_FIELD = re.compile(r"^(\*|\?|[0-9a-z]+(-[0-9a-z]+)?)(/\d+)?(,(\*|[0-9a-z]+(-[0-9a-z]+)?)(/\d+)?)*$")
_CRON_RANGES = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))


def check_cron(text: str) -> str:
    """A five-field crontab expression (minute hour day month weekday). Raises ValueError."""
    fields = str(text).split()
    if len(fields) != 5:
        raise ValueError(f"{text!r} is not a crontab expression; write five fields, like '*/15 * * * *'")
    for value, (lo, hi) in zip(fields, _CRON_RANGES):
        if not _CRON_FIELD.match(value.lower()):
            raise ValueError(f"{text!r}: the field {value!r} is not crontab syntax")
        for number in re.findall(r"(?<![/\d])\d+", value):
            if not lo <= int(number) <= hi:
                raise ValueError(f"{text!r}: {number} is out of range {lo}-{hi} in {value!r}")
    return " ".join(fields)


def check_timezone(name: str) -> str:
    try:
        ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ValueError(f"{name!r} is not an IANA time zone; write one like 'UTC' or 'Asia/Tokyo'") from None
    return str(name)


def check_http_url(url: str) -> str:
    parts = urlsplit(str(url))
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{url!r} is not an http(s) URL")
    return str(url)


# What cannot stand in an id or self link unescaped, and a fragment, which a base URL must not carry
_BASE_URL_BAD = re.compile(r"[\s\"'<>`#\\\x00-\x1f\x7f]")


def check_base_url(url: str) -> str:
    """The published folder's URL: absolute http(s), nothing that would break an id or an attribute."""
    check_http_url(url)
    bad = _BASE_URL_BAD.search(url)
    if bad:
        what = {"#": "a fragment ('#')", '"': "a quote", "'": "a quote", "`": "a quote"}.get(
            bad.group(), "a space or control character" if bad.group().isspace() or bad.group() < " "
            else f"{bad.group()!r}")
        raise ValueError(f"{url!r} contains {what}; write the plain URL of the published folder, "
                         "percent-encoded, like 'https://example.org/feeds/'")
    return url


# feedsvc's own index files carry these (since the first version): anything else is the user's
OWN_INDEX_MARKS = {"index.html": (b'title="All feeds (OPML)"', b'">feedsvc</a>'),
                   "index.opml": (b"<title>feedsvc feeds</title>",)}


def _has_all(path: Path, marks: tuple[bytes, ...], chunk: int = 1 << 20) -> bool:
    """Whether the file holds every mark, read a chunk at a time: an index lists every topic in its
    head and its body (7 MB at 1,000 topics), so its marks can lie anywhere in it."""
    missing, overlap, tail = set(marks), max(map(len, marks)) - 1, b""
    with path.open("rb") as f:
        while missing and (block := f.read(chunk)):
            window = tail + block
            missing = {m for m in missing if m not in window}
            tail = window[-overlap:] if overlap else b""
    return not missing


def foreign_index(output_dir: Path) -> Path | None:
    """An index.html or index.opml in output_dir that feedsvc did not write (it would overwrite it)."""
    for name, marks in OWN_INDEX_MARKS.items():
        path = output_dir / name
        try:
            own = _has_all(path, marks)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            continue
        except OSError:
            return path
        if not own:
            return path
    return None


def output_dir_problem(output_dir: Path, config_path: Path, state: Path | str | None) -> str | None:
    """Why output_dir must not be where it points: everything in it is published (`serve`, nginx)."""
    config_path = config_path.resolve()
    if output_dir == Path(output_dir.anchor):
        return f"is the root folder {output_dir}: everything on the machine would be published"
    if output_dir == config_path.parent:
        return (f"is the config's own folder {output_dir}: {config_path.name} would be published with the "
                "feeds; use a folder of its own, such as 'feeds'")
    if config_path.is_relative_to(output_dir):
        return (f"{output_dir} holds the config file {config_path}, which would be published with the "
                "feeds; use a folder of its own, such as 'feeds'")
    if isinstance(state, Path) and state.is_relative_to(output_dir):
        return (f"{output_dir} holds the state file {state}, which would be published with the feeds; "
                "keep the state outside output_dir")
    return None


def check_language(tag: str) -> str:
    """A BCP 47 language tag as xml:lang takes it: ja, en, en-US, zh-Hant."""
    if not re.fullmatch(r"[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*", tag):
        raise ValueError(f"{tag!r} is not a language tag; write one like 'ja', 'en' or 'en-US'")
    return tag


def check_encoding_name(name: str) -> str:
    try:
        codecs.lookup(name)
    except LookupError:
        raise ValueError(f"{name!r} is not a known text encoding (try 'cp932', 'euc-jp', 'utf-8')") from None
    return name


def check_selector(css: str) -> str:
    import soupsieve  # Beautiful Soup's CSS engine: refuse a broken selector before any fetch

    try:
        soupsieve.compile(css)
    except Exception as exc:  # soupsieve raises SelectorSyntaxError, a subclass of Exception
        first = str(exc).splitlines()[0]
        raise ValueError(f"{css!r} is not a valid CSS selector ({first})") from None
    return css


def folder_problem(folder: Path) -> str | None:
    """Why feedsvc could not create or write `folder` (checked before anything is fetched), or None."""
    probe = folder
    while not probe.exists():
        if probe.parent == probe:
            return None
        probe = probe.parent
    if not probe.is_dir():
        return f"{probe} is a file, so the folder {folder} cannot be made"
    if not os.access(probe, os.W_OK | os.X_OK):
        return f"{probe} is not writable"
    return None


# --------------------------------------------------------------------------- loading


class _Reader:
    """Reads one TOML table against a schema, naming keys by their dotted path."""

    def __init__(self, path: Path, table: Any, where: str) -> None:
        self.path, self.where = path, where
        if not isinstance(table, dict):
            self.fail("", f"must be a table, not {type(table).__name__}")
        self.table: dict[str, Any] = table
        self.seen: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.where}.{name}" if self.where else name

    def fail(self, name: str, problem: str) -> None:
        raise ConfigError(str(self.path), self.key(name) if name else self.where, problem)

    def get(self, name: str, kind: type | tuple[type, ...], default: Any = None, *,
            required: bool = False, check: Callable[[Any], Any] | None = None) -> Any:
        self.seen.add(name)
        if name not in self.table:
            if required:
                self.fail(name, "is required")
            return default
        value = self.table[name]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
            want = " or ".join(_TYPE_NAMES.get(k, k.__name__) for k in kinds)
            self.fail(name, f"must be {want}, not {_TYPE_NAMES.get(type(value), type(value).__name__)} {value!r}")
        if check is not None:
            try:
                value = check(value)
            except ValueError as exc:
                self.fail(name, str(exc))
        return value

    def strings(self, name: str, default: tuple[str, ...] = ()) -> tuple[str, ...]:
        value = self.get(name, list, None)
        if value is None:
            return default
        for i, v in enumerate(value):
            if not isinstance(v, str) or not v.strip():
                self.fail(f"{name}[{i}]", f"must be a non-empty string, not {v!r}")
        return tuple(value)

    def finish(self, extra_known: tuple[str, ...] = ()) -> None:
        known = self.seen | set(extra_known)
        for name in self.table:
            if name not in known:
                close = difflib.get_close_matches(name, sorted(known), n=1)
                hint = f"; did you mean {close[0]!r}?" if close else f"; known keys: {', '.join(sorted(known))}"
                self.fail(name, f"unknown key{hint}")


_TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false",
               list: "a list", dict: "a table"}


def _positive(value: int) -> int:
    if value < 1:
        raise ValueError(f"must be at least 1, not {value}")
    return value


def _duration(value: str) -> timedelta:
    d = parse_duration(value)
    if d <= timedelta(0):
        raise ValueError(f"{value!r} must be longer than zero")
    return d


def _lease(value: str) -> timedelta:
    d = parse_duration(value)
    if d < timedelta(seconds=3):  # renewed every third of it: shorter, and a busy worker loses its topics
        raise ValueError(f"{value!r} is too short for a lease; give 3s or more (default 2m)")
    return d


ARTICLE_MODES = ("off", "meta", "full")


def _article_mode(value: str) -> str:
    if value not in ARTICLE_MODES:
        raise ValueError(f"{value!r} is not an article mode; choose from {', '.join(map(repr, ARTICLE_MODES))}")
    return value


def _formats(value: list[Any]) -> tuple[str, ...]:
    for f in value:
        if f not in FORMATS:
            raise ValueError(f"{f!r} is not a feed format; choose from {', '.join(FORMATS)}")
    if not value:
        raise ValueError("must name at least one format")
    return tuple(dict.fromkeys(value))


def source_url_checker(config_dir: Path) -> Callable[[str], str]:
    def check(url: str) -> str:
        url = url.strip()
        scheme = urlsplit(url).scheme.lower()
        if scheme in ("http", "https"):
            return check_http_url(url)
        if scheme == "file":
            return url
        if re.match(r"^[a-z][a-z0-9+.-]*://", url, re.I):
            raise ValueError(f"{url!r}: only http, https and file URLs (or a path) can be sources")
        if not url:
            raise ValueError("must not be empty")
        return (config_dir / url).resolve().as_uri()  # a path, relative to the config file

    return check


def load_config(path: str | os.PathLike[str]) -> Config:
    """Read and check a config file. Raises ConfigError naming the file and the key."""
    path = Path(path).absolute()
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(str(path), "", "no such file; pass --config PATH or create config.toml") from None
    except IsADirectoryError:
        raise ConfigError(str(path), "", "is a folder, not a config file") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(str(path), "", f"is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), "", f"is not valid TOML: {exc}") from None
    return config_from_dict(raw, path)


def config_from_dict(raw: dict[str, Any], path: Path) -> Config:
    """Build a Config from parsed TOML; `path` is used for messages and relative paths."""
    top = _Reader(path, raw, "")
    base = path.parent
    g = _Reader(path, top.get("feedsvc", dict, {}), "feedsvc")

    def local_path(value: str) -> Path:
        if not value.strip():
            raise ValueError("must not be empty")
        return (base / value).resolve()

    def state_value(value: str) -> Path | str:
        if is_postgres_url(value):
            return check_postgres_url(value)
        if _SCHEME.match(value):
            raise ValueError(f"{redact_url(value)!r}: the state is a file path or a postgresql:// URL")
        return local_path(value)

    output_dir = g.get("output_dir", str, None, check=local_path) or (base / "feeds").resolve()
    state = g.get("state", str, None, check=state_value) or (base / "state" / "feedsvc.sqlite").resolve()
    if os.environ.get(STATE_ENV, "").strip():
        try:
            state = state_value(os.environ[STATE_ENV].strip())
        except ValueError as exc:
            raise ConfigError(str(path), f"{STATE_ENV} (in the environment, for state)", str(exc)) from None
    base_url = g.get("base_url", str, None, check=check_base_url)
    if base_url and not base_url.endswith("/"):
        base_url += "/"
    cfg_kwargs: dict[str, Any] = dict(
        user_agent=g.get("user_agent", str, DEFAULT_USER_AGENT),
        interval=g.get("interval", str, timedelta(hours=1), check=_duration),
        cron=g.get("cron", str, None, check=check_cron),
        timezone=g.get("timezone", str, "UTC", check=check_timezone),
        max_entries=g.get("max_entries", int, 50, check=_positive),
        retention=g.get("retention", str, timedelta(days=90), check=_duration),
        formats=g.get("formats", list, ("atom",), check=_formats),
        websub_hub=g.get("websub_hub", str, None, check=check_http_url),
        host_delay=g.get("host_delay", str, timedelta(seconds=1), check=parse_duration),
        timeout=g.get("timeout", str, timedelta(seconds=30), check=_duration),
        max_bytes=g.get("max_bytes", int, 5_000_000, check=_positive),
        jitter=g.get("jitter", str, timedelta(seconds=30), check=parse_duration),
        allow_private=g.get("allow_private", bool, False),
        article_limit=g.get("article_limit", int, 10, check=_positive),
    )
    if cfg_kwargs["websub_hub"] and not base_url:
        g.fail("websub_hub", "needs base_url too: the hub is told the feeds' public URLs")
    hosts_table = _Reader(path, g.get("hosts", dict, {}), "feedsvc.hosts")
    hosts = {h.lower(): hosts_table.get(h, str, check=parse_duration) for h in list(hosts_table.table)}
    lease = g.get("lease", str, timedelta(minutes=2), check=_lease)
    g.finish()

    if output_dir.exists() and not output_dir.is_dir():
        g.fail("output_dir", f"{output_dir} exists and is not a folder; point output_dir at a folder")
    if isinstance(state, Path) and state.is_dir():
        g.fail("state", f"{state} is a folder; point state at a file such as state/feedsvc.sqlite")
    problem = output_dir_problem(output_dir, path, state)
    if problem:
        g.fail("output_dir", problem)
    foreign = foreign_index(output_dir)
    if foreign is not None:
        g.fail("output_dir", f"{foreign} was not written by feedsvc, which would overwrite it with its own; "
                             "move it away or point output_dir at another folder")
    folders = [("output_dir", output_dir)] + ([("state", state.parent)] if isinstance(state, Path) else [])
    for key, folder in folders:
        problem = folder_problem(folder)
        if problem:
            g.fail(key, f"{problem}; point {key} somewhere feedsvc can create and write folders")

    topics_raw = top.get("topics", list, None, required=True)
    if not topics_raw:
        top.fail("topics", "needs at least one [[topics]] table")
    topics: list[TopicConfig] = []
    for i, t_raw in enumerate(topics_raw):
        topics.append(_topic(path, t_raw, f"topics[{i}]", cfg_kwargs))
    seen: dict[str, int] = {}
    for i, t in enumerate(topics):
        if t.id in seen:
            top.fail(f"topics[{i}].id", f"{t.id!r} is used twice (also topics[{seen[t.id]}]); ids must be unique")
        seen[t.id] = i
    top.finish()
    return Config(path=path, output_dir=output_dir, state=state, topics=tuple(topics), base_url=base_url,
                  hosts=hosts, lease=lease, **cfg_kwargs)


def _topic(path: Path, raw: Any, where: str, defaults: dict[str, Any]) -> TopicConfig:
    r = _Reader(path, raw, where)

    def check_id(value: str) -> str:
        if not TOPIC_ID.match(value):
            raise ValueError(f"{value!r} must be lowercase letters, digits and '-' (it names the file <id>.atom)")
        return value

    topic_id = r.get("id", str, required=True, check=check_id)
    title = r.get("title", str, required=True)
    if not title.strip():
        r.fail("title", "must not be empty")
    timezone = r.get("timezone", str, defaults["timezone"], check=check_timezone)
    interval = r.get("interval", str, defaults["interval"], check=_duration)
    cron = r.get("cron", str, None, check=check_cron)
    if cron is None and "interval" not in r.table:
        cron = defaults["cron"]
    sources_raw = r.get("sources", list, None, required=True)
    if not sources_raw:
        r.fail("sources", "needs at least one [[topics.sources]] table with a url")
    article = r.get("article", str, "off", check=_article_mode)
    sources = tuple(_source(path, s, f"{where}.sources[{j}]", timezone, article) for j, s in enumerate(sources_raw))
    topic = TopicConfig(
        id=topic_id, title=title.strip(), sources=sources,
        subtitle=r.get("subtitle", str, None),
        language=r.get("language", str, None, check=check_language),
        timezone=timezone, interval=interval, cron=cron,
        max_entries=r.get("max_entries", int, defaults["max_entries"], check=_positive),
        include=r.strings("include"), exclude=r.strings("exclude"),
        formats=r.get("formats", list, defaults["formats"], check=_formats),
        icon=r.get("icon", str, None, check=check_http_url),
        article=article,
    )
    r.finish()
    return topic


def _source(path: Path, raw: Any, where: str, topic_tz: str, topic_article: str = "off") -> SourceConfig:
    r = _Reader(path, raw, where)
    url = r.get("url", str, required=True, check=source_url_checker(path.parent))
    item = r.get("item", str, None, check=check_selector)
    fields: dict[str, FieldSelector] = {}
    for name in SELECTOR_FIELDS:
        text = r.get(name, str, None)
        if text is not None:
            sel = FieldSelector.parse(text)
            if sel.css:
                try:
                    check_selector(sel.css)
                except ValueError as exc:
                    r.fail(name, str(exc))
            fields[name] = sel
    if fields and item is None:
        r.fail("item", f"is required when field selectors ({', '.join(fields)}) are given: "
                       "it selects the block that holds one item")
    source = SourceConfig(
        url=url,
        selectors=Selectors(item=item, **fields) if item else None,
        encoding=r.get("encoding", str, None, check=check_encoding_name),
        robots=r.get("robots", bool, True),
        timezone=r.get("timezone", str, topic_tz, check=check_timezone),
        allow_private=r.get("allow_private", bool, False),
        article=r.get("article", str, topic_article, check=_article_mode),
    )
    r.finish()
    return source
