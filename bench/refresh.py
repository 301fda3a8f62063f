"""How many sources does one machine keep fresh, and at what cost? `feedsvc refresh` measured as a user runs it.

    python bench/refresh.py --sources 200              # cold, warm (all 304), 10 % changed, 1-worker cold
    python bench/refresh.py --sources 1000 --skip-single
    python bench/refresh.py --sources 50 --profile /tmp/prof   # + py-spy profiles of 1-worker cold and warm runs

Generates N Japanese news topic pages (bench/pages.py: ~150 KB, 50 items, with the navigation, scripts,
styles, ranking and footer of a real site), serves page i from its own loopback address 127.0.x.y (a real
ThreadingHTTPServer with ETag / If-None-Match -> 304, and a robots.txt), writes a config with one topic per
source (the README's use: one topic page -> one feed; it is also the costliest shape, N feeds to write) and
runs `python -m feedsvc --config … refresh` as a subprocess (with bytecode caching on, as an installed
tool runs, even where PYTHONDONTWRITEBYTECODE is set; the cache is warmed, untimed, first):

  cold      empty state: every page fetched, parsed, deduped, stored, N feeds written
  warm      the same again: every page answers 304 (--warm-runs times, 3 by default; ratios use the median)
  changed   10 % of the pages show 5 new stories (new ETag); the rest answer 304
  cold/1w   cold again on a fresh state with FEEDSVC_WORKERS=1 (the single-worker figure)

For each: wall time, pages/s, CPU ms per page (for the warm runs also net of the interpreter's start and
imports, which `feedsvc run` does not pay each refresh) (user+sys of the whole process tree: this script makes itself
the "subreaper" of its descendants, so that the parse workers, children of multiprocessing's forkserver,
are reaped and counted here even though the forkserver outlives the CLI), the CLI process's own peak RSS (its VmHWM,
read every 50 ms: not ru_maxrss, which Linux carries over exec from this script's fork and so showed this script's
size, ~175 MB at 1,000 sources) and the peak sum of RSS over the process tree (sampled every 50 ms). In the same run it times, in this process, BeautifulSoup(bytes, 'lxml')
and lxml.html.document_fromstring(bytes) on the same page bytes, before the refreshes and after them (the
ratios use the mean: the machine's speed drifts within a run), and prints the ratios the targets are
stated in (cold CPU/page ÷ BeautifulSoup parse; cold pages/s ÷ 1-worker pages/s; warm ÷ cold).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pages import LoopbackServers, page

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Run:
    name: str
    pages: int
    wall: float
    cpu: float
    main_peak_mb: float
    tree_rss_mb: float
    exit_code: int
    fetched: int = 0
    not_modified: int = 0

    @property
    def pages_per_s(self) -> float:
        return self.pages / self.wall if self.wall else 0.0

    @property
    def cpu_ms_per_page(self) -> float:
        return 1000 * self.cpu / self.pages if self.pages else 0.0


def write_config(path: Path, urls: list[str], per_topic: int) -> None:
    lines = ["[feedsvc]", 'output_dir = "feeds"', 'state = "state/feedsvc.sqlite"', 'timeout = "60s"',
             "max_entries = 50", 'timezone = "Asia/Tokyo"', 'user_agent = "feedsvc-bench"', ""]
    for t in range(0, len(urls), per_topic):
        lines += ["[[topics]]", f'id = "topic-{t // per_topic:04d}"', f'title = "トピック {t // per_topic}"',
                  'language = "ja"', ""]
        for url in urls[t:t + per_topic]:
            lines += ["[[topics.sources]]", f'url = "{url}"', ""]
    path.write_text("\n".join(lines), encoding="utf-8")


def tree_rss_kb(root: int) -> int:
    """Sum of RSS over `root` and its descendants, from /proc (Linux)."""
    parents: dict[int, int] = {}
    rss: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
            pid = int(entry.name)
            parents[pid] = int(fields[1])
            rss[pid] = int(fields[21]) * (resource.getpagesize() // 1024)
        except (OSError, IndexError, ValueError):
            continue
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        todo.extend(p for p, pp in parents.items() if pp == pid)
    return total


def cli_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The CLI's environment: this one, but with bytecode caching on, as an installed tool runs.

    With PYTHONDONTWRITEBYTECODE set (some CI machines and containers set it), every run would compile
    feedsvc's modules from source again (~0.1 s), which is no cost of a refresh a user runs."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return {**env, **(extra or {})}


def warm_bytecode() -> None:
    """Import, untimed, everything a refresh imports, so that its bytecode is cached before the first
    timed run (the cold run would otherwise pay the compilation)."""
    subprocess.run([sys.executable, "-c", "import feedsvc.cli, feedsvc.pipeline, feedsvc.extract, "
                    "feedsvc.normalize, feedsvc.publish, feedgen.feed"], check=True, cwd=str(ROOT), env=cli_env())


def run_cli(name: str, config: Path, pages: int, env_extra: dict[str, str], log: Path,
            wrap: list[str] | None = None, args: list[str] | None = None) -> Run:
    env = cli_env(env_extra)
    cmd = [*(wrap or []), sys.executable, "-m", "feedsvc", "--config", str(config), *(args or []), "refresh"]
    with open(log, "ab") as out:
        out.write(f"\n$ {' '.join(cmd)}  {env_extra}\n".encode())
        out.flush()
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=out, env=env, cwd=str(ROOT))
        peak = [0]
        main_peak = [0]
        done = threading.Event()

        def sample() -> None:
            while not done.wait(0.05):
                peak[0] = max(peak[0], tree_rss_kb(proc.pid))
                main_peak[0] = max(main_peak[0], peak_rss_kb(proc.pid))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        _, status, _usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        done.set()
        sampler.join()
        reap_descendants()
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return Run(name, pages, wall, cpu, main_peak[0] / 1024, peak[0] / 1024, proc.returncode)


def peak_rss_kb(pid: int) -> int:
    """The process's peak resident memory so far (VmHWM; reset by exec, unlike ru_maxrss), 0 once it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    m = re.search(r"^VmHWM:\s+(\d+) kB", status, re.M)
    return int(m.group(1)) if m else 0


