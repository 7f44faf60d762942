"""Refusals: signed records of files the store would not take, so a refused model leaves a trace."""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pipewarden._canonical import canonical_json
from pipewarden.crypto import SigningKey, TrustedKeys, open_envelope, sign_envelope
from pipewarden.findings import Finding, Severity
from pipewarden.store._backends._interface import Backend

__all__ = ["Refusal", "read_refusals", "record_refusal"]

logger = logging.getLogger(__name__)

_REFUSAL_TYPE = "application/vnd.pipewarden.refusal+json"


@dataclass(frozen=True, slots=True)
class Refusal:
    """A file the store refused because its scan found something at or above the threshold."""

    name: str
    source: str
    sha256: str
    at: str
    by: str
    threshold: str
    max_severity: str
    findings: tuple[str, ...]


def record_refusal(
    backend: Backend,
    key: SigningKey,
    source: Path,
    *,
    name: str,
    actor: str,
    threshold: Severity,
    findings: Sequence[Finding],
) -> None:
    """Write a signed record of a refused file: what, by whom, when, and the findings that stopped it."""
    digest = hashlib.sha256()
    with open(source, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    worst = max((f.severity for f in findings), default=None)
    record = {
        "name": name,
        "source": source.name,
        "sha256": digest.hexdigest(),
        "at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "by": actor,
        "threshold": threshold.label,
        "max_severity": worst.label if worst else "",
        "findings": [f"{f.rule_id} {f.severity.label}: {f.title}" for f in findings][:100],
    }
    object_key = f"refusals/{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}-{secrets.token_hex(4)}.json"
    backend.put(object_key, sign_envelope(canonical_json(record), payload_type=_REFUSAL_TYPE, key=key))
    logger.warning(
        "refused %s as %s: %d finding(s) at or above %s", source, name, len(findings), record["threshold"]
    )


def read_refusals(backend: Backend, trusted: TrustedKeys) -> list[Refusal]:
    """Every refusal record under `refusals/`, each signature checked against `trusted`."""
    out = []
    for key in backend.iter_keys("refusals/"):
        payload, _ = open_envelope(backend.get(key), trusted=trusted, payload_type=_REFUSAL_TYPE, label=key)
        doc = json.loads(payload)
        out.append(
            Refusal(
                name=doc["name"],
                source=doc["source"],
                sha256=doc["sha256"],
                at=doc["at"],
                by=doc["by"],
                threshold=doc["threshold"],
                max_severity=doc["max_severity"],
                findings=tuple(doc["findings"]),
            )
        )
    return out
