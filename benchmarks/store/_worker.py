"""One measured operation, run in a fresh process by throughput.py (and by sign.py to profile).

    python _worker.py [--profile STATS] OP ARGS...

    pw-put SOURCE WORKSPACE   Workspace.init(WORKSPACE), then time store.put(SOURCE)
    pw-get WORKSPACE DEST     Workspace.open(WORKSPACE), then time store.get(latest, DEST)
    aes-put SOURCE DEST       baseline put: read SOURCE in 1 MiB chunks, AES-256-GCM each chunk
                              (unique nonce), write DEST, fsync; the key goes to DEST.key
    aes-get SOURCE DEST       baseline get: read what aes-put wrote, decrypt each chunk, write
                              DEST, fsync
    copy SOURCE DEST          the disk's share: read, write, fsync, no cryptography
    memory MIB                in-memory speed over MIB MiB: AES-256-GCM encrypt and decrypt
                              (1 MiB chunks), SHA-256; no file I/O
    cli ARGS...               pipewarden's command line in this process (to profile it)

Prints one JSON object on stdout; "seconds" is the operation alone, after imports and
set-up (workspace creation, key generation), so that size / seconds is the data path's
throughput. The process's own wall time and peak RSS are what the harness measures
around it. --profile writes cProfile stats of the operation to STATS.
"""

from __future__ import annotations

import cProfile
import hashlib
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MIB = 1024 * 1024
TAG = 16
NAME = "bench/model"


def _nonce(prefix: bytes, counter: int) -> bytes:
    return prefix + counter.to_bytes(8, "big")


def _timed(op: Callable[[], object], stats: str | None) -> float:
    profiler = cProfile.Profile() if stats else None
    start = time.perf_counter()
    if profiler is not None:
        profiler.runcall(op)
    else:
        op()
    seconds = time.perf_counter() - start
    if profiler is not None and stats:
        profiler.dump_stats(stats)
    return seconds


def pw_put(source: str, workspace: str, stats: str | None) -> dict[str, object]:
    import pipewarden.scan  # noqa: F401  (imported by put on first use; not part of the data path)
    from pipewarden.workspace import Workspace

    store = Workspace.init(workspace).store()
    result = {}

    def put() -> None:
        art = store.put(source, name=NAME, actor="bench")
        result.update(ref=str(art.ref), bytes=art.size, sha256=art.digest, scan=art.scan.max_severity)

    return {"seconds": _timed(put, stats), **result}


def pw_get(workspace: str, dest: str, stats: str | None) -> dict[str, object]:
    from pipewarden.workspace import Workspace

    store = Workspace.open(workspace).store()
    result = {}

    def get() -> None:
        art = store.get(NAME, dest)
        result.update(ref=str(art.ref), bytes=art.size)

    return {"seconds": _timed(get, stats), **result}


def aes_put(source: str, dest: str, stats: str | None) -> dict[str, object]:
    key = AESGCM.generate_key(bit_length=256)
    Path(dest + ".key").write_bytes(key)
    total = 0

    def put() -> None:
        nonlocal total
        aead = AESGCM(key)
        prefix = os.urandom(4)
        with open(source, "rb", buffering=0) as src, open(dest, "wb") as out:
            out.write(prefix)
            counter = 0
            while chunk := src.read(MIB):
                out.write(aead.encrypt(_nonce(prefix, counter), chunk, None))
                total += len(chunk)
                counter += 1
            out.flush()
            os.fsync(out.fileno())

    return {"seconds": _timed(put, stats), "bytes": total}


def aes_get(source: str, dest: str, stats: str | None) -> dict[str, object]:
    key = Path(source + ".key").read_bytes()
    total = 0

    def get() -> None:
        nonlocal total
        aead = AESGCM(key)
        with open(source, "rb", buffering=0) as src, open(dest, "wb") as out:
            prefix = src.read(4)
            counter = 0
            while chunk := src.read(MIB + TAG):
                plain = aead.decrypt(_nonce(prefix, counter), chunk, None)
                out.write(plain)
                total += len(plain)
                counter += 1
            out.flush()
            os.fsync(out.fileno())

    return {"seconds": _timed(get, stats), "bytes": total}


def copy(source: str, dest: str, stats: str | None) -> dict[str, object]:
    total = 0

    def run() -> None:
        nonlocal total
        with open(source, "rb", buffering=0) as src, open(dest, "wb") as out:
            while chunk := src.read(MIB):
                out.write(chunk)
                total += len(chunk)
            out.flush()
            os.fsync(out.fileno())

    return {"seconds": _timed(run, stats), "bytes": total}


def memory(mib: str, stats: str | None) -> dict[str, object]:
    """AES-256-GCM and SHA-256 over `mib` MiB in 1 MiB chunks of a buffer of up to 256 MiB
    (larger than the CPU's caches, so memory traffic is real), no file I/O."""
    chunks = int(mib)
    distinct = min(chunks, 256)
    buf = memoryview(os.urandom(distinct * MIB))
    aead = AESGCM(AESGCM.generate_key(bit_length=256))
    prefix = os.urandom(4)
    sealed: list[bytes] = []

    def encrypt() -> None:
        for i in range(chunks):
            out = aead.encrypt(_nonce(prefix, i), buf[(i % distinct) * MIB : (i % distinct + 1) * MIB], None)
            if i < distinct:
                sealed.append(out)

    def decrypt() -> None:
        for i in range(chunks):
            aead.decrypt(_nonce(prefix, i % distinct), sealed[i % distinct], None)

    def sha256() -> None:
        h = hashlib.sha256()
        for i in range(chunks):
            h.update(buf[(i % distinct) * MIB : (i % distinct + 1) * MIB])

    return {
        "bytes": chunks * MIB,
        "encrypt_seconds": _timed(encrypt, None),
        "decrypt_seconds": _timed(decrypt, None),
        "sha256_seconds": _timed(sha256, None),
    }


def cli(args: list[str], stats: str | None) -> dict[str, object]:
    from pipewarden.cli import main as pipewarden_main

    def run() -> None:
        sys.argv = ["pipewarden", *args]
        try:
            pipewarden_main()
        except SystemExit:
            pass

    return {"seconds": _timed(run, stats)}


def main(argv: list[str]) -> int:
    stats = None
    if argv[:1] == ["--profile"]:
        stats, argv = argv[1], argv[2:]
    op, args = argv[0], argv[1:]
    ops: dict[str, Callable[..., dict[str, object]]] = {
        "pw-put": pw_put,
        "pw-get": pw_get,
        "aes-put": aes_put,
        "aes-get": aes_get,
        "copy": copy,
        "memory": memory,
    }
    if op == "cli":
        result = cli(args, stats)
    elif op in ops:
        result = ops[op](*args, stats)
    else:
        raise SystemExit(f"unknown operation {op!r}")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
