"""The `feedsvc` command: argument parsing, logging set-up, and errors turned into exit codes.

Exit codes: 0 all went well; 1 a source failed (named on stderr); 2 a bad config or
command line; 3 another feedsvc process holds the state lock. Domain errors become one
line on stderr; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NoReturn, Sequence, TextIO

from feedsvc import __version__
from feedsvc.config import (Config, FieldSelector, Selectors, SourceConfig, check_selector, describe_schedule,
                            load_config)
from feedsvc.errors import FeedsvcError, UsageError

log = logging.getLogger("feedsvc")

EXAMPLES = {
    "refresh": """\
        examples:
          feedsvc refresh                      # every topic in ./config.toml
          feedsvc refresh peace-talks -v       # one topic, with a line per topic
          feedsvc --config /srv/feeds.toml --quiet refresh    # from cron: silent unless something failed
          feedsvc refresh --dry-run            # what would be new, updated or merged; writes nothing
        """,
    "run": """\
        examples:
          feedsvc run                          # refresh each topic on its schedule until SIGTERM
          feedsvc run --serve --port 8080      # and serve the feeds folder on http://127.0.0.1:8080/
          kill -HUP <pid>                      # reload config.toml without stopping
        """,
    "preview": """\
        examples:
          feedsvc preview https://example.com/topics/peace-talks
          feedsvc preview examples/peace-talks.txt --json
          feedsvc preview page.html --item 'li.card' --title 'h3' --link 'a@href' --date 'time@datetime'
        """,
    "status": """\
        examples:
          feedsvc status                       # a table of topics and sources
          feedsvc status --json                # the same, for scripts and monitoring
        """,
    "serve": """\
        examples:
          feedsvc serve                        # http://127.0.0.1:8080/peace-talks.atom
          feedsvc serve --host 0.0.0.0 --port 8000
        """,
    "init": """\
        examples:
          feedsvc init                         # writes ./config.toml, commented, to edit
          feedsvc --config /srv/feedsvc/config.toml init
        """,
    "add": """\
        examples:
          feedsvc add https://blog.python.org/ --topic python-news --topic-title "Python Insider"
          feedsvc add https://example.com/news/ --topic news --item 'li.card' --title h3 --link 'a@href'
        """,
    "migrate-state": """\
        examples:
          feedsvc migrate-state state/feedsvc.sqlite postgresql://feedsvc@db.example.org/feedsvc
          feedsvc migrate-state "$FEEDSVC_STATE" state/back.sqlite     # and back, into a new file
        Stop `feedsvc run` and cron refreshes first: what they write meanwhile is not copied.
        """,
    "check": """\
        examples:
          feedsvc check                        # is ./config.toml valid? prints its topics
          feedsvc --config other.toml check
        """,
}


def add_common_options(parser: argparse.ArgumentParser, *, defaults: bool) -> None:
    """Options accepted before or after the command: `feedsvc -v refresh` = `feedsvc refresh -v`."""

    def default(value: Any) -> Any:
        return value if defaults else argparse.SUPPRESS  # a subcommand must not reset what was given before it

    parser.add_argument("--config", metavar="PATH", default=default("config.toml"),
                        help="the config file (default: ./config.toml)")
    parser.add_argument("--log-level", metavar="LEVEL", type=str.upper, default=default(None),
                        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                        help="DEBUG, INFO, WARNING or ERROR (default: INFO for run, ERROR otherwise)")
    parser.add_argument("--log-format", choices=["text", "json"], default=default("text"),
                        help="log lines as text or as one JSON object per line")
    parser.add_argument("-q", "--quiet", action="store_true", default=default(False),
                        help="print only errors (for cron)")
    parser.add_argument("-v", "--verbose", action="count", default=default(0),
                        help="print the summary lines even when not on a terminal; -v -v: each merge too")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="feedsvc",
        description="Turn web pages that have no feed into Atom feeds.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=textwrap.dedent("""\
            examples:
              feedsvc refresh                 # read ./config.toml, write feeds/<topic>.atom
              feedsvc preview URL             # what would become entries, from any page
              feedsvc run                     # a daemon that refreshes each topic on its schedule
            Run `feedsvc COMMAND --help` for a command's options."""),
    )
    add_common_options(parser, defaults=True)
    parser.add_argument("--version", action="version", version=f"feedsvc {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text,
                           epilog=textwrap.dedent(EXAMPLES[name]),
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        add_common_options(p, defaults=False)
        return p

    p = command("refresh", "Fetch the topics' sources once and publish what changed.")
    p.add_argument("topics", nargs="*", metavar="TOPIC", help="topic ids (default: all)")
    p.add_argument("--force", action="store_true", help="ignore ETag/Last-Modified and failure backoff")
    p.add_argument("--dry-run", action="store_true",
                   help="fetch and compare with the stored state; write nothing, list what would change")
    p.add_argument("--lock-timeout", type=float, default=60.0, metavar="SECONDS",
                   help="how long to wait for another feedsvc to finish (default: 60)")

    p = command("run", "Run as a daemon: refresh each topic on its own schedule.")
    p.add_argument("--no-initial-refresh", action="store_true", help="wait for the first scheduled time")
    p.add_argument("--serve", action="store_true", help="also serve the feeds folder over HTTP")
    p.add_argument("--host", default="127.0.0.1", help="address for --serve (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="port for --serve (default: 8080)")
    p.add_argument("--lock-timeout", type=float, default=600.0, metavar="SECONDS",
                   help="how long a scheduled refresh waits for another feedsvc to finish (default: 600)")

    p = command("preview", "Show what a page would give as entries, touching no state and no feed.")
    p.add_argument("url", metavar="URL-or-PATH", help="an http(s) URL, a file: URL or a local file")
    p.add_argument("--json", action="store_true", help="print a JSON list of items")
    p.add_argument("--timezone", default=None, help="time zone for dates written without one (default: config's)")
    p.add_argument("--language", default=None, help="the page's language, e.g. ja")
    p.add_argument("--encoding", default=None, help="decode the page with this codec, whatever it declares")
    p.add_argument("--toml", action="store_true",
                   help="print the [[topics.sources]] table for config.toml (with the selectors given)")
    p.add_argument("--article", choices=("meta", "full"), default=None,
                   help="also read the first items' own pages: what `article = \"meta\"` or `\"full\"` would add")
    add_selector_options(p)

    p = command("status", "Show each topic's and source's health.")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = command("serve", "Serve the feeds folder over HTTP (for small setups; use nginx in production).")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="port to listen on (default: 8080)")

    command("check", "Check the config file and list its topics and sources.")

    p = command("migrate-state", "Copy the state from one store to a new one: SQLite file or PostgreSQL URL, "
                                 "either way; ids, first-seen times and validators are kept.")
    p.add_argument("source", metavar="FROM", help="the state to copy: a SQLite file or a postgresql:// URL")
    p.add_argument("target", metavar="TO", help="where to: a new SQLite file or an empty PostgreSQL database")

    command("init", "Write a commented starter config.toml (never over an existing file).")

    p = command("add", "Preview a page and add it as a source to config.toml, keeping its comments.")
    p.add_argument("url", metavar="URL-or-PATH", help="an http(s) URL, a file: URL or a local file")
    p.add_argument("--topic", metavar="ID", help="the topic to add it to, new or existing (default: from the URL)")
    p.add_argument("--topic-title", metavar="TEXT", help="a new topic's title (default: the page's <title>)")
    p.add_argument("--language", default=None, help="a new topic's language, e.g. ja")
    p.add_argument("--timezone", default=None, help="time zone for dates written without one")
    p.add_argument("--encoding", default=None, help="decode the page with this codec, whatever it declares")
    add_selector_options(p)
    return parser


SELECTOR_HELP = {
    "item": "CSS selector of the blocks that hold one item each",
    "title": "CSS selector of the headline in an item",
    "link": "CSS selector of the link in an item (attr form: a@href)",
    "summary": "CSS selector of the summary in an item",
    "date": "CSS selector of the date in an item (attr form: time@datetime)",
    "image": "CSS selector of the image in an item (attr form: img@src)",
}


def add_selector_options(p: argparse.ArgumentParser) -> None:
    for name, help_text in SELECTOR_HELP.items():
        p.add_argument(f"--{name}", metavar="CSS", help=help_text)


class Parser(argparse.ArgumentParser):
    """argparse, with a did-you-mean for a mistyped command (`feedsvc refesh`)."""

    def error(self, message: str) -> NoReturn:
        import difflib
        import re

        m = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
        if m:
            choices = re.findall(r"'([^']*)'", m.group(2))
            close = difflib.get_close_matches(m.group(1), choices, n=1)
            if close:
                message += f"; did you mean '{close[0]}'?"
        super().error(message)


# --------------------------------------------------------------------------- logging


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        data.update(getattr(record, "fields", {}) or {})
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False, default=str)


