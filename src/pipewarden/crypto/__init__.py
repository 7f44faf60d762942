"""Keys, envelope encryption, Ed25519 signatures and signed model manifests.

Key hierarchy: a key provider holds key-encryption keys (KEKs); every
artifact body gets a fresh 256-bit data key, encrypted with AES-256-GCM in
chunks (`encrypt_stream`), and the data key is sealed under the current KEK
with the artifact's identity as associated data (`KeyRing.wrap`). Rotating a
KEK re-seals data keys, never bodies.

    >>> from pipewarden.crypto import SigningKey, TrustedKeys, sign_model, verify_model
    >>> key = SigningKey.generate()
    >>> sig, manifest = sign_model("models/bert", key=key)
    >>> verify_model("models/bert", trusted=TrustedKeys([key.public], source="me"))
"""

from __future__ import annotations

from pipewarden.crypto._dsse import INTOTO_PAYLOAD_TYPE, open_envelope, sign_envelope
from pipewarden.crypto._files import write_atomic
from pipewarden.crypto._hashing import ALGORITHMS, DEFAULT_SHARD_SIZE, FileDigest
from pipewarden.crypto._keyring import KeyRing
from pipewarden.crypto._keys._env import ENV_VAR, EnvKeyProvider
from pipewarden.crypto._keys._file import FileKeyProvider
from pipewarden.crypto._keys._interface import KekInfo, KeyProvider, WrappedKey
from pipewarden.crypto._model import (
    SIGNATURE_SUFFIX,
    FileChange,
    ModelManifest,
    default_signature_path,
    sign_model,
    verify_model,
)
from pipewarden.crypto._signing import PASSPHRASE_ENV, PublicKey, SigningKey, TrustedKeys
from pipewarden.crypto._stream import (
    DEFAULT_CHUNK_SIZE,
    StreamHeader,
    decrypt_stream,
    encrypt_stream,
    new_data_key,
    open_sealed,
    seal,
)

__all__ = [
    "ALGORITHMS",
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_SHARD_SIZE",
    "ENV_VAR",
    "INTOTO_PAYLOAD_TYPE",
    "PASSPHRASE_ENV",
    "SIGNATURE_SUFFIX",
    "EnvKeyProvider",
    "FileChange",
    "FileDigest",
    "FileKeyProvider",
    "KekInfo",
    "KeyProvider",
    "KeyRing",
    "ModelManifest",
    "PublicKey",
    "SigningKey",
    "StreamHeader",
    "TrustedKeys",
    "WrappedKey",
    "decrypt_stream",
    "default_signature_path",
    "encrypt_stream",
    "new_data_key",
    "open_envelope",
    "open_sealed",
    "seal",
    "sign_envelope",
    "sign_model",
    "verify_model",
    "write_atomic",
]
