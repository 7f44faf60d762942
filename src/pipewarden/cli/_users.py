"""`pipewarden user ...` and `pipewarden token ...`: principals and their API tokens.

Every command acts as the logged-in principal (`pipewarden login` or
``$PIPEWARDEN_TOKEN``), authorized by the workspace's policy; every change and
every refusal is one event. The one exception is ``user add --bootstrap``:
while no enabled administrator exists, whoever holds the workspace's key files
may create the first one (as ``pipewarden init --admin`` does). A person's
own credentials (``user password``, ``recovery-codes``, ``enrol-mfa``) and
``user reset-password`` are in `pipewarden.cli._account`.
"""

from __future__ import annotations

import json
import re
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from pipewarden.cli._app import app, err_console, fail
from pipewarden.cli._common import WorkspaceOption
from pipewarden.errors import ConfigError, PipewardenError

if TYPE_CHECKING:
    from pipewarden.identity import Principal, TokenInfo
    from pipewarden.workspace import Workspace

__all__ = [
    "JsonOption",
    "PasswordFileOption",
    "bootstrap_admin",
    "interactive",
    "new_password",
    "parse_lifetime",
    "read_secret_file",
    "workspace_at",
]

user_app = typer.Typer(help="Users and service accounts.", no_args_is_help=True)
token_app = typer.Typer(help="API tokens: create, list, revoke.", no_args_is_help=True)
app.add_typer(user_app, name="user")
app.add_typer(token_app, name="token")

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
PasswordFileOption = Annotated[
    Path | None,
    typer.Option(
        "--password-file",
        envvar="PIPEWARDEN_PASSWORD_FILE",
        help="Read the password from this file ('-' for standard input) instead of asking.",
        show_default=False,
    ),
]
_LIFETIME = re.compile(r"^(\d{1,5})([hdwy])$")
_UNITS = {"h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1), "y": timedelta(days=365)}


def parse_lifetime(text: str) -> timedelta:
    """``12h``, ``30d``, ``8w`` or ``1y``; `ConfigError` naming the text otherwise."""
    match = _LIFETIME.match(text.strip())
    if match is None:
        raise ConfigError(f"--expires {text!r}: give a number and a unit, like 12h, 30d, 8w or 1y")
    return int(match.group(1)) * _UNITS[match.group(2)]


def read_secret_file(path: Path, *, what: str = "password") -> str:
    """The secret in `path` (or standard input for '-'), without its final line break."""
    try:
        text = sys.stdin.read() if str(path) == "-" else path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the {what} file: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: the {what} file is not UTF-8 text") from None
    secret = text.removesuffix("\n").removesuffix("\r")
    if not secret:
        raise ConfigError(f"{path}: the {what} file is empty")
    return secret


def interactive() -> bool:
    return sys.stdin.isatty()


def new_password(password_file: Path | None, *, for_whom: str, option: str = "--password-file") -> str:
    """A new password: from the file, else asked twice on a terminal; never from a pipe by surprise."""
    if password_file is not None:
        return read_secret_file(password_file)
    if not interactive():
        raise ConfigError(f"{for_whom}: no password given; pass {option} (standard input is not a terminal)")
    return str(typer.prompt(f"new password for {for_whom}", hide_input=True, confirmation_prompt=True))


def workspace_at(path: Path | None) -> Workspace:
    from pipewarden.workspace import Workspace

    return Workspace.open(path)


def _principal_dict(p: Principal) -> dict[str, object]:
    return {
        "name": p.name,
        "kind": p.kind,
        "display_name": p.display_name,
        "disabled": p.disabled,
        "mfa_enrolled": p.mfa_enrolled,
        "created_at": p.created_at.isoformat(),
        "grants": [{"role": g.role, "scope": g.scope} for g in p.grants],
    }


def bootstrap_admin(ws: Workspace, name: str, password: str) -> Principal:
    """The first administrator, created by the local operator (whoever can read the key files)."""
    from pipewarden.cli._common import default_actor
    from pipewarden.cli._identity import cli_origin
    from pipewarden.events import Actor
    from pipewarden.identity import Accounts

    ws.signing_key()  # proof of holding the workspace's private key, before anything else
    accounts = Accounts(ws.database(), events=ws.events())
    return accounts.bootstrap_admin(
        name, password=password, actor=Actor(default_actor(None), "system", cli_origin())
    )


# --- user ----------------------------------------------------------------------------------------


@user_app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="The new principal's name (lower case, digits, . _ -).")],
    service: Annotated[
        bool, typer.Option("--service", help="A service account: no password, API tokens only.")
    ] = False,
    role: Annotated[
        list[str] | None, typer.Option("--role", "-r", help="Grant this role (repeatable).")
    ] = None,
    scope: Annotated[
        str, typer.Option("--scope", "-s", help="Where the roles apply ('*' everywhere).")
    ] = "*",
    display_name: Annotated[str, typer.Option(help="A name to show for it.")] = "",
    password_file: PasswordFileOption = None,
    bootstrap: Annotated[
        bool,
        typer.Option(
            "--bootstrap",
            help="Create the first administrator without logging in; refused once an enabled admin exists.",
        ),
    ] = False,
    workspace: WorkspaceOption = None,
) -> None:
    """Create a user (asked for a password) or a service account, with roles."""
    from pipewarden.cli._identity import authorize, cli_origin, require
    from pipewarden.events import Actor
    from pipewarden.identity import ADMIN_ROLE, Accounts, Grant, Policy

    roles = role or []
    try:
        ws = workspace_at(workspace)
        if bootstrap:
            if service or roles not in ([], [ADMIN_ROLE]) or scope != "*":
                raise ConfigError("--bootstrap makes the first administrator: a user with role admin at '*'")
            created = bootstrap_admin(ws, name, new_password(password_file, for_whom=name))
        else:
            policy = Policy.for_workspace(ws.root)
            for r in roles:
                policy.role(r)  # an unknown role is an error before anything else
            subject = require(ws, "user.create", f"user:{name}")
            for r in roles:
                # Creating a principal with a role is granting it that role.
                authorize(ws, subject, "role.grant", f"role:{r}")
            accounts = Accounts(ws.database(), events=ws.events())
            actor = Actor(subject.name, subject.kind, cli_origin())
            grants = [Grant(r, scope) for r in roles]
            if service:
                if password_file is not None:
                    raise ConfigError(f"{name}: a service account has no password; it uses API tokens")
                created = accounts.create_service(name, actor=actor, display_name=display_name, grants=grants)
            else:
                password = new_password(password_file, for_whom=name)
                created = accounts.create_user(
                    name, password=password, actor=actor, display_name=display_name, grants=grants
                )
    except PipewardenError as exc:
        raise fail(exc) from None
    held = ", ".join(f"{g.role} at {g.scope}" for g in created.grants) or "no roles"
    typer.echo(f"created {created.kind} {created.name} ({held})")


