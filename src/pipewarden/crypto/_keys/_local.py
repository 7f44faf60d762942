"""What the two local providers share: KEKs held in memory, AES-256-GCM key wrapping."""

from __future__ import annotations

from abc import ABC

from pipewarden.crypto._keys._interface import KekInfo, KeyProvider, KeyRingError, WrappedKey
from pipewarden.crypto._stream import KEY_BYTES, open_sealed, seal

__all__ = ["LocalKeys", "wrap_aad"]

_WRAP_DOMAIN = b"pipewarden/keyslot/v1\x00"


def wrap_aad(kek_id: str, context: bytes) -> bytes:
    """Associated data for wrapping: binds the KEK id too, so a blob relabelled to another id fails."""
    return _WRAP_DOMAIN + kek_id.encode() + b"\x00" + context


class LocalKeys(KeyProvider, ABC):
    """A provider whose KEKs are bytes in this process (a key file, an environment variable)."""

    def __init__(self, *, source: str, current: str, infos: tuple[KekInfo, ...], material: dict[str, bytes]):
        self.source = source
        self._set(current, infos, material)

    def _set(self, current: str, infos: tuple[KekInfo, ...], material: dict[str, bytes]) -> None:
        source = self.source
        live = {i.kek_id for i in infos if i.retired is None}
        if not live:
            raise KeyRingError(
                f"{source}: key ring holds no usable key; an empty key ring never means "
                "'no encryption' (run 'pipewarden init' or add a key)"
            )
        if current not in live:
            raise KeyRingError(f"{source}: current key {current!r} is missing or retired")
        for kek_id in live:
            if len(material.get(kek_id, b"")) != KEY_BYTES:
                raise KeyRingError(f"{source}: key {kek_id!r} is not {KEY_BYTES} bytes")
        self._current = current
        self._infos = infos
        self._material = material

    def current_id(self) -> str:
        return self._current

    def keys(self) -> tuple[KekInfo, ...]:
        return self._infos

    def wrap(self, data_key: bytes, *, context: bytes) -> WrappedKey:
        kek = self._material[self._current]
        return WrappedKey(
            kek_id=self._current, blob=seal(kek, data_key, aad=wrap_aad(self._current, context))
        )

    def unwrap(self, wrapped: WrappedKey, *, context: bytes, label: str) -> bytes:
        info = next((i for i in self._infos if i.kek_id == wrapped.kek_id), None)
        if info is None:
            raise KeyRingError(
                f"{label}: sealed under key {wrapped.kek_id!r}, which {self.source} does not hold"
            )
        if info.retired is not None:
            raise KeyRingError(
                f"{label}: sealed under key {wrapped.kek_id!r}, which was retired on {info.retired}"
            )
        kek = self._material[wrapped.kek_id]
        data_key = open_sealed(kek, wrapped.blob, aad=wrap_aad(wrapped.kek_id, context), label=label)
        if len(data_key) != KEY_BYTES:
            raise KeyRingError(f"{label}: unwrapped data key is not {KEY_BYTES} bytes")
        return data_key
