"""An in-memory EventLog (the events part's protocol: `append(event) -> position`) for tests that look at
the events an action emitted."""

from __future__ import annotations

from pipewarden.events import Event

__all__ = ["MemoryLog"]


class MemoryLog:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def append(self, event: Event) -> int:
        self.events.append(event)
        return len(self.events)
