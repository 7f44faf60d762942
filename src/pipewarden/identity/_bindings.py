"""Role bindings and groups in the database: who holds which role, and where.

A binding gives a role to a principal or to a group, limited to a scope. A
principal's grants are its own bindings plus those of every group it belongs
to; `grants_for` reads them in one query per kind, in a stable order.

These functions take a connection inside the caller's transaction and do no
authorization of their own: `pipewarden.identity.Access` checks who may call
them and records each change as an event.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, Join, and_, delete, insert, select
from sqlalchemy.exc import IntegrityError as SQLIntegrityError

from pipewarden.db import group_members, groups, principals, role_bindings
from pipewarden.errors import ConfigError, IdentityError
from pipewarden.identity._patterns import Selector, check_name
from pipewarden.identity._subject import Grant

__all__ = [
    "BINDING_SUBJECT_KINDS",
    "Binding",
    "Group",
    "add_member",
    "bindings",
    "bindings_through_groups",
    "create_group",
    "delete_group",
    "grant",
    "grants_for",
    "list_groups",
    "remove_member",
    "revoke",
]

#: What a role can be bound to: a principal (a user or service account) or a group of them.
BINDING_SUBJECT_KINDS = ("principal", "group")


@dataclass(frozen=True, slots=True)
class Binding:
    """One stored grant: `role` at `scope` for a principal or a group, and who granted it when."""

    subject_kind: str
    subject: str
    role: str
    scope: str
    granted_by: str
    granted_at: datetime

    @property
    def grant(self) -> Grant:
        return Grant(self.role, self.scope)


@dataclass(frozen=True, slots=True)
class Group:
    """A named set of principals; roles granted to it apply to each member."""

    name: str
    members: tuple[str, ...]
    created_at: datetime


def bindings_through_groups() -> Join:
    """Groups' role bindings joined to the principals in those groups (each row: a binding that reaches a
    principal through one of its groups)."""
    return (
        role_bindings.join(
            groups,
            and_(role_bindings.c.subject_kind == "group", role_bindings.c.subject == groups.c.name),
        )
        .join(group_members, group_members.c.group_id == groups.c.id)
        .join(principals, principals.c.id == group_members.c.principal_id)
    )


def _check_scope(scope: str) -> str:
    try:
        Selector.parse(scope)
    except ConfigError as exc:
        raise ConfigError(f"scope {exc}") from None
    return scope


def grants_for(conn: Connection, principal_name: str) -> tuple[Grant, ...]:
    """The principal's grants: its own bindings, then its groups' (deduplicated, in a stable order)."""
    direct = conn.execute(
        select(role_bindings.c.role, role_bindings.c.scope).where(
            role_bindings.c.subject_kind == "principal", role_bindings.c.subject == principal_name
        )
    ).all()
    via_groups = conn.execute(
        select(role_bindings.c.role, role_bindings.c.scope)
        .select_from(bindings_through_groups())
        .where(principals.c.name == principal_name)
    ).all()
    seen: dict[Grant, None] = {}
    for role, scope in sorted(direct) + sorted(via_groups):
        seen.setdefault(Grant(role, scope), None)
    return tuple(seen)


def _principal_id(conn: Connection, name: str) -> int:
    found = conn.execute(select(principals.c.id).where(principals.c.name == name)).scalar()
    if found is None:
        raise IdentityError(f"{name}: no such user or service account")
    return int(found)


def _group_id(conn: Connection, name: str) -> int:
    found = conn.execute(select(groups.c.id).where(groups.c.name == name)).scalar()
    if found is None:
        raise IdentityError(f"{name}: no such group")
    return int(found)


def _check_subject(conn: Connection, subject: str, subject_kind: str) -> None:
    if subject_kind == "principal":
        _principal_id(conn, subject)
    elif subject_kind == "group":
        _group_id(conn, subject)
    else:
        raise ConfigError(f"{subject_kind!r}: a binding's subject is a 'principal' or a 'group'")


def grant(
    conn: Connection,
    *,
    subject: str,
    subject_kind: str = "principal",
    role: str,
    scope: str = "*",
    granted_by: str,
) -> Binding:
    """Bind `role` at `scope` to a principal or group that exists; `IdentityError` if it is bound already.

    The role's existence is the policy's business (`Access.grant` checks it);
    here only its name's shape is checked.
    """
    check_name(role, what="role")
    _check_scope(scope)
    _check_subject(conn, subject, subject_kind)
    key = and_(
        role_bindings.c.subject_kind == subject_kind,
        role_bindings.c.subject == subject,
        role_bindings.c.role == role,
        role_bindings.c.scope == scope,
    )
    if conn.execute(select(role_bindings.c.id).where(key)).first() is not None:
        raise IdentityError(f"{subject}: already holds role {role} with scope {scope}")
    binding = Binding(subject_kind, subject, role, scope, granted_by, datetime.now(UTC))
    try:
        conn.execute(
            insert(role_bindings).values(
                subject_kind=subject_kind,
                subject=subject,
                role=role,
                scope=scope,
                granted_by=granted_by,
                granted_at=binding.granted_at,
            )
        )
    except SQLIntegrityError:
        # Another writer bound the same grant between the check and the insert.
        raise IdentityError(f"{subject}: already holds role {role} with scope {scope}") from None
    return binding


def revoke(
    conn: Connection, *, subject: str, subject_kind: str = "principal", role: str, scope: str = "*"
) -> Binding:
    """Remove one binding and return it; `IdentityError` if there is no such binding."""
    if subject_kind not in BINDING_SUBJECT_KINDS:
        raise ConfigError(f"{subject_kind!r}: a binding's subject is a 'principal' or a 'group'")
    key = and_(
        role_bindings.c.subject_kind == subject_kind,
        role_bindings.c.subject == subject,
        role_bindings.c.role == role,
        role_bindings.c.scope == scope,
    )
    row = conn.execute(select(role_bindings.c.granted_by, role_bindings.c.granted_at).where(key)).first()
    if row is None:
        raise IdentityError(f"{subject}: holds no role {role} with scope {scope}")
    conn.execute(delete(role_bindings).where(key))
    return Binding(subject_kind, subject, role, scope, row.granted_by, row.granted_at)


def bindings(
    conn: Connection, *, subject: str | None = None, subject_kind: str | None = None
) -> tuple[Binding, ...]:
    """Every stored binding (or those of one subject), ordered by subject kind, subject, role, scope."""
    query = select(role_bindings).order_by(
        role_bindings.c.subject_kind, role_bindings.c.subject, role_bindings.c.role, role_bindings.c.scope
    )
    if subject is not None:
        query = query.where(role_bindings.c.subject == subject)
    if subject_kind is not None:
        query = query.where(role_bindings.c.subject_kind == subject_kind)
    return tuple(
        Binding(r.subject_kind, r.subject, r.role, r.scope, r.granted_by, r.granted_at)
        for r in conn.execute(query)
    )


def create_group(conn: Connection, *, name: str) -> Group:
    check_name(name, what="group")
    if conn.execute(select(groups.c.id).where(groups.c.name == name)).first() is not None:
        raise IdentityError(f"{name}: a group of that name exists already")
    created = datetime.now(UTC)
    try:
        conn.execute(insert(groups).values(name=name, created_at=created))
    except SQLIntegrityError:
        raise IdentityError(f"{name}: a group of that name exists already") from None
    return Group(name, (), created)


def delete_group(conn: Connection, *, name: str) -> Group:
    """Delete a group, its memberships and every role bound to it; returns the group as it was."""
    group = _load_group(conn, name)
    conn.execute(
        delete(role_bindings).where(role_bindings.c.subject_kind == "group", role_bindings.c.subject == name)
    )
    gid = _group_id(conn, name)
    conn.execute(delete(group_members).where(group_members.c.group_id == gid))
    conn.execute(delete(groups).where(groups.c.id == gid))
    return group


def add_member(conn: Connection, *, group: str, principal: str) -> None:
    gid, pid = _group_id(conn, group), _principal_id(conn, principal)
    member = and_(group_members.c.group_id == gid, group_members.c.principal_id == pid)
    if conn.execute(select(group_members.c.group_id).where(member)).first() is not None:
        raise IdentityError(f"{principal}: already a member of group {group}")
    try:
        conn.execute(insert(group_members).values(group_id=gid, principal_id=pid))
    except SQLIntegrityError:
        raise IdentityError(f"{principal}: already a member of group {group}") from None


def remove_member(conn: Connection, *, group: str, principal: str) -> None:
    gid, pid = _group_id(conn, group), _principal_id(conn, principal)
    gone = conn.execute(
        delete(group_members).where(group_members.c.group_id == gid, group_members.c.principal_id == pid)
    )
    if gone.rowcount == 0:
        raise IdentityError(f"{principal}: not a member of group {group}")


def _load_group(conn: Connection, name: str) -> Group:
    row = conn.execute(select(groups.c.id, groups.c.created_at).where(groups.c.name == name)).first()
    if row is None:
        raise IdentityError(f"{name}: no such group")
    members = conn.execute(
        select(principals.c.name)
        .join(group_members, group_members.c.principal_id == principals.c.id)
        .where(group_members.c.group_id == row.id)
        .order_by(principals.c.name)
    ).scalars()
    return Group(name, tuple(members), row.created_at)


def list_groups(conn: Connection) -> tuple[Group, ...]:
    """Every group with its members, by name."""
    names = conn.execute(select(groups.c.name).order_by(groups.c.name)).scalars().all()
    return tuple(_load_group(conn, name) for name in names)
