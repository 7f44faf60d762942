"""A person's own credentials (`user password`, `user recovery-codes`, `user enrol-mfa`) and an
administrator's `user reset-password`.

The self-service commands authenticate afresh, in the same command: the
password, and the second factor once one is enrolled, checked like a login and
through the same throttle. They do not rely on a login session (they work
without one, for whoever knows the credentials), and a session left open is not
enough to use them. The user is ``--name``, else whoever is logged in here.
Prompts appear only on a terminal; scripts pass the files and codes as options.
``user reset-password`` acts as the logged-in administrator, like ``reset-mfa``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from pipewarden.cli._app import EXIT_USAGE, fail
from pipewarden.cli._common import WorkspaceOption
from pipewarden.cli._login import (
    TotpCodeOption,
    ask,
    save_session,
    say,
    say_logged_in,
    second_factor,
    show_enrolment,
    show_recovery_codes,
    your_password,
)
from pipewarden.cli._users import (
    PasswordFileOption,
    interactive,
    new_password,
    read_secret_file,
    user_app,
    workspace_at,
)
from pipewarden.errors import ConfigError, PipewardenError, SecondFactorNeeded

if TYPE_CHECKING:
    from pipewarden.identity import StoredSession
    from pipewarden.workspace import Workspace

T = TypeVar("T")

NameOption = Annotated[
    str | None,
    typer.Option(
        "--name",
        "-n",
        envvar="PIPEWARDEN_USER",
        help="Your user name (default: whoever is logged in here).",
        show_default=False,
    ),
]
NewPasswordFileOption = Annotated[
    Path | None,
    typer.Option(
        "--new-password-file",
        envvar="PIPEWARDEN_NEW_PASSWORD_FILE",
        help="Read the new password from this file ('-' for standard input) instead of asking twice.",
        show_default=False,
    ),
]
RecoveryCodeFileOption = Annotated[
    Path | None,
    typer.Option(
        "--recovery-code-file",
        help="Use a recovery code (read from this file) instead of a one-time code.",
        show_default=False,
    ),
]


def _stored(ws: Workspace) -> StoredSession | None:
    from pipewarden.cli._identity import session_file

    return session_file(ws).load()


def _your_name(name: str | None, stored: StoredSession | None) -> str:
    """--name, else the principal logged in here, else asked on a terminal."""
    if name:
        return name
    if stored is not None:
        return stored.principal
    if not interactive():
        raise ConfigError(
            "no user name given; pass --name (nobody is logged in here and standard input is not a terminal)"
        )
    return ask("user name", hide=False)


def _with_second_factor(
    call: Callable[[str | None, str | None], T],
    *,
    totp_code: str | None,
    recovery_code_file: Path | None,
    option: str = "--totp-code",
    prompt: str = "one-time code (or a recovery code)",
    ask_first: bool = False,
) -> T:
    """Run `call(totp_code, recovery_code)`; when it turns out to need a second factor that was not
    given, ask for one on a terminal and run it again (the first try is refunded by the throttle).

    `ask_first` asks before the first try, for a call that always needs one.
    """
    recovery = read_secret_file(recovery_code_file, what="recovery code") if recovery_code_file else None
    if ask_first and not totp_code and not recovery and interactive():
        totp_code, recovery = second_factor(None, prompt=prompt)
    try:
        return call(totp_code, recovery)
    except SecondFactorNeeded as exc:
        if totp_code or recovery:
            raise
        if not interactive():
            raise SecondFactorNeeded(f"{exc}; pass {option} or --recovery-code-file") from None
        code, recovery = second_factor(None, prompt=prompt)
        return call(code, recovery)


@user_app.command("password")
def password(
    name: NameOption = None,
    password_file: PasswordFileOption = None,
    new_password_file: NewPasswordFileOption = None,
    totp_code: TotpCodeOption = None,
    recovery_code_file: RecoveryCodeFileOption = None,
    workspace: WorkspaceOption = None,
) -> None:
    """Change your password: needs the current one, and your second factor if you have one.

    Your other login sessions end (the one on this machine stays); your API
    tokens keep working, so revoke any you no longer trust.
    """
    from pipewarden.cli._identity import authenticator, cli_origin

    origin = cli_origin()
    try:
        ws = workspace_at(workspace)
        stored = _stored(ws)
        name = _your_name(name, stored)
        current = your_password(name, password_file, prompt="current password")
        new = new_password(new_password_file, for_whom=name, option="--new-password-file")
        keep = stored.token_id if stored is not None and stored.principal == name else None
        auth = authenticator(ws)
        changed = _with_second_factor(
            lambda code, recovery: auth.change_password(
                name,
                current_password=current,
                new_password=new,
                origin=origin,
                totp_code=code,
                recovery_code=recovery,
                keep_session=keep,
            ),
            totp_code=totp_code,
            recovery_code_file=recovery_code_file,
        )
    except PipewardenError as exc:
        raise fail(exc) from None
    typer.echo(f"changed the password of {name}; {changed.sessions_revoked} other login session(s) ended")
    if changed.recovery_codes_left is not None:
        say(f"{changed.recovery_codes_left} recovery code(s) left.")
    say("API tokens are not affected: 'pipewarden token list' shows them, 'token revoke' ends one.")


@user_app.command("recovery-codes")
def recovery_codes(
    name: NameOption = None,
    password_file: PasswordFileOption = None,
    totp_code: TotpCodeOption = None,
    recovery_code_file: RecoveryCodeFileOption = None,
    workspace: WorkspaceOption = None,
) -> None:
    """Replace your recovery codes with ten new ones, printed once; the old ones stop working.

    Needs your password and your second factor (a one-time code, or one of the
    old recovery codes).
    """
    from pipewarden.cli._identity import authenticator, cli_origin

    origin = cli_origin()
    try:
        ws = workspace_at(workspace)
        name = _your_name(name, _stored(ws))
        current = your_password(name, password_file)
        auth = authenticator(ws)
        codes = _with_second_factor(
            lambda code, recovery: auth.regenerate_recovery_codes(
                name, password=current, origin=origin, totp_code=code, recovery_code=recovery
            ),
            totp_code=totp_code,
            recovery_code_file=recovery_code_file,
            ask_first=True,
        )
    except PipewardenError as exc:
        raise fail(exc) from None
    show_recovery_codes(codes)
    say(f"replaced the recovery codes of {name}; the old ones no longer work")


@user_app.command("enrol-mfa")
def enrol_mfa(
    name: NameOption = None,
    password_file: PasswordFileOption = None,
    totp_code: Annotated[
        str | None,
        typer.Option(
            "--totp-code",
            envvar="PIPEWARDEN_TOTP_CODE",
            help="Confirm: a code from the new authenticator (after a first run showed its secret).",
        ),
    ] = None,
    current_totp_code: Annotated[
        str | None,
        typer.Option("--current-totp-code", help="Replacing an authenticator: a code from the current one."),
    ] = None,
    recovery_code_file: Annotated[
        Path | None,
        typer.Option(
            "--recovery-code-file",
            help="Replacing an authenticator: a recovery code (read from this file) instead of a code.",
        ),
    ] = None,
    workspace: WorkspaceOption = None,
) -> None:
    """Add a second factor (a TOTP authenticator app) to your account, or replace the one you have.

    The secret is shown once; a code from the app confirms it (asked for on a
    terminal, or given by running this again with --totp-code within 15
    minutes). Then ten recovery codes are printed once and you are logged in
    with MFA. Once enrolled, every login needs the second factor.
    """
    from pipewarden.cli._identity import authenticator, cli_origin

    origin = cli_origin()
    try:
        ws = workspace_at(workspace)
        name = _your_name(name, _stored(ws))
        current = your_password(name, password_file)
        auth = authenticator(ws)
        if not totp_code:
            enrolment = _with_second_factor(
                lambda code, recovery: auth.begin_mfa_enrolment(
                    name, password=current, origin=origin, totp_code=code, recovery_code=recovery
                ),
                totp_code=current_totp_code,
                recovery_code_file=recovery_code_file,
                option="--current-totp-code",
                prompt="a code from your current authenticator (or a recovery code)",
            )
            show_enrolment(enrolment, intro=f"{name}: a new second factor.")
            if not interactive():
                say(
                    "Then run 'pipewarden user enrol-mfa --totp-code CODE' with a code it shows, "
                    "within 15 minutes."
                )
                raise typer.Exit(EXIT_USAGE)
            totp_code = ask("code from the authenticator", hide=True)
        enrolled = auth.confirm_mfa_enrolment(name, totp_code, password=current, origin=origin)
        show_recovery_codes(enrolled.recovery_codes)
        session = save_session(ws, enrolled.login)
    except PipewardenError as exc:
        raise fail(exc) from None
    typer.echo(f"enrolled a second factor for {name}")
    say_logged_in(enrolled.login, session)


@user_app.command("reset-password")
def reset_password(
    name: Annotated[str, typer.Argument(help="The user whose password to set.")],
    password_file: Annotated[
        Path | None,
        typer.Option(
            "--password-file",
            "--new-password-file",
            envvar="PIPEWARDEN_NEW_PASSWORD_FILE",
            help="Read the user's new password from this file ('-' for standard input) instead of asking.",
            show_default=False,
        ),
    ] = None,
    workspace: WorkspaceOption = None,
) -> None:
    """Set another user's password and end their login sessions (their API tokens stay).

    Needs user.update on the user, in a session that passed MFA. Your own
    password is changed with 'pipewarden user password'.
    """
    from pipewarden.cli._identity import acting_subject, authenticator, cli_origin

    try:
        ws = workspace_at(workspace)
        subject = acting_subject(ws)
        new = new_password(password_file, for_whom=name)
        changed = authenticator(ws).reset_password(name, new_password=new, by=subject, origin=cli_origin())
    except PipewardenError as exc:
        raise fail(exc) from None
    typer.echo(f"reset the password of {name}; {changed.sessions_revoked} login session(s) ended")
    say(
        f"Give it to {name} privately; they can choose their own with 'pipewarden user password'. "
        f"Their API tokens still work ('pipewarden token list --for {name}')."
    )
