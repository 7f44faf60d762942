"""Scanning over HTTP: the request body is a file; the answer is its scan report."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Any

from fastapi import Query, Request

from pipewarden.server._table import Guard, GuardedRouter
from pipewarden.server.routes._common import BYTES_BODY, caller, state

router = GuardedRouter(tags=["scan"])


@router.post_(
    "/v1/scan/{project}", guard=Guard.needs("scan.run", "scan:{project}/upload"), openapi_extra=BYTES_BODY
)
async def scan(
    project: str, request: Request, name: str = Query(default="upload.bin", min_length=1, max_length=255)
) -> dict[str, Any]:
    """Scan the uploaded bytes as a file named `name` would be (its suffix counts); never loaded. The
    scan is of `project`'s (``scan:<project>/upload``), so a project-scoped role may run it."""
    from starlette.concurrency import run_in_threadpool

    from pipewarden.scan import scan_path

    suffix = Path(name).suffix if Path(name).suffix.isascii() and len(Path(name).suffix) <= 16 else ""
    folder = state(request).workspace.root / "spool"
    folder.mkdir(mode=0o700, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".scan.", suffix=suffix, dir=folder)
    try:
        with os.fdopen(fd, "wb") as out:
            async for chunk in request.stream():
                out.write(chunk)
        acting = caller(request).acting
        report = await run_in_threadpool(
            lambda: acting.perform(
                "scan.run",
                f"scan:{project}/upload",
                lambda: scan_path(tmp),
                describe=lambda r: {"name": name[:128], "findings": len(r.findings)},
            )
        )
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
    document: dict[str, Any] = report.to_dict()
    for finding in document["findings"]:
        finding["location"]["path"] = name  # the spool file's path is the server's business
    return document
