"""The pipeline runner: gate policies and what runs after each, stages that crash or reach too far,
provenance, nothing half-written, and the orchestrator adapter."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from pipewarden.data import profile, table_from_frame
from pipewarden.errors import AccessDenied, GateBlocked, IntegrityError, PipelineError
from pipewarden.identity import Grant
from pipewarden.pipeline import Pipeline, gate, read_provenance, run_pipeline, stage
from pipewarden.workspace import Workspace
from tests.scan._asm import system_call

SERVICE = "pipeline-service"


def _rows(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x1 = rng.normal(0, 1, n).round(4)
    x2 = rng.normal(5, 2, n).round(4)
    return pd.DataFrame({"x1": x1, "x2": x2, "label": (x1 + 0.2 * x2 > 1).astype(int)})


@pytest.fixture
def kit(tmp_path: Path) -> dict[str, Any]:
    ws = Workspace.init(tmp_path / "ws")
    trusted = _rows(400, seed=1)
    (tmp_path / "contract.yaml").write_text(profile(table_from_frame(trusted, label="label")).to_yaml())
    batch = _rows(200, seed=2).astype(object)
    bad = [3, 50, 51, 120, 199]
    for i in bad:
        batch.loc[i, "x1"] = "not a number"
    batch.to_csv(tmp_path / "batch.csv", index=False)
    return {"ws": ws, "root": tmp_path, "bad": bad}


def _ingest(ctx: Any) -> None:
    ctx.output("data", suffix=".csv").write_bytes(ctx.input("batch").read_bytes())


def _count(ctx: Any) -> None:
    ctx.record(rows=len(pd.read_csv(ctx.input("data"))))
    ctx.output("summary", suffix=".json").write_text('{"ok": true}\n')


def _pipeline(kit: dict[str, Any], policy: str) -> Pipeline:
    pipe = Pipeline(
        "t",
        accounts={
            "svc-in": [Grant(SERVICE, "t/data/*")],
            "svc-use": [Grant(SERVICE, "t/reports/*"), Grant(SERVICE, "artifact:t/data/batch")],
        },
        root=kit["root"],
    )
    pipe.stage(
        name="ingest",
        account="svc-in",
        inputs={"batch": _file("batch.csv")},
        outputs={"data": "t/data/batch"},
        gates=[gate("contract", on="data", contract="contract.yaml", policy=policy, catches=kit["bad"])],
    )(_ingest)
    pipe.stage(
        name="use", account="svc-use", inputs={"data": "t/data/batch"}, outputs={"summary": "t/reports/s"}
    )(_count)
    return pipe


def _file(name: str) -> Any:
    from pipewarden.pipeline import InputSpec

    return InputSpec(file=Path(name))


def test_block_stops_the_stage_and_everything_after_it_and_stores_nothing(kit: dict[str, Any]) -> None:
    result = _pipeline(kit, "block").run(workspace=kit["ws"])
    ingest, use = result.stages
    assert ingest.outcome == "blocked" and ingest.gates[0].verdict == "blocked"
    assert use.outcome == "skipped" and "ingest" in use.reason
    assert kit["ws"].store().versions("t/data/batch") == []
    assert result.exit_code == 1
    # The block is an event the monitor sees as a blocked batch.
    events = [e.event for e in kit["ws"].audit_log().records()]
    check = next(e for e in events if e.action == "data.check")
    assert check.actor == "svc-in" and check.outcome == "denied" and check.attributes["blocked"] is True


def test_quarantine_sets_the_bad_rows_aside_and_the_rest_goes_on(kit: dict[str, Any]) -> None:
    result = _pipeline(kit, "quarantine").run(workspace=kit["ws"])
    ingest, use = result.stages
    gate_result = ingest.gates[0]
    assert ingest.outcome == "passed" and gate_result.verdict == "quarantined"
    assert list(gate_result.quarantined) == kit["bad"] and gate_result.missed == ()
    aside = pd.read_csv(gate_result.quarantine_file)
    assert list(aside["pw_row"]) == kit["bad"] and aside["pw_reasons"].str.len().min() > 0
    assert use.outcome == "passed" and use.facts["rows"] == 195
    stored = kit["ws"].store().read_bytes("t/data/batch@1").decode()
    assert "not a number" not in stored
    assert result.exit_code == 0 and result.passed


def test_warn_records_the_findings_and_keeps_the_data_as_it_came(kit: dict[str, Any]) -> None:
    result = _pipeline(kit, "warn").run(workspace=kit["ws"])
    ingest, use = result.stages
    assert ingest.gates[0].verdict == "warned" and ingest.gates[0].quarantined == ()
    assert use.facts["rows"] == 200
    # Found, and let through by the policy: a planted row counts as caught when its gate reports it.
    assert ingest.gates[0].missed == () and result.exit_code == 0
    assert ingest.gates[0].report.counts()["medium"] + ingest.gates[0].report.counts()["high"] >= 5


def test_a_stage_that_crashes_leaves_nothing_behind_and_stops_its_dependents(kit: dict[str, Any]) -> None:
    pipe = _pipeline(kit, "quarantine")

    def crash(ctx: Any) -> None:
        ctx.output("data", suffix=".csv").write_text("x1,x2,label\n1,2,0\n")
        raise RuntimeError("out of memory in feature engineering")

    pipe.stages[0] = pipe.stages[0].__class__(**{**_fields(pipe.stages[0]), "run": crash})
    result = pipe.run(workspace=kit["ws"])
    ingest, use = result.stages
    assert ingest.outcome == "failed" and "RuntimeError: out of memory" in ingest.reason
    assert use.outcome == "skipped"
    assert kit["ws"].store().versions("t/data/batch") == []
    leftovers = [p for p in result.report_dir.iterdir() if p.name.startswith(".")]
    assert leftovers == []  # the stage's private folder is gone


def _fields(spec: Any) -> dict[str, Any]:
    return {name: getattr(spec, name) for name in spec.__dataclass_fields__}


def test_an_output_the_stage_did_not_write_fails_it(kit: dict[str, Any]) -> None:
    pipe = _pipeline(kit, "quarantine")
    pipe.stages[0] = pipe.stages[0].__class__(**{**_fields(pipe.stages[0]), "run": lambda ctx: None})
    ingest, _ = pipe.run(workspace=kit["ws"]).stages
    assert ingest.outcome == "failed" and "output data was not written" in ingest.reason


def test_a_stage_reading_what_its_account_may_not_is_denied_and_audited(kit: dict[str, Any]) -> None:
    ws = kit["ws"]
    model = kit["root"] / "m.csv"
    model.write_text("a\n1\n")
    ws.store().put(model, name="t/models/secret", actor="operator")
    pipe = Pipeline("t", accounts={"svc-in": [Grant(SERVICE, "t/data/*")]}, root=kit["root"])
    pipe.stage(name="peek", account="svc-in", inputs={"m": "t/models/secret"}, expect="denied")(
        lambda ctx: None
    )
    result = pipe.run(workspace=ws)
    (peek,) = result.stages
    assert peek.outcome == "denied" and peek.met and result.exit_code == 0
    denied = [
        e.event
        for e in ws.audit_log().records()
        if e.event.action == "artifact.read" and e.event.outcome == "denied"
    ]
    assert [(e.actor, e.resource) for e in denied] == [("svc-in", "artifact:t/models/secret")]


def test_provenance_names_the_exact_inputs_of_its_run_and_is_verified(kit: dict[str, Any]) -> None:
    ws = kit["ws"]
    pipe = _pipeline(kit, "quarantine")
    first = pipe.run(workspace=ws)
    second = pipe.run(workspace=ws)
    assert first.passed and second.passed
    store = ws.store()
    from pipewarden.events import Acting, Actor, LocalOperator
    from pipewarden.store import GuardedStore

    guarded = GuardedStore(
        store, Acting(actor=Actor("op", "system"), events=ws.events(), authorizer=LocalOperator())
    )
    summary = store.resolve("t/reports/s@2")
    found = read_provenance(guarded, summary, trusted=ws.store_writers())
    assert found is not None and found.inputs == ["t/data/batch@2"]  # this run's data, not the first run's
    build = found.statement["predicate"]["buildDefinition"]
    assert build["externalParameters"]["stage"] == "use"
    assert build["internalParameters"]["account"] == "svc-use"
    names = [d["name"] for d in build["resolvedDependencies"]]
    assert any(n.startswith("code:") for n in names) and any(n.startswith("function:") for n in names)
    assert found.statement["subject"] == [{"name": "t/reports/s@2", "digest": {"sha256": summary.digest}}]
    # A statement signed by a key the store does not trust is refused, not shown.
    from pipewarden.crypto import SigningKey
    from pipewarden.pipeline._provenance import sign_statement

    forged = kit["root"] / "forged.json"
    forged.write_bytes(sign_statement(found.statement, SigningKey.generate()))
    store.put(forged, name="t/reports/s.provenance", actor="op", parents=["t/reports/s@2"])
    with pytest.raises(IntegrityError):
        read_provenance(guarded, summary, trusted=ws.store_writers())


def test_a_model_set_aside_by_the_scan_is_not_stored_and_its_readers_are_skipped(kit: dict[str, Any]) -> None:
    (kit["root"] / "evil.pkl").write_bytes(system_call("pipeline-quarantine"))
    pipe = Pipeline(
        "t",
        accounts={"svc-m": [Grant(SERVICE, "t/models/*")], "svc-r": [Grant(SERVICE, "t/models/*")]},
        root=kit["root"],
    )
    pipe.stage(
        name="make",
        account="svc-m",
        inputs={"f": _file("evil.pkl")},
        outputs={"model": "t/models/m.pkl"},
        gates=[gate("scan", on="model", policy="quarantine")],
    )(lambda ctx: ctx.output("model").write_bytes(ctx.input("f").read_bytes()))
    pipe.stage(name="read", account="svc-r", inputs={"model": "t/models/m.pkl"})(lambda ctx: None)
    make, read = pipe.run(workspace=kit["ws"]).stages
    assert make.outcome == "passed" and make.gates[0].verdict == "quarantined" and make.stored == ()
    assert make.gates[0].quarantine_file is not None and make.gates[0].quarantine_file.is_file()
    assert read.outcome == "skipped" and "set aside" in read.reason


def test_outputs_are_stored_together_or_not_at_all(kit: dict[str, Any]) -> None:
    (kit["root"] / "evil.pkl").write_bytes(system_call("pipeline-two-outputs"))
    pipe = Pipeline("t", accounts={"svc-m": [Grant(SERVICE, "t/models/*")]}, root=kit["root"])

    def two(ctx: Any) -> None:
        ctx.output("card", suffix=".json").write_text("{}\n")
        ctx.output("model").write_bytes((kit["root"] / "evil.pkl").read_bytes())

    pipe.stage(name="two", account="svc-m", outputs={"card": "t/models/card", "model": "t/models/m.pkl"})(two)
    (two_result,) = pipe.run(workspace=kit["ws"]).stages
    assert two_result.outcome == "blocked" and "nothing of this stage was stored" in two_result.reason
    assert kit["ws"].store().versions("t/models/card") == []


def test_the_orchestrator_adapter_runs_a_task_as_a_stage(kit: dict[str, Any]) -> None:
    ws = kit["ws"]
    run_pipeline(_pipeline(kit, "quarantine").spec, workspace=ws)  # creates the accounts and the data
    with stage(
        "report",
        account="svc-use",
        workspace=ws,
        inputs={"data": "t/data/batch"},
        outputs={"summary": "t/reports/adhoc"},
        pipeline="airflow-dag",
    ) as ctx:
        rows = len(pd.read_csv(ctx.input("data")))
        ctx.output("summary", suffix=".txt").write_text(f"{rows}\n")
    assert ws.store().read_bytes("t/reports/adhoc@1") == b"195\n"
    assert ws.store().versions("t/reports/adhoc.provenance") == [1]
    # A gate that blocks makes the task fail, and nothing is stored. (A gate on a file input is
    # authorized on data:PIPELINE/STAGE/INPUT.)
    from pipewarden.events import Actor
    from pipewarden.identity import Accounts

    Accounts(ws.database(), events=ws.events()).create_service(
        "svc-gate",
        actor=Actor("op", "system"),
        grants=[Grant(SERVICE, "t/data/*"), Grant(SERVICE, "adhoc/*")],
    )
    with (
        pytest.raises(GateBlocked),
        stage(
            "again",
            account="svc-gate",
            workspace=ws,
            inputs={"batch": _file(str(kit["root"] / "batch.csv"))},
            outputs={"data": "t/data/other"},
            gates=[gate("contract", on="batch", contract=str(kit["root"] / "contract.yaml"))],
        ),
    ):
        pytest.fail("the body must not run when an input gate blocks")
    assert ws.store().versions("t/data/other") == []
    # An account that may not read the input: the task fails before its body.
    with (
        pytest.raises(AccessDenied),
        stage("x", account="svc-in", workspace=ws, inputs={"s": "t/reports/adhoc"}),
    ):
        pytest.fail("unreachable")
    # The body's own error fails the task, and nothing is stored.
    with (
        pytest.raises(PipelineError),
        stage("y", account="svc-use", workspace=ws, outputs={"s": "t/reports/y"}),
    ):
        pass  # the declared output is never written
    assert ws.store().versions("t/reports/y") == []


def _gated(kit: dict[str, Any], gate_spec: Any, *, inputs: dict[str, Any], account: str = "svc-g") -> Any:
    pipe = Pipeline("t", accounts={account: [Grant(SERVICE, "t/*")]}, root=kit["root"])
    pipe.stage(name="g", account=account, inputs=inputs, gates=[gate_spec])(lambda ctx: None)
    (result,) = pipe.run(workspace=kit["ws"]).stages
    return result


def test_the_dependency_gate_blocks_a_vulnerable_lock_and_passes_a_clean_one(kit: dict[str, Any]) -> None:
    from tests.supply.osvfixtures import write_folder

    write_folder(kit["root"] / "osv")
    digest = "sha256:" + "ab" * 32
    (kit["root"] / "bad.lock").write_text(f"torchlike==2.1.0 --hash={digest}\n")
    (kit["root"] / "good.lock").write_text(f"listed==1.0 --hash={digest}\n")
    # A synthetic advisory in the fixture database (PWTEST-0001) covers torchlike 2.0.0 up to 2.3.1.
    bad = _gated(kit, gate("deps", on="lock", db="osv"), inputs={"lock": _file("bad.lock")})
    assert bad.outcome == "blocked" and "PW-DEPS-101" in {f.rule_id for f in bad.gates[0].report.findings}
    good = _gated(kit, gate("deps", on="lock", db="osv"), inputs={"lock": _file("good.lock")})
    assert good.outcome == "passed", good.reason
    # A file input keeps its name, which is how a dependency file's format is known.
    (kit["root"] / "deps").mkdir()
    (kit["root"] / "deps" / "pyproject.toml").write_text(
        '[project]\nname = "x"\nversion = "1"\ndependencies = ["torchlike==2.1.0"]\n'
    )
    named = _gated(kit, gate("deps", on="p", db="osv"), inputs={"p": _file("deps/pyproject.toml")})
    assert "PW-DEPS-101" in {f.rule_id for f in named.gates[0].report.findings}


def test_the_signature_gate_accepts_only_the_keys_it_names(kit: dict[str, Any]) -> None:
    ws = kit["ws"]
    (kit["root"] / "m.csv").write_text("a\n1\n")
    ws.store().put(kit["root"] / "m.csv", name="t/models/m", actor="op")
    own = ws.public_key().keyid
    passed = _gated(kit, gate("signature", on="m", signers=[own]), inputs={"m": "t/models/m"})
    assert passed.outcome == "passed"
    other = "ed25519:" + "0" * 64
    refused = _gated(kit, gate("signature", on="m", signers=[other]), inputs={"m": "t/models/m"})
    assert refused.outcome == "blocked"
    (finding,) = refused.gates[0].report.findings
    assert finding.rule_id == "PW-PIPE-101" and own in finding.message


def test_a_gate_that_cannot_run_blocks_whatever_its_policy(kit: dict[str, Any]) -> None:
    (kit["root"] / "checks.py").write_text(
        "def boom(path, *, params):\n    raise ValueError('broken check')\n"
    )
    result = _gated(
        kit,
        gate("custom", on="batch", check="checks.py:boom", policy="warn"),
        inputs={"batch": _file("batch.csv")},
    )
    assert result.outcome == "blocked" and result.gates[0].verdict == "error"
    (finding,) = result.gates[0].report.findings
    assert finding.rule_id == "PW-PIPE-100" and "broken check" in finding.message
    missing = _gated(
        kit,
        gate("contract", on="batch", contract="nope.yaml", policy="warn"),
        inputs={"batch": _file("batch.csv")},
    )
    assert missing.outcome == "blocked" and "nope.yaml" in missing.gates[0].message


def test_an_input_set_aside_whole_is_not_handed_to_the_stage(kit: dict[str, Any]) -> None:
    (kit["root"] / "evil.pkl").write_bytes(system_call("input-quarantine"))
    ran = []
    pipe = Pipeline("t", accounts={"svc-g": [Grant(SERVICE, "t/*")]}, root=kit["root"])
    pipe.stage(
        name="g",
        account="svc-g",
        inputs={"model": _file("evil.pkl")},
        gates=[gate("scan", on="model", policy="quarantine")],
    )(lambda ctx: ran.append(ctx.input("model")))
    (result,) = pipe.run(workspace=kit["ws"]).stages
    assert result.outcome == "blocked" and "set aside" in result.reason and ran == []


def test_a_drill_runs_after_every_real_stage_and_what_it_stores_is_never_read(kit: dict[str, Any]) -> None:
    pipe = Pipeline("t", accounts={"svc-g": [Grant(SERVICE, "t/*")]}, root=kit["root"])
    seen: list[str] = []

    def write(ctx: Any) -> None:
        ctx.output("m", suffix=".txt").write_text("genuine\n")

    def attack(ctx: Any) -> None:
        ctx.output("m", suffix=".txt").write_text("ATTACKER\n")  # not stopped: no gate catches it

    pipe.stage(name="drill", account="svc-g", outputs={"m": "t/m"}, expect="blocked")(attack)
    pipe.stage(name="make", account="svc-g", outputs={"m": "t/m"})(write)
    pipe.stage(name="use", account="svc-g", inputs={"m": "t/m"})(
        lambda ctx: seen.append(ctx.input("m").read_text())
    )
    result = pipe.run(workspace=kit["ws"])
    assert [s.name for s in pipe.spec.order()] == ["make", "use", "drill"]
    assert seen == ["genuine\n"]
    drill = next(s for s in result.stages if s.name == "drill")
    assert drill.outcome == "passed" and not drill.met and result.exit_code == 1  # the attack got through


def test_an_outcome_comes_from_what_pipewarden_refused_not_from_what_the_code_raised(
    kit: dict[str, Any],
) -> None:
    def pretend(ctx: Any) -> None:
        raise AccessDenied("nobody refused anything")

    pipe = Pipeline("t", accounts={"svc-g": [Grant(SERVICE, "t/*")]}, root=kit["root"])
    pipe.stage(name="fake", account="svc-g", expect="denied")(pretend)
    (result,) = pipe.run(workspace=kit["ws"]).stages
    assert result.outcome == "failed" and not result.met


def test_the_stage_cannot_write_around_its_gates(kit: dict[str, Any]) -> None:
    tried: list[str] = []

    def sneak(ctx: Any) -> None:
        tried.append(str(hasattr(ctx.store, "put")))
        tried.append(str(hasattr(ctx, "workspace")))

    pipe = Pipeline("t", accounts={"svc-g": [Grant(SERVICE, "t/*")]}, root=kit["root"])
    pipe.stage(name="s", account="svc-g")(sneak)
    pipe.run(workspace=kit["ws"])
    assert tried == ["False", "False"]


def test_a_check_that_raises_anything_fails_closed(kit: dict[str, Any]) -> None:
    (kit["root"] / "checks.py").write_text("def boom(path, *, params):\n    raise RuntimeError('bug')\n")
    result = _gated(
        kit,
        gate("custom", on="batch", check="checks.py:boom", policy="warn"),
        inputs={"batch": _file("batch.csv")},
    )
    assert result.outcome == "blocked" and result.gates[0].verdict == "error"


def test_planted_rows_are_counted_in_one_numbering_and_rows_that_do_not_exist_are_missed(
    kit: dict[str, Any],
) -> None:
    bad = kit["bad"]
    pipe = Pipeline("t", accounts={"svc-in": [Grant(SERVICE, "t/*")]}, root=kit["root"])
    pipe.stage(
        name="ingest",
        account="svc-in",
        inputs={"batch": _file("batch.csv")},
        outputs={"data": "t/data/batch"},
        gates=[
            gate("contract", on="data", contract="contract.yaml", policy="quarantine", catches=bad),
            # Rows the contract set aside count as caught here too; row 5000 does not exist.
            gate("screen", on="data", label="label", policy="quarantine", catches=[bad[0], 5000]),
        ],
    )(_ingest)
    (ingest,) = pipe.run(workspace=kit["ws"]).stages
    contract, screen = ingest.gates
    assert contract.missed == () and screen.missed == (5000,)
    # The screen's findings and rows are in the numbering of the table as received.
    rows = {f.location.row for f in screen.report.findings if f.location.row is not None}
    assert rows == set(screen.quarantined) and not rows & set(bad)


def test_a_stage_whose_account_does_not_exist_stops_the_run_before_it_starts(kit: dict[str, Any]) -> None:
    from pipewarden.errors import ConfigError

    pipe = Pipeline("t", root=kit["root"])
    pipe.stage(name="s", account="ghost")(lambda ctx: None)
    with pytest.raises(ConfigError, match="ghost: no such service account"):
        pipe.run(workspace=kit["ws"])
