"""Identity: who is acting. This release holds its credentials: argon2id passwords, TOTP
(RFC 6238) and API tokens.

>>> from pipewarden.identity import Totp
>>> totp = Totp.generate()
>>> step = totp.verify(totp.code_at(time.time()), last_step=None)   # store `step`; replays fail

Authentication: accounts, logins with a password and a second factor (TOTP, recovery codes), login
throttling, sessions and API tokens; each attempt and change is one event (docs/access.md).

>>> from pipewarden.identity import Authenticator
>>> auth = Authenticator(db, events=events, keyring=keyring)
>>> result = auth.login("ada", password, origin="203.0.113.5", totp_code="492039")
>>> auth.authenticate_token(result.session.token, origin="203.0.113.5")   # a Subject

Authorization: roles, grants and the policy that decides (docs/access.md).

>>> from pipewarden.identity import Grant, Policy, Subject
>>> ada = Subject("ada", "user", (Grant("ml-engineer", "project:fraud"),), mfa=True)
>>> Policy.default().check(ada, "artifact.write", "artifact:fraud/model").rule
'role ml-engineer (scope project:fraud) allows artifact.write'
"""

from __future__ import annotations

from pipewarden.identity._access import Access
from pipewarden.identity._accounts import Accounts, Principal
from pipewarden.identity._actions import ACTIONS, PROJECT_TYPES, RESOURCE_TYPES
from pipewarden.identity._admins import Administrators
from pipewarden.identity._apitokens import (
    DEFAULT_TOKEN_LIFETIME,
    MAX_TOKEN_LIFETIME,
    SESSION_LIFETIME,
    NewToken,
    TokenInfo,
)
from pipewarden.identity._auth import Authenticator, LoginResult, LoginStatus, MfaEnrolled, Session
from pipewarden.identity._bindings import Binding, Group, grants_for
from pipewarden.identity._certificates import (
    CERTIFICATE_ID_PREFIX,
    CertificateBinding,
    ClientCertificates,
    certificate_fingerprint,
    normalise_fingerprint,
)
from pipewarden.identity._changes import PasswordChanged
from pipewarden.identity._guard import authorize
from pipewarden.identity._mfa import RECOVERY_CODE_COUNT, MfaEnrolment, RecoveryCodes
from pipewarden.identity._passwords import MIN_LENGTH, MIN_SCORE, PasswordPolicy, Verified
from pipewarden.identity._patterns import TokenScope
from pipewarden.identity._policy import DENY_BY_DEFAULT, POLICY_FILE, Decision, Policy, SubjectPolicy
from pipewarden.identity._policyfile import POLICY_FORMAT
from pipewarden.identity._roles import ADMIN_ROLE, BUILTIN_ROLES, Role, Rule
from pipewarden.identity._sessions import TOKEN_ENV, SessionFile, StoredSession
from pipewarden.identity._subject import Grant, Subject
from pipewarden.identity._throttle import Charge, CounterRule, Throttle, Throttled, ThrottleRule
from pipewarden.identity._tokencache import DEFAULT_TOKEN_CACHE_SECONDS, MAX_TOKEN_CACHE_SECONDS, TokenCache
from pipewarden.identity._tokens import TOKEN_PREFIX, IssuedToken, ParsedToken, issue_token, parse_token
from pipewarden.identity._totp import SECRET_BYTES, Totp, hotp

__all__ = [
    "ACTIONS",
    "ADMIN_ROLE",
    "BUILTIN_ROLES",
    "CERTIFICATE_ID_PREFIX",
    "DEFAULT_TOKEN_CACHE_SECONDS",
    "DEFAULT_TOKEN_LIFETIME",
    "DENY_BY_DEFAULT",
    "MAX_TOKEN_CACHE_SECONDS",
    "MAX_TOKEN_LIFETIME",
    "MIN_LENGTH",
    "MIN_SCORE",
    "POLICY_FILE",
    "POLICY_FORMAT",
    "PROJECT_TYPES",
    "RECOVERY_CODE_COUNT",
    "RESOURCE_TYPES",
    "SECRET_BYTES",
    "SESSION_LIFETIME",
    "TOKEN_ENV",
    "TOKEN_PREFIX",
    "Access",
    "Accounts",
    "Administrators",
    "Authenticator",
    "Binding",
    "CertificateBinding",
    "Charge",
    "ClientCertificates",
    "CounterRule",
    "Decision",
    "Grant",
    "Group",
    "IssuedToken",
    "LoginResult",
    "LoginStatus",
    "MfaEnrolled",
    "MfaEnrolment",
    "NewToken",
    "ParsedToken",
    "PasswordChanged",
    "PasswordPolicy",
    "Policy",
    "Principal",
    "RecoveryCodes",
    "Role",
    "Rule",
    "Session",
    "SessionFile",
    "StoredSession",
    "Subject",
    "SubjectPolicy",
    "Throttle",
    "ThrottleRule",
    "Throttled",
    "TokenCache",
    "TokenInfo",
    "TokenScope",
    "Totp",
    "Verified",
    "authorize",
    "certificate_fingerprint",
    "grants_for",
    "hotp",
    "issue_token",
    "normalise_fingerprint",
    "parse_token",
]
