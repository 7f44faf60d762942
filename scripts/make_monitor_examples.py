"""Write examples/monitor/events.jsonl: a recorded morning of a small ML platform, with three attacks in it.

    python scripts/make_monitor_examples.py            # rewrite examples/monitor/
    python scripts/make_monitor_examples.py --check    # exit 1 if the committed file differs

Ordinary traffic: three people log in and read and write artifacts, a training pipeline reads data and
writes a model every hour, an inference client calls the model. Planted: a brute force on one account
(12 wrong passwords in two minutes), a token made from the office and used ten minutes later from an
unknown address, and a model file the scan refused. `pipewarden monitor replay` finds each of them
(PW-MON-101, PW-MON-108, PW-MON-110) and nothing else. Output is byte-for-byte deterministic.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "examples" / "monitor"
START = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
TOKEN = {"token_id": "Q7mK2p"}  # the id events carry, not a secret


def _event(minute: float, action: str, actor: str, resource: str, **more: Any) -> tuple[float, Any]:
    from pipewarden.events import Event

    attributes = {k: v for k, v in more.items() if k not in {"outcome", "origin", "actor_kind"}}
    return minute, Event(
        action=action,
        actor=actor,
        actor_kind=more.get("actor_kind", "user"),
        resource=resource,
        outcome=more.get("outcome", "allowed"),
        origin=more.get("origin", ""),
        attributes=attributes,
        time=START + timedelta(minutes=minute),
    )


def events() -> list[Any]:
    made = []
    people = {"ada": "10.1.0.11", "grace": "10.1.0.12", "linus": "10.1.0.13"}
    for i, (name, origin) in enumerate(people.items()):
        made.append(_event(5 + i, "auth.login", name, f"user:{name}", origin=origin, mfa=True))
        made.extend(
            _event(
                10 + i + 20 * k,
                "artifact.read",
                name,
                f"artifact:churn/data@{k + 1}",
                origin=origin,
                size=2_400_000,
            )
            for k in range(6)
        )
        made.append(
            _event(70 + i, "artifact.write", name, "artifact:churn/notes", origin=origin, size=12_000)
        )
    for hour in range(4):
        made.append(
            _event(
                60 * hour + 1,
                "artifact.read",
                "svc-train",
                "artifact:churn/data",
                actor_kind="service",
                origin="10.2.0.5",
                size=48_000_000,
            )
        )
        made.append(
            _event(
                60 * hour + 20,
                "artifact.write",
                "svc-train",
                "artifact:churn/model",
                actor_kind="service",
                origin="10.2.0.5",
                size=9_000_000,
                scan_max_severity="none",
            )
        )
    made.extend(
        _event(
            5 * k + 2,
            "model.predict",
            "svc-api",
            "model:churn/model",
            actor_kind="service",
            origin="10.3.0.2",
            caller="web",
            rows=32,
            valid=32,
            flagged=0,
            extraction="valid",
        )
        for k in range(48)
    )
    # A brute force on grace's account from outside.
    made.extend(
        _event(
            95 + k / 6,
            "auth.login",
            "unknown:5f1c0e2a9b7d4c33",
            "user:grace",
            actor_kind="anonymous",
            outcome="denied",
            origin="203.0.113.50",
            reason="credentials",
        )
        for k in range(12)
    )
    # A token made at the office, used ten minutes later from an address nobody knows.
    made.append(
        _event(
            130,
            "token.create",
            "ada",
            "token:ada/Q7mK2p",
            origin="10.1.0.11",
            **TOKEN,
            owner="ada",
            kind="api",
            scopes="artifact.read",
            mfa=True,
        )
    )
    made.append(
        _event(
            140,
            "artifact.read",
            "ada",
            "artifact:churn/model@4",
            origin="198.51.100.23",
            **TOKEN,
            size=9_000_000,
        )
    )
    # A model file with code that runs on load, refused by the scan.
    made.append(
        _event(
            170,
            "scan.run",
            "linus",
            "scan:downloads/churn-finetuned.pkl",
            origin="10.1.0.13",
            paths=1,
            files=1,
            findings=2,
            max_severity="critical",
            blocked=True,
        )
    )
    made.sort(key=lambda item: item[0])
    return [event for _, event in made]


def render() -> dict[str, str]:
    return {"events.jsonl": "".join(event.to_json() + "\n" for event in events())}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if examples/monitor/ is stale")
    args = parser.parse_args()
    files = render()
    if args.check:
        stale = [
            n for n, text in files.items() if not (TARGET / n).exists() or (TARGET / n).read_text() != text
        ]
        for name in stale:
            print(f"examples/monitor/{name} is stale", file=sys.stderr)
        return 1 if stale else 0
    TARGET.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (TARGET / name).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
