"""Events: valid once made, a stable canonical JSON form, and never a secret inside."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipewarden.errors import ConfigError
from pipewarden.events import Event
from pipewarden.events._event import is_secret_name

WHEN = datetime(2026, 11, 26, 6, 33, 56, 654088, tzinfo=UTC)


def event(**changes: object) -> Event:
    fields: dict[str, object] = {
        "action": "artifact.read",
        "actor": "alice",
        "resource": "artifact:churn@3",
        "outcome": "allowed",
        "origin": "10.0.0.7",
        "attributes": {"size": 123, "sha256": "ab" * 32},
        "time": WHEN,
    }
    fields.update(changes)
    return Event(**fields)  # type: ignore[arg-type]


def test_the_json_form_is_versioned_canonical_and_round_trips() -> None:
    e = event()
    assert json.loads(e.to_json()) == {
        "v": "pipewarden.event/1",
        "time": "2026-11-26T06:33:56.654088Z",
        "actor": "alice",
        "actor_kind": "user",
        "action": "artifact.read",
        "resource": "artifact:churn@3",
        "outcome": "allowed",
        "origin": "10.0.0.7",
        "attributes": {"sha256": "ab" * 32, "size": 123},
    }
    assert Event.from_json(e.to_json()) == e
    # Attribute order never changes the bytes.
    assert event(attributes={"b": 1, "a": 2}).to_json() == event(attributes={"a": 2, "b": 1}).to_json()
    # Another time zone for the same instant gives the same bytes.
    assert event(time=WHEN.astimezone(timezone(timedelta(hours=2)))).to_json() == e.to_json()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"action": "Read"}, "dotted lower-case"),
        ({"action": "artifact"}, "dotted lower-case"),
        ({"outcome": "maybe"}, "outcome 'maybe'"),
        ({"actor_kind": "robot"}, "actor kind"),
        ({"actor": ""}, "actor must be a string"),
        ({"time": datetime(2026, 1, 1)}, "timezone-aware"),  # the naive time is the point
        ({"attributes": {"password": "hunter2"}}, "would carry a secret"),
        ({"attributes": {"recovery_code": "x"}}, "would carry a secret"),
        ({"attributes": {"Bad-Key": 1}}, "lower-case identifier"),
        ({"attributes": {"nested": {"a": 1}}}, "string, number, boolean or null"),
        ({"resource": "x" * 2000}, "1 to 1024 characters"),
    ],
)
def test_invalid_events_are_refused_with_what_is_wrong(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        event(**changes)


@pytest.mark.parametrize(
    "name",
    [
        # Variants of a secret's name, not only the exact words: each would carry one.
        "new_password",
        "old_password",
        "password_hash",
        "passwd",
        "db_passphrase",
        "client_secret",
        "totp_secret",
        "token",
        "session_token",
        "api_token",
        "refresh_token",
        "private_key",
        "signing_private_key",
        "api_key",
        "recovery_code",
        "recovery_codes",
        "otp",
        "totp_code",
        "otp_value",
        "code",
    ],
)
def test_attribute_names_that_would_carry_a_secret_are_refused(name: str) -> None:
    with pytest.raises(ConfigError, match=f"event attribute '{name}' would carry a secret"):
        event(attributes={name: "value"})


@pytest.mark.parametrize(
    "name",
    [
        # What the event emitters record about credentials: ids and counts, never the secret.
        "token_id",
        "recovery_codes_left",
        "session",
        "sessions_revoked",
        "factor",
        "mfa",
        "kek",
        "keyid",
        "kind",
        "scopes",
        # Whole words only for one-time codes: these are not one.
        "exit_code",
        "status_code",
        "footprint",
        "stopped",
    ],
)
def test_attribute_names_about_credentials_but_not_secrets_pass(name: str) -> None:
    assert event(attributes={name: "value"}).attributes == {name: "value"}


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ("not json", "stage-7: not JSON"),
        ("[]", "is a JSON object"),
        ('{"v": "pipewarden.event/2"}', "format 'pipewarden.event/2'"),
        ('{"v": "pipewarden.event/1", "extra": 1}', "unknown event field"),
        ('{"v": "pipewarden.event/1", "time": "yesterday"}', "not an ISO 8601 time"),
    ],
)
def test_events_sent_in_json_are_checked_and_the_source_named(doc: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Event.from_json(doc, source="stage-7")


@given(
    action=st.from_regex(r"\A[a-z][a-z0-9_]{0,8}(\.[a-z][a-z0-9_]{0,8}){1,3}\Z"),
    actor=st.text(min_size=1, max_size=40),
    outcome=st.sampled_from(["allowed", "denied", "error"]),
    attributes=st.dictionaries(
        st.from_regex(r"\A[a-z][a-z0-9_]{0,10}\Z").filter(lambda k: not is_secret_name(k)),
        st.none() | st.booleans() | st.integers() | st.text(max_size=20),
        max_size=5,
    ),
)
def test_any_valid_event_round_trips(
    action: str, actor: str, outcome: str, attributes: dict[str, object]
) -> None:
    e = event(action=action, actor=actor, outcome=outcome, attributes=attributes)
    assert Event.from_json(e.to_json()) == e
