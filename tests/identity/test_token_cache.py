"""The token cache: a token that worked is served from memory for a bounded time, and every change made
through this process (revocation, logout, a principal disabled, roles, password and MFA resets) takes
effect at once; a change made elsewhere within the cache's lifetime; expiry is checked on every use."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, update

from pipewarden.db import Database, api_tokens
from pipewarden.errors import AuthenticationFailed, ConfigError
from pipewarden.identity import ADMIN_ROLE, Access, Authenticator, Grant, Subject, TokenCache
from pipewarden.identity._tokens import token_digest
from tests.identity.authkit import ROOT, STRONG, Kit

ORIGIN = "198.51.100.7"
LIFETIME = 5.0
NEW_PASSWORD = "quartz heron lantern mosaic"  # noqa: S105  # pragma: allowlist secret  (a test account's)
ADMIN = Subject("boss", "user", (Grant(ADMIN_ROLE),), mfa=True)


class Ticks:
    """The cache's monotonic clock, moved by the tests."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Statements:
    """The SQL statements the database sees, to tell a cache hit (none on api_tokens) from a read."""

    def __init__(self, db: Database) -> None:
        self.seen: list[str] = []
        event.listen(db.engine, "before_cursor_execute", self._record)

    def _record(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        self.seen.append(" ".join(statement.split()).lower())

    def reads(self) -> int:
        return sum(1 for s in self.seen if s.startswith("select") and "from api_tokens" in s)

    def last_use_writes(self) -> int:
        return sum(1 for s in self.seen if s.startswith("update api_tokens") and "last_used_at" in s)

    def clear(self) -> None:
        self.seen.clear()


@pytest.fixture
def sqlite(tmp_path: Path) -> Iterator[Database]:
    db = Database.open(f"sqlite:///{tmp_path / 'pipewarden.db'}")
    try:
        yield db
    finally:
        db.dispose()


class Cached:
    """A `Kit` whose authenticator keeps tokens in a cache on a clock the test moves."""

    def __init__(self, db: Database, tmp_path: Path) -> None:
        self.kit = Kit(db, tmp_path)
        self.ticks = Ticks()
        self.cache = TokenCache(lifetime=LIFETIME, clock=self.ticks)
        kit = self.kit
        self.auth = Authenticator(
            db,
            events=kit.events,
            keyring=kit.keyring,
            policy=kit.policy,
            passwords=kit.passwords,
            clock=kit.clock,
            token_cache=self.cache,
        )
        self.statements = Statements(db)
        kit.user("boss", ADMIN_ROLE)
        kit.service("stage", "pipeline-service")
        kit.user("ada", "viewer")

    def token(self, owner: str = "stage", *, lifetime: timedelta = timedelta(days=1)) -> str:
        """An API token for `owner`, made by an administrator (as `pipewarden token create` does)."""
        return self.auth.tokens.create(
            owner, by=ADMIN, scopes=["*"], lifetime=lifetime, origin=ORIGIN, mfa_required=False
        ).plaintext

    def session(self, name: str = "ada") -> str:
        result = self.kit.auth.login(name, STRONG, origin=ORIGIN)
        assert result.session is not None
        return result.session.token

    def use(self, token: str, *, origin: str = ORIGIN) -> Subject:
        return self.auth.authenticate_token(token, origin=origin)


@pytest.fixture
def cached(sqlite: Database, tmp_path: Path) -> Cached:
    return Cached(sqlite, tmp_path)


def test_a_token_that_worked_is_served_from_memory_within_the_lifetime(cached: Cached) -> None:
    token = cached.token()
    first = cached.use(token)
    cached.statements.clear()
    again = cached.use(token)
    assert again == first and again.name == "stage"
    assert cached.statements.reads() == 0  # no database read for the second use
    assert cached.auth.cached_token(token, origin=ORIGIN) == first
    # Past the lifetime the database is asked again.
    cached.ticks.now += LIFETIME
    assert cached.auth.cached_token(token, origin=ORIGIN) is None
    assert cached.use(token) == first
    assert cached.statements.reads() == 1


def test_the_cache_keeps_neither_the_token_nor_its_stored_digest(cached: Cached) -> None:
    token = cached.token()
    cached.use(token)
    key = cached.cache.key(token)
    assert len(cached.cache) == 1 and key in cached.cache._entries
    assert token.encode() not in key and bytes.fromhex(token_digest(token)) != key
    assert token not in repr(cached.cache)
    # Another process's cache (another key) would find it under another name.
    assert TokenCache().key(token) != key


def test_a_wrong_token_is_never_served_and_never_kept(cached: Cached) -> None:
    token = cached.token()
    cached.use(token)
    # The same id, another secret: refused by the database, not served from the good token's entry.
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    for _ in range(2):
        with pytest.raises(AuthenticationFailed):
            cached.use(forged)
    assert cached.auth.cached_token(forged, origin=ORIGIN) is None
    assert len(cached.cache) == 1
    denied = [e for e in cached.kit.events_since(0) if e.action == "token.use"]
    assert [e.outcome for e in denied] == ["denied", "denied"]  # each refusal recorded, none skipped


def test_revoking_a_token_in_this_process_takes_effect_at_once(cached: Cached) -> None:
    token = cached.token()
    subject = cached.use(token)
    assert subject.token_id is not None
    cached.auth.revoke_token(subject.token_id, by=ADMIN, origin=ORIGIN)
    assert cached.auth.cached_token(token, origin=ORIGIN) is None
    with pytest.raises(AuthenticationFailed, match="was revoked"):
        cached.use(token)


def test_a_revocation_by_another_authenticator_of_the_process_reaches_this_cache(cached: Cached) -> None:
    token = cached.token()
    subject = cached.use(token)
    assert subject.token_id is not None
    # The command line, the dashboard, another part of the server: any object of this process.
    cached.kit.auth.revoke_token(subject.token_id, by=ADMIN, origin=ORIGIN)
    with pytest.raises(AuthenticationFailed, match="was revoked"):
        cached.use(token)


def test_logging_out_ends_the_session_at_once(cached: Cached) -> None:
    session = cached.session()
    assert cached.use(session).name == "ada"
    cached.auth.logout(session, origin=ORIGIN)
    with pytest.raises(AuthenticationFailed, match="was revoked"):
        cached.use(session)


def test_disabling_the_owner_stops_its_tokens_at_once(cached: Cached) -> None:
    token = cached.token()
    cached.use(token)
    cached.kit.accounts.disable("stage", actor=ROOT)
    with pytest.raises(AuthenticationFailed, match="is disabled"):
        cached.use(token)


def test_a_role_change_is_seen_at_once(cached: Cached) -> None:
    token = cached.token()
    assert {g.role for g in cached.use(token).grants} == {"pipeline-service"}
    access = Access(cached.kit.db, policy=cached.kit.policy, events=cached.kit.events)
    access.grant(ADMIN, role="auditor", subject="stage", origin=ORIGIN)
    assert {g.role for g in cached.use(token).grants} == {"pipeline-service", "auditor"}
    access.revoke(ADMIN, role="pipeline-service", subject="stage", origin=ORIGIN)
    assert {g.role for g in cached.use(token).grants} == {"auditor"}


def test_joining_a_group_is_seen_at_once(cached: Cached) -> None:
    token = cached.token()
    access = Access(cached.kit.db, policy=cached.kit.policy, events=cached.kit.events)
    access.create_group(ADMIN, "readers", origin=ORIGIN)
    access.grant(ADMIN, role="auditor", subject="readers", subject_kind="group", origin=ORIGIN)
    assert "auditor" not in {g.role for g in cached.use(token).grants}
    access.add_member(ADMIN, group="readers", principal="stage", origin=ORIGIN)
    assert "auditor" in {g.role for g in cached.use(token).grants}


def test_a_password_reset_ends_the_cached_sessions_at_once(cached: Cached) -> None:
    session = cached.session()
    cached.use(session)
    cached.auth.reset_password("ada", new_password=NEW_PASSWORD, by=ADMIN, origin=ORIGIN)
    with pytest.raises(AuthenticationFailed, match="was revoked"):
        cached.use(session)


def test_expiry_is_checked_on_every_use(cached: Cached) -> None:
    token = cached.token(lifetime=timedelta(minutes=2))
    cached.use(token)
    cached.kit.clock.advance(121)  # the token expired; the cache's own lifetime has not run out
    with pytest.raises(AuthenticationFailed, match="expired"):
        cached.use(token)
    refusal = [e for e in cached.kit.events_since(0) if e.action == "token.use"][-1]
    assert (refusal.outcome, refusal.attributes["reason"]) == ("denied", "expired")


def test_the_last_use_is_written_at_most_once_a_minute_per_origin(cached: Cached) -> None:
    token = cached.token()
    cached.statements.clear()
    for _ in range(5):
        cached.use(token)
    assert cached.statements.last_use_writes() == 1
    cached.use(token, origin="203.0.113.9")  # another origin: written at once
    assert cached.statements.last_use_writes() == 2
    # An event loop's fast path does not answer while a write is due.
    assert cached.auth.cached_token(token, origin="192.0.2.1") is None
    cached.kit.clock.advance(61)
    subject = cached.use(token, origin="203.0.113.9")
    assert cached.statements.last_use_writes() == 3
    info = cached.auth.tokens.info(subject.token_id or "")
    assert info.last_used_origin == "203.0.113.9" and info.last_used_at == cached.kit.clock.now


def test_what_a_read_saw_before_an_invalidation_is_not_kept(cached: Cached) -> None:
    token = cached.token()
    subject = cached.use(token)
    key = cached.cache.key(token)
    entry = cached.cache.get(key, now=cached.kit.clock.now)
    assert entry is not None
    before = cached.cache.generation
    cached.cache.drop_token("someone-else")  # any invalidation between the read and the put
    assert cached.cache.put(key, entry, generation=before) is False
    assert cached.cache.get(key, now=cached.kit.clock.now) == entry  # other entries stay
    cached.cache.clear()
    assert cached.cache.get(key, now=cached.kit.clock.now) is None
    assert cached.use(token) == subject


def test_the_cache_is_bounded(sqlite: Database, tmp_path: Path) -> None:
    cached = Cached(sqlite, tmp_path)
    small = TokenCache(lifetime=LIFETIME, max_entries=2, clock=cached.ticks)
    auth = Authenticator(
        sqlite,
        events=cached.kit.events,
        keyring=cached.kit.keyring,
        clock=cached.kit.clock,
        token_cache=small,
    )
    tokens = [cached.token() for _ in range(3)]
    for token in tokens:
        auth.authenticate_token(token, origin=ORIGIN)
    assert len(small) == 2
    assert auth.cached_token(tokens[0], origin=ORIGIN) is None  # the oldest went first
    assert auth.cached_token(tokens[2], origin=ORIGIN) is not None


def test_bad_cache_settings_are_refused() -> None:
    for lifetime in (0.0, -1.0, 61.0):
        with pytest.raises(ConfigError, match="lifetime"):
            TokenCache(lifetime=lifetime)
    with pytest.raises(ConfigError, match="size"):
        TokenCache(max_entries=0)


def test_a_revocation_made_elsewhere_reaches_the_cache_within_its_lifetime(
    database: Database, tmp_path: Path
) -> None:
    """Another replica (or the command line on another host) revokes in the shared database; this
    process learns of it when its entry's lifetime runs out, and not later."""
    cached = Cached(database, tmp_path)
    token = cached.token()
    subject = cached.use(token)
    with database.transaction() as conn:
        conn.execute(
            update(api_tokens)
            .where(api_tokens.c.token_id == subject.token_id)
            .values(revoked_at=cached.kit.clock.now)
        )
    cached.ticks.now += LIFETIME - 0.5
    assert cached.use(token) == subject  # still within the bound: served from memory
    cached.ticks.now += 0.5
    with pytest.raises(AuthenticationFailed, match="was revoked"):
        cached.use(token)
