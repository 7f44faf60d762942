"""The authorization matrix: every built-in role, every action, inside and outside a grant's scope.

The expected table below is written out by hand and reviewed as the
specification of the built-in roles (docs/access.md, "Built-in roles"); it is
never computed from the implementation. Each cell has three letters, Y
(allowed) or N (denied):

1. the role granted everywhere (scope ``*``), on the resource in column G;
2. the role granted at scope ``project:fraud``, on a resource inside the project (column I);
3. the role granted at scope ``project:fraud``, on a resource outside it (column O).

Resources of types that belong to no project (the audit log, users, roles,
groups, the policy, keys, alerts, the server) get a name under the project in
column I, to show that a project scope never covers them, whatever their name:
only the project types (`PROJECT_TYPES`: artifacts, models, scans, data,
monitor streams, pipelines, dependencies) are ever inside a project. An
earlier version of this table expected Y there, which let an admin grant at
``project:admin`` grant ``role:admin`` (docs/access.md, "Grants and scopes").
Token resources are the subject's own token in G and I, and another
principal's in O: rules about one's own tokens are not limited by scope.
"""

from __future__ import annotations

import pytest

from pipewarden.identity import ACTIONS, BUILTIN_ROLES, Grant, Policy, Subject

SUBJECT = "ada"

# type: (G, I, O) resources.
RESOURCES = {
    "artifact": ("artifact:prod/model", "artifact:fraud/data/train", "artifact:payments/data/train"),
    "model": ("model:prod/model", "model:fraud/model", "model:payments/model"),
    "scan": ("scan:/srv/models/bert", "scan:fraud/model.pt", "scan:payments/model.pt"),
    "data": ("data:prod/train", "data:fraud/train", "data:payments/train"),
    "audit": ("audit:log", "audit:fraud/log", "audit:log"),
    "user": ("user:bob", "user:fraud/bob", "user:bob"),
    "role": ("role:admin", "role:fraud/admin", "role:admin"),
    "group": ("group:eng", "group:fraud/eng", "group:eng"),
    "policy": ("policy:roles", "policy:fraud/roles", "policy:roles"),
    "key": ("key:ring", "key:fraud/ring", "key:ring"),
    "alert": ("alert:a1", "alert:fraud/a1", "alert:a1"),
    "monitor": ("monitor:prod", "monitor:fraud/stream", "monitor:payments/stream"),
    "pipeline": ("pipeline:prod/train", "pipeline:fraud/train", "pipeline:payments/train"),
    "deps": ("deps:prod", "deps:fraud", "deps:payments"),
    "server": ("server:metrics", "server:fraud/metrics", "server:metrics"),
}
# token.create acts on the owner ('token:<owner>'); the others on one token ('token:<owner>/<id>').
TOKEN_CREATE = ("token:ada", "token:ada", "token:bob")
TOKEN = ("token:ada/Ab12Cd34Ef56", "token:ada/Ab12Cd34Ef56", "token:bob/Gh78Ij90Kl12")

