"""The store as one principal sees it: every operation authorized, and reported as one event.

`GuardedStore` wraps an `ArtifactStore` with an `Acting` (who acts, the event
path, the authorizer). Listing shows only the artifacts the principal may
list: a name it may not see is never revealed, not even as a denial.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path

from pipewarden.errors import AccessDenied
from pipewarden.events import Acting
from pipewarden.events._event import Scalar
from pipewarden.store._records import Artifact, ArtifactRef, Lineage
from pipewarden.store._refusals import Refusal
from pipewarden.store._store import ArtifactStore, Reseal, StoreVerification

__all__ = ["GuardedStore"]

#: The resource standing for the whole store (every artifact), for operations on all of it.
ALL = "artifact:*"


def _resource(ref: str | ArtifactRef) -> str:
    parsed = ref if isinstance(ref, ArtifactRef) else ArtifactRef.parse(ref)
    return f"artifact:{parsed.name}"


def _described(art: Artifact) -> Mapping[str, Scalar]:
    return {"version": art.version, "sha256": art.digest, "size": art.size}


class GuardedStore:
    """`ArtifactStore`'s operations, each authorized for `acting` and reported through its event path.

    >>> store = GuardedStore(ws.store(), acting)
    >>> store.put("model.safetensors", name="fraud/model")   # artifact.write on artifact:fraud/model
    """

    def __init__(self, store: ArtifactStore, acting: Acting) -> None:
        self.store = store
        self.acting = acting

    def put(
        self,
        path: str | os.PathLike[str],
        *,
        name: str,
        parents: tuple[str, ...] | list[str] = (),
        media_type: str | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> Artifact:
        def write() -> Artifact:
            return self.store.put(
                path,
                name=name,
                actor=self.acting.actor.name,
                parents=parents,
                media_type=media_type,
                progress=progress,
            )

        # Pinning a parent reads its manifest: the principal must be able to list it, checked on the
        # name before anything is resolved, so a name outside its reach is not even found to exist.
        self.acting.authorize("artifact.write", f"artifact:{name}")
        for parent in parents:
            self.acting.authorize("artifact.list", _resource(parent))
        return self.acting.perform(
            "artifact.write",
            f"artifact:{name}",
            write,
            checked_by_caller=True,
            describe=lambda art: {**_described(art), "scan_max_severity": art.scan.max_severity or "none"},
            attributes={"file": Path(path).name},
        )

    def get(
        self,
        ref: str | ArtifactRef,
        dest: str | os.PathLike[str],
        *,
        progress: Callable[[int, int], None] | None = None,
    ) -> Artifact:
        return self.acting.perform(
            "artifact.read",
            _resource(ref),
            lambda: self.store.get(ref, dest, progress=progress),
            describe=_described,
            attributes={"ref": str(ref)},
        )

    def read_bytes(self, ref: str | ArtifactRef) -> bytes:
        art = self.acting.perform(
            "artifact.read", _resource(ref), lambda: self.store.resolve(ref), attributes={"ref": str(ref)}
        )
        return self.store.read_bytes(art.ref)

    def artifacts(self, name: str | None = None) -> list[Artifact]:
        """Every version the principal may list (of one name, or of every name it may list)."""
        if name is not None:
            return self.acting.perform(
                "artifact.list",
                f"artifact:{name}",
                lambda: self.store.artifacts(name),
                describe=lambda arts: {"count": len(arts)},
            )

        def visible() -> list[Artifact]:
            names = [n for n in self.store.names() if self._may("artifact.list", f"artifact:{n}")]
            return [a for n in names for a in self.store.artifacts(n)]

        return self.acting.perform(
            "artifact.list", ALL, visible, describe=lambda arts: {"count": len(arts)}, checked_by_caller=True
        )

    def verify(self, name: str | None = None) -> StoreVerification:
        return self.acting.perform(
            "artifact.verify",
            f"artifact:{name}" if name is not None else ALL,
            lambda: self.store.verify(name),
            describe=lambda v: {"checked": v.checked, "failures": len(v.failures)},
        )

    def lineage(self, ref: str | ArtifactRef) -> Lineage:
        """The artifact's lineage, when the principal may list every artifact in it."""

        def trace() -> Lineage:
            tree = self.store.lineage(ref)
            if not all(self._may("artifact.list", f"artifact:{node.artifact.name}") for node in tree.walk()):
                # Which ancestor is out of reach is not said: its name is what is protected.
                raise AccessDenied(
                    f"{self.acting.actor.name}: the lineage of {ref} reaches artifacts it may not list"
                )
            return tree

        return self.acting.perform("artifact.list", _resource(ref), trace, attributes={"ref": str(ref)})

    def refusals(self) -> list[Refusal]:
        return self.acting.perform(
            "artifact.list", ALL, self.store.refusals, describe=lambda r: {"count": len(r)}
        )

    def reseal(self) -> Reseal:
        return self.acting.perform(
            "key.rotate",
            "key:ring",
            self.store.reseal,
            describe=lambda r: {"resealed": r.resealed, "failures": len(r.failures)},
        )

    def retire_key(self, kek_id: str) -> None:
        self.acting.perform(
            "key.rotate", "key:ring", lambda: self.store.retire_key(kek_id), attributes={"kek": kek_id}
        )

    def _may(self, action: str, resource: str) -> bool:
        return self.acting.authorizer.check(action, resource).allowed
