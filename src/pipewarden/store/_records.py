"""What the store keeps about an artifact, and how it is written in a signed manifest."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pipewarden._canonical import canonical_json
from pipewarden.errors import ConfigError, IntegrityError

__all__ = [
    "ARTIFACT_PREDICATE",
    "Artifact",
    "ArtifactRef",
    "Lineage",
    "ParentRef",
    "ScanVerdict",
]

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
ARTIFACT_PREDICATE = "urn:pipewarden:artifact:v1"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,127}(/[A-Za-z0-9][A-Za-z0-9_.+-]{0,127}){0,7}$")
_DIGEST = re.compile(r"^[0-9a-f]{64}$")
_UID = re.compile(r"^[0-9a-f]{32}$")


def check_name(name: str) -> str:
    if not _NAME.match(name) or ".." in name:
        raise ConfigError(
            f"{name!r} is not a valid artifact name: use letters, digits, '.', '_', '+', '-', "
            "and '/' between parts (up to 8 parts of 128 characters)"
        )
    return name


@dataclass(frozen=True, slots=True)
class ArtifactRef:
    """``NAME`` (the latest version) or ``NAME@VERSION``."""

    name: str
    version: int | None = None

    def __post_init__(self) -> None:
        check_name(self.name)
        if self.version is not None and self.version < 1:
            raise ConfigError(f"{self.name}@{self.version}: versions start at 1")

    @classmethod
    def parse(cls, text: str) -> ArtifactRef:
        name, sep, version = text.strip().partition("@")
        if not sep:
            return cls(name)
        if not version.isdigit():
            raise ConfigError(f"{text!r}: the version after '@' must be a whole number")
        return cls(name, int(version))

    def __str__(self) -> str:
        return self.name if self.version is None else f"{self.name}@{self.version}"


@dataclass(frozen=True, slots=True)
class ParentRef:
    """An artifact this one was made from, pinned by digest."""

    name: str
    version: int
    digest: str

    def __str__(self) -> str:
        return f"{self.name}@{self.version}"


@dataclass(frozen=True, slots=True)
class ScanVerdict:
    """What `pipewarden scan` concluded when the file came in."""

    scanned: bool
    max_severity: str | None
    findings: int
    threshold: str

    def describe(self) -> str:
        if not self.scanned:
            return "not scanned"
        return "clean" if self.findings == 0 else f"{self.findings} finding(s), worst {self.max_severity}"


@dataclass(frozen=True, slots=True)
class Artifact:
    """One immutable version of a named artifact, as its verified manifest describes it."""

    name: str
    version: int
    uid: str
    digest: str
    size: int
    media_type: str
    created_by: str
    created_at: str
    parents: tuple[ParentRef, ...]
    scan: ScanVerdict
    chunk_size: int
    signer: str = ""
    #: SHA-256 of the previous version's manifest file (None for version 1): versions form a chain.
    previous: str | None = None

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def body_key(self) -> str:
        return f"blobs/sha256/{self.digest}/{self.uid}"

    @property
    def keyslot_key(self) -> str:
        return f"keyslots/{self.uid}.json"

    def body_context(self) -> bytes:
        return canonical_json({"artifact": self.name, "uid": self.uid})

    def key_context(self) -> bytes:
        """Bound to the sealed data key: a keyslot moved to another name, version or digest will not open."""
        return canonical_json(
            {"artifact": self.name, "version": self.version, "sha256": self.digest, "uid": self.uid}
        )

    def to_statement(self) -> dict[str, Any]:
        return {
            "_type": STATEMENT_TYPE,
            "subject": [{"name": self.ref, "digest": {"sha256": self.digest}}],
            "predicateType": ARTIFACT_PREDICATE,
            "predicate": {
                "name": self.name,
                "version": self.version,
                "uid": self.uid,
                "size": self.size,
                "media_type": self.media_type,
                "created_by": self.created_by,
                "created_at": self.created_at,
                "parents": [{"name": p.name, "version": p.version, "sha256": p.digest} for p in self.parents],
                "scan": {
                    "scanned": self.scan.scanned,
                    "max_severity": self.scan.max_severity,
                    "findings": self.scan.findings,
                    "threshold": self.scan.threshold,
                },
                "encryption": {"cipher": "AES-256-GCM", "format": "PWSTRM/1", "chunk_size": self.chunk_size},
                "previous": None
                if self.previous is None
                else {"version": self.version - 1, "manifest_sha256": self.previous},
            },
        }

    @classmethod
    def from_statement(cls, payload: bytes, *, signer: str, label: str) -> Artifact:
        try:
            doc = json.loads(payload)
            if doc["_type"] != STATEMENT_TYPE or doc["predicateType"] != ARTIFACT_PREDICATE:
                raise ValueError("not a pipewarden artifact manifest")
            p = doc["predicate"]
            scan = p["scan"]
            art = cls(
                name=check_name(p["name"]),
                version=_int(p["version"]),
                uid=_match(_UID, p["uid"]),
                digest=_match(_DIGEST, doc["subject"][0]["digest"]["sha256"]),
                size=_int(p["size"]),
                media_type=str(p["media_type"]),
                created_by=str(p["created_by"]),
                created_at=str(p["created_at"]),
                parents=tuple(
                    ParentRef(
                        name=check_name(q["name"]),
                        version=_int(q["version"]),
                        digest=_match(_DIGEST, q["sha256"]),
                    )
                    for q in p["parents"]
                ),
                scan=ScanVerdict(
                    scanned=bool(scan["scanned"]),
                    max_severity=scan["max_severity"],
                    findings=_int(scan["findings"]),
                    threshold=str(scan["threshold"]),
                ),
                chunk_size=_int(p["encryption"]["chunk_size"]),
                previous=None if p["previous"] is None else _match(_DIGEST, p["previous"]["manifest_sha256"]),
                signer=signer,
            )
            if doc["subject"][0]["name"] != art.ref or len(doc["subject"]) != 1:
                raise ValueError("subject does not name this artifact")
            if (art.version == 1) != (art.previous is None) or (
                art.previous is not None and p["previous"]["version"] != art.version - 1
            ):
                raise ValueError("its link to the previous version is inconsistent")
        except (KeyError, IndexError, TypeError, ValueError, ConfigError, json.JSONDecodeError) as exc:
            raise IntegrityError(f"{label}: signed manifest is malformed ({exc})") from None
        return art


def _int(v: Any) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or v < 0:
        raise TypeError(f"expected a non-negative integer, got {v!r}")
    return v


def _match(pattern: re.Pattern[str], v: Any) -> str:
    if not isinstance(v, str) or not pattern.match(v):
        raise ValueError(f"{v!r} is not well formed")
    return v


@dataclass(frozen=True, slots=True)
class Lineage:
    """An artifact and, recursively, the artifacts it was made from."""

    artifact: Artifact
    parents: tuple[Lineage, ...]

    def walk(self) -> Iterator[Lineage]:
        """This node, then every ancestor, depth first."""
        yield self
        for parent in self.parents:
            yield from parent.walk()

    def lines(self, indent: str = "") -> list[str]:
        a = self.artifact
        out = [f"{indent}{a.ref}  sha256:{a.digest[:16]}  {a.created_at}  by {a.created_by}"]
        for parent in self.parents:
            out.extend(parent.lines(indent + "  "))
        return out
