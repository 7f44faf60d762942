"""`pipewarden --server URL ...`: the commands that work against a server instead of a workspace.

`login`, `logout` and `whoami`; `store put|get|ls|verify|lineage`; `audit tail|verify`; `alerts
list|ack`. The credential is ``$PIPEWARDEN_TOKEN``, else the session `pipewarden --server URL login`
kept for that server; a service account may present a client certificate instead (``--client-cert``
and ``--client-key``, mutual TLS), with no token at all.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pipewarden.client import RemoteClient

__all__ = ["configure", "remote", "server_url"]

_SETTINGS: dict[str, str | Path | None] = {
    "server": None,
    "ca": None,
    "client_cert": None,
    "client_key": None,
}


def configure(
    server: str | None, ca: Path | None, *, client_cert: Path | None = None, client_key: Path | None = None
) -> None:
    """The root options: the server, the CA to verify it by, and a client certificate (mutual TLS)."""
    _SETTINGS["server"] = server.rstrip("/") if server else None
    _SETTINGS["ca"] = ca
    _SETTINGS["client_cert"] = client_cert
    _SETTINGS["client_key"] = client_key


def server_url() -> str | None:
    found = _SETTINGS["server"]
    return str(found) if found else None


def remote(*, token: bool = True) -> RemoteClient | None:
    """The client for ``--server``, with the caller's credential; None without ``--server``."""
    url = server_url()
    if url is None:
        return None
    from pipewarden.cli._app import fail
    from pipewarden.client import RemoteClient, RemoteSessions
    from pipewarden.errors import PipewardenError
    from pipewarden.identity import TOKEN_ENV

    ca, cert, key = _SETTINGS["ca"], _SETTINGS["client_cert"], _SETTINGS["client_key"]
    credential = None
    try:
        if token:
            credential = os.environ.get(TOKEN_ENV, "").strip() or RemoteSessions.default().load(url)
        return RemoteClient(
            url,
            token=credential,
            ca=Path(ca) if ca else None,
            client_cert=Path(cert) if cert else None,
            client_key=Path(key) if key else None,
        )
    except PipewardenError as exc:
        raise fail(exc) from None


# --- the commands, against a server ------------------------------------------------------------------
# Each prints what its workspace counterpart prints, from the server's answer.


def login(
    client: RemoteClient, *, name: str, password: str, totp_code: str | None, recovery: str | None
) -> None:
    import typer

    from pipewarden.client import RemoteSessions
    from pipewarden.errors import AuthenticationFailed

    answer = client.login(name, password, totp_code=totp_code, recovery_code=recovery)
    if answer["status"] == "second_factor_needed" and totp_code is None and recovery is None:
        from pipewarden.cli._login import second_factor

        code, recovery = second_factor(None)
        answer = client.login(name, password, totp_code=code, recovery_code=recovery)
    if answer["status"] != "signed_in":
        raise AuthenticationFailed(
            f"{name}: {answer['status'].replace('_', ' ')}; enrol your authenticator with the server's "
            "operator (pipewarden user enrol-mfa on the workspace) and log in again"
        )
    url = server_url() or client.url
    path = RemoteSessions.default().save(url, answer["token"], answer["expires_at"])
    typer.echo(f"logged in to {url} as {answer['name']} until {answer['expires_at']} (session in {path})")


def logout(client: RemoteClient) -> None:
    import typer

    from pipewarden.client import RemoteSessions

    url = server_url() or client.url
    try:
        client.logout()
    finally:
        RemoteSessions.default().forget(url)
    typer.echo(f"logged out of {url}")


def whoami(client: RemoteClient) -> None:
    import typer

    me = client.whoami()
    grants = ", ".join(f"{g['role']} ({g['scope']})" for g in me["grants"]) or "no roles"
    typer.echo(f"{me['name']} ({me['kind']}) at {client.url}: {grants}; MFA {'yes' if me['mfa'] else 'no'}")


def store_put(
    client: RemoteClient, file: Path, *, name: str, parents: tuple[str, ...], media_type: str | None
) -> None:
    import typer

    art = client.put(file, name=name, parents=parents, media_type=media_type)
    typer.echo(
        f"stored {art['ref']}  {art['size']} bytes  sha256:{art['sha256']}  scan: {art['scan']['verdict']}"
    )


def store_get(client: RemoteClient, ref: str, output: Path) -> None:
    import typer

    got = client.get(ref, output)
    typer.echo(f"{got['ref']} -> {output}  sha256:{got['sha256']}")


def store_ls(client: RemoteClient, name: str | None, *, as_json: bool) -> None:
    import json

    import typer

    arts = client.artifacts(name)
    if as_json:
        typer.echo(json.dumps(arts, indent=2))
        return
    for a in arts:
        typer.echo(
            f"{a['ref']:<32} {a['size']:>12}  sha256:{a['sha256'][:16]}  {a['created_at']}  "
            f"by {a['created_by']}  scan: {a['scan']['verdict']}"
        )


def store_verify(client: RemoteClient, name: str | None) -> int:
    import typer

    from pipewarden.errors import ConfigError

    if name is None:
        raise ConfigError("with --server, name the artifact to verify")
    result = client.verify(name)
    for failure in result["failures"]:
        typer.echo(f"FAILED {failure['ref']}: {failure['problem']}")
    typer.echo(f"checked {result['checked']} version(s): {len(result['failures'])} failed")
    return 0 if result["ok"] else 1


def store_lineage(client: RemoteClient, ref: str) -> None:
    import typer

    def lines(node: dict[str, object], indent: str) -> list[str]:
        a = node["artifact"]
        assert isinstance(a, dict)  # noqa: S101  # the server's lineage document
        out = [f"{indent}{a['ref']}  sha256:{str(a['sha256'])[:16]}  {a['created_at']}  by {a['created_by']}"]
        for parent in node["parents"]:  # type: ignore[attr-defined]
            out += lines(parent, indent + "  ")
        return out

    typer.echo("\n".join(lines(client.lineage(ref), "")))


def audit_tail(client: RemoteClient, n: int) -> None:
    import typer

    for r in client.audit_records(limit=n):
        typer.echo(
            f"{r['seq']:>8}  {r['time']}  {r['outcome']:<7}  {r['actor_kind']}:{r['actor']}  "
            f"{r['action']}  {r['resource']}"
        )


def audit_verify(client: RemoteClient) -> None:
    import typer

    typer.echo(client.audit_verify()["summary"])


def alerts_list(client: RemoteClient, status: str) -> None:
    import typer

    found = client.alerts(status=status)
    if not found:
        typer.echo("no alerts")
    for a in found:
        typer.echo(
            f"{a['id']:>5}  {a['severity']:<8} {a['status']:<12} {a['rule_id']}  {a['title']}  "
            f"x{a['detections']}"
        )


def alerts_ack(client: RemoteClient, alert_id: int) -> None:
    import typer

    alert = client.acknowledge(alert_id)
    typer.echo(f"alert {alert['id']} acknowledged ({alert['rule_id']} {alert['title']})")
