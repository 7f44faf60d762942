"""Run one measured command in a fresh process and print what it cost as JSON.

The harness starts this script once per timed run, as benchmarks/scan/_measure.py is
started: a separate, small process (standard library only, run with -I), so the peak
RSS it reports is the command's, and nothing of the harness's memory (Linux keeps the
pre-exec peak of a forked process in its maxrss).

One difference from the scan benchmark's wrapper: the command is waited for with a
blocking os.wait4(), which returns the moment it exits, with that process's own
resource usage. Popen.wait(timeout=...) polls with sleeps of up to 50 ms, which is
coarse for runs of half a second. The time limit is a timer thread that kills the
command's session.

Input (one JSON object on stdin):
  argv        the command
  cwd         its working directory
  timeout     seconds; past it the command's session is killed (timed_out: true)
  mem_limit   address-space limit in bytes (0: none), so a runaway command fails
              instead of taking the machine down

Output (stdout, JSON): wall_seconds, max_rss_kib, user_seconds, system_seconds,
timed_out, exit_code (negative: killed by that signal), and the last 64 KiB of the
command's stdout and stderr.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import threading
import time
from typing import IO

TAIL = 64 * 1024


def _tail(f: IO[bytes]) -> str:
    f.seek(max(0, f.seek(0, os.SEEK_END) - TAIL))
    return f.read().decode("utf-8", errors="replace")


def main() -> int:
    spec = json.load(sys.stdin)
    mem_limit = int(spec.get("mem_limit", 0))
    if mem_limit > 0:
        # Inherited by the command; this wrapper stays tiny.
        resource.setrlimit(resource.RLIMIT_AS, (mem_limit, mem_limit))
    timed_out = threading.Event()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(
            spec["argv"],
            cwd=spec["cwd"],
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )

        def kill() -> None:
            timed_out.set()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)

        timer = threading.Timer(float(spec["timeout"]), kill)
        timer.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        timer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        result = {
            "wall_seconds": wall,
            "max_rss_kib": usage.ru_maxrss,  # kibibytes on Linux
            "user_seconds": usage.ru_utime,
            "system_seconds": usage.ru_stime,
            "timed_out": timed_out.is_set(),
            "exit_code": proc.returncode,
            "stdout": _tail(out),
            "stderr": _tail(err),
        }
    json.dump(result, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