EXPECTED = """
action            admin  ml-engineer  data-scientist  auditor  viewer  pipeline-service
artifact.read     YYN    YYN          YYN             NNN      NNN     YYN
artifact.write    YYN    YYN          NYN             NNN      NNN     YYN
artifact.list     YYN    YYN          YYN             NNN      YYN     YYN
artifact.verify   YYN    YYN          YYN             NNN      YYN     YYN
artifact.delete   YYN    NNN          NNN             NNN      NNN     NNN
model.sign        YYN    YYN          NNN             NNN      NNN     YYN
model.verify      YYN    YYN          YYN             NNN      YYN     YYN
model.predict     YYN    YYN          YYN             NNN      NNN     YYN
scan.run          YYN    YYN          YYN             NNN      NNN     YYN
data.check        YYN    YYN          YYN             NNN      NNN     YYN
data.screen       YYN    YYN          YYN             NNN      NNN     YYN
audit.read        YNN    NNN          NNN             YNN      NNN     NNN
audit.verify      YNN    NNN          NNN             YNN      NNN     NNN
audit.export      YNN    NNN          NNN             YNN      NNN     NNN
user.read         YNN    NNN          NNN             NNN      NNN     NNN
user.create       YNN    NNN          NNN             NNN      NNN     NNN
user.update       YNN    NNN          NNN             NNN      NNN     NNN
role.read         YNN    NNN          NNN             NNN      NNN     NNN
role.grant        YNN    NNN          NNN             NNN      NNN     NNN
role.revoke       YNN    NNN          NNN             NNN      NNN     NNN
group.read        YNN    NNN          NNN             NNN      NNN     NNN
group.manage      YNN    NNN          NNN             NNN      NNN     NNN
token.create      YNN    YYN          YYN             NNN      NNN     NNN
token.read        YNN    YYN          YYN             NNN      NNN     NNN
token.revoke      YNN    YYN          YYN             NNN      NNN     NNN
token.manage      YNN    NNN          NNN             NNN      NNN     NNN
policy.read       YNN    NNN          NNN             NNN      NNN     NNN
policy.update     YNN    NNN          NNN             NNN      NNN     NNN
key.read          YNN    NNN          NNN             NNN      NNN     NNN
key.rotate        YNN    NNN          NNN             NNN      NNN     NNN
key.trust         YNN    NNN          NNN             NNN      NNN     NNN
alert.read        YNN    YNN          NNN             NNN      NNN     NNN
alert.ack         YNN    NNN          NNN             NNN      NNN     NNN
alert.silence     YNN    NNN          NNN             NNN      NNN     NNN
monitor.ingest    YYN    NNN          NNN             NNN      NNN     YYN
pipeline.run      YYN    YYN          NNN             NNN      NNN     YYN
deps.audit        YYN    YYN          NNN             NNN      NNN     YYN
server.metrics    YNN    NNN          NNN             NNN      NNN     NNN
"""

#: The built-in roles that give nothing to a session without a second factor.
REQUIRES_MFA = {"admin", "ml-engineer", "data-scientist"}


def _table() -> tuple[list[str], dict[tuple[str, str], str]]:
    header, *rows = [line.split() for line in EXPECTED.strip().splitlines()]
    roles = header[1:]
    cells = {}
    for action, *row in rows:
        assert len(row) == len(roles), action
        for role, cell in zip(roles, row, strict=True):
            assert len(cell) == 3 and set(cell) <= {"Y", "N"}, (action, role, cell)
            cells[(role, action)] = cell
    return roles, cells


ROLES, CELLS = _table()
CASES = sorted(CELLS)


def _resources(action: str) -> tuple[str, str, str]:
    if action == "token.create":
        return TOKEN_CREATE
    if action.startswith("token."):
        return TOKEN
    return RESOURCES[action.partition(".")[0]]


def _yn(allowed: bool) -> str:
    return "Y" if allowed else "N"


def test_the_table_covers_every_built_in_role_and_every_action() -> None:
    assert sorted(ROLES) == sorted(BUILTIN_ROLES)
    assert sorted({action for _, action in CELLS}) == sorted(ACTIONS)
    assert {name for name, role in BUILTIN_ROLES.items() if role.requires_mfa} == REQUIRES_MFA


@pytest.mark.parametrize(("role", "action"), CASES, ids=[f"{r}-{a}" for r, a in CASES])
def test_matrix(role: str, action: str) -> None:
    policy = Policy.default()
    everywhere = Subject(SUBJECT, "user", (Grant(role),), mfa=True)
    scoped = Subject(SUBJECT, "user", (Grant(role, "project:fraud"),), mfa=True)
    g, i, o = _resources(action)
    got = (
        _yn(policy.check(everywhere, action, g).allowed)
        + _yn(policy.check(scoped, action, i).allowed)
        + _yn(policy.check(scoped, action, o).allowed)
    )
    assert got == CELLS[(role, action)], f"{role} {action}: expected {CELLS[(role, action)]}, got {got}"


@pytest.mark.parametrize(("role", "action"), CASES, ids=[f"{r}-{a}" for r, a in CASES])
def test_matrix_without_mfa(role: str, action: str) -> None:
    """Without a second factor an MFA role allows nothing, and says that MFA is what is missing."""
    policy = Policy.default()
    subject = Subject(SUBJECT, "user", (Grant(role),), mfa=False)
    g, _, _ = _resources(action)
    decision = policy.check(subject, action, g)
    expected = CELLS[(role, action)][0] == "Y" and role not in REQUIRES_MFA
    assert decision.allowed is expected
    with_mfa_allowed = CELLS[(role, action)][0] == "Y"
    if role in REQUIRES_MFA and with_mfa_allowed:
        assert decision.needs_mfa
        assert decision.rule == f"role {role} requires MFA and this session has none"
    else:
        assert not decision.needs_mfa
