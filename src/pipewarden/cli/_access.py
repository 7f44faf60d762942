"""`pipewarden access check`, `pipewarden role ...` and `pipewarden group ...`: authorization from the shell.

Reading (``access check``, ``role list``, ``role bindings``, ``group list``)
needs no login: whoever can open the workspace's database can read these
tables anyway. Changing (``role grant|revoke``, ``group create|delete|add|remove``)
acts as the logged-in principal (`pipewarden login` or ``$PIPEWARDEN_TOKEN``),
authorized by the workspace's policy, and every change or refusal is an event.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from pipewarden.cli._app import EXIT_FINDINGS, EXIT_USAGE, app, fail
from pipewarden.cli._common import WorkspaceOption
from pipewarden.errors import PipewardenError

if TYPE_CHECKING:
    from pipewarden.identity import Access, Policy, Role, Subject
    from pipewarden.workspace import Workspace

access_app = typer.Typer(help="Ask what a principal may do.", no_args_is_help=True)
role_app = typer.Typer(help="Roles: list them, grant and revoke them.", no_args_is_help=True)
group_app = typer.Typer(help="Groups of principals that roles can be granted to.", no_args_is_help=True)
app.add_typer(access_app, name="access")
app.add_typer(role_app, name="role")
app.add_typer(group_app, name="group")

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
ScopeOption = Annotated[
    str,
    typer.Option(
        "--scope",
        "-s",
        help="Where the role applies: '*' (everywhere), 'project:NAME', or a pattern like 'fraud/*'.",
    ),
]
UserOption = Annotated[str | None, typer.Option("--user", "-u", help="A user or service account.")]
GroupOption = Annotated[str | None, typer.Option("--group", "-g", help="A group.")]


def _workspace(path: Path | None) -> Workspace:
    from pipewarden.workspace import Workspace

    return Workspace.open(path)


def _policy(ws: Workspace) -> Policy:
    from pipewarden.identity import Policy

    return Policy.for_workspace(ws.root)


def _access(ws: Workspace) -> Access:
    from pipewarden.identity import Access

    return Access(ws.database(), policy=_policy(ws), events=ws.events())


def _actor(ws: Workspace) -> tuple[Subject, str]:
    from pipewarden.cli._identity import acting_subject, cli_origin

    return acting_subject(ws), cli_origin()


def _target(user: str | None, group: str | None) -> tuple[str, str]:
    if (user is None) == (group is None):
        typer.echo("error: name exactly one of --user and --group", err=True)
        raise typer.Exit(EXIT_USAGE)
    return (user, "principal") if user is not None else (group or "", "group")


@access_app.command("check")
def check(
    user: Annotated[str, typer.Argument(help="The user or service account.")],
    action: Annotated[str, typer.Argument(help="The action, such as artifact.write.")],
    resource: Annotated[str, typer.Argument(help="The resource, such as artifact:fraud/model.")],
    no_mfa: Annotated[
        bool, typer.Option("--no-mfa", help="Decide for a session without a second factor.")
    ] = False,
    as_json: JsonOption = False,
    workspace: WorkspaceOption = None,
) -> None:
    """Would USER be allowed ACTION on RESOURCE? Prints the decision and the rule that made it.

    USER's grants are read from the database as they stand now, for a session
    that passed MFA unless --no-mfa. Exit 0 allowed, 1 denied, 2 error.
    """
    try:
        decision = _access(_workspace(workspace)).check(user, action, resource, mfa=not no_mfa)
    except PipewardenError as exc:
        fail(exc)
        # Exit 1 means "denied" here, so every error (an unknown user too) is 2.
        raise typer.Exit(EXIT_USAGE) from None
    if as_json:
        typer.echo(json.dumps({**decision.to_dict(), "mfa": not no_mfa}, indent=2))
    else:
        verdict = "allowed" if decision.allowed else "denied"
        typer.echo(f"{verdict}: {user} {action} on {resource}")
        typer.echo(f"  rule: {decision.rule}")
    if not decision.allowed:
        raise typer.Exit(EXIT_FINDINGS)


def _role_lines(role: Role, source: str) -> list[str]:
    origin = "built-in" if role.builtin else source
    mfa = ", requires MFA" if role.requires_mfa else ""
    lines = [f"{role.name} ({origin}{mfa})" + (f": {role.description}" if role.description else "")]
    lines += [f"  allow {rule.describe()}" for rule in role.allow]
    lines += [
        f"  deny  {rule.describe()}" + (f" ({rule.reason})" if rule.reason else "") for rule in role.deny
    ]
    return lines


@role_app.command("list")
def list_roles(as_json: JsonOption = False, workspace: WorkspaceOption = None) -> None:
    """The built-in roles and the policy file's custom roles and deny rules."""
    try:
        policy = _policy(_workspace(workspace))
    except PipewardenError as exc:
        raise fail(exc) from None
    if as_json:
        doc = {
            "source": policy.source,
            "roles": [role.to_dict() for role in policy.roles.values()],
            "deny": [rule.to_dict() for rule in policy.deny],
        }
        typer.echo(json.dumps(doc, indent=2))
        return
    for role in policy.roles.values():
        typer.echo("\n".join(_role_lines(role, policy.source)))
    if policy.deny:
        typer.echo(f"deny rules for everyone ({policy.source})")
        for rule in policy.deny:
            typer.echo(f"  deny  {rule.describe()}" + (f" ({rule.reason})" if rule.reason else ""))


