"""Identity: roles that administer without MFA, people who have not enrolled, dormant accounts and tokens.

Everything comes from the database and the workspace's policy, as the identity part records it: MFA
enrolment (``principals.mfa_enrolled_at``), grants (direct and through groups), logins (each login
opens a session, a row of ``api_tokens`` of kind ``session`` made at that moment) and token use
(``api_tokens.last_used_at``, written on use at most once a minute per origin). What cannot be read,
for whatever reason, leaves the checks that need it not determinable (PW-POST-119).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, func, select

from pipewarden.db import Database, api_tokens, principals
from pipewarden.findings import Finding, Location
from pipewarden.identity import ADMIN_ROLE, MAX_TOKEN_LIFETIME, Grant, Policy, Role, grants_for
from pipewarden.posture._catalogue import CheckResult, PostureBaseline, finding
from pipewarden.posture._guard import guarded, logged

__all__ = ["ADMINISTRATIVE_ACTIONS", "check_identity"]

#: Actions that change who may do what, destroy evidence, or hand out keys: a role allowing any of them
#: administers the deployment, and a stolen password alone must not be enough to use it.
ADMINISTRATIVE_ACTIONS = (
    "artifact.delete",
    "group.manage",
    "key.rotate",
    "key.trust",
    "policy.update",
    "role.grant",
    "role.revoke",
    "token.manage",
    "user.create",
    "user.update",
)


@dataclass(frozen=True, slots=True)
class _Account:
    name: str
    kind: str
    created_at: datetime
    mfa_enrolled: bool
    grants: tuple[Grant, ...]
    last_login: datetime | None
    last_token_use: datetime | None


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _aware_or_none(value: datetime | None) -> datetime | None:
    return None if value is None else _aware(value)


def _days(delta: timedelta) -> int:
    return int(delta.total_seconds() // 86400)


def check_identity(
    root: Path,
    database: Callable[[], Database],
    *,
    now: datetime,
    baseline: PostureBaseline,
) -> list[CheckResult]:
    """Roles (PW-POST-110), MFA enrolment (111, 112), dormant accounts (113) and tokens (114, 115)."""
    place = Location(path=str(root))
    policy: Policy | None = None
    policy_problem = ""
    try:
        policy = Policy.for_workspace(root)
    except Exception as exc:  # any reason at all: the checks that need it are not determinable
        policy_problem = f"the policy cannot be read: {logged('identity', exc)}"
    accounts: list[_Account] | None = None
    tokens: list[Any] | None = None
    db_problem = ""
    try:
        db = database()
        with db.transaction(write=False) as conn:
            accounts = _accounts(conn)
            tokens = _active_api_tokens(conn, now)
    except Exception as exc:  # unreachable, a URL that does not parse, a driver error: as above
        db_problem = f"the database cannot be read: {logged('identity', exc)}"

    def undetermined(check: str, why: str) -> CheckResult:
        return CheckResult(
            check,
            (
                finding(
                    "PW-POST-119", f"{check}: not checked, {why}", location=place, evidence={"check": check}
                ),
            ),
        )

    def judged(check: str, run: Callable[[], list[Finding]]) -> CheckResult:
        return guarded(check, rule="PW-POST-119", place=place, run=run)

    results: list[CheckResult] = []
    if policy is None:
        results.append(undetermined("role-mfa", policy_problem))
    else:
        known = policy
        results.append(judged("role-mfa", lambda: _role_mfa(known, place)))
    if policy is None or accounts is None:
        results.append(undetermined("mfa-enrolment", policy_problem or db_problem))
    else:
        known, people = policy, accounts
        results.append(judged("mfa-enrolment", lambda: _enrolment(people, known, place)))
    if accounts is None or tokens is None:
        results.extend(undetermined(c, db_problem) for c in ("stale-accounts", "token-expiry", "token-use"))
        return results
    people, active = accounts, tokens
    results.append(judged("stale-accounts", lambda: _stale(people, place, now, baseline)))
    results.append(judged("token-expiry", lambda: _unbounded_tokens(active, place)))
    results.append(judged("token-use", lambda: _unused_tokens(active, place, now, baseline)))
    return results


# --- reading -------------------------------------------------------------------------------------------


def _accounts(conn: Connection) -> list[_Account]:
    """Every enabled principal with its grants, its last login and the last use of any of its tokens."""
    t = api_tokens.c
    logins = dict(
        conn.execute(
            select(t.principal_id, func.max(t.created_at)).where(t.kind == "session").group_by(t.principal_id)
        ).all()
    )
    uses = dict(
        conn.execute(
            select(t.principal_id, func.max(t.last_used_at))
            .where(t.last_used_at.is_not(None))
            .group_by(t.principal_id)
        ).all()
    )
    p = principals.c
    rows = conn.execute(
        select(p.id, p.name, p.kind, p.created_at, p.mfa_enrolled_at)
        .where(p.disabled.is_(False))
        .order_by(p.name)
    ).all()
    return [
        _Account(
            name=row.name,
            kind=row.kind,
            created_at=_aware(row.created_at),
            mfa_enrolled=row.mfa_enrolled_at is not None,
            grants=grants_for(conn, row.name),
            last_login=_aware_or_none(logins.get(row.id)),
            last_token_use=_aware_or_none(uses.get(row.id)),
        )
        for row in rows
    ]


def _active_api_tokens(conn: Connection, now: datetime) -> list[Any]:
    """API tokens that still work (or would, once their owner is enabled): not revoked, not expired."""
    t = api_tokens.c
    return list(
        conn.execute(
            select(
                t.token_id,
                t.created_at,
                t.expires_at,
                t.last_used_at,
                principals.c.name.label("owner"),
                principals.c.disabled,
            )
            .join(principals, principals.c.id == t.principal_id)
            .where(t.kind == "api", t.revoked_at.is_(None), t.expires_at > now)
            .order_by(principals.c.name, t.token_id)
        ).all()
    )


# --- judging -------------------------------------------------------------------------------------------


def _administers(role: Role) -> list[str]:
    return [
        a for a in ADMINISTRATIVE_ACTIONS if any(p.matches(a) for rule in role.allow for p in rule.actions)
    ]


def _role_mfa(policy: Policy, place: Location) -> list[Finding]:
    found = []
    for role in policy.roles.values():
        actions = _administers(role)
        if role.requires_mfa or not actions:
            continue
        found.append(
            finding(
                "PW-POST-110",
                f"role {role.name} ({policy.source}) allows {', '.join(actions)} without a second factor",
                location=Location(path=place.path, member=f"role:{role.name}"),
                evidence={"role": role.name, "policy": policy.source, "actions": actions},
            )
        )
    return found


def _enrolment(accounts: Sequence[_Account], policy: Policy, place: Location) -> list[Finding]:
    found = []
    for account in accounts:
        if account.kind != "user" or account.mfa_enrolled:
            continue
        needing = [g for g in account.grants if g.role in policy.roles and policy.roles[g.role].requires_mfa]
        if not needing:
            continue
        held = ", ".join(f"{g.role} at {g.scope}" for g in needing)
        admin = any(g.role == ADMIN_ROLE and g.scope == "*" for g in needing)
        found.append(
            finding(
                "PW-POST-111" if admin else "PW-POST-112",
                f"user {account.name} holds {held} and has no second factor enrolled: whoever learns the "
                "password can enrol their own",
                location=Location(path=place.path, member=f"user:{account.name}"),
                evidence={"user": account.name, "roles": [f"{g.role}@{g.scope}" for g in needing]},
            )
        )
    return found


def _stale(
    accounts: Sequence[_Account], place: Location, now: datetime, baseline: PostureBaseline
) -> list[Finding]:
    found = []
    limit = baseline.stale_account_after
    for account in accounts:
        # A person logs in (each login is a session); a service account only presents its tokens.
        seen = [t for t in (account.last_login, account.last_token_use) if t is not None]
        if account.kind != "user":
            seen = [account.last_token_use] if account.last_token_use is not None else []
        last = max(seen, default=None)
        since = last or account.created_at
        if now - since < limit:
            continue
        what = "logged in or used a token" if account.kind == "user" else "used a token"
        when = (
            f"last {what} on {last:%Y-%m-%d}, {_days(now - last)} days ago"
            if last is not None
            else f"never {what} since it was made on {account.created_at:%Y-%m-%d}, "
            f"{_days(now - account.created_at)} days ago"
        )
        found.append(
            finding(
                "PW-POST-113",
                f"{account.kind} {account.name}: {when} (more than {limit.days} days)",
                location=Location(path=place.path, member=f"user:{account.name}"),
                evidence={
                    "principal": account.name,
                    "kind": account.kind,
                    "last_activity": last.isoformat() if last is not None else None,
                    "created_at": account.created_at.isoformat(),
                    "limit_days": limit.days,
                },
            )
        )
    return found


def _unbounded_tokens(tokens: Sequence[Any], place: Location) -> list[Finding]:
    """Tokens living longer than pipewarden ever issues one (`MAX_TOKEN_LIFETIME`): in effect without
    expiry, and written by something other than 'pipewarden token create'."""
    found = []
    for row in tokens:
        created, expires = _aware(row.created_at), _aware(row.expires_at)
        if expires - created <= MAX_TOKEN_LIFETIME:
            continue
        found.append(
            finding(
                "PW-POST-114",
                f"token {row.token_id} of {row.owner} lives {_days(expires - created)} days, until "
                f"{expires:%Y-%m-%d} (pipewarden issues at most {MAX_TOKEN_LIFETIME.days})",
                location=Location(path=place.path, member=f"token:{row.owner}/{row.token_id}"),
                evidence={
                    "token_id": row.token_id,
                    "owner": row.owner,
                    "created_at": created.isoformat(),
                    "expires_at": expires.isoformat(),
                },
            )
        )
    return found


def _unused_tokens(
    tokens: Sequence[Any], place: Location, now: datetime, baseline: PostureBaseline
) -> list[Finding]:
    found = []
    limit = baseline.token_unused_after
    for row in tokens:
        created, used = _aware(row.created_at), _aware_or_none(row.last_used_at)
        if now - (used or created) < limit:
            continue
        when = (
            f"last used on {used:%Y-%m-%d}, {_days(now - used)} days ago"
            if used is not None
            else f"never used since it was made on {created:%Y-%m-%d}, {_days(now - created)} days ago"
        )
        found.append(
            finding(
                "PW-POST-115",
                f"token {row.token_id} of {row.owner}: {when}",
                location=Location(path=place.path, member=f"token:{row.owner}/{row.token_id}"),
                evidence={
                    "token_id": row.token_id,
                    "owner": row.owner,
                    "owner_disabled": bool(row.disabled),
                    "last_used_at": used.isoformat() if used is not None else None,
                    "created_at": created.isoformat(),
                    "limit_days": limit.days,
                },
            )
        )
    return found
