"""The small pattern languages of the policy: action patterns and resource selectors.

Action patterns: ``artifact.read`` (one action), ``artifact.*`` (every action
on one resource type), ``*.read`` (one verb on every type that has it), ``*``.

Resource selectors, used by rule resources, grant scopes and token scopes:

- ``*``: every resource;
- ``project:<p>``: resources named ``<p>`` or ``<p>/...`` of the types that
  belong to projects (`PROJECT_TYPES`: ``artifact:fraud/model``,
  ``pipeline:fraud/train``, ``deps:fraud``), never a user, role, group,
  token, key, the policy, the audit log, an alert or the server, whatever
  its name;
- ``<type>:<glob>``: resources of that type whose name matches the glob
  (``artifact:prod/*``); ``*:<glob>`` is any type;
- ``<glob>`` alone: resources of any type whose name matches it (``fraud/*``).

In a glob, ``*`` matches any run of characters, ``/`` included, and ``?`` one
character; nothing else is special (brackets and braces are refused, so a
pattern means what it looks like). ``{self}`` stands for the acting
principal's own name, as in ``token:{self}/*``.

Patterns are checked when a policy is built: an unknown action or resource
type is an error, never a rule that silently matches nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from pipewarden.errors import ConfigError
from pipewarden.identity._actions import ACTIONS, PROJECT_TYPES, RESOURCE_TYPES, action_type, is_type_word

__all__ = [
    "NAME_PATTERN",
    "SELF",
    "ActionPattern",
    "Matcher",
    "Selector",
    "TokenScope",
    "check_name",
]

SELF = "{self}"
#: Role and group names: lower-case words joined by '-', '_' or '.', up to 64 characters.
NAME_PATTERN = re.compile(r"[a-z][a-z0-9._-]{0,63}")
_MAX_PATTERN = 256
_PROJECT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_REFUSED = re.compile(r"[\[\]{}\x00-\x1f\x7f]")
_VERBS = frozenset(a.partition(".")[2] for a in ACTIONS)

#: A compiled selector: (resource type, resource name) -> does it match?
Matcher = Callable[[str, str], bool]


def check_name(name: object, *, what: str) -> str:
    """Return `name` if it is a valid role or group name; `ConfigError` naming it otherwise."""
    if not isinstance(name, str) or NAME_PATTERN.fullmatch(name) is None:
        raise ConfigError(
            f"{name!r}: a {what} name is 1 to 64 lower-case letters, digits, '.', '_' or '-', "
            "starting with a letter"
        )
    return name


@dataclass(frozen=True, slots=True)
class ActionPattern:
    """A checked action pattern; `types` are the resource types it can apply to."""

    text: str
    types: frozenset[str]

    @classmethod
    def parse(cls, text: object) -> ActionPattern:
        if not isinstance(text, str) or not text:
            raise ConfigError(f"{text!r}: an action pattern is a string like 'artifact.read' or 'artifact.*'")
        if text == "*":
            return cls(text, frozenset(RESOURCE_TYPES))
        kind, dot, verb = text.partition(".")
        if not dot:
            raise ConfigError(
                f"{text!r}: an action pattern is '<type>.<verb>', '<type>.*', '*.<verb>' or '*'"
            )
        if kind == "*":
            if verb not in _VERBS:
                raise ConfigError(f"{text!r}: no action has the verb {verb!r}")
            return cls(text, frozenset(action_type(a) for a in ACTIONS if a.endswith("." + verb)))
        if kind not in RESOURCE_TYPES:
            raise ConfigError(f"{text!r}: {kind!r} is not a resource type")
        if verb == "*":
            return cls(text, frozenset({kind}))
        if text not in ACTIONS:
            raise ConfigError(f"{text!r}: not a pipewarden action (see docs/access.md for the list)")
        return cls(text, frozenset({kind}))

    def matches(self, action: str) -> bool:
        text = self.text
        if text == "*" or text == action:
            return True
        kind, _, verb = text.partition(".")
        if verb == "*":
            return action_type(action) == kind
        return kind == "*" and action.partition(".")[2] == verb


def _glob_regex(glob: str, self_name: str | None) -> str:
    """A glob as a regular expression; `{self}` becomes the (escaped) acting principal's name."""
    out: list[str] = []
    for i, part in enumerate(glob.split(SELF)):
        if i:
            # Without a subject (an anonymous check) '{self}' matches nothing.
            out.append(re.escape(self_name) if self_name is not None else "(?!)")
        out.extend(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in part)
    return "".join(out)


