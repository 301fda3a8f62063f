"""Past one machine: what PostgreSQL and a fleet of `feedsvc run` workers cost and give (issue 21).

    python bench/scale.py                     # 1,000 sources
    python bench/scale.py --sources 3000 --json /tmp/scale.json

Serves N generated topic pages (bench/pages.py, each from its own loopback address, with ETags), one
topic per source, and starts its own PostgreSQL server in a temporary folder (tests/pgserver.py: Debian's
postgresql package). In the same run it measures, on the same pages:

  sqlite refresh   `feedsvc refresh`, one process, SQLite: the embedded default (the baseline)
  pg refresh       the same with FEEDSVC_STATE pointing at PostgreSQL: what the backend costs by itself
  pg run x1        one `feedsvc run` worker, from the moment it starts until every topic has been refreshed
  pg run x2        two workers sharing the topics through their leases

each cold (empty state: every page fetched, parsed, stored, a feed written) and warm (every page
answers 304: the cycle that decides the cost at scale; for the workers, every topic made due again at
once); `pg refresh` also changed (a tenth of the pages show 5 new stories: the steady state). For each: wall time, pages/s, CPU ms per page of feedsvc's processes (the process trees, parse
workers included, read from /proc) and of PostgreSQL (the postmaster and its backends), and, on PostgreSQL,
how long the writers' lock was held per page (from the log's line of each refresh: the one lock bounds
what one database saves a second; `refresh` runs with --log-level INFO for it, as `run` does). Then the
ratios (2 workers ÷ 1; PostgreSQL ÷ SQLite) beside the parallel ceiling of this machine (how much more
two processes of pure Python do than one), and rows and bytes per stored story in each backend.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pages import LoopbackServers  # noqa: E402
from refresh import become_subreaper, cli_env, parallel_ceiling, run_cli, warm_bytecode, write_config  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from pgserver import PostgresServer, find_bindir  # noqa: E402  (the tests' throw-away server)

CLK = os.sysconf("SC_CLK_TCK")


@dataclass
class Phase:
    name: str
    pages: int
    wall: float
    cpu: float  # feedsvc's processes, seconds
    pg_cpu: float = 0.0  # PostgreSQL's processes, seconds
    lock: float = 0.0  # seconds the writers' lock was held (PostgreSQL), from the log
    replans: int = 0  # topics planned again under the lock: another worker saved after their plan

    @property
    def pages_per_s(self) -> float:
        return self.pages / self.wall if self.wall else 0.0

    @property
    def cpu_ms(self) -> float:
        return 1000 * self.cpu / self.pages

    @property
    def pg_cpu_ms(self) -> float:
        return 1000 * self.pg_cpu / self.pages

    @property
    def lock_ms(self) -> float:
        return 1000 * self.lock / self.pages


LOCK_LINE = re.compile(rb"the writers' lock held ([0-9.]+) s in \d+ transaction\(s\)(?:; (\d+) plan)?")


def lock_held(log: Path, since: int) -> tuple[float, int]:
    """Seconds of writers' lock, and plans made again under it, that the refreshes' lines written to
    `log` after byte `since` report."""
    with open(log, "rb") as f:
        f.seek(since)
        found = list(LOCK_LINE.finditer(f.read()))
    return sum(float(m.group(1)) for m in found), sum(int(m.group(2) or 0) for m in found)


def size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


@dataclass
class Report:
    sources: int
    ceiling: float
    changed: int = 0  # pages with new stories in the "pg refresh changed" phase
    phases: list[Phase] = field(default_factory=list)
    storage: dict[str, dict[str, float]] = field(default_factory=dict)


def tree_cpu(root: int) -> float:
    """CPU seconds of a process and its descendants: live ones' own time, plus what each has reaped."""
    stats: dict[int, tuple[int, float]] = {}  # pid -> (parent, seconds)
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            text = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2:].split()
        # utime, stime, cutime, cstime: fields 14-17 of stat, 11-14 after the command
        stats[int(entry)] = (int(fields[1]), sum(int(x) for x in fields[11:15]) / CLK)
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        total += stats.get(pid, (0, 0.0))[1]
        todo.extend(p for p, (parent, _) in stats.items() if parent == pid)
    return total


def run_refresh(config: Path, env_extra: dict[str, str], log: Path, *args: str) -> tuple[float, float]:
    """(wall, cpu) of one `feedsvc refresh` and every process it started (bench/refresh.py's way)."""
    run = run_cli("refresh", config, 1, env_extra, log, args=list(args))
    if run.exit_code != 0:
        tail = log.read_text(encoding="utf-8", errors="replace")[-3000:]
        raise SystemExit(f"feedsvc refresh failed ({run.exit_code}); the end of its log:\n{tail}")
    return run.wall, run.cpu


