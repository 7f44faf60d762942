"""The orchestrator examples use `pipewarden.stage` as documented.

Prefect and Airflow are someone else's schedulers and are not installed for the tests: their decorators
are replaced by ones that call the function as it is (the boundary), and the example's pipewarden calls
run for real against a workspace.
"""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from pipewarden.events import Actor
from pipewarden.identity import Accounts, Grant
from pipewarden.workspace import Workspace

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples" / "orchestrators"
QUICKSTART = REPO / "examples" / "quickstart"


def _passthrough(*args: Any, **kwargs: Any) -> Any:
    if args and callable(args[0]) and not kwargs:
        return args[0]
    return lambda func: func


def _workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    ws = Workspace.init(tmp_path / "ws")
    accounts = Accounts(ws.database(), events=ws.events())
    op = Actor("op", "system")
    accounts.create_service("qs-ingest", actor=op, grants=[Grant("pipeline-service", "quickstart/data/*")])
    accounts.create_service(
        "qs-train",
        actor=op,
        grants=[
            Grant("pipeline-service", "quickstart/models/*"),
            Grant("pipeline-service", "artifact:quickstart/data/customers"),
        ],
    )
    monkeypatch.setenv("PIPEWARDEN_WORKSPACE", str(ws.root))
    monkeypatch.chdir(QUICKSTART)  # the examples name contract.yaml and data/ from here
    return ws


def _load(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(f"{name}_example", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _stored_with_lineage(ws: Workspace) -> None:
    store = ws.store()
    assert store.versions("quickstart/data/customers") == [1]
    assert store.versions("quickstart/models/churn") == [1]
    assert store.versions("quickstart/models/churn.provenance") == [1]
    model = store.resolve("quickstart/models/churn@1")
    assert [p.name for p in model.parents] == ["quickstart/data/customers"]
    # The contract and the screen ran on the way in: the planted malformed rows never reached the store.
    assert b"twelve" not in store.read_bytes("quickstart/data/customers@1")


def test_the_prefect_flow_runs_its_tasks_as_stages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    prefect = types.ModuleType("prefect")
    prefect.flow = _passthrough  # type: ignore[attr-defined]
    prefect.task = _passthrough  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "prefect", prefect)
    ws = _workspace(tmp_path, monkeypatch)
    _load("prefect_flow").churn("data/customers.csv")
    _stored_with_lineage(ws)


class _Done:
    """What a task call returns under the stand-in: enough for `a >> b`."""

    def __rshift__(self, other: object) -> object:
        return other


def _run_now(func: Any) -> Any:
    def call(*args: Any, **kwargs: Any) -> _Done:
        func(*args, **kwargs)
        return _Done()

    return call


def test_the_airflow_dag_runs_its_tasks_as_stages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    airflow = types.ModuleType("airflow")
    decorators = types.ModuleType("airflow.decorators")
    decorators.dag = _passthrough  # type: ignore[attr-defined]
    decorators.task = _run_now  # type: ignore[attr-defined]  # a task runs when the DAG is built
    monkeypatch.setitem(sys.modules, "airflow", airflow)
    monkeypatch.setitem(sys.modules, "airflow.decorators", decorators)
    ws = _workspace(tmp_path, monkeypatch)
    monkeypatch.setenv("CHURN_BATCH", str(QUICKSTART / "data" / "customers.csv"))
    monkeypatch.setenv("CHURN_CONTRACT", str(QUICKSTART / "contract.yaml"))
    _load("airflow_dag")  # the module builds its DAG on import, as Airflow does
    _stored_with_lineage(ws)
