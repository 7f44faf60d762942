"""Changing who holds what, on behalf of an acting subject: every change and every refusal is one event.

`Access` is what the CLI and the server call to grant and revoke roles and to
manage groups. It checks the acting subject against the policy first:

- granting or revoking a role needs ``role.grant`` / ``role.revoke`` on ``role:<name>``;
- changing a group needs ``group.manage`` on ``group:<name>``, and adding or
  removing a member also needs ``role.grant`` / ``role.revoke`` on every role
  the group holds, because joining a group is being granted its roles;
- no change may leave the deployment without an enabled administrator
  (admin at scope '*');
- acting on another principal's account (`authorize_over`, for disabling and
  enabling it) needs ``role.grant`` on every role it holds (`_guard`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import Connection, select

from pipewarden.db import Database, principals
from pipewarden.errors import IdentityError
from pipewarden.events import Acting, Actor, Events
from pipewarden.events._event import Scalar
from pipewarden.identity import _bindings as store
from pipewarden.identity._admins import administrators, keep_an_administrator
from pipewarden.identity._bindings import Binding, Group
from pipewarden.identity._guard import Need, authorize, control_needs
from pipewarden.identity._patterns import Selector, check_name
from pipewarden.identity._policy import Decision, Policy
from pipewarden.identity._roles import ADMIN_ROLE
from pipewarden.identity._subject import Subject
from pipewarden.identity._tokencache import forget_all

__all__ = ["Access"]

T = TypeVar("T")


class Access:
    """Role bindings and groups, read and changed through the policy and the event path.

    >>> access = Access(ws.database(), policy=Policy.for_workspace(ws.root), events=ws.events())
    >>> access.grant(me, role="ml-engineer", subject="ada", scope="project:fraud")
    """

    def __init__(self, db: Database, *, policy: Policy, events: Events) -> None:
        self.db = db
        self.policy = policy
        self.events = events

    # --- reading -------------------------------------------------------------------------------

    def subject(self, name: str, *, mfa: bool = True) -> Subject:
        """Principal `name` as authorization sees it: its grants from the database, with or without MFA."""
        with self.db.transaction(write=False) as conn:
            row = conn.execute(select(principals.c.kind).where(principals.c.name == name)).first()
            if row is None:
                raise IdentityError(f"{name}: no such user or service account")
            return Subject(name, row.kind, store.grants_for(conn, name), mfa=mfa)

    def check(self, name: str, action: str, resource: str, *, mfa: bool = True) -> Decision:
        """What the policy decides for principal `name` as its grants stand now (`access check`).

        A disabled principal is denied everything: it cannot sign in or use a token.
        """
        with self.db.transaction(write=False) as conn:
            row = conn.execute(
                select(principals.c.kind, principals.c.disabled).where(principals.c.name == name)
            ).first()
            if row is None:
                raise IdentityError(f"{name}: no such user or service account")
            subject = Subject(name, row.kind, store.grants_for(conn, name), mfa=mfa)
        decision = self.policy.check(subject, action, resource)
        if row.disabled:
            return Decision(False, name, action, resource, f"the account {name} is disabled")
        return decision

    def authorize_over(
        self, actor: Subject, principal: str, *, action: str, event: str | None = None, origin: str = ""
    ) -> Decision:
        """Authorize `action` on ``user:<principal>`` and control over that account.

        Acting on someone else's account (disabling or enabling it) also needs
        ``role.grant`` on every role it holds, directly or through a group, so
        nobody can act on an account more powerful than one they could make
        (docs/access.md, "Acting on someone else's account"). A refusal is one
        denied event named `event` (default: `action`) and `AccessDenied`.
        """
        resource = f"user:{principal}"
        needs: list[Need] = [(action, resource)]
        if principal != actor.name:
            with self.db.transaction(write=False) as conn:
                needs.extend(control_needs(conn, principal)[1])
        return self._authorize(actor, event or action, resource, {}, needs, origin)

    def bindings(self) -> tuple[Binding, ...]:
        with self.db.transaction(write=False) as conn:
            return store.bindings(conn)

    def groups(self) -> tuple[Group, ...]:
        with self.db.transaction(write=False) as conn:
            return store.list_groups(conn)

    # --- changing ------------------------------------------------------------------------------

    def grant(
        self,
        actor: Subject,
        *,
        role: str,
        subject: str,
        subject_kind: str = "principal",
        scope: str = "*",
        origin: str = "",
    ) -> Binding:
        """Bind `role` at `scope` to a principal or group; the role must be one the policy defines."""
        self.policy.role(role)
        self._check_scope(scope)
        attributes: dict[str, Scalar] = {"subject": subject, "subject_kind": subject_kind, "scope": scope}
        acting = self._acting(actor, origin)
        self._authorize(
            actor, "role.grant", f"role:{role}", attributes, [("role.grant", f"role:{role}")], origin
        )

        def write() -> Binding:
            with self.db.transaction() as conn:
                binding = store.grant(
                    conn,
                    subject=subject,
                    subject_kind=subject_kind,
                    role=role,
                    scope=scope,
                    granted_by=actor.name,
                )
            forget_all()  # committed: no token is served from memory with the old grants
            return binding

        return acting.perform(
            "role.grant", f"role:{role}", write, attributes=attributes, checked_by_caller=True
        )

    def revoke(
        self,
        actor: Subject,
        *,
        role: str,
        subject: str,
        subject_kind: str = "principal",
        scope: str = "*",
        origin: str = "",
    ) -> Binding:
        """Remove one binding (the role need not still be defined: a stale binding can always go)."""
        check_name(role, what="role")
        self._check_scope(scope)
        attributes: dict[str, Scalar] = {"subject": subject, "subject_kind": subject_kind, "scope": scope}
        acting = self._acting(actor, origin)
        self._authorize(
            actor, "role.revoke", f"role:{role}", attributes, [("role.revoke", f"role:{role}")], origin
        )

        def write() -> Binding:
            with self.db.transaction() as conn:
                before = administrators(conn)
                binding = store.revoke(
                    conn, subject=subject, subject_kind=subject_kind, role=role, scope=scope
                )
                if role == ADMIN_ROLE:
                    keep_an_administrator(conn, before)
            forget_all()  # committed: no token is served from memory with the old grants
            return binding

        return acting.perform(
            "role.revoke", f"role:{role}", write, attributes=attributes, checked_by_caller=True
        )

    def create_group(self, actor: Subject, name: str, *, origin: str = "") -> Group:
        check_name(name, what="group")
        return self._group_change(
            actor,
            name,
            {"change": "create"},
            None,
            lambda conn: store.create_group(conn, name=name),
            origin=origin,
        )

    def delete_group(self, actor: Subject, name: str, *, origin: str = "") -> Group:
        """Delete a group and its role bindings; needs ``role.revoke`` on each role it holds."""
        check_name(name, what="group")

        def write(conn: Connection) -> Group:
            before = administrators(conn)
            group = store.delete_group(conn, name=name)
            keep_an_administrator(conn, before)
            return group

        return self._group_change(actor, name, {"change": "delete"}, "role.revoke", write, origin=origin)

    def add_member(self, actor: Subject, *, group: str, principal: str, origin: str = "") -> None:
        """Add a principal to a group: it gains the group's roles, so each needs ``role.grant``."""
        check_name(group, what="group")

        def write(conn: Connection) -> None:
            store.add_member(conn, group=group, principal=principal)

        self._group_change(
            actor, group, {"change": "add", "member": principal}, "role.grant", write, origin=origin
        )

    def remove_member(self, actor: Subject, *, group: str, principal: str, origin: str = "") -> None:
        """Remove a principal from a group: it loses the group's roles, so each needs ``role.revoke``."""
        check_name(group, what="group")

        def write(conn: Connection) -> None:
            before = administrators(conn)
            store.remove_member(conn, group=group, principal=principal)
            keep_an_administrator(conn, before)

        self._group_change(
            actor, group, {"change": "remove", "member": principal}, "role.revoke", write, origin=origin
        )

    # --- helpers -------------------------------------------------------------------------------

    @staticmethod
    def _check_scope(scope: str) -> None:
        Selector.parse(scope)

    def _acting(self, actor: Subject, origin: str) -> Acting:
        return Acting(
            actor=Actor(actor.name, actor.kind, origin, token_id=actor.token_id),
            events=self.events,
            authorizer=self.policy.bind(actor),
        )

    @staticmethod
    def _group_roles(conn: Connection, group: str) -> list[str]:
        return sorted({b.role for b in store.bindings(conn, subject=group, subject_kind="group")})

    def _authorize(
        self,
        actor: Subject,
        action: str,
        resource: str,
        attributes: dict[str, Scalar],
        needs: list[Need],
        origin: str,
    ) -> Decision:
        """Each permission in `needs`, or else one denied event for `action` and `AccessDenied`."""
        return authorize(
            self.policy,
            actor,
            needs,
            events=self.events,
            action=action,
            resource=resource,
            origin=origin,
            attributes=attributes,
        )

    def _group_change(
        self,
        actor: Subject,
        group: str,
        attributes: dict[str, Scalar],
        role_action: str | None,
        write: Callable[[Connection], T],
        *,
        origin: str,
    ) -> T:
        """Authorize ``group.manage`` (and `role_action` on each role the group holds), then `write`."""
        resource = f"group:{group}"
        acting = self._acting(actor, origin)
        roles: list[str] = []
        if role_action is not None:
            with self.db.transaction(write=False) as conn:
                roles = self._group_roles(conn, group)
        needs = [("group.manage", resource)]
        if role_action is not None:
            needs.extend((role_action, f"role:{r}") for r in roles)
        self._authorize(actor, "group.manage", resource, attributes, needs, origin)

        def run() -> T:
            with self.db.transaction() as conn:
                if role_action is not None and self._group_roles(conn, group) != roles:
                    # The group's roles changed since they were authorized: decide again on what it holds now.
                    raise IdentityError(f"{group}: the group's roles changed meanwhile; try again")
                done = write(conn)
            forget_all()  # committed: a group's change reaches each of its members' grants
            return done

        return acting.perform("group.manage", resource, run, attributes=attributes, checked_by_caller=True)