def refreshed_since(db: Any, since: str) -> int:
    """Topics whose refresh finished since `since` (0 while the workers have not made the tables yet)."""
    import psycopg

    try:
        return int(db.execute("SELECT count(*) FROM topic_runs WHERE last_finished_at >= %s", (since,)).fetchone()[0])
    except psycopg.errors.UndefinedTable:
        return 0


def workers_phase(n_workers: int, config: Path, env: dict[str, str], url: str, sources: int,
                  pg_pid: int, log: Path) -> tuple[Phase, Phase]:
    """Cold then warm, with `n_workers` `feedsvc run` processes: each phase ends when every topic has been
    refreshed in it (read from the state, as `status` would)."""
    import psycopg

    db = psycopg.connect(url, autocommit=True)
    cpu0, pg0 = 0.0, tree_cpu(pg_pid)
    start = datetime.now(UTC).isoformat(timespec="microseconds")
    t0 = time.perf_counter()
    out = open(log, "ab")
    since = size(log)
    procs = [subprocess.Popen([sys.executable, "-m", "feedsvc", "--config", str(config), "run"], env=env,
                              cwd=str(config.parent), stdout=out, stderr=out)
             for _ in range(n_workers)]
    try:
        phases = []
        for name in ("cold", "warm"):
            if name == "warm":
                start = datetime.now(UTC).isoformat(timespec="microseconds")
                t0 = time.perf_counter()
                cpu0, pg0 = sum(tree_cpu(p.pid) for p in procs), tree_cpu(pg_pid)
                since = size(log)
                db.execute("UPDATE topic_runs SET next_due_at = %s", (start,))
            while refreshed_since(db, start) < sources:
                if any(p.poll() is not None for p in procs):
                    raise SystemExit(f"a worker exited ({[p.returncode for p in procs]})")
                time.sleep(0.1)
            wall = time.perf_counter() - t0
            cpu = sum(tree_cpu(p.pid) for p in procs) - cpu0
            phases.append(Phase(f"pg run x{n_workers} {name}", sources, wall, cpu, tree_cpu(pg_pid) - pg0,
                                *lock_held(log, since)))
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait(timeout=60)
        db.close()
        out.close()
    return phases[0], phases[1]


