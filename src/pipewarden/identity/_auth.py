"""Authentication: passwords and second factors become sessions; tokens become `Subject`s.

Every attempt passes the login throttle (`_throttle`) first and is one event.
An unknown name, a service account and a disabled user are answered exactly
like a wrong password, after the same argon2 work, so neither the answer nor
its cost tells whether an account exists. Once a user has enrolled a second
factor it is always needed; a user holding a role that requires MFA must
enrol before getting a session. Changing the password, the second factor or
the recovery codes takes the password and the current second factor again, in
the same call, so it is always a fresh authentication (`_changes` has the
password changes and an administrator's resets).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum

from sqlalchemy import Connection, delete, insert, update

from pipewarden.crypto import KeyRing
from pipewarden.db import Database, principals, recovery_codes
from pipewarden.errors import ConfigError
from pipewarden.events import Actor, Events
from pipewarden.identity._accounts import Scalar, emit, utcnow
from pipewarden.identity._apitokens import SESSION_LIFETIME, NewToken, TokenInfo, Tokens
from pipewarden.identity._bindings import grants_for
from pipewarden.identity._changes import CredentialChanges, PasswordChanged
from pipewarden.identity._logins import Credentials, Proof, Verifier
from pipewarden.identity._mfa import (
    MfaEnrolment,
    RecoveryCodes,
    new_recovery_codes,
    recovery_digest,
    seal_secret,
)
from pipewarden.identity._passwords import PasswordPolicy
from pipewarden.identity._policy import Policy
from pipewarden.identity._subject import Grant, Subject
from pipewarden.identity._throttle import ThrottleRule
from pipewarden.identity._tokencache import TokenCache
from pipewarden.identity._totp import Totp

__all__ = ["Authenticator", "LoginResult", "LoginStatus", "MfaEnrolled", "Session"]

#: How long a begun MFA enrolment waits for its first code.
ENROLMENT_WINDOW = timedelta(minutes=15)


class LoginStatus(Enum):
    SIGNED_IN = "signed_in"
    #: The password was right; the user has a second factor and must give a code (or a recovery code).
    SECOND_FACTOR_NEEDED = "second_factor_needed"
    #: The password was right; the user holds a role that requires MFA and must enrol first.
    MFA_ENROLMENT_NEEDED = "mfa_enrolment_needed"


@dataclass(frozen=True, slots=True)
class Session:
    """A login session's token (shown once, kept by the caller) and when it ends."""

    token_id: str
    expires_at: datetime
    token: str

    def __repr__(self) -> str:
        return f"Session(token_id={self.token_id!r}, expires_at={self.expires_at.isoformat()!r})"


@dataclass(frozen=True, slots=True)
class LoginResult:
    """What a login came to: `subject` (with its `mfa` flag) and, once `SIGNED_IN`, the `session`.

    `recovery_codes_left` is set when a recovery code was used, so the user
    can be told to make new ones before they run out.
    """

    status: LoginStatus
    subject: Subject
    session: Session | None = None
    recovery_codes_left: int | None = None

    @property
    def mfa_enrolment_required(self) -> bool:
        return self.status is LoginStatus.MFA_ENROLMENT_NEEDED


@dataclass(frozen=True, slots=True)
class MfaEnrolled:
    """A confirmed enrolment: the new recovery codes (shown once) and the session it signed in."""

    recovery_codes: RecoveryCodes
    login: LoginResult


def _replace_recovery_codes(conn: Connection, principal_id: int, codes: RecoveryCodes) -> None:
    conn.execute(delete(recovery_codes).where(recovery_codes.c.principal_id == principal_id))
    conn.execute(
        insert(recovery_codes),
        [{"principal_id": principal_id, "digest": recovery_digest(codes.principal, c)} for c in codes.codes],
    )


