"""Client certificates of service accounts: mutual TLS as a credential.

A service account may be bound to one or more client certificates, each by the SHA-256 of its DER
form (its fingerprint). The server's TLS layer checks that a certificate was issued by the client CA
it trusts; this part decides who the certificate is: the one service account registered for that exact
fingerprint, and nobody otherwise. A certificate's subject name is never used to find an account, so a
second certificate the CA issues for the same name gets in nowhere until it is registered too.

Registering or removing a certificate is acting on the account (``user.update`` on ``user:<name>``
and ``role.grant`` on every role it holds, docs/access.md), from a login session, never with an API
token (a token does not mint credentials), and from one that passed MFA when the account holds a role
that requires it; the binding then carries that assurance, as a token carries its maker's. Each
registration, removal and refused use is one event.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, delete, insert, select
from sqlalchemy.exc import IntegrityError as SQLIntegrityError

from pipewarden.db import Database, client_certificates, principals
from pipewarden.errors import AccessDenied, AuthenticationFailed, ConfigError, IdentityError, PipewardenError
from pipewarden.events import Actor, Events
from pipewarden.identity._accounts import Scalar, emit, utcnow
from pipewarden.identity._bindings import grants_for
from pipewarden.identity._guard import authorize, check_control_unchanged, control_needs
from pipewarden.identity._policy import Policy
from pipewarden.identity._subject import Subject

__all__ = [
    "CERTIFICATE_ID_PREFIX",
    "CertificateBinding",
    "ClientCertificates",
    "certificate_fingerprint",
    "normalise_fingerprint",
]

#: How events and `Subject.token_id` name a certificate credential: this prefix and 16 hex digits of
#: its fingerprint (the monitor follows one credential across origins by it).
CERTIFICATE_ID_PREFIX = "cert:"
_HEX64 = re.compile(r"[0-9a-f]{64}")
_PEM = re.compile(rb"-----BEGIN CERTIFICATE-----\s*(.+?)\s*-----END CERTIFICATE-----", re.DOTALL)
_NOT_ACCEPTED = "the client certificate is not registered to any service account"


def normalise_fingerprint(text: str) -> str:
    """A SHA-256 fingerprint as stored: 64 lower-case hex digits. Accepts the ``AA:BB:...`` form
    browsers and ``openssl x509 -fingerprint -sha256`` show; `ConfigError` naming the text otherwise."""
    plain = text.strip().replace(":", "").replace(" ", "").lower()
    if plain.startswith("sha256"):
        plain = plain.removeprefix("sha256").lstrip("=")
    if not _HEX64.fullmatch(plain):
        raise ConfigError(f"{text[:120]!r}: not a SHA-256 fingerprint (64 hex digits, colons allowed)")
    return plain


def certificate_fingerprint(certificate: bytes) -> str:
    """The fingerprint of a certificate, PEM (the first one in the text) or DER."""
    der = certificate
    if b"-----BEGIN" in certificate:
        match = _PEM.search(certificate)
        if match is None:
            raise ConfigError("the file holds no PEM certificate ('-----BEGIN CERTIFICATE-----')")
        try:
            der = base64.b64decode(b"".join(match.group(1).split()), validate=True)
        except (binascii.Error, ValueError):
            raise ConfigError("the PEM certificate is not valid base64") from None
    if not der.startswith(b"\x30"):
        raise ConfigError("not a certificate: neither PEM nor DER")
    return hashlib.sha256(der).hexdigest()


def display(fingerprint: str) -> str:
    """``AA:BB:...``, as browsers show a fingerprint."""
    upper = fingerprint.upper()
    return ":".join(upper[i : i + 2] for i in range(0, len(upper), 2))


@dataclass(frozen=True, slots=True)
class CertificateBinding:
    """A client certificate bound to a service account: its fingerprint, and who registered it when."""

    fingerprint: str
    principal: str
    description: str
    created_by: str
    created_at: datetime
    mfa: bool

    @property
    def colon_form(self) -> str:
        return display(self.fingerprint)

    def to_dict(self) -> dict[str, object]:
        return {
            "fingerprint": self.fingerprint,
            "sha256": self.colon_form,
            "principal": self.principal,
            "description": self.description,
            "created_by": self.created_by,
            "created_at": self.created_at.isoformat(),
            "mfa": self.mfa,
        }


def _binding(row: Row[Any]) -> CertificateBinding:
    return CertificateBinding(
        fingerprint=row.fingerprint,
        principal=row.principal,
        description=row.description,
        created_by=row.created_by,
        created_at=row.created_at,
        mfa=bool(row.mfa),
    )


def _query() -> Any:
    return select(
        client_certificates.c.fingerprint,
        principals.c.name.label("principal"),
        client_certificates.c.description,
        client_certificates.c.created_by,
        client_certificates.c.created_at,
        client_certificates.c.mfa,
    ).join(principals, principals.c.id == client_certificates.c.principal_id)


class ClientCertificates:
    """Register, remove and list service accounts' client certificates; authenticate one.

    >>> certs = ClientCertificates(db, policy=policy, events=events)
    >>> certs.register("etl", certificate_fingerprint(pem), by=admin, origin="http:10.0.0.5")
    >>> certs.authenticate(fingerprint, origin="http:10.0.0.9")   # the Subject of 'etl'
    """

    def __init__(
        self, db: Database, *, policy: Policy, events: Events, clock: Callable[[], datetime] = utcnow
    ) -> None:
        self.db = db
        self.policy = policy
        self.events = events
        self.clock = clock

    def _emit(self, actor: Actor, resource: str, outcome: str, attributes: dict[str, Scalar]) -> None:
        emit(
            self.events, "user.update", actor=actor, resource=resource, outcome=outcome, attributes=attributes
        )

    def _authorize(self, by: Subject, name: str, *, origin: str, change: str, fp: str) -> frozenset[str]:
        """``user.update`` on the account and ``role.grant`` on each of its roles, from a login session
        (with MFA when a role of the account requires it); a refusal is one denied event."""
        resource = f"user:{name}"
        attributes: dict[str, Scalar] = {"change": change, "fingerprint": fp}
        with self.db.transaction(write=False) as conn:
            roles, control = control_needs(conn, name)
        authorize(
            self.policy,
            by,
            [("user.update", resource), *control],
            events=self.events,
            action="user.update",
            resource=resource,
            origin=origin,
            attributes=attributes,
        )
        refusal = None
        if by.token_scopes is not None:
            refusal = "client certificates are registered from a login session, not with an API token"
        elif not by.mfa and any(
            role in self.policy.roles and self.policy.roles[role].requires_mfa for role in roles
        ):
            refusal = f"{name} holds a role that requires MFA; register from a session that passed MFA"
        if refusal is not None:
            self._emit(Actor(by.name, by.kind, origin), resource, "denied", {**attributes, "reason": refusal})
            raise AccessDenied(f"{by.name}: {refusal}")
        return roles

    def register(
        self, name: str, fingerprint: str, *, by: Subject, origin: str, description: str = ""
    ) -> CertificateBinding:
        """Bind the certificate of `fingerprint` to service account `name`; one ``user.update`` event.

        `IdentityError` if `name` is not a service account or the certificate is bound already (to
        this account or another: one certificate is one credential)."""
        fp = normalise_fingerprint(fingerprint)
        if len(description) > 256 or not description.isprintable():
            raise ConfigError("a certificate's description has at most 256 printable characters")
        roles = self._authorize(by, name, origin=origin, change="certificate.add", fp=fp)
        actor = Actor(by.name, by.kind, origin)
        attributes: dict[str, Scalar] = {"change": "certificate.add", "fingerprint": fp}
        try:
            with self.db.transaction() as conn:
                row = conn.execute(
                    select(principals.c.id, principals.c.kind).where(principals.c.name == name)
                ).first()
                if row is None or row.kind != "service":
                    raise IdentityError(
                        f"{name}: no such service account (client certificates are for service accounts)"
                    )
                if name != by.name:
                    check_control_unchanged(conn, name, roles)
                taken = conn.execute(
                    select(client_certificates.c.fingerprint).where(client_certificates.c.fingerprint == fp)
                ).first()
                if taken is not None:
                    raise IdentityError(f"{display(fp)}: this certificate is registered already")
                try:
                    conn.execute(
                        insert(client_certificates).values(
                            fingerprint=fp,
                            principal_id=row.id,
                            description=description,
                            created_by=by.name,
                            created_at=self.clock(),
                            mfa=by.mfa,
                        )
                    )
                except SQLIntegrityError:
                    raise IdentityError(f"{display(fp)}: this certificate is registered already") from None
                found = conn.execute(_query().where(client_certificates.c.fingerprint == fp)).one()
        except PipewardenError as exc:
            self._emit(actor, f"user:{name}", "error", {**attributes, "reason": type(exc).__name__})
            raise
        self._emit(actor, f"user:{name}", "allowed", attributes)
        return _binding(found)

    def remove(self, name: str, fingerprint: str, *, by: Subject, origin: str) -> CertificateBinding:
        """Unbind a certificate from `name`: it stops working at once; one ``user.update`` event."""
        fp = normalise_fingerprint(fingerprint)
        self._authorize(by, name, origin=origin, change="certificate.remove", fp=fp)
        actor = Actor(by.name, by.kind, origin)
        attributes: dict[str, Scalar] = {"change": "certificate.remove", "fingerprint": fp}
        try:
            with self.db.transaction() as conn:
                row = conn.execute(
                    _query().where(client_certificates.c.fingerprint == fp, principals.c.name == name)
                ).first()
                if row is None:
                    raise IdentityError(f"{name}: has no certificate {display(fp)}")
                conn.execute(delete(client_certificates).where(client_certificates.c.fingerprint == fp))
        except PipewardenError as exc:
            self._emit(actor, f"user:{name}", "error", {**attributes, "reason": type(exc).__name__})
            raise
        self._emit(actor, f"user:{name}", "allowed", attributes)
        return _binding(row)

    def list(self, name: str | None = None) -> tuple[CertificateBinding, ...]:
        """Every binding (or `name`'s), by account and fingerprint. Authorization is the caller's."""
        query = _query().order_by(principals.c.name, client_certificates.c.fingerprint)
        if name is not None:
            query = query.where(principals.c.name == name)
        with self.db.transaction(write=False) as conn:
            return tuple(_binding(row) for row in conn.execute(query))

    def authenticate(self, fingerprint: str, *, origin: str) -> Subject:
        """The service account bound to the certificate of `fingerprint`, as a `Subject` that acts like
        an API token of scope ``*`` (its roles decide; it mints no tokens); `AuthenticationFailed` after
        one denied ``certificate.use`` event when none is bound, or its account is disabled."""
        fp = normalise_fingerprint(fingerprint)
        resource = f"certificate:{fp}"
        with self.db.transaction(write=False) as conn:
            row = conn.execute(
                select(principals.c.name, principals.c.kind, principals.c.disabled, client_certificates.c.mfa)
                .join(principals, principals.c.id == client_certificates.c.principal_id)
                .where(client_certificates.c.fingerprint == fp)
            ).first()
            grants = grants_for(conn, row.name) if row is not None else ()
        if row is None or row.kind != "service":
            emit(
                self.events,
                "certificate.use",
                actor=Actor("anonymous", "anonymous", origin),
                resource=resource,
                outcome="denied",
                attributes={"reason": "unknown"},
            )
            raise AuthenticationFailed(_NOT_ACCEPTED)
        if row.disabled:
            emit(
                self.events,
                "certificate.use",
                actor=Actor(row.name, row.kind, origin),
                resource=resource,
                outcome="denied",
                attributes={"reason": "disabled"},
            )
            raise AuthenticationFailed(f"the client certificate's account {row.name} is disabled")
        return Subject(
            row.name,
            row.kind,
            grants,
            mfa=bool(row.mfa),
            token_scopes=frozenset({"*"}),
            token_id=CERTIFICATE_ID_PREFIX + fp[:16],
        )
