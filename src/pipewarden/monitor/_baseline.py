"""Baselines: each principal's own history, learned from its events, against which a new event is judged.

Four checks, each kept per rule and per group (by default the actor):

- ``new_origin``: the origins the principal has acted from. Once it has `min_history` events, an origin
  never seen before is a detection (once; the origin then joins the history).
- ``new_action``: the actions the principal has done. Once it has `min_history` events, an action it
  never did before is a detection (once). A service account does the same few things; one that starts
  granting roles or reading the audit log is worth a look.
- ``unusual_hour``: how the principal's events fall over the 24 hours of the day (UTC). Once it has
  `min_history` events, an hour that held at most `max_share` of them is unusual.
- ``volume``: the principal's total per day (of an attribute such as ``size``, or of events). Once
  `min_days` earlier days are known, a day whose running total passes the median day plus `spread`
  robust deviations (1.4826 x the median absolute deviation), and at least `factor` times the median,
  is a detection (once per day). Median and deviation are robust: one earlier burst moves neither.

Memory is bounded per group: at most `MAX_ORIGINS` origins (the least used forgotten first) and
`MAX_DAYS` days. The state is a plain dictionary (`state()` / `restore()`), so it can be kept and
reloaded, and it can be warmed from recorded events with `learn()`.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from typing import Any

from pipewarden.events import Event
from pipewarden.monitor._rules import Baseline

__all__ = ["MAX_DAYS", "MAX_ORIGINS", "BaselineState", "Judgement"]

MAX_ORIGINS = 256
MAX_DAYS = 60
_DAY = 86400.0


@dataclass(frozen=True, slots=True)
class Judgement:
    """What a baseline check concluded about one event: whether it stands out, and the numbers why."""

    unusual: bool
    facts: dict[str, Any] = field(default_factory=dict)


def _amount(event: Event, name: str) -> float:
    if not name:
        return 1.0
    value = event.attributes.get(name.removeprefix("attributes."))
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return 0.0  # an amount that is not a finite number adds nothing (NaN would blind the day's total)
    return max(float(value), 0.0)


class BaselineState:
    """The history of one baseline rule, per group."""

    def __init__(self, spec: Baseline) -> None:
        self.spec = spec
        self._groups: dict[str, dict[str, Any]] = {}

    def __len__(self) -> int:
        return len(self._groups)

    def _group(self, key: str) -> dict[str, Any]:
        group = self._groups.get(key)
        if group is None:
            group = {
                "total": 0,
                "origins": {},
                "actions": {},
                "hours": [0] * 24,
                "days": {},
                "fired_day": None,
            }
            self._groups[key] = group
        return group

    def judge(self, key: str, event: Event, *, learn: bool = True) -> Judgement:
        """Judge `event` against the group's history so far, then (with `learn`) add it to the history."""
        group = self._group(key)
        check = self.spec.check
        if check == "new_origin":
            result = self._new_origin(group, event)
        elif check == "new_action":
            result = self._new_action(group, event)
        elif check == "unusual_hour":
            result = self._unusual_hour(group, event)
        else:
            result = self._volume(group, event)
        if learn:
            self.learn(key, event)
        return result

    def learn(self, key: str, event: Event) -> None:
        """Add `event` to the group's history without judging it (warming up from recorded events)."""
        group = self._group(key)
        group["total"] += 1
        origins: dict[str, int] = group["origins"]
        origins[event.origin] = origins.get(event.origin, 0) + 1
        if len(origins) > MAX_ORIGINS:
            del origins[min(origins, key=lambda o: origins[o])]
        actions: dict[str, int] = group.setdefault("actions", {})
        actions[event.action] = actions.get(event.action, 0) + 1
        group["hours"][event.time.hour] += 1
        day = str(int(event.time.timestamp() // _DAY))
        days: dict[str, float] = group["days"]
        days[day] = days.get(day, 0.0) + _amount(event, self.spec.amount)
        if len(days) > MAX_DAYS:
            del days[min(days, key=int)]

    def _new_origin(self, group: dict[str, Any], event: Event) -> Judgement:
        known = event.origin in group["origins"]
        ready = group["total"] >= self.spec.min_history
        return Judgement(
            unusual=ready and not known,
            facts={"origin": event.origin, "known_origins": len(group["origins"]), "history": group["total"]},
        )

    def _new_action(self, group: dict[str, Any], event: Event) -> Judgement:
        actions = group.setdefault("actions", {})
        ready = group["total"] >= self.spec.min_history
        return Judgement(
            unusual=ready and event.action not in actions,
            facts={
                "action": event.action,
                "usual_actions": ", ".join(sorted(actions))[:512],
                "history": group["total"],
            },
        )

    def _unusual_hour(self, group: dict[str, Any], event: Event) -> Judgement:
        total = group["total"]
        share = group["hours"][event.time.hour] / total if total else 0.0
        usual = [h for h in range(24) if total and group["hours"][h] / total > self.spec.max_share]
        return Judgement(
            unusual=total >= self.spec.min_history and share <= self.spec.max_share,
            facts={
                "hour_utc": event.time.hour,
                "share_of_history": round(share, 5),
                "usual_hours_utc": _ranges(usual),
                "history": total,
            },
        )

    def _volume(self, group: dict[str, Any], event: Event) -> Judgement:
        day = int(event.time.timestamp() // _DAY)
        days: dict[str, float] = group["days"]
        earlier = [amount for d, amount in days.items() if int(d) < day]
        today = days.get(str(day), 0.0) + _amount(event, self.spec.amount)
        facts: dict[str, Any] = {"today": today, "days_known": len(earlier)}
        if len(earlier) < self.spec.min_days or group["fired_day"] == day:
            return Judgement(unusual=False, facts=facts)
        median = statistics.median(earlier)
        deviation = 1.4826 * statistics.median(abs(a - median) for a in earlier)
        # A principal whose days are all alike has no spread: a tenth of its median stands in for it.
        limit = max(median + self.spec.spread * max(deviation, 0.1 * median), self.spec.factor * median)
        facts.update(usual_day=median, limit=round(limit, 3))
        if today > limit:
            group["fired_day"] = day
            return Judgement(unusual=True, facts=facts)
        return Judgement(unusual=False, facts=facts)

    def state(self) -> dict[str, Any]:
        return {"check": self.spec.check, "groups": self._groups}

    def restore(self, state: dict[str, Any]) -> None:
        if state.get("check") != self.spec.check:
            return  # the rule changed its check: its old history does not apply
        self._groups = {str(k): dict(v) for k, v in dict(state.get("groups", {})).items()}


def _ranges(hours: list[int]) -> str:
    """``[8, 9, 10, 14]`` as ``"08-10, 14"``."""
    parts: list[str] = []
    start = previous = None
    for hour in hours:
        if start is None:
            start = previous = hour
        elif hour == previous + 1:  # type: ignore[operator]
            previous = hour
        else:
            parts.append(f"{start:02d}" if start == previous else f"{start:02d}-{previous:02d}")
            start = previous = hour
    if start is not None:
        parts.append(f"{start:02d}" if start == previous else f"{start:02d}-{previous:02d}")
    return ", ".join(parts)
