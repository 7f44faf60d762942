"""Chunked AES-256-GCM: every size round-trips; every alteration, reordering or truncation is caught."""

from __future__ import annotations

import hashlib
import io
import tracemalloc

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipewarden.crypto import decrypt_stream, encrypt_stream, new_data_key, open_sealed, seal
from pipewarden.errors import CryptoError, IntegrityError

KEY = bytes(range(32))
CTX = b'{"artifact":"bert","uid":"00"}'
TAG = 16


def enc(data: bytes, *, chunk: int, key: bytes = KEY, ctx: bytes = CTX) -> bytes:
    out = io.BytesIO()
    assert encrypt_stream(io.BytesIO(data), out, key=key, context=ctx, chunk_size=chunk) == len(data)
    return out.getvalue()


def dec(blob: bytes, *, key: bytes = KEY, ctx: bytes = CTX) -> bytes:
    out = io.BytesIO()
    size = decrypt_stream(io.BytesIO(blob), out, key=key, expect_context=ctx, label="bert@1 body")
    assert size == len(out.getvalue())
    return out.getvalue()


def header_len(ctx: bytes = CTX) -> int:
    return 6 + 1 + 4 + 7 + 2 + len(ctx)


@given(data=st.binary(max_size=700), chunk=st.integers(min_value=1, max_value=97))
def test_round_trip_any_size_and_chunk_size(data: bytes, chunk: int) -> None:
    assert dec(enc(data, chunk=chunk)) == data


@pytest.mark.parametrize("size", [0, 1, 63, 64, 65, 128, 64 * 5])
def test_round_trip_edges_including_empty_and_exact_multiples(size: int) -> None:
    data = bytes(i % 251 for i in range(size))
    blob = enc(data, chunk=64)
    chunks = max(1, -(-size // 64))
    # An exact multiple ends on a full final chunk; nothing empty is appended.
    assert len(blob) == header_len() + size + chunks * TAG
    assert dec(blob) == data


def test_observer_sees_every_plaintext_byte_in_order_on_both_sides() -> None:
    data = bytes(range(256)) * 41
    seen_enc, seen_dec = hashlib.sha256(), hashlib.sha256()
    out = io.BytesIO()
    encrypt_stream(io.BytesIO(data), out, key=KEY, context=CTX, chunk_size=100, observe=seen_enc.update)
    decrypt_stream(
        io.BytesIO(out.getvalue()), None, key=KEY, expect_context=CTX, label="x", observe=seen_dec.update
    )
    assert seen_enc.digest() == seen_dec.digest() == hashlib.sha256(data).digest()


def test_every_single_bit_flip_anywhere_is_detected() -> None:
    blob = enc(b"weights " * 40, chunk=64)
    for pos in range(len(blob)):
        tampered = bytearray(blob)
        tampered[pos] ^= 0x01
        with pytest.raises(IntegrityError, match="bert@1 body"):
            dec(bytes(tampered))


def test_every_truncation_is_detected_including_at_chunk_boundaries() -> None:
    blob = enc(b"x" * 300, chunk=64)
    for cut in range(len(blob)):
        with pytest.raises(IntegrityError, match="bert@1 body"):
            dec(blob[:cut])


def test_empty_body_cannot_be_truncated_to_nothing() -> None:
    blob = enc(b"", chunk=64)
    assert len(blob) == header_len() + TAG
    with pytest.raises(IntegrityError, match="truncated"):
        dec(blob[: header_len()])


def _chunks(blob: bytes, chunk: int) -> tuple[bytes, list[bytes]]:
    head, body = blob[: header_len()], blob[header_len() :]
    step = chunk + TAG
    return head, [body[i : i + step] for i in range(0, len(body), step)]


def test_swapped_dropped_duplicated_and_appended_chunks_are_detected() -> None:
    blob = enc(bytes(range(200)) * 2, chunk=64)
    head, parts = _chunks(blob, 64)
    assert len(parts) == 7
    swapped = [parts[1], parts[0], *parts[2:]]
    dropped = [parts[0], *parts[2:]]
    duplicated = [parts[0], parts[0], *parts[2:]]
    last_removed = parts[:-1]
    for variant in (swapped, dropped, duplicated, last_removed):
        with pytest.raises(IntegrityError):
            dec(head + b"".join(variant))
    with pytest.raises(IntegrityError):
        dec(blob + b"\x00" * 80)


def test_chunks_from_another_stream_under_the_same_key_do_not_fit() -> None:
    a = enc(b"a" * 256, chunk=64)
    b = enc(b"b" * 256, chunk=64)
    head_a, parts_a = _chunks(a, 64)
    _, parts_b = _chunks(b, 64)
    with pytest.raises(IntegrityError, match="chunk 1"):
        dec(head_a + parts_a[0] + parts_b[1] + b"".join(parts_a[2:]))


def test_wrong_key_and_wrong_owner_are_refused_with_what_went_wrong() -> None:
    blob = enc(b"secret", chunk=64)
    with pytest.raises(IntegrityError, match="authentication failed"):
        dec(blob, key=new_data_key())
    with pytest.raises(IntegrityError, match="belongs to another artifact"):
        dec(blob, ctx=b'{"artifact":"other","uid":"00"}')


def test_header_that_is_not_ours_is_refused() -> None:
    with pytest.raises(IntegrityError, match="header"):
        dec(b"PK\x03\x04" + b"\x00" * 40)
    with pytest.raises(IntegrityError, match="truncated inside its header"):
        dec(b"PWS")


def test_bad_parameters_are_errors_not_weak_encryption() -> None:
    with pytest.raises(CryptoError, match="32 bytes"):
        enc(b"x", chunk=64, key=b"short")
    with pytest.raises(CryptoError, match="chunk size"):
        enc(b"x", chunk=0)


class _Zeros(io.RawIOBase):
    """A reader that produces `size` bytes without holding them."""

    def __init__(self, size: int) -> None:
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        n = min(len(buffer), self.left)
        buffer[:n] = b"\x07" * n
        self.left -= n
        return n


class _Sink:
    def __init__(self) -> None:
        self.size = 0

    def write(self, data: bytes) -> int:
        self.size += len(data)
        return len(data)


def test_memory_stays_bounded_by_a_few_chunks_whatever_the_size() -> None:
    size = 96 << 20  # 96 MiB through 1 MiB chunks
    tracemalloc.start()
    try:
        sink = _Sink()
        encrypt_stream(io.BufferedReader(_Zeros(size)), sink, key=KEY, context=CTX, chunk_size=1 << 20)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert sink.size == header_len() + size + 96 * TAG
    assert peak < 12 << 20, f"peak {peak / 2**20:.1f} MiB for a 96 MiB stream"


def test_one_shot_seal_binds_its_associated_data() -> None:
    box = seal(KEY, b"data key", aad=b"bert@1")
    assert open_sealed(KEY, box, aad=b"bert@1", label="slot") == b"data key"
    with pytest.raises(IntegrityError, match="slot"):
        open_sealed(KEY, box, aad=b"bert@2", label="slot")
    with pytest.raises(IntegrityError, match="too short"):
        open_sealed(KEY, box[:20], aad=b"bert@1", label="slot")
