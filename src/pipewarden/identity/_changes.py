"""Changing a person's credentials after the fact: their own password, and an administrator's resets.

A user changes their own password by authenticating afresh in the same
request: the current password and, once enrolled, the current second factor,
checked by `Verifier` like a login (the same throttle, the same refusals).
A login session is never enough on its own: a session left open on someone's
laptop, or a stolen session token, must not be a way to lock the owner out.

An administrator resetting someone else's password or second factor is an
authorized action instead: ``user.update`` on ``user:<name>``, from a session
that passed MFA itself, and never on their own account (that is the user's
own change, which asks for the current password). Whoever resets an account's
credentials can log in as it, so a reset also needs ``role.grant`` on every
role the account holds (`_guard.control_needs`): nobody takes over an account
more powerful than one they could make.

Every change ends the person's login sessions: all of them after a reset, all
but the one the change was made from after their own change. API tokens stay:
each is a credential of its own with its own scopes and expiry, revoked on
its own (`token revoke`). Each change, and each refusal, is one event.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import Connection, delete, select, update

from pipewarden.db import Database, api_tokens, principals, recovery_codes
from pipewarden.errors import AccessDenied, ConfigError, IdentityError
from pipewarden.events import Actor, Events
from pipewarden.identity._accounts import Scalar, emit
from pipewarden.identity._guard import Need, authorize, check_control_unchanged, control_needs
from pipewarden.identity._logins import Credentials, Proof, Refused, Verifier
from pipewarden.identity._passwords import PasswordPolicy
from pipewarden.identity._policy import Policy
from pipewarden.identity._subject import Subject
from pipewarden.identity._tokencache import forget_principal

__all__ = ["CredentialChanges", "PasswordChanged", "revoke_sessions"]


@dataclass(frozen=True, slots=True)
class PasswordChanged:
    """A password replaced: whose, how many of their login sessions ended, and, when a recovery code
    was the second factor, how many codes are left (so the user can be told to make new ones)."""

    principal: str
    sessions_revoked: int
    recovery_codes_left: int | None = None


def revoke_sessions(conn: Connection, principal_id: int, *, at: datetime, keep: str | None = None) -> int:
    """End the principal's live login sessions (but `keep`, a token id) in the caller's transaction."""
    live = [
        api_tokens.c.principal_id == principal_id,
        api_tokens.c.kind == "session",
        api_tokens.c.revoked_at.is_(None),
    ]
    if keep is not None:
        live.append(api_tokens.c.token_id != keep)
    return int(conn.execute(update(api_tokens).where(*live).values(revoked_at=at)).rowcount)


class CredentialChanges:
    """A user's own password change and an administrator's password and MFA resets, over one database."""

    def __init__(
        self,
        db: Database,
        *,
        events: Events,
        verifier: Verifier,
        policy: Policy,
        passwords: PasswordPolicy,
        clock: Callable[[], datetime],
    ) -> None:
        self.db = db
        self.events = events
        self.verifier = verifier
        self.policy = policy
        self.passwords = passwords
        self.clock = clock

    def _emit(
        self, action: str, actor: Actor, resource: str, outcome: str, attributes: dict[str, Scalar]
    ) -> None:
        emit(self.events, action, actor=actor, resource=resource, outcome=outcome, attributes=attributes)

    # --- a user's own password -------------------------------------------------------------------

    def change_password(
        self,
        name: str,
        *,
        current_password: str,
        new_password: str,
        origin: str,
        totp_code: str | None = None,
        recovery_code: str | None = None,
        keep_session: str | None = None,
    ) -> PasswordChanged:
        """See `Authenticator.change_password`."""
        action = "auth.password_change"
        creds = Credentials(name, current_password, totp_code=totp_code, recovery_code=recovery_code)
        proof = self.verifier.verify(creds, origin=origin, action=action, second_factor="if_enrolled")
        # The hash that was checked is about to be replaced: a rehash of it would only be overwritten.
        proof = replace(proof, new_hash=None)
        self._check_new(proof, current=current_password, new=new_password, origin=origin)
        new_hash = self.passwords.hash(new_password)
        now = self.clock()
        revoked: list[int] = []

        def store(conn: Connection) -> None:
            # Only over the hash that was checked: two changes at once, each proving the old password,
            # leave one new password, and the other is refused rather than silently overwriting it.
            changed = conn.execute(
                update(principals)
                .where(principals.c.id == proof.principal_id, principals.c.password_hash == proof.old_hash)
                .values(password_hash=new_hash, password_changed_at=now)
            )
            if changed.rowcount != 1:
                raise Refused("credentials")
            revoked.append(revoke_sessions(conn, proof.principal_id, at=now, keep=keep_session))

        self.verifier.commit(proof, origin=origin, action=action, then=store, trust_origin=False)
        forget_principal(proof.name)  # its sessions ended: none is served from memory any more
        attributes: dict[str, Scalar] = {
            "factor": proof.factor or "password",
            "sessions_revoked": revoked[0],
        }
        if proof.recovery_left is not None:
            attributes["recovery_codes_left"] = proof.recovery_left
        self._emit(action, Actor(proof.name, "user", origin), f"user:{proof.name}", "allowed", attributes)
        return PasswordChanged(proof.name, revoked[0], proof.recovery_left)

    def _check_new(self, proof: Proof, *, current: str, new: str, origin: str) -> None:
        """The password policy on the new password, after the current one checked out.

        Checked only then, so that the account's display name can count as
        guessable without the answer telling anyone what that name is. A
        refusal refunds the throttle charge (the credentials were right) and is
        one event.
        """
        reason, error = None, None
        if hmac.compare_digest(new.encode(), current.encode()):
            reason = "reused"
            error = ConfigError(f"{proof.name}: the new password is the current one; choose another")
        else:
            with self.db.transaction(write=False) as conn:
                display = conn.execute(
                    select(principals.c.display_name).where(principals.c.id == proof.principal_id)
                ).scalar()
            try:
                # The current password counts as guessable too: 'old one' + '2' is not a new password.
                self.passwords.check_new(new, user_inputs=[proof.name, display or "", current])
            except ConfigError as exc:
                reason, error = "weak_password", exc
        if error is None:
            return
        self.verifier.settle(proof, succeeded=True, trust_origin=False)
        actor = Actor(proof.name, "user", origin)
        self._emit("auth.password_change", actor, f"user:{proof.name}", "denied", {"reason": reason})
        raise error

    # --- an administrator's resets ---------------------------------------------------------------

    def _authorize_reset(self, by: Subject, name: str, *, action: str, origin: str) -> frozenset[str]:
        """``user.update`` on ``user:<name>`` and, on someone else's account, ``role.grant`` on each
        role it holds; a refusal is one `action` event. Returns the roles authorized, for the write to
        check they still hold (`check_control_unchanged`)."""
        resource = f"user:{name}"
        needs: list[Need] = [("user.update", resource)]
        roles: frozenset[str] = frozenset()
        if name != by.name:
            with self.db.transaction(write=False) as conn:
                roles, control = control_needs(conn, name)
            needs.extend(control)
        authorize(self.policy, by, needs, events=self.events, action=action, resource=resource, origin=origin)
        return roles

    def _require_mfa_session(
        self, by: Subject, *, action: str, resource: str, origin: str, what: str
    ) -> None:
        if by.mfa:
            return
        self._emit(
            action,
            Actor(by.name, by.kind, origin),
            resource,
            "denied",
            {"reason": "the acting session has no MFA"},
        )
        raise AccessDenied(f"{by.name}: {what} needs a session that passed MFA; log in again")

    def reset_password(self, name: str, *, new_password: str, by: Subject, origin: str) -> PasswordChanged:
        """See `Authenticator.reset_password`."""
        action, resource = "auth.password_reset", f"user:{name}"
        actor = Actor(by.name, by.kind, origin)
        roles = self._authorize_reset(by, name, action=action, origin=origin)
        self._require_mfa_session(
            by, action=action, resource=resource, origin=origin, what="resetting a user's password"
        )
        if by.name == name:
            self._emit(action, actor, resource, "denied", {"reason": "own_password"})
            raise AccessDenied(
                f"{name}: change your own password with 'pipewarden user password', "
                "which asks for the current one"
            )
        with self.db.transaction(write=False) as conn:
            row = conn.execute(
                select(principals.c.id, principals.c.kind, principals.c.display_name).where(
                    principals.c.name == name
                )
            ).first()
        if row is None or row.kind != "user":
            raise IdentityError(f"{name}: no such user")
        # No check against the current password here: telling an administrator that the password
        # they chose is the one the user has would reveal it.
        try:
            self.passwords.check_new(new_password, user_inputs=[name, row.display_name])
        except ConfigError:
            self._emit(action, actor, resource, "denied", {"reason": "weak_password"})
            raise
        new_hash = self.passwords.hash(new_password)
        now = self.clock()
        with self.db.transaction() as conn:
            check_control_unchanged(conn, name, roles)
            conn.execute(
                update(principals)
                .where(principals.c.id == row.id)
                .values(password_hash=new_hash, password_changed_at=now)
            )
            revoked = revoke_sessions(conn, int(row.id), at=now)
        forget_principal(name)  # its sessions ended: none is served from memory any more
        # The administrator vouches for the account: failures counted against it so far, from anywhere
        # (its own counter and every pair of it with an origin), are forgotten.
        self.verifier.throttle.forget(name)
        self._emit(action, actor, resource, "allowed", {"sessions_revoked": revoked})
        return PasswordChanged(name, revoked)

    def reset_mfa(self, name: str, *, by: Subject, origin: str) -> None:
        """See `Authenticator.reset_mfa`."""
        action, resource = "auth.mfa_reset", f"user:{name}"
        roles = self._authorize_reset(by, name, action=action, origin=origin)
        self._require_mfa_session(
            by, action=action, resource=resource, origin=origin, what="resetting a user's MFA"
        )
        now = self.clock()
        with self.db.transaction() as conn:
            row = conn.execute(
                select(principals.c.id, principals.c.kind).where(principals.c.name == name)
            ).first()
            if row is None or row.kind != "user":
                raise IdentityError(f"{name}: no such user")
            if name != by.name:
                check_control_unchanged(conn, name, roles)
            conn.execute(
                update(principals)
                .where(principals.c.id == row.id)
                .values(
                    mfa_secret=None,
                    mfa_enrolled_at=None,
                    mfa_last_step=None,
                    mfa_pending_secret=None,
                    mfa_pending_at=None,
                )
            )
            conn.execute(delete(recovery_codes).where(recovery_codes.c.principal_id == row.id))
            revoked = revoke_sessions(conn, int(row.id), at=now)
        forget_principal(name)  # its sessions ended: none is served from memory any more
        self._emit(
            action, Actor(by.name, by.kind, origin), resource, "allowed", {"sessions_revoked": revoked}
        )
