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
from starlette.exceptions import HTTPException as StarletteHTTPException

from pipewarden import errors as e
from pipewarden.server._hardening import security_headers

__all__ = ["STATUS", "install_handlers", "problem"]

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


def _without_server_paths(detail: str, root: Path) -> str:
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


def install_handlers(app: FastAPI) -> None:
    @app.exception_handler(e.PipewardenError)
    async def pipewarden_error(request: Request, exc: e.PipewardenError) -> JSONResponse:
        status, kind = _for(exc)
        title = kind.replace("-", " ")
        detail = _without_server_paths(str(exc), request.app.state.pipewarden.workspace.root)
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
