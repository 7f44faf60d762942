"""Who administers a deployment: the enabled principals holding the admin role at scope '*'.

Two rules rest on this: the local operator may bootstrap an administrator
only while there is none, and no change (a revoke, a group change, disabling
an account) may leave none where there was one. Only a grant at '*' counts:
an admin grant limited to a project (``admin`` at ``project:sandbox``) covers
that project's artifacts and pipelines and nothing else, not users, roles,
keys or the policy, so its holder cannot administer the deployment and must
not stop it from getting, or keeping, someone who can.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, and_, select

from pipewarden.db import principals, role_bindings
from pipewarden.errors import IdentityError
from pipewarden.identity._bindings import bindings_through_groups
from pipewarden.identity._roles import ADMIN_ROLE

__all__ = ["Administrators", "administrators", "keep_an_administrator"]


@dataclass(frozen=True, slots=True)
class Administrators:
    """The enabled principals that hold admin at '*' (directly or through a group), by name.

    It is deliberately not a bool (``if administrators(conn):`` raises): read
    `present`, or use `keep_an_administrator`.
    """

    names: tuple[str, ...]

    def __bool__(self) -> bool:
        raise TypeError("Administrators is not a bool: test .present")

    @property
    def present(self) -> bool:
        return bool(self.names)


def administrators(conn: Connection) -> Administrators:
    """The deployment's administrators as the caller's transaction sees them."""
    enabled = principals.c.disabled.is_(False)
    everywhere = and_(role_bindings.c.role == ADMIN_ROLE, role_bindings.c.scope == "*")
    direct = (
        select(principals.c.name)
        .select_from(
            role_bindings.join(
                principals,
                and_(
                    role_bindings.c.subject_kind == "principal", role_bindings.c.subject == principals.c.name
                ),
            )
        )
        .where(everywhere, enabled)
    )
    via_group = select(principals.c.name).select_from(bindings_through_groups()).where(everywhere, enabled)
    names = set(conn.execute(direct).scalars()) | set(conn.execute(via_group).scalars())
    return Administrators(tuple(sorted(names)))


def keep_an_administrator(conn: Connection, before: Administrators) -> None:
    """Refuse (rolling the caller's transaction back) a change that left no administrator where
    `before` had one; `IdentityError` saying what to do instead."""
    if before.present and not administrators(conn).present:
        raise IdentityError(
            "the change would leave no enabled administrator (admin at '*'); "
            "grant admin at '*' to someone else first"
        )
