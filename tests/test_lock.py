"""The state lock, contended by real processes (and threads), as cron and the daemon contend for it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from feedsvc.errors import LockedError
from feedsvc.lock import StateLock, read_holder

HOLDER = """
import sys
from pathlib import Path
from feedsvc.lock import StateLock
with StateLock(Path(sys.argv[1]), timeout=10, who="test-holder --topic x"):
    print("locked", flush=True)
    sys.stdin.readline()   # hold until the test says so (or kills us)
print("released", flush=True)
"""


class Holder:
    """Another process that takes the lock and keeps it until release() or kill()."""

    def __init__(self, path: Path) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(path)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()  # type: ignore[union-attr]
        assert line.strip() == "locked", f"holder did not take the lock: {line!r}"

    def release(self) -> None:
        self.proc.stdin.write("\n")  # type: ignore[union-attr]
        self.proc.stdin.flush()  # type: ignore[union-attr]
        assert self.proc.stdout.readline().strip() == "released"  # type: ignore[union-attr]

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        for f in (self.proc.stdin, self.proc.stdout):
            if f:
                f.close()


@pytest.fixture
def lock_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "feedsvc.sqlite.lock"


@pytest.fixture
def holder_factory():
    made: list[Holder] = []

    def make(path: Path) -> Holder:
        made.append(Holder(path))
        return made[-1]

    yield make
    for h in made:
        h.close()


@pytest.fixture
def holder(lock_path: Path, holder_factory) -> Holder:
    return holder_factory(lock_path)


def test_second_process_waits_bounded_then_fails_naming_the_holder(lock_path: Path, holder: Holder) -> None:
    with pytest.raises(LockedError) as info, StateLock(lock_path, timeout=0.3, who="me"):
        pytest.fail("took a lock another process holds")
    message = str(info.value)
    assert str(lock_path) in message
    assert f"pid {holder.proc.pid}" in message
    assert "test-holder --topic x" in message
    assert "waited 0.3s" in message
    assert info.value.exit_code == 3
    assert info.value.holder["pid"] == str(holder.proc.pid)  # type: ignore[attr-defined]


def test_waiter_gets_the_lock_when_the_holder_finishes_in_time(lock_path: Path, holder: Holder) -> None:
    got = threading.Event()
    errors: list[BaseException] = []

    def wait_for_it() -> None:
        try:
            with StateLock(lock_path, timeout=20, who="waiter"):
                got.set()
        except BaseException as exc:  # noqa: BLE001 - reported below, not swallowed
            errors.append(exc)

    t = threading.Thread(target=wait_for_it)
    t.start()
    assert not got.wait(0.3), "took the lock while the other process still held it"
    holder.release()
    t.join(timeout=20)
    assert not errors and got.is_set()


@pytest.mark.parametrize("sig", [pytest.param(signal.SIGKILL, id="killed"),
                                 pytest.param(signal.SIGTERM, id="terminated")])
def test_a_lock_held_by_a_dead_process_is_free(lock_path: Path, holder: Holder, sig: int) -> None:
    os.kill(holder.proc.pid, sig)
    holder.proc.wait(timeout=10)
    with StateLock(lock_path, timeout=0, who="after") as lock:
        assert lock.held
        assert read_holder(lock_path)["who"] == "after"


def test_two_threads_of_one_process_exclude_each_other(lock_path: Path) -> None:
    inside = 0
    most = 0
    guard = threading.Lock()

    def work() -> None:
        nonlocal inside, most
        for _ in range(5):
            with StateLock(lock_path, timeout=30):
                with guard:
                    inside += 1
                    most = max(most, inside)
                time.sleep(0.005)
                with guard:
                    inside -= 1

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert most == 1


def test_holder_note_is_written_while_held_and_cleared_after(lock_path: Path) -> None:
    assert not lock_path.parent.exists()  # the state folder does not exist before the first run
    with StateLock(lock_path, timeout=0, who="feedsvc run"):
        note = read_holder(lock_path)
        assert note["pid"] == str(os.getpid())
        assert note["who"] == "feedsvc run"
        assert note["since"].endswith("+00:00")
    assert read_holder(lock_path) == {}
    assert lock_path.exists()  # never deleted: see the module docstring


def test_cancel_ends_the_wait_early(lock_path: Path, holder: Holder) -> None:
    cancel = threading.Event()
    threading.Timer(0.2, cancel.set).start()
    with pytest.raises(LockedError, match="gave up waiting"), StateLock(lock_path, timeout=60, cancel=cancel):
        pass


def test_one_instance_is_not_reentrant(lock_path: Path) -> None:
    lock = StateLock(lock_path, timeout=0)
    with lock, pytest.raises(RuntimeError):
        lock.acquire()
    assert not lock.held
    with StateLock(lock_path, timeout=0):  # and it really was released
        pass


def test_cli_refresh_exits_3_naming_the_holder_when_locked(tmp_path: Path, holder_factory) -> None:
    """`feedsvc refresh` from cron while another feedsvc writes: a clear line and exit code 3."""
    config = tmp_path / "config.toml"
    config.write_text('[feedsvc]\nstate = "state/feedsvc.sqlite"\n\n[[topics]]\nid = "t"\ntitle = "T"\n'
                      'sources = [{url = "http://127.0.0.1:9/never-fetched"}]\n', encoding="utf-8")
    h = holder_factory(tmp_path / "state" / "feedsvc.sqlite.lock")
    result = subprocess.run([sys.executable, "-m", "feedsvc", "--config", str(config), "--quiet", "refresh",
                             "--lock-timeout", "0.3"], check=False, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 3, result.stderr
    assert f"pid {h.proc.pid} (test-holder --topic x)" in result.stderr
    assert str(tmp_path / "state" / "feedsvc.sqlite.lock") in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "feeds").exists() or not any((tmp_path / "feeds").iterdir())  # wrote nothing
