"""Policy.check: deny wins, MFA, token scopes, scopes, custom roles, and the words of each decision."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from pipewarden.errors import AccessDenied, ConfigError
from pipewarden.identity import (
    ACTIONS,
    BUILTIN_ROLES,
    DENY_BY_DEFAULT,
    Decision,
    Grant,
    Policy,
    Role,
    Rule,
    Subject,
)


def _user(*grants: Grant, mfa: bool = True, scopes: set[str] | None = None, name: str = "ada") -> Subject:
    return Subject(
        name,
        "user",
        grants,
        mfa=mfa,
        token_scopes=frozenset(scopes) if scopes is not None else None,
        token_id="Ab12Cd34Ef56" if scopes is not None else None,
    )


PROD_DELETE = """\
format: pipewarden.policy/1
deny:
  - actions: artifact.delete
    resources: "artifact:prod/*"
    reason: production versions are kept for audits
"""


def test_the_deciding_rule_is_named_in_words() -> None:
    policy = Policy.default()
    ada = _user(Grant("ml-engineer", "project:fraud"))
    allowed = policy.check(ada, "artifact.write", "artifact:fraud/model")
    assert allowed.allowed
    assert allowed.rule == "role ml-engineer (scope project:fraud) allows artifact.write"
    denied = policy.check(ada, "artifact.write", "artifact:payments/model")
    assert not denied.allowed
    assert denied.rule == DENY_BY_DEFAULT == "no rule allows it (deny by default)"
    assert (denied.subject, denied.action, denied.resource) == (
        "ada",
        "artifact.write",
        "artifact:payments/model",
    )


def test_nothing_granted_is_nothing_allowed() -> None:
    nobody = _user()
    for action, resource in [
        ("artifact.read", "artifact:x"),
        ("audit.read", "audit:log"),
        ("token.create", "token:ada"),
    ]:
        assert not Policy.default().check(nobody, action, resource).allowed


def test_a_decision_is_not_a_bool() -> None:
    decision = Policy.default().check(_user(), "artifact.read", "artifact:x")
    with pytest.raises(TypeError, match=r"decision\.allowed"):
        bool(decision)
    with pytest.raises(TypeError):
        assert decision  # a caller who forgets `.allowed` gets an error, never a silent yes


def test_require_raises_access_denied_carrying_the_decision() -> None:
    policy = Policy.default()
    viewer = _user(Grant("viewer"))
    assert policy.require(viewer, "artifact.list", "artifact:fraud/model").allowed
    with pytest.raises(
        AccessDenied, match=r"^ada: artifact.read on artifact:fraud/model is not allowed"
    ) as info:
        policy.require(viewer, "artifact.read", "artifact:fraud/model")
    assert isinstance(info.value.decision, Decision)
    assert info.value.decision.rule == DENY_BY_DEFAULT
    bound = policy.bind(viewer)
    assert bound.check("artifact.verify", "artifact:fraud/model").allowed
    with pytest.raises(AccessDenied):
        bound.require("artifact.delete", "artifact:fraud/model")


@pytest.mark.parametrize(
    ("action", "resource", "message"),
    [
        ("artifact.reed", "artifact:x", "'artifact.reed': not a pipewarden action"),
        ("artifact.*", "artifact:x", "not a pipewarden action"),
        ("artifact.read", "artifact", "a resource is named '<type>:<name>'"),
        ("artifact.read", "artefact:x", "a resource is named '<type>:<name>'"),
        ("artifact.read", "artifact:", "a resource is named '<type>:<name>'"),
        ("artifact.read", "artifact:a\nb", "no control characters"),
        ("artifact.read", "model:fraud/model", "artifact.read acts on artifact resources, not model"),
    ],
)
def test_a_malformed_question_is_an_error_not_a_denial(action: str, resource: str, message: str) -> None:
    admin = _user(Grant("admin"))
    with pytest.raises(ConfigError, match=message):
        Policy.default().check(admin, action, resource)


# --- deny wins -------------------------------------------------------------------------------------


def test_a_global_deny_wins_over_admin() -> None:
    policy = Policy.from_yaml(PROD_DELETE, source="policy.yaml")
    admin = _user(Grant("admin"))
    decision = policy.check(admin, "artifact.delete", "artifact:prod/model")
    assert not decision.allowed
    assert decision.rule == (
        "deny rule 1 in policy.yaml denies artifact.delete on artifact:prod/* "
        "(production versions are kept for audits)"
    )
    assert policy.check(admin, "artifact.delete", "artifact:staging/model").allowed
    assert policy.check(admin, "artifact.write", "artifact:prod/model").allowed


def test_a_role_deny_wins_over_another_roles_allow_and_holds_without_mfa() -> None:
    policy = Policy.from_yaml(
        """\