def setup_logging(level: str, fmt: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    logging.captureWarnings(True)  # library warnings (XMLParsedAsHTMLWarning, …) at the level chosen
    if level != "DEBUG":  # APScheduler and urllib3 talk a lot at INFO
        for noisy in ("apscheduler", "urllib3"):
            logging.getLogger(noisy).setLevel(logging.WARNING)


# --------------------------------------------------------------------------- commands


class Progress:
    """A one-line progress bar on a terminal's stderr; silent elsewhere."""

    def __init__(self, stream: TextIO, enabled: bool) -> None:
        self.stream, self.enabled, self.shown = stream, enabled, False

    def __call__(self, message: str) -> None:
        if not self.enabled:
            return
        done, _, rest = message.partition(" ")
        n, _, total = done.partition("/")
        width = 24
        filled = int(width * int(n) / max(int(total), 1)) if n.isdigit() and total.isdigit() else 0
        bar = "#" * filled + "-" * (width - filled)
        self.stream.write(f"\r[{bar}] {done} {rest[:50]:<50}")
        self.stream.flush()
        self.shown = True

    def clear(self) -> None:
        if self.shown:
            self.stream.write("\r" + " " * 90 + "\r")
            self.stream.flush()


def now_utc() -> datetime:
    return datetime.now(timezone.utc)


def cmd_refresh(args: argparse.Namespace, config: Config, chatty: bool) -> int:
    from feedsvc import pipeline

    if args.dry_run:
        plans = pipeline.plan_topics(config, args.topics, now=now_utc(), force=args.force)
        print_plans(plans)
        return 1 if any(s.status == "failed" for tp in plans for s in tp.sources) else 0

    progress = Progress(sys.stderr, chatty and sys.stderr.isatty())
    busy: dict[str, str] = {}  # topics another fleet worker holds: topic -> that worker
    with refresh_turn(config, args, busy) as topic_ids:
        results = pipeline.refresh(config, topic_ids, now=now_utc(), force=args.force,
                                   progress=progress) if topic_ids else []
    progress.clear()
    failed = 0
    for topic_id, holder in busy.items():
        print(f"feedsvc: {topic_id}: skipped: {holder} is refreshing it", file=sys.stderr)
    for r in results:
        if r.restored:  # said even under --quiet: someone should know the state was lost
            print(f"feedsvc: {r.topic}: the state had no stories: rebuilt {r.restored} entries from its "
                  "published feed", file=sys.stderr)
        if chatty:
            failed_sources = len(r.failures)
            degraded, backed_off = len(r.degraded), len(r.backed_off)
            print(f"{r.topic}: {r.entries} entries, {r.new} new, {r.updated} updated, "
                  + (f"{len(r.merged)} merged, " if r.merged else "")
                  + f"{failed_sources} failed source{'s' if failed_sources != 1 else ''}"
                  + (f", {backed_off} backed off" if backed_off else "")
                  + (f", {degraded} degraded source{'s' if degraded != 1 else ''}" if degraded else "")
                  + ("" if r.feed_written else " (feed unchanged)"))
            if args.verbose >= 2:  # so that a user can see a wrong merge
                for item, into, why in r.merged:
                    print(f"  merged   {item}  -> {into} ({why})")
        for s in r.failures:
            failed += 1
            print(f"feedsvc: {r.topic}: source failed: {s.url}: {s.error}", file=sys.stderr)
        for s in r.backed_off:  # skipped, not healthy: it failed and has not been tried since
            failed += 1
            print(f"feedsvc: {r.topic}: source failing: {s.url}: {s.error}", file=sys.stderr)
        for s in r.degraded if not args.quiet else ():  # a warning: the feed keeps its entries
            print(f"feedsvc: {r.topic}: source degraded: {s.url}: {s.items} item(s) where it usually lists "
                  f"{s.usual}", file=sys.stderr)
    return 1 if failed else 3 if busy else 0


@contextmanager
def refresh_turn(config: Config, args: argparse.Namespace, busy: dict[str, str]) -> Iterator[list[str] | None]:
    """The topics this refresh may write, for the time it writes them. SQLite: all the named ones,
    under the state lock (another refresh waits for it, or gives up with exit code 3). PostgreSQL:
    the fleet's leases, due or not; a topic a worker is refreshing right now is left to it (`busy`)."""
    from feedsvc import pipeline

    wanted = [t.id for t in pipeline.select_topics(config, args.topics)]
    if not config.state_url:
        from feedsvc.lock import StateLock

        with StateLock(config.lock_path, timeout=args.lock_timeout, who="feedsvc refresh"):
            yield wanted
        return
    from feedsvc.daemon import next_due
    from feedsvc.fleet import Fleet

    with Fleet(config, next_due, role="refresh") as fleet:
        with fleet.leased(wanted, due_only=False, limit=len(wanted)) as claimed:
            busy.update(fleet.holders([t for t in wanted if t not in claimed]))
            yield claimed


def print_plans(plans: Sequence[Any]) -> None:
    from feedsvc import pipeline

    for tp in plans:
        p = tp.plan
        print(f"{tp.topic.id}: would add {len(p.new)}, update {len(p.updated)}, "
              f"keep {len(p.unchanged)}, merge {len(p.merged)} duplicate(s)")
        for s in tp.sources:
            if s.status != "ok":
                print(f"  source {s.status}: {s.url}" + (f": {s.error}" if s.error else ""))
        for e in p.new:
            print(f"  new      {e.title}")
        for old, new in p.updated:
            print(f"  updated  {new.title}  [{new.id}]")
            for label, a, b in (("title", old.title, new.title), ("summary", old.summary, new.summary)):
                if a != b:
                    print(f"           {label} was: {a}")
                    print(f"           {label} now: {b}")
        for item, into, why in pipeline.merges(p):
            print(f"  merged   {item}  -> {into} ({why})")


def source_from_args(args: argparse.Namespace, config: Config | None, command: str) -> SourceConfig:
    """The source a preview or an add is about: URL, selectors, encoding and zone from the command line."""
    from feedsvc.config import check_encoding_name, check_timezone, source_url_checker

    try:
        url = source_url_checker(Path.cwd())(args.url)
        tz = check_timezone(args.timezone or (config.timezone if config else "UTC"))
        encoding = check_encoding_name(args.encoding) if args.encoding else None
        fields = {}
        for name in ("title", "link", "summary", "date", "image"):
            text = getattr(args, name)
            if text:
                sel = FieldSelector.parse(text)
                if sel.css:
                    check_selector(sel.css)
                fields[name] = sel
        if args.item:
            check_selector(args.item)
    except ValueError as exc:
        raise UsageError(f"{command}: {exc}") from None
    if fields and not args.item:
        raise UsageError(f"{command}: --item is needed with field selectors (it selects one item's block)")
    selectors = Selectors(item=args.item, **fields) if args.item else None
    return SourceConfig(url=url, selectors=selectors, encoding=encoding, timezone=tz, robots=True)


def source_table(args: argparse.Namespace, url: str) -> dict[str, str]:
    """The [[topics.sources]] keys for what the command line gave, as the user wrote them."""
    table = {"url": url}
    for name in ("item", "title", "link", "summary", "date", "image", "encoding"):
        if getattr(args, name, None):
            table[name] = getattr(args, name)
    return table


def fetch_preview(source: SourceConfig, config: Config | None, language: str | None) -> tuple[Any, list[Any],
                                                                                           list[Any]]:
    from feedsvc import pipeline

    if config is None:
        from feedsvc.config import config_from_dict

        config = config_from_dict({"topics": [{"id": "preview", "title": "preview", "sources": [{"url": source.url}]}]},
                                  Path.cwd() / "config.toml")
    return pipeline.preview(source, config, now=now_utc(), language=language)


def cmd_preview(args: argparse.Namespace, config: Config | None) -> int:
    import shlex

    from feedsvc import pipeline

    source = source_from_args(args, config, "preview")
    if args.toml:
        from feedsvc.configfile import source_toml

        print(source_toml(source_table(args, args.url)), end="")
        return 0
    page, raws, items = fetch_preview(source, config, args.language)
    by_position = {r.position: r for r in raws}
    articles = {}
    if args.article and items:
        from feedsvc.config import config_from_dict

        preview_config = config or config_from_dict(
            {"topics": [{"id": "preview", "title": "preview", "sources": [{"url": source.url}]}]},
            Path.cwd() / "config.toml")
        articles = {id(i): (a, wins) for i, a, wins in pipeline.preview_articles(
            source, preview_config, items, args.article, now=now_utc(), language=args.language)}
    if args.json:
        out = [{
            "title": i.title, "title_is_derived": i.title_is_derived, "link": i.link,
            "published": i.published.isoformat() if i.published else None,
            "published_from": i.published_from, "summary": i.summary, "image": i.image,
            "found_by": by_position[i.position].found_by if i.position in by_position else None,
        } | ({"article": article_json(*articles[id(i)])} if id(i) in articles else {}) for i in items]
        print(json.dumps(out, ensure_ascii=False, indent=2))
        return 0
    print(f"{page.url}  ({page.content_type}, {page.encoding}): {len(items)} item(s)")
    for n, i in enumerate(items, 1):
        found_by = by_position[i.position].found_by if i.position in by_position else "?"
        date = i.published.isoformat() if i.published else "-"
        print(f"\n{n:>3}. {i.title}" + ("  (title made from the summary)" if i.title_is_derived else ""))
        print(f"     link: {i.link or '-'}")
        print(f"     date: {date}" + (f" (from {i.published_from})" if i.published_from else ""))
        if i.summary:
            print(f"     text: {i.summary[:100]}{'…' if len(i.summary) > 100 else ''}")
        print(f"     found by: {found_by}")
        if id(i) in articles:
            print_article(*articles[id(i)])
    if args.article and items and len(articles) < len(items):
        print(f"\n(article pages read for the first {len(articles)} items with a link only)")
    if not items:
        print("no items found: the page may have no listing; try --item and field selectors")
    if source.selectors is None and (alt := pipeline.alternative(page)) is not None:
        selectors, share, example, found = alt
        options = " ".join(f"--{k} {shlex.quote(v)}" for k, v in selectors.items())
        print(f"\nunsure: another list scored {share:.0%} as well ({found} items, first: {example[:60]!r}).\n"
              f"To take it instead: feedsvc preview {shlex.quote(args.url)} {options}")
    return 0


def article_json(a: Any, wins: bool) -> dict[str, Any]:
    """What an item's own page would add, for `preview --article --json`."""
    from feedsvc.errors import SourceError

    if isinstance(a, SourceError):
        return {"error": str(a)}
    return {"url": a.url, "published": a.published.isoformat() if a.published else None, "date_wins": wins,
            "modified": a.modified.isoformat() if a.modified else None, "image": a.image,
            "canonical": a.canonical, "content_html": a.content_html}


def print_article(a: Any, wins: bool) -> None:
    from feedsvc.errors import SourceError

    if isinstance(a, SourceError):
        print(f"     article: could not be read: {a} (the entry keeps what the listing gives)")
        return
    if a.published is None:
        print("     article date: -")
    else:
        print(f"     article date: {a.published.isoformat()} "
              + ("(replaces the listing's)" if wins else "(the listing's stays)"))
    print(f"     article image: {a.image or '-'}")
    if a.canonical:
        print(f"     canonical: {a.canonical}")
    if a.content_html:
        text = " ".join(re.sub(r"<[^>]+>", " ", a.content_html).split())
        print(f"     article text: {len(text)} characters: {text[:100]}{'…' if len(text) > 100 else ''}")


def cmd_status(args: argparse.Namespace, config: Config) -> int:
    from feedsvc.store import Store

    topics: list[dict[str, Any]] = []
    runs: dict[str, Any] = {}  # PostgreSQL: each topic's place in the fleet's schedule
    workers: list[Any] = []
    states = {}
    counts = {}
    articles: dict[str, tuple[int, int, str | None]] = {}
    if config.state_url or Path(config.state).exists():
        with Store.open(config.state) as store:
            store.verify()
            states = {s.url: s for s in store.source_states()}
            counts = {t.id: min(store.topic_entry_count(t.id), t.max_entries) for t in config.topics}
            articles = store.article_health()
            if config.state_url:
                runs = {r.topic: r for r in store.topic_runs()}
                from feedsvc.fleet import alive_since

                workers = [w for w in store.workers() if w.seen_at >= alive_since(config, now_utc())]
    for t in config.topics:
        sources: list[dict[str, Any]] = []
        for s in t.sources:
            st = states.get(s.url)
            sources.append({
                "url": s.url,
                "last_success": iso(st.last_success_at) if st else None,
                "last_failure": iso(st.last_failure_at) if st else None,
                "last_error": st.last_error if st else None,
                "consecutive_failures": st.consecutive_failures if st else 0,
                "next_try": iso(st.next_try_at) if st else None,
                "items": st.last_item_count if st else None,
                "usual_items": st.usual_item_count if st else None,
                "degraded": bool(st and st.degraded),
            })
            if s.article != "off":
                ok, failing, error = articles.get(s.url, (0, 0, None))
                sources[-1]["articles"] = {"mode": s.article, "read": ok, "failing": failing, "last_error": error}
        topics.append({"id": t.id, "title": t.title, "entries": counts.get(t.id, 0), "sources": sources})
        if config.state_url:
            run = runs.get(t.id)
            topics[-1]["fleet"] = {
                "last_refreshed": iso(run.last_finished_at) if run else None,
                "last_worker": run.last_worker if run else None,
                "next_due": iso(run.next_due_at) if run else None,
                "leased_by": run.lease_holder if run and run.lease_expires_at and run.lease_expires_at > now_utc()
                else None,
            }
    fleet = [{"name": w.name, "host": w.host, "pid": w.pid, "started": iso(w.started_at), "seen": iso(w.seen_at)}
             for w in workers]
    if args.json:
        shown: dict[str, Any] = {"state": config.state_name, "topics": topics}
        if config.state_url:
            shown["workers"] = fleet
        print(json.dumps(shown, ensure_ascii=False, indent=2))
        return 0
    if config.state_url:
        print(f"workers alive: {len(fleet)}" + "".join(f"\n  {w['name']}  up since {w['started']}, seen {w['seen']}"
                                                     for w in fleet))
    for row in topics:
        print(f"{row['id']}  {row['title']}  ({row['entries']} entries in the feed)")
        if "fleet" in row:
            f = row["fleet"]
            print(f"  last refreshed {f['last_refreshed'] or 'never'}" + (f" by {f['last_worker']}" if f["last_worker"]
                                                                         else "")
                  + (f"; being refreshed by {f['leased_by']}" if f["leased_by"] else f"; next due {f['next_due']}"))
        for s in row["sources"]:
            health = "never fetched" if not (s["last_success"] or s["last_failure"]) else (
                f"FAILING x{s['consecutive_failures']}" if s["consecutive_failures"]
                else "DEGRADED" if s["degraded"] else "ok")
            print(f"  {health:<14} {s['url']}")
            print(f"      last success: {s['last_success'] or '-'}   items: "
                  f"{s['items'] if s['items'] is not None else '-'}"
                  + (f" (usually {s['usual_items']})" if s["degraded"] else ""))
            if s["consecutive_failures"]:
                print(f"      last failure: {s['last_failure']}: {s['last_error']}")
                print(f"      next try: {s['next_try'] or 'next run'}")
            if "articles" in s:
                a = s["articles"]
                print(f"      article pages ({a['mode']}): {a['read']} read, {a['failing']} failing"
                      + (f" (last: {a['last_error']}; tried again later)" if a["failing"] else ""))
    return 0


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def cmd_check(config: Config) -> int:
    missing = []
    for i, t in enumerate(config.topics):
        for j, s in enumerate(t.sources):
            if s.is_local and not s.local_path.is_file():
                missing.append(f"feedsvc: {config.path}: topics[{i}].sources[{j}].url: {s.url}: no such file")
    if missing:
        print("\n".join(missing), file=sys.stderr)
        return UsageError.exit_code
    print(f"{config.path}: ok")
    print(f"  feeds: {config.output_dir}   state: {config.state_name}")
    for t in config.topics:
        print(f"  {t.id}: {t.title} ({len(t.sources)} source(s), {describe_schedule(t)}, {', '.join(t.formats)})")
        for s in t.sources:
            print(f"    {s.url}" + ("  [selectors]" if s.selectors else ""))
    return 0


def cmd_migrate_state(args: argparse.Namespace) -> int:
    from feedsvc.config import check_postgres_url, is_postgres_url, redact_url
    from feedsvc.store import Store

    def location(value: str) -> Path | str:
        if not is_postgres_url(value):
            return Path(value)
        try:
            return check_postgres_url(value)
        except ValueError as exc:
            raise UsageError(f"migrate-state: {exc}") from None

    source, target = location(args.source), location(args.target)
    if isinstance(source, Path) and not source.is_file():  # opening it would create an empty one
        raise UsageError(f"migrate-state: {source}: no such state file")
    if isinstance(target, Path) and target.exists():
        raise UsageError(f"migrate-state: {target} exists; copy into a new file")
    shown = [redact_url(v) if isinstance(v, str) else str(v) for v in (source, target)]
    try:
        with Store.open(source) as src, Store.open(target) as dst:
            copied = src.copy_to(dst)
    except BaseException:
        if isinstance(target, Path):  # a file this command made: leave no half-made state to trip on
            for path in (target, Path(f"{target}-wal"), Path(f"{target}-shm")):
                path.unlink(missing_ok=True)
        raise
    print(f"copied {shown[0]} to {shown[1]}: " + ", ".join(f"{n} {table}" for table, n in copied.items()))
    return 0


def cmd_init(args: argparse.Namespace) -> int:
    from feedsvc.configfile import write_starter

    path = Path(args.config)
    write_starter(path)
    print(f"wrote {path}: add a source with `feedsvc add URL --topic ID`, then `feedsvc refresh`")
    return 0


def cmd_add(args: argparse.Namespace) -> int:
    """Preview the page; add it to the config only if it gives items."""
    import re

    from feedsvc.configfile import add_source, source_toml, topic_id_for

    path = Path(args.config).absolute()
    config = load_config(path) if _has_topics(path) else None
    source = source_from_args(args, config, "add")
    page, _raws, items = fetch_preview(source, config, args.language)
    print(f"{page.url}: {len(items)} item(s)")
    for n, i in enumerate(items[:5], 1):
        print(f"  {n}. {i.title}" + (f"  <{i.link}>" if i.link else ""))
    if len(items) > 5:
        print(f"  … and {len(items) - 5} more")
    if not items:
        print("feedsvc: add: no items found on the page; nothing added (try --item and field selectors, "
              "and `feedsvc preview URL` to see them)", file=sys.stderr)
        return 1
    url = args.url
    if source.is_local and "://" not in url:  # a path: as the config reads it, relative to the config file
        url = os.path.relpath(Path(url).absolute(), path.parent)
    topic_id = args.topic or topic_id_for(source.url)
    m = re.search(r"<title[^>]*>([^<]{1,200})", page.text, re.I) if page.content_type.endswith("html") else None
    title = args.topic_title or (" ".join(m.group(1).split()) if m else "") or topic_id
    table = source_table(args, url)
    new = add_source(path, topic_id, table, {"title": title, "language": args.language, "timezone": args.timezone})
    print(f"added to {'new ' if new else ''}topic {topic_id!r} in {path}:\n\n{source_toml(table)}")
    return 0


def _has_topics(path: Path) -> bool:
    """Whether the config file exists and has a [[topics]] table (a fresh `init` has none yet)."""
    import tomllib

    try:
        return bool(tomllib.loads(path.read_text(encoding="utf-8")).get("topics"))
    except (OSError, tomllib.TOMLDecodeError):
        return False


def cmd_serve(args: argparse.Namespace, config: Config) -> int:
    from feedsvc.serve import serve

    config.output_dir.mkdir(parents=True, exist_ok=True)
    print(f"serving {config.output_dir} on http://{args.host}:{args.port}/ (Ctrl-C stops)", file=sys.stderr)
    serve(config.output_dir, args.host, args.port)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    level = args.log_level or ("ERROR" if args.quiet else "INFO" if args.command == "run" else "WARNING")
    if args.command == "refresh" and not args.log_level:
        level = "ERROR"  # failed sources are printed by the command itself, once
    setup_logging(level, args.log_format)
    chatty = not args.quiet and (args.verbose or sys.stdout.isatty())
    try:
        if args.command == "init":
            return cmd_init(args)
        if args.command == "add":
            return cmd_add(args)
        if args.command == "migrate-state":
            return cmd_migrate_state(args)
        if args.command == "preview":
            config = load_config(args.config) if Path(args.config).exists() else None
            return cmd_preview(args, config)
        if args.command == "run":
            from feedsvc import daemon

            load_config(args.config)  # refuse a bad config before starting anything
            return daemon.run(Path(args.config), initial_refresh=not args.no_initial_refresh,
                              serve=(args.host, args.port) if args.serve else None,
                              lock_timeout=args.lock_timeout)
        config = load_config(args.config)
        if args.command == "refresh":
            return cmd_refresh(args, config, chatty)
        if args.command == "status":
            return cmd_status(args, config)
        if args.command == "serve":
            return cmd_serve(args, config)
        return cmd_check(config)
    except FeedsvcError as exc:
        print(f"feedsvc: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("feedsvc: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `feedsvc preview URL | head`: the reader left; say nothing more (see Python's signal docs)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
