"""Who is acting, as authorization sees it: a principal's name and kind, its grants, and the session.

Authentication builds a `Subject` (after a password and second factor, or a
token); authorization (`Policy.check`) reads it and nothing else, so the two
halves meet only here. A `Subject` holds no credential: it is safe to log.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipewarden.errors import ConfigError

__all__ = ["PRINCIPAL_KINDS", "Grant", "Subject"]

#: What a principal is: a person ('user': a password and a second factor) or a service account
#: ('service': API tokens only).
PRINCIPAL_KINDS = ("user", "service")


@dataclass(frozen=True, slots=True)
class Grant:
    """A role bound to a principal (directly or through a group), limited to a scope.

    `scope` is '*' (everywhere), 'project:<name>' (resources of the project
    types whose name is '<name>' or starts with '<name>/'), or a glob on
    resource names such as 'fraud/*' or 'artifact:prod/*'.
    """

    role: str
    scope: str = "*"

    def __post_init__(self) -> None:
        if not self.role:
            raise ConfigError("a grant needs a role name")
        if not self.scope:
            raise ConfigError(
                f"role {self.role}: a grant's scope is '*', 'project:<name>' or a resource pattern"
            )


@dataclass(frozen=True, slots=True)
class Subject:
    """An authenticated principal as authorization sees it.

    `grants` are the principal's direct grants and those of its groups.
    `mfa` is True when this session passed a second factor; roles that require
    MFA give nothing without it. `token_scopes` is None unless the principal
    acts through an API token, whose scopes (action patterns, optionally
    'action@resource-glob') then narrow what its roles allow.
    """

    name: str
    kind: str
    grants: tuple[Grant, ...]
    mfa: bool = False
    token_scopes: frozenset[str] | None = None
    token_id: str | None = None

    def __post_init__(self) -> None:
        if not self.name:
            raise ConfigError("a subject needs a name")
        if self.kind not in PRINCIPAL_KINDS:
            raise ConfigError(f"{self.name}: subject kind {self.kind!r} is not 'user' or 'service'")
