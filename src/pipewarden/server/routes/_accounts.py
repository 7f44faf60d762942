"""Accounts over HTTP: users and service accounts, their roles, an administrator's MFA reset, and the
client certificates service accounts authenticate with (mutual TLS).

Thin over the identity part, as the command line is: `Accounts` creates, disables and enables
principals, `Access` grants and revokes roles, `Authenticator.reset_mfa` resets a second factor and
`ClientCertificates` binds certificates. Routes that act on someone else's account (disable, enable,
reset MFA, a certificate) are authorized by the identity part itself, which also needs ``role.grant``
on every role the account holds (docs/access.md, "Acting on someone else's account").

Each request is one event: the library's, or, when the library refuses the input before it records
anything (a weak password, a name that exists, an unknown role), one ``error`` event named for the
action here. A principal is never deleted (events name it for as long as the log is kept): it is
disabled.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, TypeVar

from fastapi import Path, Query, Request
from pydantic import BaseModel, Field

from pipewarden.errors import AccessDenied, ConfigError, PipewardenError
from pipewarden.server._table import Guard, GuardedRouter
from pipewarden.server.routes._common import caller, principal_json, state

router = GuardedRouter(tags=["accounts"])

T = TypeVar("T")
_DETAIL = 512
NAME = Path(min_length=1, max_length=64, description="A user or service account.")
ROLE = Path(min_length=1, max_length=64, description="A role the policy defines.")


def _binding(b: Any) -> dict[str, Any]:
    return {
        "subject_kind": b.subject_kind,
        "subject": b.subject,
        "role": b.role,
        "scope": b.scope,
        "granted_by": b.granted_by,
        "granted_at": b.granted_at.isoformat(),
    }


def _accounts(request: Request) -> Any:
    from pipewarden.identity import Accounts

    return Accounts(state(request).workspace.database(), events=state(request).workspace_events)


def _access(request: Request) -> Any:
    from pipewarden.identity import Access

    s = state(request)
    return Access(s.workspace.database(), policy=s.policy, events=s.workspace_events)


def _certificates(request: Request) -> Any:
    from pipewarden.identity import ClientCertificates

    s = state(request)
    return ClientCertificates(s.workspace.database(), policy=s.policy, events=s.workspace_events)


def _recorded(request: Request, action: str, resource: str, call: Callable[[], T]) -> T:
    """`call`, for a library call that records what it does and what it refuses on authorization, but
    not a refusal of its input: that becomes one ``error`` event for `action` on `resource`."""
    try:
        return call()
    except AccessDenied:
        raise  # recorded where it was decided
    except PipewardenError as exc:
        caller(request).acting.emit(
            action, resource[:1024], "error", {"reason": type(exc).__name__, "detail": str(exc)[:_DETAIL]}
        )
        raise


class GrantBody(BaseModel):
    role: str = Field(min_length=1, max_length=64)
    scope: str = Field(default="*", min_length=1, max_length=256)


def _grants(request: Request, wanted: list[GrantBody], *, action: str, resource: str) -> list[Any]:
    """The grants a new principal is made with: roles the policy defines, each needing ``role.grant``
    (making a principal with a role is granting it); a refusal is one `action` event."""
    from pipewarden.identity import Grant, authorize

    def check() -> list[Any]:
        for g in wanted:
            state(request).policy.role(g.role)
        return [Grant(g.role, g.scope) for g in wanted]

    grants = _recorded(request, action, resource, check)
    if grants:
        me = caller(request)
        authorize(
            state(request).policy,
            me.subject,
            [("role.grant", f"role:{g.role}") for g in grants],
            events=state(request).workspace_events,
            action=action,
            resource=resource,
            origin=me.origin,
        )
    return grants


# --- users ---------------------------------------------------------------------------------------------


class NewUserBody(BaseModel):
    password: str = Field(min_length=1, max_length=1024)
    display_name: str = Field(default="", max_length=256)
    grants: list[GrantBody] = Field(default_factory=list, max_length=32)


@router.put_("/v1/users/{name}", guard=Guard.needs("user.create", "user:{name}"), status_code=201)
def create_user(body: NewUserBody, request: Request, name: str = NAME) -> dict[str, Any]:
    """A person's account, with roles (each needs ``role.grant``); they enrol MFA at their first login
    when a role requires it. A weak password is refused before anything is written (never echoed)."""
    resource = f"user:{name}"
    grants = _grants(request, body.grants, action="user.create", resource=resource)
    actor = caller(request).acting.actor
    made = _recorded(
        request,
        "user.create",
        resource,
        lambda: _accounts(request).create_user(
            name, password=body.password, actor=actor, display_name=body.display_name, grants=grants
        ),
    )
    return principal_json(made)


def _set_disabled(request: Request, name: str, *, disabled: bool) -> dict[str, Any]:
    me = caller(request)
    action = "user.disable" if disabled else "user.enable"
    # user.update, and role.grant on each of the principal's roles: acting on their account.
    _access(request).authorize_over(me.subject, name, action="user.update", event=action, origin=me.origin)
    accounts = _accounts(request)
    change = accounts.disable if disabled else accounts.enable
    return principal_json(
        _recorded(request, action, f"user:{name}", lambda: change(name, actor=me.acting.actor))
    )


@router.post_("/v1/users/{name}/disable", guard=Guard.signed_in())
def disable_user(request: Request, name: str = NAME) -> dict[str, Any]:
    """Stop a principal at once: its tokens fail from the next request, its sessions are revoked.
    Needs ``user.update`` on it and ``role.grant`` on each of its roles."""
    return _set_disabled(request, name, disabled=True)


@router.post_("/v1/users/{name}/enable", guard=Guard.signed_in())
def enable_user(request: Request, name: str = NAME) -> dict[str, Any]:
    """Let a disabled principal back in (its API tokens that have not expired work again)."""
    return _set_disabled(request, name, disabled=False)


@router.delete_("/v1/users/{name}/mfa", guard=Guard.signed_in())
def reset_mfa(request: Request, name: str = NAME) -> dict[str, Any]:
    """Remove a user's second factor and recovery codes and end their sessions; they enrol again at
    their next login. Needs ``user.update`` on them, ``role.grant`` on each of their roles, and a
    session (or token) that passed MFA."""
    me = caller(request)
    _recorded(
        request,
        "auth.mfa_reset",
        f"user:{name}",
        lambda: state(request).authenticator.reset_mfa(name, by=me.subject, origin=me.origin),
    )
    return {"name": name, "mfa_enrolled": False}


# --- roles and bindings --------------------------------------------------------------------------------


@router.get_("/v1/roles", guard=Guard.needs("role.read", "role:*"))
def list_roles(request: Request) -> dict[str, Any]:
    """The built-in roles and the policy file's custom roles and deny rules."""
    policy = state(request).policy
    roles = caller(request).acting.perform(
        "role.read",
        "role:*",
        lambda: list(policy.roles.values()),
        describe=lambda found: {"count": len(found)},
        checked_by_caller=True,
    )
    return {
        "source": policy.source,
        "roles": [r.to_dict() for r in roles],
        "deny": [rule.to_dict() for rule in policy.deny],
    }