format: pipewarden.policy/1
roles:
  no-prod-writes:
    requires_mfa: true
    deny:
      - actions: [artifact.write, artifact.delete]
        resources: "artifact:prod/*"
""",
        source="policy.yaml",
    )
    both = (Grant("pipeline-service"), Grant("no-prod-writes"))
    for mfa in (True, False):
        svc = _user(*both, mfa=mfa)
        decision = policy.check(svc, "artifact.write", "artifact:prod/model")
        assert not decision.allowed
        assert decision.rule == "role no-prod-writes (scope *) denies artifact.write on artifact:prod/*"
        assert policy.check(svc, "artifact.write", "artifact:dev/model").allowed


def test_a_role_deny_applies_only_within_its_grants_scope() -> None:
    policy = Policy(
        roles=[Role("freeze", (), (Rule.of("artifact.write"),))],
    )
    ada = _user(Grant("ml-engineer"), Grant("freeze", "project:fraud"))
    assert not policy.check(ada, "artifact.write", "artifact:fraud/model").allowed
    assert policy.check(ada, "artifact.write", "artifact:payments/model").allowed


# --- MFA -------------------------------------------------------------------------------------------


def test_an_mfa_role_without_mfa_says_so_and_another_role_still_counts() -> None:
    policy = Policy.default()
    ada = _user(Grant("ml-engineer"), Grant("viewer"), mfa=False)
    read = policy.check(ada, "artifact.read", "artifact:fraud/model")
    assert not read.allowed and read.needs_mfa
    assert read.rule == "role ml-engineer requires MFA and this session has none"
    listing = policy.check(ada, "artifact.list", "artifact:fraud/model")
    assert listing.allowed and listing.rule == "role viewer (scope *) allows artifact.list"
    assert not listing.needs_mfa


# --- tokens ----------------------------------------------------------------------------------------


def test_a_token_can_do_what_both_its_scopes_and_its_owners_roles_allow() -> None:
    policy = Policy.default()
    ci = _user(Grant("ml-engineer", "project:fraud"), scopes={"artifact.read", "artifact.list"})
    assert policy.check(ci, "artifact.read", "artifact:fraud/model").allowed
    write = policy.check(ci, "artifact.write", "artifact:fraud/model")
    assert not write.allowed
    assert write.rule == "token scopes do not include artifact.write on artifact:fraud/model"
    # In the scopes but not in the owner's roles: the scope grants nothing by itself.
    outside = policy.check(ci, "artifact.read", "artifact:payments/model")
    assert not outside.allowed and outside.rule == DENY_BY_DEFAULT


def test_a_token_scope_can_name_resources_and_wildcards() -> None:
    policy = Policy.default()
    ci = _user(Grant("admin"), scopes={"artifact.*@project:fraud", "audit.read"})
    assert policy.check(ci, "artifact.delete", "artifact:fraud/old").allowed
    assert not policy.check(ci, "artifact.delete", "artifact:payments/old").allowed
    assert policy.check(ci, "audit.read", "audit:log").allowed
    assert not policy.check(ci, "audit.export", "audit:log").allowed
    assert not policy.check(ci, "user.create", "user:eve").allowed


def test_a_token_with_no_scopes_can_do_nothing() -> None:
    ci = _user(Grant("admin"), scopes=set())
    decision = Policy.default().check(ci, "artifact.read", "artifact:fraud/model")
    assert not decision.allowed
    assert decision.rule.startswith("token scopes do not include")


def test_a_malformed_token_scope_is_an_error() -> None:
    ci = _user(Grant("admin"), scopes={"artifact.reed"})
    with pytest.raises(ConfigError, match=r"token scope 'artifact\.reed'"):
        Policy.default().check(ci, "artifact.read", "artifact:x")


# --- scopes ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scope", "inside", "outside"),
    [
        (
            "project:fraud",
            ["artifact:fraud/model", "artifact:fraud", "artifact:fraud/a/b"],
            ["artifact:fraudx/m", "artifact:payments/fraud/m"],
        ),
        (
            "fraud/*",
            ["artifact:fraud/model", "artifact:fraud/a/b"],
            ["artifact:fraud", "artifact:payments/m"],
        ),
        ("artifact:fraud/*", ["artifact:fraud/model"], ["artifact:payments/m"]),
        (
            "*/data/*",
            ["artifact:fraud/data/x", "artifact:a/b/data/c"],
            ["artifact:fraud/model", "artifact:data/x"],
        ),
        ("fraud/model?", ["artifact:fraud/model1"], ["artifact:fraud/model", "artifact:fraud/model12"]),
        ("*", ["artifact:anything", "artifact:*"], []),
    ],
)
def test_a_grants_scope_limits_where_its_role_applies(
    scope: str, inside: list[str], outside: list[str]
) -> None:
    policy = Policy.default()
    ada = _user(Grant("viewer", scope))
    for resource in inside:
        assert policy.check(ada, "artifact.list", resource).allowed, resource
    for resource in outside:
        assert not policy.check(ada, "artifact.list", resource).allowed, resource


def test_a_typed_scope_covers_only_that_type() -> None:
    policy = Policy.default()
    ada = _user(Grant("ml-engineer", "model:fraud/*"))
    assert policy.check(ada, "model.sign", "model:fraud/model").allowed
    assert not policy.check(ada, "artifact.read", "artifact:fraud/model").allowed


def test_the_whole_store_is_outside_a_project_scope() -> None:
    """'artifact:*' stands for every artifact (a whole-store listing): only an unscoped grant covers it."""
    policy = Policy.default()
    assert not policy.check(_user(Grant("viewer", "project:fraud")), "artifact.verify", "artifact:*").allowed
    assert policy.check(_user(Grant("viewer")), "artifact.verify", "artifact:*").allowed


def test_own_tokens_are_not_limited_by_scope_and_others_are_not_ones_own() -> None:
    policy = Policy.default()
    ada = _user(Grant("ml-engineer", "project:fraud"))
    assert policy.check(ada, "token.create", "token:ada").allowed
    assert policy.check(ada, "token.revoke", "token:ada/Ab12Cd34Ef56").allowed
    assert not policy.check(ada, "token.revoke", "token:bob/Ab12Cd34Ef56").allowed
    # A name that only starts like the subject's is someone else's.
    assert not policy.check(ada, "token.read", "token:adam/Ab12Cd34Ef56").allowed
    assert not policy.check(ada, "token.manage", "token:bob/Ab12Cd34Ef56").allowed


def test_a_subject_name_with_pattern_characters_is_matched_literally() -> None:
    policy = Policy.default()
    odd = _user(Grant("ml-engineer"), name="a.b")
    assert policy.check(odd, "token.read", "token:a.b/x").allowed
    assert not policy.check(odd, "token.read", "token:axb/x").allowed


# --- grants, roles and the cache -------------------------------------------------------------------


def test_a_grant_of_a_role_the_policy_does_not_define_gives_nothing() -> None:
    ada = _user(Grant("release-manager"))
    decision = Policy.default().check(ada, "artifact.read", "artifact:prod/model")
    assert not decision.allowed and decision.rule == DENY_BY_DEFAULT


def test_the_first_allowing_grant_is_the_one_named() -> None:
    policy = Policy.default()
    ada = _user(Grant("viewer"), Grant("admin"))
    assert (
        policy.check(ada, "artifact.list", "artifact:x").rule == "role viewer (scope *) allows artifact.list"
    )
    assert policy.check(ada, "artifact.read", "artifact:x").rule == "role admin (scope *) allows *"


def test_decisions_follow_a_subjects_current_grants() -> None:
    """The plan cache is keyed by everything a decision depends on: new grants, new answers."""
    policy = Policy.default()
    before = _user(Grant("viewer"))
    after = _user(Grant("viewer"), Grant("ml-engineer"))
    assert not policy.check(before, "artifact.read", "artifact:x").allowed
    assert policy.check(after, "artifact.read", "artifact:x").allowed
    assert not policy.check(before, "artifact.read", "artifact:x").allowed
    assert not policy.check(_user(Grant("ml-engineer"), mfa=False), "artifact.read", "artifact:x").allowed
    bob = _user(Grant("ml-engineer"), name="bob")
    assert policy.check(bob, "token.read", "token:bob/x").allowed
    assert not policy.check(bob, "token.read", "token:ada/x").allowed


def test_custom_roles_from_a_policy_file() -> None:
    policy = Policy.from_yaml(
        """\
