"""The monitor on a simulated ML platform: attacks detected, time to detect, false alerts per day, speed.

A seeded simulator writes the events a platform of people and services would: 30 people with their own
working hours (their time zones spread them over the UTC day), weekdays mostly, one or two usual
origins, logins with the odd mistyped password or one-time code, artifact reads and writes, data checks,
tokens made and used, now and then a trip (a new origin), a late evening, a big download day, and a
role change a week; 12 services on schedules (training pipelines, batch scoring) from cluster
addresses; 4 inference clients calling models around the clock, a few rows flagged now and then. The
first `WARM_DAYS` days warm the baselines (as `monitor run` does from the audit log); the next `DAYS`
days are evaluated, with attacks injected at random times:

- one per built-in rule (brute force, spraying, second-factor guessing, a login from a new origin, work
  at 03:00, a service reading every model, a role granted, a token leaked as it was made, a tampered
  artifact, a malicious model scanned and refused on upload, a run of poisoned batches, adversarial and
  refused inference traffic, an extraction campaign, a pipeline account granting a role, an altered
  audit log);
- three campaigns of several steps: credential stuffing -> login from a new origin -> token made and
  used elsewhere -> bulk download; an insider granting themself a role at night and downloading; a
  poisoning run (blocked batches, then a malicious model offered).

An attack counts as detected when a detection of a rule it is meant to trip holds one of its events;
time to detect is from its first event to that detection. A false alert is an alert (a new
fingerprint, as the alert book opens them) whose evidence holds no attack event.

Speed: the engine alone over every event, on one core (`Engine.observe`, no database), and memory:
groups held in windows and the peak traced memory, for half the days and for all of them (bounded by
the windows, it should not grow with the history).

    python benchmarks/monitor/simulate.py             # about a minute
    python benchmarks/monitor/simulate.py --days 60   # a longer run
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import tracemalloc
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from pipewarden.events import Event
from pipewarden.monitor import Engine, builtin_rules, fingerprint

SEED = 7
DAYS = 30
WARM_DAYS = 14
START = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday
PEOPLE = 30
SERVICES = 12
CLIENTS = 4
MODELS = [f"artifact:models/m{i}" for i in range(40)]
DATASETS = [f"artifact:data/d{i}" for i in range(25)]


@dataclass
class Sim:
    rng: np.random.Generator
    events: list[tuple[datetime, Event, str]] = field(default_factory=list)  # (time, event, attack id or "")

    def add(
        self,
        when: datetime,
        action: str,
        actor: str,
        resource: str,
        *,
        outcome: str = "allowed",
        origin: str = "",
        kind: str = "user",
        attack: str = "",
        **attributes: Any,
    ) -> None:
        self.events.append(
            (
                when,
                Event(
                    action=action,
                    actor=actor,
                    actor_kind=kind,
                    resource=resource,
                    outcome=outcome,
                    origin=origin,
                    attributes=attributes,
                    time=when,
                ),
                attack,
            )
        )


# --- the platform's ordinary life ----------------------------------------------------------------------


def people(sim: Sim, days: int) -> None:
    rng = sim.rng
    for p in range(PEOPLE):
        name = f"person{p}"
        start_hour = int(rng.integers(0, 24))  # their 09:00 in UTC: time zones spread people out
        home = [f"10.{p}.0.{i + 1}" for i in range(int(rng.integers(1, 3)))]
        reads = float(rng.uniform(8, 30))
        tokens = 0
        for day in range(days):
            date = START + timedelta(days=day)
            weekend = date.weekday() >= 5
            if weekend and rng.random() > 0.08:
                continue
            trip = rng.random() < 0.004  # now and then, on the road
            late = rng.random() < 0.01  # a late evening
            origin = f"192.0.2.{p}" if trip else home[int(rng.integers(0, len(home)))]
            hours = 9 + (3 if late else 0)
            begin = date + timedelta(hours=start_hour) + timedelta(minutes=float(rng.uniform(-45, 45)))
            for _ in range(int(rng.integers(1, 3))):
                at = begin + timedelta(minutes=float(rng.uniform(0, hours * 60)))
                if rng.random() < 0.05:  # a mistyped password, then the right one
                    sim.add(
                        at - timedelta(seconds=20),
                        "auth.login",
                        f"unknown:{name}",
                        f"user:{name}",
                        outcome="denied",
                        origin=origin,
                        kind="anonymous",
                        reason="credentials",
                    )
                if rng.random() < 0.02:
                    sim.add(
                        at - timedelta(seconds=10),
                        "auth.login",
                        name,
                        f"user:{name}",
                        outcome="denied",
                        origin=origin,
                        reason="second_factor",
                    )
                sim.add(at, "auth.login", name, f"user:{name}", origin=origin, mfa=True)
            big_day = rng.random() < 0.01
            for _ in range(int(rng.poisson(reads * (2.0 if big_day else 1.0)))):
                at = begin + timedelta(minutes=float(rng.uniform(0, hours * 60)))
                sim.add(
                    at,
                    "artifact.read",
                    name,
                    str(rng.choice(MODELS + DATASETS)),
                    origin=origin,
                    size=int(rng.lognormal(15, 1.0)),
                )
            for _ in range(int(rng.poisson(2))):
                at = begin + timedelta(minutes=float(rng.uniform(0, hours * 60)))
                sim.add(
                    at,
                    "artifact.write",
                    name,
                    str(rng.choice(MODELS)),
                    origin=origin,
                    size=int(rng.lognormal(16, 1.0)),
                    scan_max_severity="none",
                )
            for _ in range(int(rng.poisson(1))):
                at = begin + timedelta(minutes=float(rng.uniform(0, hours * 60)))
                sim.add(
                    at,
                    "data.check",
                    name,
                    "data:batches/daily.csv",
                    origin=origin,
                    rows=int(rng.integers(1000, 50000)),
                    blocked=bool(rng.random() < 0.03),
                )
            if rng.random() < 0.03:  # a token for a script, used from the same machine
                tokens += 1
                token = f"{name}-t{tokens}"
                at = begin + timedelta(minutes=float(rng.uniform(0, hours * 60)))
                sim.add(at, "token.create", name, f"token:{name}/{token}", origin=origin, token_id=token)
                for k in range(int(rng.integers(1, 6))):
                    sim.add(
                        at + timedelta(minutes=5 * (k + 1)),
                        "artifact.read",
                        name,
                        str(rng.choice(MODELS)),
                        origin=origin,
                        token_id=token,
                        size=int(rng.lognormal(15, 1.0)),
                    )
    # The admins' role changes, about one a week, in office hours.
    for day in range(0, days, 7):
        at = START + timedelta(days=day + int(rng.integers(0, 5)), hours=14)
        sim.add(
            at,
            "role.grant",
            "person0",
            "role:reader",
            origin="10.0.0.1",
            subject=f"person{int(rng.integers(1, PEOPLE))}",
            subject_kind="user",
            scope="project:churn",
        )


def services(sim: Sim, days: int) -> None:
    rng = sim.rng
    for s in range(SERVICES):
        name = f"svc-pipeline{s}"
        origin = f"10.200.0.{s + 1}"
        every = [1, 2, 4, 6, 12, 24][s % 6]
        for day in range(days):
            for hour in range(0, 24, every):
                at = START + timedelta(days=day, hours=hour, minutes=float(rng.uniform(0, 10)))
                for k in range(int(rng.integers(2, 6))):
                    sim.add(
                        at + timedelta(seconds=k * 7),
                        "artifact.read",
                        name,
                        str(rng.choice(DATASETS)),
                        origin=origin,
                        kind="service",
                        size=int(rng.lognormal(17, 0.5)),
                    )
                sim.add(
                    at + timedelta(minutes=5),
                    "data.screen",
                    name,
                    "data:batches/train.csv",
                    origin=origin,
                    kind="service",
                    rows=20000,
                    flagged=int(rng.poisson(30)),
                    blocked=False,
                )
                sim.add(
                    at + timedelta(minutes=9),
                    "artifact.write",
                    name,
                    str(rng.choice(MODELS)),
                    origin=origin,
                    kind="service",
                    size=int(rng.lognormal(17, 0.5)),
                    scan_max_severity="none",
                )
    for c in range(CLIENTS):
        name = f"svc-frontend{c}"
        for day in range(days):
            calls = int(rng.poisson(900))
            for t in np.sort(rng.uniform(0, 86400, calls)):
                at = START + timedelta(days=day, seconds=float(t))
                flagged = int(rng.random() < 0.004)
                sim.add(
                    at,
                    "model.predict",
                    name,
                    "model:churn/scorer",
                    origin=f"10.100.0.{c + 1}",
                    kind="service",
                    caller=f"client{c}",
                    rows=16,
                    flagged=flagged,
                    valid=16 - flagged,
                    extraction="valid",
                )


# --- attacks --------------------------------------------------------------------------------------------


@dataclass
class Attack:
    id: str
    rules: tuple[str, ...]
    start: datetime


def attacks(sim: Sim, first_day: int, days: int) -> list[Attack]:
    rng = sim.rng
    made: list[Attack] = []

    def when() -> datetime:
        return START + timedelta(days=first_day + float(rng.uniform(0.5, days - 1)))

    def attack(name: str, rules: tuple[str, ...]) -> tuple[str, datetime]:
        at = when()
        made.append(Attack(name, rules, at))
        return name, at

    a, t = attack("brute force", ("PW-MON-101",))
    for i in range(15):
        sim.add(
            t + timedelta(seconds=6 * i),
            "auth.login",
            "unknown:person3",
            "user:person3",
            outcome="denied",
            origin="203.0.113.66",
            kind="anonymous",
            reason="credentials",
            attack=a,
        )
    a, t = attack("password spraying", ("PW-MON-102",))
    for i in range(12):
        sim.add(
            t + timedelta(seconds=40 * i),
            "auth.login",
            f"unknown:person{i}",
            f"user:person{i}",
            outcome="denied",
            origin="203.0.113.77",
            kind="anonymous",
            reason="credentials",
            attack=a,
        )
    a, t = attack("second-factor guessing", ("PW-MON-103",))
    for i in range(6):
        sim.add(
            t + timedelta(seconds=20 * i),
            "auth.login",
            "person4",
            "user:person4",
            outcome="denied",
            origin="203.0.113.88",
            reason="second_factor",
            attack=a,
        )
    a, t = attack("login from a new origin", ("PW-MON-104",))
    sim.add(t, "auth.login", "person5", "user:person5", origin="198.51.100.5", mfa=True, attack=a)
    a, t = attack("work at 03:00", ("PW-MON-105",))
    victim = "person6"
    usual = [e for (_, e, _) in sim.events if e.actor == victim and e.action == "artifact.read"]
    hours = defaultdict(int)
    for e in usual:
        hours[e.time.hour] += 1
    quiet = min(range(24), key=lambda h: (hours[h], h))
    at = t.replace(hour=quiet, minute=17)
    made[-1].start = at
    sim.add(at, "artifact.read", victim, MODELS[0], origin="10.6.0.1", size=3_000_000, attack=a)
    a, t = attack("a service reads every model", ("PW-MON-106", "PW-MON-118"))
    for i, model in enumerate(MODELS * 3):
        sim.add(
            t + timedelta(seconds=10 * i),
            "artifact.read",
            "svc-pipeline2",
            model,
            origin="10.200.0.3",
            kind="service",
            size=400_000_000,
            attack=a,
        )
    a, t = attack("role granted outside any change", ("PW-MON-107",))
    sim.add(
        t,
        "role.grant",
        "person7",
        "role:admin",
        origin="10.7.0.1",
        subject="person7",
        subject_kind="user",
        scope="*",
        attack=a,
    )
    a, t = attack("token leaked as it was made", ("PW-MON-108",))
    sim.add(
        t,
        "token.create",
        "person8",
        "token:person8/leak",
        origin="10.8.0.1",
        **{"token_id": "leak"},
        attack=a,
    )
    sim.add(
        t + timedelta(minutes=12),
        "artifact.read",
        "person8",
        MODELS[3],
        origin="203.0.113.99",
        **{"token_id": "leak"},
        size=2_000_000,
        attack=a,
    )
    a, t = attack("tampered artifact", ("PW-MON-109",))
    sim.add(
        t,
        "artifact.read",
        "svc-pipeline1",
        MODELS[5],
        outcome="error",
        origin="10.200.0.2",
        kind="service",
        reason="integrity",
        attack=a,
    )
    a, t = attack("malicious model scanned", ("PW-MON-110",))
    sim.add(
        t, "scan.run", "person9", "scan:models/m9.pkl", origin="10.9.0.1", blocked=True, findings=3, attack=a
    )
    a, t = attack("malicious model uploaded", ("PW-MON-111",))
    sim.add(
        t,
        "artifact.write",
        "person9",
        MODELS[9],
        outcome="denied",
        origin="10.9.0.1",
        reason="scan",
        attack=a,
    )
    a, t = attack("poisoned batches", ("PW-MON-112",))
    for i in range(4):
        sim.add(
            t + timedelta(minutes=9 * i),
            "data.check",
            "person10",
            "data:batches/daily.csv",
            origin="10.10.0.1",
            rows=5000,
            blocked=True,
            attack=a,
        )
    a, t = attack("adversarial traffic", ("PW-MON-113",))
    for i in range(30):
        sim.add(
            t + timedelta(seconds=15 * i),
            "model.predict",
            "svc-frontend1",
            "model:churn/scorer",
            origin="10.100.0.2",
            kind="service",
            caller="client-x",
            rows=16,
            flagged=9,
            attack=a,
        )
    a, t = attack("refused inference traffic", ("PW-MON-114",))
    for i in range(14):
        sim.add(
            t + timedelta(seconds=30 * i),
            "model.predict",
            "svc-frontend2",
            "model:churn/scorer",
            outcome="denied",
            origin="10.100.0.3",
            kind="service",
            caller="client-y",
            rows=16,
            refused=16,
            attack=a,
        )
    a, t = attack("extraction campaign", ("PW-MON-115",))
    sim.add(
        t,
        "model.predict",
        "svc-frontend3",
        "model:churn/scorer",
        origin="10.100.0.4",
        kind="service",
        caller="client-z",
        rows=1,
        extraction="suspected_extraction",
        attack=a,
    )
    a, t = attack("a pipeline account grants a role", ("PW-MON-117", "PW-MON-107"))
    sim.add(
        t,
        "role.grant",
        "svc-pipeline5",
        "role:admin",
        origin="10.200.0.6",
        kind="service",
        subject="svc-pipeline5",
        subject_kind="service",
        scope="*",
        attack=a,
    )
    a, t = attack("audit log altered", ("PW-MON-116",))
    sim.add(
        t,
        "audit.verify",
        "person0",
        "audit:log",
        outcome="error",
        origin="10.0.0.1",
        reason="integrity",
        attack=a,
    )

    # Campaign 1: credential stuffing -> a login from a new origin -> a token -> used elsewhere -> bulk
    # download.
    a, t = attack(
        "campaign: stuffing to exfiltration",
        ("PW-MON-101", "PW-MON-104", "PW-MON-108", "PW-MON-106", "PW-MON-118"),
    )
    for i in range(12):
        sim.add(
            t + timedelta(seconds=5 * i),
            "auth.login",
            "unknown:person11",
            "user:person11",
            outcome="denied",
            origin="203.0.113.11",
            kind="anonymous",
            reason="credentials",
            attack=a,
        )
    t2 = t + timedelta(minutes=3)
    sim.add(t2, "auth.login", "person11", "user:person11", origin="203.0.113.11", mfa=True, attack=a)
    sim.add(
        t2 + timedelta(minutes=1),
        "token.create",
        "person11",
        "token:person11/x",
        origin="203.0.113.11",
        **{"token_id": "x"},
        attack=a,
    )
    for i, model in enumerate(MODELS):
        sim.add(
            t2 + timedelta(minutes=5, seconds=3 * i),
            "artifact.read",
            "person11",
            model,
            origin="198.51.100.11",
            **{"token_id": "x"},
            size=300_000_000,
            attack=a,
        )
    # Campaign 2: an insider grants themself a role at night and downloads.
    a, t = attack("campaign: insider at night", ("PW-MON-107", "PW-MON-105", "PW-MON-106", "PW-MON-118"))
    victim = "person12"
    hours = defaultdict(int)
    for _, e, _ in sim.events:
        if e.actor == victim:
            hours[e.time.hour] += 1
    quiet = min(range(24), key=lambda h: (hours[h], h))
    at = t.replace(hour=quiet, minute=5)
    made[-1].start = at
    sim.add(
        at,
        "role.grant",
        victim,
        "role:admin",
        origin="10.12.0.1",
        subject=victim,
        subject_kind="user",
        scope="project:*",
        attack=a,
    )
    for i, model in enumerate(MODELS + DATASETS):
        sim.add(
            at + timedelta(minutes=2, seconds=5 * i),
            "artifact.read",
            victim,
            model,
            origin="10.12.0.1",
            size=250_000_000,
            attack=a,
        )
    # Campaign 3: poisoning: batches blocked, then a malicious model offered.
    a, t = attack("campaign: poisoning", ("PW-MON-112", "PW-MON-110", "PW-MON-111"))
    for i in range(3):
        sim.add(
            t + timedelta(minutes=10 * i),
            "data.check",
            "svc-pipeline4",
            "data:batches/train.csv",
            origin="10.200.0.5",
            kind="service",
            rows=9000,
            blocked=True,
            attack=a,
        )
    sim.add(
        t + timedelta(minutes=40),
        "scan.run",
        "svc-pipeline4",
        "scan:models/m4.pt",
        origin="10.200.0.5",
        kind="service",
        blocked=True,
        findings=1,
        attack=a,
    )
    sim.add(
        t + timedelta(minutes=41),
        "artifact.write",
        "svc-pipeline4",
        MODELS[4],
        outcome="denied",
        origin="10.200.0.5",
        kind="service",
        reason="scan",
        attack=a,
    )
    return made


# --- evaluation -------------------------------------------------------------------------------------------


def build(days: int) -> tuple[list[tuple[Event, str]], list[Attack]]:
    sim = Sim(np.random.default_rng(SEED))
    people(sim, WARM_DAYS + days)
    services(sim, WARM_DAYS + days)
    injected = attacks(sim, WARM_DAYS, days)
    sim.events.sort(key=lambda item: item[0])
    return [(event, attack) for _, event, attack in sim.events], injected


def evaluate(days: int) -> dict[str, Any]:
    stream, injected = build(days)
    split = START + timedelta(days=WARM_DAYS)
    warm = [e for e, _ in stream if e.time < split]
    live = [(e, a) for e, a in stream if e.time >= split]
    engine = Engine(builtin_rules())
    for event in warm:
        engine.learn(event)
    attack_of = {id(e): a for e, a in live if a}
    detected: dict[str, float] = {}
    fired: dict[str, set[str]] = defaultdict(set)
    open_alerts: dict[str, datetime] = {}
    false_alerts: list[tuple[str, str]] = []
    tracemalloc.start()
    peak_groups = 0
    for event, _ in live:
        for detection in engine.observe(event):
            hits = {attack_of[id(e)] for e in detection.events if id(e) in attack_of}
            for a in injected:
                if a.id in hits and detection.rule.id in a.rules:
                    fired[a.id].add(detection.rule.id)
                    if a.id not in detected:
                        detected[a.id] = detection.time - a.start.timestamp()
            mark = fingerprint(detection.rule.id, dict(detection.group))
            when = datetime.fromtimestamp(detection.time, UTC)
            previous = open_alerts.get(mark)
            if previous is None or when - previous > timedelta(hours=24):  # the alert book's resolve_after
                if not hits:
                    false_alerts.append((detection.rule.id, json.dumps(dict(detection.group))))
            open_alerts[mark] = when
        peak_groups = max(peak_groups, engine.groups()) if engine._seen % 1000 == 0 else peak_groups
    _, peak_bytes = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    # Speed: the engine alone, one core, no tracing.
    speed_engine = Engine(builtin_rules())
    for event in warm:
        speed_engine.learn(event)
    began = time.perf_counter()
    for event, _ in live:
        speed_engine.observe(event)
    seconds = time.perf_counter() - began
    by_rule: dict[str, int] = defaultdict(int)
    for rule_id, _ in false_alerts:
        by_rule[rule_id] += 1
    return {
        "days": days,
        "events": len(live),
        "warm_events": len(warm),
        "attacks": [
            {
                "attack": a.id,
                "rules": list(a.rules),
                "fired": sorted(fired[a.id]),
                "detected": a.id in detected,
                "seconds_to_detect": round(detected[a.id], 1) if a.id in detected else None,
            }
            for a in injected
        ],
        "false_alerts": len(false_alerts),
        "false_alerts_per_day": len(false_alerts) / days,
        "false_alerts_by_rule": dict(sorted(by_rule.items())),
        "events_per_second": len(live) / seconds,
        "peak_groups": peak_groups,
        "peak_traced_mib": peak_bytes / 2**20,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=DAYS)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    half = evaluate(args.days // 2)
    full = evaluate(args.days)
    print(
        f"{full['days']} simulated days after {WARM_DAYS} days of warm-up: {full['events']:,} events "
        f"({full['warm_events']:,} in the warm-up)\n"
    )
    print("| attack | rules meant to catch it | rules that caught it | detected | time to first detection |")
    print("| --- | --- | --- | --- | ---: |")
    for a in full["attacks"]:
        ttd = f"{a['seconds_to_detect']:.0f} s" if a["detected"] else "-"
        print(
            f"| {a['attack']} | {', '.join(a['rules'])} | {', '.join(a['fired']) or '-'} | "
            f"{'yes' if a['detected'] else '**no**'} | {ttd} |"
        )
    caught = sum(a["detected"] for a in full["attacks"])
    times = [a["seconds_to_detect"] for a in full["attacks"] if a["detected"]]
    print(
        f"\nattacks detected: {caught} of {len(full['attacks'])}; time to detect median "
        f"{statistics.median(times):.0f} s, max {max(times):.0f} s"
    )
    print(
        f"false alerts: {full['false_alerts']} in {full['days']} days = "
        f"{full['false_alerts_per_day']:.2f} per day "
        f"(target <= 1); by rule: {full['false_alerts_by_rule']}"
    )
    print(f"rule evaluation: {full['events_per_second']:,.0f} events/s on one core (target >= 50,000)")
    print(
        f"memory: peak groups in windows {half['peak_groups']:,} over {half['days']} days, "
        f"{full['peak_groups']:,} over {full['days']} days; peak traced "
        f"{half['peak_traced_mib']:.1f} MiB / {full['peak_traced_mib']:.1f} MiB"
    )
    if args.json:
        args.json.write_text(json.dumps({"half": half, "full": full}, indent=1))
    ok = (
        caught == len(full["attacks"])
        and full["false_alerts_per_day"] <= 1
        and full["events_per_second"] >= 50_000
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
