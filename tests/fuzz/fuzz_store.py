"""Coverage-guided fuzzing of everything that reads bytes back from an artifact store.

    python tests/fuzz/fuzz_store.py -max_total_time=60

An attacker who can write to the bucket or folder controls these bytes. The
first input byte picks a reader, the rest is its input:

- ``body``: `decrypt_stream` over a body (the seeds are real encrypted bodies);
- ``envelope``: `open_envelope` over a DSSE envelope (seeds: real signed manifests);
- ``manifest``: `Artifact.from_statement` over a statement's payload;
- ``model-manifest``: `ModelManifest.from_statement` over a model signature's payload;
- ``keyslot``: `parse_keyslot`, then unwrapping with a real key ring.

The contract: each reader returns or raises its part's documented error
(`IntegrityError`, `KeyRingError`), never anything else; and a forged input
never verifies. libFuzzer flags pass through, as with fuzz_scan.py.
"""

from __future__ import annotations

import io
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root

import atheris

with atheris.instrument_imports(include=["pipewarden"]):
    from pipewarden._canonical import canonical_json
    from pipewarden.crypto import (
        INTOTO_PAYLOAD_TYPE,
        FileKeyProvider,
        KeyRing,
        SigningKey,
        TrustedKeys,
        decrypt_stream,
        encrypt_stream,
        open_envelope,
        sign_envelope,
        sign_model,
    )
    from pipewarden.crypto._model import ModelManifest
    from pipewarden.errors import IntegrityError, KeyRingError
    from pipewarden.store._keyslot import keyslot_json, parse_keyslot
    from pipewarden.store._records import Artifact, ParentRef, ScanVerdict

KEY = bytes(range(32))
CONTEXT = b'{"artifact":"fuzz","uid":"00000000000000000000000000000000"}'
SIGNER = SigningKey.generate()
TRUSTED = TrustedKeys([SIGNER.public], source="fuzz")
_TMP = Path(tempfile.mkdtemp(prefix="pipewarden-fuzz-store-"))
FileKeyProvider.create(_TMP / "keyring.json")
RING = KeyRing.from_file(_TMP / "keyring.json")
ARTIFACT = Artifact(
    name="fuzz",
    version=1,
    uid="0" * 32,
    digest="a" * 64,
    size=3,
    media_type="text/csv",
    created_by="f",
    created_at="2026-01-01T00:00:00Z",
    parents=(ParentRef(name="p", version=1, digest="b" * 64),),
    scan=ScanVerdict(scanned=True, max_severity=None, findings=0, threshold="medium"),
    chunk_size=64,
)


def _body(data: bytes) -> None:
    decrypt_stream(io.BytesIO(data), None, key=KEY, expect_context=CONTEXT, label="fuzz@1 body")


def _envelope(data: bytes) -> None:
    payload, _ = open_envelope(data, trusted=TRUSTED, payload_type=INTOTO_PAYLOAD_TYPE, label="e")
    if payload not in _SIGNED:
        raise AssertionError("an envelope that was never signed verified")


def _manifest(data: bytes) -> None:
    Artifact.from_statement(data, signer="k", label="fuzz@1 manifest")


def _model_manifest(data: bytes) -> None:
    ModelManifest.from_statement(data, signer="k", label="m.pwsig")


def _keyslot(data: bytes) -> None:
    RING.unwrap(parse_keyslot(data, label="k"), context=ARTIFACT.key_context(), label="k")


READERS: list[tuple[str, Callable[[bytes], None]]] = [
    ("body", _body),
    ("envelope", _envelope),
    ("manifest", _manifest),
    ("model-manifest", _model_manifest),
    ("keyslot", _keyslot),
]


def _seeds() -> tuple[list[bytes], set[bytes]]:
    bodies = []
    for size, chunk in ((0, 16), (5, 16), (32, 16), (100, 7)):
        out = io.BytesIO()
        encrypt_stream(io.BytesIO(bytes(range(size))), out, key=KEY, context=CONTEXT, chunk_size=chunk)
        bodies.append(out.getvalue())
    statement = canonical_json(ARTIFACT.to_statement())
    model = _TMP / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    (model / "w.bin").write_bytes(bytes(100))
    sig, manifest = sign_model(model, key=SIGNER)
    model_statement = canonical_json(manifest.to_statement())
    envelopes = [sign_envelope(statement, payload_type=INTOTO_PAYLOAD_TYPE, key=SIGNER), sig.read_bytes()]
    keyslot = keyslot_json(RING.wrap(KEY, context=ARTIFACT.key_context()))
    per_reader = [bodies, envelopes, [statement], [model_statement], [keyslot]]
    seeds = [bytes([i]) + s for i, group in enumerate(per_reader) for s in group]
    return seeds, {statement, model_statement}


SEEDS, _SIGNED = _seeds()


def check(raw: bytes) -> None:
    """Run one input through the reader its first byte picks; only documented errors may escape."""
    if not raw:
        return
    _, reader = READERS[raw[0] % len(READERS)]
    try:
        reader(raw[1:])
    except (IntegrityError, KeyRingError):
        pass


def main() -> None:
    argv = list(sys.argv)
    if not any(a.startswith("-timeout=") for a in argv[1:]):
        argv.append("-timeout=10")
    folders = [a for a in argv[1:] if not a.startswith("-")]
    if not folders:
        folders = [str(Path(tempfile.gettempdir(), "pipewarden-fuzz-corpus", "store"))]
        argv.append(folders[0])
    corpus = Path(folders[0])
    if not corpus.is_file():
        corpus.mkdir(parents=True, exist_ok=True)
        for i, seed in enumerate(SEEDS):
            (corpus / f"seed-{i:03d}").write_bytes(seed)
    print("fuzz_store.py: readers " + ", ".join(name for name, _ in READERS), file=sys.stderr, flush=True)
    atheris.Setup(argv, check)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
