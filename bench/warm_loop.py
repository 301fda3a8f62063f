"""The warm cycle in-process: `pipeline.refresh()` called in a loop, as `feedsvc run` pays each cycle,
every page answering 304 (issue 21). Compares code trees by CPU time, rotated process by process.
Each refresh passes index_every=60 (daemon.INDEX_EVERY), as `feedsvc run` does: index.html is then
rewritten at most once a minute (in practice by a process's first refresh, which is dropped, or not at all).

    python bench/warm_loop.py --sources 120 --rounds 8 --runs 8 OLD_TREE NEW_TREE

Each tree is a directory holding a `feedsvc` package (a `git worktree`, or `git archive REV feedsvc |
tar -x -C DIR`). The loopback servers (bench/pages.py) run in a process of their own and one state is
warmed once (a cold `feedsvc refresh` through the CLI of the first tree); then, round after round,
each tree in turn runs in a fresh process that copies that state and times `runs` warm refreshes
(process CPU, all threads; main thread apart), the first dropped (it pays one-time costs). Prints
each tree's median CPU ms a source with its quartiles and per-process medians: the shared machine's
load moves within minutes, so only trees measured in the same rotation compare.

In the same rotation, processes of their own time two floors: the same conditional GETs, one after
another, with nothing of feedsvc's (nothing stored, no feed looked at), made the plainest way requests
makes them (`requests.Session().get(url, headers={"If-None-Match": etag})`) and handed, prepared
beforehand, straight to its transport (`HTTPAdapter().send()`); a new Session or adapter each pass, as
each refresh has its own pools. Each tree's ratio to both shows what part of a warm source is feedsvc's.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

_CHILD = r"""
import inspect, os, shutil, sys, tempfile, time
from pathlib import Path
src, runs = Path(sys.argv[1]), int(sys.argv[2])
work = Path(tempfile.mkdtemp(prefix="feedsvc-warm-"))
shutil.copytree(src, work, dirs_exist_ok=True)
os.chdir(work)
from feedsvc import pipeline
from feedsvc.cli import now_utc
from feedsvc.config import load_config
cfg = load_config(work / "config.toml")
n = sum(len(t.sources) for t in cfg.topics)
cpu, main = [], []
# as `feedsvc run` refreshes (daemon.INDEX_EVERY), in trees that have the parameter
kw = {"index_every": 60} if "index_every" in inspect.signature(pipeline.refresh).parameters else {}
for _ in range(runs):
    t0, m0 = time.process_time(), time.thread_time()
    res = pipeline.refresh(cfg, now=now_utc(), **kw)
    cpu.append(1000 * (time.process_time() - t0) / n)
    main.append(1000 * (time.thread_time() - m0) / n)
    assert all(s.status == "not-modified" for r in res for s in r.sources), res[0]
shutil.rmtree(work)
print(cpu, main)
"""

# The floors: the same conditional GETs with nothing of feedsvc's (same servers, same URLs, same 304s),
# made through requests' public API, then handed straight to its transport adapter.
_FLOOR = r"""
import sys, time, tomllib, requests
from pathlib import Path
src, runs, how = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
urls = [s["url"] for t in tomllib.loads((src / "config.toml").read_text())["topics"] for s in t["sources"]]
etags = [requests.get(u).headers["ETag"] for u in urls]
prepared = [requests.Request("GET", u, headers={"If-None-Match": e}).prepare() for u, e in zip(urls, etags)]
cpu = []
for _ in range(runs):
    t0 = time.process_time()
    if how == "get":
        with requests.Session() as session:
            for url, etag in zip(urls, etags):
                assert session.get(url, headers={"If-None-Match": etag}, timeout=10).status_code == 304
    else:
        adapter = requests.adapters.HTTPAdapter()
        for prep in prepared:
            with adapter.send(prep, timeout=10) as resp:
                assert resp.status_code == 304
        adapter.close()
    cpu.append(1000 * (time.process_time() - t0) / len(urls))
print(cpu, cpu)
"""
FLOORS = {Path("floor: requests.Session().get()"): "get", Path("floor: HTTPAdapter().send()"): "send"}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("trees", nargs="+", type=Path)
    ap.add_argument("--sources", type=int, default=120)
    ap.add_argument("--rounds", type=int, default=8)
    ap.add_argument("--runs", type=int, default=8)
    args = ap.parse_args()
    sys.path.insert(0, str(HERE))
    from refresh import write_config

    srv = subprocess.Popen([sys.executable, "-c", (
        "import sys, json; sys.path.insert(0, sys.argv[1]); from pages import LoopbackServers\n"
        "with LoopbackServers(int(sys.argv[2])) as s:\n"
        "    print(json.dumps([s.url(i) for i in range(int(sys.argv[2]))]), flush=True); sys.stdin.read()"),
        str(HERE), str(args.sources)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    state = Path(tempfile.mkdtemp(prefix="feedsvc-warm-state-"))
    try:
        urls = json.loads(srv.stdout.readline())  # type: ignore[union-attr]
        write_config(state / "config.toml", urls, 1)
        subprocess.run([sys.executable, "-m", "feedsvc", "--config", str(state / "config.toml"), "refresh"],
                       check=True, stdout=subprocess.DEVNULL, cwd=state,
                       env=dict(os.environ, PYTHONPATH=str(args.trees[0].resolve())))
        runners = [*args.trees, *FLOORS]
        cpu: dict[Path, list[float]] = {t: [] for t in runners}
        main_cpu: dict[Path, list[float]] = {t: [] for t in runners}
        per: dict[Path, list[float]] = {t: [] for t in runners}
        started = time.monotonic()
        for _ in range(args.rounds):
            for tree in runners:
                child = [_FLOOR, FLOORS[tree]] if tree in FLOORS else [_CHILD]
                out = subprocess.run([sys.executable, "-c", child[0], str(state), str(args.runs), *child[1:]],
                                     check=True,
                                     capture_output=True, text=True,
                                     env=dict(os.environ, PYTHONPATH=str(tree.resolve()))).stdout
                c, m = (json.loads(part) for part in out.strip().replace("] [", "]\n[").split("\n"))
                cpu[tree] += c[1:]
                main_cpu[tree] += m[1:]
                per[tree].append(statistics.median(c[1:]))
        print(f"{args.sources} sources, {args.rounds} rounds x {args.runs} warm refreshes a process "
              f"(first dropped), {time.monotonic() - started:.0f} s")
        floors = [statistics.median(cpu[f]) for f in FLOORS]
        for tree in runners:
            q = statistics.quantiles(cpu[tree], n=4)
            ratio = "" if tree in FLOORS else "; " + " and ".join(
                f"{statistics.median(cpu[tree]) / f:.2f}x" for f in floors) + " the floors"
            print(f"{tree}: median {statistics.median(cpu[tree]):.3f} CPU ms/source (quartiles {q[0]:.3f}-{q[2]:.3f}, "
                  f"n={len(cpu[tree])}); main thread {statistics.median(main_cpu[tree]):.3f}{ratio}; "
                  "per-process medians " + " ".join(f"{x:.2f}" for x in per[tree]))
    finally:
        srv.stdin.close()  # type: ignore[union-attr]
        srv.wait()
        shutil.rmtree(state, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
