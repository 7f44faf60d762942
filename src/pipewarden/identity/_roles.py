"""Rules, roles, and the roles every deployment has.

A role is a set of allow rules and deny rules; a rule names actions and,
optionally, the resources it covers (no resources: every resource the actions
act on). A role may require a second factor: without MFA it allows nothing.

The built-in roles are the defaults the documentation promises
(docs/access.md, "Built-in roles"); a policy file adds roles beside them but
can never redefine them, so "admin" or "auditor" means the same thing in every
deployment.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from types import MappingProxyType

from pipewarden.errors import ConfigError
from pipewarden.identity._patterns import ActionPattern, Selector, check_name

__all__ = ["ADMIN_ROLE", "BUILTIN_ROLES", "Role", "Rule"]

#: The built-in role that allows everything. Held at scope '*' it makes a deployment's administrator:
#: bootstrapping is refused while an enabled one exists, and no change may leave none.
ADMIN_ROLE = "admin"


@dataclass(frozen=True, slots=True)
class Rule:
    """Actions (patterns) on resources (selectors; empty means all of the actions' resources)."""

    actions: tuple[ActionPattern, ...]
    resources: tuple[Selector, ...] = ()
    reason: str = ""

    def __post_init__(self) -> None:
        if not self.actions:
            raise ConfigError("a rule names at least one action")
        types = frozenset().union(*(a.types for a in self.actions))
        for selector in self.resources:
            if selector.resource_type is not None and selector.resource_type not in types:
                raise ConfigError(
                    f"{selector.text!r}: names {selector.resource_type} resources, which none of "
                    f"the rule's actions ({', '.join(a.text for a in self.actions)}) act on"
                )

    @classmethod
    def of(
        cls, actions: str | Iterable[str], resources: str | Iterable[str] = (), *, reason: str = ""
    ) -> Rule:
        """Build a rule from its text form, checking every pattern.

        >>> Rule.of(["artifact.read", "artifact.list"], "project:fraud")
        """
        action_texts = [actions] if isinstance(actions, str) else list(actions)
        resource_texts = [resources] if isinstance(resources, str) else list(resources)
        return cls(
            tuple(ActionPattern.parse(a) for a in action_texts),
            tuple(Selector.parse(r) for r in resource_texts),
            reason,
        )

    @property
    def personal(self) -> bool:
        """True when every resource it covers is the acting principal's own (``{self}``)."""
        return bool(self.resources) and all(s.personal for s in self.resources)

    def describe(self) -> str:
        """The rule as one line: ``artifact.read, artifact.list on project:fraud``."""
        text = ", ".join(a.text for a in self.actions)
        if self.resources:
            text += " on " + ", ".join(s.text for s in self.resources)
        return text

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {"actions": [a.text for a in self.actions]}
        if self.resources:
            out["resources"] = [s.text for s in self.resources]
        if self.reason:
            out["reason"] = self.reason
        return out


@dataclass(frozen=True, slots=True)
class Role:
    """A named set of allow and deny rules; valid once constructed."""

    name: str
    allow: tuple[Rule, ...]
    deny: tuple[Rule, ...] = ()
    requires_mfa: bool = False
    description: str = ""
    builtin: bool = False

    def __post_init__(self) -> None:
        check_name(self.name, what="role")
        if not self.allow and not self.deny:
            raise ConfigError(f"role {self.name}: has no allow or deny rules")

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "builtin": self.builtin,
            "description": self.description,
            "requires_mfa": self.requires_mfa,
            "allow": [r.to_dict() for r in self.allow],
            "deny": [r.to_dict() for r in self.deny],
        }


# A principal's own API tokens: 'token:<name>' to create one, 'token:<name>/<id>' for one that exists.
_OWN_TOKENS = Rule.of(["token.create", "token.read", "token.revoke"], ["token:{self}", "token:{self}/*"])


def _builtin(name: str, description: str, *allow: Rule, requires_mfa: bool) -> Role:
    return Role(name, allow, (), requires_mfa=requires_mfa, description=description, builtin=True)


BUILTIN_ROLES: MappingProxyType[str, Role] = MappingProxyType(
    {
        role.name: role
        for role in (
            _builtin(
                ADMIN_ROLE,
                "everything, including users, roles, keys and the policy",
                Rule.of("*"),
                requires_mfa=True,
            ),
            _builtin(
                "ml-engineer",
                "builds, signs and ships models: artifacts, signing, scans, data checks, pipelines",
                Rule.of(["artifact.read", "artifact.write", "artifact.list", "artifact.verify"]),
                Rule.of(["model.sign", "model.verify", "model.predict"]),
                Rule.of(["scan.run", "data.check", "data.screen", "pipeline.run", "deps.audit"]),
                Rule.of("alert.read"),
                _OWN_TOKENS,
                requires_mfa=True,
            ),
            _builtin(
                "data-scientist",
                "explores and experiments: reads artifacts, writes only data sets and experiments",
                Rule.of(["artifact.read", "artifact.list", "artifact.verify"]),
                # Writes limited to data sets and experiments; a model that ships is an ML engineer's.
                Rule.of(
                    "artifact.write",
                    [
                        "artifact:data/*",
                        "artifact:*/data/*",
                        "artifact:experiments/*",
                        "artifact:*/experiments/*",
                    ],
                ),
                Rule.of(["model.verify", "model.predict"]),
                Rule.of(["scan.run", "data.check", "data.screen"]),
                _OWN_TOKENS,
                # It writes training data: the way in for poisoning (MITRE ATLAS AML.T0020).
                requires_mfa=True,
            ),
            _builtin(
                "auditor",
                "reads, verifies and exports the audit log; nothing else",
                Rule.of(["audit.read", "audit.verify", "audit.export"]),
                requires_mfa=False,
            ),
            _builtin(
                "viewer",
                "lists artifacts and checks signatures; never reads an artifact's bytes",
                Rule.of(["artifact.list", "artifact.verify", "model.verify"]),
                requires_mfa=False,
            ),
            _builtin(
                "pipeline-service",
                "what a pipeline stage's service account needs to run and record its work",
                Rule.of(["artifact.read", "artifact.write", "artifact.list", "artifact.verify"]),
                Rule.of(["model.sign", "model.verify", "model.predict"]),
                Rule.of(
                    ["scan.run", "data.check", "data.screen", "monitor.ingest", "pipeline.run", "deps.audit"]
                ),
                # Services authenticate with tokens and have no second factor.
                requires_mfa=False,
            ),
        )
    }
)
