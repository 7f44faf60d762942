"""`pipewarden serve`: the HTTPS server over a workspace (needs the `server` extra)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipewarden.cli._app import app, err_console, fail
from pipewarden.cli._common import WorkspaceOption
from pipewarden.errors import ConfigError, PipewardenError


@app.command("serve")
def serve(
    workspace: WorkspaceOption = None,
    host: Annotated[str, typer.Option(envvar="PIPEWARDEN_HOST", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="PIPEWARDEN_PORT", help="TCP port.")] = 8443,
    tls_cert: Annotated[
        Path | None, typer.Option("--tls-cert", envvar="PIPEWARDEN_TLS_CERT", help="PEM certificate (chain).")
    ] = None,
    tls_key: Annotated[
        Path | None, typer.Option("--tls-key", envvar="PIPEWARDEN_TLS_KEY", help="PEM private key.")
    ] = None,
    tls: Annotated[
        str | None,
        typer.Option("--tls", help="'auto': a self-signed certificate kept in the workspace (tls/)."),
    ] = None,
    client_ca: Annotated[
        Path | None,
        typer.Option(
            "--tls-client-ca",
            "--client-ca",
            envvar=["PIPEWARDEN_TLS_CLIENT_CA", "PIPEWARDEN_CLIENT_CA"],
            help="Mutual TLS: ask clients for a certificate this CA issued (optional for them); a service "
            "account's registered certificate then authenticates it.",
        ),
    ] = None,
    insecure_http: Annotated[
        bool, typer.Option("--insecure-http", help="Plain HTTP, only on a loopback address (development).")
    ] = False,
    rate: Annotated[
        int, typer.Option("--rate", help="Requests per minute per origin and per credential.")
    ] = 600,
    token_cache: Annotated[
        float,
        typer.Option(
            "--token-cache",
            envvar="PIPEWARDEN_TOKEN_CACHE_SECONDS",
            help="Seconds a token that worked is answered from memory (0: never); a revocation made on "
            "another replica takes effect within this time.",
        ),
    ] = 5.0,
) -> None:
    """Serve the API over HTTPS: TLS 1.2 or newer, every route authenticated and authorized, every
    request audited. Give --tls-cert and --tls-key, or --tls auto; plain HTTP only with --insecure-http
    on a loopback address."""
    try:
        import uvicorn

        from pipewarden.server import ServerSettings, create_app
        from pipewarden.server._tls import (
            TlsFiles,
            TlsScopeProtocol,
            auto_certificate,
            fingerprint,
            server_context,
        )
        from pipewarden.workspace import Workspace
    except ImportError as exc:
        raise fail(
            ConfigError(f"the server needs its extra: pip install 'pipewarden[server]' ({exc.name})")
        ) from None
    try:
        if tls is not None and tls != "auto":
            raise ConfigError(f"--tls {tls}: the only value is 'auto'")
        settings = ServerSettings(
            workspace=workspace,
            host=host,
            port=port,
            tls_cert=tls_cert,
            tls_key=tls_key,
            tls_auto=tls == "auto",
            insecure_http=insecure_http,
            client_ca=client_ca,
            rate_per_minute=rate,
            token_cache_seconds=token_cache,
        )
        ws = Workspace.open(workspace)
        files: TlsFiles | None = None
        if settings.tls_auto:
            files = auto_certificate(ws.root / "tls", hosts=[host])
            err_console().print(
                f"TLS certificate {files.cert} (self-signed), SHA-256 fingerprint "
                f"{fingerprint(files.cert.read_bytes())}",
                markup=False,
                highlight=False,
                # A fingerprint is colon-separated hex: ":AB:" must not become an emoji.
                emoji=False,
                soft_wrap=True,
            )
        elif tls_cert is not None and tls_key is not None:
            files = TlsFiles(tls_cert, tls_key)
        context = server_context(files, client_ca=client_ca) if files is not None else None
        application = create_app(settings, workspace=ws)
    except PipewardenError as exc:
        raise fail(exc) from None
    config = uvicorn.Config(
        application,
        host=host,
        port=port,
        ssl_certfile=str(files.cert) if files else None,
        ssl_keyfile=str(files.key) if files else None,
        server_header=False,
        proxy_headers=False,
        # Tells the app which client certificate each connection presented (the ASGI TLS extension).
        http=TlsScopeProtocol,
        log_level="info",
    )
    config.load()
    if context is not None:
        config.ssl = context  # ours: TLS 1.2+, the cipher list, client certificates
    scheme = "https" if context is not None else "http"
    err_console().print(
        f"serving {scheme}://{host}:{port}/ (OpenAPI at /openapi.json)", markup=False, highlight=False
    )
    uvicorn.Server(config).run()
