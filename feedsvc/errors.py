"""The exceptions feedsvc raises on purpose. Stdlib only: every module may import this.

The CLI turns a FeedsvcError into one line on stderr and an exit code; anything else
that escapes is a bug and keeps its traceback.
"""

from __future__ import annotations


class FeedsvcError(Exception):
    """Base of every error feedsvc reports to the user as one clean line."""

    exit_code = 1


class ConfigError(FeedsvcError):
    """The config file is wrong. The message names the file, the key and the fix."""

    exit_code = 2

    def __init__(self, path: str, key: str, problem: str) -> None:
        self.path, self.key, self.problem = path, key, problem
        where = f"{path}: {key}" if key else path
        super().__init__(f"{where}: {problem}")


class UsageError(FeedsvcError):
    """The command line asks for something that does not exist (an unknown topic, say)."""

    exit_code = 2


class LockedError(FeedsvcError):
    """Another feedsvc process holds the state lock and did not let go in time."""

    exit_code = 3

    def __init__(self, message: str, *, path: object = None, holder: dict[str, str] | None = None) -> None:
        self.path, self.holder = path, holder or {}
        super().__init__(message)


class SourceError(FeedsvcError):
    """One source could not be read: recorded as data, the topic goes on.

    `kind` is a short machine-readable word: network, timeout, http, too-large,
    decode, robots, empty, drift, parse, private-address, file (a local source that cannot be read).
    """

    def __init__(self, kind: str, message: str, *, retry_after: float | None = None) -> None:
        self.kind, self.message, self.retry_after = kind, message, retry_after
        super().__init__(f"{kind}: {message}")


class FetchError(SourceError):
    """The page could not be fetched (network, HTTP status, timeout, size, robots.txt)."""


class PrivateAddressError(FetchError):
    """A request (a redirect, mostly) would reach a loopback, private, link-local or other non-public
    address of a host that is not a configured source: refused, so that a page cannot make feedsvc
    read (or probe) services inside the network. `allow_private = true` lifts it."""

    def __init__(self, message: str) -> None:
        super().__init__("private-address", message)


class StoreError(FeedsvcError):
    """The state (the SQLite file, its lock) could not be read or written. Stops the run.

    Its own exit code: not 1 (a source failed, which cron may shrug off), because nothing is
    refreshed until the user acts (the message says how)."""

    exit_code = 4


class PublishError(FeedsvcError):
    """A feed could not be built or written. Stops the run."""