def storage(url: str | None, sqlite_path: Path | None) -> dict[str, float]:
    """Rows and bytes per stored story."""
    if sqlite_path is not None:
        import sqlite3

        with sqlite3.connect(sqlite_path) as db:
            stories = db.execute("SELECT count(*) FROM entries").fetchone()[0]
            rows = sum(db.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                       for t in ("entries", "entry_topics", "keys", "lsh"))
        size = sum(p.stat().st_size for p in sqlite_path.parent.glob(sqlite_path.name + "*"))  # with its WAL
        return {"stories": stories, "rows_per_story": rows / stories, "bytes_per_story": float(size) / stories}
    import psycopg

    assert url is not None
    with psycopg.connect(url) as db:
        stories = db.execute("SELECT count(*) FROM entries").fetchone()[0]  # type: ignore[index]
        rows = sum(db.execute(f"SELECT count(*) FROM {t}").fetchone()[0]  # type: ignore[index]
                   for t in ("entries", "entry_topics", "keys", "lsh"))
        size = db.execute("SELECT sum(pg_total_relation_size(oid)) FROM pg_class WHERE relkind = 'r' "  # type: ignore[index]
                          "AND relnamespace = 'public'::regnamespace").fetchone()[0]  # tables, their indexes, TOAST
    return {"stories": stories, "rows_per_story": rows / stories, "bytes_per_story": float(size) / stories}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sources", type=int, default=1000)
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args(argv)
    bindir = find_bindir()
    if bindir is None:
        print("bench/scale.py needs PostgreSQL's server binaries (apt-get install postgresql)", file=sys.stderr)
        return 2
    warm_bytecode()
    report = Report(args.sources, 0.0, changed=max(1, round(args.sources / 10)))
    pg = PostgresServer(bindir)
    pg.start()
    pg_pid = int((pg.data / "postmaster.pid").read_text().split()[0])
    try:
        with tempfile.TemporaryDirectory(prefix="feedsvc-scale-") as tmp, LoopbackServers(args.sources) as sites:
            urls = [sites.url(i) for i in range(args.sources)]

            become_subreaper()  # after the server started: its postmaster is not ours to reap
            log = Path(tmp) / "feedsvc.log"

            def fresh(name: str) -> Path:
                """A config of its own: one topic per source, refreshed once a day (so once in a phase)."""
                folder = Path(tmp) / name
                folder.mkdir()
                config = folder / "config.toml"
                write_config(config, urls, 1)
                text = config.read_text(encoding="utf-8").replace("[feedsvc]\n", '[feedsvc]\ninterval = "1d"\n', 1)
                config.write_text(text, encoding="utf-8")
                return config

            sqlite_cfg = fresh("sqlite")
            for name in ("cold", "warm"):
                wall, cpu = run_refresh(sqlite_cfg, {}, log)
                report.phases.append(Phase(f"sqlite refresh {name}", args.sources, wall, cpu))
            report.storage["sqlite"] = storage(None, sqlite_cfg.parent / "state" / "feedsvc.sqlite")

            url = pg.new_database("refresh")
            pg_cfg = fresh("pg-refresh")
            for name in ("cold", "warm"):
                pg0, since = tree_cpu(pg_pid), size(log)
                wall, cpu = run_refresh(pg_cfg, {"FEEDSVC_STATE": url}, log, "--log-level", "INFO")
                report.phases.append(Phase(f"pg refresh {name}", args.sources, wall, cpu, tree_cpu(pg_pid) - pg0,
                                           *lock_held(log, since)))
            report.storage["postgresql"] = storage(url, None)
            # the steady state: a tenth of the pages show 5 new stories, the rest answer 304
            for i in random.Random(1).sample(range(args.sources), report.changed):
                sites.bump(i)
            pg0, since = tree_cpu(pg_pid), size(log)
            wall, cpu = run_refresh(pg_cfg, {"FEEDSVC_STATE": url}, log, "--log-level", "INFO")
            report.phases.append(Phase("pg refresh changed", args.sources, wall, cpu, tree_cpu(pg_pid) - pg0,
                                       *lock_held(log, since)))

            for n in (1, 2):
                url = pg.new_database(f"run{n}")
                report.phases += workers_phase(n, fresh(f"pg-run{n}"), cli_env({"FEEDSVC_STATE": url}), url,
                                               args.sources, pg_pid, log)
    finally:
        pg.stop()
    # last: its spawn pool leaves a resource tracker behind, which run_cli's reaping would wait for
    report.ceiling = parallel_ceiling()
    print_report(report)
    if args.json:
        args.json.write_text(json.dumps(asdict(report), indent=2))
    return 0


def print_report(r: Report) -> None:
    print(f"{r.sources} sources, one topic each; parallel ceiling of this machine (2 processes ÷ 1): "
          f"{r.ceiling:.2f}x")
    print(f"{'':22} {'wall s':>8} {'pages/s':>8} {'feedsvc CPU ms/page':>20} {'PostgreSQL CPU ms/page':>23} "
          f"{'lock held ms/page':>18} {'replans':>8}")
    for p in r.phases:
        lock = f"{p.lock_ms:18.2f} {p.replans:8d}" if p.name.startswith("pg") else f"{'-':>18} {'-':>8}"
        print(f"{p.name:22} {p.wall:8.1f} {p.pages_per_s:8.1f} {p.cpu_ms:20.2f} {p.pg_cpu_ms:23.2f} {lock}")
    by = {p.name: p for p in r.phases}
    for kind in ("cold", "warm"):
        one, two = by[f"pg run x1 {kind}"], by[f"pg run x2 {kind}"]
        base, pg = by[f"sqlite refresh {kind}"], by[f"pg refresh {kind}"]
        print(f"{kind}: 2 workers ÷ 1: {two.pages_per_s / one.pages_per_s:.2f}x pages/s; "
              f"PostgreSQL ÷ SQLite (one refresh): {pg.wall / base.wall:.2f}x wall, "
              f"{(pg.cpu + pg.pg_cpu) / base.cpu:.2f}x CPU (feedsvc + PostgreSQL)")
    changed = by["pg refresh changed"]
    print(f"changed: {r.changed} of {r.sources} pages with 5 new stories each: the writers' lock held "
          f"{1000 * changed.lock / r.changed:.1f} ms a changed page")
    for backend, s in r.storage.items():
        print(f"{backend}: {s['stories']:.0f} stories, {s['rows_per_story']:.1f} rows and "
              f"{s['bytes_per_story'] / 1024:.1f} KiB per story")


if __name__ == "__main__":
    sys.exit(main())
