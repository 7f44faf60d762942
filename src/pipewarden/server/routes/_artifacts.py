"""The artifact store over HTTP: list, metadata, streaming upload and download, verify, lineage.

Uploads stream to a spool file in the workspace (bounded memory) and go through `store.put`, so they
are scanned, encrypted and signed like any other write; downloads are verified end to end into a spool
file first, so not one unverified byte leaves the server, and then stream from it.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Any

from fastapi import Query, Request
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask

from pipewarden.errors import ArtifactRefused, ConfigError
from pipewarden.server._table import Guard, GuardedRouter
from pipewarden.server.routes._common import BYTES_BODY, artifact_json, caller, lineage_json, state
from pipewarden.store import Artifact, ArtifactRef, GuardedStore

router = GuardedRouter(tags=["artifacts"])
_CHUNK = 1024 * 1024


def _store(request: Request) -> GuardedStore:
    return GuardedStore(state(request).store, caller(request).acting)


def _spool(request: Request) -> Path:
    folder = state(request).workspace.root / "spool"
    folder.mkdir(mode=0o700, exist_ok=True)
    return folder


def _version(version: str) -> int:
    if not version.isdigit() or int(version) < 1:
        raise ConfigError(f"{version!r}: a version is a positive integer")
    return int(version)


@router.get_("/v1/artifacts", guard=Guard.signed_in())
def list_artifacts(request: Request) -> dict[str, Any]:
    """Every version the caller may list (each name authorized; the listing is one event)."""
    return {"artifacts": [artifact_json(a) for a in _store(request).artifacts()]}


@router.get_(
    "/v1/artifacts/{name:path}/versions/{version}", guard=Guard.needs("artifact.list", "artifact:{name}")
)
def artifact_metadata(name: str, version: str, request: Request) -> dict[str, Any]:
    """One version's manifest, its signature checked: one event, ``artifact.list`` on the name.

    Only that version is read: listing the name's versions to pick one would check every version's
    signature, a cost that grows with the name's history."""
    number = _version(version)
    store = state(request).store
    art: Artifact = caller(request).acting.perform(
        "artifact.list",
        f"artifact:{name}",
        lambda: store.resolve(ArtifactRef(name, number)),
        describe=lambda a: {"version": a.version},
    )
    return artifact_json(art)


@router.get_(
    "/v1/artifacts/{name:path}/versions/{version}/content",
    guard=Guard.needs("artifact.read", "artifact:{name}"),
    response_class=FileResponse,
    responses={
        200: {
            "description": "The artifact's bytes, verified end to end, in its own media type.",
            "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
            "headers": {
                "X-Pipewarden-Sha256": {"description": "The bytes' SHA-256.", "schema": {"type": "string"}},
                "X-Pipewarden-Ref": {"description": "NAME@VERSION.", "schema": {"type": "string"}},
            },
        }
    },
)
def download(name: str, version: str, request: Request) -> FileResponse:
    ref = f"{name}@{_version(version)}"
    fd, tmp = tempfile.mkstemp(prefix=".download.", dir=_spool(request))
    os.close(fd)
    try:
        art = _store(request).get(ref, tmp)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return FileResponse(
        tmp,
        media_type=art.media_type or "application/octet-stream",
        filename=art.name.rsplit("/", 1)[-1],
        headers={"x-pipewarden-sha256": art.digest, "x-pipewarden-ref": art.ref},
        background=BackgroundTask(_remove, tmp),
    )


@router.put_(
    "/v1/artifacts/{name:path}",
    guard=Guard.needs("artifact.write", "artifact:{name}"),
    status_code=201,
    openapi_extra=BYTES_BODY,
)
async def upload(
    name: str,
    request: Request,
    parent: list[str] = Query(default=[]),  # noqa: B008  # FastAPI's way of declaring a repeated query
    media_type: str | None = Query(default=None, max_length=256),
) -> dict[str, Any]:
    """The request body is the artifact's bytes; ``?parent=data/train@3`` (repeatable) records lineage."""
    from starlette.concurrency import run_in_threadpool

    fd, tmp = tempfile.mkstemp(prefix=".upload.", suffix=_suffix(name), dir=_spool(request))
    try:
        with os.fdopen(fd, "wb") as out:
            async for chunk in request.stream():
                out.write(chunk)
        store = _store(request)
        try:
            art = await run_in_threadpool(
                lambda: store.put(tmp, name=name, parents=tuple(parent), media_type=media_type)
            )
        except ArtifactRefused as exc:
            # The store names the file it scanned, here a spool file: the server's business, not the client's.
            raise ArtifactRefused(str(exc).replace(tmp, "the upload"), report=exc.report) from None
    finally:
        _remove(tmp)
    return artifact_json(art)


@router.post_("/v1/artifacts/{name:path}/verify", guard=Guard.needs("artifact.verify", "artifact:{name}"))
def verify(name: str, request: Request) -> dict[str, Any]:
    result = _store(request).verify(name)
    return {
        "ok": result.ok,
        "checked": result.checked,
        "failures": [{"ref": ref, "problem": problem} for ref, problem in result.failures],
    }


@router.get_(
    "/v1/artifacts/{name:path}/versions/{version}/lineage",
    guard=Guard.needs("artifact.list", "artifact:{name}"),
)
def lineage(name: str, version: str, request: Request) -> dict[str, Any]:
    return lineage_json(_store(request).lineage(f"{name}@{_version(version)}"))


def _suffix(name: str) -> str:
    """The stored name's suffix, so the store's media-type guess sees what a file of that name would."""
    last = name.rsplit("/", 1)[-1]
    suffix = Path(last).suffix
    return suffix if suffix.isascii() and len(suffix) <= 16 else ""


def _remove(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)
