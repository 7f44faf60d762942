"""Role bindings and groups in the database, on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import delete, insert

from pipewarden.db import Database, principals
from pipewarden.errors import ConfigError, IdentityError
from pipewarden.identity import Grant, Policy, Subject, grants_for
from pipewarden.identity import _bindings as bindings


def add_principal(db: Database, name: str, *, kind: str = "user", disabled: bool = False) -> None:
    with db.transaction() as conn:
        conn.execute(
            insert(principals).values(
                name=name, kind=kind, display_name="", disabled=disabled, created_at=datetime.now(UTC)
            )
        )


def test_grants_come_directly_and_through_groups(database: Database) -> None:
    for name in ("ada", "bob"):
        add_principal(database, name)
    with database.transaction() as conn:
        bindings.grant(conn, subject="ada", role="viewer", granted_by="root")
        bindings.grant(conn, subject="ada", role="ml-engineer", scope="project:fraud", granted_by="root")
        bindings.create_group(conn, name="auditors")
        bindings.add_member(conn, group="auditors", principal="ada")
        bindings.grant(conn, subject="auditors", subject_kind="group", role="auditor", granted_by="root")
        # Held directly and through the group: listed once.
        bindings.grant(conn, subject="auditors", subject_kind="group", role="viewer", granted_by="root")
    with database.transaction(write=False) as conn:
        ada = grants_for(conn, "ada")
        assert grants_for(conn, "bob") == ()
        assert grants_for(conn, "nobody") == ()
    assert ada == (Grant("ml-engineer", "project:fraud"), Grant("viewer"), Grant("auditor"))
    # What the database holds is what the policy decides on.
    subject = Subject("ada", "user", ada, mfa=True)
    assert Policy.default().check(subject, "audit.export", "audit:log").allowed


def test_a_grant_names_an_existing_principal_or_group_once(database: Database) -> None:
    add_principal(database, "ada")
    with database.transaction() as conn:
        binding = bindings.grant(conn, subject="ada", role="viewer", scope="fraud/*", granted_by="root")
    assert (binding.subject, binding.role, binding.scope, binding.granted_by) == (
        "ada",
        "viewer",
        "fraud/*",
        "root",
    )
    assert binding.granted_at.tzinfo is not None
    with (
        pytest.raises(IdentityError, match=r"^ada: already holds role viewer with scope fraud/"),
        database.transaction() as conn,
    ):
        bindings.grant(conn, subject="ada", role="viewer", scope="fraud/*", granted_by="root")
    with (
        pytest.raises(IdentityError, match=r"^eve: no such user or service account"),
        database.transaction() as conn,
    ):
        bindings.grant(conn, subject="eve", role="viewer", granted_by="root")
    with pytest.raises(IdentityError, match=r"^ops: no such group"), database.transaction() as conn:
        bindings.grant(conn, subject="ops", subject_kind="group", role="viewer", granted_by="root")
    with pytest.raises(ConfigError, match=r"^scope 'fraud/\[x\]'"), database.transaction() as conn:
        bindings.grant(conn, subject="ada", role="viewer", scope="fraud/[x]", granted_by="root")
    with pytest.raises(ConfigError, match="a role name is"), database.transaction() as conn:
        bindings.grant(conn, subject="ada", role="Viewer!", granted_by="root")
    with database.transaction(write=False) as conn:
        assert [b.grant for b in bindings.bindings(conn)] == [Grant("viewer", "fraud/*")]


def test_revoke_removes_exactly_one_binding(database: Database) -> None:
    add_principal(database, "ada")
    with database.transaction() as conn:
        bindings.grant(conn, subject="ada", role="viewer", granted_by="root")
        bindings.grant(conn, subject="ada", role="viewer", scope="project:fraud", granted_by="root")
        gone = bindings.revoke(conn, subject="ada", role="viewer", scope="project:fraud")
    assert gone.grant == Grant("viewer", "project:fraud") and gone.granted_by == "root"
    with database.transaction(write=False) as conn:
        assert grants_for(conn, "ada") == (Grant("viewer"),)
    with (
        pytest.raises(IdentityError, match=r"^ada: holds no role viewer with scope project:fraud"),
        database.transaction() as conn,
    ):
        bindings.revoke(conn, subject="ada", role="viewer", scope="project:fraud")


def test_groups_members_and_deletion(database: Database) -> None:
    for name in ("ada", "bob", "svc"):
        add_principal(database, name, kind="service" if name == "svc" else "user")
    with database.transaction() as conn:
        created = bindings.create_group(conn, name="ml")
        assert created.members == ()
        bindings.add_member(conn, group="ml", principal="bob")
        bindings.add_member(conn, group="ml", principal="ada")
        bindings.create_group(conn, name="empty")
        bindings.grant(conn, subject="ml", subject_kind="group", role="ml-engineer", granted_by="root")
    with (
        pytest.raises(IdentityError, match=r"^ml: a group of that name exists already"),
        database.transaction() as conn,
    ):
        bindings.create_group(conn, name="ml")
    with (
        pytest.raises(IdentityError, match=r"^ada: already a member of group ml"),
        database.transaction() as conn,
    ):
        bindings.add_member(conn, group="ml", principal="ada")
    with (
        pytest.raises(IdentityError, match=r"^svc: not a member of group ml"),
        database.transaction() as conn,
    ):
        bindings.remove_member(conn, group="ml", principal="svc")
    with pytest.raises(IdentityError, match=r"^nope: no such group"), database.transaction() as conn:
        bindings.add_member(conn, group="nope", principal="ada")
    with pytest.raises(ConfigError, match="a group name is"), database.transaction() as conn:
        bindings.create_group(conn, name="ML Team")
    with database.transaction(write=False) as conn:
        assert [(g.name, g.members) for g in bindings.list_groups(conn)] == [
            ("empty", ()),
            ("ml", ("ada", "bob")),
        ]
    with database.transaction() as conn:
        bindings.remove_member(conn, group="ml", principal="bob")
        assert grants_for(conn, "bob") == ()
        assert grants_for(conn, "ada") == (Grant("ml-engineer"),)
        deleted = bindings.delete_group(conn, name="ml")
        assert deleted.members == ("ada",)
        assert grants_for(conn, "ada") == ()
        # The group's bindings went with it: a new group of the same name starts with none.
        bindings.create_group(conn, name="ml")
        assert bindings.bindings(conn, subject="ml", subject_kind="group") == ()


def test_a_principal_removed_from_the_database_leaves_its_groups(database: Database) -> None:
    add_principal(database, "ada")
    with database.transaction() as conn:
        bindings.create_group(conn, name="ml")
        bindings.add_member(conn, group="ml", principal="ada")
        conn.execute(delete(principals).where(principals.c.name == "ada"))
        assert [g.members for g in bindings.list_groups(conn)] == [()]
