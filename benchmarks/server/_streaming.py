"""Streaming a large artifact through bench_server.py's servers: throughput, and the server's memory.

An upload through the secure server is scanned, encrypted, signed and stored; a download is verified
into a spool file and then sent. The bare server writes the body to a file, and sends a file as it is.
The server's peak RSS during each transfer comes from /proc/<pid>/status: VmHWM, reset just before
the transfer through /proc/<pid>/clear_refs where the kernel allows it, and VmRSS sampled every 10 ms.
"""

from __future__ import annotations

import hashlib
import os
import ssl
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from _servers import MIB, WORK, Server, Setup

BIG = "fraud/big/weights.raw"


def make_data(size_mb: int) -> tuple[Path, str]:
    """`size_mb` MiB of random bytes (nothing in them compresses or looks like a model format)."""
    path = WORK / "data" / f"weights-{size_mb}.raw"
    digest = hashlib.sha256()
    with path.open("wb") as out:
        for _ in range(size_mb):
            chunk = os.urandom(MIB)
            digest.update(chunk)
            out.write(chunk)
    return path, digest.hexdigest()


class PeakRss:
    """The server's resident memory around one transfer: before, and the peak during it (VmHWM after a
    reset, and VmRSS sampled every 10 ms, whichever is higher)."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.sampled = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.01):
            self.sampled = max(self.sampled, self.server.rss_kib("VmRSS"))

    def __enter__(self) -> PeakRss:
        self.idle = self.server.rss_kib("VmRSS")
        self.reset = self.server.reset_peak()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.sampled, self.server.rss_kib("VmHWM") if self.reset else 0)

    def report(self) -> dict[str, Any]:
        return {
            "idle_rss_mib": self.idle / 1024,
            "peak_rss_mib": self.peak / 1024,
            "above_idle_mib": (self.peak - self.idle) / 1024,
            "peak_from": "VmHWM reset before the transfer" if self.reset else "VmRSS sampled every 10 ms",
        }


def upload(
    server: Server, path: str, source: Path, *, headers: dict[str, str], context: ssl.SSLContext
) -> dict[str, Any]:
    def body() -> Iterator[bytes]:
        with source.open("rb") as f:
            while chunk := f.read(MIB):
                yield chunk

    size = source.stat().st_size
    with PeakRss(server) as rss:
        started = time.perf_counter()
        response = httpx.put(server.url(path), content=body(), headers=headers, verify=context, timeout=1800)
        seconds = time.perf_counter() - started
    if response.status_code != 201:
        raise SystemExit(f"{server.label} PUT {path}: {response.status_code} {response.text[:500]}")
    return {"size_mib": size / MIB, "seconds": seconds, "mib_per_s": size / MIB / seconds, **rss.report()}


def download(
    server: Server, path: str, *, sha256: str, headers: dict[str, str], context: ssl.SSLContext
) -> dict[str, Any]:
    digest = hashlib.sha256()
    size = 0
    first: float | None = None
    with PeakRss(server) as rss:
        started = time.perf_counter()
        with httpx.stream("GET", server.url(path), headers=headers, verify=context, timeout=1800) as response:
            if response.status_code != 200:
                raise SystemExit(f"{server.label} GET {path}: {response.status_code}")
            for chunk in response.iter_bytes(MIB):
                if first is None:
                    first = time.perf_counter() - started
                digest.update(chunk)
                size += len(chunk)
        seconds = time.perf_counter() - started
    if digest.hexdigest() != sha256:
        raise SystemExit(f"{server.label} GET {path}: the bytes differ from the upload")
    return {
        "size_mib": size / MIB,
        "seconds": seconds,
        "mib_per_s": size / MIB / seconds,
        "first_byte_s": first,
        **rss.report(),
    }


def measure_streaming(
    servers: dict[str, Server], setup: Setup, context: ssl.SSLContext, *, sizes: list[int]
) -> list[dict[str, Any]]:
    headers = {"authorization": f"Bearer {setup.token}"}
    rows: list[dict[str, Any]] = []
    for version, size_mb in enumerate(sizes, start=1):
        source, sha256 = make_data(size_mb)
        secure, bare = servers["secure"], servers["bare"]
        content = f"/v1/artifacts/{BIG}/versions/{version}/content"
        rows += [
            {
                "transfer": "upload: scan, encrypt, sign, store",
                "server": secure.label,
                **upload(secure, f"/v1/artifacts/{BIG}", source, headers=headers, context=context),
            },
            {
                "transfer": "upload: the body to a file",
                "server": bare.label,
                **upload(bare, f"/raw/{source.name}", source, headers=headers, context=context),
            },
            {
                "transfer": "download: verify, decrypt, send",
                "server": secure.label,
                **download(secure, content, sha256=sha256, headers=headers, context=context),
            },
            {
                "transfer": "download: a file as it is",
                "server": bare.label,
                **download(bare, f"/raw/{source.name}", sha256=sha256, headers=headers, context=context),
            },
        ]
        for row in rows[-4:]:
            print(
                f"  {row['transfer']:36} {size_mb:5} MiB {row['mib_per_s']:7.0f} MiB/s  peak RSS "
                f"{row['peak_rss_mib']:6.0f} MiB (+{row['above_idle_mib']:.0f})",
                file=sys.stderr,
            )
        for leftover in (source, WORK / "data" / f"uploaded-{source.name}"):
            leftover.unlink(missing_ok=True)
    return rows
