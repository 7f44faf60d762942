"""Only admin at scope '*' makes a deployment's administrator.

An admin grant limited to a project covers that project's artifacts and
pipelines, not users, roles or keys. It used to count as "an administrator"
all the same (regression): the only real administrator could be revoked
because a project admin remained, and bootstrapping a new one was then refused
because "an administrator exists already", leaving nobody able to manage users.

Runs on SQLite and PostgreSQL, with the real audit log.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pipewarden.db import Database
from pipewarden.errors import AccessDenied, IdentityError
from pipewarden.identity import Access, Administrators, Grant
from pipewarden.identity._admins import administrators
from pipewarden.identity._bindings import add_member, create_group, grant
from tests.identity.authkit import ROOT, STRONG, Kit

OTHER = "lantern meadow copper whistle"
THIRD = "juniper canvas harbour ribbon"


@pytest.fixture
def kit(database: Database, tmp_path: Path) -> Kit:
    return Kit(database, tmp_path)


def test_the_last_global_admin_stays_while_only_a_project_admin_is_left(kit: Kit) -> None:
    """The reviewer's reproduction: revoke the only '*' admin while a project admin exists."""
    kit.accounts.bootstrap_admin("ada", password=STRONG, actor=ROOT)
    kit.accounts.create_user("bob", password=OTHER, actor=ROOT, grants=[Grant("admin", "project:sandbox")])
    access = Access(kit.db, policy=kit.policy, events=kit.events)
    ada = access.subject("ada")
    with pytest.raises(IdentityError, match=r"would leave no enabled administrator \(admin at '\*'\)"):
        access.revoke(ada, role="admin", subject="ada", scope="*")
    assert [b.subject for b in access.bindings() if (b.role, b.scope) == ("admin", "*")] == ["ada"]
    # bob's project grant can go: it never made him an administrator.
    access.revoke(ada, role="admin", subject="bob", scope="project:sandbox")


def test_a_project_admin_does_not_stop_the_bootstrap(kit: Kit) -> None:
    kit.accounts.create_user("bob", password=OTHER, actor=ROOT, grants=[Grant("admin", "project:sandbox")])
    made = kit.accounts.bootstrap_admin("carol", password=THIRD, actor=ROOT)
    assert made.grants == (Grant("admin"),)
    with pytest.raises(AccessDenied, match="an administrator exists already"):
        kit.accounts.bootstrap_admin("dave", password=THIRD + " again", actor=ROOT)


def test_who_counts_as_an_administrator(kit: Kit) -> None:
    kit.user("ada", "admin")
    kit.user("dora", "admin")
    kit.accounts.disable("dora", actor=ROOT)
    kit.user("gil", "viewer")
    kit.user("pam", "viewer")
    kit.accounts.create_user("bob", password=OTHER, actor=ROOT, grants=[Grant("admin", "project:x")])
    with kit.db.transaction() as conn:
        create_group(conn, name="ops")
        grant(conn, subject="ops", subject_kind="group", role="admin", granted_by="root")
        add_member(conn, group="ops", principal="gil")
        create_group(conn, name="sandbox")
        grant(
            conn, subject="sandbox", subject_kind="group", role="admin", scope="project:x", granted_by="root"
        )
        add_member(conn, group="sandbox", principal="pam")
        found = administrators(conn)
    # '*' directly or through a group, enabled: ada and gil. Not dora (disabled), bob or pam (a project).
    assert found == Administrators(("ada", "gil"))
    assert found.present


def test_the_verdict_is_not_a_bool(kit: Kit) -> None:
    with kit.db.transaction(write=False) as conn:
        found = administrators(conn)
    assert found.present is False
    with pytest.raises(TypeError, match="not a bool"):
        bool(found)


def test_removing_the_last_global_admin_from_a_group_is_refused(kit: Kit) -> None:
    kit.user("gil", "viewer")
    kit.user("pam", "viewer")
    with kit.db.transaction() as conn:
        create_group(conn, name="ops")
        grant(conn, subject="ops", subject_kind="group", role="admin", granted_by="root")
        add_member(conn, group="ops", principal="gil")
        create_group(conn, name="sandbox")
        grant(
            conn, subject="sandbox", subject_kind="group", role="admin", scope="project:x", granted_by="root"
        )
        add_member(conn, group="sandbox", principal="pam")
    access = Access(kit.db, policy=kit.policy, events=kit.events)
    gil = access.subject("gil")
    with pytest.raises(IdentityError, match="no enabled administrator"):
        access.remove_member(gil, group="ops", principal="gil")
    # The project admins' group is not the deployment's administrators: it can go.
    access.delete_group(gil, "sandbox")
