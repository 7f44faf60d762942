"""The limit bench_server.py measures pipewarden's server against: the same work, no security path.

    python benchmarks/server/_bare.py --workspace WS --port P --cert C --key K --files DIR [--hardened]

The same FastAPI and uvicorn as `pipewarden serve`, configured the same way (pipewarden's TLS context,
log level info with one access-log line per request, no server header, no proxy headers), with routes
that do the same library work as the secure ones and nothing else:

- ``GET /healthz``: the same database round trip (``SELECT 1`` in a read transaction);
- ``GET /v1/artifacts/{name}/versions/{version}``: ``ArtifactStore.resolve(NAME@VERSION)`` (the
  manifest read and its signature checked) and the same JSON (``routes._common.artifact_json``), as the
  secure route does, without a credential, a policy decision or an event;
- ``POST /v1/models/{name}/predict``: the same model, loaded the same way and once (`routes._models`'s
  `ModelCache`: read from the store, verified, its scan checked, scanned again, `safe_load`ed, the
  inference guard fitted on the data set in its lineage) and answered by the same function
  (`routes._models.answer`: the guard's verdict on each row, then the model's prediction), with the
  guard's per-caller watch keyed by one fixed name; no credential, no policy decision, no event;
- ``PUT /raw/{name}``: the request body streamed to a file in DIR (no scan, no encryption, no
  signature); ``GET /raw/{name}``: a file of DIR, streamed as it is (no verification, no decryption).

No middleware at all; with ``--hardened``, pipewarden's own middleware (rate limit, body limits,
security headers) and error handlers around the same routes, which separates their cost from the cost
of authentication, authorization and auditing.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse
from sqlalchemy import text

from pipewarden.server import ServerSettings
from pipewarden.server._hardening import BodyLimit, RateLimit, SecurityHeaders
from pipewarden.server._state import ServerState
from pipewarden.server._tls import TlsFiles, server_context
from pipewarden.server.routes._common import artifact_json
from pipewarden.server.routes._models import ModelCache, PredictBody, answer
from pipewarden.store import ArtifactRef
from pipewarden.workspace import Workspace

#: The name the guard's query-pattern watch keys the bare server's calls by (the secure server: the
#: authenticated principal's).
CALLER = "stage"


def bare_app(ws: Workspace, files: Path, *, hardened: bool, settings: ServerSettings) -> FastAPI:
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    db = ws.database()
    store = ws.store()
    # What the model cache reads the workspace and its store from; nothing else of it is used here.
    served_by = ServerState(workspace=ws, settings=settings)
    app.state.pipewarden = served_by
    models = ModelCache()

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        with db.transaction(write=False) as conn:
            conn.execute(text("SELECT 1"))
        return {"status": "ok"}

    @app.get("/v1/artifacts/{name:path}/versions/{version}")
    def metadata(name: str, version: int) -> dict[str, Any]:
        return artifact_json(store.resolve(ArtifactRef(name, version)))

    @app.post("/v1/models/{name:path}/predict")
    def predict(name: str, body: PredictBody) -> dict[str, Any]:
        return answer(models.get(served_by, name, None), body.rows, caller=CALLER)

    @app.put("/raw/{name}", status_code=201)
    async def upload(name: str, request: Request) -> dict[str, Any]:
        fd, tmp = tempfile.mkstemp(prefix=".upload.", dir=files)
        size = 0
        with os.fdopen(fd, "wb") as out:
            async for chunk in request.stream():
                out.write(chunk)
                size += len(chunk)
        os.replace(tmp, files / f"uploaded-{Path(name).name}")
        return {"size": size}

    @app.get("/raw/{name}")
    def download(name: str) -> FileResponse:
        return FileResponse(files / Path(name).name, media_type="application/octet-stream")

    if hardened:
        from pipewarden.server._problems import install_handlers

        install_handlers(app)
        app.add_middleware(RateLimit, per_minute=settings.rate_per_minute, exempt=("/healthz",))
        app.add_middleware(
            BodyLimit,
            default=settings.max_json_bytes,
            uploads=settings.max_upload_bytes,
            upload_routes=(("PUT", "/raw/"),),
        )
        app.add_middleware(SecurityHeaders, tls=True)
    return app


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workspace", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cert", type=Path, required=True)
    parser.add_argument("--key", type=Path, required=True)
    parser.add_argument("--files", type=Path, required=True)
    parser.add_argument("--rate", type=int, default=600)
    parser.add_argument("--hardened", action="store_true")
    args = parser.parse_args()
    files = TlsFiles(args.cert, args.key)
    settings = ServerSettings(
        workspace=args.workspace,
        port=args.port,
        tls_cert=args.cert,
        tls_key=args.key,
        rate_per_minute=args.rate,
    )
    app = bare_app(Workspace.open(args.workspace), args.files, hardened=args.hardened, settings=settings)
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=args.port,
        ssl_certfile=str(files.cert),
        ssl_keyfile=str(files.key),
        server_header=False,
        proxy_headers=False,
        log_level="info",
    )
    config.load()
    config.ssl = server_context(files)  # as `pipewarden serve` does: TLS 1.2+, its cipher list
    uvicorn.Server(config).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
