"""One writer at a time: an advisory lock on a file next to the state database.

`feedsvc refresh` and every job of `feedsvc run` take it around a refresh, so a cron
refresh that lands while the daemon is busy waits a bounded time, then gives up with
LockedError (exit code 3) naming who holds the lock instead of writing beside it.

fcntl.flock, not a pid file: the kernel drops the lock when its holder exits or dies,
however it dies, so there is never a stale lock to clean up by hand. Locks taken through
separate open() calls conflict even inside one process, so two daemon threads exclude
each other just as two processes do. The file is never deleted (deleting a flock'ed
file lets a third process lock a new inode while the second still waits on the old one).
The holder writes its pid and command into the file, only so that a waiter can say who
is in the way. POSIX only, as the deployment (cron, systemd) is.
"""

from __future__ import annotations

import fcntl
import os
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Self

from feedsvc.errors import LockedError, StoreError

POLL_SECONDS = 0.05  # how often a waiter retries; a refresh takes seconds, so this costs nothing


def default_who() -> str:
    """The command line of this process, shortened: what a waiter will be told holds the lock."""
    argv = [Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "python", *sys.argv[1:]]
    if argv[0] in ("__main__.py", "-m", "-c"):
        argv[0] = "feedsvc"
    return " ".join(argv)[:200]


class StateLock:
    """`with StateLock(config.lock_path, timeout=60, who="feedsvc refresh"):` ... one writer inside.

    Waits up to `timeout` seconds (0: try once; None: forever), then raises LockedError.
    `cancel`, if given and set while waiting, ends the wait early with LockedError too
    (the daemon sets it when it is asked to stop). Not re-entrant: one instance, one hold.
    """

    def __init__(self, path: Path, timeout: float | None = 60.0, *, who: str = "",
                 cancel: threading.Event | None = None) -> None:
        self.path = Path(path)
        self.timeout = timeout
        self.who = who or default_who()
        self.cancel = cancel
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        if self._fd is not None:
            raise RuntimeError(f"{self.path} is already held by this StateLock")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise self._open_error(exc) from exc
        deadline = None if self.timeout is None else time.monotonic() + max(self.timeout, 0.0)
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    pass
                left = None if deadline is None else deadline - time.monotonic()
                cancelled = self.cancel is not None and self.cancel.is_set()
                if cancelled or (left is not None and left <= 0):
                    raise self._locked_error(cancelled)
                pause = POLL_SECONDS if left is None else min(POLL_SECONDS, left)
                if self.cancel is not None:
                    self.cancel.wait(pause)
                else:
                    time.sleep(pause)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        since = datetime.fromtimestamp(time.time(), UTC).isoformat(timespec="seconds")
        note = f"pid={os.getpid()}\nsince={since}\nwho={self.who}\n".encode("utf-8", "replace")
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, note, 0)
        except OSError:
            pass  # the note only improves a waiter's message; the lock itself is held

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            os.ftruncate(fd, 0)  # nobody holds it now: leave no stale name behind
        except OSError:
            pass
        finally:
            os.close(fd)  # closing the descriptor drops the flock

    def __enter__(self) -> Self:
        self.acquire()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()

    def _open_error(self, exc: OSError) -> StoreError:
        """One line for a lock file feedsvc cannot open: most often one left by another user (a run
        by hand as root beside a service user's cron)."""
        owner = ""
        try:
            st = self.path.stat()
            owner = f", owned by {_user(st.st_uid)}"
        except OSError:
            pass
        running = _user(os.geteuid())
        return StoreError(f"cannot open the state lock file {self.path}: {exc.strerror or exc}{owner} (feedsvc runs "
                          f"as {running}); run feedsvc as the user that owns the state, or give the state "
                          "folder and its files to this user")

    def _locked_error(self, cancelled: bool) -> LockedError:
        holder = read_holder(self.path)
        if holder.get("pid"):
            by = f"pid {holder['pid']}"
            if holder.get("who"):
                by += f" ({holder['who']})"
            if holder.get("since"):
                by += f", holding it since {holder['since']}"
        else:
            by = "another process"
        if cancelled:
            what = "gave up waiting (stopping)"
        else:
            what = f"waited {self.timeout:g}s"
        err = LockedError(
            f"{self.path} is locked by {by}; {what}. Another feedsvc is writing the same state; "
            "try again when it has finished", path=self.path, holder=holder)
        return err


def _user(uid: int) -> str:
    try:
        import pwd

        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except (ImportError, KeyError):
        return f"uid {uid}"


def read_holder(path: Path) -> dict[str, str]:
    """The pid / since / who the current holder wrote into the lock file ({} when unknown)."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return {}
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key in ("pid", "since", "who"):
            out[key] = value.strip()
    return out
