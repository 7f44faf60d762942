"""Logging in and out, and who one is: ``/v1/session`` and ``/v1/whoami``."""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response
from pydantic import BaseModel, Field

from pipewarden.errors import PipewardenError
from pipewarden.server._caller import SESSION_COOKIE, csrf_token, origin_of
from pipewarden.server._problems import problem_responses
from pipewarden.server._table import Guard, GuardedRouter
from pipewarden.server.routes._common import caller, state

router = GuardedRouter(tags=["session"])


class Login(BaseModel):
    name: str = Field(min_length=1, max_length=128)
    password: str = Field(min_length=1, max_length=1024)
    totp_code: str | None = Field(default=None, max_length=16)
    recovery_code: str | None = Field(default=None, max_length=64)


# A login is public, yet answers 401 when the credentials are not accepted.
@router.post_("/v1/session", guard=Guard.public(), responses=problem_responses(signed_in=False, extra=(401,)))
def login(body: Login, request: Request, response: Response) -> dict[str, Any]:
    """Password and second factor in; a session out. The token is in the body (for the CLI and
    services) and, for browsers, in an HttpOnly, Secure, SameSite=Strict cookie with its CSRF value."""
    result = state(request).authenticator.login(
        body.name,
        body.password,
        origin=origin_of(request),
        totp_code=body.totp_code,
        recovery_code=body.recovery_code,
    )
    out: dict[str, Any] = {"status": result.status.value, "name": result.subject.name}
    if result.session is not None:
        session = result.session
        csrf = csrf_token(session.token)
        max_age = max(0, int((session.expires_at - _now()).total_seconds()))
        secure = state(request).settings.tls
        response.set_cookie(
            SESSION_COOKIE, session.token, max_age=max_age, httponly=True, secure=secure, samesite="strict"
        )
        response.set_cookie(
            "pw_csrf", csrf, max_age=max_age, httponly=False, secure=secure, samesite="strict"
        )
        out |= {
            "token": session.token,
            "token_id": session.token_id,
            "expires_at": session.expires_at.isoformat(),
            "csrf_token": csrf,
        }
    if result.recovery_codes_left is not None:
        out["recovery_codes_left"] = result.recovery_codes_left
    return out


@router.delete_("/v1/session", guard=Guard.signed_in())
def logout(request: Request, response: Response) -> dict[str, Any]:
    """End the session presented (revoked, not just forgotten) and clear the cookies."""
    me = caller(request)
    header = request.headers.get("authorization", "")
    token = header.partition(" ")[2].strip() if header else request.cookies.get(SESSION_COOKIE, "")
    try:
        info = state(request).authenticator.logout(token, origin=me.origin)
    except PipewardenError as exc:
        # The identity part records a logout that ends a session; one refused before that (an API
        # token is not a session) is recorded here, so every request to a guarded route is one event.
        me.acting.emit("auth.logout", f"user:{me.subject.name}", "error", {"reason": type(exc).__name__})
        raise
    response.delete_cookie(SESSION_COOKIE)
    response.delete_cookie("pw_csrf")
    return {"ended": info.token_id}


@router.get_("/v1/whoami", guard=Guard.signed_in())
def whoami(request: Request) -> dict[str, Any]:
    me = caller(request)
    s = me.subject
    return {
        "name": s.name,
        "kind": s.kind,
        "mfa": s.mfa,
        "grants": [{"role": g.role, "scope": g.scope} for g in s.grants],
        "token_id": s.token_id,
        "token_scopes": sorted(s.token_scopes) if s.token_scopes is not None else None,
    }


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)
