"""Checkpoints: signed tree heads that verify only under a trusted key, and that later ones extend."""

from __future__ import annotations

import base64
import json

import pytest

from pipewarden.audit import Checkpoint, Record, consistency_proof, root, verify_chain, verify_consistency
from pipewarden.crypto import SigningKey, TrustedKeys
from pipewarden.errors import IntegrityError

SERVER = SigningKey.generate()
TRUSTED = TrustedKeys([SERVER.public], source="server.pub")


def log(n: int) -> list[Record]:
    records: list[Record] = []
    for i in range(n):
        records.append(Record.after(records[-1] if records else None, b"event %d" % i))
    return records


def test_a_signed_checkpoint_round_trips_and_checks_the_log() -> None:
    records = log(40)
    hashes = [r.hash for r in records]
    envelope = Checkpoint.make(log="ws-1", size=32, root=root(hashes[:32])).sign(SERVER)
    cp = Checkpoint.open(envelope, trusted=TRUSTED, label="checkpoint 32")
    assert (cp.log, cp.size, cp.signer) == ("ws-1", 32, SERVER.keyid)
    assert verify_chain(records, checkpoint_size=cp.size, checkpoint_root=cp.root).problem is None
    # A later checkpoint extends the earlier one; the proof shows it without the records.
    later = Checkpoint.open(
        Checkpoint.make(log="ws-1", size=40, root=root(hashes)).sign(SERVER),
        trusted=TRUSTED,
        label="checkpoint 40",
    )
    verify_consistency(cp.size, later.size, cp.root, later.root, consistency_proof(cp.size, hashes))


def test_forged_or_altered_checkpoints_are_refused() -> None:
    envelope = Checkpoint.make(log="ws-1", size=8, root=root([r.hash for r in log(8)])).sign(SERVER)
    doc = json.loads(envelope)
    payload = json.loads(base64.b64decode(doc["payload"]))
    payload["size"] = 4
    doc["payload"] = base64.b64encode(json.dumps(payload).encode()).decode()
    with pytest.raises(IntegrityError, match=r"checkpoint 8: signature by .* does not match"):
        Checkpoint.open(json.dumps(doc).encode(), trusted=TRUSTED, label="checkpoint 8")
    intruder = SigningKey.generate()
    forged = Checkpoint.make(log="ws-1", size=8, root=bytes(32)).sign(intruder)
    with pytest.raises(IntegrityError, match="not among the 1 trusted key"):
        Checkpoint.open(forged, trusted=TRUSTED, label="checkpoint 8")
    with pytest.raises(IntegrityError, match="payload type"):
        Checkpoint.open(envelope.replace(b"checkpoint+json", b"other+json"), trusted=TRUSTED, label="c")
