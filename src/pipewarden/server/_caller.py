"""Who is calling: the credential a request presents, the principal it stands for, and the check of
the route's guard, before the handler runs.

Two credentials are accepted. Services and the CLI send an API token or login session as
``Authorization: Bearer <token>``. Browsers hold the login session in the ``pw_session`` cookie
(HttpOnly, Secure, SameSite=Strict); a request that changes something (any method but GET, HEAD and
OPTIONS) made with the cookie must also carry ``X-CSRF-Token``, a value derived from the session that
the login returned and that a page on another site cannot read. An HTML form of the dashboard cannot
set a header, so a form post (``application/x-www-form-urlencoded``, small) may carry the same value
as its ``csrf_token`` field instead.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from pipewarden.errors import AccessDenied, AuthenticationFailed
from pipewarden.events import Acting, Actor

if TYPE_CHECKING:
    from pipewarden.identity import Subject
    from pipewarden.server._state import ServerState
    from pipewarden.server._table import Guard

__all__ = [
    "CSRF_FIELD",
    "SESSION_COOKIE",
    "Caller",
    "csrf_token",
    "form_csrf",
    "guard_dependency",
    "origin_of",
]

SESSION_COOKIE = "pw_session"
CSRF_HEADER = "x-csrf-token"
#: The form field an HTML form carries the CSRF value in (a form cannot set a header).
CSRF_FIELD = "csrf_token"
_FORM_TYPE = "application/x-www-form-urlencoded"
#: The largest form body read for its CSRF field: the dashboard's forms are a few short fields.
_MAX_FORM = 64 * 1024
_MAX_FORM_FIELDS = 64
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


async def form_csrf(request: Request) -> str | None:
    """The ``csrf_token`` field of an HTML form posted with the session cookie, or None.

    The body is read only when it can matter: a method that changes something, the cookie and no
    Authorization header, no ``X-CSRF-Token`` header, and a declared ``application/x-www-form-urlencoded``
    body of at most 64 KiB. Starlette keeps the body it read, so the route still reads it.
    """
    if (
        request.method in _SAFE_METHODS
        or "authorization" in request.headers
        or CSRF_HEADER in request.headers
        or not request.cookies.get(SESSION_COOKIE)
    ):
        return None
    kind = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    length = request.headers.get("content-length", "")
    if kind != _FORM_TYPE or not length.isdigit() or int(length) > _MAX_FORM:
        return None
    body = await request.body()
    try:
        fields = parse_qs(
            body.decode("ascii"),
            keep_blank_values=True,
            strict_parsing=False,
            max_num_fields=_MAX_FORM_FIELDS,
        )
    except (UnicodeDecodeError, ValueError):
        return None  # not a form of ours; the CSRF check refuses it
    values = fields.get(CSRF_FIELD, [])
    return values[0] if len(values) == 1 else None


def authenticate(state: ServerState, request: Request, *, form_token: str | None = None) -> Caller:
    """The caller behind the request's credential; `AuthenticationFailed` (an event) without one.

    `form_token` is the CSRF value a form carried (`form_csrf`), checked when there is no header."""
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
        sent = request.headers.get(CSRF_HEADER) or form_token or ""
        if not hmac.compare_digest(sent.encode(), csrf_token(token).encode()):
            state.events.emit_denied("http.request", f"route:{request.url.path}"[:256], origin, "csrf")
            raise AccessDenied(
                f"{subject.name}: a change made with the session cookie needs its X-CSRF-Token "
                "(or, from a form, its csrf_token field)"
            )
    acting = Acting(
        actor=Actor(subject.name, subject.kind, origin, token_id=subject.token_id),
        events=state.workspace_events,
        authorizer=state.policy.bind(subject),
    )
    return Caller(subject, acting, origin, via_cookie)


def guard_dependency(guard: Guard) -> Callable[[Request], Awaitable[None]]:
    """The FastAPI dependency that enforces `guard` and leaves the `Caller` on ``request.state``.

    It reads a form's CSRF field (if any) on the event loop, then authenticates and authorizes in the
    thread pool: both ask the database."""

    async def check(request: Request) -> None:
        state: ServerState = request.app.state.pipewarden
        if guard.kind == "public":
            request.state.caller = None
            return
        form_token = await form_csrf(request)
        caller = await run_in_threadpool(authenticate, state, request, form_token=form_token)
        if guard.kind == "action":
            assert guard.action is not None  # noqa: S101  # Guard.needs sets both
            await run_in_threadpool(
                caller.acting.authorize, guard.action, guard.resource_for(request.path_params)
            )
        request.state.caller = caller

    return check
