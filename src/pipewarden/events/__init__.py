"""Events: one shape for everything that happens, in a versioned JSON form.

>>> from pipewarden.events import Event
>>> e = Event(action="artifact.read", actor="alice", resource="artifact:churn@3", outcome="allowed")
>>> Event.from_json(e.to_json()) == e
"""

from __future__ import annotations

from pipewarden.events._event import ACTOR_KINDS, EVENT_FORMAT, OUTCOMES, Event

__all__ = ["ACTOR_KINDS", "EVENT_FORMAT", "OUTCOMES", "Event"]
