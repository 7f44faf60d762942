"""Who is calling: the credential a request presents, the principal it stands for, and the check of
the route's guard, before the handler runs.

Two credentials are accepted. Services and the CLI send an API token or login session as
``Authorization: Bearer <token>``. Browsers hold the login session in the ``pw_session`` cookie
(HttpOnly, Secure, SameSite=Strict); a request that changes something (any method but GET, HEAD and
OPTIONS) made with the cookie must also carry ``X-CSRF-Token``, a value derived from the session that
the login returned and that a page on another site cannot read. An HTML form of the dashboard cannot
set a header, so a form post (``application/x-www-form-urlencoded``, small) may carry the same value
as its ``csrf_token`` field instead.

With mutual TLS (``--client-ca``), a service may present a client certificate instead: the connection's
certificate (the ASGI TLS extension, `pipewarden.server._tls.TlsScopeProtocol`) stands for the service
account registered for its SHA-256 fingerprint (`ClientCertificates`), and for nobody when none is: an
unregistered certificate is refused, whatever else the request carries. A token or session sent over
the same connection must name the same principal, or the request is refused: one credential cannot
borrow another's principal. A certificate is sent by a browser on its own, like a cookie, so a change
made with a certificate alone is refused when the browser says it came from another site.
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
from pipewarden.events import Acting, Actor, Event

if TYPE_CHECKING:
    from pipewarden.identity import Subject
    from pipewarden.server._state import ServerState
    from pipewarden.server._table import Guard

__all__ = [
    "CSRF_FIELD",
    "SESSION_COOKIE",
    "Caller",
    "client_certificate",
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
#: What `Sec-Fetch-Site` says of a request a page of this server made, or one a person typed in.
_OWN_SITE = frozenset({"same-origin", "none"})
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


def client_certificate(state: ServerState, request: Request) -> str | None:
    """The PEM client certificate of the request's connection, when mutual TLS is on and one was
    presented (the handshake checked that the client CA issued it); None otherwise."""
    if state.settings.client_ca is None:
        return None
    extensions = request.scope.get("extensions") or {}
    tls = extensions.get("tls") if isinstance(extensions, dict) else None
    chain = tls.get("client_cert_chain") if isinstance(tls, dict) else None
    if not chain or not isinstance(chain[0], str):
        return None
    return chain[0]


def _certificate_subject(state: ServerState, request: Request, origin: str) -> Subject | None:
    """The service account the connection's client certificate is registered to; None without one;
    `AuthenticationFailed` (after the identity part's event) for a certificate registered to nobody."""
    pem = client_certificate(state, request)
    if pem is None:
        return None
    from pipewarden.identity import ClientCertificates, certificate_fingerprint

    certificates = ClientCertificates(
        state.workspace.database(), policy=state.policy, events=state.workspace_events
    )
    return certificates.authenticate(certificate_fingerprint(pem.encode("ascii")), origin=origin)


def _refuse(state: ServerState, request: Request, origin: str, reason: str, *, by: Subject) -> None:
    state.workspace_events.emit(
        Event(
            action="http.request",
            actor=by.name,
            actor_kind=by.kind,
            resource=f"route:{request.url.path}"[:256],
            outcome="denied",
            origin=origin,
            attributes={"reason": reason, "token_id": by.token_id},
        )
    )


def _from_another_site(request: Request) -> bool:
    """Whether the browser that sent the request says a page of another site made it."""
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site not in _OWN_SITE
    sent_from = request.headers.get("origin")
    return sent_from is not None and sent_from != f"{request.url.scheme}://{request.headers.get('host', '')}"


def authenticate(state: ServerState, request: Request, *, form_token: str | None = None) -> Caller:
    """The caller behind the request's credential; `AuthenticationFailed` (an event) without one.

    `form_token` is the CSRF value a form carried (`form_csrf`), checked when there is no header."""
    origin = origin_of(request)
    try:
        found = _credential(request)
    except AuthenticationFailed:
        state.events.emit_denied("http.request", f"route:{request.url.path}"[:256], origin, "not bearer")
        raise
    certified = _certificate_subject(state, request, origin)
    if found is None and certified is None:
        state.events.emit_denied("http.request", f"route:{request.url.path}"[:256], origin, "no credential")
        raise AuthenticationFailed("this route needs a credential: a bearer token or a login session")
    if found is None:
        assert certified is not None  # noqa: S101  # one of the two, checked above
        if request.method not in _SAFE_METHODS and _from_another_site(request):
            _refuse(state, request, origin, "csrf", by=certified)
            raise AccessDenied(
                f"{certified.name}: a page of another site cannot make a change with this client certificate"
            )
        return _caller(state, certified, origin, via_cookie=False)
    token, via_cookie = found
    subject = state.authenticator.authenticate_token(token, origin=origin)
    if certified is not None and certified.name != subject.name:
        _refuse(state, request, origin, "the certificate and the token name different principals", by=subject)
        raise AuthenticationFailed(
            "the client certificate and the Bearer token or session belong to different principals"
        )
    if via_cookie and request.method not in _SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER) or form_token or ""
        if not hmac.compare_digest(sent.encode(), csrf_token(token).encode()):
            state.events.emit_denied("http.request", f"route:{request.url.path}"[:256], origin, "csrf")
            raise AccessDenied(
                f"{subject.name}: a change made with the session cookie needs its X-CSRF-Token "
                "(or, from a form, its csrf_token field)"
            )
    return _caller(state, subject, origin, via_cookie=via_cookie)


def _caller(state: ServerState, subject: Subject, origin: str, *, via_cookie: bool) -> Caller:
    acting = Acting(
        actor=Actor(subject.name, subject.kind, origin, token_id=subject.token_id),
        events=state.workspace_events,
        authorizer=state.policy.bind(subject),
    )
    return Caller(subject, acting, origin, via_cookie)


def cached_caller(state: ServerState, request: Request) -> Caller | None:
    """The caller behind a bearer token the token cache holds, answered from memory on the event loop;
    None whenever the full path is needed: a client certificate on the connection, a session cookie
    (its CSRF check), no credential or a malformed one (their refusal is an event), a token the cache
    does not hold, or one whose last use is due to be written."""
    if client_certificate(state, request) is not None:
        return None
    try:
        found = _credential(request)
    except AuthenticationFailed:
        return None
    if found is None or found[1]:
        return None
    origin = origin_of(request)
    subject = state.authenticator.cached_token(found[0], origin=origin)
    if subject is None:
        return None
    return _caller(state, subject, origin, via_cookie=False)


def guard_dependency(guard: Guard) -> Callable[[Request], Awaitable[None]]:
    """The FastAPI dependency that enforces `guard` and leaves the `Caller` on ``request.state``.

    A bearer token the token cache holds is answered on the event loop; otherwise the form's CSRF field
    (if any) is read there and the caller is authenticated in the thread pool, which asks the database.
    The policy decision is made in memory; only a denial, which writes an event, goes to the pool."""

    async def check(request: Request) -> None:
        state: ServerState = request.app.state.pipewarden
        if guard.kind == "public":
            request.state.caller = None
            return
        caller = cached_caller(state, request)
        if caller is None:
            form_token = await form_csrf(request)
            caller = await run_in_threadpool(authenticate, state, request, form_token=form_token)
        if guard.kind == "action":
            assert guard.action is not None  # noqa: S101  # Guard.needs sets both
            resource = guard.resource_for(request.path_params)
            if not caller.acting.authorizer.check(guard.action, resource).allowed:
                await run_in_threadpool(caller.acting.authorize, guard.action, resource)  # the denial's event
        request.state.caller = caller

    return check
