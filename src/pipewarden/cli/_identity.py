"""Who runs a command: the principal behind ``$PIPEWARDEN_TOKEN`` or the session of `pipewarden login`.

Commands that act for a principal call `require(ws, action, resource)`: it
authenticates the caller (`acting_subject`) and authorizes the action through
the workspace's policy, recording a denial as an event before refusing.
"""

from __future__ import annotations

import getpass
import os
import socket
from typing import TYPE_CHECKING

from pipewarden.errors import AuthenticationFailed

if TYPE_CHECKING:
    from pipewarden.identity import Authenticator, SessionFile, Subject
    from pipewarden.workspace import Workspace

__all__ = [
    "acting_subject",
    "authenticator",
    "authorize",
    "cli_origin",
    "presented_token",
    "require",
    "session_file",
]

NOT_LOGGED_IN = "not logged in: run 'pipewarden login' (or set $PIPEWARDEN_TOKEN)"


def cli_origin() -> str:
    """Where a command-line request comes from: ``cli:<OS user>@<host>``.

    It is what the throttle counts failures per, and what token use records.
    The caller reports it about itself; the server uses the client's address.
    """
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = f"uid{os.getuid()}" if hasattr(os, "getuid") else "unknown"
    return f"cli:{user}@{socket.gethostname()}"[:256]


def authenticator(ws: Workspace) -> Authenticator:
    """The workspace's `Authenticator`: its database, event path and key ring."""
    from pipewarden.identity import Authenticator, Policy

    return Authenticator(
        ws.database(), events=ws.events(), keyring=ws.keyring(), policy=Policy.for_workspace(ws.root)
    )


def session_file(ws: Workspace) -> SessionFile:
    from pipewarden.identity import SessionFile

    return SessionFile.for_workspace(ws.root)


def presented_token(ws: Workspace) -> str | None:
    """The credential this command was given: ``$PIPEWARDEN_TOKEN`` if set, else the stored login
    session's token; None when there is neither."""
    from pipewarden.identity import TOKEN_ENV

    token = os.environ.get(TOKEN_ENV, "").strip()
    if token:
        return token
    stored = session_file(ws).load()
    return stored.token if stored is not None else None


def acting_subject(ws: Workspace, token: str | None = None) -> Subject:
    """The principal running this command: ``$PIPEWARDEN_TOKEN`` if set, else the stored login session
    (or `token`, when the caller has looked it up already with `presented_token`).

    Raises `AuthenticationFailed` ("not logged in ...") when there is neither,
    and when the token is expired, revoked or its owner disabled.
    """
    token = token or presented_token(ws)
    if token is None:
        raise AuthenticationFailed(NOT_LOGGED_IN)
    return authenticator(ws).authenticate_token(token, origin=cli_origin())


def require(ws: Workspace, action: str, resource: str) -> Subject:
    """Authenticate the caller and authorize `action` on `resource`; return the `Subject` acting.

    A denial is emitted as one event (outcome ``denied``, the deciding rule)
    and raised as `AccessDenied` carrying the `Decision`.
    """
    subject = acting_subject(ws)
    authorize(ws, subject, action, resource)
    return subject


def authorize(ws: Workspace, subject: Subject, action: str, resource: str) -> None:
    """`require` for a subject already authenticated (when the action depends on who it is)."""
    from pipewarden.identity import Policy
    from pipewarden.identity import authorize as authorize_needs

    authorize_needs(
        Policy.for_workspace(ws.root),
        subject,
        [(action, resource)],
        events=ws.events(),
        action=action,
        resource=resource,
        origin=cli_origin(),
        attributes={"token_id": subject.token_id},
    )
