"""Chunked AES-256-GCM for bodies of any size, and one-shot sealing for small secrets.

The chunked format follows the STREAM construction (Hoang, Reyhanitabar,
Rogaway and Vizár, "Online Authenticated-Encryption and its Nonce-Reuse
Misuse-Resistance", CRYPTO 2015): every chunk is sealed on its own with a
nonce made of a random prefix, the chunk's counter and a final-chunk flag, so
a reader notices a chunk that was altered, moved, swapped with another or
dropped from the end, and never needs more than two chunks in memory.

Layout (big-endian)::

    header   magic "PWSTRM" | version u8 = 1 | chunk_size u32 | nonce_prefix 7 bytes
             | context_len u16 | context (the owner's identity, UTF-8 JSON)
    chunks   AES-256-GCM(chunk_i) + 16-byte tag, each over chunk_size plaintext
             bytes except the last, which holds 0..chunk_size bytes

    nonce_i  = nonce_prefix | u32 i | u8 (1 if chunk i is the last, else 0)
    AAD_i    = the whole header

An empty body is one final chunk of no plaintext (16 bytes of tag), so even
a zero-byte body cannot be truncated unseen.
"""

from __future__ import annotations

import os
import struct
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from pipewarden.errors import CryptoError, IntegrityError

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "KEY_BYTES",
    "StreamHeader",
    "decrypt_stream",
    "encrypt_stream",
    "new_data_key",
    "open_sealed",
    "seal",
]

KEY_BYTES = 32
DEFAULT_CHUNK_SIZE = 1 << 20
MAX_CHUNK_SIZE = 64 << 20
_TAG = 16
_MAGIC = b"PWSTRM"
_VERSION = 1
_FIXED = struct.Struct(">6sBI7sH")
_MAX_COUNTER = (1 << 32) - 1


class _Writer(Protocol):
    def write(self, data: bytes, /) -> object: ...


class _Reader(Protocol):
    def read(self, n: int, /) -> bytes: ...


def new_data_key() -> bytes:
    """A fresh random 256-bit key from the operating system's CSPRNG."""
    return AESGCM.generate_key(bit_length=256)


def seal(key: bytes, plaintext: bytes, *, aad: bytes) -> bytes:
    """AES-256-GCM in one piece: a random 96-bit nonce followed by ciphertext and tag."""
    nonce = os.urandom(12)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def open_sealed(key: bytes, sealed: bytes, *, aad: bytes, label: str) -> bytes:
    """Open what `seal` made; `IntegrityError` names `label` if anything was altered."""
    if len(sealed) < 12 + _TAG:
        raise IntegrityError(f"{label}: sealed value is {len(sealed)} bytes, too short to be genuine")
    try:
        return AESGCM(key).decrypt(sealed[:12], sealed[12:], aad)
    except InvalidTag as exc:
        raise IntegrityError(
            f"{label}: does not open with this key (altered, moved from another artifact, or a wrong key)"
        ) from exc


@dataclass(frozen=True, slots=True)
class StreamHeader:
    """The plaintext header of an encrypted body; `context` names the body's owner."""

    chunk_size: int
    nonce_prefix: bytes
    context: bytes

    def __post_init__(self) -> None:
        if not 1 <= self.chunk_size <= MAX_CHUNK_SIZE:
            raise CryptoError(f"chunk size {self.chunk_size} is outside 1..{MAX_CHUNK_SIZE}")
        if len(self.nonce_prefix) != 7:
            raise CryptoError("nonce prefix must be 7 bytes")
        if len(self.context) > 0xFFFF:
            raise CryptoError("stream context is longer than 65535 bytes")

    def to_bytes(self) -> bytes:
        fixed = _FIXED.pack(_MAGIC, _VERSION, self.chunk_size, self.nonce_prefix, len(self.context))
        return fixed + self.context

    @classmethod
    def read_from(cls, reader: _Reader, *, label: str) -> StreamHeader:
        fixed = _read_exact(reader, _FIXED.size)
        if len(fixed) < _FIXED.size:
            raise IntegrityError(f"{label}: body is truncated inside its header ({len(fixed)} bytes)")
        magic, version, chunk_size, prefix, ctx_len = _FIXED.unpack(fixed)
        if magic != _MAGIC:
            raise IntegrityError(f"{label}: body does not start with the encrypted-stream header")
        if version != _VERSION:
            raise IntegrityError(f"{label}: encrypted-stream version {version} is not supported")
        context = _read_exact(reader, ctx_len)
        if len(context) < ctx_len:
            raise IntegrityError(f"{label}: body is truncated inside its header")
        try:
            return cls(chunk_size=chunk_size, nonce_prefix=prefix, context=context)
        except CryptoError as exc:
            raise IntegrityError(f"{label}: {exc}") from exc


def _nonce(prefix: bytes, counter: int, last: bool) -> bytes:
    if counter > _MAX_COUNTER:
        raise CryptoError("stream is longer than 2**32 chunks")
    return prefix + struct.pack(">IB", counter, 1 if last else 0)


