"""Identity: who is acting. This release holds its credentials: argon2id passwords, TOTP
(RFC 6238) and API tokens.

>>> from pipewarden.identity import Totp
>>> totp = Totp.generate()
>>> step = totp.verify(totp.code_at(time.time()), last_step=None)   # store `step`; replays fail

Authorization: roles, grants and the policy that decides (docs/access.md).

>>> from pipewarden.identity import Grant, Policy, Subject
>>> ada = Subject("ada", "user", (Grant("ml-engineer", "project:fraud"),), mfa=True)
>>> Policy.default().check(ada, "artifact.write", "artifact:fraud/model").rule
'role ml-engineer (scope project:fraud) allows artifact.write'
"""

from __future__ import annotations

from pipewarden.identity._access import Access
from pipewarden.identity._actions import ACTIONS, RESOURCE_TYPES
from pipewarden.identity._bindings import Binding, Group, grants_for
from pipewarden.identity._passwords import MIN_LENGTH, MIN_SCORE, PasswordPolicy, Verified
from pipewarden.identity._patterns import TokenScope
from pipewarden.identity._policy import DENY_BY_DEFAULT, POLICY_FILE, Decision, Policy, SubjectPolicy
from pipewarden.identity._policyfile import POLICY_FORMAT
from pipewarden.identity._roles import BUILTIN_ROLES, Role, Rule
from pipewarden.identity._subject import Grant, Subject
from pipewarden.identity._tokens import TOKEN_PREFIX, IssuedToken, ParsedToken, issue_token, parse_token
from pipewarden.identity._totp import SECRET_BYTES, Totp, hotp

__all__ = [
    "ACTIONS",
    "BUILTIN_ROLES",
    "DENY_BY_DEFAULT",
    "MIN_LENGTH",
    "MIN_SCORE",
    "POLICY_FILE",
    "POLICY_FORMAT",
    "RESOURCE_TYPES",
    "SECRET_BYTES",
    "TOKEN_PREFIX",
    "Access",
    "Binding",
    "Decision",
    "Grant",
    "Group",
    "IssuedToken",
    "ParsedToken",
    "PasswordPolicy",
    "Policy",
    "Role",
    "Rule",
    "Subject",
    "SubjectPolicy",
    "TokenScope",
    "Totp",
    "Verified",
    "grants_for",
    "hotp",
    "issue_token",
    "parse_token",
]
