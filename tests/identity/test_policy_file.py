"""Policy files: a bad one is refused with the file, the line and the problem; a good one loads."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pipewarden.errors import ConfigError
from pipewarden.identity import POLICY_FILE, Grant, Policy, Subject

HEADER = "format: pipewarden.policy/1\n"


def _refused(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        Policy.from_yaml(text, source="policy.yaml")
    return str(info.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # An unknown action, with the line of the rule.
        (
            HEADER + "roles:\n  ops:\n    allow:\n      - actions: [alert.read, alert.acknowledge]\n",
            "policy.yaml:5: roles.ops.allow[0]: 'alert.acknowledge': not a pipewarden action",
        ),
        # A resource type that does not exist.
        (
            HEADER + "deny:\n  - actions: artifact.delete\n    resources: 'artefact:prod/*'\n",
            "policy.yaml:3: deny[0]: 'artefact:prod/*': 'artefact' is not a resource type",
        ),
        # Brackets are refused rather than read as character classes.
        (
            HEADER + "deny:\n  - actions: artifact.delete\n    resources: 'artifact:prod/[ab]*'\n",
            "policy.yaml:3: deny[0]: 'artifact:prod/[ab]*': only '*' and '?' are special",
        ),
        # Resources of a type none of the rule's actions act on never match: an error, not a no-op.
        (
            HEADER + "deny:\n  - actions: artifact.delete\n    resources: 'model:prod/*'\n",
            "policy.yaml:3: deny[0]: 'model:prod/*': names model resources, which none of the rule's actions",
        ),
        # A misspelt key would silently drop a rule.
        (
            HEADER + "denny:\n  - actions: artifact.delete\n",
            "policy.yaml:2: denny: unknown key 'denny' (a policy file has deny, format, roles)",
        ),
        (
            HEADER + "roles:\n  ops:\n    alow:\n      - alert.read\n",
            "policy.yaml:4: roles.ops.alow: unknown key 'alow'",
        ),
        (
            HEADER + "roles:\n  ops:\n    allow:\n      - actions: alert.read\n        resource: 'alert:*'\n",
            "policy.yaml:6: roles.ops.allow[0].resource: unknown key 'resource'",
        ),
        # The same key twice: YAML would keep the last one.
        (
            HEADER + "roles:\n  ops:\n    allow: [alert.read]\n  ops:\n    allow: ['*']\n",
            "policy.yaml:5: 'ops' is given twice",
        ),
        (
            HEADER + "roles:\n  admin:\n    allow: [audit.read]\n",
            "policy.yaml:3: roles.admin: admin is a built-in role and cannot be redefined",
        ),
        (
            HEADER + "roles:\n  Ops Team:\n    allow: [alert.read]\n",
            "policy.yaml:3: roles.Ops Team: 'Ops Team': a role name is 1 to 64 lower-case letters",
        ),
        (
            HEADER + "roles:\n  ops:\n    requires_mfa: sometimes\n    allow: [alert.read]\n",
            "policy.yaml:4: roles.ops.requires_mfa: 'requires_mfa' is true or false",
        ),
        (HEADER + "roles:\n  ops: {}\n", "policy.yaml:3: roles.ops: role ops: has no allow or deny rules"),
        (
            HEADER + "roles:\n  ops:\n    allow:\n      - resources: 'alert:*'\n",
            "policy.yaml:5: roles.ops.allow[0]: a rule needs 'actions'",
        ),
        (
            HEADER + "roles:\n  ops:\n    allow:\n      - actions: []\n",
            "policy.yaml:5: roles.ops.allow[0].actions: 'actions' is a string",
        ),
        (HEADER + "deny: artifact.delete\n", "policy.yaml:2: deny: a list of rules is expected"),
        (HEADER, "policy.yaml: defines no roles and no deny rules"),
        ("", "policy.yaml: a policy file is a mapping"),
        (
            "roles: {}\ndeny: [artifact.delete]\n",
            "policy.yaml:1: format: the first line must be 'format: pipewarden.policy/1'",
        ),
        (HEADER + "roles:\n  ops:\n    allow: [alert.read\n", "policy.yaml:5: not valid YAML"),
        (
            HEADER + "deny:\n  - actions: 'artifact.delete'\n    resources: ' artifact:x'\n",
            "policy.yaml:3: deny[0]: ' artifact:x': a resource pattern is a non-empty string without outer",
        ),
    ],
)
def test_a_bad_policy_file_names_the_file_the_line_and_the_problem(text: str, expected: str) -> None:
    message = _refused(text)
    assert message.startswith(expected), message


def test_a_policy_file_in_the_workspace_is_read(tmp_path: Path) -> None:
    assert Policy.for_workspace(tmp_path).source == "built-in roles"
    path = tmp_path / POLICY_FILE
    path.write_text(HEADER + "roles:\n  ops:\n    allow:\n      - actions: 'alert.*'\n")
    os.chmod(path, 0o644)
    policy = Policy.for_workspace(tmp_path)
    assert policy.source == str(path)
    ops = Subject("oz", "user", (Grant("ops"),))
    decision = policy.check(ops, "alert.silence", "alert:a1")
    assert decision.allowed and decision.rule == "role ops (scope *) allows alert.*"


def test_a_policy_file_others_may_write_is_refused(tmp_path: Path) -> None:
    """Whoever can write the policy can grant themselves anything: such a file is not trusted."""
    path = tmp_path / POLICY_FILE
    path.write_text(HEADER + "deny: [artifact.delete]\n")
    os.chmod(path, 0o666)  # noqa: S103  # the unsafe mode is what this test checks is refused
    with pytest.raises(ConfigError, match="writable by group or other users"):
        Policy.for_workspace(tmp_path)


def test_a_policy_file_that_cannot_be_decoded_is_refused(tmp_path: Path) -> None:
    path = tmp_path / POLICY_FILE
    path.write_bytes(b"format: pipewarden.policy/1\ndeny: [\xff]\n")
    os.chmod(path, 0o600)
    with pytest.raises(ConfigError, match="not UTF-8"):
        Policy.from_file(path)
