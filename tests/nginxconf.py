"""A throw-away nginx configuration around deploy/nginx.conf, for the tests that run nginx on it."""

from __future__ import annotations

import shutil
from pathlib import Path


def nginx_argv(folder: Path, include: Path, port: int, *, foreground: bool = False) -> list[str]:
    """Write folder/nginx.conf with one server on 127.0.0.1:`port` that includes `include`; the
    command line that runs nginx on it (add "-t" to only check it)."""
    run = "daemon off;\nmaster_process off;\n" if foreground else ""
    (folder / "nginx.conf").write_text(f"""{run}pid {folder}/nginx.pid;
error_log stderr;
events {{}}
http {{
    access_log off;
    server {{
        listen 127.0.0.1:{port};
        include {include};
    }}
}}
""", encoding="utf-8")
    return [shutil.which("nginx") or "nginx", "-p", str(folder), "-c", str(folder / "nginx.conf"), "-e", "stderr"]
