"""Key rings and signing keys: created safely, refused when unsafe, never empty, rotated and retired."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from pipewarden.crypto import (
    EnvKeyProvider,
    FileKeyProvider,
    KeyRing,
    PublicKey,
    SigningKey,
    TrustedKeys,
    new_data_key,
)
from pipewarden.errors import IntegrityError, KeyRingError

CTX = b'{"artifact":"bert","version":1}'


@pytest.fixture
def ring_file(tmp_path: Path) -> Path:
    path = tmp_path / "keyring.json"
    FileKeyProvider.create(path)
    return path


def test_created_key_file_is_private_and_holds_one_current_key(ring_file: Path) -> None:
    assert ring_file.stat().st_mode & 0o777 == 0o600
    (info,) = FileKeyProvider(ring_file).keys()
    assert info.current and info.retired is None
    assert "material" not in repr(info)


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o644])
def test_key_file_open_to_group_or_others_is_refused_with_the_fix(ring_file: Path, mode: int) -> None:
    ring_file.chmod(mode)
    with pytest.raises(KeyRingError, match=f"mode {mode:04o}.*chmod 600"):
        FileKeyProvider(ring_file)


def test_symlinked_missing_and_existing_key_files(ring_file: Path, tmp_path: Path) -> None:
    link = tmp_path / "link.json"
    link.symlink_to(ring_file)
    with pytest.raises(KeyRingError, match="symbolic link"):
        FileKeyProvider(link)
    with pytest.raises(KeyRingError, match="does not exist"):
        FileKeyProvider(tmp_path / "nope.json")
    with pytest.raises(KeyRingError, match="never overwritten"):
        FileKeyProvider.create(ring_file)


def _write(path: Path, doc: object) -> None:
    path.write_text(json.dumps(doc))
    path.chmod(0o600)


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"format": "pipewarden.keyring/1", "current": "k", "keys": []}, "holds no keys"),
        ({"format": "something/else"}, "not a pipewarden key ring"),
        (
            {"format": "pipewarden.keyring/1", "current": "k1", "keys": [{"id": "k1", "material": "AAAA"}]},
            "not 32 bytes",
        ),
        (
            {"format": "pipewarden.keyring/1", "current": "k1", "keys": [{"id": "k1", "material": "%%%"}]},
            "not base64",
        ),
        (
            {
                "format": "pipewarden.keyring/1",
                "current": "k2",
                "keys": [{"id": "k1", "material": base64.b64encode(bytes(32)).decode()}],
            },
            "current key 'k2' is missing",
        ),
        (
            {
                "format": "pipewarden.keyring/1",
                "current": "k1",
                "keys": [{"id": "k1", "retired": "2026-01-01T00:00:00Z"}],
            },
            "no usable key",
        ),
    ],
)
def test_empty_or_malformed_key_rings_are_errors_never_no_encryption(
    tmp_path: Path, doc: object, message: str
) -> None:
    path = tmp_path / "keyring.json"
    _write(path, doc)
    with pytest.raises(KeyRingError, match=message):
        FileKeyProvider(path)
    path.write_text("{not json")
    with pytest.raises(KeyRingError, match="not valid JSON"):
        FileKeyProvider(path)


def test_wrap_binds_the_context_and_the_key_id(ring_file: Path) -> None:
    ring = KeyRing.from_file(ring_file)
    dk = new_data_key()
    wrapped = ring.wrap(dk, context=CTX)
    assert ring.unwrap(wrapped, context=CTX, label="bert@1") == dk
    with pytest.raises(IntegrityError, match="bert@2"):
        ring.unwrap(wrapped, context=CTX.replace(b"1", b"2"), label="bert@2")


def test_rotation_keeps_old_keys_usable_until_retired(ring_file: Path) -> None:
    ring = KeyRing.from_file(ring_file)
    old = ring.current_id
    dk = new_data_key()
    wrapped = ring.wrap(dk, context=CTX)
    new = ring.rotate()
    assert new != old and ring.current_id == new
    assert ring_file.stat().st_mode & 0o777 == 0o600
    assert ring.wrap(dk, context=CTX).kek_id == new
    assert KeyRing.from_file(ring_file).unwrap(wrapped, context=CTX, label="bert@1") == dk
    with pytest.raises(KeyRingError, match="current key; rotate first"):
        ring.retire(new)
    ring.retire(old)
    reread = KeyRing.from_file(ring_file)
    assert base64.b64encode(dk).decode() not in ring_file.read_text()
    assert {k.kek_id: k.retired is not None for k in reread.keys()} == {old: True, new: False}
    with pytest.raises(KeyRingError, match="retired on"):
        reread.unwrap(wrapped, context=CTX, label="bert@1")
    with pytest.raises(KeyRingError, match="retired already"):
        reread.retire(old)
    with pytest.raises(KeyRingError, match="no key 'kek-nope'"):
        reread.retire("kek-nope")


def test_a_key_from_another_ring_is_named_as_missing(ring_file: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.json"
    FileKeyProvider.create(other)
    wrapped = KeyRing.from_file(ring_file).wrap(new_data_key(), context=CTX)
    with pytest.raises(KeyRingError, match="does not hold"):
        KeyRing.from_file(other).unwrap(wrapped, context=CTX, label="bert@1")


def test_same_key_id_with_other_material_fails_authentication(ring_file: Path) -> None:
    ring = KeyRing.from_file(ring_file)
    wrapped = ring.wrap(new_data_key(), context=CTX)
    doc = json.loads(ring_file.read_text())
    doc["keys"][0]["material"] = base64.b64encode(os.urandom(32)).decode()
    _write(ring_file, doc)
    with pytest.raises(IntegrityError, match="does not open"):
        KeyRing.from_file(ring_file).unwrap(wrapped, context=CTX, label="bert@1")


def test_env_provider_first_key_is_current_and_rotation_is_done_at_the_source() -> None:
    a, b = base64.b64encode(os.urandom(32)).decode(), base64.b64encode(os.urandom(32)).decode()
    env = {"PIPEWARDEN_KEYS": f"kek-b:{b}, kek-a:{a}"}
    provider = EnvKeyProvider(environ=env)
    assert provider.current_id() == "kek-b"
    old = EnvKeyProvider(environ={"PIPEWARDEN_KEYS": f"kek-a:{a}"})
    wrapped = old.wrap(b"k" * 32, context=CTX)
    assert provider.unwrap(wrapped, context=CTX, label="x") == b"k" * 32
    with pytest.raises(KeyRingError, match="put a new key first"):
        provider.rotate()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "not set or empty"),
        ("kek-a", "not 'key-id:base64-key'"),
        ("kek-a:%%%", "not base64"),
        (
            "kek-a:"
            + base64.b64encode(bytes(32)).decode()
            + ",kek-a:"
            + base64.b64encode(bytes(32)).decode(),
            "twice",
        ),
        ("kek-a:AAAA", "not 32 bytes"),
    ],
)
def test_env_provider_refuses_bad_values(value: str, message: str) -> None:
    with pytest.raises(KeyRingError, match=message):
        EnvKeyProvider(environ={"PIPEWARDEN_KEYS": value})


def test_sealed_values_carry_their_wrapped_key(ring_file: Path) -> None:
    ring = KeyRing.from_file(ring_file)
    box = ring.seal(b"totp secret", context=b"user:alice")
    assert b"totp secret" not in box
    assert ring.open(box, context=b"user:alice", label="alice") == b"totp secret"
    with pytest.raises(IntegrityError):
        ring.open(box, context=b"user:bob", label="bob")
    with pytest.raises(IntegrityError, match="malformed"):
        ring.open(b"junk", context=b"user:alice", label="alice")


def test_signing_key_files_are_private_and_never_overwritten(tmp_path: Path) -> None:
    key = SigningKey.generate()
    path = tmp_path / "me.key"
    key.save(path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert SigningKey.load(path).keyid == key.keyid
    assert PublicKey.load(tmp_path / "me.key.pub").keyid == key.keyid
    assert key.keyid.startswith("ed25519:") and "PRIVATE" not in repr(key)
    with pytest.raises(KeyRingError, match="never overwritten"):
        key.save(path)
    path.chmod(0o644)
    with pytest.raises(KeyRingError, match="chmod 600"):
        SigningKey.load(path)


def test_passphrase_protected_signing_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = SigningKey.generate()
    path = tmp_path / "svc.key"
    key.save(path, passphrase=b"correct horse")
    monkeypatch.delenv("PIPEWARDEN_KEY_PASSPHRASE", raising=False)
    with pytest.raises(KeyRingError, match="encrypted; set PIPEWARDEN_KEY_PASSPHRASE"):
        SigningKey.load(path)
    monkeypatch.setenv("PIPEWARDEN_KEY_PASSPHRASE", "wrong")
    with pytest.raises(KeyRingError, match="passphrase is wrong"):
        SigningKey.load(path)
    monkeypatch.setenv("PIPEWARDEN_KEY_PASSPHRASE", "correct horse")
    assert SigningKey.load(path).keyid == key.keyid


def test_keys_of_other_algorithms_are_refused(tmp_path: Path) -> None:
    private = ec.generate_private_key(ec.SECP256R1())
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path = tmp_path / "ec.key"
    path.write_bytes(pem)
    path.chmod(0o600)
    with pytest.raises(KeyRingError, match="not Ed25519"):
        SigningKey.load(path)
    pub = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(KeyRingError, match="not Ed25519"):
        PublicKey.from_pem(pub, source="ec.pub")
    with pytest.raises(KeyRingError, match="not a PEM public key"):
        PublicKey.from_pem(b"hello", source="junk.pub")


def test_an_empty_trust_set_is_an_error() -> None:
    with pytest.raises(KeyRingError, match="nothing can be verified"):
        TrustedKeys([], source="keys/trusted")
