"""KEKs from an environment variable, for containers whose secrets arrive that way.

``PIPEWARDEN_KEYS="kek-2026b:<base64 32 bytes>,kek-2026a:<base64 32 bytes>"``: the
first key is current; the others still open what they sealed. To rotate, put
a new key first, run ``pipewarden keys reseal`` (which re-seals every data
key under it), then drop the old one.
"""

from __future__ import annotations

import base64
import os

from pipewarden.crypto._keys._interface import KEK_ID, KekInfo, KeyRingError
from pipewarden.crypto._keys._local import LocalKeys

__all__ = ["ENV_VAR", "EnvKeyProvider"]

ENV_VAR = "PIPEWARDEN_KEYS"


class EnvKeyProvider(LocalKeys):
    """KEKs parsed from `variable`; rotation and retirement happen where the variable is set."""

    def __init__(self, variable: str = ENV_VAR, *, environ: dict[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        value = env.get(variable, "").strip()
        if not value:
            raise KeyRingError(
                f"${variable}: not set or empty; an empty key ring never means 'no encryption'"
            )
        infos: list[KekInfo] = []
        material: dict[str, bytes] = {}
        for i, item in enumerate(value.split(",")):
            kek_id, sep, b64 = item.strip().partition(":")
            if not sep or not KEK_ID.match(kek_id):
                raise KeyRingError(f"${variable}: entry {i + 1} is not 'key-id:base64-key'")
            if kek_id in material:
                raise KeyRingError(f"${variable}: key id {kek_id!r} appears twice")
            try:
                material[kek_id] = base64.b64decode(b64, validate=True)
            except ValueError:  # binascii.Error, and non-ASCII text
                raise KeyRingError(f"${variable}: key {kek_id!r} is not base64") from None
            infos.append(KekInfo(kek_id=kek_id, created="", current=i == 0, retired=None))
        super().__init__(
            source=f"${variable}", current=infos[0].kek_id, infos=tuple(infos), material=material
        )

    def rotate(self) -> str:
        raise KeyRingError(
            f"{self.source}: keys from the environment are rotated there: put a new key first in "
            f"{self.source} and run 'pipewarden keys reseal'"
        )
