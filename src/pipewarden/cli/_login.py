"""`pipewarden login`, `logout` and `whoami`: a person's session on the command line.

The session token is kept in a private file per OS user and workspace
(`pipewarden.identity.SessionFile`); ``$PIPEWARDEN_TOKEN`` wins over it.
Prompts appear only on a terminal; scripts pass --password-file and
--totp-code (or their environment variables).
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from pipewarden.cli._app import EXIT_USAGE, app, err_console, fail
from pipewarden.cli._common import WorkspaceOption
from pipewarden.cli._users import (
    JsonOption,
    PasswordFileOption,
    interactive,
    read_secret_file,
    workspace_at,
)
from pipewarden.errors import ConfigError, PipewardenError

if TYPE_CHECKING:
    from pipewarden.identity import LoginResult, MfaEnrolment, RecoveryCodes, Session
    from pipewarden.workspace import Workspace

__all__ = [
    "TotpCodeOption",
    "ask",
    "save_session",
    "say",
    "say_logged_in",
    "second_factor",
    "show_enrolment",
    "show_recovery_codes",
    "your_password",
]

TotpCodeOption = Annotated[
    str | None,
    typer.Option("--totp-code", envvar="PIPEWARDEN_TOTP_CODE", help="The code your authenticator shows."),
]


def say(text: str) -> None:
    """A line for the person at the terminal, on standard error (standard output is for results)."""
    err_console().print(text, markup=False, highlight=False, soft_wrap=True)


def ask(text: str, *, hide: bool) -> str:
    return str(typer.prompt(text, hide_input=hide, err=True)).strip()


def your_password(name: str, password_file: Path | None, *, prompt: str = "password") -> str:
    """The person's password: from the file, else asked (hidden) on a terminal, else an error."""
    if password_file is not None:
        return read_secret_file(password_file)
    if interactive():
        return str(typer.prompt(prompt, hide_input=True, err=True))
    raise ConfigError(f"{name}: no password given; pass --password-file (standard input is not a terminal)")


def second_factor(
    totp_code: str | None, *, prompt: str = "one-time code (or a recovery code)", option: str = "--totp-code"
) -> tuple[str | None, str | None]:
    """(one-time code, recovery code): from --totp-code, else asked on a terminal (either kind)."""
    if totp_code:
        return totp_code, None
    if not interactive():
        raise ConfigError(f"a one-time code is needed: pass {option} (standard input is not a terminal)")
    code = ask(prompt, hide=True)
    return (None, code) if len(code) > 10 else (code, None)


def show_enrolment(enrolment: MfaEnrolment, *, intro: str) -> None:
    """The secret being enrolled, once, on standard error: the URI for a QR code and the text to type in."""
    say(f"{intro} Add this to your authenticator app:")
    say(f"  {enrolment.uri}")
    say(f"  secret (to type in): {enrolment.secret}")
    say("This is shown once.")


def show_recovery_codes(codes: RecoveryCodes) -> None:
    """Fresh recovery codes, once: the codes on standard output, what they are on standard error."""
    say("Recovery codes: each works once in place of a one-time code. Keep them offline; shown once.")
    for code in codes.codes:
        typer.echo(f"  {code}")


def save_session(ws: Workspace, result: LoginResult) -> Session:
    """Keep a login's session for later commands (the session file of this OS user and workspace)."""
    from pipewarden.cli._identity import session_file
    from pipewarden.identity import StoredSession

    session = result.session
    if session is None:  # every caller handles the statuses without one; a session is what is left
        raise ConfigError(f"{result.subject.name}: the login did not open a session")
    session_file(ws).save(
        StoredSession(
            principal=result.subject.name,
            token_id=session.token_id,
            expires_at=session.expires_at,
            token=session.token,
        )
    )
    return session


def say_logged_in(result: LoginResult, session: Session) -> None:
    mfa = "with MFA" if result.subject.mfa else "without MFA"
    typer.echo(f"logged in as {result.subject.name} ({mfa}) until {session.expires_at:%Y-%m-%d %H:%M}Z")
    if result.recovery_codes_left is not None:
        say(f"{result.recovery_codes_left} recovery code(s) left.")
    if os.environ.get("PIPEWARDEN_TOKEN", "").strip():
        say("note: $PIPEWARDEN_TOKEN is set and is used instead of this session until it is unset.")


