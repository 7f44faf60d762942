"""Rule evaluation over a stream of events, with state bounded by each rule's window.

`Engine.observe(event)` returns the detections the event completes. Rules are indexed by the actions
their selection names, so an event is tested only against rules that could match it. A correlation
keeps, per group, the times of the matching events inside its timespan (and the last few events
themselves, as evidence); older entries are dropped as time moves on, and a group whose window is
empty is forgotten, so memory follows the windows and not the history. A correlation that fires starts
its group afresh: the next detection needs a full new window's worth of events.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pipewarden.events import Event
from pipewarden.monitor._baseline import BaselineState
from pipewarden.monitor._rules import Baseline, Correlation, Rule

__all__ = ["EVIDENCE", "Detection", "Engine"]

#: Events kept as evidence per detection (the latest ones).
EVIDENCE = 20
_SWEEP_EVERY = 4096
#: The group of a rule without a correlation or baseline.
_MATCH_GROUP = ("actor", "resource")
#: How far one event may move the engine's clock (which only decides when idle groups are forgotten):
#: an event dated in the future (a wrong clock, or a forged line) must not expire every window at once.
_SKEW = 300.0


@dataclass(frozen=True, slots=True)
class Detection:
    """A rule's conclusion: which rule, for which group, when, the events behind it, and the numbers."""

    rule: Rule
    group: tuple[tuple[str, str], ...]
    time: float  # the time of the event that completed it (seconds since the epoch)
    events: tuple[Event, ...]
    facts: dict[str, Any] = field(default_factory=dict)


def _field(event: Event, name: str) -> str:
    if name.startswith("attributes."):
        value = event.attributes.get(name[len("attributes.") :])
    else:
        value = getattr(event, name)
    return "" if value is None else str(value)


def _key(event: Event, names: Sequence[str]) -> tuple[tuple[str, str], ...]:
    return tuple((name, _field(event, name)) for name in names)


class _Window:
    """Matching events of one group of one correlation, inside its timespan."""

    __slots__ = ("counts", "evidence", "last", "times", "values")

    def __init__(self, cap: int | None) -> None:
        # event_count needs only the latest `count` times: an older one cannot complete a window the
        # latest ones do not. value_count keeps every time in the window, with its value.
        self.times: deque[float] = deque(maxlen=cap)
        self.values: deque[str] = deque()  # value_count: the counted field's value per time
        self.counts: Counter[str] = Counter()  # value_count: how many times each value is in the window
        self.evidence: deque[tuple[float, Event]] = deque(maxlen=EVIDENCE)
        self.last = 0.0

    def drop_before(self, start: float) -> None:
        times, values, counts = self.times, self.values, self.counts
        while times and times[0] < start:
            times.popleft()
            if values:
                value = values.popleft()
                counts[value] -= 1
                if not counts[value]:
                    del counts[value]
        evidence = self.evidence
        while evidence and evidence[0][0] < start:
            evidence.popleft()


class _Sequence:
    """Progress of one group through a temporal correlation's steps."""

    __slots__ = ("last", "reached")

    def __init__(self, steps: int) -> None:
        self.reached: list[tuple[float, Event] | None] = [None] * steps
        self.last = 0.0


