"""Errors as problem documents (RFC 9457): one handler maps pipewarden's errors to HTTP statuses.

No stack trace, path of the server's files or exception text of a third-party library ever reaches
the client: an unexpected error is a 500 with a reference the operator finds in the server's log.
"""

from __future__ import annotations

import logging
import secrets
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from pipewarden import errors as e
from pipewarden.server._hardening import security_headers

__all__ = ["STATUS", "Problem", "install_handlers", "problem", "problem_responses", "without_server_paths"]

logger = logging.getLogger(__name__)

#: Each error family's status and problem type (most specific first: the first match wins).
STATUS: tuple[tuple[type[e.PipewardenError], int, str], ...] = (
    (e.LoginThrottled, 429, "login-throttled"),
    (e.SecondFactorNeeded, 401, "second-factor-needed"),
    (e.AuthenticationFailed, 401, "authentication-failed"),
    (e.AccessDenied, 403, "access-denied"),
    (e.ArtifactNotFound, 404, "not-found"),
    (e.ArtifactExists, 409, "already-exists"),
    (e.ArtifactRefused, 422, "refused-by-scan"),
    (e.IntegrityError, 409, "integrity"),
    (e.UnsafeModelError, 422, "unsafe-model"),
    (e.GuardError, 422, "refused-by-guard"),
    (e.ConfigError, 400, "bad-request"),
    (e.DataError, 400, "bad-data"),
    (e.ScanError, 400, "scan-error"),
    (e.DatabaseError, 503, "database-unavailable"),
    (e.PipewardenError, 400, "bad-request"),
)


class Problem(BaseModel):
    """An error, as every error is sent: an RFC 9457 problem document (``application/problem+json``)."""

    type: str = Field(description="urn:pipewarden:problem:<kind>")
    title: str
    status: int
    detail: str
    instance: str = Field(description="The path of the request that failed.")
    reference: str | None = Field(
        default=None, description="500 only: what the operator looks for in the server's log."
    )


#: What each error status means, as the OpenAPI document declares it (the kinds are docs/server.md's).
_DECLARED: dict[int, str] = {
    400: "Bad request: bad-request, bad-data, scan-error",
    401: "No credential, or one not accepted: authentication-failed, second-factor-needed",
    403: "Not allowed: access-denied (the policy, a token's scopes, or a missing CSRF token)",
    404: "Not found: not-found",
    409: "Conflict: already-exists, integrity (a stored artifact failed verification)",
    413: "The request body is over its limit: too-large",
    422: "Refused: refused-by-scan, unsafe-model, refused-by-guard, invalid-request",
    429: "Too many requests: login-throttled, rate-limited (with Retry-After)",
    500: "The server failed: internal (with a reference for the operator)",
    503: "The database does not answer: database-unavailable",
}
_CREDENTIAL_STATUSES = frozenset({401, 403})


def problem_responses(*, signed_in: bool, extra: tuple[int, ...] = ()) -> dict[int | str, dict[str, Any]]:
    """The error responses a route declares in the OpenAPI document, each a `Problem`: every status
    above, without 401 and 403 for a route that needs no credential (unless named in `extra`)."""
    statuses = [s for s in _DECLARED if signed_in or s not in _CREDENTIAL_STATUSES or s in extra]
    return {
        status: {
            "description": _DECLARED[status],
            "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status in statuses
    }


def problem(
    status: int,
    kind: str,
    title: str,
    detail: str,
    instance: str,
    *,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body = {
        "type": f"urn:pipewarden:problem:{kind}",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": instance,
        **extra,
    }
    headers = dict(headers or {})
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="pipewarden"'
    return JSONResponse(body, status_code=status, headers=headers, media_type="application/problem+json")


def without_server_paths(detail: str, root: Path) -> str:
    """A library message may name a file of the server's (in its workspace: a spool file, the store's
    folder); the client sees ``<workspace>`` instead."""
    for form in sorted({str(root.absolute()), str(root.resolve())}, key=len, reverse=True):
        detail = detail.replace(form, "<workspace>")
    return detail


def _for(exc: e.PipewardenError) -> tuple[int, str]:
    for family, status, kind in STATUS:
        if isinstance(exc, family):
            return status, kind
    return 400, "bad-request"  # pragma: no cover  # PipewardenError is last in STATUS


def _document_problems(app: FastAPI) -> None:
    """Add `Problem` to the OpenAPI document's schemas, which the routes' error responses refer to.

    FastAPI files a response model under the route's own media type (``application/json``); problems
    are ``application/problem+json``, so the routes refer to the schema and it is added here."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = build()
            schemas = document.setdefault("components", {}).setdefault("schemas", {})
            schemas["Problem"] = Problem.model_json_schema()
        return app.openapi_schema  # type: ignore[return-value]  # set by build()

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to adjust the document


def install_handlers(app: FastAPI) -> None:
    _document_problems(app)

    @app.exception_handler(e.PipewardenError)
    async def pipewarden_error(request: Request, exc: e.PipewardenError) -> JSONResponse:
        status, kind = _for(exc)
        title = kind.replace("-", " ")
        detail = without_server_paths(str(exc), request.app.state.pipewarden.workspace.root)
        if isinstance(exc, e.AuthenticationFailed) and not isinstance(exc, e.LoginThrottled):
            detail = "the credentials were not accepted" if "Bearer" not in detail else detail
        return problem(status, kind, title, detail[:2000], request.url.path)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        where = [
            ".".join(str(p) for p in err.get("loc", ())) + ": " + str(err.get("msg", ""))
            for err in exc.errors()
        ]
        return problem(422, "invalid-request", "invalid request", "; ".join(where)[:2000], request.url.path)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem(exc.status_code, "http", str(exc.detail), str(exc.detail), request.url.path)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        reference = secrets.token_hex(8)
        logger.exception("request %s %s failed (reference %s)", request.method, request.url.path, reference)
        return problem(
            500,
            "internal",
            "internal error",
            f"the server failed; the operator can find reference {reference} in its log",
            request.url.path,
            # This handler runs outside the app's middleware, so it adds the security headers itself.
            headers=security_headers(tls=request.app.state.pipewarden.settings.tls),
            reference=reference,
        )
