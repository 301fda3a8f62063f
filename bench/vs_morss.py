"""feedsvc against morss, the tool a user would otherwise pick, on the same local pages.

    python bench/vs_morss.py --sources 50
    python bench/vs_morss.py --sources 50 --venv /tmp/feedsvc-bench-morss   # where morss is installed

morss (PyPI, AGPL) is installed into its own virtualenv (default /tmp/feedsvc-bench-morss), never into
feedsvc's environment. It is given what feedsvc finds by itself: XPath rules for the items, title, link,
summary and date of bench/pages.py's listing (`--items … --item_title …`, html mode), with `proxy` (no
article fetching: feedsvc does not fetch articles either) and its item caps lifted (LIM_ITEM/MAX_ITEM, which
default to 10 items). morss runs in-process in a loop over the pages (its interpreter start is not counted);
feedsvc runs as a user runs it, `feedsvc refresh` on a cold state, with its interpreter start, dedupe,
SQLite state and N valid Atom feeds included. Both fetch every page over HTTP from 127.0.x.y.

Prints CPU ms and wall ms per page of both and the ratio. Exits 2 with the reason when morss cannot be
installed or run here.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from pages import LoopbackServers
from refresh import become_subreaper, run_cli, time_startup, warm_bytecode, write_config

RULES = {  # bench/pages.py's listing: the ad slotted into the list has another class and is left out
    "items": '//li[@class="p-list__item"]/article',
    "item_title": ".//h3/a",
    "item_link": ".//h3/a/@href",
    "item_content": './/p[@class="c-card__summary"]',
    "item_time": ".//time/@datetime",
    "mode": "html",
}

# Runs inside morss's virtualenv: the same steps as morss.process() (fetch, gather, format as RSS).
DRIVER = r"""
import json, sys, time
from morss import morss
urls, rules = json.loads(sys.argv[1]), json.loads(sys.argv[2])
out = []
for url in urls:
    options = morss.Options(dict(rules, proxy=True, force=True))
    c0, w0 = time.process_time(), time.perf_counter()
    url2, rss = morss.FeedFetch(url, options)
    rss = morss.FeedGather(rss, url2, options)
    xml = morss.FeedFormat(rss, options, "unicode")
    out.append({"cpu": time.process_time() - c0, "wall": time.perf_counter() - w0,
                "items": xml.count("<item>"), "bytes": len(xml.encode())})
