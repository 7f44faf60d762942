"""The quickstart's stage code: what a team writes. Everything around it (reading inputs through the
store, the gates, storing, signing, provenance, events and alerts) is pipewarden's.

Each function gets a `StageContext`: `ctx.input(name)` is a verified local copy of an input,
`ctx.output(name)` is where to write an output, `ctx.params` the stage's parameters.
"""

from __future__ import annotations

import json
import secrets
import shutil
from pathlib import Path
from typing import Any

import pandas as pd

FEATURES = ["tenure_months", "monthly_charges", "support_calls", "usage_gb", "contract_months"]
LABEL = "churn"


def _split(frame: pd.DataFrame, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    holdout = frame.sample(frac=0.25, random_state=seed)
    return frame.drop(holdout.index), holdout


# --- the pipeline's work ------------------------------------------------------------------------------------


def ingest(ctx: Any) -> None:
    """Take in the week's customer batch; the gates on its output check and screen it before it is stored."""
    target = ctx.output("customers", suffix=".csv")
    shutil.copyfile(ctx.input("batch"), target)
    ctx.record(rows_received=sum(1 for _ in target.open()) - 1)


def train(ctx: Any) -> None:
    """Train the churn model on the stored, checked and screened data set."""
    import joblib
    from sklearn.ensemble import RandomForestClassifier

    frame = pd.read_csv(ctx.input("customers"))
    fit, _ = _split(frame, int(ctx.params["split_seed"]))
    model = RandomForestClassifier(n_estimators=60, max_depth=8, random_state=0)
    model.fit(fit[FEATURES], fit[LABEL])
    joblib.dump(model, ctx.output("model", suffix=".joblib"))
    ctx.record(training_rows=len(fit))


def evaluate(ctx: Any) -> None:
    """Score the model on the rows it did not see; the quality gate on the metrics decides if it ships."""
    from sklearn.metrics import accuracy_score, f1_score

    from pipewarden.scan import safe_load

    model = safe_load(ctx.input("model"))  # scanned again, loaded with the restricted unpickler
    frame = pd.read_csv(ctx.input("customers"))
    _, holdout = _split(frame, int(ctx.params["split_seed"]))
    predicted = model.predict(holdout[FEATURES])
    metrics = {
        "accuracy": round(float(accuracy_score(holdout[LABEL], predicted)), 4),
        "f1": round(float(f1_score(holdout[LABEL], predicted)), 4),
        "holdout_rows": len(holdout),
    }
    ctx.output("metrics", suffix=".json").write_text(json.dumps(metrics, indent=1) + "\n")
    ctx.record(**metrics)


def quality_floor(path: Path, *, params: dict[str, Any]) -> list[Any]:
    """A custom gate: the model ships only above the accuracy floor."""
    from pipewarden.findings import Finding, Location, Severity

    metrics = json.loads(path.read_text())
    floor = float(params.get("min_accuracy", 0.8))
    if metrics["accuracy"] >= floor:
        return []
    return [
        Finding(
            rule_id="QS-QUALITY",
            severity=Severity.HIGH,
            title="model below the accuracy floor",
            message=f"accuracy {metrics['accuracy']} is below {floor}",
            location=Location(path=path.name),
        )
    ]


def serve(ctx: Any) -> None:
    """Answer a batch of requests with the registered model; the guard gate has set suspect rows aside."""
    from pipewarden.scan import safe_load

    model = safe_load(ctx.input("model"))
    requests = pd.read_csv(ctx.input("requests"))
    requests["churn_predicted"] = model.predict(requests[FEATURES])
    requests.to_csv(ctx.output("predictions", suffix=".csv"), index=False)
    ctx.record(answered=len(requests))


# --- drills: attacks the pipeline must stop ----------------------------------------------------------------


def offer_malicious_model(ctx: Any) -> None:
    """An attacker with the training account's credentials offers a booby-trapped model (its payload only
    runs `echo`) in place of the real one. The scan gate must block it before it is stored."""
    shutil.copyfile(ctx.root / ctx.params["file"], ctx.output("model", suffix=".joblib"))


def tamper_with_stored_model(ctx: Any) -> None:
    """Someone with write access to the store's disk puts a copy of the model there and flips one byte of
    it. When the pipeline's account reads it, the read must be refused (the digest no longer matches)."""
    from pipewarden.workspace import Workspace

    # The attacker: the workspace's files on disk, not a pipeline account.
    store = Workspace.open(ctx.workspace_root).store()
    art = store.put(ctx.input("model"), name="quickstart/drills/model-copy", actor="intruder")
    blob = ctx.workspace_root / "store" / art.body_key
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0x01
    blob.write_bytes(bytes(data))
    # The victim: this stage's account reads it through the store, which must refuse it.
    ctx.store.get(art.ref, ctx.workspace_root / "runs" / "tampered-copy.joblib")


def read_out_of_scope(ctx: Any) -> None:
    """Never runs: the ingest account asks for the model, which it may not read; the read is denied and
    recorded before this code is reached."""
    raise AssertionError("the ingest account read the model")


def login_burst(ctx: Any) -> None:
    """A password-spraying burst: one origin tries one password on many accounts. Every attempt must fail,
    and the monitor must raise an alert."""
    from pipewarden.errors import AuthenticationFailed
    from pipewarden.identity import Authenticator, Policy
    from pipewarden.workspace import Workspace

    ws = Workspace.open(ctx.workspace_root)  # the attacker talks to the login service, like anyone
    auth = Authenticator(
        ws.database(), events=ws.events(), keyring=ws.keyring(), policy=Policy.for_workspace(ws.root)
    )
    origin = f"198.51.100.{secrets.randbelow(250) + 1}"  # a documentation address (RFC 5737)
    refused = 0
    for name in ctx.params["accounts"]:
        try:
            auth.login(name, "Summer2026!", origin=origin)
        except AuthenticationFailed:
            refused += 1
        else:
            raise AssertionError(f"{name}: a sprayed password was accepted")
    ctx.record(failed_logins=refused, origin=origin)
