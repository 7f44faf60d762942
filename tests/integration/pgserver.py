"""A real PostgreSQL server on loopback, started from the installed binaries for the test session.

The cluster lives in a temporary folder, listens on 127.0.0.1 only, and
requires a password (SCRAM-SHA-256). PostgreSQL refuses to run as root, so
when the tests run as root the server runs as the ``postgres`` system user
that Debian's package creates. Each test gets a database of its own.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["find_bindir", "postgres_server"]

PASSWORD = "pipewarden-test-password"  # noqa: S105  # a throwaway server on loopback


def find_bindir() -> Path | None:
    """The folder holding initdb and pg_ctl: $PATH, then Debian's /usr/lib/postgresql/<v>/bin."""
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return Path(candidates[-1]).parent if candidates else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def postgres_server(bindir: Path) -> Iterator[str]:
    """Start a fresh cluster and yield an admin URL (``postgresql://pipewarden:...@127.0.0.1:port/postgres``)."""
    run_as: dict[str, int] = {}
    if os.geteuid() == 0:
        entry = pwd.getpwnam("postgres")
        run_as = {"user": entry.pw_uid, "group": entry.pw_gid}
    base = Path(tempfile.mkdtemp(prefix="pipewarden-pg-"))
    data, pwfile = base / "data", base / "pwfile"
    pwfile.write_text(PASSWORD)
    if run_as:
        for path in (base, pwfile):
            os.chown(path, run_as["user"], run_as["group"])
    port = _free_port()
    env = {**os.environ, "LC_ALL": "C", "TZ": "UTC"}
    subprocess.run(
        [
            str(bindir / "initdb"),
            "-D",
            str(data),
            "-U",
            "pipewarden",
            "--pwfile",
            str(pwfile),
            "--auth",
            "scram-sha-256",
            "--encoding",
            "UTF8",
            "--no-sync",
        ],
        check=True,
        capture_output=True,
        env=env,
        **run_as,  # type: ignore[arg-type]
    )
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {base} -c fsync=on -c max_connections=60"
    subprocess.run(
        [
            str(bindir / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(base / "log"),
            "-o",
            options,
            "-w",
            "-t",
            "60",
            "start",
        ],
        check=True,
        capture_output=True,
        env=env,
        **run_as,  # type: ignore[arg-type]
    )
    try:
        yield f"postgresql://pipewarden:{PASSWORD}@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
            capture_output=True,
            env=env,
            check=False,
            **run_as,  # type: ignore[arg-type]
        )
        time.sleep(0.1)
        shutil.rmtree(base, ignore_errors=True)