class Authenticator:
    """Logins, second factors, sessions and API tokens over one database (DESIGN: `identity`).

    >>> auth = Authenticator(db, events=events, keyring=ws.keyring(), policy=Policy.for_workspace(ws.root))
    >>> result = auth.login("ada", password, origin="203.0.113.5", totp_code="123456")
    >>> subject = auth.authenticate_token(result.session.token, origin="203.0.113.5")

    `token_cache` (a `TokenCache`) keeps tokens that worked in memory for a few seconds, for a
    server answering many calls with one token; without it every call asks the database.
    """

    def __init__(
        self,
        db: Database,
        *,
        events: Events,
        keyring: KeyRing,
        policy: Policy | None = None,
        passwords: PasswordPolicy | None = None,
        throttle: ThrottleRule | None = None,
        clock: Callable[[], datetime] = utcnow,
        session_lifetime: timedelta = SESSION_LIFETIME,
        token_cache: TokenCache | None = None,
    ) -> None:
        if not timedelta(minutes=1) <= session_lifetime <= timedelta(days=7):
            raise ConfigError("a login session lasts between one minute and seven days")
        self.db = db
        self.events = events
        self.keyring = keyring
        self.policy = policy or Policy.default()
        self.passwords = passwords or PasswordPolicy()
        self.clock = clock
        self.session_lifetime = session_lifetime
        self._verifier = Verifier(
            db, events=events, keyring=keyring, passwords=self.passwords, rule=throttle, clock=clock
        )
        self.tokens = Tokens(db, events=events, policy=self.policy, clock=clock, cache=token_cache)
        self.changes = CredentialChanges(
            db,
            events=events,
            verifier=self._verifier,
            policy=self.policy,
            passwords=self.passwords,
            clock=clock,
        )

    # --- logins ----------------------------------------------------------------------------------

    def requires_mfa(self, grants: Sequence[Grant]) -> bool:
        """Whether any of these grants is of a role that requires MFA (admin, ml-engineer, ...)."""
        roles = self.policy.roles
        return any(g.role in roles and roles[g.role].requires_mfa for g in grants)

    def login(
        self,
        name: str,
        password: str,
        *,
        origin: str,
        totp_code: str | None = None,
        recovery_code: str | None = None,
    ) -> LoginResult:
        """Check a password (and second factor) and open a session; one ``auth.login`` event.

        Raises `AuthenticationFailed` ("the credentials were not accepted") for
        any wrong credential and for names that do not exist, and
        `LoginThrottled` (saying when to come back) while throttled.
        """
        creds = Credentials(name, password, totp_code=totp_code, recovery_code=recovery_code)
        proof = self._verifier.verify(creds, origin=origin, action="auth.login", second_factor="optional")
        subject = Subject(proof.name, "user", proof.grants, mfa=proof.factor is not None)
        if proof.enrolled and proof.factor is None:
            return self._pause(proof, subject, LoginStatus.SECOND_FACTOR_NEEDED, origin)
        if not proof.enrolled and self.requires_mfa(proof.grants):
            return self._pause(proof, subject, LoginStatus.MFA_ENROLMENT_NEEDED, origin)
        return self._sign_in(proof, subject, origin, action="auth.login")

    def recorded_name(self, name: str) -> str:
        """How login events name an attempt on `name`: the name itself when a principal of that name
        exists, else ``unknown:<16 hex>``, the same for every attempt on that name (docs/access.md,
        "No user enumeration"); for an operator to find the attempts on a name someone asks about."""
        return self._verifier.recorded_name(name)

    def _pause(self, proof: Proof, subject: Subject, status: LoginStatus, origin: str) -> LoginResult:
        """The password was right but no session yet: refund its throttle charge, and say what is next."""
        self._verifier.settle(proof, succeeded=True, trust_origin=False)
        emit(
            self.events,
            "auth.login",
            actor=Actor(proof.name, "user", origin),
            resource=f"user:{proof.name}",
            outcome="denied",
            attributes={"reason": status.value},
        )
        return LoginResult(status, subject)

    def _sign_in(
        self,
        proof: Proof,
        subject: Subject,
        origin: str,
        *,
        action: str,
        extra: dict[str, Scalar] | None = None,
        before: Callable[[Connection], None] | None = None,
    ) -> LoginResult:
        """Commit the proof (code use, rehash), store a session, refund the throttle, emit `action`."""
        new_session: list[NewToken] = []

        def store(conn: Connection) -> None:
            if before is not None:
                before(conn)
            new_session.append(
                self.tokens.insert(
                    conn,
                    principal_id=proof.principal_id,
                    owner=proof.name,
                    kind="session",
                    scopes=["*"],
                    description=f"login from {origin}"[:256],
                    lifetime=self.session_lifetime,
                    mfa=subject.mfa,
                )
            )

        self._verifier.commit(proof, origin=origin, action=action, then=store)
        session = new_session[0]
        emit(
            self.events,
            action,
            actor=Actor(proof.name, "user", origin),
            resource=f"user:{proof.name}",
            outcome="allowed",
            attributes={
                "mfa": subject.mfa,
                "factor": proof.factor or "password",
                "session": session.info.token_id,
                **({"recovery_codes_left": proof.recovery_left} if proof.recovery_left is not None else {}),
                **(extra or {}),
            },
        )
        return LoginResult(
            LoginStatus.SIGNED_IN,
            subject,
            Session(session.info.token_id, session.info.expires_at, session.plaintext),
            recovery_codes_left=proof.recovery_left,
        )

    # --- second factor ---------------------------------------------------------------------------

    def begin_mfa_enrolment(
        self,
        name: str,
        *,
        password: str,
        origin: str,
        totp_code: str | None = None,
        recovery_code: str | None = None,
    ) -> MfaEnrolment:
        """Start enrolling a TOTP authenticator: returns the secret and otpauth URI, to be shown once.

        Needs the password, and the current second factor too when one is
        enrolled (the new one replaces it only once `confirm_mfa_enrolment`
        sees a code from it). One ``auth.mfa_enrol`` event.
        """
        creds = Credentials(name, password, totp_code=totp_code, recovery_code=recovery_code)
        proof = self._verifier.verify(
            creds, origin=origin, action="auth.mfa_enrol", second_factor="if_enrolled"
        )
        totp = Totp.generate()
        sealed = seal_secret(self.keyring, proof.name, totp)
        now = self.clock()

        def store(conn: Connection) -> None:
            conn.execute(
                update(principals)
                .where(principals.c.id == proof.principal_id)
                .values(mfa_pending_secret=sealed, mfa_pending_at=now)
            )

        self._verifier.commit(proof, origin=origin, action="auth.mfa_enrol", then=store, trust_origin=False)
        emit(
            self.events,
            "auth.mfa_enrol",
            actor=Actor(proof.name, "user", origin),
            resource=f"user:{proof.name}",
            outcome="allowed",
            attributes={"stage": "begin", "replacing": proof.enrolled},
        )
        return MfaEnrolment(proof.name, totp)

    def confirm_mfa_enrolment(self, name: str, code: str, *, password: str, origin: str) -> MfaEnrolled:
        """Finish an enrolment with a code from the new authenticator; signs in with MFA.

        The new secret replaces any old one, ten fresh recovery codes replace
        the old ones (returned here, shown once), and a session with ``mfa``
        is opened. One ``auth.mfa_enrol`` event.
        """
        creds = Credentials(name, password, totp_code=code)
        proof = self._verifier.verify(
            creds, origin=origin, action="auth.mfa_enrol", second_factor="pending", window=ENROLMENT_WINDOW
        )
        codes = new_recovery_codes(proof.name)
        now = self.clock()

        def store(conn: Connection) -> None:
            conn.execute(
                update(principals)
                .where(principals.c.id == proof.principal_id)
                .values(
                    mfa_secret=proof.pending_secret,
                    mfa_enrolled_at=now,
                    mfa_pending_secret=None,
                    mfa_pending_at=None,
                )
            )
            _replace_recovery_codes(conn, proof.principal_id, codes)

        subject = Subject(proof.name, "user", proof.grants, mfa=True)
        result = self._sign_in(
            proof, subject, origin, action="auth.mfa_enrol", extra={"stage": "confirm"}, before=store
        )
        return MfaEnrolled(codes, result)

    def regenerate_recovery_codes(
        self,
        name: str,
        *,
        password: str,
        origin: str,
        totp_code: str | None = None,
        recovery_code: str | None = None,
    ) -> RecoveryCodes:
        """Replace every recovery code with ten new ones (shown once); needs password and second factor."""
        creds = Credentials(name, password, totp_code=totp_code, recovery_code=recovery_code)
        proof = self._verifier.verify(
            creds, origin=origin, action="auth.recovery_code", second_factor="required"
        )
        codes = new_recovery_codes(proof.name)

        def store(conn: Connection) -> None:
            _replace_recovery_codes(conn, proof.principal_id, codes)

        self._verifier.commit(
            proof, origin=origin, action="auth.recovery_code", then=store, trust_origin=False
        )
        emit(
            self.events,
            "auth.recovery_code",
            actor=Actor(proof.name, "user", origin),
            resource=f"user:{proof.name}",
            outcome="allowed",
            attributes={"stage": "regenerate", "count": len(codes.codes)},
        )
        return codes

    # --- passwords and resets ----------------------------------------------------------------------

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
        """A user's change of their own password; one ``auth.password_change`` event.

        Authenticates afresh, like a login and through the same throttle: the
        current password, and the second factor once enrolled (a one-time code
        or a recovery code; `SecondFactorNeeded` when it is missing). Then the
        new password must pass the policy and differ from the current one
        (`ConfigError`, never echoing it). The user's login sessions end, but
        `keep_session` (the token id of the session the change is made from);
        API tokens are not touched.
        """
        return self.changes.change_password(
            name,
            current_password=current_password,
            new_password=new_password,
            origin=origin,
            totp_code=totp_code,
            recovery_code=recovery_code,
            keep_session=keep_session,
        )

    def reset_password(self, name: str, *, new_password: str, by: Subject, origin: str) -> PasswordChanged:
        """An administrator's reset of `name`'s password: every session of theirs ends; one
        ``auth.password_reset`` event.

        `by` needs ``user.update`` on ``user:<name>`` and ``role.grant`` on every
        role `name` holds (whoever sets the password can log in as them), a
        session that passed MFA, and to be someone else (one's own password is
        changed with `change_password`). The new password must pass the policy.
        The failures the login throttle counted against the account, from any
        origin, are cleared: the administrator vouches for it.
        """
        return self.changes.reset_password(name, new_password=new_password, by=by, origin=origin)

    def reset_mfa(self, name: str, *, by: Subject, origin: str) -> None:
        """An administrator's reset of `name`'s second factor: secret, recovery codes and sessions go.

        `by` must be authorized for ``user.update`` on ``user:<name>`` and, for
        someone else, ``role.grant`` on every role they hold, and act in a
        session that passed MFA itself. The user enrols again at the next
        login. One ``auth.mfa_reset`` event.
        """
        self.changes.reset_mfa(name, by=by, origin=origin)

    # --- tokens ----------------------------------------------------------------------------------

    def authenticate_token(self, token: str, *, origin: str) -> Subject:
        """The `Subject` a session or API token stands for; `AuthenticationFailed` if it does not work.

        Checks the digest, expiry, revocation and that the owner is enabled,
        and records when and from where the token was last used (at most once
        a minute per origin). With a token cache, a token that worked within
        the cache's lifetime is not read again (its expiry is). Only a
        refusal is an event (``token.use``, denied); a use that works is
        recorded by the event of whatever it was used for.
        """
        return self.tokens.authenticate(token, origin=origin)

    def cached_token(self, token: str, *, origin: str) -> Subject | None:
        """The `Subject` of a token that worked within the token cache's lifetime, answered from memory
        alone (no database read or write is due); None when the database is needed: then call
        `authenticate_token`, which also decides every refusal. Always None without a token cache.

        For a caller on an event loop: a hit costs microseconds and never blocks.
        """
        return self.tokens.cached(token, origin=origin)

    def create_token(
        self,
        owner: str,
        *,
        by: Subject,
        scopes: Sequence[str],
        lifetime: timedelta,
        origin: str,
        description: str = "",
    ) -> NewToken:
        """An API token for `owner` (see `Tokens.create`)."""
        return self.tokens.create(
            owner,
            by=by,
            scopes=scopes,
            lifetime=lifetime,
            origin=origin,
            description=description,
            mfa_required=self._owner_requires_mfa(owner),
        )

    def _owner_requires_mfa(self, owner: str) -> bool:
        with self.db.transaction(write=False) as conn:
            return self.requires_mfa(grants_for(conn, owner))

    def list_tokens(self, *, by: Subject, origin: str, owner: str | None = None) -> tuple[TokenInfo, ...]:
        return self.tokens.list(by=by, origin=origin, owner=owner)

    def revoke_token(self, token_id: str, *, by: Subject, origin: str) -> TokenInfo:
        return self.tokens.revoke(token_id, by=by, origin=origin)

    def logout(self, token: str, *, origin: str) -> TokenInfo:
        """End the login session `token` (revoking it); one ``auth.logout`` event."""
        return self.tokens.end_session(token, origin=origin)
