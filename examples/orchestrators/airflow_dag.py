"""An Airflow DAG whose tasks run as pipewarden stages (Airflow 2.x TaskFlow API).

Each task body sits inside `pipewarden.stage(...)`: its inputs are read through the store as the task's
own service account (authorized, audited, verified), its gates run, and its outputs are stored scanned,
encrypted and signed with a provenance statement, or not at all. A gate that blocks fails the task, so
Airflow stops what depends on it. Set PIPEWARDEN_WORKSPACE on the workers (or pass `workspace=`).
"""

from __future__ import annotations

import os
from datetime import datetime

import pandas as pd
from airflow.decorators import dag, task

import pipewarden
from pipewarden.pipeline import gate

# Where the day's batch lands and the contract learned from trusted data (set for the workers).
BATCH = os.environ.get("CHURN_BATCH", "/data/incoming/customers.csv")
CONTRACT = os.environ.get("CHURN_CONTRACT", "/opt/pipelines/churn/contract.yaml")
FEATURES = ["tenure_months", "monthly_charges", "support_calls", "usage_gb", "contract_months"]


@dag(schedule="@daily", start_date=datetime(2026, 1, 1), catchup=False, tags=["pipewarden"])
def churn() -> None:
    @task
    def ingest(batch_path: str) -> None:
        with pipewarden.stage(
            "ingest",
            account="qs-ingest",
            pipeline="churn-airflow",
            outputs={"customers": "quickstart/data/customers"},
            gates=[
                gate(
                    "contract",
                    on="customers",
                    contract=CONTRACT,
                    policy="quarantine",
                ),
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
            pipeline="churn-airflow",
            inputs={"customers": "quickstart/data/customers"},
            outputs={"model": "quickstart/models/churn"},
            gates=[gate("scan", on="model")],
        ) as ctx:
            frame = pd.read_csv(ctx.input("customers"))
            model = RandomForestClassifier(random_state=0).fit(frame[FEATURES], frame["churn"])
            joblib.dump(model, ctx.output("model", suffix=".joblib"))

    ingest(BATCH) >> train()


churn()
