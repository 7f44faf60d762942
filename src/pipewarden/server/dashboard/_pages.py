"""The dashboard's pages: signing in and out, the overview, the verifications it offers, its static files.

Every page is a route of the route table with its guard, like the API's, and reads through the same
library calls (`GuardedStore`, `AlertBook`, the audit log), each page view one event. The overview
shows what the caller's roles allow, each part decided by the policy, and is one ``dashboard.view``
event naming the parts it showed.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from pipewarden.errors import (
    AuthenticationFailed,
    ConfigError,
    DatabaseError,
    IntegrityError,
    LoginThrottled,
    PipewardenError,
)
from pipewarden.server._caller import SESSION_COOKIE, csrf_token, origin_of
from pipewarden.server._table import Guard, GuardedRouter
from pipewarden.server.dashboard._render import (
    HOME,
    LOGIN,
    STATIC,
    Form,
    PageRoute,
    allowed,
    caller_of,
    done,
    form_fields,
    render,
    safe_next,
    server_state,
)
from pipewarden.server.dashboard._summary import Verifications, activity, chart

router = GuardedRouter(tags=["dashboard"], include_in_schema=False, route_class=PageRoute)

FormFields = Annotated[Form, Depends(form_fields)]
_SEVERITIES = ("critical", "high", "medium", "low", "info")


def verifications(request: Request) -> Verifications:
    """The verifications this replica has found in the log so far (kept with the app)."""
    found: Verifications | None = getattr(request.app.state, "dashboard_verifications", None)
    if found is None:
        found = Verifications()
        request.app.state.dashboard_verifications = found
    return found


# --- static files and the root ----------------------------------------------------------------------


@router.get_("/ui/static/{name}", guard=Guard.public())
def static(name: str, request: Request) -> Response:
    """One of the dashboard's own files, by exact name; nothing else is served from here."""
    found = STATIC.get(name)
    if found is None:
        raise HTTPException(404, "no such file")
    current = request.query_params.get("v") == found.version
    cache = "public, max-age=31536000, immutable" if current else "no-cache"
    return Response(found.body, media_type=found.media_type, headers={"cache-control": cache})


@router.get_("/", guard=Guard.signed_in())
def root() -> RedirectResponse:
    return RedirectResponse(HOME, status_code=303)


# --- signing in and out -----------------------------------------------------------------------------


@router.get_("/ui/login", guard=Guard.public())
def login_form(request: Request) -> HTMLResponse:
    return _login_page(request, next_page=safe_next(request.query_params.get("next")))


def _login_page(
    request: Request, *, next_page: str, status: int = 200, message: str = "", name: str = ""
) -> HTMLResponse:
    return render(request, "login.html", status=status, message=message, name=name, next=next_page)


def _same_site(request: Request) -> bool:
    """Whether a form post came from this site's own page. A login posted from another site's page
    (login CSRF: signing the victim in as the attacker) is refused. Browsers say where a request comes
    from in ``Sec-Fetch-Site``; ``Origin`` is ``null`` under the server's ``Referrer-Policy:
    no-referrer``, so it counts only when it names a site."""
    fetched_from = request.headers.get("sec-fetch-site")
    if fetched_from is not None and fetched_from not in ("same-origin", "none"):
        return False
    origin = request.headers.get("origin", "null")
    return origin == "null" or origin.partition("://")[2] == request.headers.get("host", "")


@router.post_("/ui/login", guard=Guard.public())
async def login(request: Request) -> Response:
    """The login form: password and TOTP code (or a recovery code) in, the same session cookies as
    ``POST /v1/session`` out, then on to the page asked for."""
    try:
        form = await form_fields(request)
        next_page = safe_next(form.one("next", label="next", max_length=512, required=False))
        name = form.one("name", label="Name", max_length=128)
        password = form.one("password", label="Password", max_length=1024)
        code = form.one("totp_code", label="Authentication code", max_length=16, required=False)
        recovery = form.one("recovery_code", label="Recovery code", max_length=64, required=False)
    except ConfigError as exc:
        return _login_page(request, next_page=HOME, status=400, message=str(exc))
    if not _same_site(request):
        return _login_page(
            request, next_page=HOME, status=403, message="This form was sent from another site."
        )
    state = server_state(request)
    try:
        result = await run_in_threadpool(
            lambda: state.authenticator.login(
                name,
                password,
                origin=origin_of(request),
                totp_code=code or None,
                recovery_code=recovery or None,
            )
        )
    except LoginThrottled as exc:
        return _login_page(request, next_page=next_page, status=429, message=str(exc), name=name)
    except AuthenticationFailed:
        message = "The name, password or code was not accepted."
        return _login_page(request, next_page=next_page, status=401, message=message, name=name)
    if result.session is None:
        if result.status.value == "second_factor_needed":
            message = "Enter the code from your authenticator app (or a recovery code)."
            return _login_page(request, next_page=next_page, status=401, message=message, name=name)
        message = (
            f"{name} must enrol a second factor before signing in here: "
            "run 'pipewarden user enrol-mfa' on the command line."
        )
        return _login_page(request, next_page=next_page, status=403, message=message, name=name)
    session = result.session
    max_age = max(0, int((session.expires_at - datetime.now(UTC)).total_seconds()))
    secure = state.settings.tls
    response = RedirectResponse(next_page, status_code=303)
    # The cookies POST /v1/session sets: the session (HttpOnly) and its CSRF value, both SameSite=Strict.
    response.set_cookie(
        SESSION_COOKIE, session.token, max_age=max_age, httponly=True, secure=secure, samesite="strict"
    )
    response.set_cookie(
        "pw_csrf",
        csrf_token(session.token),
        max_age=max_age,
        httponly=False,
        secure=secure,
        samesite="strict",
    )
    return response


