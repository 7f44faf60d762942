"""People and services over HTTP: principals, and API tokens; this router also carries the account
routes (`_accounts`: users, service accounts, roles, client certificates) and the second factor's
(`_mfa`), included at the end.

Token routes are guarded `signed_in` and authorized by the identity part itself, which knows whose
token it is: one's own needs ``token.read``/``token.create``/``token.revoke``, anyone else's
``token.manage`` (and, to create, the right to grant each of the owner's roles).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import Query, Request
from pydantic import BaseModel, Field

from pipewarden.server._table import Guard, GuardedRouter
from pipewarden.server.routes._common import caller, principal_json, state

router = GuardedRouter(tags=["identity"])


def _token(t: Any) -> dict[str, Any]:
    return {
        "token_id": t.token_id,
        "owner": t.owner,
        "kind": t.kind,
        "description": t.description,
        "scopes": list(t.scopes),
        "created_at": t.created_at.isoformat(),
        "expires_at": t.expires_at.isoformat(),
        "last_used_at": t.last_used_at.isoformat() if t.last_used_at else None,
        "revoked_at": t.revoked_at.isoformat() if t.revoked_at else None,
        "mfa": t.mfa,
    }


@router.get_("/v1/users", guard=Guard.needs("user.read", "user:*"))
def list_users(request: Request) -> dict[str, Any]:
    from pipewarden.identity import Accounts

    accounts = Accounts(state(request).workspace.database(), events=state(request).workspace_events)
    return {"users": [principal_json(p) for p in accounts.list_as(caller(request).acting.actor)]}


@router.get_("/v1/tokens", guard=Guard.signed_in())
def list_tokens(request: Request, owner: str | None = Query(default=None, max_length=128)) -> dict[str, Any]:
    """The caller's tokens, or `owner`'s ('*': everyone's) with ``token.manage``."""
    me = caller(request)
    found = state(request).authenticator.list_tokens(by=me.subject, origin=me.origin, owner=owner)
    return {"tokens": [_token(t) for t in found]}


class NewTokenBody(BaseModel):
    owner: str | None = Field(default=None, max_length=128)
    scopes: list[str] = Field(min_length=1, max_length=64)
    days: int = Field(default=30, ge=1, le=365)
    description: str = Field(default="", max_length=256)


@router.post_("/v1/tokens", guard=Guard.signed_in(), status_code=201)
def create_token(body: NewTokenBody, request: Request) -> dict[str, Any]:
    """A token, shown once in this response; made only from a login session, never with another token."""
    me = caller(request)
    made = state(request).authenticator.create_token(
        body.owner or me.subject.name,
        by=me.subject,
        scopes=body.scopes,
        lifetime=timedelta(days=body.days),
        origin=me.origin,
        description=body.description,
    )
    return {"token": made.plaintext, **_token(made.info)}


@router.delete_("/v1/tokens/{token_id}", guard=Guard.signed_in())
def revoke_token(token_id: str, request: Request) -> dict[str, Any]:
    me = caller(request)
    return _token(state(request).authenticator.revoke_token(token_id, by=me.subject, origin=me.origin))


# The account and second-factor routes ride on this router (their guards travel with their endpoints).
from pipewarden.server.routes import _accounts, _mfa  # noqa: E402  # they import nothing of this module

router.include_router(_accounts.router)
router.include_router(_mfa.router)
