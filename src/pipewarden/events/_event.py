"""The Event: what happened, who did it, to what, and whether it was allowed.

Its JSON form is a versioned interface (``"v": "pipewarden.event/1"``); stages
that run elsewhere send events in it. Secrets never go in an event: attribute
names that would carry one are refused when the event is made.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pipewarden._canonical import canonical_json
from pipewarden.errors import ConfigError

__all__ = ["ACTOR_KINDS", "EVENT_FORMAT", "OUTCOMES", "Event", "is_secret_name"]

EVENT_FORMAT = "pipewarden.event/1"
OUTCOMES = ("allowed", "denied", "error")
ACTOR_KINDS = ("user", "service", "system", "anonymous")
_ACTION = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
_KEY = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
#: Parts of attribute names that would carry a secret: a name containing one is refused
#: ("new_password", "session_token", "client_secret"), so a secret cannot slip in under a variant.
_SECRET_PARTS = (
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "private_key",
    "privatekey",
    "api_key",
    "recovery_code",
)
#: Words of attribute names (split at '_') that would carry a one-time code: matched as whole words,
#: so "otp_code" is refused and "footprint" is not.
_SECRET_WORDS = frozenset({"otp", "totp", "hotp"})
#: Whole names that would carry a one-time code ("exit_code" or "status_code" are fine).
_SECRET_NAMES = frozenset({"code", "pin"})
#: Names that contain a part above yet carry only what may be known about a secret: an id, a count.
_NOT_SECRETS = frozenset({"token_id", "recovery_codes_left"})
_MAX_TEXT = 1024
_MAX_ATTRIBUTES = 64

Scalar = str | int | float | bool | None


def is_secret_name(key: str) -> bool:
    """Whether an attribute called `key` would carry a secret (see `_SECRET_PARTS`)."""
    if key in _NOT_SECRETS:
        return False
    if key in _SECRET_NAMES or not _SECRET_WORDS.isdisjoint(key.split("_")):
        return True
    return any(part in key for part in _SECRET_PARTS)


def _text(name: str, value: object, *, allow_empty: bool = False) -> str:
    if not isinstance(value, str) or (not value and not allow_empty) or len(value) > _MAX_TEXT:
        raise ConfigError(f"event {name} must be a string of 1 to {_MAX_TEXT} characters, not {value!r:.80}")
    return value


@dataclass(frozen=True, slots=True)
class Event:
    """One thing that happened; valid once constructed."""

    action: str
    actor: str
    resource: str
    outcome: str
    actor_kind: str = "user"
    origin: str = ""
    attributes: Mapping[str, Scalar] = field(default_factory=dict)
    time: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __post_init__(self) -> None:
        if not isinstance(self.action, str) or not _ACTION.match(self.action):
            raise ConfigError(
                f"event action {self.action!r} is not dotted lower-case words, like 'artifact.read'"
            )
        _text("actor", self.actor)
        _text("resource", self.resource)
        _text("origin", self.origin, allow_empty=True)
        if self.outcome not in OUTCOMES:
            raise ConfigError(f"event outcome {self.outcome!r} is not one of {', '.join(OUTCOMES)}")
        if self.actor_kind not in ACTOR_KINDS:
            raise ConfigError(f"event actor kind {self.actor_kind!r} is not one of {', '.join(ACTOR_KINDS)}")
        if not isinstance(self.time, datetime) or self.time.tzinfo is None:
            raise ConfigError("event time must be a timezone-aware datetime")
        if len(self.attributes) > _MAX_ATTRIBUTES:
            raise ConfigError(f"an event carries at most {_MAX_ATTRIBUTES} attributes")
        for key, value in self.attributes.items():
            if not isinstance(key, str) or not _KEY.match(key):
                raise ConfigError(f"event attribute name {key!r} is not a lower-case identifier")
            if is_secret_name(key):
                raise ConfigError(f"event attribute {key!r} would carry a secret; events never do")
            if isinstance(value, str):
                _text(f"attribute {key}", value, allow_empty=True)
            elif value is not None and not isinstance(value, int | float | bool):
                raise ConfigError(f"event attribute {key!r} must be a string, number, boolean or null")
        object.__setattr__(self, "attributes", dict(sorted(self.attributes.items())))

    def to_dict(self) -> dict[str, Any]:
        return {
            "v": EVENT_FORMAT,
            "time": self.time.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z"),
            "actor": self.actor,
            "actor_kind": self.actor_kind,
            "action": self.action,
            "resource": self.resource,
            "outcome": self.outcome,
            "origin": self.origin,
            "attributes": dict(self.attributes),
        }

    def to_json(self) -> str:
        """Canonical JSON: sorted keys, no spaces, so equal events are equal bytes (what the log hashes)."""
        return canonical_json(self.to_dict()).decode()

    @classmethod
    def from_json(cls, text: str | bytes, *, source: str = "event") -> Event:
        """Parse and check an event sent in its JSON form; `ConfigError` names what is wrong."""
        try:
            doc = json.loads(text)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ConfigError(f"{source}: not JSON ({exc})") from None
        if not isinstance(doc, dict):
            raise ConfigError(f"{source}: an event is a JSON object")
        if doc.get("v") != EVENT_FORMAT:
            raise ConfigError(f"{source}: event format {doc.get('v')!r} is not {EVENT_FORMAT!r}")
        unknown = set(doc) - {
            "v",
            "time",
            "actor",
            "actor_kind",
            "action",
            "resource",
            "outcome",
            "origin",
            "attributes",
        }
        if unknown:
            raise ConfigError(f"{source}: unknown event field(s): {', '.join(sorted(unknown))}")
        try:
            when = datetime.fromisoformat(str(doc.get("time", "")).replace("Z", "+00:00"))
        except ValueError:
            raise ConfigError(f"{source}: event time {doc.get('time')!r} is not an ISO 8601 time") from None
        attributes = doc.get("attributes", {})
        if not isinstance(attributes, dict):
            raise ConfigError(f"{source}: event attributes must be an object")
        try:
            return cls(
                action=doc.get("action"),  # type: ignore[arg-type]  # checked in __post_init__
                actor=doc.get("actor"),  # type: ignore[arg-type]
                resource=doc.get("resource"),  # type: ignore[arg-type]
                outcome=doc.get("outcome"),  # type: ignore[arg-type]
                actor_kind=doc.get("actor_kind", "user"),
                origin=doc.get("origin", ""),
                attributes=attributes,
                time=when,
            )
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc}") from None
