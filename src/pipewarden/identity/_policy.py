"""The authorization policy: may this subject do this action on this resource, and which rule says so.

How a decision is made (docs/access.md, "How a decision is made"):

1. A deny rule that matches wins over every allow, an admin's included:
   first the policy file's global deny rules, then the deny rules of every
   role the subject holds (within that grant's scope). A role's deny rules
   apply even when the session lacks the MFA that role's allows need, so a
   missing second factor never lifts a restriction.
2. Otherwise the first allow rule of a held role that covers the resource
   (within the grant's scope) allows, if the role does not require MFA or
   the session has it.
3. A subject acting through an API token is further limited to the token's
   scopes: the token can do what both its scopes and its owner's roles allow.
4. Nothing allows it: denied (deny by default).

A grant's scope limits where its role's rules apply, except rules about the
subject's own resources (``token:{self}/*``): those belong to no project.

Decisions are made from plans compiled once per (subject, grants, session,
action) and kept in a bounded cache, so a warm policy decides in microseconds.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from pipewarden.crypto._files import check_not_writable_by_others
from pipewarden.errors import AccessDenied, ConfigError
from pipewarden.identity._actions import action_type, check_action, split_resource
from pipewarden.identity._patterns import Matcher, Selector, TokenScope
from pipewarden.identity._policyfile import parse_policy
from pipewarden.identity._roles import BUILTIN_ROLES, Role, Rule
from pipewarden.identity._subject import Grant, Subject

__all__ = ["DENY_BY_DEFAULT", "POLICY_FILE", "Decision", "Policy", "SubjectPolicy"]

logger = logging.getLogger(__name__)

POLICY_FILE = "policy.yaml"
DENY_BY_DEFAULT = "no rule allows it (deny by default)"
_CACHE_LIMIT = 65_536


@dataclass(frozen=True, slots=True)
class Decision:
    """The verdict on one request and the rule that decided it, in words a person can check.

    It is deliberately not a bool (``if policy.check(...)`` raises): read
    `allowed`. `needs_mfa` is True when a role would allow it after a second factor.
    """

    allowed: bool
    subject: str
    action: str
    resource: str
    rule: str
    needs_mfa: bool = False

    def __bool__(self) -> bool:
        raise TypeError("a Decision is not a bool: test decision.allowed")

    def to_dict(self) -> dict[str, object]:
        return {
            "allowed": self.allowed,
            "subject": self.subject,
            "action": self.action,
            "resource": self.resource,
            "rule": self.rule,
            "needs_mfa": self.needs_mfa,
        }


def _always(_kind: str, _name: str) -> bool:
    return True


def _any_of(matchers: list[Matcher]) -> Matcher:
    if len(matchers) == 1:
        return matchers[0]

    def match(kind: str, name: str) -> bool:
        for m in matchers:  # a plain loop: faster than any() over a generator
            if m(kind, name):
                return True
        return False

    return match


def _both(first: Matcher, second: Matcher) -> Matcher:
    return lambda kind, name: first(kind, name) and second(kind, name)


def _scope_matcher(scope: str, self_name: str) -> Matcher | None:
    """The grant's scope as a matcher (None: everywhere); an unreadable scope covers nothing."""
    if scope == "*":
        return None
    try:
        return Selector.parse(scope).compile(self_name)
    except ConfigError:
        logger.warning("a grant has the unreadable scope %r; it covers nothing", scope)
        return lambda _kind, _name: False


def _rule_matcher(rule: Rule, scope: Matcher | None, self_name: str) -> Matcher:
    """Where a rule applies in one grant: its resources, within the grant's scope unless personal."""
    if not rule.resources:
        return scope or _always
    parts: list[Matcher] = []
    for selector in rule.resources:
        m = selector.compile(self_name)
        parts.append(m if scope is None or selector.personal else _both(scope, m))
    return _any_of(parts)


