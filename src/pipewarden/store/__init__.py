"""The artifact store: content-addressed bodies, encrypted at rest, signed manifests, versions, lineage.

    >>> from pipewarden.workspace import Workspace
    >>> store = Workspace.open().store()
    >>> art = store.put("model.safetensors", name="bert", actor="ci", parents=["train-data@4"])
    >>> store.get("bert@1", "restored.safetensors")
    >>> store.verify().ok

Every write scans model files, encrypts and signs; every read checks the
signature, the key slot, every chunk and the digest before it releases a byte.
"""

from __future__ import annotations

from pipewarden.store._backends._interface import Backend, BackendError, ObjectExists, ObjectNotFound
from pipewarden.store._backends._local import LocalBackend
from pipewarden.store._backends._s3 import S3Backend
from pipewarden.store._guarded import GuardedStore
from pipewarden.store._records import Artifact, ArtifactRef, Lineage, ParentRef, ScanVerdict
from pipewarden.store._store import ArtifactStore, Refusal, Reseal, StoreVerification

__all__ = [
    "Artifact",
    "ArtifactRef",
    "ArtifactStore",
    "Backend",
    "BackendError",
    "GuardedStore",
    "Lineage",
    "LocalBackend",
    "ObjectExists",
    "ObjectNotFound",
    "ParentRef",
    "Refusal",
    "Reseal",
    "S3Backend",
    "ScanVerdict",
    "StoreVerification",
]
