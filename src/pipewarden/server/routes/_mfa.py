"""A person's second factor over HTTP: enrol a TOTP authenticator, confirm it, and make new recovery
codes.

These routes are public in the route table, like the login: a user who must enrol before getting a
session has none to present. Each authenticates afresh, in the request, exactly as the identity part
does for the command line: the password, and the current second factor once one is enrolled, through
the login throttle, each attempt one event. They answer only over TLS: the enrolment's secret and the
recovery codes are shown once, in the answer, and must not cross a network in the clear (a request
over plain HTTP is refused before any credential is checked, and recorded).
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from pydantic import BaseModel, Field

from pipewarden.errors import ConfigError
from pipewarden.server._caller import csrf_token, origin_of
from pipewarden.server._problems import problem_responses
from pipewarden.server._table import Guard, GuardedRouter
from pipewarden.server.routes._common import state

router = GuardedRouter(tags=["mfa"])

# Public, yet answering 401 when the credentials are not accepted (as the login does).
_RESPONSES = problem_responses(signed_in=False, extra=(401,))


def _over_tls(request: Request) -> str:
    """The client's origin; `ConfigError` (and a denied ``http.request`` event, as for any request
    refused before a credential is checked) for a request made over plain HTTP."""
    origin = origin_of(request)
    if request.url.scheme != "https":
        state(request).events.emit_denied(
            "http.request", f"route:{request.url.path}"[:256], origin, "plain http"
        )
        raise ConfigError(f"{request.url.path}: answers only over TLS; it shows a secret once")
    return origin


class Credentials(BaseModel):
    name: str = Field(min_length=1, max_length=128)
    password: str = Field(min_length=1, max_length=1024)
    totp_code: str | None = Field(default=None, max_length=16)
    recovery_code: str | None = Field(default=None, max_length=64)


@router.post_("/v1/mfa/enrolment", guard=Guard.public(), responses=_RESPONSES)
def begin_enrolment(body: Credentials, request: Request) -> dict[str, Any]:
    """Start enrolling a TOTP authenticator: the secret and its ``otpauth://`` URI (for a QR code),
    shown once. Needs the password, and the current second factor when one is enrolled; the new one
    replaces it only once confirmed."""
    origin = _over_tls(request)
    enrolment = state(request).authenticator.begin_mfa_enrolment(
        body.name,
        password=body.password,
        origin=origin,
        totp_code=body.totp_code,
        recovery_code=body.recovery_code,
    )
    return {"name": enrolment.principal, "secret": enrolment.secret, "uri": enrolment.uri}


class Confirmation(BaseModel):
    name: str = Field(min_length=1, max_length=128)
    password: str = Field(min_length=1, max_length=1024)
    totp_code: str = Field(min_length=1, max_length=16)


@router.post_("/v1/mfa/enrolment/confirm", guard=Guard.public(), responses=_RESPONSES)
def confirm_enrolment(body: Confirmation, request: Request) -> dict[str, Any]:
    """Finish the enrolment with a code from the new authenticator: ten recovery codes (shown once)
    replace any old ones, and a session that passed MFA is opened (its token in the answer)."""
    origin = _over_tls(request)
    done = state(request).authenticator.confirm_mfa_enrolment(
        body.name, body.totp_code, password=body.password, origin=origin
    )
    out: dict[str, Any] = {
        "name": done.recovery_codes.principal,
        "recovery_codes": list(done.recovery_codes.codes),
        "status": done.login.status.value,
    }
    session = done.login.session
    if session is not None:
        out |= {
            "token": session.token,
            "token_id": session.token_id,
            "expires_at": session.expires_at.isoformat(),
            "csrf_token": csrf_token(session.token),
        }
    return out


@router.post_("/v1/mfa/recovery-codes", guard=Guard.public(), responses=_RESPONSES)
def new_recovery_codes(body: Credentials, request: Request) -> dict[str, Any]:
    """Replace every recovery code with ten new ones (shown once); needs the password and the second
    factor (a one-time code or a recovery code)."""
    origin = _over_tls(request)
    codes = state(request).authenticator.regenerate_recovery_codes(
        body.name,
        password=body.password,
        origin=origin,
        totp_code=body.totp_code,
        recovery_code=body.recovery_code,
    )
    return {"name": codes.principal, "recovery_codes": list(codes.codes)}
