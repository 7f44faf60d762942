"""``/healthz`` (public: load balancers ask it) and ``/metrics`` (Prometheus, token-protected)."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import PlainTextResponse

from pipewarden.server._table import Guard, GuardedRouter
from pipewarden.server.routes._common import caller, state

router = GuardedRouter(tags=["health"])


@router.get_("/healthz", guard=Guard.public())
def healthz(request: Request) -> dict[str, Any]:
    """Alive, and the database answers. Says nothing else: it needs no credential."""
    from sqlalchemy import text

    with state(request).workspace.database().transaction(write=False) as conn:
        conn.execute(text("SELECT 1"))
    return {"status": "ok"}


@router.get_(
    "/metrics", guard=Guard.needs("server.metrics", "server:metrics"), response_class=PlainTextResponse
)
def metrics(request: Request) -> str:
    text: str = caller(request).acting.perform(
        "server.metrics", "server:metrics", lambda: request.app.state.metrics.render()
    )
    return text