@user_app.command("list")
def list_users(as_json: JsonOption = False, workspace: WorkspaceOption = None) -> None:
    """Every user and service account, with its roles and MFA state."""
    from pipewarden.cli._identity import cli_origin, require
    from pipewarden.events import Actor
    from pipewarden.identity import Accounts

    try:
        ws = workspace_at(workspace)
        subject = require(ws, "user.read", "user:*")
        actor = Actor(subject.name, subject.kind, cli_origin())
        found = Accounts(ws.database(), events=ws.events()).list_as(actor)
    except PipewardenError as exc:
        raise fail(exc) from None
    if as_json:
        typer.echo(json.dumps([_principal_dict(p) for p in found], indent=2))
        return
    for p in found:
        state = "disabled" if p.disabled else "enabled"
        mfa = "mfa" if p.mfa_enrolled else ("-" if p.kind == "service" else "no mfa")
        roles = ", ".join(f"{g.role}@{g.scope}" for g in p.grants) or "-"
        typer.echo(f"{p.name:<24} {p.kind:<8} {state:<9} {mfa:<7} {roles}")


def _set_disabled(name: str, workspace: Path | None, *, disabled: bool) -> None:
    from pipewarden.cli._identity import acting_subject, cli_origin
    from pipewarden.events import Actor
    from pipewarden.identity import Access, Accounts, Policy

    try:
        ws = workspace_at(workspace)
        subject = acting_subject(ws)
        access = Access(ws.database(), policy=Policy.for_workspace(ws.root), events=ws.events())
        # user.update, and role.grant on each of the principal's roles: acting on their account.
        access.authorize_over(subject, name, action="user.update", origin=cli_origin())
        accounts = Accounts(ws.database(), events=ws.events())
        actor = Actor(subject.name, subject.kind, cli_origin())
        if disabled:
            accounts.disable(name, actor=actor)
        else:
            accounts.enable(name, actor=actor)
    except PipewardenError as exc:
        raise fail(exc) from None
    typer.echo(f"{'disabled' if disabled else 'enabled'} {name}")


@user_app.command("disable")
def disable(
    name: Annotated[str, typer.Argument(help="The user or service account.")],
    workspace: WorkspaceOption = None,
) -> None:
    """Stop a principal at once: its tokens stop working and its login sessions are revoked."""
    _set_disabled(name, workspace, disabled=True)


