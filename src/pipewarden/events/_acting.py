"""Acting on someone's behalf: authorize, do the thing, and report it as exactly one event.

Every part that does something for a principal goes through `Acting.perform`:
the action is authorized first (a denial is an event and `AccessDenied`), then
run, and its outcome becomes one event: ``allowed`` when it succeeded,
``denied`` when a check refused it (a model refused by the scan, a failed
credential), ``error`` when it failed (tampering found, a missing artifact).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol, TypeVar

from pipewarden.errors import AccessDenied, ArtifactRefused, IntegrityError, PipewardenError
from pipewarden.events._bus import Events
from pipewarden.events._event import Event, Scalar

__all__ = ["Acting", "Actor", "Authorizer", "LocalOperator", "Verdict"]

T = TypeVar("T")
_DETAIL = 512


@dataclass(frozen=True, slots=True)
class Actor:
    """Who events name as acting: a principal's name and kind, and where the request came from."""

    name: str
    kind: str = "user"
    origin: str = ""
    #: The API token or login session the principal presented, by id (never the secret): events carry it
    #: as `token_id`, so the monitor can follow one credential across origins.
    token_id: str | None = None


class Verdict(Protocol):
    """What an authorizer answers: allowed or not, and the rule that decided (identity's `Decision`)."""

    @property
    def allowed(self) -> bool: ...

    @property
    def rule(self) -> str: ...


class Authorizer(Protocol):
    def check(self, action: str, resource: str) -> Verdict: ...


@dataclass(frozen=True, slots=True)
class _Allowed:
    allowed: bool
    rule: str


class LocalOperator:
    """The owner of the workspace folder, acting on the machine that holds its key files.

    Whoever can read the workspace's key ring and signing key can do anything
    the library can, so no role could stop them; their actions are allowed and
    recorded as the operating-system user, actor kind ``system``. Principals
    (people and services that log in or present a token) are authorized by
    `pipewarden.identity.Policy` instead.
    """

    RULE = "local operator: holds the workspace's key files"

    def check(self, action: str, resource: str) -> Verdict:
        return _Allowed(True, self.RULE)


class Acting:
    """One actor's session with the event path and the authorizer that decides for it."""

    def __init__(self, *, actor: Actor, events: Events, authorizer: Authorizer) -> None:
        self.actor = actor
        self.events = events
        self.authorizer = authorizer

    def emit(
        self, action: str, resource: str, outcome: str, attributes: Mapping[str, Scalar] | None = None
    ) -> int:
        return self.events.emit(
            Event(
                action=action,
                actor=self.actor.name,
                actor_kind=self.actor.kind,
                resource=resource,
                outcome=outcome,
                origin=self.actor.origin,
                attributes=(
                    {**(attributes or {}), "token_id": self.actor.token_id}
                    if self.actor.token_id is not None
                    else dict(attributes or {})
                ),
            )
        )

    def authorize(self, action: str, resource: str) -> Verdict:
        """Raise `AccessDenied` (after emitting the denial) unless the authorizer allows it."""
        verdict = self.authorizer.check(action, resource)
        if not verdict.allowed:
            self.emit(action, resource, "denied", {"rule": verdict.rule[:_DETAIL]})
            raise AccessDenied(
                f"{self.actor.name}: {action} on {resource} is not allowed ({verdict.rule})", decision=verdict
            )
        return verdict

    def perform(
        self,
        action: str,
        resource: str,
        operation: Callable[[], T],
        *,
        describe: Callable[[T], Mapping[str, Scalar]] | None = None,
        attributes: Mapping[str, Scalar] | None = None,
        checked_by_caller: bool = False,
    ) -> T:
        """Authorize `action` on `resource`, run `operation`, emit one event for its outcome, return it.

        `describe(result)` adds attributes of a success (a digest, a version);
        `attributes` are added whatever the outcome (the file scanned, say).
        `checked_by_caller=True` skips the check on `resource` for a caller that
        has authorized every item itself (a listing that shows only what the
        principal may see; a scan of several paths, each checked).
        """
        if not checked_by_caller:
            self.authorize(action, resource)
        base = dict(attributes or {})
        try:
            result = operation()
        except AccessDenied as exc:  # refused inside the operation (an item out of reach)
            self.emit(action, resource, "denied", {**base, "rule": str(exc)[:_DETAIL]})
            raise
        except ArtifactRefused as exc:
            self.emit(action, resource, "denied", {**base, "reason": "scan", "detail": str(exc)[:_DETAIL]})
            raise
        except IntegrityError as exc:
            detail = "; ".join((str(exc), *exc.changes))  # what changed, one item each (a file, a record)
            self.emit(action, resource, "error", {**base, "reason": "integrity", "detail": detail[:_DETAIL]})
            raise
        except PipewardenError as exc:
            self.emit(
                action,
                resource,
                "error",
                {**base, "reason": type(exc).__name__, "detail": str(exc)[:_DETAIL]},
            )
            raise
        self.emit(action, resource, "allowed", {**base, **(describe(result) if describe else {})})
        return result
