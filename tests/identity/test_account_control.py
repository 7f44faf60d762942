"""Acting on someone else's account needs the power to grant every role it holds.

Resetting a password or second factor, making or revoking someone's API
token, disabling or enabling them: each lets the actor act as the account, or
stop it. So besides ``user.update`` (or ``token.manage``) it needs
``role.grant`` on each role the account holds, directly or through a group, at
any scope. Regression: a helpdesk role with ``user.update`` used to be enough
to reset an administrator's MFA and password and log in as them, or to mint a
'*' token for them (docs/access.md, "Acting on someone else's account").

Runs on SQLite and PostgreSQL, reading the events back from the real audit log.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from pipewarden.db import Database
from pipewarden.errors import AccessDenied, AuthenticationFailed, IdentityError
from pipewarden.identity import Access, Authenticator, Grant, LoginStatus, Policy, Subject
from pipewarden.identity._bindings import add_member, create_group, grant
from pipewarden.identity._guard import check_control_unchanged, control_needs
from tests.identity.authkit import STRONG, Kit

ORIGIN = "198.51.100.9"
NEW = "juniper canvas harbour ribbon"
TAKEOVER = "hal owns the admin account now"
HELPDESK = """\
format: pipewarden.policy/1
roles:
  helpdesk:
    description: resets passwords and lost authenticators of viewers
    requires_mfa: true
    allow:
      - actions: [user.read, user.update, token.manage]
        resources: ["user:*", "token:*"]
      - actions: role.grant
        resources: "role:viewer"
