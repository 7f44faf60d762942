"""Checkpoints: a signed statement of the log's tree head at a size, kept inside and outside the log.

    {"v": "pipewarden.checkpoint/1", "log": "<log id>", "size": 1024,
     "root": "<hex RFC 6962 tree head over the first `size` record hashes>", "time": "...Z"}

in a DSSE envelope signed with the server's Ed25519 key. A later checkpoint
must extend an earlier one (an RFC 6962 consistency proof shows it), so a log
cannot be rewritten between two checkpoints without one of them failing.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from pipewarden._canonical import canonical_json
from pipewarden.crypto import SigningKey, TrustedKeys, open_envelope, sign_envelope
from pipewarden.errors import IntegrityError

__all__ = ["CHECKPOINT_PAYLOAD_TYPE", "Checkpoint"]

CHECKPOINT_PAYLOAD_TYPE = "application/vnd.pipewarden.checkpoint+json"
_FORMAT = "pipewarden.checkpoint/1"
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """The tree head of log `log` over its first `size` records, at `time`; `signer` once verified."""

    log: str
    size: int
    root: bytes
    time: str
    signer: str = ""

    def payload(self) -> bytes:
        doc = {"v": _FORMAT, "log": self.log, "size": self.size, "root": self.root.hex(), "time": self.time}
        return canonical_json(doc)

    @classmethod
    def make(cls, *, log: str, size: int, root: bytes) -> Checkpoint:
        when = datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
        return cls(log=log, size=size, root=root, time=when)

    def sign(self, key: SigningKey) -> bytes:
        """The DSSE envelope to store in the log and to export outside it."""
        return sign_envelope(self.payload(), payload_type=CHECKPOINT_PAYLOAD_TYPE, key=key)

    @classmethod
    def open(cls, envelope: bytes, *, trusted: TrustedKeys, label: str) -> Checkpoint:
        """Verify a signed checkpoint and return it; `IntegrityError` naming `label` otherwise."""
        payload, signer = open_envelope(
            envelope, trusted=trusted, payload_type=CHECKPOINT_PAYLOAD_TYPE, label=label
        )
        try:
            doc = json.loads(payload)
            if doc["v"] != _FORMAT or not _HEX64.match(doc["root"]):
                raise ValueError("not a pipewarden checkpoint")
            size = doc["size"]
            if not isinstance(size, int) or isinstance(size, bool) or size < 1:
                raise ValueError(f"size {size!r}")
            return cls(
                log=str(doc["log"]),
                size=size,
                root=bytes.fromhex(doc["root"]),
                time=str(doc["time"]),
                signer=signer,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise IntegrityError(f"{label}: signed checkpoint is malformed ({exc})") from None