@router.get_("/v1/bindings", guard=Guard.needs("role.read", "role:*"))
def list_bindings(
    request: Request,
    subject: str | None = Query(default=None, min_length=1, max_length=64),
    subject_kind: Literal["principal", "group"] = Query(default="principal"),
) -> dict[str, Any]:
    """Who holds which role, and where; with `subject`, that principal's (or group's) own bindings and,
    for a principal, its grants as authorization sees them (its own and its groups')."""
    access = _access(request)

    def read() -> dict[str, Any]:
        found = [
            b
            for b in access.bindings()
            if subject is None or (b.subject == subject and b.subject_kind == subject_kind)
        ]
        out: dict[str, Any] = {"bindings": [_binding(b) for b in found]}
        if subject is not None and subject_kind == "principal":
            out["grants"] = [{"role": g.role, "scope": g.scope} for g in access.subject(subject).grants]
        return out

    result: dict[str, Any] = caller(request).acting.perform(
        "role.read",
        "role:*",
        read,
        describe=lambda found: {"count": len(found["bindings"])},
        attributes={"subject": subject} if subject else None,
        checked_by_caller=True,
    )
    return result


class BindingBody(BaseModel):
    subject: str = Field(min_length=1, max_length=64)
    subject_kind: Literal["principal", "group"] = "principal"
    scope: str = Field(default="*", min_length=1, max_length=256)


def _check_binding(request: Request, role: str, scope: str, *, action: str, defined: bool) -> None:
    """A role name (one the policy defines, to grant it) and a scope, checked before the identity part
    records anything; a bad one is one `action` error event."""
    from pipewarden.identity._patterns import Selector, check_name

    def check() -> None:
        if defined:
            state(request).policy.role(role)
        else:
            check_name(role, what="role")
        try:
            Selector.parse(scope)
        except ConfigError as exc:
            raise ConfigError(f"scope {exc}") from None

    _recorded(request, action, f"role:{role}", check)


@router.post_("/v1/roles/{role}/bindings", guard=Guard.needs("role.grant", "role:{role}"), status_code=201)
def grant_role(body: BindingBody, request: Request, role: str = ROLE) -> dict[str, Any]:
    """Grant `role` at a scope to a user, service account or group."""
    _check_binding(request, role, body.scope, action="role.grant", defined=True)
    me = caller(request)
    made = _access(request).grant(
        me.subject,
        role=role,
        subject=body.subject,
        subject_kind=body.subject_kind,
        scope=body.scope,
        origin=me.origin,
    )
    return _binding(made)