class Engine:
    """Evaluate `rules` over events in (roughly) time order."""

    def __init__(self, rules: Iterable[Rule]) -> None:
        self.rules = tuple(rules)
        self._by_action: dict[str, list[Rule]] = {}
        self._any_action: list[Rule] = []
        for rule in self.rules:
            actions = rule.selection.actions
            if actions is None:
                self._any_action.append(rule)
            else:
                for action in actions:
                    self._by_action.setdefault(action, []).append(rule)
        # Each action's rules with the rules for any action, in the rules' own order.
        self._by_action = {
            action: [rule for rule in self.rules if rule in specific or rule.selection.actions is None]
            for action, specific in self._by_action.items()
        }
        self._windows: dict[str, dict[tuple[tuple[str, str], ...], _Window]] = {}
        self._sequences: dict[str, dict[tuple[tuple[str, str], ...], _Sequence]] = {}
        self.baselines: dict[str, BaselineState] = {
            rule.id: BaselineState(rule.baseline) for rule in self.rules if rule.baseline is not None
        }
        self._seen = 0
        self.now = 0.0

    def candidates(self, event: Event) -> list[Rule]:
        return self._by_action.get(event.action, self._any_action)

    def prime(self, event: Event) -> None:
        """Put `event` into the correlation windows without reporting anything (what a restarted monitor
        does with the events of the last timespan before where it stopped, to rebuild its windows).
        Baselines are not touched: they are saved and restored whole."""
        when = event.time.timestamp()
        self.now = max(self.now, when)
        for rule in self.candidates(event):
            if rule.correlation is None or not rule.selects(event):
                continue
            if rule.correlation.kind == "temporal":
                self._temporal(rule, rule.correlation, event, when)
            else:
                self._count(rule, rule.correlation, event, when)

    def longest_window(self) -> float:
        """The longest correlation timespan in force (seconds), 0 without correlations."""
        return max((rule.correlation.timespan for rule in self.rules if rule.correlation), default=0.0)

    def observe(self, event: Event) -> list[Detection]:
        """The detections `event` completes (none for most events)."""
        when = event.time.timestamp()
        # The clock that expires idle groups moves at most _SKEW past where it was (the first event: past
        # the wall clock): one event dated years ahead cannot make every window look expired.
        limit = (self.now if self.now else time.time()) + _SKEW
        self.now = max(self.now, min(when, limit))
        self._seen += 1
        if self._seen % _SWEEP_EVERY == 0:
            self.sweep()
        found: list[Detection] = []
        for rule in self.candidates(event):
            if not rule.selects(event):
                continue
            detection: Detection | None
            if rule.baseline is not None:
                detection = self._baseline(rule, rule.baseline, event, when)
            elif rule.correlation is None:
                # One alert per actor and resource: a second actor's grant or tamper is a new alert, not
                # a repeat of one somebody has already acknowledged.
                detection = Detection(rule, _key(event, _MATCH_GROUP), when, (event,))
            elif rule.correlation.kind == "temporal":
                detection = self._temporal(rule, rule.correlation, event, when)
            else:
                detection = self._count(rule, rule.correlation, event, when)
            if detection is not None:
                found.append(detection)
        return found

    def learn(self, event: Event) -> None:
        """Add `event` to every baseline it belongs to without judging it (warm start from history)."""
        for rule in self.candidates(event):
            if rule.baseline is not None and rule.selects(event):
                self.baselines[rule.id].learn(_baseline_key(rule.baseline, event), event)

    def _baseline(self, rule: Rule, spec: Baseline, event: Event, when: float) -> Detection | None:
        judgement = self.baselines[rule.id].judge(_baseline_key(spec, event), event)
        if not judgement.unusual:
            return None
        return Detection(
            rule, _key(event, spec.group_by), when, (event,), {"check": spec.check, **judgement.facts}
        )

    def _count(self, rule: Rule, spec: Correlation, event: Event, when: float) -> Detection | None:
        key = _key(event, spec.group_by)
        windows = self._windows.setdefault(rule.id, {})
        window = windows.get(key)
        if window is None:
            window = windows[key] = _Window(spec.count if spec.kind == "event_count" else None)
        window.drop_before(when - spec.timespan)
        window.times.append(when)
        window.evidence.append((when, event))
        window.last = when
        if spec.kind == "event_count":
            if len(window.times) < spec.count:
                return None
            facts: dict[str, Any] = {"count": len(window.times), "timespan_seconds": spec.timespan}
        else:
            value = _field(event, spec.field)
            window.values.append(value)
            window.counts[value] += 1
            if len(window.counts) < spec.count:
                return None
            facts = {
                "distinct": len(window.counts),
                "field": spec.field,
                "values": sorted(window.counts)[:EVIDENCE],
                "count": len(window.times),
                "timespan_seconds": spec.timespan,
            }
        evidence = tuple(e for _, e in window.evidence)
        del windows[key]  # a fresh window for the next detection
        return Detection(rule, key, when, evidence, facts)

    def _temporal(self, rule: Rule, spec: Correlation, event: Event, when: float) -> Detection | None:
        key = _key(event, spec.group_by)
        sequences = self._sequences.setdefault(rule.id, {})
        progress = sequences.get(key)
        if progress is None:
            progress = sequences[key] = _Sequence(len(spec.steps))
        progress.last = when
        reached = progress.reached
        first = reached[0]
        if first is not None and when - first[0] > spec.timespan:
            reached[:] = [None] * len(reached)
            first = None
        # Later steps first, so that one event does not count as two steps at once.
        for index in range(len(spec.steps) - 1, -1, -1):
            _, selection = spec.steps[index]
            if not selection.matches(event):
                continue
            if index == 0:
                # A new first step starts the sequence again: later steps of the old one do not count.
                reached[:] = [(when, event)] + [None] * (len(reached) - 1)
                break
            if reached[index - 1] is None or first is None:
                continue
            if any(_field(event, name) == _field(first[1], name) for name in spec.differ):
                continue
            reached[index] = (when, event)
            if index == len(spec.steps) - 1:
                events = tuple(step[1] for step in reached if step is not None)
                del sequences[key]
                return Detection(
                    rule,
                    key,
                    when,
                    events,
                    {
                        "steps": [name for name, _ in spec.steps],
                        "seconds": round(when - first[0], 3),
                        **{
                            f"first_{name.replace('attributes.', '')}": _field(first[1], name)
                            for name in spec.differ
                        },
                    },
                )
            break
        return None

    def sweep(self) -> None:
        """Forget groups whose window has passed (called every few thousand events)."""
        for rule in self.rules:
            spec = rule.correlation
            if spec is None:
                continue
            start = self.now - spec.timespan
            windows = self._windows.get(rule.id)
            if windows:
                for key in [k for k, w in windows.items() if w.last < start]:
                    del windows[key]
            sequences = self._sequences.get(rule.id)
            if sequences:
                for key in [k for k, s in sequences.items() if s.last < start]:
                    del sequences[key]

    def groups(self) -> int:
        """Groups held in windows now (what memory follows)."""
        return sum(len(w) for w in self._windows.values()) + sum(len(s) for s in self._sequences.values())


def _baseline_key(spec: Baseline, event: Event) -> str:
    return "\x1f".join(_field(event, name) for name in spec.group_by)
