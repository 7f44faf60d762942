"""Data over HTTP: check a batch against a contract kept in the store, screen a training set.

The request body is the data file (CSV, Parquet, JSON Lines or .npy; `format` or the name's suffix
says which). A contract is trusted only from the store: `contract` names a stored artifact, read
(authorized as ``artifact.read``, verified end to end) before the batch is checked.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import Any

from fastapi import Query, Request
from starlette.concurrency import run_in_threadpool

from pipewarden.errors import AccessDenied, ContractError
from pipewarden.server._table import Guard, GuardedRouter
from pipewarden.server.routes._common import caller, state

router = GuardedRouter(tags=["data"])
_FORMATS = {"csv": ".csv", "parquet": ".parquet", "jsonl": ".jsonl", "npy": ".npy"}


async def _spooled(request: Request, name: str, fmt: str | None) -> str:
    if fmt is not None and fmt not in _FORMATS:
        from pipewarden.errors import ConfigError

        raise ConfigError(f"format {fmt!r}: one of {', '.join(_FORMATS)}")
    suffix = _FORMATS[fmt] if fmt else Path(name).suffix
    suffix = suffix if suffix.isascii() and len(suffix) <= 16 else ""
    folder = state(request).workspace.root / "spool"
    folder.mkdir(mode=0o700, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".data.", suffix=suffix, dir=folder)
    with os.fdopen(fd, "wb") as out:
        async for chunk in request.stream():
            out.write(chunk)
    return tmp


def _public(document: dict[str, Any], name: str) -> dict[str, Any]:
    """A report without the spool file's path (the server's business): findings are about `name`."""
    for finding in document.get("findings", []):
        spooled = finding["location"].get("path") or ""
        if spooled:
            finding["message"] = finding["message"].replace(spooled, name)
        finding["location"]["path"] = name
    return document


@router.post_("/v1/data/{name:path}/check", guard=Guard.needs("data.check", "data:{name}"))
async def check(
    name: str,
    request: Request,
    contract: str = Query(
        min_length=1, max_length=512, description="The stored contract: NAME or NAME@VERSION."
    ),
    fmt: str | None = Query(default=None, alias="format", max_length=16),
) -> dict[str, Any]:
    """Every row checked; rejected rows are listed by number with their reasons (PW-DATA-1xx)."""
    from pipewarden.data import Contract
    from pipewarden.data import check as check_batch

    me = caller(request)
    store = state(request).store

    def checked() -> Any:
        # Reading the contract is part of the check (one event: data.check), and needs the right to
        # read it: a caller cannot have its data judged by a contract it may not see.
        contract_name = contract.rpartition("@")[0] if "@" in contract else contract
        verdict = me.acting.authorizer.check("artifact.read", f"artifact:{contract_name}")
        if not verdict.allowed:
            raise AccessDenied(
                f"{me.subject.name}: artifact.read on artifact:{contract_name}: {verdict.rule}"
            )
        try:
            text = store.read_bytes(contract).decode("utf-8")
        except UnicodeDecodeError:
            raise ContractError(f"{contract}: the stored contract is not UTF-8 text") from None
        rules = Contract.from_yaml(text, source=contract)
        return check_batch(tmp, contract=rules)

    tmp = await _spooled(request, name, fmt)
    try:
        result = await run_in_threadpool(
            lambda: me.acting.perform(
                "data.check",
                f"data:{name}",
                checked,
                describe=lambda r: {
                    "rows": r.rows,
                    "accepted": r.accepted,
                    "quarantined": r.quarantined,
                    "findings": len(r.report.findings),
                },
            )
        )
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
    rejected = sorted({f.location.row for f in result.report.findings if f.location.row is not None})
    return {
        "rows": result.rows,
        "accepted": result.accepted,
        "quarantined": result.quarantined,
        "rejected_rows": rejected,
        "report": _public(result.report.to_dict(), name),
    }


@router.post_("/v1/data/{name:path}/screen", guard=Guard.needs("data.screen", "data:{name}"))
async def screen(
    name: str,
    request: Request,
    label: str = Query(min_length=1, max_length=256),
    fpr: float = Query(default=0.01, gt=0, lt=0.5),
    fmt: str | None = Query(default=None, alias="format", max_length=16),
) -> dict[str, Any]:
    """The poisoning screen: one finding per suspected row (PW-DATA-2xx) and the estimates."""
    from pipewarden.data import screen_file

    me = caller(request)
    tmp = await _spooled(request, name, fmt)
    try:
        result = await run_in_threadpool(
            lambda: me.acting.perform(
                "data.screen",
                f"data:{name}",
                lambda: screen_file(tmp, label=label, fpr=fpr),
                describe=lambda r: {"rows": r.rows, "flagged": len(r.flagged_rows)},
            )
        )
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
    return {
        "rows": result.rows,
        "flagged_rows": list(result.flagged_rows),
        "estimates": {k: v for k, v in result.estimates.items() if isinstance(v, int | float | str | bool)},
        "report": _public(result.report.to_dict(), name),
    }