@router.delete_("/v1/roles/{role}/bindings", guard=Guard.needs("role.revoke", "role:{role}"))
def revoke_role(
    request: Request,
    role: str = ROLE,
    subject: str = Query(min_length=1, max_length=64),
    subject_kind: Literal["principal", "group"] = Query(default="principal"),
    scope: str = Query(default="*", min_length=1, max_length=256),
) -> dict[str, Any]:
    """Revoke one binding; the last enabled administrator's cannot go."""
    _check_binding(request, role, scope, action="role.revoke", defined=False)
    me = caller(request)
    gone = _access(request).revoke(
        me.subject, role=role, subject=subject, subject_kind=subject_kind, scope=scope, origin=me.origin
    )
    return _binding(gone)


# --- service accounts and their client certificates ----------------------------------------------------


@router.get_("/v1/service-accounts", guard=Guard.needs("user.read", "user:*"))
def list_service_accounts(request: Request) -> dict[str, Any]:
    """Every service account, with its roles and the fingerprints of its client certificates."""
    accounts, certificates = _accounts(request), _certificates(request)

    def read() -> list[dict[str, Any]]:
        bound: dict[str, list[str]] = {}
        for c in certificates.list():
            bound.setdefault(c.principal, []).append(c.fingerprint)
        return [principal_json(p, bound.get(p.name, [])) for p in accounts.list() if p.kind == "service"]

    found = caller(request).acting.perform(
        "user.read", "user:*", read, describe=lambda f: {"count": len(f)}, checked_by_caller=True
    )
    return {"service_accounts": found}


class NewServiceBody(BaseModel):
    display_name: str = Field(default="", max_length=256)
    grants: list[GrantBody] = Field(default_factory=list, max_length=32)


@router.put_("/v1/service-accounts/{name}", guard=Guard.needs("user.create", "user:{name}"), status_code=201)
def create_service_account(body: NewServiceBody, request: Request, name: str = NAME) -> dict[str, Any]:
    """A service account: no password, no second factor; it authenticates with API tokens or a
    registered client certificate."""
    resource = f"user:{name}"
    grants = _grants(request, body.grants, action="user.create", resource=resource)
    actor = caller(request).acting.actor
    made = _recorded(
        request,
        "user.create",
        resource,
        lambda: _accounts(request).create_service(
            name, actor=actor, display_name=body.display_name, grants=grants
        ),
    )
    return principal_json(made, [])


@router.get_("/v1/service-accounts/{name}/certificates", guard=Guard.needs("user.read", "user:{name}"))
def list_certificates(request: Request, name: str = NAME) -> dict[str, Any]:
    found = caller(request).acting.perform(
        "user.read",
        f"user:{name}",
        lambda: _certificates(request).list(name),
        describe=lambda f: {"count": len(f)},
        checked_by_caller=True,
    )
    return {"certificates": [c.to_dict() for c in found]}


class CertificateBody(BaseModel):
    certificate: str | None = Field(
        default=None, max_length=32 * 1024, description="The client certificate, PEM."
    )
    fingerprint: str | None = Field(
        default=None, max_length=128, description="Or its SHA-256 fingerprint (hex, colons allowed)."
    )
    description: str = Field(default="", max_length=256)


@router.post_(
    "/v1/service-accounts/{name}/certificates",
    guard=Guard.needs("user.update", "user:{name}"),
    status_code=201,
)
def register_certificate(body: CertificateBody, request: Request, name: str = NAME) -> dict[str, Any]:
    """Bind a client certificate (PEM, or its SHA-256 fingerprint) to the service account: over mutual
    TLS it then authenticates as that account. From a login session only (never with an API token),
    with ``user.update`` on the account and ``role.grant`` on each of its roles."""
    from pipewarden.identity import certificate_fingerprint, normalise_fingerprint

    def fingerprint() -> str:
        if (body.certificate is None) == (body.fingerprint is None):
            raise ConfigError("give the certificate (PEM) or its fingerprint, not both")
        if not body.description.isprintable():
            raise ConfigError("a certificate's description has at most 256 printable characters")
        if body.certificate is not None:
            return certificate_fingerprint(body.certificate.encode("utf-8"))
        assert body.fingerprint is not None  # noqa: S101  # one of the two, checked above
        return normalise_fingerprint(body.fingerprint)

    fp = _recorded(request, "user.update", f"user:{name}", fingerprint)
    me = caller(request)
    made = _certificates(request).register(
        name, fp, by=me.subject, origin=me.origin, description=body.description
    )
    return dict(made.to_dict())


@router.delete_(
    "/v1/service-accounts/{name}/certificates/{fingerprint}",
    guard=Guard.needs("user.update", "user:{name}"),
)
def remove_certificate(
    request: Request, name: str = NAME, fingerprint: str = Path(min_length=1, max_length=128)
) -> dict[str, Any]:
    """Unbind a client certificate: it stops authenticating at once."""
    from pipewarden.identity import normalise_fingerprint

    fp = _recorded(request, "user.update", f"user:{name}", lambda: normalise_fingerprint(fingerprint))
    me = caller(request)
    gone = _certificates(request).remove(name, fp, by=me.subject, origin=me.origin)
    return dict(gone.to_dict())
