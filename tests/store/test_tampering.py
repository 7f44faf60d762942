"""Every tampering case is detected on both backends, named, and loses nothing already written.

An attacker here can write to the bucket or folder (stolen bucket credentials,
a compromised host) but holds neither the key-encryption key nor the signing key.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from pipewarden.crypto import FileKeyProvider, KeyRing, SigningKey, TrustedKeys
from pipewarden.errors import IntegrityError, KeyRingError, StoreError
from pipewarden.store import Artifact, ArtifactStore, Backend, LocalBackend
from tests.store.conftest import CHUNK

HEADER = 6 + 1 + 4 + 7 + 2  # fixed part of the encrypted-stream header, before the owner's identity


@pytest.fixture
def stored(store: ArtifactStore, payload: Path) -> Artifact:
    return store.put(payload, name="team/churn", actor="alice")


def flip(data: bytes, pos: int) -> bytes:
    out = bytearray(data)
    out[pos] ^= 0x01
    return bytes(out)


def assert_detected(store: ArtifactStore, art: Artifact, tmp_path: Path, match: str) -> None:
    """get refuses and leaves the destination as it was; verify names the version."""
    dest = tmp_path / "deployed.csv"
    dest.write_bytes(b"the previous good model")
    with pytest.raises((IntegrityError, KeyRingError), match=match) as excinfo:
        store.get(art.ref, dest)
    assert art.ref in str(excinfo.value)
    assert dest.read_bytes() == b"the previous good model"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]
    result = store.verify()
    assert not result.ok
    assert [ref for ref, _ in result.failures] == [art.ref]


def _body_offsets(backend: Backend, art: Artifact) -> list[int]:
    size = len(backend.get(art.body_key))
    ctx = len(art.body_context())
    first_chunk = HEADER + ctx
    return [0, 8, HEADER + 3, first_chunk, first_chunk + CHUNK + 5, size - 17, size - 1]


def test_flipping_any_byte_of_the_body_is_detected(
    store: ArtifactStore, backend: Backend, stored: Artifact, tmp_path: Path
) -> None:
    body = backend.get(stored.body_key)
    for pos in _body_offsets(backend, stored):
        backend.put(stored.body_key, flip(body, pos))
        assert_detected(store, stored, tmp_path, "body")
    backend.put(stored.body_key, body)
    assert store.verify().ok


@pytest.mark.parametrize("keep", [0, 10, HEADER + 30, -1, -16, -(CHUNK + 16)])
def test_truncated_bodies_are_detected(
    store: ArtifactStore, backend: Backend, stored: Artifact, tmp_path: Path, keep: int
) -> None:
    body = backend.get(stored.body_key)
    backend.put(stored.body_key, body[:keep])
    assert_detected(store, stored, tmp_path, "body")


def test_swapped_chunks_are_detected(
    store: ArtifactStore, backend: Backend, stored: Artifact, tmp_path: Path
) -> None:
    body = backend.get(stored.body_key)
    start = HEADER + len(stored.body_context())
    step = CHUNK + 16
    head, chunks = body[:start], [body[i : i + step] for i in range(start, len(body), step)]
    assert len(chunks) == 6
    backend.put(stored.body_key, head + chunks[1] + chunks[0] + b"".join(chunks[2:]))
    assert_detected(store, stored, tmp_path, "chunk 0 was altered, reordered or swapped")


def test_swapping_two_artifacts_bodies_is_detected(
    store: ArtifactStore, backend: Backend, stored: Artifact, tmp_path: Path
) -> None:
    other_file = tmp_path / "other.csv"
    other_file.write_bytes(b"x,y\n" * 5000)
    other = store.put(other_file, name="team/other", actor="bob")
    a, b = backend.get(stored.body_key), backend.get(other.body_key)
    backend.put(stored.body_key, b)
    backend.put(other.body_key, a)
    for art in (stored, other):
        with pytest.raises(IntegrityError, match=f"{art.ref} body: body belongs to another artifact"):
            store.get(art.ref, tmp_path / "out")
    assert len(store.verify().failures) == 2


def test_a_missing_body_or_keyslot_is_a_failure(
    store: ArtifactStore, backend: Backend, stored: Artifact, tmp_path: Path
) -> None:
    slot = backend.get(stored.keyslot_key)
    backend.delete(stored.keyslot_key)
    assert_detected(store, stored, tmp_path, "keyslot: missing")
    backend.put(stored.keyslot_key, slot)
    backend.delete(stored.body_key)
    assert_detected(store, stored, tmp_path, "body: missing")


def _envelope(backend: Backend, art: Artifact) -> tuple[str, dict[str, object]]:
    key = f"artifacts/{art.name}/@{art.version}.json"
    return key, json.loads(backend.get(key))


def test_flipping_any_byte_of_the_manifest_is_detected(
    store: ArtifactStore, backend: Backend, stored: Artifact, tmp_path: Path
) -> None:
    key, _ = _envelope(backend, stored)
    raw = backend.get(key)
    for pos in range(0, len(raw), max(1, len(raw) // 25)):
        backend.put(key, flip(raw, pos))
        with pytest.raises(IntegrityError, match=stored.ref):
            store.resolve(stored.ref)
    backend.put(key, raw)
    assert store.verify().ok


def test_a_rewritten_manifest_under_the_old_signature_is_detected(
    store: ArtifactStore, backend: Backend, stored: Artifact, tmp_path: Path
) -> None:
    key, env = _envelope(backend, stored)
    statement = json.loads(base64.b64decode(env["payload"]))  # type: ignore[arg-type]
    statement["predicate"]["created_by"] = "mallory"
    statement["predicate"]["scan"]["findings"] = 0
    env["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    backend.put(key, json.dumps(env).encode())
    assert_detected(store, stored, tmp_path, "signature by .* does not match")


def test_flipping_a_byte_of_the_signature_is_detected(
    store: ArtifactStore, backend: Backend, stored: Artifact, tmp_path: Path
) -> None:
    key, env = _envelope(backend, stored)
    for pos in (0, 31, 63):
        sig = base64.b64decode(env["signatures"][0]["sig"])  # type: ignore[index]
        env2 = json.loads(json.dumps(env))
        env2["signatures"][0]["sig"] = base64.b64encode(flip(sig, pos)).decode()
        backend.put(key, json.dumps(env2).encode())
        assert_detected(store, stored, tmp_path, "does not match")


def test_a_manifest_signed_by_an_untrusted_key_is_refused(
    make_store: Callable[..., ArtifactStore], stored: Artifact, tmp_path: Path
) -> None:
    mallory = SigningKey.generate()
    forger = make_store(signing_key=mallory)
    forged = forger.put(tmp_path.parent / tmp_path.name / "features.csv", name="team/churn", actor="mallory")
    honest = make_store()
    with pytest.raises(
        IntegrityError, match=f"{forged.ref} manifest: signed by {mallory.keyid}, which is not among"
    ):
        honest.resolve(forged.ref)


def test_a_manifest_moved_to_another_version_is_detected(
    store: ArtifactStore, backend: Backend, stored: Artifact, tmp_path: Path
) -> None:
    key, _ = _envelope(backend, stored)
    backend.put("artifacts/team/churn/@2.json", backend.get(key))
    with pytest.raises(IntegrityError, match="team/churn@2: manifest describes team/churn@1; it was moved"):
        store.get("team/churn@2", tmp_path / "out")


def test_flipping_a_byte_of_the_keyslot_or_moving_it_is_detected(
    store: ArtifactStore, backend: Backend, stored: Artifact, payload: Path, tmp_path: Path
) -> None:
    slot = backend.get(stored.keyslot_key)
    doc = json.loads(slot)
    wrapped = base64.b64decode(doc["wrapped"])
    for pos in (0, 12, len(wrapped) - 1):
        backend.put(
            stored.keyslot_key,
            json.dumps(doc | {"wrapped": base64.b64encode(flip(wrapped, pos)).decode()}).encode(),
        )
        assert_detected(store, stored, tmp_path, "keyslot: does not open")
    backend.put(stored.keyslot_key, flip(slot, 3))
    assert_detected(store, stored, tmp_path, "keyslot: malformed")
    # A data key sealed for another artifact does not open under this one's identity.
    other = store.put(payload, name="team/other", actor="bob")
    backend.put(stored.keyslot_key, backend.get(other.keyslot_key))
    assert_detected(store, stored, tmp_path, "keyslot: does not open")


def test_a_retired_key_and_a_wrong_key_are_named(
    store: ArtifactStore, backend: Backend, stored: Artifact, ring_path: Path, tmp_path: Path
) -> None:
    old = store.keyring.current_id
    store.keyring.rotate()
    store.keyring.retire(old)  # behind the store's back: the store itself refuses while keys are in use
    assert_detected(store, stored, tmp_path, f"sealed under key '{old}', which was retired on")

    other_ring = tmp_path / "other-keyring.json"
    FileKeyProvider.create(other_ring)
    stranger = ArtifactStore(
        backend,
        keyring=KeyRing.from_file(other_ring),
        signing_key=store.signing_key,
        trusted=TrustedKeys([store.signing_key.public], source="test"),
    )
    with pytest.raises(IntegrityError, match=r"which .*other-keyring\.json does not hold"):
        stranger.get(stored.ref, tmp_path / "out")


def test_a_deleted_middle_version_and_a_replaced_earlier_manifest_are_detected(
    store: ArtifactStore, backend: Backend, payload: Path, tmp_path: Path
) -> None:
    for _ in range(3):
        store.put(payload, name="team/churn", actor="alice")
    removed = backend.get("artifacts/team/churn/@2.json")
    backend.delete("artifacts/team/churn/@2.json")
    result = store.verify()
    assert (
        "team/churn@2",
        "team/churn@2: missing; versions are never deleted, so it was removed from the store",
    ) in (result.failures)
    backend.put("artifacts/team/churn/@2.json", removed)
    assert store.verify().ok
    # A genuinely signed manifest for team/churn@1 from another store (same signing key): valid on
    # its own, but not the one @2 was written after.
    other = ArtifactStore(
        LocalBackend(tmp_path / "other-store"),
        keyring=store.keyring,
        signing_key=store.signing_key,
        trusted=store.trusted,
        chunk_size=CHUNK,
    )
    other.put(payload, name="team/churn", actor="mallory")
    backend.put("artifacts/team/churn/@1.json", other.backend.get("artifacts/team/churn/@1.json"))
    failures = dict(store.verify().failures)
    assert "team/churn@2" in failures and "was written after; it was replaced" in failures["team/churn@2"]


def test_a_source_changed_after_its_scan_is_not_stored(
    store: ArtifactStore, payload: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    scan = store._scan
    original = payload.read_bytes()

    def scan_then_swap(source: Path, **kwargs: str) -> object:
        verdict = scan(source, **kwargs)  # type: ignore[arg-type]
        # Same size, and the modification time put back: only the change time tells.
        st = source.stat()
        source.write_bytes(original[::-1])
        os.utime(source, ns=(st.st_atime_ns, st.st_mtime_ns))
        return verdict

    monkeypatch.setattr(store, "_scan", scan_then_swap)
    with pytest.raises(StoreError, match=r"changed while it was being scanned or stored; nothing was stored"):
        store.put(payload, name="team/churn", actor="mallory")
    assert store.versions("team/churn") == []