def become_subreaper() -> bool:
    """Adopt orphaned descendants (Linux prctl PR_SET_CHILD_SUBREAPER), so that their CPU is counted."""
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def reap_descendants(timeout: float = 30.0) -> None:
    """Wait for the processes the CLI left behind (the forkserver exits once its pipe closes)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return  # no children left
        if pid == 0:
            time.sleep(0.02)


def time_parsers(bodies: list[bytes], repeat: int) -> dict[str, float]:
    """CPU seconds per page of each parser on the same bytes (best of `repeat` per page, then the mean)."""
    import lxml.html
    from bs4 import BeautifulSoup

    def per_page(fn) -> float:  # type: ignore[no-untyped-def]
        total = 0.0
        for body in bodies:
            best = float("inf")
            for _ in range(repeat):
                t0 = time.process_time()
                fn(body)
                best = min(best, time.process_time() - t0)
            total += best
        return total / len(bodies)

    return {"bs4_lxml": per_page(lambda b: BeautifulSoup(b, "lxml")),
            "lxml_html": per_page(lambda b: lxml.html.document_fromstring(b))}


def _spin(seconds: float) -> int:
    """Pure-Python CPU work for about `seconds` of CPU; returns the loops done."""
    end, n = time.process_time() + seconds, 0
    while time.process_time() < end:
        sum(range(2000))
        n += 1
    return n


def parallel_ceiling(cpus: int = 2, seconds: float = 2.0) -> float:
    """How much more pure-Python work `cpus` processes do at once than one alone, on this machine
    (vCPUs may share physical cores): the most a refresh with that many workers could gain."""
    import multiprocessing

    one = _spin(seconds)
    with multiprocessing.get_context("spawn").Pool(cpus) as pool:
        together = sum(pool.map(_spin, [seconds] * cpus))
    return together / one


def time_startup(repeat: int = 3) -> float:
    """CPU seconds of starting the CLI's interpreter and importing the refresh path (no page work)."""
    best = float("inf")
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run([sys.executable, "-c", "import feedsvc.cli, feedsvc.pipeline"], check=True, cwd=str(ROOT),
                       env=cli_env())
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        best = min(best, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    return best


def print_profile(path: Path, top: int) -> None:
    """Inclusive and self share of samples per function, from py-spy's raw (collapsed) stacks."""
    incl: dict[str, int] = {}
    own: dict[str, int] = {}
    total = 0
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [re.sub(r":\d+\)$", ")", f) for f in stack.split(";")]  # one entry per function, not per line
        for f in set(frames):
            incl[f] = incl.get(f, 0) + n
        own[frames[-1]] = own.get(frames[-1], 0) + n
    if not total:
        print("  (no samples)")
        return
    print(f"  {total} samples; inclusive %, self %, function")
    for f, n in sorted(incl.items(), key=lambda kv: -kv[1])[:top]:
        print(f"  {100 * n / total:5.1f} {100 * own.get(f, 0) / total:5.1f}  {f}")


def count_feeds(out_dir: Path) -> int:
    return len(list(out_dir.glob("*.atom")))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sources", type=int, default=100, help="number of sources (pages, hosts); default 100")
    ap.add_argument("--per-topic", type=int, default=1, help="sources per topic (default 1: one feed per page)")
    ap.add_argument("--changed", type=float, default=0.10, help="share of pages that change (default 0.10)")
    ap.add_argument("--sample", type=int, default=20, help="pages timed with the bare parsers (default 20)")
    ap.add_argument("--repeat", type=int, default=3, help="parser timings: best of this many per page")
    ap.add_argument("--warm-runs", type=int, default=3,
                    help="warm refreshes in a row (default 3): a warm run lasts about a second, where the "
                         "machine's drift shows; the ratio uses their median")
    ap.add_argument("--skip-single", action="store_true", help="skip the FEEDSVC_WORKERS=1 cold run")
    ap.add_argument("--profile", type=Path, help="also profile a 1-worker cold and warm run with py-spy (raw stacks) into FILE.cold, FILE.warm")
    ap.add_argument("--py-spy", default=str(Path(sys.executable).parent / "py-spy"), help="py-spy executable")
    ap.add_argument("--top", type=int, default=30, help="functions shown from the profile (default 30)")
    ap.add_argument("--json", type=Path, help="write the figures as JSON here")
    ap.add_argument("--keep", type=Path, help="work in this folder (kept) instead of a temporary one")
    args = ap.parse_args(argv)
    n = args.sources
    if n < 1 or n > 250 * 250:
        ap.error("--sources must be 1 … 62500")

    if not become_subreaper():
        print("warning: cannot adopt orphaned processes here: the CPU of parse workers may be missed")
    work_ctx = tempfile.TemporaryDirectory(prefix="feedsvc-bench-") if args.keep is None else None
    work = Path(work_ctx.name) if work_ctx else args.keep
    work.mkdir(parents=True, exist_ok=True)
    log = work / "cli.log"
    print(f"{n} sources, {args.per_topic} per topic; python {sys.version.split()[0]}, {os.cpu_count()} CPUs; "
          f"work dir {work}", flush=True)
    t_setup = time.perf_counter()
    runs: list[Run] = []
    profiles: list[tuple[str, Path]] = []
    warm_bytecode()
    try:
        with LoopbackServers(n) as servers:
            urls = [servers.url(i) for i in range(n)]
            sizes = [len(s.body) for s in servers.servers]
            print(f"served {n} pages on 127.0.x.y: mean {sum(sizes) / n / 1024:.0f} KB "
                  f"(setup {time.perf_counter() - t_setup:.1f} s)", flush=True)

            def phase(name: str, cfg_dir: Path, env: dict[str, str], wrap: list[str] | None = None) -> Run:
                h0 = sum(s.hits for s in servers.servers)
                m0 = sum(s.not_modified for s in servers.servers)
                r = run_cli(name, cfg_dir / "config.toml", n, env, log, wrap)
                r.fetched = sum(s.hits for s in servers.servers) - h0
                r.not_modified = sum(s.not_modified for s in servers.servers) - m0
                runs.append(r)
                print(f"  {name:<9} {r.wall:7.2f} s  {r.pages_per_s:7.1f} pages/s  {r.cpu_ms_per_page:7.1f} CPU ms/page"
                      f"  main peak {r.main_peak_mb:5.0f} MB  tree {r.tree_rss_mb:6.0f} MB  "
                      f"(exit {r.exit_code}; {r.fetched} GETs, {r.not_modified} × 304)", flush=True)
                return r

            # The parsers are timed before the runs and after them, and the ratios use the mean: this
            # machine's speed drifts by tens of percent within one run, and one timing at the end
            # made the CPU ratio move with the drift more than with the code.
            bodies = [page(i) for i in range(min(n, args.sample))]
            parse_before = time_parsers(bodies, args.repeat)
            main_dir = work / "main"
            main_dir.mkdir(exist_ok=True)
            write_config(main_dir / "config.toml", urls, args.per_topic)
            cold = phase("cold", main_dir, {})
            feeds = count_feeds(main_dir / "feeds")
            warms = [phase("warm", main_dir, {}) for _ in range(max(1, args.warm_runs))]
            warm = sorted(warms, key=lambda r: r.wall)[len(warms) // 2]  # the median
            rng = random.Random(9)
            for i in rng.sample(range(n), max(1, round(n * args.changed))):
                servers.bump(i)
            changed = phase("changed", main_dir, {})
            single = None
            if not args.skip_single:
                one_dir = work / "single"
                one_dir.mkdir(exist_ok=True)
                write_config(one_dir / "config.toml", urls, args.per_topic)
                single = phase("cold/1w", one_dir, {"FEEDSVC_WORKERS": "1"})
            if args.profile:
                prof_dir = work / "profile"
                prof_dir.mkdir(exist_ok=True)
                write_config(prof_dir / "config.toml", urls, args.per_topic)
                for kind in ("cold", "warm"):
                    out = args.profile.with_name(f"{args.profile.name}.{kind}")
                    phase(f"prof-{kind}", prof_dir, {"FEEDSVC_WORKERS": "1"},
                          [args.py_spy, "record", "--nonblocking", "-r", "250", "-f", "raw", "-o", str(out), "--"])
                    profiles.append((kind, out))
            parse_after = time_parsers(bodies, args.repeat)
        parse = {k: (parse_before[k] + parse_after[k]) / 2 for k in parse_before}
        startup = time_startup()
        ceiling = parallel_ceiling(os.cpu_count() or 1)
    finally:
        if work_ctx:
            work_ctx.cleanup()

    for kind, out in profiles:
        print(f"\npy-spy profile of a 1-worker {kind} refresh (all threads, on CPU only): {out}")
        print_profile(out, args.top)
    bs, lx = parse["bs4_lxml"], parse["lxml_html"]
    print(f"\nparsers, in-process, on {len(bodies)} of the same pages (CPU per page, best of {args.repeat}; "
          "the mean of a timing before the refreshes and one after):")
    print(f"  BeautifulSoup(bytes, 'lxml')      {1000 * bs:7.1f} ms   "
          f"(before {1000 * parse_before['bs4_lxml']:.1f}, after {1000 * parse_after['bs4_lxml']:.1f})")
    print(f"  lxml.html.document_fromstring     {1000 * lx:7.1f} ms   (BeautifulSoup = {bs / lx:.1f}× lxml)")
    print(f"  interpreter start + imports       {1000 * startup:7.1f} ms   (once per refresh)")
    print("\nratios (targets of issue 9):")
    print(f"  cold CPU/page ÷ BeautifulSoup parse  {cold.cpu / n / bs:5.2f}×   (target ≤ 1.5×)")
    print(f"  cold CPU/page ÷ lxml parse           {cold.cpu / n / lx:5.2f}×")
    if single:  # one process: no sharing of the two cores with the workers and this script's servers
        print(f"  1-worker cold CPU/page ÷ BS parse    {single.cpu / n / bs:5.2f}×   (one process: no core shared with workers)")
    if single:
        print(f"  cold pages/s ÷ 1-worker pages/s      {cold.pages_per_s / single.pages_per_s:5.2f}×   (target ≥ 1.7×; "
              f"{os.cpu_count()} processes of pure Python here do {ceiling:.2f}× the work of one)")
    each = "" if len(warms) == 1 else f"; median of {len(warms)}: " + ", ".join(f"{r.wall / cold.wall:.1%}" for r in warms)
    print(f"  warm wall ÷ cold wall                {warm.wall / cold.wall:5.1%}    (target ≤ 5 %{each})")
    warm_cpu = sorted(r.cpu for r in warms)[len(warms) // 2]
    runs_ms = ", ".join(f"{1000 * (r.cpu - startup) / n:.2f}" for r in warms)
    print(f"  warm CPU/page net of start-up        {1000 * (warm_cpu - startup) / n:5.2f} ms (target ≤ 1 ms, issue 21; "
          f"median of {runs_ms}: the interpreter start, paid once a refresh by the CLI, not by `feedsvc run`)")
    print(f"  changed wall ÷ cold wall             {changed.wall / cold.wall:5.1%}")
    ok = (all(r.exit_code == 0 for r in runs) and feeds == -(-n // args.per_topic)
          and all(r.not_modified == n for r in warms))
    print(f"\ncheck: exit codes {[r.exit_code for r in runs]}, {feeds} feeds written after the cold run, "
          f"{warm.not_modified}/{n} answered 304 on the warm run -> {'ok' if ok else 'NOT OK (see the log)'}")
    if args.json:
        args.json.write_text(json.dumps({
            "sources": n, "per_topic": args.per_topic, "feeds": feeds, "ok": ok,
            "runs": [dict(asdict(r), pages_per_s=r.pages_per_s, cpu_ms_per_page=r.cpu_ms_per_page) for r in runs],
            "parse_ms": {k: 1000 * v for k, v in parse.items()}, "startup_ms": 1000 * startup,
            "warm_cpu_ms_per_page_net_of_startup": 1000 * (warm_cpu - startup) / n,
            "parse_ms_before": {k: 1000 * v for k, v in parse_before.items()},
            "parse_ms_after": {k: 1000 * v for k, v in parse_after.items()},
            "parallel_ceiling": ceiling,
        }, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
