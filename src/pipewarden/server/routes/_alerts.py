"""Alerts over HTTP: list, acknowledge, silence."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import Path, Query, Request
from pydantic import BaseModel, Field

from pipewarden.server._table import Guard, GuardedRouter
from pipewarden.server.routes._common import caller, state

router = GuardedRouter(tags=["alerts"])


def _book(request: Request) -> Any:
    from pipewarden.monitor import AlertBook

    return AlertBook(state(request).workspace.database(), acting=caller(request).acting)


@router.get_("/v1/alerts", guard=Guard.needs("alert.read", "alert:*"))
def list_alerts(
    request: Request, status: str = Query(default="firing,acknowledged", max_length=64)
) -> dict[str, Any]:
    statuses = [s.strip() for s in status.split(",") if s.strip()]
    found = caller(request).acting.perform(
        "alert.read",
        "alert:*",
        lambda: _book(request).alerts(status=statuses),
        describe=lambda a: {"count": len(a)},
    )
    return {"alerts": [a.to_dict() for a in found]}


@router.post_("/v1/alerts/{alert_id}/ack", guard=Guard.needs("alert.ack", "alert:{alert_id}"))
def acknowledge(
    request: Request,
    # An alert's id fits a 64-bit column; a larger one is an invalid request, not a database error.
    alert_id: int = Path(ge=1, le=2**63 - 1),
) -> dict[str, Any]:
    alert = _book(request).acknowledge(alert_id, by=caller(request).acting.actor.name)
    result: dict[str, Any] = alert.to_dict()
    return result


class SilenceBody(BaseModel):
    matchers: dict[str, str] = Field(min_length=1, max_length=16)
    reason: str = Field(min_length=1, max_length=1000)
    minutes: int = Field(default=240, ge=1, le=30 * 24 * 60)


@router.post_("/v1/alerts/silences", guard=Guard.needs("alert.silence", "alert:*"), status_code=201)
def silence(body: SilenceBody, request: Request) -> dict[str, Any]:
    made = _book(request).silence(
        body.matchers,
        reason=body.reason,
        by=caller(request).acting.actor.name,
        duration=timedelta(minutes=body.minutes),
    )
    result: dict[str, Any] = made.to_dict()
    return result
