"""A writer process for the crash tests: stores one file and, at a chosen point, SIGKILLs itself.

    python -m tests.store.crash_writer STORE_SPEC KEYRING SIGNING_KEY FILE KILL_AT

KILL_AT is ``never``, ``body:<bytes>`` (after that many body bytes reached
the backend), ``before-commit``, ``before-move``, ``after-move``,
``before-put:<n>``/``after-put:<n>`` (around the n-th small object written:
1 is the key slot, 2 the manifest). The kill is a real SIGKILL of this
process: no exception handler, no ``finally`` and no buffered write runs.
STORE_SPEC is ``local:<folder>`` or ``s3:<endpoint>|<bucket>|<prefix>``.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import BinaryIO

from pipewarden.crypto import KeyRing, SigningKey, TrustedKeys
from pipewarden.store import ArtifactStore, Backend, LocalBackend, S3Backend
from pipewarden.store._backends import _s3
from pipewarden.store._backends._interface import ObjectWriter


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


class KillingBackend(Backend):
    """Passes every call to the real backend and kills the process at one point."""

    def __init__(self, inner: Backend, kill_at: str) -> None:
        self.inner = inner
        self.location = inner.location
        self.kill_at = kill_at
        self.puts = 0

    @contextmanager
    def writer(self, key: str) -> Iterator[ObjectWriter]:
        limit = int(self.kill_at.split(":")[1]) if self.kill_at.startswith("body:") else None
        with self.inner.writer(key) as out:
            written = 0

            class Counting:
                def write(self, data: bytes) -> object:
                    nonlocal written
                    if limit is not None and written + len(data) > limit:
                        out.write(data[: limit - written])
                        die()
                    written += len(data)
                    return out.write(data)

            yield Counting()
            if self.kill_at == "before-commit":
                die()

    def put(self, key: str, data: bytes, *, exclusive: bool = False) -> None:
        self.puts += 1
        if self.kill_at == f"before-put:{self.puts}":
            die()
        self.inner.put(key, data, exclusive=exclusive)
        if self.kill_at == f"after-put:{self.puts}":
            die()

    def move(self, source: str, target: str) -> None:
        if self.kill_at == "before-move":
            die()
        self.inner.move(source, target)
        if self.kill_at == "after-move":
            die()

    def get(self, key: str) -> bytes:
        return self.inner.get(key)

    def open(self, key: str) -> AbstractContextManager[BinaryIO]:
        return self.inner.open(key)

    def exists(self, key: str) -> bool:
        return self.inner.exists(key)

    def iter_keys(self, prefix: str) -> Iterator[str]:
        return self.inner.iter_keys(prefix)

    def delete(self, key: str) -> None:
        self.inner.delete(key)


def backend_from_spec(spec: str) -> Backend:
    kind, _, rest = spec.partition(":")
    if kind == "local":
        return LocalBackend(Path(rest))
    endpoint, bucket, prefix = rest.split("|")
    return S3Backend(bucket=bucket, prefix=prefix, endpoint_url=endpoint, region="us-east-1")


def main() -> None:
    # S3's smallest part, so that a body of a few MiB is a real multipart upload that can be cut short.
    _s3.PART_SIZE = 5 << 20
    spec, ring, key_file, source, kill_at = sys.argv[1:6]
    key = SigningKey.load(Path(key_file))
    store = ArtifactStore(
        KillingBackend(backend_from_spec(spec), kill_at),
        keyring=KeyRing.from_file(Path(ring)),
        signing_key=key,
        trusted=TrustedKeys([key.public], source=key_file),
    )
    print("ready", flush=True)
    art = store.put(source, name="crash/model", actor="writer")
    print(art.ref, flush=True)


if __name__ == "__main__":
    main()
