"""Data checks, the poisoning screen and guarded predictions over HTTP, on a real workspace."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from sklearn.linear_model import LogisticRegression

from pipewarden.data import profile, read_table
from pipewarden.identity import Grant
from tests.server.serverkit import ROOT, ServerKit, assert_problem, bearer

FRAUD = "project:fraud"


def training_frame(rows: int = 300, seed: int = 7) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 2))
    y = (x[:, 0] + x[:, 1] > 0).astype(int)
    return pd.DataFrame({"f1": x[:, 0].round(4), "f2": x[:, 1].round(4), "label": y})


@pytest.fixture
def kit(tmp_path: Path) -> ServerKit:
    return ServerKit(tmp_path)


@pytest.fixture
def client(kit: ServerKit) -> Iterator[TestClient]:
    with kit.client() as c:
        yield c


def _store(kit: ServerKit, name: str, path: Path, parents: tuple[str, ...] = ()) -> str:
    art = kit.ws.store().put(path, name=name, actor=ROOT.name, parents=list(parents))
    return art.ref


def _train(kit: ServerKit) -> tuple[str, str]:
    """A data set and a model made from it, both in the store: the model's lineage names the data."""
    frame = training_frame()
    data = kit.root / "train.csv"
    frame.to_csv(data, index=False)
    data_ref = _store(kit, "fraud/train", data)
    model = LogisticRegression().fit(frame[["f1", "f2"]], frame["label"])
    model_path = kit.root / "model.joblib"
    joblib.dump(model, model_path)
    return data_ref, _store(kit, "fraud/model", model_path, parents=(data_ref,))


def test_a_batch_is_checked_against_a_contract_kept_in_the_store(kit: ServerKit, client: TestClient) -> None:
    frame = training_frame()
    trusted = kit.root / "trusted.csv"
    frame.to_csv(trusted, index=False)
    contract = kit.root / "contract.yaml"
    contract.write_text(profile(read_table(trusted, label="label")).to_yaml())
    _store(kit, "fraud/contracts/train", contract)
    batch = frame.head(20).astype(object)
    batch.loc[3, "f1"] = "=cmd|' /C calc'!A0"  # formula injection: rejected whatever the contract says
    batch.loc[7, "label"] = 9  # a label the contract does not know
    token = kit.token(kit.service("loader", Grant("pipeline-service", FRAUD)))
    answer = client.post(
        "/v1/data/fraud/batch.csv/check",
        params={"contract": "fraud/contracts/train"},
        content=batch.to_csv(index=False).encode(),
        headers=bearer(token),
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["rows"] == 20 and body["accepted"] + body["quarantined"] == 20
    assert {3, 7} <= set(body["rejected_rows"])
    assert all(f["location"]["path"] == "fraud/batch.csv" for f in body["report"]["findings"])
    assert "spool" not in answer.text
    # A contract that is not in the store is not trusted from anywhere else.
    missing = client.post(
        "/v1/data/fraud/batch.csv/check",
        params={"contract": "fraud/contracts/nope"},
        content=b"f1,f2,label\n1,2,0\n",
        headers=bearer(token),
    )
    assert_problem(missing, 404, "not-found")
    # A stored contract that is not text is named, not a server error.
    binary = kit.root / "binary.yaml"
    binary.write_bytes(b"\x89\x00\xff")
    _store(kit, "fraud/contracts/binary", binary)
    broken = client.post(
        "/v1/data/fraud/batch.csv/check",
        params={"contract": "fraud/contracts/binary"},
        content=b"f1,f2,label\n1,2,0\n",
        headers=bearer(token),
    )
    assert "not UTF-8" in assert_problem(broken, 400, "bad-data")["detail"]


def test_the_screen_names_flipped_labels(kit: ServerKit, client: TestClient) -> None:
    frame = training_frame(rows=400)
    flipped = [5, 50, 150, 250, 350]
    frame.loc[flipped, "label"] = 1 - frame.loc[flipped, "label"]
    token = kit.token(kit.service("screener", Grant("pipeline-service", FRAUD)))
    answer = client.post(
        "/v1/data/fraud/train.csv/screen",
        params={"label": "label"},
        content=frame.to_csv(index=False).encode(),
        headers=bearer(token),
    )
    assert answer.status_code == 200, answer.text
    assert len(set(answer.json()["flagged_rows"]) & set(flipped)) >= 4
    outside = client.post(
        "/v1/data/churn/train.csv/screen",
        params={"label": "label"},
        content=frame.to_csv(index=False).encode(),
        headers=bearer(token),
    )
    assert_problem(outside, 403, "access-denied")


def test_predictions_are_served_behind_the_guard(kit: ServerKit, client: TestClient) -> None:
    _, model_ref = _train(kit)
    token = kit.token(kit.service("api", Grant("pipeline-service", FRAUD)))
    rows = [{"f1": 1.2, "f2": 0.4}, {"f1": -1.0, "f2": -0.7}, {"f1": 400.0, "f2": -350.0}]
    answer = client.post("/v1/models/fraud/model/predict", json={"rows": rows}, headers=bearer(token))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["model"] == model_ref
    first, second, far = body["rows"]
    assert (first["verdict"], first["prediction"]) == ("valid", 1)
    assert (second["verdict"], second["prediction"]) == ("valid", 0)
    assert far["verdict"] != "valid"  # far outside anything the model was trained on
    events = [e for e in kit.events_since(0) if e.action == "model.predict"]
    assert events[-1].outcome == "allowed" and events[-1].attributes["rows"] == 3
    # Out of scope: the same service may not query another project's model.
    outside = client.post("/v1/models/churn/model/predict", json={"rows": rows[:1]}, headers=bearer(token))
    assert_problem(outside, 403, "access-denied")


def test_a_model_without_a_data_set_in_its_lineage_is_not_served(kit: ServerKit, client: TestClient) -> None:
    frame = training_frame()
    model_path = kit.root / "lonely.joblib"
    joblib.dump(LogisticRegression().fit(frame[["f1", "f2"]], frame["label"]), model_path)
    _store(kit, "fraud/lonely", model_path)
    token = kit.token(kit.service("api", Grant("pipeline-service", FRAUD)))
    answer = client.post(
        "/v1/models/fraud/lonely/predict", json={"rows": [{"f1": 0.1, "f2": 0.2}]}, headers=bearer(token)
    )
    problem = assert_problem(answer, 422, "refused-by-guard")
    assert "lineage" in problem["detail"]
    assert_problem(
        client.post("/v1/models/fraud/none/predict", json={"rows": [{"f1": 0.1}]}, headers=bearer(token)),
        404,
        "not-found",
    )


def test_malformed_prediction_requests_are_refused(kit: ServerKit, client: TestClient) -> None:
    _train(kit)
    token = kit.token(kit.service("api", Grant("pipeline-service", FRAUD)))
    for body in ({"rows": []}, {"rows": [{"f1": "x"}]}, {"nope": 1}):
        assert_problem(
            client.post("/v1/models/fraud/model/predict", json=body, headers=bearer(token)),
            422,
            "invalid-request",
        )
