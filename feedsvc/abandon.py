"""What a `feedsvc run` job opened, so that the daemon can let go of it when the job is stuck.

A job stuck past its deadline (daemon.py) cannot be killed: Python cannot stop a thread. What it
holds can be let go of instead. The store and the fetchers a refresh opens register here, from the
job's own thread, as they are opened; the daemon's watchdog then calls what they registered, from
its thread: the store's statement is interrupted (its transaction rolls back), the fetcher's
requests are cut off. Outside a daemon job (`feedsvc refresh`) there is no scope: registering does
nothing.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)


class Abandoned(BaseException):  # noqa: N818 - what happened to the refresh, as the log says it
    """Raised in a stuck job's thread when it next runs Python code (daemon.py sends it).

    A BaseException, so that the pipeline's `except Exception` (one page, one source, one article)
    cannot catch it and carry on: it unwinds the refresh, whose `with` blocks roll back and close."""


class Scope:
    """The things one job opened that can be let go of from another thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._actions: list[Callable[[], None]] = []
        self.abandoned = False

    def register(self, action: Callable[[], None]) -> None:
        """Call `action` if the job is abandoned (at once if it already is)."""
        with self._lock:
            if not self.abandoned:
                self._actions.append(action)
                return
        _call(action)

    def abandon(self) -> None:
        with self._lock:
            self.abandoned = True
            actions, self._actions = self._actions, []
        for action in actions:
            _call(action)


def _call(action: Callable[[], None]) -> None:
    try:
        action()
    except Exception:  # already closed, say: letting go of one thing must not keep the others held
        log.debug("abandon: %r failed", action, exc_info=True)


_tls = threading.local()


@contextmanager
def scope(job: Scope) -> Iterator[Scope]:
    """What the current thread opens inside registers with `job`."""
    previous = getattr(_tls, "scope", None)
    _tls.scope = job
    try:
        yield job
    finally:
        _tls.scope = previous


def on_abandon(action: Callable[[], None]) -> None:
    """Call `action` (from another thread) if the daemon job this thread runs is abandoned."""
    job: Scope | None = getattr(_tls, "scope", None)
    if job is not None:
        job.register(action)
