"""Signing and verifying a model folder (or a single model file).

The signature file is a DSSE envelope around an in-toto Statement v1 whose
one subject is the model, named by its folder or file name, with the digest
of the canonical file list; the predicate lists every file's path, size and
digest and how they were hashed::

    {"_type": "https://in-toto.io/Statement/v1",
     "subject": [{"name": "bert", "digest": {"sha256": "<root digest>"}}],
     "predicateType": "urn:pipewarden:model-manifest:v1",
     "predicate": {"hash_algorithm": "sha256", "shard_size": 268435456,
                   "ignore": [".git", ...], "follow_symlinks": false,
                   "files": [{"path": "config.json", "size": 512, "digest": "<hex>"}, ...]}}
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipewarden._canonical import canonical_json
from pipewarden.crypto._dsse import INTOTO_PAYLOAD_TYPE, open_envelope, sign_envelope
from pipewarden.crypto._files import write_atomic
from pipewarden.crypto._hashing import (
    ALGORITHMS,
    DEFAULT_IGNORE,
    DEFAULT_SHARD_SIZE,
    FileDigest,
    hash_tree,
    hasher,
)
from pipewarden.crypto._signing import SigningKey, TrustedKeys
from pipewarden.errors import ConfigError, IntegrityError

__all__ = [
    "MODEL_PREDICATE",
    "SIGNATURE_SUFFIX",
    "FileChange",
    "ModelManifest",
    "default_signature_path",
    "sign_model",
    "verify_model",
]

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
MODEL_PREDICATE = "urn:pipewarden:model-manifest:v1"
SIGNATURE_SUFFIX = ".pwsig"


@dataclass(frozen=True, slots=True)
class ModelManifest:
    """What a signature says about a model: its files and how they were hashed."""

    name: str
    algorithm: str
    shard_size: int
    ignore: tuple[str, ...]
    follow_symlinks: bool
    files: tuple[FileDigest, ...]
    signer: str = ""

    def root_digest(self) -> str:
        h = hasher(self.algorithm)()
        h.update(canonical_json([[f.path, f.size, f.digest] for f in self.files]))
        return h.digest().hex()

    def to_statement(self) -> dict[str, Any]:
        return {
            "_type": STATEMENT_TYPE,
            "subject": [{"name": self.name, "digest": {self.algorithm: self.root_digest()}}],
            "predicateType": MODEL_PREDICATE,
            "predicate": {
                "hash_algorithm": self.algorithm,
                "shard_size": self.shard_size,
                "ignore": list(self.ignore),
                "follow_symlinks": self.follow_symlinks,
                "files": [{"path": f.path, "size": f.size, "digest": f.digest} for f in self.files],
            },
        }

    @classmethod
    def from_statement(cls, payload: bytes, *, signer: str, label: str) -> ModelManifest:
        """Parse and check a signed statement; anything malformed is an `IntegrityError`."""
        try:
            doc = json.loads(payload)
            if doc["_type"] != STATEMENT_TYPE or doc["predicateType"] != MODEL_PREDICATE:
                raise ValueError("not a pipewarden model manifest")
            pred = doc["predicate"]
            algorithm = pred["hash_algorithm"]
            if algorithm not in ALGORITHMS:
                raise ValueError(f"unknown hash algorithm {algorithm!r}")
            files = tuple(
                FileDigest(path=_str(f["path"]), size=_int(f["size"]), digest=_str(f["digest"]))
                for f in pred["files"]
            )
            (subject,) = doc["subject"]
            manifest = cls(
                name=_str(subject["name"]),
                algorithm=algorithm,
                shard_size=_int(pred["shard_size"]),
                ignore=tuple(_str(p) for p in pred["ignore"]),
                follow_symlinks=bool(pred["follow_symlinks"]),
                files=files,
                signer=signer,
            )
            root = subject["digest"][algorithm]
        except (KeyError, TypeError, ValueError, json.JSONDecodeError) as exc:
            raise IntegrityError(f"{label}: signed statement is malformed ({exc})") from None
        if root != manifest.root_digest():
            raise IntegrityError(f"{label}: subject digest does not match the signed file list")
        return manifest


def _str(v: Any) -> str:
    if not isinstance(v, str):
        raise TypeError(f"expected a string, got {type(v).__name__}")
    return v


def _int(v: Any) -> int:
    if not isinstance(v, int) or isinstance(v, bool) or v < 0:
        raise TypeError(f"expected a non-negative integer, got {v!r}")
    return v


@dataclass(frozen=True, slots=True)
class FileChange:
    """One difference between a signed manifest and the files on disk."""

    kind: str  # "modified", "added", "removed", "renamed", "unsigned"
    path: str
    detail: str = ""

    def describe(self) -> str:
        return f"{self.kind}: {self.path}" + (f" ({self.detail})" if self.detail else "")


def default_signature_path(path: Path) -> Path:
    """`PATH.pwsig` beside the model (for a folder `models/bert/`, `models/bert.pwsig`)."""
    path = Path(path).absolute()
    return path.with_name(path.name + SIGNATURE_SUFFIX)


def sign_model(
    path: str | Path,
    *,
    key: SigningKey,
    output: str | Path | None = None,
    algorithm: str = "sha256",
    shard_size: int = DEFAULT_SHARD_SIZE,
    ignore: Sequence[str] = DEFAULT_IGNORE,
    follow_symlinks: bool = False,
) -> tuple[Path, ModelManifest]:
    """Hash every file of a model and write a signed manifest; return (signature path, manifest).

    >>> sign_model("models/bert", key=SigningKey.load(Path("me.key")))
    """
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: no such file or folder")
    out = Path(output) if output is not None else default_signature_path(path)
    ignore = tuple(ignore)
    if path.is_dir() and out.absolute().is_relative_to(path.absolute()):
        ignore = (*ignore, out.absolute().relative_to(path.absolute()).as_posix())
    tree = hash_tree(
        path, algorithm=algorithm, shard_size=shard_size, ignore=ignore, follow_symlinks=follow_symlinks
    )
    if tree.unsigned:
        listed = "; ".join(f"{rel}: {why}" for rel, why in tree.unsigned[:5])
        raise ConfigError(
            f"{path}: {len(tree.unsigned)} entries cannot be signed ({listed}); "
            "pass follow_symlinks to sign what links point to, or remove them"
        )
    if not tree.files:
        raise ConfigError(f"{path}: no files to sign")
    manifest = ModelManifest(
        name=path.absolute().name,
        algorithm=algorithm,
        shard_size=shard_size,
        ignore=ignore,
        follow_symlinks=follow_symlinks,
        files=tree.files,
        signer=key.keyid,
    )
    payload = canonical_json(manifest.to_statement())
    write_atomic(out, sign_envelope(payload, payload_type=INTOTO_PAYLOAD_TYPE, key=key), mode=0o644)
    return out, manifest


def verify_model(
    path: str | Path,
    *,
    trusted: TrustedKeys,
    signature: str | Path | None = None,
) -> ModelManifest:
    """Check a model against its signature; return the verified manifest.

    Raises `IntegrityError` unless the signature is by a trusted key and every
    file matches; its `changes` name each file modified, added, removed or
    renamed.
    """
    path = Path(path)
    sig_path = Path(signature) if signature is not None else default_signature_path(path)
    label = str(path)
    if not path.exists():
        raise IntegrityError(f"{label}: no such file or folder")
    try:
        envelope = sig_path.read_bytes()
    except OSError as exc:
        raise IntegrityError(f"{sig_path}: signature cannot be read: {exc.strerror}") from None
    payload, signer = open_envelope(
        envelope, trusted=trusted, payload_type=INTOTO_PAYLOAD_TYPE, label=str(sig_path)
    )
    manifest = ModelManifest.from_statement(payload, signer=signer, label=str(sig_path))
    try:
        tree = hash_tree(
            path,
            algorithm=manifest.algorithm,
            shard_size=manifest.shard_size,
            ignore=manifest.ignore,
            follow_symlinks=manifest.follow_symlinks,
        )
    except ConfigError as exc:
        # What cannot be read cannot be shown to match: a failure, never a pass.
        raise IntegrityError(f"{label}: {exc}") from None
    changes = compare(manifest.files, tree.files) + tuple(
        FileChange("unsigned", rel, why) for rel, why in tree.unsigned
    )
    if changes:
        raise IntegrityError(
            f"{label}: {len(changes)} change(s) since it was signed by {signer}",
            changes=tuple(c.describe() for c in changes),
        )
    return manifest


def compare(signed: Sequence[FileDigest], actual: Sequence[FileDigest]) -> tuple[FileChange, ...]:
    """Every difference between two file lists; a removed file whose bytes reappear elsewhere is a rename."""
    before = {f.path: f for f in signed}
    after = {f.path: f for f in actual}
    changes: list[FileChange] = []
    removed = [before[p] for p in before if p not in after]
    added = [after[p] for p in after if p not in before]
    for p in sorted(before.keys() & after.keys()):
        old, new = before[p], after[p]
        if old.size != new.size:
            changes.append(FileChange("modified", p, f"size {old.size} -> {new.size}"))
        elif old.digest != new.digest:
            changes.append(FileChange("modified", p, "contents differ"))
    unmatched_added = {f.path: f for f in added}
    for old in removed:
        twin = next(
            (f for f in unmatched_added.values() if (f.digest, f.size) == (old.digest, old.size)), None
        )
        if twin is not None:
            changes.append(FileChange("renamed", old.path, f"now {twin.path}"))
            del unmatched_added[twin.path]
        else:
            changes.append(FileChange("removed", old.path))
    changes.extend(FileChange("added", p) for p in sorted(unmatched_added))
    return tuple(sorted(changes, key=lambda c: (c.path, c.kind)))