format: pipewarden.policy/1
roles:
  release-manager:
    description: promotes models to production
    requires_mfa: true
    allow:
      - actions: [artifact.read, artifact.list, artifact.write, model.sign]
        resources: ["artifact:prod/*", "model:prod/*"]
      - "*.read"
    deny:
      - actions: artifact.read
        resources: "artifact:prod/secrets/*"
""",
        source="policy.yaml",
    )
    role = policy.role("release-manager")
    assert role.requires_mfa and not role.builtin and role.description == "promotes models to production"
    rm = _user(Grant("release-manager"))
    assert policy.check(rm, "artifact.write", "artifact:prod/model").allowed
    assert policy.check(rm, "model.sign", "model:prod/model").allowed
    assert not policy.check(rm, "artifact.write", "artifact:dev/model").allowed
    assert policy.check(rm, "audit.read", "audit:log").rule == "role release-manager (scope *) allows *.read"
    assert not policy.check(rm, "artifact.read", "artifact:prod/secrets/k").allowed
    assert not policy.check(_user(Grant("release-manager"), mfa=False), "audit.read", "audit:log").allowed
    assert list(policy.roles)[:6] == [
        "admin",
        "ml-engineer",
        "data-scientist",
        "auditor",
        "viewer",
        "pipeline-service",
    ]
    assert list(policy.roles)[6:] == ["release-manager"]
    with pytest.raises(ConfigError, match=r"^nobody: no such role"):
        policy.role("nobody")


def test_roles_cannot_be_defined_twice_or_shadow_built_ins() -> None:
    viewer2 = Role("viewer", (Rule.of("*"),))
    with pytest.raises(ConfigError, match="role viewer is a built-in role"):
        Policy(roles=[viewer2], source="code")
    twice = Role("ops", (Rule.of("alert.*"),))
    with pytest.raises(ConfigError, match="role ops is defined twice"):
        Policy(roles=[twice, twice], source="code")


def test_a_role_without_rules_and_a_rule_without_actions_are_refused() -> None:
    with pytest.raises(ConfigError, match="role empty: has no allow or deny rules"):
        Role("empty", ())
    with pytest.raises(ConfigError, match="at least one action"):
        Rule((), ())
    with pytest.raises(ConfigError, match="role name"):
        Role("Bad Name", (Rule.of("*"),))


def test_the_documentation_lists_every_action_and_built_in_role() -> None:
    """docs/access.md is the reference users read: it must name exactly the actions the policy knows."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "access.md").read_text(encoding="utf-8")
    section = text.split("\n## Actions and resources\n", 1)[1].split("\n## ", 1)[0]
    documented = dict(re.findall(r"^\| `([a-z]+\.[a-z]+)` \| (.+?) \|$", section, flags=re.MULTILINE))
    assert documented == dict(ACTIONS)
    for name, role in BUILTIN_ROLES.items():
        mfa = "yes" if role.requires_mfa else "no"
        assert re.search(rf"^\| `{re.escape(name)}` \| {mfa} \|", text, flags=re.MULTILINE), name


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Grant(""), "a grant needs a role name"),
        (lambda: Grant("viewer", ""), "role viewer: a grant's scope is"),
        (lambda: Subject("", "user", ()), "a subject needs a name"),
        (lambda: Subject("ada", "robot", ()), "ada: subject kind 'robot' is not 'user' or 'service'"),
    ],
)
def test_a_malformed_grant_or_subject_is_a_config_error(make: Callable[[], object], message: str) -> None:
    """Errors from pipewarden.errors, like every other invalid input (it used to be ValueError)."""
    with pytest.raises(ConfigError, match=re.escape(message)):
        make()
