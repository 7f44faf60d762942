"""What the routers share: the caller of a guarded request, and artifacts as JSON."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import Request

from pipewarden.errors import AuthenticationFailed

if TYPE_CHECKING:
    from pipewarden.server._caller import Caller
    from pipewarden.server._state import ServerState
    from pipewarden.store import Artifact, Lineage

__all__ = ["BYTES_BODY", "artifact_json", "caller", "lineage_json", "principal_json", "state"]

#: The OpenAPI declaration of a route whose request body is a file's bytes, read as a stream (the
#: route reads the request itself, so FastAPI would not declare a body at all).
BYTES_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
}


def state(request: Request) -> ServerState:
    found: ServerState = request.app.state.pipewarden
    return found


def caller(request: Request) -> Caller:
    found: Caller | None = getattr(request.state, "caller", None)
    if found is None:  # a guarded route always has one; a public route never asks
        raise AuthenticationFailed("this route needs a credential")
    return found


def principal_json(p: Any, certificates: list[str] | None = None) -> dict[str, Any]:
    """A user or service account as the API shows it (with its registered certificates, when given)."""
    found: dict[str, Any] = {
        "name": p.name,
        "kind": p.kind,
        "display_name": p.display_name,
        "disabled": p.disabled,
        "created_at": p.created_at.isoformat(),
        "mfa_enrolled": p.mfa_enrolled,
        "grants": [{"role": g.role, "scope": g.scope} for g in p.grants],
    }
    if certificates is not None:
        found["certificates"] = certificates
    return found


def artifact_json(art: Artifact) -> dict[str, Any]:
    return {
        "name": art.name,
        "version": art.version,
        "ref": art.ref,
        "sha256": art.digest,
        "size": art.size,
        "media_type": art.media_type,
        "created_by": art.created_by,
        "created_at": art.created_at,
        "signer": art.signer,
        "parents": [{"ref": str(p), "sha256": p.digest} for p in art.parents],
        "scan": {
            "scanned": art.scan.scanned,
            "verdict": art.scan.describe(),
            "findings": art.scan.findings,
            "max_severity": art.scan.max_severity,
            "threshold": art.scan.threshold,
        },
    }


def lineage_json(tree: Lineage) -> dict[str, Any]:
    return {"artifact": artifact_json(tree.artifact), "parents": [lineage_json(p) for p in tree.parents]}