@user_app.command("enable")
def enable(
    name: Annotated[str, typer.Argument(help="The user or service account.")],
    workspace: WorkspaceOption = None,
) -> None:
    """Let a disabled principal back in (its API tokens that have not expired work again)."""
    _set_disabled(name, workspace, disabled=False)


@user_app.command("reset-mfa")
def reset_mfa(
    name: Annotated[str, typer.Argument(help="The user who lost their authenticator.")],
    workspace: WorkspaceOption = None,
) -> None:
    """Remove a user's second factor and recovery codes and end their sessions; they enrol again at login.

    Needs user.update on the user, in a session that passed MFA.
    """
    from pipewarden.cli._identity import acting_subject, authenticator, cli_origin

    try:
        ws = workspace_at(workspace)
        authenticator(ws).reset_mfa(name, by=acting_subject(ws), origin=cli_origin())
    except PipewardenError as exc:
        raise fail(exc) from None
    typer.echo(f"reset the second factor of {name}; they enrol a new one at their next login")


# --- token ---------------------------------------------------------------------------------------


def _token_line(t: TokenInfo, now: datetime) -> str:
    used = (
        f"last used {t.last_used_at:%Y-%m-%d %H:%M} from {t.last_used_origin}" if t.last_used_at else "unused"
    )
    return (
        f"{t.token_id}  {t.owner:<16} {t.kind:<7} {t.state(now):<7} expires {t.expires_at:%Y-%m-%d %H:%M}Z  "
        f"{' '.join(t.scopes)}  {used}" + (f"  ({t.description})" if t.description else "")
    )


@token_app.command("create")
def create(
    scope: Annotated[
        list[str],
        typer.Option(
            "--scope",
            "-s",
            help="What the token may do: an action pattern, optionally @resources (repeatable).",
        ),
    ],
    owner: Annotated[
        str | None, typer.Option("--for", help="Whose token (default: yours; others' need token.manage).")
    ] = None,
    expires: Annotated[
        str, typer.Option("--expires", help="Lifetime: 12h, 30d, 8w, 1y (at most 1y).")
    ] = "90d",
    description: Annotated[str, typer.Option("--description", "-d", help="What it is for.")] = "",
    workspace: WorkspaceOption = None,
) -> None:
    """Make an API token and print it once (on standard output; everything else goes to standard error)."""
    from pipewarden.cli._identity import acting_subject, authenticator, cli_origin

    try:
        lifetime = parse_lifetime(expires)
        ws = workspace_at(workspace)
        subject = acting_subject(ws)
        new = authenticator(ws).create_token(
            owner or subject.name,
            by=subject,
            scopes=scope,
            lifetime=lifetime,
            origin=cli_origin(),
            description=description,
        )
    except PipewardenError as exc:
        raise fail(exc) from None
    info = new.info
    err_console().print(
        f"token {info.token_id} for {info.owner}, expires {info.expires_at:%Y-%m-%d %H:%M}Z, "
        f"scopes {' '.join(info.scopes)}. It is shown once: store it now.",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    typer.echo(new.plaintext)


@token_app.command("list")
def list_tokens(
    owner: Annotated[str | None, typer.Option("--for", help="Another principal's tokens.")] = None,
    everyone: Annotated[bool, typer.Option("--all", help="Every principal's tokens (token.manage).")] = False,
    as_json: JsonOption = False,
    workspace: WorkspaceOption = None,
) -> None:
    """Your tokens and sessions (never their secrets): state, expiry, scopes, last use."""
    from pipewarden.cli._identity import acting_subject, authenticator, cli_origin

    try:
        ws = workspace_at(workspace)
        subject = acting_subject(ws)
        found = authenticator(ws).list_tokens(
            by=subject, origin=cli_origin(), owner="*" if everyone else owner
        )
    except PipewardenError as exc:
        raise fail(exc) from None
    now = datetime.now(UTC)
    if as_json:
        typer.echo(json.dumps([t.to_dict(now) for t in found], indent=2))
        return
    for t in found:
        typer.echo(_token_line(t, now))


@token_app.command("revoke")
def revoke(
    token_id: Annotated[str, typer.Argument(help="The token's id (the 12 characters after 'pwt_').")],
    workspace: WorkspaceOption = None,
) -> None:
    """Revoke a token at once (your own, or anyone's with token.manage)."""
    from pipewarden.cli._identity import acting_subject, authenticator, cli_origin

    try:
        ws = workspace_at(workspace)
        info = authenticator(ws).revoke_token(token_id, by=acting_subject(ws), origin=cli_origin())
    except PipewardenError as exc:
        raise fail(exc) from None
    typer.echo(f"revoked {info.kind} token {info.token_id} of {info.owner}")
