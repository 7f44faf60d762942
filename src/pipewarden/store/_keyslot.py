"""Key slots: a body's data key, wrapped under a KEK, as stored beside the body.

{"format": "pipewarden.keyslot/1", "kek": "<KEK id>", "wrapped": "<base64 of the provider's blob>"}
"""

from __future__ import annotations

import base64
import json

from pipewarden.crypto import WrappedKey
from pipewarden.errors import IntegrityError, KeyRingError

__all__ = ["keyslot_json", "parse_keyslot"]

_KEYSLOT_FORMAT = "pipewarden.keyslot/1"


def keyslot_json(wrapped: WrappedKey) -> bytes:
    doc = {
        "format": _KEYSLOT_FORMAT,
        "kek": wrapped.kek_id,
        "wrapped": base64.b64encode(wrapped.blob).decode(),
    }
    return (json.dumps(doc) + "\n").encode()


def parse_keyslot(raw: bytes, *, label: str) -> WrappedKey:
    try:
        doc = json.loads(raw)
        if doc["format"] != _KEYSLOT_FORMAT:
            raise ValueError("unknown format")
        return WrappedKey(kek_id=str(doc["kek"]), blob=base64.b64decode(doc["wrapped"], validate=True))
    except (KeyError, TypeError, ValueError, KeyRingError, json.JSONDecodeError) as exc:
        raise IntegrityError(f"{label}: malformed ({exc})") from None