@role_app.command("bindings")
def list_bindings(as_json: JsonOption = False, workspace: WorkspaceOption = None) -> None:
    """Who holds which role, and where."""
    try:
        found = _access(_workspace(workspace)).bindings()
    except PipewardenError as exc:
        raise fail(exc) from None
    if as_json:
        rows = [
            {
                "subject_kind": b.subject_kind,
                "subject": b.subject,
                "role": b.role,
                "scope": b.scope,
                "granted_by": b.granted_by,
                "granted_at": b.granted_at.isoformat(),
            }
            for b in found
        ]
        typer.echo(json.dumps(rows, indent=2))
        return
    for b in found:
        who = "user" if b.subject_kind == "principal" else "group"
        typer.echo(
            f"{who} {b.subject}: {b.role} at {b.scope}  (by {b.granted_by}, {b.granted_at:%Y-%m-%d %H:%M}Z)"
        )


@role_app.command("grant")
def grant(
    role: Annotated[str, typer.Argument(help="The role to grant.")],
    user: UserOption = None,
    group: GroupOption = None,
    scope: ScopeOption = "*",
    workspace: WorkspaceOption = None,
) -> None:
    """Grant ROLE to a user or group, at a scope. You need role.grant on role:ROLE."""
    subject, kind = _target(user, group)
    try:
        ws = _workspace(workspace)
        actor, origin = _actor(ws)
        _access(ws).grant(actor, role=role, subject=subject, subject_kind=kind, scope=scope, origin=origin)
    except PipewardenError as exc:
        raise fail(exc) from None
    typer.echo(f"granted {role} at {scope} to {'user' if kind == 'principal' else 'group'} {subject}")


@role_app.command("revoke")
def revoke(
    role: Annotated[str, typer.Argument(help="The role to revoke.")],
    user: UserOption = None,
    group: GroupOption = None,
    scope: ScopeOption = "*",
    workspace: WorkspaceOption = None,
) -> None:
    """Revoke ROLE at a scope from a user or group. You need role.revoke on role:ROLE."""
    subject, kind = _target(user, group)
    try:
        ws = _workspace(workspace)
        actor, origin = _actor(ws)
        _access(ws).revoke(actor, role=role, subject=subject, subject_kind=kind, scope=scope, origin=origin)
    except PipewardenError as exc:
        raise fail(exc) from None
    typer.echo(f"revoked {role} at {scope} from {'user' if kind == 'principal' else 'group'} {subject}")


@group_app.command("create")
def create_group(
    name: Annotated[str, typer.Argument(help="The new group's name.")], workspace: WorkspaceOption = None
) -> None:
    """Create an empty group. You need group.manage on group:NAME."""
    try:
        ws = _workspace(workspace)
        actor, origin = _actor(ws)
        _access(ws).create_group(actor, name, origin=origin)
    except PipewardenError as exc:
        raise fail(exc) from None
    typer.echo(f"created group {name}")


@group_app.command("delete")
def delete_group(
    name: Annotated[str, typer.Argument(help="The group to delete.")], workspace: WorkspaceOption = None
) -> None:
    """Delete a group and the roles granted to it. You need group.manage, and role.revoke on each role."""
    try:
        ws = _workspace(workspace)
        actor, origin = _actor(ws)
        _access(ws).delete_group(actor, name, origin=origin)
    except PipewardenError as exc:
        raise fail(exc) from None
    typer.echo(f"deleted group {name}")


@group_app.command("add")
def add_member(
    group: Annotated[str, typer.Argument(help="The group.")],
    user: Annotated[str, typer.Argument(help="The user or service account to add.")],
    workspace: WorkspaceOption = None,
) -> None:
    """Add USER to GROUP. You need group.manage, and role.grant on each role the group holds."""
    try:
        ws = _workspace(workspace)
        actor, origin = _actor(ws)
        _access(ws).add_member(actor, group=group, principal=user, origin=origin)
    except PipewardenError as exc:
        raise fail(exc) from None
    typer.echo(f"added {user} to group {group}")


@group_app.command("remove")
def remove_member(
    group: Annotated[str, typer.Argument(help="The group.")],
    user: Annotated[str, typer.Argument(help="The user or service account to remove.")],
    workspace: WorkspaceOption = None,
) -> None:
    """Remove USER from GROUP. You need group.manage, and role.revoke on each role the group holds."""
    try:
        ws = _workspace(workspace)
        actor, origin = _actor(ws)
        _access(ws).remove_member(actor, group=group, principal=user, origin=origin)
    except PipewardenError as exc:
        raise fail(exc) from None
    typer.echo(f"removed {user} from group {group}")


@group_app.command("list")
def list_groups(as_json: JsonOption = False, workspace: WorkspaceOption = None) -> None:
    """Every group with its members and roles."""
    try:
        access = _access(_workspace(workspace))
        found = access.groups()
        held = [b for b in access.bindings() if b.subject_kind == "group"]
    except PipewardenError as exc:
        raise fail(exc) from None
    roles = {g.name: [f"{b.role}@{b.scope}" for b in held if b.subject == g.name] for g in found}
    if as_json:
        rows = [{"name": g.name, "members": list(g.members), "roles": roles[g.name]} for g in found]
        typer.echo(json.dumps(rows, indent=2))
        return
    for g in found:
        members, granted = ", ".join(g.members) or "(none)", ", ".join(roles[g.name]) or "(none)"
        typer.echo(f"{g.name}: members {members}; roles {granted}")
