"""The audit log over HTTP: records (filtered), verification, inclusion proofs."""

from __future__ import annotations

from typing import Any

from fastapi import Path, Query, Request

from pipewarden.errors import IntegrityError
from pipewarden.server._problems import without_server_paths
from pipewarden.server._table import Guard, GuardedRouter
from pipewarden.server.routes._common import caller, state

router = GuardedRouter(tags=["audit"])
LOG = "audit:log"


@router.get_("/v1/audit/records", guard=Guard.needs("audit.read", LOG))
def records(
    request: Request,
    start: int = Query(default=0, ge=0, description="First record (0: the last `limit` records)."),
    limit: int = Query(default=100, ge=1, le=1000),
    actor: str | None = Query(default=None, max_length=256),
    action: str | None = Query(default=None, max_length=128),
    outcome: str | None = Query(default=None, pattern="^(allowed|denied|error)$"),
) -> dict[str, Any]:
    """Records, newest last; filters apply to the window read (`start`..`start+limit`)."""
    log = state(request).workspace.audit_log()

    def read() -> list[dict[str, Any]]:
        window = log.tail(limit) if start == 0 else list(log.records(start, start + limit - 1))
        out = []
        for entry in window:
            e = entry.event
            if (
                (actor and e.actor != actor)
                or (action and e.action != action)
                or (outcome and e.outcome != outcome)
            ):
                continue
            out.append({"seq": entry.seq, "hash": entry.hash.hex(), **e.to_dict()})
        return out

    found = caller(request).acting.perform("audit.read", LOG, read, describe=lambda r: {"count": len(r)})
    return {"records": found}


@router.post_("/v1/audit/verify", guard=Guard.needs("audit.verify", LOG))
def verify(request: Request) -> dict[str, Any]:
    """Check every record and checkpoint; 409 naming the first bad record when the log was tampered."""
    log = state(request).workspace.audit_log()

    def check() -> Any:
        result = log.verify()
        if result.problem is not None:
            raise IntegrityError(f"audit log {result.log_id}: {result.problem.describe()}")
        return result

    result = caller(request).acting.perform(
        "audit.verify",
        LOG,
        check,
        describe=lambda r: {"records": r.records, "checkpoints": r.checkpoints, "exported": r.exported},
    )
    return {
        "ok": True,
        "records": result.records,
        "checkpoints": result.checkpoints,
        # The summary names the exported checkpoint's file: the server's folder is not the client's
        # business (as in problem documents), the file's place in the workspace is.
        "summary": without_server_paths(result.describe(), state(request).workspace.root),
    }


@router.get_("/v1/audit/records/{seq}/proof", guard=Guard.needs("audit.export", LOG))
def proof(
    request: Request,
    # A record number fits a 64-bit column; a larger one is an invalid request, not a database error.
    seq: int = Path(ge=0, le=2**63 - 1),
) -> dict[str, Any]:
    """An RFC 6962 inclusion proof of record `seq` in the latest signed checkpoint."""
    log = state(request).workspace.audit_log()
    found: dict[str, Any] = caller(request).acting.perform(
        "audit.export", LOG, lambda: log.proof(seq), describe=lambda p: {"proof_of": seq}
    )
    return found
