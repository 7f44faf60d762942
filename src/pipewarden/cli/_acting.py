"""Who a command acts as, for commands that work for the local operator too (store, sign, scan, keys).

With credentials (``$PIPEWARDEN_TOKEN``, or the session of `pipewarden login`)
the command acts as that principal, authorized by the workspace's policy; a
credential that does not authenticate stops the command (it never falls back).
Without any, it acts as the local operator: whoever can read the workspace's
key files (see `pipewarden.events.LocalOperator`). Either way every action is
one event in the audit log.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from pipewarden.cli._common import default_actor

if TYPE_CHECKING:
    from pipewarden.events import Acting
    from pipewarden.events._event import Scalar
    from pipewarden.workspace import Workspace

__all__ = ["acting", "file_resource", "perform_where_recorded"]

T = TypeVar("T")


def acting(ws: Workspace, *, actor: str | None = None) -> Acting:
    """The principal behind this command's credentials, or the local operator (`actor`, else the OS user)."""
    from pipewarden.cli._identity import acting_subject, cli_origin, presented_token
    from pipewarden.events import Acting, Actor, LocalOperator
    from pipewarden.identity import Policy

    origin = cli_origin()
    token = presented_token(ws)
    if token is not None:
        subject = acting_subject(ws, token)
        return Acting(
            actor=Actor(subject.name, subject.kind, origin, token_id=subject.token_id),
            events=ws.events(),
            authorizer=Policy.for_workspace(ws.root).bind(subject),
        )
    return Acting(
        actor=Actor(default_actor(actor), "system", origin), events=ws.events(), authorizer=LocalOperator()
    )


def file_resource(kind: str, path: Path, workspace_root: Path) -> str:
    """How a file on disk is named as a resource (``model:...``, ``scan:...``).

    Relative to the project folder that holds the workspace (the workspace's
    parent, such as a repository's root) when the file is inside it, so that
    policy rules read like ``model:prod/*``; the absolute path otherwise.
    """
    resolved = path.resolve()
    try:
        return f"{kind}:{resolved.relative_to(workspace_root.resolve().parent).as_posix()}"
    except ValueError:
        return f"{kind}:{resolved.as_posix()}"


def perform_where_recorded(
    workspace: Path | None,
    action: str,
    kind: str,
    paths: Sequence[Path],
    operation: Callable[[], T],
    *,
    describe: Callable[[T], Mapping[str, Scalar]] | None = None,
) -> T:
    """For commands on files that also work without a workspace (scan, sign with --key, verify with
    --public-key): inside a workspace, the action is authorized on every path and recorded as one event
    (on the first path, with the number of paths); without one, there is no log to record in and no
    principal to authorize, so the operation just runs."""
    from pipewarden.workspace import Workspace

    root = Workspace.locate(workspace)
    if not (root / "config.yaml").exists():
        return operation()
    doing = acting(Workspace.open(root))
    resources = [file_resource(kind, p, root) for p in paths]
    for resource in resources:
        doing.authorize(action, resource)
    return doing.perform(
        action,
        resources[0],
        operation,
        describe=describe,
        attributes={"paths": len(resources)},
        checked_by_caller=True,
    )
