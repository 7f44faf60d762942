"""DSSE envelopes (Dead Simple Signing Envelope, secure-systems-lab/dsse, protocol v1).

The signature covers the pre-authentication encoding (PAE) of the payload
type and the payload, so neither can be swapped without breaking it:
``PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body``.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from pipewarden.crypto._signing import SigningKey, TrustedKeys
from pipewarden.errors import IntegrityError

__all__ = ["INTOTO_PAYLOAD_TYPE", "open_envelope", "pae", "sign_envelope"]

INTOTO_PAYLOAD_TYPE = "application/vnd.in-toto+json"


def pae(payload_type: str, payload: bytes) -> bytes:
    kind = payload_type.encode()
    return b"DSSEv1 %d %b %d %b" % (len(kind), kind, len(payload), payload)


def sign_envelope(payload: bytes, *, payload_type: str, key: SigningKey) -> bytes:
    """A DSSE envelope (JSON bytes) with one Ed25519 signature over `payload`."""
    envelope = {
        "payloadType": payload_type,
        "payload": base64.b64encode(payload).decode(),
        "signatures": [
            {"keyid": key.keyid, "sig": base64.b64encode(key.sign(pae(payload_type, payload))).decode()}
        ],
    }
    return (json.dumps(envelope, indent=2) + "\n").encode()


def _b64(value: Any, *, label: str, what: str) -> bytes:
    if not isinstance(value, str):
        raise IntegrityError(f"{label}: envelope {what} is missing")
    try:
        return base64.b64decode(value, validate=True)
    except ValueError:  # binascii.Error, and non-ASCII text
        raise IntegrityError(f"{label}: envelope {what} is not valid base64") from None


def open_envelope(data: bytes, *, trusted: TrustedKeys, payload_type: str, label: str) -> tuple[bytes, str]:
    """Verify an envelope and return (payload, signer key id).

    Raises `IntegrityError` naming `label` unless a signature by a trusted key
    verifies over exactly this payload type and payload.
    """
    try:
        envelope = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise IntegrityError(
            f"{label}: signature envelope is not valid JSON (altered or truncated)"
        ) from None
    if not isinstance(envelope, dict):
        raise IntegrityError(f"{label}: signature envelope is not a JSON object")
    if envelope.get("payloadType") != payload_type:
        raise IntegrityError(
            f"{label}: payload type is {envelope.get('payloadType')!r}, expected {payload_type!r}"
        )
    payload = _b64(envelope.get("payload"), label=label, what="payload")
    signatures = envelope.get("signatures")
    if not isinstance(signatures, list) or not signatures:
        raise IntegrityError(f"{label}: envelope carries no signature")
    message = pae(payload_type, payload)
    unknown: list[str] = []
    for entry in signatures:
        if not isinstance(entry, dict):
            continue
        keyid = entry.get("keyid")
        sig = _b64(entry.get("sig"), label=label, what="signature")
        key = trusted.get(keyid) if isinstance(keyid, str) else None
        if key is None:
            unknown.append(str(keyid))
            continue
        key.verify(sig, message, label=label)
        return payload, key.keyid
    raise IntegrityError(
        f"{label}: signed by {', '.join(unknown) or 'no key'}, which is not among the "
        f"{len(trusted)} trusted key(s) of {trusted.source}"
    )