@dataclass(frozen=True, slots=True)
class _Plan:
    """What decides one action for one subject, compiled: matchers with the words each decision gives."""

    kind: str
    denies: tuple[tuple[Matcher, str], ...]
    allows: tuple[tuple[Matcher, str], ...]
    mfa_blocked: tuple[tuple[Matcher, str], ...]
    token: tuple[Matcher, ...] | None


def _phrase(rule: Rule, action: str) -> str:
    pattern = next(a.text for a in rule.actions if a.matches(action))
    if rule.resources:
        pattern += " on " + ", ".join(s.text for s in rule.resources)
    return pattern + (f" ({rule.reason})" if rule.reason else "")


class Policy:
    """The built-in roles, plus the custom roles and global deny rules of a policy file.

    >>> policy = Policy.for_workspace(ws.root)
    >>> decision = policy.check(subject, "artifact.write", "artifact:fraud/model")
    >>> decision.allowed, decision.rule
    (True, 'role ml-engineer (scope project:fraud) allows artifact.write')
    """

    def __init__(
        self, *, roles: Iterable[Role] = (), deny: Iterable[Rule] = (), source: str = "built-in roles"
    ) -> None:
        merged: dict[str, Role] = dict(BUILTIN_ROLES)
        for role in roles:
            if role.name in merged:
                what = "a built-in role" if role.name in BUILTIN_ROLES else "defined twice"
                raise ConfigError(f"{source}: role {role.name} is {what}")
            merged[role.name] = role
        self._roles: Mapping[str, Role] = MappingProxyType(merged)
        self.deny: tuple[Rule, ...] = tuple(deny)
        self.source = source
        self._cache: dict[tuple[object, ...], _Plan] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Policy(source={self.source!r}, roles={len(self._roles)}, deny={len(self.deny)})"

    @classmethod
    def default(cls) -> Policy:
        """The built-in roles alone."""
        return cls()

    @classmethod
    def from_yaml(cls, text: str, *, source: str) -> Policy:
        roles, deny = parse_policy(text, source=source)
        return cls(roles=roles, deny=deny, source=source)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Policy:
        """Read a policy file; refuses one that group or others may write (they could grant themselves)."""
        p = Path(path)
        check_not_writable_by_others(p, what="policy file")
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{p}: cannot read the policy file: {exc.strerror or exc}") from None
        except UnicodeDecodeError:
            raise ConfigError(f"{p}: the policy file is not UTF-8 text") from None
        return cls.from_yaml(text, source=str(p))

    @classmethod
    def for_workspace(cls, root: str | os.PathLike[str]) -> Policy:
        """The workspace's ``policy.yaml`` if it has one, else the built-in roles alone."""
        path = Path(root) / POLICY_FILE
        return cls.from_file(path) if path.exists() else cls.default()

    @property
    def roles(self) -> Mapping[str, Role]:
        """Every role by name: the built-in ones first, then the policy file's in its order."""
        return self._roles

    def role(self, name: str) -> Role:
        """The role called `name`; `ConfigError` if the policy has none."""
        found = self._roles.get(name)
        if found is None:
            raise ConfigError(f"{name}: no such role (roles: {', '.join(self._roles)})")
        return found

    def bind(self, subject: Subject) -> SubjectPolicy:
        """This policy for one subject: ``check(action, resource)``, the `Authorizer` that `Acting` takes."""
        return SubjectPolicy(self, subject)

    def require(self, subject: Subject, action: str, resource: str) -> Decision:
        """`check`, raising `AccessDenied` (carrying the decision) unless it is allowed."""
        decision = self.check(subject, action, resource)
        if not decision.allowed:
            raise AccessDenied(
                f"{subject.name}: {action} on {resource} is not allowed ({decision.rule})", decision=decision
            )
        return decision

    def check(self, subject: Subject, action: str, resource: str) -> Decision:
        """Decide whether `subject` may do `action` on `resource` (see the module docstring).

        `ConfigError` if the action is not in the catalog, the resource is not
        ``<type>:<name>``, or its type is not the one the action acts on.
        """
        key = (subject.name, subject.grants, subject.mfa, subject.token_scopes, action)
        plan = self._cache.get(key)
        if plan is None:
            plan = self._plan(subject, action)
            with self._lock:
                if len(self._cache) >= _CACHE_LIMIT:
                    self._cache.clear()
                self._cache[key] = plan
        kind, name = split_resource(resource)
        if kind != plan.kind:
            raise ConfigError(f"{resource}: {action} acts on {plan.kind} resources, not {kind}")
        for matches, rule in plan.denies:
            if matches(kind, name):
                return Decision(False, subject.name, action, resource, rule)
        for matches, rule in plan.allows:
            if matches(kind, name):
                if plan.token is not None and not any(m(kind, name) for m in plan.token):
                    why = f"token scopes do not include {action} on {resource}"
                    return Decision(False, subject.name, action, resource, why)
                return Decision(True, subject.name, action, resource, rule)
        for matches, rule in plan.mfa_blocked:
            if matches(kind, name):
                return Decision(False, subject.name, action, resource, rule, needs_mfa=True)
        return Decision(False, subject.name, action, resource, DENY_BY_DEFAULT)

    def _plan(self, subject: Subject, action: str) -> _Plan:
        check_action(action)
        me = subject.name
        denies: list[tuple[Matcher, str]] = []
        for i, rule in enumerate(self.deny, 1):
            if any(a.matches(action) for a in rule.actions):
                where = f"deny rule {i} in {self.source}"
                denies.append((_rule_matcher(rule, None, me), f"{where} denies {_phrase(rule, action)}"))
        allows: list[tuple[Matcher, str]] = []
        blocked: list[tuple[Matcher, str]] = []
        for grant in subject.grants:
            role = self._roles.get(grant.role)
            if role is None:
                logger.warning(
                    "%s holds role %s, which %s does not define; it gives nothing",
                    me,
                    grant.role,
                    self.source,
                )
                continue
            scope = _scope_matcher(grant.scope, me)
            label = f"role {role.name} (scope {grant.scope})"
            denies.extend(
                (_rule_matcher(rule, scope, me), f"{label} denies {_phrase(rule, action)}")
                for rule in role.deny
                if any(a.matches(action) for a in rule.actions)
            )
            usable = subject.mfa or not role.requires_mfa
            for rule in role.allow:
                if not any(a.matches(action) for a in rule.actions):
                    continue
                matcher = _rule_matcher(rule, scope, me)
                if usable:
                    allows.append((matcher, f"{label} allows {_phrase(rule, action)}"))
                else:
                    blocked.append((matcher, f"role {role.name} requires MFA and this session has none"))
        token: tuple[Matcher, ...] | None = None
        if subject.token_scopes is not None:
            scopes = [TokenScope.parse(s) for s in sorted(subject.token_scopes)]
            token = tuple(
                s.resources.compile(me) if s.resources is not None else _always
                for s in scopes
                if s.action.matches(action)
            )
        return _Plan(action_type(action), tuple(denies), tuple(allows), tuple(blocked), token)

    def describe_grant(self, grant: Grant) -> str:
        """One line for a grant: the role, its scope and whether it needs MFA."""
        role = self._roles.get(grant.role)
        mfa = " (requires MFA)" if role is not None and role.requires_mfa else ""
        missing = " (not defined by this policy)" if role is None else ""
        return f"{grant.role} at {grant.scope}{mfa}{missing}"


class SubjectPolicy:
    """A policy bound to one subject, so callers that act for it ask only about actions and resources."""

    __slots__ = ("policy", "subject")

    def __init__(self, policy: Policy, subject: Subject) -> None:
        self.policy = policy
        self.subject = subject

    def check(self, action: str, resource: str) -> Decision:
        return self.policy.check(self.subject, action, resource)

    def require(self, action: str, resource: str) -> Decision:
        return self.policy.require(self.subject, action, resource)