def _read_exact(reader: _Reader, n: int) -> bytes:
    """Read `n` bytes, fewer only at end of stream (pipes and sockets return short reads)."""
    data = reader.read(n)
    if len(data) == n or not data:
        return data
    parts = [data]
    got = len(data)
    while got < n:
        more = reader.read(n - got)
        if not more:
            break
        parts.append(more)
        got += len(more)
    return b"".join(parts)


class _Overlap:
    """Runs an observer (a hash's update) on one thread while the caller encrypts on another.

    hashlib and OpenSSL's AES-GCM both release the GIL on large buffers, so the
    two really run side by side on two cores. The observer may fall up to
    `depth` chunks behind (chunks are immutable bytes, so nothing is
    overwritten meanwhile); one worker keeps them in order.
    """

    def __init__(self, observe: Callable[[bytes], object] | None, *, depth: int = 4) -> None:
        self._observe = observe
        self._depth = depth
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="pipewarden-hash") if observe else None
        self._pending: deque[Future[object]] = deque()

    def feed(self, data: bytes) -> None:
        if self._pool is None or self._observe is None:
            return
        while len(self._pending) >= self._depth:
            self._pending.popleft().result()
        self._pending.append(self._pool.submit(self._observe, data))

    def finish(self) -> None:
        if self._pool is None:
            return
        try:
            while self._pending:
                self._pending.popleft().result()
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)


def encrypt_stream(
    reader: _Reader,
    writer: _Writer,
    *,
    key: bytes,
    context: bytes,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    observe: Callable[[bytes], object] | None = None,
) -> int:
    """Encrypt everything `reader` yields into `writer`; return the plaintext size.

    `observe` sees every plaintext chunk in order (to hash it) on a second
    thread. Memory stays at a few chunks whatever the size of the stream.
    """
    if len(key) != KEY_BYTES:
        raise CryptoError(f"data key must be {KEY_BYTES} bytes, not {len(key)}")
    header = StreamHeader(chunk_size=chunk_size, nonce_prefix=os.urandom(7), context=context)
    aad = header.to_bytes()
    aead = AESGCM(key)
    writer.write(aad)
    overlap = _Overlap(observe)
    total = 0
    counter = 0
    try:
        chunk = _read_exact(reader, chunk_size)
        while True:
            # Read one chunk ahead: the final flag must be set on the last chunk,
            # including a full one when the size is an exact multiple.
            following = _read_exact(reader, chunk_size) if len(chunk) == chunk_size else b""
            last = not following
            overlap.feed(chunk)
            writer.write(aead.encrypt(_nonce(header.nonce_prefix, counter, last), chunk, aad))
            total += len(chunk)
            if last:
                break
            chunk = following
            counter += 1
    finally:
        overlap.finish()
    return total


def decrypt_stream(
    reader: _Reader,
    writer: _Writer | None,
    *,
    key: bytes,
    expect_context: bytes,
    label: str,
    observe: Callable[[bytes], object] | None = None,
    expect_chunk_size: int | None = None,
) -> int:
    """Decrypt a body made by `encrypt_stream`; return the plaintext size.

    Raises `IntegrityError` naming `label` if the header names another owner
    or another chunk size than `expect_chunk_size`, or a chunk was altered,
    reordered, swapped or dropped. Chunks reach
    `writer` as they are authenticated, so a caller who must not release
    anything before the end writes to a private temporary place.
    """
    header = StreamHeader.read_from(reader, label=label)
    # The header is not authenticated until the first chunk is: a caller that
    # knows the chunk size (from a signed manifest) pins it, so a forged header
    # cannot make the reader buffer up to MAX_CHUNK_SIZE twice over.
    if expect_chunk_size is not None and header.chunk_size != expect_chunk_size:
        raise IntegrityError(
            f"{label}: header says chunks of {header.chunk_size} bytes, "
            f"the signed manifest {expect_chunk_size}"
        )
    if header.context != expect_context:
        raise IntegrityError(
            f"{label}: body belongs to another artifact "
            f"({header.context.decode('utf-8', 'replace')[:200]}); it was moved or swapped"
        )
    aad = header.to_bytes()
    aead = AESGCM(key)
    block = header.chunk_size + _TAG
    overlap = _Overlap(observe)
    total = 0
    counter = 0
    try:
        current = _read_exact(reader, block)
        if not current:
            raise IntegrityError(f"{label}: body is truncated: it ends before its final chunk")
        while True:
            following = _read_exact(reader, block) if len(current) == block else b""
            last = not following
            try:
                plain = aead.decrypt(_nonce(header.nonce_prefix, counter, last), current, aad)
            except InvalidTag as exc:
                if last:
                    detail = "truncated, or its last chunk was altered"
                else:
                    detail = f"chunk {counter} was altered, reordered or swapped"
                raise IntegrityError(f"{label}: body is {detail} (authentication failed)") from exc
            overlap.feed(plain)
            if writer is not None:
                writer.write(plain)
            total += len(plain)
            if last:
                break
            current = following
            counter += 1
    finally:
        overlap.finish()
    return total
