"""`create_app(settings)`: the FastAPI app over the library, with its route table checked at start-up."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import FastAPI

from pipewarden.server._hardening import BodyLimit, RateLimit, SecurityHeaders
from pipewarden.server._metrics import CountRequests, ServerMetrics
from pipewarden.server._problems import install_handlers
from pipewarden.server._state import ServerState
from pipewarden.server._table import GuardedRouter, RouteSpec, check_table

if TYPE_CHECKING:
    from pipewarden.server._settings import ServerSettings
    from pipewarden.workspace import Workspace

__all__ = ["create_app", "route_table"]

# FastAPI's own documentation routes: public by design (the OpenAPI document describes the API, it
# holds no data), and the only routes allowed without a guard.
_DOC_ROUTES = frozenset({"/openapi.json"})


def _routers() -> list[GuardedRouter]:
    from pipewarden.server import dashboard
    from pipewarden.server.routes import (
        _alerts,
        _artifacts,
        _audit,
        _data,
        _health,
        _identity,
        _models,
        _scan,
        _session,
    )

    return [
        _health.router,
        _session.router,
        _identity.router,
        _artifacts.router,
        _scan.router,
        _data.router,
        _models.router,
        _audit.router,
        _alerts.router,
        dashboard.router,
    ]


def create_app(settings: ServerSettings, *, workspace: Workspace | None = None) -> FastAPI:
    """The app for `settings` (and the workspace it names, unless one is given).

    Every route declares its guard; an app with a route that does not is refused here (`ConfigError`),
    before it serves anything. Errors become RFC 9457 problem documents; responses carry the security
    headers; bodies and request rates are limited.
    """
    from pipewarden import __version__
    from pipewarden.workspace import Workspace

    ws = workspace or Workspace.open(settings.workspace)
    app = FastAPI(
        title="pipewarden",
        version=__version__,
        description="The security layer for machine-learning pipelines: artifacts, audit, alerts.",
        # The interactive pages load their scripts from a CDN, which the content-security policy
        # forbids; the OpenAPI document itself is served.
        docs_url=None,
        redoc_url=None,
    )
    for router in _routers():
        app.include_router(router)
    app.state.route_table = check_table(list(app.routes), allowed_unguarded=_DOC_ROUTES)
    app.state.pipewarden = ServerState(workspace=ws, settings=settings)
    app.state.metrics = ServerMetrics()
    from pipewarden.server.routes._models import ModelCache

    app.state.models = ModelCache()
    install_handlers(app)
    app.add_middleware(CountRequests, metrics=app.state.metrics)
    app.add_middleware(RateLimit, per_minute=settings.rate_per_minute, exempt=("/healthz",))
    app.add_middleware(
        BodyLimit,
        default=settings.max_json_bytes,
        uploads=settings.max_upload_bytes,
        upload_routes=(("PUT", "/v1/artifacts/"), ("POST", "/v1/scan/")),
    )
    app.add_middleware(SecurityHeaders, tls=settings.tls)
    return app


def route_table(app: FastAPI) -> tuple[RouteSpec, ...]:
    """The app's route table: each route's method, path and guard."""
    table: tuple[RouteSpec, ...] = app.state.route_table
    return table