"""
POLICY = Policy.from_yaml(HELPDESK, source="policy.yaml")
HAL = Subject("hal", "user", (Grant("helpdesk"),), mfa=True)
BOSS = Subject("boss", "user", (Grant("admin"),), mfa=True)


@pytest.fixture
def kit(database: Database, tmp_path: Path) -> Kit:
    kit = Kit(database, tmp_path)
    kit.policy = POLICY
    kit.auth = Authenticator(
        database,
        events=kit.events,
        keyring=kit.keyring,
        policy=POLICY,
        passwords=kit.passwords,
        clock=kit.clock,
    )
    kit.user("boss", "admin")
    kit.user("hal", "helpdesk")
    kit.user("ada", "admin")
    kit.user("vic", "viewer")
    return kit


def test_user_update_alone_cannot_take_over_an_administrator(kit: Kit) -> None:
    """The reviewer's reproduction: reset the admin's MFA and password, then log in as them."""
    before = kit.head()
    with pytest.raises(AccessDenied, match=r"^hal: role\.grant on role:admin is not allowed"):
        kit.auth.reset_mfa("ada", by=HAL, origin=ORIGIN)
    with pytest.raises(AccessDenied, match=r"^hal: role\.grant on role:admin is not allowed"):
        kit.auth.reset_password("ada", new_password=NEW, by=HAL, origin=ORIGIN)
    events = kit.events_since(before)
    assert [(e.action, e.actor, e.resource, e.outcome) for e in events] == [
        ("auth.mfa_reset", "hal", "user:ada", "denied"),
        ("auth.password_reset", "hal", "user:ada", "denied"),
    ]
    assert events[0].attributes == {"rule": "no rule allows it (deny by default)"}
    # Nothing changed: her password is still hers, and the one hal chose does not work.
    assert kit.auth.login("ada", STRONG, origin=ORIGIN).status is LoginStatus.MFA_ENROLMENT_NEEDED
    with pytest.raises(AuthenticationFailed, match="the credentials were not accepted"):
        kit.auth.login("ada", NEW, origin=ORIGIN)


def test_an_account_the_actor_could_make_can_be_reset(kit: Kit) -> None:
    kit.auth.reset_password("vic", new_password=NEW, by=HAL, origin=ORIGIN)
    kit.auth.reset_mfa("vic", by=HAL, origin=ORIGIN)
    assert kit.auth.login("vic", NEW, origin=ORIGIN).session is not None
    # An administrator at '*' may grant every role, so may reset anyone but themselves.
    kit.auth.reset_mfa("ada", by=BOSS, origin=ORIGIN)
    kit.auth.reset_password("ada", new_password=NEW, by=BOSS, origin=ORIGIN)


def test_tokens_of_a_more_powerful_account_are_neither_made_nor_revoked(kit: Kit) -> None:
    minted = kit.auth.create_token("ada", by=BOSS, scopes=["*"], lifetime=timedelta(days=1), origin=ORIGIN)
    before = kit.head()
    with pytest.raises(AccessDenied, match=r"^hal: role\.grant on role:admin is not allowed"):
        kit.auth.create_token("ada", by=HAL, scopes=["*"], lifetime=timedelta(days=1), origin=ORIGIN)
    with pytest.raises(AccessDenied, match=r"^hal: role\.grant on role:admin is not allowed"):
        kit.auth.revoke_token(minted.info.token_id, by=HAL, origin=ORIGIN)
    assert [(e.action, e.resource, e.outcome) for e in kit.events_since(before)] == [
        ("token.create", "token:ada", "denied"),
        ("token.revoke", f"token:ada/{minted.info.token_id}", "denied"),
    ]
    assert kit.auth.authenticate_token(minted.plaintext, origin=ORIGIN).name == "ada"
    # A viewer's tokens are within the helpdesk's reach; listing anyone's needs token.manage alone.
    made = kit.auth.create_token(
        "vic", by=HAL, scopes=["artifact.list"], lifetime=timedelta(days=1), origin=ORIGIN
    )
    assert kit.auth.revoke_token(made.info.token_id, by=HAL, origin=ORIGIN).owner == "vic"
    assert {t.owner for t in kit.auth.list_tokens(by=HAL, origin=ORIGIN, owner="*")} >= {"ada", "vic"}


def test_disabling_or_enabling_someone_is_acting_on_their_account(kit: Kit, database: Database) -> None:
    access = Access(database, policy=POLICY, events=kit.events)
    before = kit.head()
    with pytest.raises(AccessDenied, match=r"^hal: role\.grant on role:admin is not allowed"):
        access.authorize_over(HAL, "ada", action="user.update", origin=ORIGIN)
    [event] = kit.events_since(before)
    assert (event.action, event.actor, event.resource, event.outcome) == (
        "user.update",
        "hal",
        "user:ada",
        "denied",
    )
    assert access.authorize_over(HAL, "vic", action="user.update", origin=ORIGIN).allowed
    # One's own account needs only the action itself (disabling oneself is refused elsewhere).
    assert access.authorize_over(HAL, "hal", action="user.update", origin=ORIGIN).allowed


def test_roles_held_through_a_group_or_at_a_project_scope_count(kit: Kit, database: Database) -> None:
    kit.user("gil", "viewer")
    kit.user("pam", "viewer")
    with database.transaction() as conn:
        create_group(conn, name="ops")
        grant(conn, subject="ops", subject_kind="group", role="admin", granted_by="root")
        add_member(conn, group="ops", principal="gil")
        grant(conn, subject="pam", role="ml-engineer", scope="project:fraud", granted_by="root")
    for name, role in (("gil", "admin"), ("pam", "ml-engineer")):
        with pytest.raises(AccessDenied, match=rf"^hal: role\.grant on role:{role} is not allowed"):
            kit.auth.reset_password(name, new_password=NEW, by=HAL, origin=ORIGIN)


def test_a_change_of_roles_after_the_check_is_refused_in_the_write(kit: Kit, database: Database) -> None:
    """What was authorized is what is written: roles gained meanwhile are decided on again."""
    with database.transaction(write=False) as conn:
        roles, needs = control_needs(conn, "vic")
    assert roles == frozenset({"viewer"}) and needs == [("role.grant", "role:viewer")]
    with database.transaction() as conn:
        grant(conn, subject="vic", role="admin", granted_by="root")
    with (
        database.transaction() as conn,
        pytest.raises(IdentityError, match=r"^vic: the account's roles changed"),
    ):
        check_control_unchanged(conn, "vic", roles)


def test_the_reviewers_takeover_no_longer_works(kit: Kit) -> None:
    """hal, with user.update only, resets ada's MFA and password and enrols his own authenticator."""
    with pytest.raises(AccessDenied):
        kit.auth.reset_mfa("ada", by=HAL, origin=ORIGIN)
    with pytest.raises(AccessDenied):
        kit.auth.reset_password("ada", new_password=TAKEOVER, by=HAL, origin=ORIGIN)
    with pytest.raises(AuthenticationFailed, match="the credentials were not accepted"):
        kit.auth.begin_mfa_enrolment("ada", password=TAKEOVER, origin=ORIGIN)
    assert kit.accounts.get("ada").grants == (Grant("admin"),)
