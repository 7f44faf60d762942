"""A ``project:<p>`` scope covers the project's artifacts, models, data and pipelines, and nothing else.

Users, roles, groups, tokens, keys, the policy, the audit log, alerts and the
server belong to no project. A grant at ``project:<p>`` must never cover them,
even when their name is the project's name: otherwise an admin of a project
called "admin" could grant role:admin, and one of a project called "ada" could
reset user:ada (regression: a project scope used to match every type).
"""

from __future__ import annotations

import pytest

from pipewarden.identity import PROJECT_TYPES, RESOURCE_TYPES, Grant, Policy, Subject, TokenScope
from pipewarden.identity._patterns import Selector

POLICY = Policy.default()


def _admin_of(project: str) -> Subject:
    return Subject("eve", "user", (Grant("admin", f"project:{project}"),), mfa=True)


# (action, resource): each resource's name is exactly the project the admin grant is scoped to.
OUTSIDE_EVERY_PROJECT = [
    ("role.grant", "role:admin"),
    ("role.revoke", "role:admin"),
    ("user.update", "user:ada"),
    ("user.create", "user:ada"),
    ("token.manage", "token:ada"),
    ("token.manage", "token:ada/Ab12Cd34Ef56"),
    ("group.manage", "group:eng"),
    ("key.trust", "key:trusted"),
    ("key.trust", "key:writers"),
    ("key.rotate", "key:ring"),
    ("policy.update", "policy:roles"),
    ("audit.export", "audit:log"),
    ("alert.silence", "alert:a1"),
    ("server.metrics", "server:metrics"),
]


@pytest.mark.parametrize(("action", "resource"), OUTSIDE_EVERY_PROJECT)
def test_a_project_named_like_a_resource_outside_projects_does_not_cover_it(
    action: str, resource: str
) -> None:
    name = resource.split(":", 1)[1].split("/")[0]
    decision = POLICY.check(_admin_of(name), action, resource)
    assert not decision.allowed, decision.rule
    assert decision.rule == "no rule allows it (deny by default)"
    # The same grant at '*' does allow it: the scope is what stops it.
    everywhere = Subject("eve", "user", (Grant("admin"),), mfa=True)
    assert POLICY.check(everywhere, action, resource).allowed


@pytest.mark.parametrize(
    ("action", "resource"),
    [
        ("artifact.read", "artifact:fraud/model"),
        ("artifact.delete", "artifact:fraud/v1/model"),
        ("model.sign", "model:fraud/model.pt"),
        ("model.predict", "model:fraud/churn"),
        ("scan.run", "scan:fraud/model.pt"),
        ("data.screen", "data:fraud/train"),
        ("monitor.ingest", "monitor:fraud/stream"),
        ("pipeline.run", "pipeline:fraud/train"),
        ("deps.audit", "deps:fraud"),
    ],
)
def test_a_project_scope_covers_the_project_types_under_its_name(action: str, resource: str) -> None:
    decision = POLICY.check(_admin_of("fraud"), action, resource)
    assert decision.allowed and decision.rule == "role admin (scope project:fraud) allows *"
    assert not POLICY.check(_admin_of("fraud"), action, resource.replace("fraud", "payments")).allowed


def test_an_absolute_path_is_in_no_project() -> None:
    assert not POLICY.check(_admin_of("fraud"), "model.sign", "model:/srv/fraud/model.pt").allowed


def test_the_project_types_are_resource_types_and_the_selector_knows_only_them() -> None:
    assert PROJECT_TYPES < set(RESOURCE_TYPES)
    matches = Selector.parse("project:ada").compile("eve")
    for kind in RESOURCE_TYPES:
        assert matches(kind, "ada") is (kind in PROJECT_TYPES), kind
        assert matches(kind, "ada/x") is (kind in PROJECT_TYPES), kind


def test_a_token_scoped_to_a_project_cannot_reach_outside_it() -> None:
    """Token scopes use the same selectors: ``*@project:ada`` gives nothing on user:ada or token:ada."""
    scope = TokenScope.parse("*@project:ada")
    assert scope.resources is not None
    matches = scope.resources.compile("ada")
    assert not matches("user", "ada") and not matches("token", "ada") and matches("artifact", "ada/x")
    admin = Subject("ada", "user", (Grant("admin"),), mfa=True, token_scopes=frozenset({"*@project:ada"}))
    assert not POLICY.check(admin, "user.update", "user:ada").allowed
    assert POLICY.check(admin, "artifact.write", "artifact:ada/model").allowed


def test_own_token_rules_still_apply_at_a_project_scope() -> None:
    """Rules about one's own things ({self}) belong to no project and are not limited by the scope."""
    ada = Subject("ada", "user", (Grant("ml-engineer", "project:fraud"),), mfa=True)
    assert POLICY.check(ada, "token.create", "token:ada").allowed
    assert not POLICY.check(ada, "token.manage", "token:bob").allowed
