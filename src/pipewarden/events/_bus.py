"""The one path every event takes: first into the audit log (durably), then to each subscriber.

`Events.emit` returns once the event is committed to the audit log, so an
event whose `emit` returned survives a crash. Emits from several threads at
once share one commit (the audit log's group commit) and keep that promise
each: every one returns once its own event is durable, and raises if the
commit that carried it failed. Subscribers (the monitor, a test
collector, a forwarder) see events after that; one that raises is logged and
skipped, and never stops the event reaching the log or the others.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Protocol

from pipewarden.events._event import Event

__all__ = ["EventLog", "Events", "Subscriber"]

logger = logging.getLogger(__name__)

Subscriber = Callable[[Event], None]


class EventLog(Protocol):
    """Where events are kept: `append` returns the event's position once it is durable."""

    def append(self, event: Event) -> int: ...


class Events:
    """The event path of one deployment: an audit log, and subscribers that see what it accepted.

    >>> events = Events(workspace.audit_log())
    >>> events.emit(Event(action="artifact.read", actor="ada", resource="artifact:churn", outcome="allowed"))
    """

    def __init__(self, log: EventLog, *, subscribers: tuple[Subscriber, ...] = ()) -> None:
        self._log = log
        self._subscribers: list[Subscriber] = list(subscribers)
        self._lock = threading.Lock()

    def subscribe(self, subscriber: Subscriber) -> None:
        with self._lock:
            self._subscribers.append(subscriber)

    def unsubscribe(self, subscriber: Subscriber) -> None:
        with self._lock:
            self._subscribers.remove(subscriber)

    def emit(self, event: Event) -> int:
        """Append `event` to the audit log, then hand it to every subscriber; returns its log position.

        An error from the log propagates (an action whose record cannot be kept
        is not reported as done); an error in a subscriber does not.
        """
        seq = self._log.append(event)
        with self._lock:
            subscribers = tuple(self._subscribers)
        for subscriber in subscribers:
            try:
                subscriber(event)
            except Exception:
                logger.exception(
                    "event subscriber %r failed on %s (the event is in the audit log)",
                    subscriber,
                    event.action,
                )
        return seq
