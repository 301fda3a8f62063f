"""`feedsvc` with a thread that writes where the process's memory is, every --every seconds.

    python bench/memprobe.py OUT.tsv [feedsvc arguments ...]     # e.g. --config config.toml run
    python bench/soak.py --probe OUT.tsv                          # the soak's daemon, probed

A column per figure: time (s), VmRSS and RssAnon (KiB); glibc's mallinfo2 — arena (heap obtained
from the system), in use, free (kept by malloc, not returned), mmapped; SQLite's
sqlite3_memory_used; Python's allocated blocks, gc-tracked objects and threads; and the number of
memory mappings. Live memory flat while "free" grows is the allocator keeping memory, not a leak.
Linux with glibc only (the figures come from /proc and libc).
"""

from __future__ import annotations

import ctypes
import gc
import os
import re
import sys
import threading
import time
from pathlib import Path

COLUMNS = ("t_s", "rss_kib", "anon_kib", "malloc_arena_kib", "malloc_used_kib", "malloc_free_kib",
           "malloc_mmap_kib", "sqlite_kib", "py_blocks", "gc_objects", "threads", "maps")


class _Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]


def sampler(out: Path, every: float) -> None:
    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = _Mallinfo2
    try:
        sqlite = ctypes.CDLL("libsqlite3.so.0")  # the library Python's sqlite3 module is linked to
        sqlite.sqlite3_memory_used.restype = ctypes.c_int64
    except OSError:
        sqlite = None
    started = time.monotonic()
    with out.open("w") as f:
        f.write("\t".join(COLUMNS) + "\n")
        while True:
            time.sleep(every)
            status = Path("/proc/self/status").read_text()
            mi = libc.mallinfo2()
            row = (round(time.monotonic() - started),
                   int(re.search(r"VmRSS:\s+(\d+)", status).group(1)),  # type: ignore[union-attr]
                   int(re.search(r"RssAnon:\s+(\d+)", status).group(1)),  # type: ignore[union-attr]
                   mi.arena // 1024, mi.uordblks // 1024, mi.fordblks // 1024, mi.hblkhd // 1024,
                   sqlite.sqlite3_memory_used() // 1024 if sqlite else -1,
                   sys.getallocatedblocks(), len(gc.get_objects()), threading.active_count(),
                   len(Path("/proc/self/maps").read_text().splitlines()))
            f.write("\t".join(map(str, row)) + "\n")
            f.flush()


if __name__ == "__main__":  # (the parse workers' forkserver imports this module: start nothing there)
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    out = Path(sys.argv.pop(1))
    threading.Thread(target=sampler, args=(out, float(os.environ.get("MEMPROBE_EVERY", "10"))),
                     name="memprobe", daemon=True).start()
    from feedsvc.cli import main

    sys.argv[0] = "feedsvc"
    sys.exit(main())
