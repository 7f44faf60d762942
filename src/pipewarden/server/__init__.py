"""The HTTPS server: `create_app(settings)` (FastAPI) over the library, served by uvicorn with TLS.

Every route declares who may call it in the route table (`route_table(app)`); an app with a route that
does not is refused at start-up. Authentication is a bearer token (services, the CLI) or a login
session cookie with CSRF protection (browsers); authorization is the workspace's policy, deny by
default; every request that reaches a guarded route is one event in the audit log.

>>> from pipewarden.server import ServerSettings, create_app
>>> app = create_app(ServerSettings(tls_auto=True))  # doctest: +SKIP
"""

from __future__ import annotations

from pipewarden.server._app import create_app, route_table
from pipewarden.server._settings import ServerSettings
from pipewarden.server._table import Guard, RouteSpec

__all__ = ["Guard", "RouteSpec", "ServerSettings", "create_app", "route_table"]
