"""Who is calling: the credential a request presents, the principal it stands for, and the check of
the route's guard, before the handler runs.

Two credentials are accepted. Services and the CLI send an API token or login session as
``Authorization: Bearer <token>``. Browsers hold the login session in the ``pw_session`` cookie
(HttpOnly, Secure, SameSite=Strict); a request that changes something (any method but GET, HEAD and
OPTIONS) made with the cookie must also carry ``X-CSRF-Token``, a value derived from the session that
the login returned and that a page on another site cannot read.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fastapi import Request

from pipewarden.errors import AccessDenied, AuthenticationFailed
from pipewarden.events import Acting, Actor

if TYPE_CHECKING:
    from pipewarden.identity import Subject
    from pipewarden.server._state import ServerState
    from pipewarden.server._table import Guard

__all__ = ["SESSION_COOKIE", "Caller", "csrf_token", "guard_dependency", "origin_of"]

SESSION_COOKIE = "pw_session"
CSRF_HEADER = "x-csrf-token"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_CSRF_LABEL = b"pipewarden/csrf/v1"


def csrf_token(session_token: str) -> str:
    """The CSRF value of a login session: an HMAC of a fixed label under the session's own secret, so
    every replica computes the same value and nothing is stored."""
    return hmac.new(session_token.encode(), _CSRF_LABEL, hashlib.sha256).hexdigest()[:40]


def origin_of(request: Request) -> str:
    """The client's address, as the throttle and events record it."""
    client = request.client
    return f"http:{client.host}" if client is not None else "http:unknown"


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated request: the principal and its `Acting`, which authorizes and records."""

    subject: Subject
    acting: Acting
    origin: str
    via_cookie: bool


def _credential(request: Request) -> tuple[str, bool] | None:
    header = request.headers.get("authorization", "")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise AuthenticationFailed("the Authorization header is not 'Bearer <token>'")
        return value.strip(), False
    cookie = request.cookies.get(SESSION_COOKIE)
    return (cookie, True) if cookie else None


def authenticate(state: ServerState, request: Request) -> Caller:
    """The caller behind the request's credential; `AuthenticationFailed` (an event) without one."""
    origin = origin_of(request)
    try:
        found = _credential(request)
    except AuthenticationFailed:
        state.events.emit_denied("http.request", f"route:{request.url.path}"[:256], origin, "not bearer")
        raise
    if found is None:
        state.events.emit_denied("http.request", f"route:{request.url.path}"[:256], origin, "no credential")
        raise AuthenticationFailed("this route needs a credential: a bearer token or a login session")
    token, via_cookie = found
    subject = state.authenticator.authenticate_token(token, origin=origin)
    if via_cookie and request.method not in _SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER, "")
        if not hmac.compare_digest(sent.encode(), csrf_token(token).encode()):
            state.events.emit_denied("http.request", f"route:{request.url.path}"[:256], origin, "csrf")
            raise AccessDenied(
                f"{subject.name}: a change made with the session cookie needs its X-CSRF-Token"
            )
    acting = Acting(
        actor=Actor(subject.name, subject.kind, origin, token_id=subject.token_id),
        events=state.workspace_events,
        authorizer=state.policy.bind(subject),
    )
    return Caller(subject, acting, origin, via_cookie)


def guard_dependency(guard: Guard) -> Callable[[Request], Any]:
    """The FastAPI dependency that enforces `guard` and leaves the `Caller` on ``request.state``."""

    def check(request: Request) -> None:
        state: ServerState = request.app.state.pipewarden
        if guard.kind == "public":
            request.state.caller = None
            return
        caller = authenticate(state, request)
        if guard.kind == "action":
            assert guard.action is not None  # noqa: S101  # Guard.needs sets both
            caller.acting.authorize(guard.action, guard.resource_for(request.path_params))
        request.state.caller = caller

    return check
