"""`pipewarden monitor`, `alerts` and `rules` run as a user runs them: replay, ingest (bad lines kept),
run over the audit log with a warm start, alerts acknowledged and silenced, rule files checked."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.cli.clirun import run
from tests.monitor.helpers import T0, ev, failed_login

SEC = timedelta(seconds=1)
#: Events of the workspace test happen a few minutes ago: alerts on them are still open now.
RECENT = datetime.now(UTC).replace(microsecond=0) - T0 - timedelta(minutes=10)


def _write(path: Path, events: list, extra: list[str] = ()) -> Path:  # type: ignore[type-arg]
    lines = [e.to_json() for e in events] + list(extra)
    path.write_text("\n".join(lines) + "\n")
    return path


def test_replay_prints_detections_as_findings_with_their_events(tmp_path: Path) -> None:
    events = [failed_login("ada", at=i * SEC) for i in range(10)]
    path = _write(tmp_path / "events.jsonl", events, ["{not json"])
    result = run("monitor", "replay", str(path), "--format", "json", cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    by_rule = {f["rule_id"]: f for f in report["findings"]}
    assert set(by_rule) == {"PW-MON-101", "PW-MON-001"}
    brute = by_rule["PW-MON-101"]
    assert brute["severity"] == "high" and brute["references"] == ["T1110.001"]
    assert brute["evidence"]["group"] == {"resource": "user:ada"}
    assert len(brute["evidence"]["events"]) == 10 and brute["location"]["row"] == 9
    assert by_rule["PW-MON-001"]["location"]["row"] == 10 and "not JSON" in by_rule["PW-MON-001"]["message"]


def test_replay_of_benign_events_exits_0(tmp_path: Path) -> None:
    path = _write(tmp_path / "events.jsonl", [ev("artifact.read", at=i * SEC) for i in range(5)])
    result = run("monitor", "replay", str(path), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_rules_test_names_the_bad_line_and_runs_good_rules(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules:\n  - id: X\n    title: t\n    severity: sometimes\n    selection: {action: a.b}\n")
    result = run("rules", "test", str(bad), cwd=tmp_path)
    assert result.returncode == 2
    assert f"{bad}, line 4" in result.stderr and "sometimes" in result.stderr
    good = tmp_path / "good.yaml"
    good.write_text(
        "rules:\n  - id: BIG-READ\n    title: big read\n    severity: low\n"
        "    selection: {action: artifact.read, attributes.size|gt: 100}\n"
    )
    assert run("rules", "test", str(good), cwd=tmp_path).returncode == 0
    events = _write(tmp_path / "e.jsonl", [ev("artifact.read", size=5), ev("artifact.read", size=500)])
    result = run("rules", "test", str(good), "--events", str(events), "--format", "json", cwd=tmp_path)
    assert result.returncode == 1
    assert [f["location"]["row"] for f in json.loads(result.stdout)["findings"]] == [1]
    listed = run("rules", "list", "--rules", str(good), "--format", "json", cwd=tmp_path)
    assert "BIG-READ" in {r["id"] for r in json.loads(listed.stdout)}


def test_ingest_run_ack_and_silence_in_a_workspace(tmp_path: Path) -> None:
    assert run("init", cwd=tmp_path).returncode == 0
    history = [ev("artifact.read", at=RECENT + i * SEC) for i in range(3)]
    result = run("monitor", "ingest", str(_write(tmp_path / "old.jsonl", history)), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    # The first run learns from the history already in the log and alerts on nothing in it.
    first = run("monitor", "run", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "0 detection(s)" in first.stderr
    attack = [failed_login("ada", at=RECENT + timedelta(minutes=1) + i * SEC) for i in range(10)]
    attack.append(
        ev(
            "audit.verify",
            resource="audit:log",
            outcome="error",
            reason="integrity",
            at=RECENT + timedelta(minutes=2),
        )
    )
    result = run(
        "monitor", "ingest", str(_write(tmp_path / "new.jsonl", attack, ['{"v": "wrong"}'])), cwd=tmp_path
    )
    assert result.returncode == 1  # one line rejected, and kept
    rejected = [
        json.loads(line)
        for line in (tmp_path / ".pipewarden" / "monitor" / "rejected.jsonl").read_text().splitlines()
    ]
    assert rejected == [
        {
            "source": str(tmp_path / "new.jsonl"),
            "line": 12,
            "error": rejected[0]["error"],
            "text": '{"v": "wrong"}\n',
        }
    ]
    assert "event format" in rejected[0]["error"]
    second = run("monitor", "run", cwd=tmp_path)
    assert "2 detection(s)" in second.stderr, second.stderr
    listed = json.loads(run("alerts", "list", "--format", "json", cwd=tmp_path).stdout)
    assert [a["rule_id"] for a in listed] == ["PW-MON-116", "PW-MON-101"]
    sent = tmp_path / ".pipewarden" / "monitor" / "alerts.jsonl"
    # Detected from recorded times long past: both were due at once and went to the default sinks.
    assert sorted(json.loads(line)["rule_id"] for line in sent.read_text().splitlines()) == [
        "PW-MON-101",
        "PW-MON-116",
    ]
    acked = run("alerts", "ack", str(listed[0]["id"]), cwd=tmp_path)
    assert acked.returncode == 0 and "acknowledged" in acked.stdout
    silenced = run(
        "alerts", "silence", "--match", "rule_id=PW-MON-101", "--reason", "drill", "--for", "1h", cwd=tmp_path
    )
    assert silenced.returncode == 0, silenced.stderr
    assert "drill" in run("alerts", "silences", cwd=tmp_path).stdout
    bad = run("alerts", "silence", "--match", "nothing", "--reason", "x", cwd=tmp_path)
    assert bad.returncode == 2 and "LABEL=GLOB" in bad.stderr
    trail = run("audit", "tail", "-n", "30", "--json", cwd=tmp_path)
    actions = [json.loads(line)["event"]["action"] for line in trail.stdout.splitlines() if line.strip()]
    assert "alert.ack" in actions and "alert.silence" in actions and "monitor.ingest" in actions


def test_serve_metrics_answers_on_loopback_and_refuses_other_addresses(tmp_path: Path) -> None:
    import os
    import re
    import subprocess
    import urllib.request

    from tests.cli.clirun import CLI

    assert run("init", cwd=tmp_path).returncode == 0
    refused = run("monitor", "serve-metrics", "--host", "0.0.0.0", cwd=tmp_path)  # noqa: S104
    assert refused.returncode == 2 and "loopback only" in refused.stderr
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIPEWARDEN_")}
    env.update({"NO_COLOR": "1", "COLUMNS": "200"})
    child = subprocess.Popen(
        [*CLI, "monitor", "serve-metrics", "--port", "0", "--interval", "0.2"],
        cwd=tmp_path,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stderr is not None
        line = child.stderr.readline()
        port = int(re.search(r"127\.0\.0\.1:(\d+)/metrics", line).group(1))  # type: ignore[union-attr]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
            text = response.read().decode()
            kind = response.headers["Content-Type"]
        assert kind.startswith("text/plain; version=0.0.4")
        assert "# TYPE pipewarden_events_total counter" in text
    finally:
        child.terminate()
        child.wait(timeout=20)


def test_an_attack_split_across_two_runs_is_still_seen_and_ingested_events_name_their_sender(
    tmp_path: Path,
) -> None:
    assert run("init", cwd=tmp_path).returncode == 0
    first_half = [failed_login("ada", at=RECENT + i * SEC) for i in range(6)]
    second_half = [failed_login("ada", at=RECENT + (6 + i) * SEC) for i in range(6)]
    assert (
        run(
            "monitor",
            "ingest",
            str(_write(tmp_path / "a.jsonl", [ev("artifact.read", at=RECENT)])),
            cwd=tmp_path,
        ).returncode
        == 0
    )
    assert "0 detection(s)" in run("monitor", "run", cwd=tmp_path).stderr  # the warm start
    run("monitor", "ingest", str(_write(tmp_path / "b.jsonl", first_half)), cwd=tmp_path)
    assert "0 detection(s)" in run("monitor", "run", "--alert-on-history", cwd=tmp_path).stderr
    run("monitor", "ingest", str(_write(tmp_path / "c.jsonl", second_half)), cwd=tmp_path)
    assert "1 detection(s)" in run("monitor", "run", cwd=tmp_path).stderr  # 6 + 6 in one window
    trail = run("audit", "tail", "-n", "3", "--json", cwd=tmp_path).stdout.splitlines()
    ingested = [json.loads(line)["event"] for line in trail if '"auth.login"' in line]
    assert ingested and all(e["attributes"]["ingested_by"] for e in ingested)


def test_a_second_follower_is_refused_while_the_first_holds_the_workspace(tmp_path: Path) -> None:
    import os
    import subprocess
    import time

    from tests.cli.clirun import CLI

    assert run("init", cwd=tmp_path).returncode == 0
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIPEWARDEN_")}
    follower = subprocess.Popen(
        [*CLI, "monitor", "run", "--follow", "--interval", "0.2"],
        cwd=tmp_path,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert follower.stderr is not None
        import select

        ready, _, _ = select.select([follower.stderr], [], [], 60)
        assert ready, "the follower said nothing in a minute"
        follower.stderr.readline()  # its first pass is done: it holds the lease
        second = run("monitor", "run", cwd=tmp_path)
        assert second.returncode == 2 and "another monitor" in second.stderr
    finally:
        follower.terminate()
        follower.wait(timeout=20)
    time.sleep(0.1)


def test_a_bad_ingest_line_with_markup_in_it_is_kept_not_a_crash(tmp_path: Path) -> None:
    assert run("init", cwd=tmp_path).returncode == 0
    bad = (
        '{"v":"pipewarden.event/1","time":"2026-01-01T00:00:00Z","actor":"a","action":"x.y",'
        '"resource":"r","outcome":"[/x]"}'
    )
    result = run(
        "monitor", "ingest", str(_write(tmp_path / "e.jsonl", [ev("artifact.read")], [bad])), cwd=tmp_path
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "[/x]" in result.stderr
