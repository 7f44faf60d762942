"""`pipewarden deps` beside pip-audit on the same 200 pinned requirements and the same OSV server.

A loopback server speaks the OSV API from a synthetic database (records PWBENCH-..., written here): the
per-package query pip-audit uses (``POST /v1/query``, answering with the affecting records in full) and
the batch query pipewarden uses (``POST /v1/querybatch``, then ``GET /v1/vulns/ID``). Each request waits
`LATENCY` seconds before answering, standing in for the round trip to a real service; the same for both
tools. 200 requirements, pinned with hashes; 30 of them affected by one or two advisories.

Measured: wall time of each command (a fresh process, best of `--repeat`), the advisories each reports,
and what each does when the server is down.

    python benchmarks/supply/deps_vs_pip_audit.py --repeat 3
"""

from __future__ import annotations

import argparse
import http.server
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, ClassVar

from pipewarden.supply import Record, normalize, public_version

PACKAGES = 200
AFFECTED = 30
LATENCY = 0.025  # seconds per request
HASH = "sha256:" + "ab" * 32


def records() -> list[dict[str, Any]]:
    out = []
    for i in range(AFFECTED):
        name = f"benchpkg{i * 6}"
        out.append(
            {
                "id": f"PWBENCH-{i:04d}",
                "modified": "2026-11-01T00:00:00Z",
                "summary": f"synthetic advisory {i}",
                "aliases": [f"CVE-0000-{10000 + i}"],
                "affected": [
                    {
                        "package": {"ecosystem": "PyPI", "name": name},
                        "ranges": [
                            {"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2.0.0"}]}
                        ],
                    }
                ],
            }
        )
        if i % 3 == 0:
            second = json.loads(json.dumps(out[-1]))
            second["id"] = f"PWBENCH-{i:04d}-B"
            second["aliases"] = []
            second["affected"][0]["ranges"][0]["events"] = [{"introduced": "1.0.0"}, {"fixed": "1.5.0"}]
            out.append(second)
    return out


class Osv(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    docs: ClassVar[dict[str, dict[str, Any]]] = {}
    parsed: ClassVar[dict[str, Record]] = {}
    requests = 0

    def _send(self, doc: object, status: int = 200) -> None:
        time.sleep(LATENCY)
        body = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        type(self).requests += 1
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.path == "/v1/query":
            name = normalize(body["package"]["name"])
            version = public_version(body["version"])
            hits = [self.docs[i] for i, r in self.parsed.items() if r.affects(name, version)]
            self._send({"vulns": hits} if hits else {})
        elif self.path == "/v1/querybatch":
            results = []
            for query in body["queries"]:
                name = normalize(query["package"]["name"])
                ids = [i for i, r in self.parsed.items() if name in r.names()]
                results.append({"vulns": [{"id": i} for i in ids]} if ids else {})
            self._send({"results": results})
        else:
            self._send({"message": "not found"}, 404)

    def do_GET(self) -> None:
        type(self).requests += 1
        wanted = self.path.rsplit("/", 1)[-1]
        self._send(
            self.docs[wanted] if wanted in self.docs else {"message": "not found"},
            200 if wanted in self.docs else 404,
        )

    def log_message(self, format: str, *args: Any) -> None:
        return


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run(command: list[str], cwd: Path) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.perf_counter()
    proc = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=900, check=False)
    return time.perf_counter() - started, proc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    pip_audit = shutil.which("pip-audit") or str(Path(sys.executable).parent / "pip-audit")
    docs = records()
    Osv.docs = {d["id"]: d for d in docs}
    Osv.parsed = {d["id"]: Record.from_json(d, source=d["id"]) for d in docs}
    work = Path(tempfile.mkdtemp(prefix="pw-deps-bench-"))
    versions = {f"benchpkg{i}": ("1.2.0" if i % 6 == 0 else "2.1.0") for i in range(PACKAGES)}
    (work / "requirements.txt").write_text("".join(f"{n}=={v} --hash={HASH}\n" for n, v in versions.items()))
    port = free_port()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Osv)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{port}"
    ours = [
        sys.executable,
        "-m",
        "pipewarden.cli",
        "deps",
        "requirements.txt",
        "--osv-url",
        base,
        "--format",
        "json",
    ]
    theirs = [
        pip_audit,
        "-r",
        "requirements.txt",
        "--disable-pip",
        "--no-deps",
        "-s",
        "osv",
        "--osv-url",
        f"{base}/v1/query",
        "--format",
        "json",
        "--progress-spinner",
        "off",
        "--cache-dir",
        str(work / "cache"),
    ]
    timings: dict[str, list[float]] = {"pipewarden": [], "pip-audit": []}
    found: dict[str, set[str]] = {}
    requests: dict[str, int] = {}
    try:
        for _ in range(args.repeat):
            for tool, command in (("pipewarden", ours), ("pip-audit", theirs)):
                shutil.rmtree(work / "cache", ignore_errors=True)
                before = Osv.requests
                seconds, proc = run(command, work)
                requests[tool] = Osv.requests - before
                timings[tool].append(seconds)
                if tool == "pipewarden":
                    doc = json.loads(proc.stdout)
                    found[tool] = {
                        a
                        for f in doc["findings"]
                        if f["rule_id"] == "PW-DEPS-101"
                        for a in f["evidence"]["advisories"]
                    }
                else:
                    doc = json.loads(proc.stdout)
                    found[tool] = {v["id"] for d in doc["dependencies"] for v in d.get("vulns", [])}
    finally:
        server.shutdown()
    # The server gone: what does each say?
    down = {}
    for tool, command in (("pipewarden", ours), ("pip-audit", theirs)):
        shutil.rmtree(work / "cache", ignore_errors=True)
        _, proc = run(command, work)
        down[tool] = proc.returncode
    # pip-audit names a vulnerability by its CVE alias when it has one: compare vulnerabilities, not names.
    canonical = {name: d["id"] for d in docs for name in (d["id"], *d.get("aliases", []))}
    found = {tool: {canonical.get(i, i) for i in ids} for tool, ids in found.items()}
    best = {tool: min(values) for tool, values in timings.items()}
    print(
        f"{PACKAGES} pinned requirements, {AFFECTED} affected, {len(docs)} advisories; "
        f"{LATENCY * 1000:.0f} ms per request\n"
    )
    print("| tool | best wall s | runs | HTTP requests | advisories found | exit code, server down |")
    print("| --- | ---: | --- | ---: | ---: | ---: |")
    for tool in ("pipewarden", "pip-audit"):
        runs = ", ".join(f"{t:.2f}" for t in timings[tool])
        print(
            f"| {tool} | {best[tool]:.2f} | {runs} | {requests[tool]} | {len(found[tool])} | {down[tool]} |"
        )
    print(f"\nratio (pip-audit time / pipewarden time): {best['pip-audit'] / best['pipewarden']:.1f}x")
    same = found["pipewarden"] == found["pip-audit"]
    print(f"same vulnerabilities (ids and aliases merged): {same}")
    if not same:
        print(f"  only pipewarden: {sorted(found['pipewarden'] - found['pip-audit'])[:10]}")
        print(f"  only pip-audit: {sorted(found['pip-audit'] - found['pipewarden'])[:10]}")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
