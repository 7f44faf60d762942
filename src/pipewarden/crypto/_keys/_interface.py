"""What a key provider is: the holder of key-encryption keys (KEKs).

A provider never hands out a KEK. It wraps a data key under its current KEK
and unwraps a wrapped data key under whichever KEK wrapped it, binding a
context (the artifact's identity) as associated data. That is the whole
contract a cloud KMS or Vault's transit engine offers, so such a provider
implements these methods with calls to it and keeps no key material here.

A workspace uses one by naming it in ``config.yaml``
(``keys: {provider: "mycompany.keys:KmsProvider"}``); it is constructed as
``KmsProvider(workspace=ws)`` and reads its own settings from there.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass

from pipewarden.errors import KeyRingError

__all__ = ["KEK_ID", "KekInfo", "KeyProvider", "KeyRingError", "WrappedKey"]

KEK_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass(frozen=True, slots=True)
class WrappedKey:
    """A data key sealed under the KEK `kek_id`; `blob` is opaque to everyone but its provider."""

    kek_id: str
    blob: bytes

    def __post_init__(self) -> None:
        if not KEK_ID.match(self.kek_id):
            raise KeyRingError(f"{self.kek_id!r} is not a valid key id")
        if not self.blob:
            raise KeyRingError(f"wrapped key under {self.kek_id} is empty")


@dataclass(frozen=True, slots=True)
class KekInfo:
    """What may be shown about a KEK: never its material."""

    kek_id: str
    created: str
    current: bool
    retired: str | None


class KeyProvider(ABC):
    """A source of key-encryption keys. Implementations: a key file, an environment variable."""

    #: Where the keys live, for messages (a path, a variable name, a KMS key ARN).
    source: str

    @abstractmethod
    def current_id(self) -> str:
        """The KEK new data keys are wrapped under."""

    @abstractmethod
    def keys(self) -> tuple[KekInfo, ...]:
        """Every KEK this provider knows, retired ones included."""

    @abstractmethod
    def wrap(self, data_key: bytes, *, context: bytes) -> WrappedKey:
        """Seal `data_key` under the current KEK with `context` as associated data."""

    @abstractmethod
    def unwrap(self, wrapped: WrappedKey, *, context: bytes, label: str) -> bytes:
        """Open `wrapped`; `KeyRingError` if its KEK is unknown or retired, `IntegrityError` if
        the blob or the context does not match."""

    def rotate(self) -> str:
        """Make a new current KEK and return its id. Providers whose keys are managed
        elsewhere raise `KeyRingError` saying how to rotate there."""
        raise KeyRingError(f"{self.source}: this key provider's keys are rotated where they are kept")

    def retire(self, kek_id: str) -> None:
        """Destroy a KEK that nothing refers to any more (the caller checks that)."""
        raise KeyRingError(f"{self.source}: this key provider's keys are retired where they are kept")
