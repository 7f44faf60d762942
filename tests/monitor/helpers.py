"""Events for monitor tests: made in code, on a fixed clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pipewarden.events import Event

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday, 09:00 UTC


def ev(
    action: str,
    *,
    actor: str = "ada",
    resource: str = "artifact:churn/model",
    outcome: str = "allowed",
    origin: str = "10.0.0.1",
    kind: str = "user",
    at: timedelta = timedelta(0),
    **attributes: Any,
) -> Event:
    return Event(
        action=action,
        actor=actor,
        actor_kind=kind,
        resource=resource,
        outcome=outcome,
        origin=origin,
        attributes=attributes,
        time=T0 + at,
    )


def failed_login(
    user: str, *, origin: str = "198.51.100.7", at: timedelta = timedelta(0), reason: str = "credentials"
) -> Event:
    return ev(
        "auth.login",
        actor=f"unknown:{user}",
        kind="anonymous",
        resource=f"user:{user}",
        outcome="denied",
        origin=origin,
        at=at,
        reason=reason,
    )


def login(user: str, *, origin: str = "10.0.0.1", at: timedelta = timedelta(0)) -> Event:
    return ev("auth.login", actor=user, resource=f"user:{user}", origin=origin, at=at, mfa=True)