def _name_matcher(glob: str, self_name: str | None) -> Callable[[str], bool]:
    """A test of resource names against `glob`, with fast paths for the common shapes."""
    if SELF not in glob and "?" not in glob:
        stars = glob.count("*")
        if stars == 0:
            return glob.__eq__
        if glob == "*":
            return lambda _name: True
        if stars == 1 and glob.endswith("*"):
            prefix = glob[:-1]
            return lambda name: name.startswith(prefix)
    regex = re.compile(_glob_regex(glob, self_name), re.DOTALL)
    return lambda name: regex.fullmatch(name) is not None


@dataclass(frozen=True, slots=True)
class Selector:
    """A checked resource selector (see the module docstring); `compile` makes it a fast matcher.

    `resource_type` is the type it is limited to (None: any); `personal` is
    True when it names the acting principal's own resources (``{self}``).
    """

    text: str
    kind: str  # 'any' | 'project' | 'glob'
    resource_type: str | None
    glob: str
    personal: bool

    @classmethod
    def parse(cls, text: object) -> Selector:
        if not isinstance(text, str) or not text or text != text.strip():
            raise ConfigError(f"{text!r}: a resource pattern is a non-empty string without outer spaces")
        if len(text) > _MAX_PATTERN:
            raise ConfigError(f"{text[:60]!r}...: a resource pattern has at most {_MAX_PATTERN} characters")
        if _REFUSED.search(text.replace(SELF, "")):
            raise ConfigError(
                f"{text!r}: only '*' and '?' are special in a resource pattern (and '{SELF}'); "
                "brackets, braces and control characters are refused"
            )
        personal = SELF in text
        if text == "*":
            return cls(text, "any", None, "*", personal=False)
        prefix, colon, rest = text.partition(":")
        if colon and prefix == "project":
            if not _PROJECT.fullmatch(rest):
                raise ConfigError(f"{text!r}: a project name is letters, digits, '.', '_' and '-'")
            return cls(text, "project", None, rest, personal=False)
        if colon and prefix == "*":
            return cls(text, "glob", None, rest or "*", personal=personal)
        if colon and is_type_word(prefix):
            if prefix not in RESOURCE_TYPES:
                raise ConfigError(f"{text!r}: {prefix!r} is not a resource type")
            if not rest:
                raise ConfigError(f"{text!r}: name the resources after the ':' ('{prefix}:*' for all)")
            return cls(text, "glob", prefix, rest, personal=personal)
        return cls(text, "glob", None, text, personal=personal)

    def compile(self, self_name: str | None) -> Matcher:
        """A function of (type, name) for the subject named `self_name` (None: no subject)."""
        if self.kind == "any":
            return lambda _kind, _name: True
        if self.kind == "project":
            project, under = self.glob, self.glob + "/"
            # Only project-namespaced types: 'project:admin' must not cover role:admin (docs/access.md).
            return lambda kind, name: kind in PROJECT_TYPES and (name == project or name.startswith(under))
        name_ok = _name_matcher(self.glob, self_name)
        wanted = self.resource_type
        if wanted is None:
            return lambda _kind, name: name_ok(name)
        return lambda kind, name: kind == wanted and name_ok(name)


@dataclass(frozen=True, slots=True)
class TokenScope:
    """One scope of an API token: an action pattern, optionally ``@`` a resource selector.

    ``artifact.read`` lets the token read any artifact its owner may read;
    ``artifact.*@project:fraud`` limits it to that project's artifacts.
    """

    text: str
    action: ActionPattern
    resources: Selector | None

    @classmethod
    def parse(cls, text: object) -> TokenScope:
        if not isinstance(text, str):
            raise ConfigError(f"{text!r}: a token scope is a string like 'artifact.read@project:fraud'")
        action, at, resources = text.partition("@")
        try:
            return cls(text, ActionPattern.parse(action), Selector.parse(resources) if at else None)
        except ConfigError as exc:
            raise ConfigError(f"token scope {text!r}: {exc}") from None
