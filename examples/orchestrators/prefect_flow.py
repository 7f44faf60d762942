"""A Prefect flow whose tasks run as pipewarden stages (Prefect 2.x or 3.x).

As in the Airflow example: each task body is a `pipewarden.stage(...)`, run as its own service account
behind its gates; a blocking gate raises `pipewarden.errors.GateBlocked`, which fails the task and the
flow. Set PIPEWARDEN_WORKSPACE where the flow runs (or pass `workspace=`).
"""

from __future__ import annotations

import pandas as pd
from prefect import flow, task

import pipewarden
from pipewarden.pipeline import gate

FEATURES = ["tenure_months", "monthly_charges", "support_calls", "usage_gb", "contract_months"]


@task
def ingest(batch_path: str) -> None:
    with pipewarden.stage(
        "ingest",
        account="qs-ingest",
        pipeline="churn-prefect",
        outputs={"customers": "quickstart/data/customers"},
        gates=[
            gate("contract", on="customers", contract="contract.yaml", policy="quarantine"),
            gate("screen", on="customers", label="churn", policy="quarantine"),
        ],
    ) as ctx:
        pd.read_csv(batch_path).to_csv(ctx.output("customers", suffix=".csv"), index=False)


@task
def train() -> None:
    import joblib
    from sklearn.ensemble import RandomForestClassifier

    with pipewarden.stage(
        "train",
        account="qs-train",
        pipeline="churn-prefect",
        inputs={"customers": "quickstart/data/customers"},
        outputs={"model": "quickstart/models/churn"},
        gates=[gate("scan", on="model")],
    ) as ctx:
        frame = pd.read_csv(ctx.input("customers"))
        model = RandomForestClassifier(random_state=0).fit(frame[FEATURES], frame["churn"])
        joblib.dump(model, ctx.output("model", suffix=".joblib"))


@flow(name="churn")
def churn(batch_path: str = "data/customers.csv") -> None:
    ingest(batch_path)
    train()


if __name__ == "__main__":
    churn()