@router.post_("/ui/logout", guard=Guard.signed_in())
def logout(request: Request) -> Response:
    """End the session (revoked, not forgotten) and forget its cookies."""
    me = caller_of(request)
    header = request.headers.get("authorization", "")
    token = header.partition(" ")[2].strip() if header else request.cookies.get(SESSION_COOKIE, "")
    try:
        server_state(request).authenticator.logout(token, origin=me.origin)
    except PipewardenError as exc:
        # As DELETE /v1/session: a logout refused before the identity part records one is recorded here.
        me.acting.emit("auth.logout", f"user:{me.subject.name}", "error", {"reason": type(exc).__name__})
        raise
    response = done(request, to=LOGIN, message="Signed out.")
    response.delete_cookie(SESSION_COOKIE)
    response.delete_cookie("pw_csrf")
    return response


# --- the overview -----------------------------------------------------------------------------------


def _alert_summary(state: Any) -> dict[str, Any]:
    from pipewarden.monitor import AlertBook

    open_alerts = AlertBook(state.workspace.database()).alerts(status=("firing", "acknowledged"))
    counts = dict.fromkeys(_SEVERITIES, 0)
    for alert in open_alerts:
        counts[alert.severity.label] += 1
    return {
        "counts": counts,
        "total": len(open_alerts),
        "firing": sum(a.status == "firing" and a.silenced_by is None for a in open_alerts),
        "acknowledged": sum(a.status == "acknowledged" for a in open_alerts),
        "silenced": sum(a.silenced_by is not None for a in open_alerts),
        "top": open_alerts[:5],
    }


def _log_summary(request: Request, state: Any) -> dict[str, Any]:
    log = state.workspace.audit_log()
    try:
        act = activity(log)
        tail = log.tail(1)
        checks = verifications(request).refresh(state.workspace.database(), tail[-1].seq if tail else 0)
    except (IntegrityError, ConfigError, DatabaseError) as exc:
        # A damaged record is what the audit card exists to show, not a reason to fail the page.
        return {"problem": str(exc)[:500]}
    return {
        "problem": None,
        "activity": act,
        "chart": chart(act),
        "audit": checks.audit,
        "store": checks.store,
    }


@router.get_("/ui/", guard=Guard.signed_in())
def overview(request: Request) -> HTMLResponse:
    me = caller_of(request)
    state = server_state(request)
    may = {
        "alerts": allowed(me, "alert.read", "alert:*"),
        "log": allowed(me, "audit.read", "audit:log"),
        "verify_audit": allowed(me, "audit.verify", "audit:log"),
        "verify_store": allowed(me, "artifact.verify", "artifact:*"),
    }

    def read() -> dict[str, Any]:
        return {
            "alerts": _alert_summary(state) if may["alerts"] else None,
            "log": _log_summary(request, state) if may["log"] else None,
        }

    shown = me.acting.perform(
        "dashboard.view",
        "dashboard:overview",
        read,
        # Each part was decided by the policy above; the view shows only those allowed.
        checked_by_caller=True,
        describe=lambda d: {"sections": ",".join(k for k, v in d.items() if v is not None) or "none"},
    )
    return render(request, "overview.html", may=may, severities=_SEVERITIES, now=datetime.now(UTC), **shown)


@router.post_("/ui/audit/verify", guard=Guard.needs("audit.verify", "audit:log"))
def verify_audit(request: Request, form: FormFields) -> Response:
    """Verify the whole audit log (chain and checkpoints), as ``POST /v1/audit/verify`` does."""
    me = caller_of(request)
    log = server_state(request).workspace.audit_log()
    back = safe_next(form.one("back", label="back", max_length=512, required=False))

    def check() -> Any:
        result = log.verify()
        if result.problem is not None:
            raise IntegrityError(f"audit log {result.log_id}: {result.problem.describe()}")
        return result

    try:
        result = me.acting.perform(
            "audit.verify",
            "audit:log",
            check,
            describe=lambda r: {"records": r.records, "checkpoints": r.checkpoints, "exported": r.exported},
        )
    except IntegrityError as exc:
        return done(request, to=back, message=f"The audit log failed verification: {exc}", status=409)
    return done(request, to=back, message=f"The audit log verified: {result.describe()}")


@router.post_("/ui/store/verify", guard=Guard.needs("artifact.verify", "artifact:*"))
def verify_store(request: Request, form: FormFields) -> Response:
    """Verify every artifact version in the store end to end (signature, key slot, chunks, digest)."""
    from pipewarden.store import GuardedStore

    me = caller_of(request)
    back = safe_next(form.one("back", label="back", max_length=512, required=False))
    result = GuardedStore(server_state(request).store, me.acting).verify()
    if result.ok:
        return done(request, to=back, message=f"The store verified: {result.checked} versions intact.")
    failed = ", ".join(ref for ref, _ in result.failures[:20])
    message = f"The store failed verification: {len(result.failures)} of {result.checked} versions ({failed})"
    return done(request, to=back, message=message, status=409)
