"""Every action pipewarden authorizes, by resource type, and how each type's resources are named.

An action is ``<type>.<verb>``; its first word is the type of resource it acts
on, and a resource is named ``<type>:<name>``. The catalog is closed: a role,
a token scope or a check that names an action not listed here is an error, so
a typo can never grant (or fail to deny) something by accident. The event log
uses the same names for the same actions.
"""

from __future__ import annotations

import re
from types import MappingProxyType

from pipewarden.errors import ConfigError

__all__ = [
    "ACTIONS",
    "PROJECT_TYPES",
    "RESOURCE_TYPES",
    "action_type",
    "check_action",
    "is_type_word",
    "split_resource",
]

#: action -> what it lets a principal do (the table in docs/access.md).
ACTIONS: MappingProxyType[str, str] = MappingProxyType(
    {
        "artifact.read": "download an artifact version's bytes",
        "artifact.write": "put a new artifact version into the store",
        "artifact.list": "list artifacts and versions and read their manifests (metadata, no bytes)",
        "artifact.verify": "check an artifact's signature and hashes",
        "artifact.delete": "delete an artifact version",
        "model.sign": "sign a model file or folder with the workspace key",
        "model.verify": "verify a model's signature against the trusted keys",
        "model.predict": "query a served model",
        "scan.run": "scan model files",
        "data.check": "check a data batch against its contract",
        "data.screen": "screen a data set for poisoning",
        "audit.read": "read the audit log",
        "audit.verify": "verify the audit log's hash chain and signed checkpoints",
        "audit.export": "export the audit log with its proofs",
        "user.read": "list principals and read their settings",
        "user.create": "create users and service accounts",
        "user.update": "disable, enable, or reset the password or MFA of a principal",
        "role.read": "list roles and role bindings",
        "role.grant": "grant a role to a principal or a group",
        "role.revoke": "revoke a role binding",
        "group.read": "list groups and their members",
        "group.manage": "create and delete groups and change their members",
        "token.create": "create an API token for oneself",
        "token.read": "list one's own API tokens",
        "token.revoke": "revoke one's own API token",
        "token.manage": "create, list and revoke other principals' API tokens",
        "policy.read": "read the authorization policy",
        "policy.update": "change the authorization policy",
        "key.read": "read public keys and key-ring metadata",
        "key.rotate": "rotate key-encryption keys and signing keys",
        "key.trust": "trust another public key, for model signatures or for writes to the store",
        "alert.read": "read alerts",
        "alert.ack": "acknowledge an alert",
        "alert.silence": "silence alerts matching a rule",
        "monitor.ingest": "send events from a pipeline stage to the monitor",
        "pipeline.run": "run a declared pipeline",
        "deps.audit": "audit a project's dependencies",
        "server.metrics": "read the server's metrics",
    }
)

#: resource type -> how its resources are named (the second table in docs/access.md).
RESOURCE_TYPES: MappingProxyType[str, str] = MappingProxyType(
    {
        "artifact": "artifact:<project>/<name>",
        "model": "model:<path> (files to sign or verify), model:<project>/<name> (a served model)",
        "scan": "scan:<path>",
        "data": "data:<project>/<name>",
        "audit": "audit:log",
        "user": "user:<name>",
        "role": "role:<name>",
        "group": "group:<name>",
        "token": "token:<owner> (to create), token:<owner>/<id>",
        "policy": "policy:roles",
        "key": "key:ring, key:signing, key:trusted, key:writers",
        "alert": "alert:<id>",
        "monitor": "monitor:<project>/<stream>",
        "pipeline": "pipeline:<project>/<name>",
        "deps": "deps:<project>",
        "server": "server:metrics",
    }
)

#: The resource types whose names start with a project (``artifact:fraud/model``, ``deps:fraud``), so
#: that a ``project:<p>`` scope can cover them. Every other type (users, roles, groups, tokens, keys,
#: the policy, the audit log, alerts, the server) is named outside any project: a project scope never
#: covers it, whatever its name, or an administrator of project "admin" could grant role:admin and one
#: of project "ada" could reset user:ada. Paths (``model:``, ``scan:``) count from the folder that
#: holds the workspace, so their first segment is a project folder; an absolute path is in none.
PROJECT_TYPES = frozenset({"artifact", "model", "scan", "data", "monitor", "pipeline", "deps"})

_TYPE = re.compile(r"[a-z][a-z0-9_]*")
_MAX_RESOURCE = 1024
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def check_action(action: str) -> str:
    """Return `action` if the catalog has it; `ConfigError` naming it otherwise."""
    if action not in ACTIONS:
        raise ConfigError(f"{action!r}: not a pipewarden action (see docs/access.md for the list)")
    return action


def action_type(action: str) -> str:
    """The resource type an action acts on: its first word."""
    return action.partition(".")[0]


def split_resource(resource: str) -> tuple[str, str]:
    """Split ``<type>:<name>`` into its parts; `ConfigError` unless the type is known and the name sane."""
    kind, colon, name = resource.partition(":")
    if not colon or not name or kind not in RESOURCE_TYPES:
        raise ConfigError(
            f"{resource!r:.120}: a resource is named '<type>:<name>' with a known type, "
            "such as 'artifact:fraud/model'"
        )
    if len(resource) > _MAX_RESOURCE or _CONTROL.search(name):
        raise ConfigError(
            f"{resource!r:.120}: a resource name has at most {_MAX_RESOURCE} characters and no control "
            "characters"
        )
    return kind, name


def is_type_word(text: str) -> bool:
    return _TYPE.fullmatch(text) is not None
