"""The README's deployment path, walked for real: deploy/install.sh as root in a temporary /srv,
a real system user (removed afterwards), ownership, the mistake of a refresh as root and its
repair, the systemd unit's ExecStart as that user, and nginx's own check of deploy/nginx.conf.
The README shows every file of deploy/ verbatim; the first tests keep it so.
"""

from __future__ import annotations

import configparser
import os
import pwd
import re
import shlex
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import feedparser
import pytest

from nginxconf import nginx_argv

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
README = (ROOT / "README.md").read_text(encoding="utf-8")
SRV = "/srv/feedsvc"  # where the deploy files put feedsvc; the walk puts it in a temporary folder
# A file of deploy/ shown in the README: a marker comment naming it, then a fenced block.
SHOWN = re.compile(r"^<!-- (deploy/\S+) -->\n```[\w-]*\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def shown_files() -> list[tuple[str, str]]:
    return SHOWN.findall(README)


@pytest.mark.parametrize("name", sorted(p.name for p in DEPLOY.iterdir()))
def test_the_readme_shows_each_deploy_file_verbatim(name: str) -> None:
    shown = dict(shown_files())
    assert f"deploy/{name}" in shown, f"README.md does not show deploy/{name} (<!-- deploy/{name} --> then ```)"
    assert shown[f"deploy/{name}"] == (DEPLOY / name).read_text(encoding="utf-8"), \
        f"README.md's copy of deploy/{name} differs from the file: paste the file again"


def test_the_readme_shows_only_files_that_exist_once_each() -> None:
    names = [name for name, _ in shown_files()]
    assert len(names) == len(set(names))
    assert all((ROOT / name).is_file() for name in names), names


def unit() -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # systemd keys are case-sensitive
    parser.read(DEPLOY / "feedsvc.service", encoding="utf-8")
    return parser["Service"]


def test_the_readme_commands_use_the_units_paths_and_user() -> None:
    service = unit()
    command = shlex.split(service["ExecStart"])[:-1]  # the program and its --config, without `run`
    by_hand = f"sudo -u {service['User']} {shlex.join(command)} refresh -v"
    assert by_hand in README
    assert f"sudo chown -R {service['User']}:{service['Group']} {service['ReadWritePaths']}" in README
    assert service["WorkingDirectory"] == SRV and f'SRV=${{SRV:-{SRV}}}' in (DEPLOY / "install.sh").read_text()


# --------------------------------------------------------------------------- the walk, as root


def venv_python_for_others() -> str | None:
    """A system python3 of this Python's version: the service user cannot run the tests' own
    interpreter when it lives under /root (mode 0700)."""
    python = shutil.which("python3", path="/usr/bin:/bin")
    if not python:
        return None
    version = subprocess.run([python, "-c", "import sys; print(sys.version_info[:2])"], capture_output=True,
                             text=True, check=False).stdout.strip()
    return python if version == str(tuple(sys.version_info[:2])) else None


def make_venv(venv: Path, python: str) -> None:
    """What step 4 makes (a venv whose bin/feedsvc runs feedsvc), without the network: a venv of
    the system python that sees the packages this test run uses, this checkout's feedsvc included."""
    subprocess.run([python, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    purelib = sysconfig.get_paths()["purelib"]
    site = next((venv / "lib").glob("python3*/site-packages"))
    # an `import` line of a .pth file runs: addsitedir also reads the editable install's .pth
    (site / "tests-packages.pth").write_text(f"import site; site.addsitedir({purelib!r})\n", encoding="utf-8")
    script = venv / "bin" / "feedsvc"
    script.write_text(f"#!{venv}/bin/python\nimport sys\nfrom feedsvc.cli import main\nsys.exit(main())\n",
                      encoding="utf-8")
    script.chmod(0o755)


@pytest.fixture
def service_user() -> Iterator[str]:
    """A name for the service user, which install.sh creates; deleted (with its group) afterwards."""
    name = f"fsvc-{uuid.uuid4().hex[:10]}"
    yield name
    subprocess.run(["userdel", name], capture_output=True, check=False, timeout=60)
    subprocess.run(["groupdel", name], capture_output=True, check=False, timeout=60)  # if userdel left it


@pytest.fixture
def srv() -> Iterator[Path]:
    """/srv/feedsvc, in a folder the service user can reach (pytest's tmp_path is root's only)."""
    base = Path(tempfile.mkdtemp(prefix="feedsvc-deploy-"))
    base.chmod(0o755)
    (base / "srv").mkdir(mode=0o755)
    try:
        yield base / "srv" / "feedsvc"
    finally:
        shutil.rmtree(base, ignore_errors=True)


def install(srv: Path, user: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "SRV": str(srv), "FEEDSVC_USER": user}
    return subprocess.run(["sh", str(DEPLOY / "install.sh")], env=env, cwd="/", capture_output=True, text=True,
                          timeout=300, check=False)


def entries(feed: Path) -> int:
    parsed = feedparser.parse(feed.read_bytes())
    assert not parsed.bozo, parsed.bozo_exception
    return len(parsed.entries)


def owners(folder: Path) -> dict[Path, int]:
    return {p: p.lstat().st_uid for p in [folder, *folder.rglob("*")]}


def within(path: Path, folders: list[Path]) -> bool:
    return any(path.is_relative_to(f) for f in folders)


def empty(folder: Path) -> None:
    for p in folder.iterdir():
        p.unlink()


@pytest.mark.skipif(os.geteuid() != 0 or not (shutil.which("useradd") and shutil.which("runuser")),
                    reason="the walk creates a system user and chowns: root with useradd and runuser")
def test_the_readme_deployment_path_from_a_fresh_machine(srv: Path, service_user: str) -> None:
    python = venv_python_for_others()
    if python is None:
        pytest.skip(f"needs /usr/bin/python3 {sys.version_info[0]}.{sys.version_info[1]} for the service user's venv")
    srv.mkdir(mode=0o755)
    make_venv(srv / ".venv", python)

    # 1. deploy/install.sh: user, folders, ownership, the shipped config, a first refresh as the user
    done = install(srv, service_user)
    assert done.returncode == 0, done.stdout + done.stderr
    user = pwd.getpwnam(service_user)
    assert user.pw_shell == "/usr/sbin/nologin" and user.pw_dir == str(srv)
    assert user.pw_uid < 1000  # a system user (Debian's SYS_UID_MAX is 999)
    feeds, state = srv / "feeds", srv / "state"
    assert entries(feeds / "peace-talks.atom") > 0 and entries(feeds / "space.atom") > 0
    assert (state / "feedsvc.sqlite").is_file()
    theirs = {p for p, uid in {**owners(feeds), **owners(state)}.items() if uid == user.pw_uid}
    assert theirs == {*feeds.rglob("*"), *state.rglob("*"), feeds, state}  # all they wrote, and only there
    for mine in (srv, srv / "config.toml", srv / "examples", srv / ".venv"):
        assert mine.stat().st_uid == 0 and not mine.stat().st_mode & 0o022, mine  # root's, not writable by others
    assert state.stat().st_mode & 0o777 == 0o750 and feeds.stat().st_mode & 0o777 == 0o755

    # The mistake the README warns of: a first refresh as root leaves root's files in state/ ...
    empty(state)
    empty(feeds)
    as_root = [str(srv / ".venv" / "bin" / "feedsvc"), "--config", str(srv / "config.toml"), "refresh"]
    assert subprocess.run(as_root, capture_output=True, check=False, timeout=120, cwd=srv).returncode == 0
    assert {p.stat().st_uid for p in state.iterdir()} == {0}
    as_user = ["runuser", "-u", service_user, "--", *as_root]
    refused = subprocess.run(as_user, capture_output=True, text=True, check=False, timeout=120, cwd=srv)
    assert refused.returncode != 0 and "root" in refused.stderr, refused.stderr  # what the service would meet
    # ... and the README's repair gives the folders back (as running install.sh again does).
    repair = re.search(r"`(sudo chown -R feedsvc:feedsvc [^`]+)`", README)
    assert repair, "README.md shows no chown repair"
    command = shlex.split(repair.group(1).replace(SRV, str(srv)).replace("feedsvc:feedsvc",
                                                                         f"{service_user}:{service_user}"))
    assert subprocess.run(command[1:], capture_output=True, check=False, timeout=60).returncode == 0  # (no sudo)
    assert {p.stat().st_uid for p in [*state.iterdir(), *feeds.iterdir()]} == {user.pw_uid}
    assert subprocess.run(as_user, capture_output=True, check=False, timeout=120, cwd=srv).returncode == 0
    done = install(srv, service_user)
    assert done.returncode == 0, done.stdout + done.stderr

    # 2a. The systemd unit's ExecStart, as its User with its UMask, from a first run: the feeds appear,
    # and everything it wrote lies in ReadWritePaths (the rest is read-only under ProtectSystem=strict).
    empty(state)
    empty(feeds)
    service = unit()
    argv = shlex.split(service["ExecStart"].replace(SRV, str(srv)))
    writable = [Path(p.replace(SRV, str(srv))) for p in service["ReadWritePaths"].split()]
    started = time.time()
    proc = subprocess.Popen(argv, cwd=service["WorkingDirectory"].replace(SRV, str(srv)), user=user.pw_uid,
                            group=user.pw_gid, extra_groups=[], umask=int(service["UMask"], 8),
                            env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not ((feeds / "peace-talks.atom").exists() and (feeds / "index.html").exists()):
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            assert time.monotonic() < deadline, "the service wrote no feed within 60 s"
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)  # `systemctl stop feedsvc`
        assert proc.wait(timeout=float(service["TimeoutStopSec"])) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
        if proc.stderr:
            proc.stderr.close()
    assert entries(feeds / "peace-talks.atom") > 0
    written = [p for p in srv.rglob("*") if p.lstat().st_mtime >= started - 1 and "__pycache__" not in p.parts]
    assert written and all(within(p, writable) for p in written), written
    assert all(within(p, writable) for p, uid in owners(srv).items() if uid == user.pw_uid)
    assert (feeds / "index.html").stat().st_mode & 0o004  # nginx (www-data) can read what it publishes


# --------------------------------------------------------------------------- nginx


@pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed (apt-get install -y nginx)")
def test_nginx_accepts_the_snippet_without_a_warning(tmp_path: Path) -> None:
    check = subprocess.run([*nginx_argv(tmp_path, DEPLOY / "nginx.conf", 8080), "-t"], capture_output=True, text=True,
                           timeout=30, check=False)
    assert check.returncode == 0, check.stderr
    assert "[warn]" not in check.stderr and "[emerg]" not in check.stderr, check.stderr