print(json.dumps(out))
"""


def ensure_morss(venv: Path) -> tuple[Path | None, str]:
    """The venv's python with morss importable, or None and why not."""
    py = venv / "bin" / "python"
    try:
        if not py.exists():
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True, text=True)
        probe = subprocess.run([str(py), "-c", "import morss.morss"], check=False, capture_output=True, text=True)
        if probe.returncode != 0:
            print(f"installing morss into {venv} …", flush=True)
            subprocess.run([str(py), "-m", "pip", "install", "-q", "morss"], check=True, capture_output=True,
                           text=True, timeout=600)
            probe = subprocess.run([str(py), "-c", "import morss.morss"], check=False, capture_output=True, text=True)
            if probe.returncode != 0:
                return None, f"morss installed but does not import: {probe.stderr.strip()[-2000:]}"
    except subprocess.CalledProcessError as exc:
        return None, (f"{' '.join(map(str, exc.cmd))} failed (exit {exc.returncode}): "
                      f"{(exc.stderr or exc.stdout or '').strip()[-2000:]}")
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"{type(exc).__name__}: {exc}"
    version = subprocess.run([str(py), "-m", "pip", "show", "morss"], check=False, capture_output=True, text=True).stdout
    line = next((ln for ln in version.splitlines() if ln.startswith("Version:")), "Version: ?")
    return py, f"morss {line.split(':', 1)[1].strip()}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sources", type=int, default=50, help="pages (one per loopback host); default 50")
    ap.add_argument("--venv", type=Path, default=Path(tempfile.gettempdir()) / "feedsvc-bench-morss",
                    help="virtualenv for morss (created and filled when missing)")
    ap.add_argument("--json", type=Path, help="write the figures as JSON here")
    args = ap.parse_args(argv)
    n = args.sources

    become_subreaper()  # so that run_cli counts the parse workers' CPU (see refresh.py)
    py, what = ensure_morss(args.venv)
    if py is None:
        print(f"morss cannot be run here, so there is no comparison: {what}", file=sys.stderr)
        return 2
    print(f"{what} in {args.venv}; {n} pages, one per loopback host", flush=True)
    warm_bytecode()  # feedsvc's first timed run must not pay the compilation (see refresh.py)

    with tempfile.TemporaryDirectory(prefix="feedsvc-vs-morss-") as tmp, LoopbackServers(n) as servers:
        work = Path(tmp)
        urls = [servers.url(i) for i in range(n)]
        # morss: its caps lifted (they default to 10 items a feed), no article fetching
        env = dict(os.environ, LIM_ITEM="-1", LIM_TIME="-1", MAX_ITEM="-1", MAX_TIME="-1")
        t0 = time.perf_counter()
        proc = subprocess.run([str(py), "-c", DRIVER, json.dumps(urls), json.dumps(RULES)],
                              check=False, capture_output=True, text=True, env=env, cwd=tmp)
        morss_total_wall = time.perf_counter() - t0
        if proc.returncode != 0:
            print(f"morss failed on the pages (exit {proc.returncode}):\n{proc.stderr.strip()[-3000:]}",
                  file=sys.stderr)
            return 2
        per_page = json.loads(proc.stdout.strip().splitlines()[-1])
        write_config(work / "config.toml", urls, 1)
        fs = run_cli("feedsvc", work / "config.toml", n, {}, work / "cli.log")
        feeds = len(list((work / "feeds").glob("*.atom")))
        (work / "one").mkdir()
        write_config(work / "one" / "config.toml", urls, 1)
        one = run_cli("feedsvc-1w", work / "one" / "config.toml", n, {"FEEDSVC_WORKERS": "1"}, work / "cli.log")
    startup = time_startup()

    m_cpu = sum(p["cpu"] for p in per_page) / n
    m_wall = sum(p["wall"] for p in per_page) / n
    m_items = sum(p["items"] for p in per_page) / n
    f_cpu, f_wall = fs.cpu / n, fs.wall / n
    f_cpu_net = (fs.cpu - startup) / n
    print(f"\n{'':28}{'CPU ms/page':>12}{'wall ms/page':>14}")
    print(f"{'morss (in-process loop)':28}{1000 * m_cpu:12.1f}{1000 * m_wall:14.1f}   "
          f"{m_items:.0f} items a page, RSS 2.0 without dates' zones, no state (whole run {morss_total_wall:.1f} s)")
    print(f"{'feedsvc refresh (CLI, cold)':28}{1000 * f_cpu:12.1f}{1000 * f_wall:14.1f}   "
          f"exit {fs.exit_code}; {feeds} Atom feeds, dedupe, SQLite state")
    print(f"{'  less interpreter start':28}{1000 * f_cpu_net:12.1f}")
    print(f"{'  FEEDSVC_WORKERS=1':28}{1000 * one.cpu / n:12.1f}{1000 * one.wall / n:14.1f}   "
          f"exit {one.exit_code}; parsing in-process, no pool to feed")
    print(f"\nmorss CPU ÷ feedsvc CPU per page: {m_cpu / f_cpu:.2f}× (feedsvc without its start: "
          f"{m_cpu / f_cpu_net:.2f}×; one worker: {m_cpu / (one.cpu / n):.2f}×); wall: {m_wall / f_wall:.2f}×  "
          "(> 1: feedsvc is faster)")
    if args.json:
        args.json.write_text(json.dumps({"sources": n, "morss": what, "morss_cpu_ms": 1000 * m_cpu,
                                         "morss_wall_ms": 1000 * m_wall, "morss_items": m_items,
                                         "feedsvc_cpu_ms": 1000 * f_cpu, "feedsvc_wall_ms": 1000 * f_wall,
                                         "feedsvc_cpu_ms_net": 1000 * f_cpu_net, "feedsvc_exit": fs.exit_code,
                                         "feedsvc_1w_cpu_ms": 1000 * one.cpu / n,
                                         "feeds": feeds}, indent=2))
    return 0 if fs.exit_code == 0 and feeds == n else 1


if __name__ == "__main__":
    sys.exit(main())
