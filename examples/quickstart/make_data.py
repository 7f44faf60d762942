"""Writes the quickstart's bundled data: a customer-churn training batch with planted attacks, a batch of
inference requests with planted attacks, the data contract learned from trusted data, and the list of
planted rows the run must catch. Deterministic: the same files every time.

    python examples/quickstart/make_data.py          # write them
    python examples/quickstart/make_data.py --check  # exit 1 if the bundled files differ

The attacks are harmless by construction (numbers and labels only):
- malformed rows: text in a number column, values outside every range seen, a missing label, a
  spreadsheet formula (CSV injection);
- poisoned rows: labels flipped on customers whose churn is not in doubt (a label-flipping attack,
  MITRE ATLAS AML.T0020), and a small cluster of injected points far from every real customer;
- requests far outside the training data (out of distribution), and requests pushed off the data's
  manifold to flip the model's answer (adversarial).
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
FEATURES = ["tenure_months", "monthly_charges", "support_calls", "usage_gb", "contract_months"]


def customers(rng: np.random.Generator, n: int) -> pd.DataFrame:
    tenure = rng.integers(1, 73, n)
    contract = rng.choice([1, 12, 24], n, p=[0.5, 0.3, 0.2])
    charges = np.round(rng.normal(70, 20, n).clip(20, 120), 2)
    calls = rng.poisson(2, n).clip(0, 9)
    usage = np.round(rng.gamma(4, 12, n).clip(0, 190), 1)
    # Churn: short tenure, month-to-month contracts, many support calls and high charges drive it.
    score = -0.06 * tenure - 0.08 * contract + 0.6 * calls + 0.03 * (charges - 70) + 1.2
    churn = (score + rng.normal(0, 0.35, n) > 0).astype(int)
    frame = pd.DataFrame(
        {
            "tenure_months": tenure,
            "monthly_charges": charges,
            "support_calls": calls,
            "usage_gb": usage,
            "contract_months": contract,
            "churn": churn,
        }
    )
    frame["margin"] = np.abs(score)
    return frame


def write(out: Path) -> None:
    from pipewarden.data import profile, table_from_frame

    rng = np.random.default_rng(20261126)
    data = out / "data"
    data.mkdir(parents=True, exist_ok=True)

    trusted = customers(rng, 1500).drop(columns="margin")
    contract = profile(table_from_frame(trusted, label="churn", source="trusted customers"))
    (out / "contract.yaml").write_text(contract.to_yaml(), encoding="utf-8")

    batch = customers(rng, 1200)
    planted: dict[str, list[int]] = {}
    # Label flips, on customers far from the decision boundary (their true label is not in doubt).
    sure = batch.index[batch["margin"] > 2.5].to_numpy()
    flips = np.sort(rng.choice(sure, 36, replace=False))
    batch.loc[flips, "churn"] = 1 - batch.loc[flips, "churn"]
    batch = batch.drop(columns="margin").astype(object)
    # Injected points: near-copies of one made-up customer where no real one is, all labelled "stays".
    injected = pd.DataFrame(
        {
            "tenure_months": 71,
            "monthly_charges": np.round(rng.normal(118, 0.05, 12), 2),
            "support_calls": 8,
            "usage_gb": np.round(rng.normal(178, 0.1, 12), 1),
            "contract_months": 1,
            "churn": 0,
        }
    ).astype(object)
    # Malformed rows: each breaks the contract in its own way.
    malformed = pd.DataFrame(
        [
            {
                "tenure_months": "twelve",
                "monthly_charges": 70.0,
                "support_calls": 1,
                "usage_gb": 40.0,
                "contract_months": 12,
                "churn": 0,
            },
            {
                "tenure_months": -5,
                "monthly_charges": 65.0,
                "support_calls": 2,
                "usage_gb": 30.0,
                "contract_months": 1,
                "churn": 1,
            },
            {
                "tenure_months": 24,
                "monthly_charges": 99999.0,
                "support_calls": 1,
                "usage_gb": 50.0,
                "contract_months": 24,
                "churn": 0,
            },
            {
                "tenure_months": 10,
                "monthly_charges": 80.0,
                "support_calls": 3,
                "usage_gb": 20.0,
                "contract_months": 1,
                "churn": "",
            },
            {
                "tenure_months": 30,
                "monthly_charges": "=cmd|' /C calc'!A0",
                "support_calls": 0,
                "usage_gb": 60.0,
                "contract_months": 12,
                "churn": 0,
            },
            {
                "tenure_months": 5,
                "monthly_charges": 85.0,
                "support_calls": 400,
                "usage_gb": 35.0,
                "contract_months": 1,
                "churn": 1,
            },
            {
                "tenure_months": 40,
                "monthly_charges": 60.0,
                "support_calls": 1,
                "usage_gb": "",
                "contract_months": 12,
                "churn": 0,
            },
            {
                "tenure_months": 15,
                "monthly_charges": 75.0,
                "support_calls": 2,
                "usage_gb": 55.0,
                "contract_months": 12,
                "churn": 3,
            },
        ]
    ).astype(object)
    # Spread the planted rows through the batch, as an attacker would.
    rows = pd.concat([batch, injected, malformed], ignore_index=True)
    kind = np.array(["clean"] * len(batch) + ["injected"] * len(injected) + ["malformed"] * len(malformed))
    kind[flips] = "flipped"
    order = rng.permutation(len(rows))
    rows, kind = rows.iloc[order].reset_index(drop=True), kind[order]
    rows.to_csv(data / "customers.csv", index=False)
    planted["malformed"] = np.flatnonzero(kind == "malformed").tolist()
    planted["poisoned"] = np.flatnonzero((kind == "flipped") | (kind == "injected")).tolist()

    # Inference requests: ordinary customers, then planted ones spread among them.
    normal = customers(rng, 180).drop(columns=["margin", "churn"])
    far = pd.DataFrame(
        {
            "tenure_months": rng.integers(300, 600, 10),
            "monthly_charges": np.round(rng.uniform(900, 5000, 10), 2),
            "support_calls": rng.integers(40, 90, 10),
            "usage_gb": np.round(rng.uniform(2000, 9000, 10), 1),
            "contract_months": 24,
        }
    )
    # Off the manifold: every feature inside its own range, in a combination no customer has, chosen to
    # push the model towards "stays" (long contract) while the rest says "leaves".
    pushed = pd.DataFrame(
        {
            "tenure_months": 1,
            "monthly_charges": np.round(rng.uniform(118, 120, 10), 2),
            "support_calls": 9,
            "usage_gb": np.round(rng.uniform(0, 1, 10), 1),
            "contract_months": 24,
        }
    )
    requests = pd.concat([normal, far, pushed], ignore_index=True)
    rkind = np.array(["normal"] * len(normal) + ["far"] * len(far) + ["pushed"] * len(pushed))
    order = rng.permutation(len(requests))
    requests, rkind = requests.iloc[order].reset_index(drop=True), rkind[order]
    requests.to_csv(data / "requests.csv", index=False)
    planted["out_of_distribution"] = np.flatnonzero(rkind == "far").tolist()
    planted["adversarial"] = np.flatnonzero(rkind == "pushed").tolist()
    planted["suspect_requests"] = np.flatnonzero(rkind != "normal").tolist()
    (data / "planted.json").write_text(json.dumps(planted, indent=1) + "\n", encoding="utf-8")


FILES = ("contract.yaml", "data/customers.csv", "data/requests.csv", "data/planted.json")


def main(argv: list[str]) -> int:
    if "--check" not in argv:
        write(HERE)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        write(Path(tmp))
        stale = [f for f in FILES if (Path(tmp) / f).read_bytes() != (HERE / f).read_bytes()]
    for name in stale:
        print(f"examples/quickstart/{name} is stale: run examples/quickstart/make_data.py", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
