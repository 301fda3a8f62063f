"""Issue 19.6: a state feedsvc cannot use is one line naming the file, what is wrong and what to do,
with exit code 4 (not 1, "a source failed"): a database damaged in its middle pages, a state file
read-only for the user running feedsvc, a lock file of another user.

"Another user": when the tests run as root, the CLI runs as nobody (setpriv) on files root owns;
otherwise the files are made read-only for the test's own user, which fails the same way.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import tempfile
from pathlib import Path

import pytest

from test_robust_support import ROOT, env, feedsvc_argv, run_cli, story_page, write_config

AS_ROOT = os.geteuid() == 0
SETPRIV = shutil.which("setpriv")


def refresh_once(site: Path) -> Path:
    (site / "page.html").write_text(story_page("local", range(1, 30)), encoding="utf-8")
    # (automatic extraction: no CSS selectors, which soupsieve refused when run as nobody in one sandbox)
    config = write_config(site / "config.toml", [{"id": "t", "title": "T", "sources": [{"url": "page.html"}]}])
    proc = run_cli(config, "refresh", cwd=site)
    assert proc.returncode == 0, proc.stderr
    return config


def one_line(proc: subprocess.CompletedProcess[str]) -> str:
    lines = proc.stderr.strip().splitlines()
    assert "Traceback" not in proc.stderr and len(lines) == 1, proc.stderr
    return lines[0]


def damage(path: Path) -> None:
    """Overwrite every page but the header page with garbage, as a bad disk or a stray write would."""
    db = sqlite3.connect(path)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    size = path.stat().st_size
    with path.open("r+b") as f:
        for n in range(1, size // 4096):
            f.seek(n * 4096)
            f.write(bytes((n * 37 + i) % 251 for i in range(4096)))


def test_a_damaged_state_is_one_line_with_exit_4_and_moving_it_aside_recovers(tmp_path):
    config = refresh_once(tmp_path)
    state = tmp_path / "state" / "feedsvc.sqlite"
    damage(state)
    for command in ("refresh", "status"):
        proc = run_cli(config, command, cwd=tmp_path)
        assert proc.returncode == 4, (command, proc.stderr)
        line = one_line(proc)
        assert str(state) in line and "damaged" in line and "move it aside" in line, line
    state.rename(state.with_name("feedsvc.sqlite.damaged"))  # what the message says to do
    for suffix in ("-wal", "-shm"):
        state.with_name(state.name + suffix).unlink(missing_ok=True)
    proc = run_cli(config, "refresh", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "rebuilt" in proc.stderr


@pytest.fixture
def shared_site():
    """A folder another user can reach (pytest's own tmp folder is private to its user)."""
    site = Path(tempfile.mkdtemp(prefix="feedsvc-state-", dir="/tmp"))
    site.chmod(0o755)
    yield site
    shutil.rmtree(site, ignore_errors=True)


def as_other_user(config: Path, site: Path, *args: str) -> subprocess.CompletedProcess[str]:
    prefix = [SETPRIV, "--reuid=65534", "--regid=65534", "--clear-groups"] if AS_ROOT else []
    return subprocess.run([*prefix, *feedsvc_argv(config, *args)], capture_output=True, text=True, cwd=site,
                          env={**env(), "HOME": str(site)}, timeout=60)


def open_up(site: Path) -> None:
    """The feeds and the state folder writable by anyone: only the file under test is not."""
    for folder in (site / "feeds", site / "state"):
        folder.chmod(0o777)
        for f in folder.iterdir():
            f.chmod(0o666)


needs_setpriv = pytest.mark.skipif(AS_ROOT and SETPRIV is None, reason="running as root without setpriv")


@needs_setpriv
def test_a_read_only_state_file_is_one_line_with_exit_4(shared_site):
    config = refresh_once(shared_site)
    open_up(shared_site)
    state = shared_site / "state" / "feedsvc.sqlite"
    state.chmod(0o444)
    proc = as_other_user(config, shared_site, "refresh", "--force")
    assert proc.returncode == 4, proc.stderr
    line = one_line(proc)
    assert str(state) in line and "read-only" in line and "writable" in line, line


@needs_setpriv
def test_a_lock_file_of_another_user_is_one_line_with_exit_4(shared_site):
    config = refresh_once(shared_site)
    open_up(shared_site)
    lock = shared_site / "state" / "feedsvc.sqlite.lock"
    lock.chmod(0o444 if AS_ROOT else 0o000)
    proc = as_other_user(config, shared_site, "refresh")
    assert proc.returncode == 4, proc.stderr
    line = one_line(proc)
    assert str(lock) in line and "Permission denied" in line and "owned by" in line, line


def test_the_readme_documents_exit_code_4():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    line = next(x for x in readme.splitlines() if x.startswith("Exit codes:"))
    assert "`4`" in line and "state" in line


def test_status_reads_every_page_so_damage_anywhere_is_reported(tmp_path):
    """Damage only to stories' pages (the source table, which status shows, still reads fine)."""
    config = refresh_once(tmp_path)
    state = tmp_path / "state" / "feedsvc.sqlite"
    db = sqlite3.connect(state)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    size = state.stat().st_size
    with state.open("r+b") as f:  # the last page: written last, by the stories and their index
        f.seek(size - 4096)
        f.write(bytes((i * 37) % 251 for i in range(4096)))
    status = run_cli(config, "status", cwd=tmp_path)
    assert status.returncode == 4, status.stdout + status.stderr
    assert "is damaged" in status.stderr and "Traceback" not in status.stderr
