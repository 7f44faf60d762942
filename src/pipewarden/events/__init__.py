"""Events: one shape for everything that happens, in a versioned JSON form, and one path for them.

>>> from pipewarden.events import Event, Events
>>> e = Event(action="artifact.read", actor="alice", resource="artifact:churn@3", outcome="allowed")
>>> Event.from_json(e.to_json()) == e
>>> Events(workspace.audit_log()).emit(e)      # the audit log first, then subscribers
"""

from __future__ import annotations

from pipewarden.events._acting import Acting, Actor, Authorizer, LocalOperator, Verdict
from pipewarden.events._bus import EventLog, Events, Subscriber
from pipewarden.events._event import ACTOR_KINDS, EVENT_FORMAT, OUTCOMES, Event

__all__ = [
    "ACTOR_KINDS",
    "EVENT_FORMAT",
    "OUTCOMES",
    "Acting",
    "Actor",
    "Authorizer",
    "Event",
    "EventLog",
    "Events",
    "LocalOperator",
    "Subscriber",
    "Verdict",
]
