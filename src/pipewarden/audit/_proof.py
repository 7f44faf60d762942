"""Inclusion proofs: one record, shown to be in the log a signed checkpoint describes.

A proof is a JSON document that needs nothing but the log's public key to
check: the record (position, previous hash, body), the RFC 6962 audit path
from its leaf to the tree head (RFC 9162, 2.1.3), and the signed checkpoint
holding that head. Whoever holds it can show the record was logged, and that
the log cannot drop or change it without the checkpoint failing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from pipewarden.audit._chain import record_hash
from pipewarden.audit._checkpoint import Checkpoint
from pipewarden.audit._frontier import Frontier
from pipewarden.audit._merkle import verify_inclusion
from pipewarden.audit._rows import stream_records
from pipewarden.crypto import TrustedKeys
from pipewarden.db import Database, audit_checkpoints, audit_records
from pipewarden.errors import ConfigError, IntegrityError
from pipewarden.events import Event

__all__ = ["PROOF_FORMAT", "ProofVerification", "make_proof", "verify_proof"]

PROOF_FORMAT = "pipewarden.audit-proof/1"


@dataclass(frozen=True, slots=True)
class ProofVerification:
    """A proof that checked out: record `seq` of log `log` is in the tree of `tree_size` records
    whose head `signer` signed at `checkpoint_time`."""

    log: str
    seq: int
    tree_size: int
    checkpoint_time: str
    signer: str
    event: Event


def _split(n: int) -> int:
    return 1 << ((n - 1).bit_length() - 1)


def _path_ranges(index: int, lo: int, hi: int) -> list[tuple[int, int]]:
    """The leaf ranges whose subtree heads form PATH(index) over leaves lo..hi-1, deepest first."""
    if hi - lo == 1:
        return []
    k = _split(hi - lo)
    if index - lo < k:
        return [*_path_ranges(index, lo, lo + k), (lo + k, hi)]
    return [*_path_ranges(index, lo + k, hi), (lo, lo + k)]


def make_proof(db: Database, *, seq: int, log_id: str, trusted: TrustedKeys) -> dict[str, Any] | None:
    """The proof of record `seq` against the newest checkpoint covering it; None if none covers it yet.

    The audit path is folded from one ordered read of the record hashes, each
    sibling subtree in its own frontier, so memory stays O(log n).
    """
    c, k = audit_records.c, audit_checkpoints.c
    try:
        with db.transaction(write=False) as conn:
            record = conn.execute(select(c.prev_hash, c.body, c.hash).where(c.seq == seq)).first()
            if record is None:
                raise ConfigError(f"audit record {seq}: no such record in log {log_id}")
            row = conn.execute(
                select(k.size, k.envelope).where(k.size >= seq).order_by(k.size.desc()).limit(1)
            ).first()
            if row is None:
                return None
            size, envelope = int(row[0]), bytes(row[1])
            cp = Checkpoint.open(envelope, trusted=trusted, label=f"checkpoint {size} (database)")
            ranges = sorted((lo, hi, i) for i, (lo, hi) in enumerate(_path_ranges(seq - 1, 0, size)))
            path: list[bytes] = [b""] * len(ranges)
            current = iter(ranges)
            lo, hi, slot = next(current, (size, size, -1))
            frontier = Frontier()
            index = 0
            for batch in stream_records(conn, start=1, end=size, columns="hash"):
                for (digest,) in batch:
                    if lo <= index < hi:
                        frontier.add(bytes(digest))
                        if index == hi - 1:
                            path[slot] = frontier.root()
                            frontier = Frontier()
                            lo, hi, slot = next(current, (size, size, -1))
                    index += 1
    except SQLAlchemyError as exc:
        raise db.error(f"audit log {log_id}: cannot read the records to prove", exc) from None
    prev_hash, body, digest = bytes(record[0]), bytes(record[1]), bytes(record[2])
    if index != size:
        raise IntegrityError(f"audit log {log_id}: checkpoint {size} covers more records than the log holds")
    try:
        verify_inclusion(record_hash(seq, prev_hash, body), seq - 1, size, path, cp.root)
    except IntegrityError as exc:
        raise IntegrityError(
            f"audit record {seq}: the log does not match checkpoint {size} ({exc}); "
            "run 'pipewarden audit verify'"
        ) from None
    if record_hash(seq, prev_hash, body) != digest:
        raise IntegrityError(f"audit record {seq}: its contents no longer match its hash")
    return {
        "v": PROOF_FORMAT,
        "log": log_id,
        "seq": seq,
        "prev_hash": prev_hash.hex(),
        "body": body.decode("utf-8"),
        "hash": digest.hex(),
        "leaf_index": seq - 1,
        "tree_size": size,
        "path": [p.hex() for p in path],
        "checkpoint": json.loads(envelope),
    }


def _field(doc: Mapping[str, Any], name: str, kind: type, label: str) -> Any:
    value = doc.get(name)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise IntegrityError(f"{label}: field {name!r} is missing or not a {kind.__name__}")
    return value


def _hex32(value: Any, what: str, label: str) -> bytes:
    try:
        raw = bytes.fromhex(value) if isinstance(value, str) else b""
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise IntegrityError(f"{label}: {what} is not 32 bytes of hex")
    return raw


def verify_proof(
    doc: Mapping[str, Any] | bytes | str,
    trusted: TrustedKeys,
    *,
    label: str = "proof",
    expected_log: str | None = None,
) -> ProofVerification:
    """Check an inclusion proof offline with only the trusted public keys; `IntegrityError` if it fails.

    Deployments that share a key (replicas, a staging copy) sign checkpoints of
    different logs with it: pass `expected_log` to refuse a proof from another log.

    >>> verdict = verify_proof(Path("proof.json").read_bytes(), TrustedKeys([pub], source="pub.pem"))
    >>> verdict.event.action
    """
    if isinstance(doc, bytes | str):
        try:
            doc = json.loads(doc)
        except ValueError:
            raise IntegrityError(f"{label}: not a JSON document") from None
    if not isinstance(doc, Mapping) or doc.get("v") != PROOF_FORMAT:
        raise IntegrityError(f"{label}: not a pipewarden audit proof ({PROOF_FORMAT})")
    seq = _field(doc, "seq", int, label)
    size = _field(doc, "tree_size", int, label)
    body = _field(doc, "body", str, label).encode("utf-8")
    prev_hash = _hex32(doc.get("prev_hash"), "prev_hash", label)
    path_doc = _field(doc, "path", list, label)
    path = [_hex32(p, "an audit path entry", label) for p in path_doc]
    envelope = doc.get("checkpoint")
    if not isinstance(envelope, dict):
        raise IntegrityError(f"{label}: carries no signed checkpoint")
    cp = Checkpoint.open(json.dumps(envelope).encode(), trusted=trusted, label=f"{label}: checkpoint")
    if cp.size != size or cp.log != doc.get("log"):
        raise IntegrityError(
            f"{label}: names log {doc.get('log')!r} at {size} records, but its checkpoint signs "
            f"log {cp.log!r} at {cp.size}"
        )
    if expected_log is not None and cp.log != expected_log:
        raise IntegrityError(f"{label}: proves a record of log {cp.log!r}, not of {expected_log!r}")
    if doc.get("leaf_index", seq - 1) != seq - 1:
        raise IntegrityError(f"{label}: leaf index {doc.get('leaf_index')!r} is not record {seq}'s")
    leaf = record_hash(seq, prev_hash, body)
    if "hash" in doc and _hex32(doc["hash"], "hash", label) != leaf:
        raise IntegrityError(f"{label}: record {seq}'s body or previous hash was changed")
    try:
        verify_inclusion(leaf, seq - 1, size, path, cp.root)
    except IntegrityError as exc:
        raise IntegrityError(f"{label}: record {seq} is not in checkpoint {size}: {exc}") from None
    try:
        event = Event.from_json(body, source=f"{label}: record {seq}")
    except ConfigError as exc:
        raise IntegrityError(str(exc)) from None
    return ProofVerification(
        log=cp.log, seq=seq, tree_size=size, checkpoint_time=cp.time, signer=cp.signer, event=event
    )
