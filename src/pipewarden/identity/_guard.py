"""Authorizing an identity action: check each permission it needs, or record one refusal and raise.

Every identity action that a subject takes on something (granting a role,
making someone's token, resetting a password) comes here first. `authorize`
checks every permission the action needs against the policy; the first one
missing becomes exactly one ``denied`` event, named for the action and
carrying the rule that decided, and `AccessDenied` carrying the `Decision`.

`control_needs` states the rule for acting on another principal's account
(docs/access.md, "Acting on someone else's account"): resetting their password
or second factor, disabling or enabling them, making or revoking their API
tokens needs ``role.grant`` on every role they hold, directly or through a
group. Whoever controls an account acts with its roles, so nobody may take over
an account more powerful than one they could make themselves by granting roles.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy import Connection

from pipewarden.errors import AccessDenied, ConfigError, IdentityError
from pipewarden.events import Event, Events
from pipewarden.events._event import Scalar
from pipewarden.identity._bindings import grants_for
from pipewarden.identity._policy import Decision, Policy
from pipewarden.identity._subject import Subject

__all__ = ["Need", "authorize", "check_control_unchanged", "control_needs"]

#: One permission an action needs: (action, resource).
Need = tuple[str, str]
_RULE = 512


def authorize(
    policy: Policy,
    by: Subject,
    needs: Sequence[Need],
    *,
    events: Events,
    action: str,
    resource: str,
    origin: str,
    attributes: Mapping[str, Scalar] | None = None,
) -> Decision:
    """Every permission in `needs` for `by`, or one denied `action` event on `resource` and `AccessDenied`.

    The event carries `attributes` and the rule of the first permission that
    was missing; the error names that permission. Returns the last decision.
    """
    decision: Decision | None = None
    for need_action, need_resource in needs:
        decision = policy.check(by, need_action, need_resource)
        if not decision.allowed:
            events.emit(
                Event(
                    action=action,
                    actor=by.name,
                    actor_kind=by.kind,
                    resource=resource[:1024],
                    outcome="denied",
                    origin=origin[:1024],
                    attributes={**(attributes or {}), "rule": decision.rule[:_RULE]},
                )
            )
            raise AccessDenied(
                f"{by.name}: {need_action} on {need_resource} is not allowed ({decision.rule})",
                decision=decision,
            )
    if decision is None:
        # Nothing checked is nothing allowed: an empty list of needs is a mistake, never "allow".
        raise ConfigError(f"{action} on {resource}: no permission to check")
    return decision


def control_needs(conn: Connection, target: str) -> tuple[frozenset[str], list[Need]]:
    """The roles `target` holds now (any scope, directly or through groups) and the ``role.grant``
    permission on each that acting on its account needs.

    Granting is per role, not per scope (docs/access.md, "Grants and scopes"),
    so a role held only at ``project:fraud`` needs the same ``role.grant`` on
    ``role:<name>`` as one held at ``*``. A role the policy no longer defines
    counts too: it is checked like any other rather than trusted to give nothing.
    """
    roles = frozenset(g.role for g in grants_for(conn, target))
    return roles, [("role.grant", f"role:{role}") for role in sorted(roles)]


def check_control_unchanged(conn: Connection, target: str, roles: frozenset[str]) -> None:
    """Refuse, inside the write, when `target`'s roles changed since `control_needs` authorized acting
    on its account: the actor is then asked again about what the account holds now."""
    if frozenset(g.role for g in grants_for(conn, target)) != roles:
        raise IdentityError(f"{target}: the account's roles changed meanwhile; try again")
