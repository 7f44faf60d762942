"""Everything that reads untrusted bytes in the crypto and store parts fails only with its own error.

Bodies, envelopes, statements, key slots, key rings and workspace files come
from storage an attacker may write to. Whatever they hold, the reader raises
the documented error (which names the input) and nothing else.
"""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from pipewarden.crypto import INTOTO_PAYLOAD_TYPE, SigningKey, TrustedKeys, decrypt_stream, open_envelope
from pipewarden.crypto._model import ModelManifest
from pipewarden.errors import ConfigError, IntegrityError, KeyRingError
from pipewarden.store._keyslot import parse_keyslot as _parse_keyslot
from pipewarden.store._records import Artifact
from pipewarden.workspace import WorkspaceConfig

KEY = SigningKey.generate()
TRUSTED = TrustedKeys([KEY.public], source="test")
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)


@given(st.binary(max_size=400))
def test_decrypt_stream_of_arbitrary_bytes_raises_only_integrity_errors(data: bytes) -> None:
    try:
        decrypt_stream(io.BytesIO(data), None, key=bytes(32), expect_context=b"ctx", label="x@1 body")
    except IntegrityError as exc:
        assert str(exc).startswith("x@1 body")


@given(st.binary(max_size=300) | json_values.map(lambda v: json.dumps(v).encode()))
def test_open_envelope_of_arbitrary_input_raises_only_integrity_errors(data: bytes) -> None:
    try:
        open_envelope(data, trusted=TRUSTED, payload_type=INTOTO_PAYLOAD_TYPE, label="m.pwsig")
    except IntegrityError as exc:
        assert str(exc).startswith("m.pwsig")


@given(
    payload_type=st.text(max_size=30),
    payload=st.binary(max_size=50),
    sig=st.binary(max_size=80),
    keyid=st.text(max_size=70),
)
def test_envelopes_with_arbitrary_fields_never_verify(
    payload_type: str, payload: bytes, sig: bytes, keyid: str
) -> None:
    envelope = {
        "payloadType": payload_type,
        "payload": base64.b64encode(payload).decode(),
        "signatures": [{"keyid": keyid, "sig": base64.b64encode(sig).decode()}],
    }
    try:
        open_envelope(json.dumps(envelope).encode(), trusted=TRUSTED, payload_type=payload_type, label="e")
    except IntegrityError:
        return
    raise AssertionError("an envelope nobody signed verified")


@given(json_values)
def test_statements_of_any_shape_are_refused_cleanly(value: object) -> None:
    raw = json.dumps(value).encode()
    for parse in (
        lambda: ModelManifest.from_statement(raw, signer="k", label="m.pwsig"),
        lambda: Artifact.from_statement(raw, signer="k", label="a@1 manifest"),
    ):
        try:
            parse()
        except IntegrityError:
            continue
        raise AssertionError(f"{value!r} was accepted as a statement")


@given(st.binary(max_size=200) | json_values.map(lambda v: json.dumps(v).encode()))
def test_keyslots_of_any_content_raise_only_integrity_errors(raw: bytes) -> None:
    try:
        _parse_keyslot(raw, label="a@1 keyslot")
    except IntegrityError as exc:
        assert str(exc).startswith("a@1 keyslot")


@given(st.binary(max_size=300) | json_values.map(lambda v: json.dumps(v).encode()))
def test_key_files_of_any_content_raise_only_key_ring_errors(raw: bytes) -> None:
    import tempfile

    from pipewarden.crypto import FileKeyProvider

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "keyring.json"
        path.write_bytes(raw)
        path.chmod(0o600)
        try:
            FileKeyProvider(path)
        except KeyRingError:
            pass


@given(st.text(max_size=200) | json_values.map(json.dumps))
def test_workspace_configuration_of_any_content_raises_only_config_errors(text: str) -> None:
    try:
        WorkspaceConfig.from_yaml(text, source="config.yaml")
    except ConfigError as exc:
        assert str(exc).startswith("config.yaml") or "not" in str(exc)


@given(
    current=json_values,
    keys=st.lists(
        st.dictionaries(st.sampled_from(["id", "material", "retired", "created"]), json_values), max_size=3
    ),
)
def test_key_files_in_the_right_format_with_wrong_fields_raise_only_key_ring_errors(
    current: object, keys: list[dict[str, object]]
) -> None:
    test_key_files_of_any_content_raise_only_key_ring_errors.hypothesis.inner_test(  # type: ignore[attr-defined]
        json.dumps({"format": "pipewarden.keyring/1", "current": current, "keys": keys}).encode()
    )


@given(
    predicate=st.dictionaries(
        st.sampled_from(
            [
                "name",
                "version",
                "uid",
                "size",
                "media_type",
                "created_by",
                "created_at",
                "parents",
                "scan",
                "encryption",
                "hash_algorithm",
                "shard_size",
                "ignore",
                "follow_symlinks",
                "files",
            ]
        ),
        json_values,
    ),
    subject=json_values,
)
def test_statements_of_the_right_type_with_wrong_fields_are_refused_cleanly(
    predicate: dict[str, object], subject: object
) -> None:
    for predicate_type in ("urn:pipewarden:artifact:v1", "urn:pipewarden:model-manifest:v1"):
        statement = {
            "_type": "https://in-toto.io/Statement/v1",
            "predicateType": predicate_type,
            "subject": subject,
            "predicate": predicate,
        }
        test_statements_of_any_shape_are_refused_cleanly.hypothesis.inner_test(statement)  # type: ignore[attr-defined]


@given(text=st.text(min_size=1, max_size=20).filter(lambda t: not t.isascii()))
def test_non_ascii_base64_fields_are_integrity_errors(text: str) -> None:
    # Found by tests/fuzz/fuzz_store.py: base64 of a str with non-ASCII characters raises a plain ValueError.
    envelope = {
        "payloadType": INTOTO_PAYLOAD_TYPE,
        "payload": text,
        "signatures": [{"keyid": "k", "sig": text}],
    }
    try:
        open_envelope(
            json.dumps(envelope).encode(), trusted=TRUSTED, payload_type=INTOTO_PAYLOAD_TYPE, label="e"
        )
    except IntegrityError:
        return
    raise AssertionError("accepted")