@app.command()
def login(
    name: Annotated[
        str | None, typer.Option("--name", "-n", envvar="PIPEWARDEN_USER", help="Your user name.")
    ] = None,
    password_file: PasswordFileOption = None,
    totp_code: TotpCodeOption = None,
    recovery_code_file: Annotated[
        Path | None,
        typer.Option("--recovery-code-file", help="Use a recovery code (read from this file) instead."),
    ] = None,
    workspace: WorkspaceOption = None,
) -> None:
    """Log in with your password (and second factor) and keep the session for later commands.

    A first login of someone whose roles require MFA enrols an authenticator:
    the secret is shown once, then a code from it confirms it (interactively, or
    by running login again with --totp-code), and ten recovery codes are shown
    once. The session lasts 12 hours; $PIPEWARDEN_TOKEN, when set, wins over it.
    """
    from pipewarden.cli._identity import authenticator, cli_origin
    from pipewarden.identity import LoginStatus

    origin = cli_origin()
    from pipewarden.cli._remote import remote

    try:
        client = remote(token=False)
        if client is not None:
            from pipewarden.cli import _remote

            if not name:
                if not interactive():
                    raise ConfigError("no user name given; pass --name (standard input is not a terminal)")
                name = ask("user name", hide=False)
            password = your_password(name, password_file)
            recovery = (
                read_secret_file(recovery_code_file, what="recovery code") if recovery_code_file else None
            )
            _remote.login(client, name=name, password=password, totp_code=totp_code, recovery=recovery)
            return
        ws = workspace_at(workspace)
        if not name:
            if not interactive():
                raise ConfigError("no user name given; pass --name (standard input is not a terminal)")
            name = ask("user name", hide=False)
        password = your_password(name, password_file)
        recovery = read_secret_file(recovery_code_file, what="recovery code") if recovery_code_file else None
        auth = authenticator(ws)
        result = auth.login(name, password, origin=origin, totp_code=totp_code, recovery_code=recovery)
        if result.status is LoginStatus.SECOND_FACTOR_NEEDED:
            code, recovery = second_factor(totp_code)
            result = auth.login(name, password, origin=origin, totp_code=code, recovery_code=recovery)
        if result.status is LoginStatus.MFA_ENROLMENT_NEEDED:
            if not totp_code:
                enrolment = auth.begin_mfa_enrolment(name, password=password, origin=origin)
                show_enrolment(enrolment, intro=f"{name}: your roles require a second factor.")
                if not interactive():
                    say("Then run 'pipewarden login --totp-code CODE' with a code it shows, within 15 min.")
                    raise typer.Exit(EXIT_USAGE)
                totp_code = ask("code from the authenticator", hide=True)
            enrolled = auth.confirm_mfa_enrolment(name, totp_code, password=password, origin=origin)
            show_recovery_codes(enrolled.recovery_codes)
            result = enrolled.login
        session = save_session(ws, result)
    except PipewardenError as exc:
        raise fail(exc) from None
    say_logged_in(result, session)


@app.command()
def logout(workspace: WorkspaceOption = None) -> None:
    """End your login session (it is revoked, not just forgotten) and delete the session file."""
    from pipewarden.cli._remote import remote

    client = remote()
    if client is not None:
        from pipewarden.cli import _remote

        try:
            _remote.logout(client)
        except PipewardenError as exc:
            raise fail(exc) from None
        return
    from pipewarden.cli._identity import NOT_LOGGED_IN, authenticator, cli_origin, session_file
    from pipewarden.errors import AuthenticationFailed

    try:
        ws = workspace_at(workspace)
        sessions = session_file(ws)
        stored = sessions.load()
        if stored is None:
            raise AuthenticationFailed(NOT_LOGGED_IN)
        try:
            authenticator(ws).logout(stored.token, origin=cli_origin())
        finally:
            sessions.delete()
    except PipewardenError as exc:
        raise fail(exc) from None
    typer.echo(f"logged out {stored.principal}")


@app.command()
def whoami(as_json: JsonOption = False, workspace: WorkspaceOption = None) -> None:
    """Who you are acting as: principal, kind, roles, MFA, and when your session or token ends."""
    from pipewarden.cli._remote import remote

    client = remote()
    if client is not None:
        from pipewarden.cli import _remote

        try:
            _remote.whoami(client)
        except PipewardenError as exc:
            raise fail(exc) from None
        return
    from pipewarden.cli._identity import acting_subject, authenticator
    from pipewarden.identity import Policy

    try:
        ws = workspace_at(workspace)
        subject = acting_subject(ws)
        token = authenticator(ws).tokens.info(subject.token_id) if subject.token_id else None
        policy = Policy.for_workspace(ws.root)
    except PipewardenError as exc:
        raise fail(exc) from None
    if as_json:
        doc = {
            "name": subject.name,
            "kind": subject.kind,
            "grants": [{"role": g.role, "scope": g.scope} for g in subject.grants],
            "mfa": subject.mfa,
            "token": token.to_dict(datetime.now(UTC)) if token else None,
        }
        typer.echo(json.dumps(doc, indent=2))
        return
    typer.echo(f"{subject.name} ({subject.kind})")
    for g in subject.grants:
        typer.echo(f"  role     {policy.describe_grant(g)}")
    if not subject.grants:
        typer.echo("  role     none")
    if subject.mfa:
        how = "this session passed" if subject.token_scopes is None else "made by a session that passed"
        typer.echo(f"  mfa      yes: {how} a second factor")
    else:
        typer.echo("  mfa      no")
    if token is not None:
        what = "session" if token.kind == "session" else "API token"
        scopes = "" if token.kind == "session" else f", scopes {' '.join(token.scopes)}"
        typer.echo(f"  {what:<8} {token.token_id}, expires {token.expires_at:%Y-%m-%d %H:%M}Z{scopes}")
