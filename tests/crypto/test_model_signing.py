"""Signing model folders: DSSE + in-toto, and verification that names every changed file."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from pathlib import Path

import pytest

from pipewarden.crypto import (
    INTOTO_PAYLOAD_TYPE,
    SigningKey,
    TrustedKeys,
    sign_model,
    verify_model,
)
from pipewarden.crypto._dsse import pae
from pipewarden.errors import ConfigError, IntegrityError

MiB = 1 << 20


@pytest.fixture
def key() -> SigningKey:
    return SigningKey.generate()


@pytest.fixture
def trusted(key: SigningKey) -> TrustedKeys:
    return TrustedKeys([key.public], source="test")


@pytest.fixture
def model(tmp_path: Path) -> Path:
    root = tmp_path / "bert"
    (root / "tokenizer").mkdir(parents=True)
    (root / "config.json").write_text('{"hidden": 768}')
    (root / "model.safetensors").write_bytes(os.urandom(3 * MiB + 123))
    (root / "tokenizer" / "vocab.txt").write_text("a\nb\nc\n")
    (root / "tokenizer" / "merges.txt").write_text("a b\n")
    (root / ".git").mkdir()
    (root / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    return root


def changes_of(excinfo: pytest.ExceptionInfo[IntegrityError]) -> set[str]:
    return set(excinfo.value.changes)


def test_pae_matches_the_dsse_specification_example() -> None:
    # The worked example in the DSSE v1 protocol description (secure-systems-lab/dsse, protocol.md).
    assert pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )


def test_sign_writes_an_in_toto_statement_in_a_dsse_envelope(
    model: Path, key: SigningKey, trusted: TrustedKeys
) -> None:
    sig, manifest = sign_model(model, key=key)
    assert sig == model.with_name("bert.pwsig")
    envelope = json.loads(sig.read_text())
    assert envelope["payloadType"] == INTOTO_PAYLOAD_TYPE
    statement = json.loads(base64.b64decode(envelope["payload"]))
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    assert statement["subject"][0]["name"] == "bert"
    files = {f["path"]: f for f in statement["predicate"]["files"]}
    assert set(files) == {"config.json", "model.safetensors", "tokenizer/merges.txt", "tokenizer/vocab.txt"}
    # Files no larger than a shard carry the plain SHA-256 of their bytes.
    assert files["config.json"]["digest"] == hashlib.sha256(b'{"hidden": 768}').hexdigest()
    assert envelope["signatures"][0]["keyid"] == key.keyid
    assert verify_model(model, trusted=trusted).files == manifest.files


def test_verify_names_every_modified_added_removed_and_renamed_file(
    model: Path, key: SigningKey, trusted: TrustedKeys
) -> None:
    sign_model(model, key=key)
    with open(model / "model.safetensors", "r+b") as fh:
        fh.seek(2 * MiB)
        byte = fh.read(1)
        fh.seek(2 * MiB)
        fh.write(bytes([byte[0] ^ 1]))
    (model / "config.json").write_text('{"hidden": 769}')
    (model / "tokenizer" / "merges.txt").unlink()
    (model / "tokenizer" / "vocab.txt").rename(model / "vocab.txt")
    (model / "extra.pkl").write_bytes(b"\x80\x04N.")
    with pytest.raises(IntegrityError, match="5 change") as excinfo:
        verify_model(model, trusted=trusted)
    assert changes_of(excinfo) == {
        "modified: model.safetensors (contents differ)",
        "modified: config.json (contents differ)",
        "removed: tokenizer/merges.txt",
        "renamed: tokenizer/vocab.txt (now vocab.txt)",
        "added: extra.pkl",
    }


def test_large_files_are_hashed_in_shards_and_a_change_in_any_shard_is_caught(
    model: Path, key: SigningKey, trusted: TrustedKeys
) -> None:
    sign_model(model, key=key, shard_size=MiB)
    statement = json.loads(base64.b64decode(json.loads(model.with_name("bert.pwsig").read_text())["payload"]))
    assert statement["predicate"]["shard_size"] == MiB
    verify_model(model, trusted=trusted)
    for offset in (0, MiB - 1, MiB, 3 * MiB + 122):
        path = model / "model.safetensors"
        data = bytearray(path.read_bytes())
        data[offset] ^= 0xFF
        path.write_bytes(bytes(data))
        with pytest.raises(IntegrityError) as excinfo:
            verify_model(model, trusted=trusted)
        assert changes_of(excinfo) == {"modified: model.safetensors (contents differ)"}
        data[offset] ^= 0xFF
        path.write_bytes(bytes(data))
    verify_model(model, trusted=trusted)


def test_a_size_change_is_reported_as_such(model: Path, key: SigningKey, trusted: TrustedKeys) -> None:
    sign_model(model, key=key)
    with open(model / "config.json", "ab") as fh:
        fh.write(b"\n")
    with pytest.raises(IntegrityError) as excinfo:
        verify_model(model, trusted=trusted)
    assert changes_of(excinfo) == {"modified: config.json (size 15 -> 16)"}


def _envelope(model: Path) -> tuple[Path, dict[str, object]]:
    sig = model.with_name("bert.pwsig")
    return sig, json.loads(sig.read_text())


def test_tampered_signature_payload_or_envelope_is_refused(
    model: Path, key: SigningKey, trusted: TrustedKeys
) -> None:
    sign_model(model, key=key)
    sig, env = _envelope(model)
    original = sig.read_bytes()

    raw_sig = bytearray(base64.b64decode(env["signatures"][0]["sig"]))  # type: ignore[index]
    raw_sig[5] ^= 1
    env["signatures"][0]["sig"] = base64.b64encode(bytes(raw_sig)).decode()  # type: ignore[index]
    sig.write_text(json.dumps(env))
    with pytest.raises(IntegrityError, match="does not match"):
        verify_model(model, trusted=trusted)

    # A payload that says the modified file is fine, under the old signature.
    sig.write_bytes(original)
    _, env = _envelope(model)
    statement = json.loads(base64.b64decode(env["payload"]))  # type: ignore[arg-type]
    statement["predicate"]["files"][0]["digest"] = "0" * 64
    env["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    sig.write_text(json.dumps(env))
    with pytest.raises(IntegrityError, match="does not match"):
        verify_model(model, trusted=trusted)

    sig.write_bytes(original[:-40])
    with pytest.raises(IntegrityError, match="not valid JSON"):
        verify_model(model, trusted=trusted)
    sig.write_bytes(original)
    _, env = _envelope(model)
    env["payloadType"] = "text/plain"
    sig.write_text(json.dumps(env))
    with pytest.raises(IntegrityError, match="payload type"):
        verify_model(model, trusted=trusted)


def test_a_signature_by_an_untrusted_key_is_refused(model: Path, key: SigningKey) -> None:
    sign_model(model, key=key)
    stranger = TrustedKeys([SigningKey.generate().public], source="keys/trusted")
    with pytest.raises(IntegrityError, match="not among the 1 trusted key"):
        verify_model(model, trusted=stranger)


def test_missing_signature_or_model_is_a_failure_not_a_pass(tmp_path: Path, trusted: TrustedKeys) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "w.bin").write_bytes(b"x")
    with pytest.raises(IntegrityError, match="signature cannot be read"):
        verify_model(tmp_path / "m", trusted=trusted)
    with pytest.raises(IntegrityError, match="no such file"):
        verify_model(tmp_path / "gone", trusted=trusted)


def test_symbolic_links_are_refused_when_signing_and_reported_when_verifying(
    model: Path, key: SigningKey, trusted: TrustedKeys, tmp_path: Path
) -> None:
    outside = tmp_path / "outside.bin"
    outside.write_bytes(b"not part of the model")
    (model / "link.bin").symlink_to(outside)
    with pytest.raises(ConfigError, match=r"link\.bin: symbolic link"):
        sign_model(model, key=key)
    sign_model(model, key=key, follow_symlinks=True)
    verify_model(model, trusted=trusted)
    outside.write_bytes(b"changed behind the link")
    with pytest.raises(IntegrityError) as excinfo:
        verify_model(model, trusted=trusted)
    assert changes_of(excinfo) == {"modified: link.bin (size 21 -> 23)"}
    (model / "link.bin").unlink()
    sign_model(model, key=key)
    (model / "sneaky.bin").symlink_to(outside)
    with pytest.raises(IntegrityError) as excinfo:
        verify_model(model, trusted=trusted)
    assert any(c.startswith("unsigned: sneaky.bin (symbolic link") for c in excinfo.value.changes)


def test_single_file_blake3_ignore_patterns_and_signature_inside_the_folder(
    model: Path, key: SigningKey, trusted: TrustedKeys
) -> None:
    single = model / "model.safetensors"
    sig, _ = sign_model(single, key=key, algorithm="blake3")
    assert sig.name == "model.safetensors.pwsig"
    verify_model(single, trusted=trusted)

    inside = model / "SIGNATURE.pwsig"
    sign_model(model, key=key, output=inside, ignore=(".git", "*.log"))
    (model / "train.log").write_text("epoch 1")
    (model / ".git" / "HEAD").write_text("changed")
    verify_model(model, trusted=trusted, signature=inside)


def test_nothing_to_sign_and_unknown_algorithms_are_errors(tmp_path: Path, key: SigningKey) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no files to sign"):
        sign_model(tmp_path / "empty", key=key)
    (tmp_path / "empty" / "a").write_bytes(b"a")
    with pytest.raises(ConfigError, match="unknown hash algorithm 'md5'"):
        sign_model(tmp_path / "empty", key=key, algorithm="md5")
    with pytest.raises(ConfigError, match="no such file"):
        sign_model(tmp_path / "nope", key=key)


def test_what_cannot_be_read_is_named_when_signing_and_fails_verification(
    model: Path, key: SigningKey, trusted: TrustedKeys
) -> None:
    (model / "loop").symlink_to(model / "loop")
    with pytest.raises(ConfigError, match=r"loop: cannot be read"):
        sign_model(model, key=key, follow_symlinks=True)
    (model / "loop").unlink()
    sign_model(model, key=key, follow_symlinks=True)
    (model / "loop").symlink_to(model / "loop")
    with pytest.raises(IntegrityError, match=r"loop: cannot be read"):
        verify_model(model, trusted=trusted)
