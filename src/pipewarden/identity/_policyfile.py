"""Reading a policy file: custom roles and global deny rules in YAML, checked with line numbers.

    format: pipewarden.policy/1
    roles:
      release-manager:
        description: promotes models to production
        requires_mfa: true
        allow:
          - actions: [artifact.read, artifact.list, artifact.write, model.sign]
            resources: ["artifact:prod/*", "model:prod/*"]
        deny:
          - actions: artifact.delete
    deny:
      - actions: artifact.delete
        resources: "artifact:prod/*"
        reason: production versions are kept for audits

Every problem is a `ConfigError` that starts with ``<file>:<line>:`` and names
the key at fault; a key the format does not have is an error too, because a
misspelt ``deny`` that were silently ignored would allow what it meant to stop.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import yaml

from pipewarden.errors import ConfigError
from pipewarden.identity._roles import BUILTIN_ROLES, Role, Rule

__all__ = ["POLICY_FORMAT", "parse_policy"]

POLICY_FORMAT = "pipewarden.policy/1"
_TOP_KEYS = frozenset({"format", "roles", "deny"})
_ROLE_KEYS = frozenset({"description", "requires_mfa", "allow", "deny"})
_RULE_KEYS = frozenset({"actions", "resources", "reason"})

Path_ = tuple[str | int, ...]


def _walk(node: yaml.Node, path: Path_, lines: dict[Path_, int], source: str) -> None:
    """Record the line of every key and item; refuse a key given twice in one mapping."""
    lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else "?"
            if key in seen:
                raise ConfigError(f"{source}:{key_node.start_mark.line + 1}: {key!r} is given twice")
            seen.add(key)
            lines[(*path, key)] = key_node.start_mark.line + 1
            _walk(value_node, (*path, key), lines, source)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _walk(item, (*path, i), lines, source)


def _locator(source: str, lines: dict[Path_, int]) -> Callable[[Path_], str]:
    def where(path: Path_) -> str:
        for end in range(len(path), -1, -1):
            line = lines.get(path[:end])
            if line is not None:
                label = ".".join(str(p) if isinstance(p, str) else f"[{p}]" for p in path).replace(".[", "[")
                return f"{source}:{line}: {label}" if label else f"{source}:{line}"
        return source

    return where


def _strings(value: object, where: str, what: str) -> list[str]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(v, str) for v in items):
        raise ConfigError(f"{where}: {what} is a string or a non-empty list of strings")
    return list(items)


def _rule(value: object, path: Path_, where: Callable[[Path_], str]) -> Rule:
    if isinstance(value, str):
        value = {"actions": value}
    if not isinstance(value, dict):
        raise ConfigError(f"{where(path)}: a rule is a mapping with 'actions' (and 'resources', 'reason')")
    unknown = set(value) - _RULE_KEYS
    if unknown:
        key = sorted(map(str, unknown))[0]
        raise ConfigError(
            f"{where((*path, key))}: unknown key {key!r} (a rule has {', '.join(sorted(_RULE_KEYS))})"
        )
    if "actions" not in value:
        raise ConfigError(f"{where(path)}: a rule needs 'actions'")
    actions = _strings(value["actions"], where((*path, "actions")), "'actions'")
    resources = (
        _strings(value["resources"], where((*path, "resources")), "'resources'")
        if "resources" in value
        else []
    )
    reason = value.get("reason", "")
    if not isinstance(reason, str):
        raise ConfigError(f"{where((*path, 'reason'))}: 'reason' is a string")
    try:
        return Rule.of(actions, resources, reason=reason.strip())
    except ConfigError as exc:
        raise ConfigError(f"{where(path)}: {exc}") from None


def _rules(value: object, path: Path_, where: Callable[[Path_], str]) -> tuple[Rule, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise ConfigError(f"{where(path)}: a list of rules is expected")
    return tuple(_rule(item, (*path, i), where) for i, item in enumerate(value))


def _role(name: object, value: object, where: Callable[[Path_], str]) -> Role:
    path: Path_ = ("roles", str(name))
    if not isinstance(name, str):
        raise ConfigError(f"{where(('roles',))}: role names are strings, not {name!r}")
    if name in BUILTIN_ROLES:
        raise ConfigError(f"{where(path)}: {name} is a built-in role and cannot be redefined")
    if not isinstance(value, dict):
        raise ConfigError(f"{where(path)}: a role is a mapping with 'allow' and/or 'deny' rules")
    unknown = set(value) - _ROLE_KEYS
    if unknown:
        key = sorted(map(str, unknown))[0]
        raise ConfigError(
            f"{where((*path, key))}: unknown key {key!r} (a role has {', '.join(sorted(_ROLE_KEYS))})"
        )
    requires_mfa = value.get("requires_mfa", False)
    if not isinstance(requires_mfa, bool):
        raise ConfigError(f"{where((*path, 'requires_mfa'))}: 'requires_mfa' is true or false")
    description = value.get("description", "")
    if not isinstance(description, str):
        raise ConfigError(f"{where((*path, 'description'))}: 'description' is a string")
    allow = _rules(value.get("allow"), (*path, "allow"), where)
    deny = _rules(value.get("deny"), (*path, "deny"), where)
    try:
        return Role(name, allow, deny, requires_mfa=requires_mfa, description=description.strip())
    except ConfigError as exc:
        raise ConfigError(f"{where(path)}: {exc}") from None


def parse_policy(text: str, *, source: str) -> tuple[tuple[Role, ...], tuple[Rule, ...]]:
    """The custom roles and global deny rules of a policy file's text; `ConfigError` on any problem."""
    try:
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            doc: Any = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        line = f":{exc.problem_mark.line + 1}" if exc.problem_mark is not None else ""
        raise ConfigError(f"{source}{line}: not valid YAML: {exc.problem or exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {exc}") from None
    lines: dict[Path_, int] = {}
    if node is not None:
        _walk(node, (), lines, source)
    where = _locator(source, lines)
    if not isinstance(doc, dict):
        raise ConfigError(f"{source}: a policy file is a mapping with 'format', 'roles' and 'deny'")
    unknown = set(doc) - _TOP_KEYS
    if unknown:
        key = sorted(map(str, unknown))[0]
        raise ConfigError(
            f"{where((key,))}: unknown key {key!r} (a policy file has {', '.join(sorted(_TOP_KEYS))})"
        )
    if doc.get("format") != POLICY_FORMAT:
        raise ConfigError(f"{where(('format',))}: the first line must be 'format: {POLICY_FORMAT}'")
    roles_doc = doc.get("roles") or {}
    if not isinstance(roles_doc, dict):
        raise ConfigError(f"{where(('roles',))}: 'roles' is a mapping of role name to role")
    roles = tuple(_role(name, value, where) for name, value in roles_doc.items())
    deny = _rules(doc.get("deny"), ("deny",), where)
    if not roles and not deny:
        raise ConfigError(f"{source}: defines no roles and no deny rules; an empty policy file is refused")
    return roles, deny
