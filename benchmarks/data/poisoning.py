"""The poisoning screen against planted training rows, beside cleanlab, pyod and ART on the same data.

One process, fixed seeds: every tool sees the same poisoned copy of each data set. Each attack on the
small data sets is drawn with several seeds (`SEEDS`: 3 on digits, 5 on breast cancer and wine; the
near-boundary flips are deterministic), and the table gives the mean F1 over the draws and the worst.
Data sets are scikit-learn's digits (integers 0..16, per-row shape (8, 8)), breast cancer and wine,
and a 100k-row synthetic set (`make_classification`, 50 features, 4 classes; random flips at 10%
only). Injected values stay on the data's own grid (digits are rounded to integers 0..16).

Attacks (the planted rows are the truth):

- random flips 5/10/20%: a row's label moved to another class at random;
- pair flips 10%: class c relabelled c+1 mod K;
- near-boundary flips 10% (digits): rows a cross-validated logistic regression gets right with the
  smallest margin, relabelled to its second choice;
- backdoor (digits): a 3x3 patch of 16 at rows 5-7, cols 5-7 on 5%, 10% and 20% of class 7's rows,
  relabelled 1;
- mislabelled near-duplicate flood 5% (digits): copies of random rows, three pixels moved by one
  grid step, given another label, appended;
- far outliers 5%: rows drawn uniformly inside the per-column range, appended;
- clean data: nothing planted; only the share of rows flagged counts.

Tools: the pipewarden screen (F1 of the rules aimed at the attack, F1 of every flagged row, and the
share of clean rows the whole screen flags); cleanlab `find_label_issues` on 5-fold out-of-fold
probabilities of StandardScaler + LogisticRegression, and cleanlab Datalab (label, near-duplicate and
outlier issue types) on the backdoor, flood and outlier cells; pyod ECOD and IForest on the outlier and
clean cells, at their defaults and, on the outlier cells, also told the planted share as their
contamination (an oracle setting no user has); ART spectral signatures and activation clustering on the
backdoor cells, over a 64-128-10 torch MLP trained 30 epochs on the poisoned data.

    python benchmarks/data/poisoning.py            # everything, the 100k set takes minutes
    python benchmarks/data/poisoning.py --quick    # without the 100k set and ART
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.datasets import load_breast_cancer, load_digits, load_wine, make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "src"))

from pipewarden.data import Table
from pipewarden.data._screen import screen

SEED = 0
#: Attack draws per data set: the small sets vary a lot from one draw to the next, so each cell is run
#: with several seeds (the same seeds for every tool) and reported as the mean and the worst.
SEEDS = {"digits": 3, "cancer": 5, "wine": 5, "synthetic100k": 1}
FPR = 0.01
WORK = Path(__file__).resolve().parent / ".work"

Array = np.ndarray[Any, Any]

LABEL_RULES = ("PW-DATA-201", "PW-DATA-202")
OUTLIER_RULES = ("PW-DATA-211", "PW-DATA-212")
DUP_RULES = ("PW-DATA-221", "PW-DATA-222")
BACKDOOR_RULES = ("PW-DATA-231",)


@dataclass(frozen=True, slots=True)
class Cell:
    attack: str
    data: str
    rate: float
    x: Array
    y: Array
    truth: Array  # indices of planted rows
    aimed: tuple[str, ...]  # pipewarden rules aimed at the attack
    integer: bool
    seed: int = SEED

    @property
    def shape(self) -> tuple[int, ...] | None:
        return (8, 8) if self.data == "digits" else None


@dataclass(frozen=True, slots=True)
class Row:
    attack: str
    data: str
    rate: float
    tool: str
    f1: float | None
    clean_flagged: float
    seconds: float


# --- data and attacks ------------------------------------------------------------------------------


def load(name: str) -> tuple[Array, Array]:
    if name == "synthetic100k":
        x, y = make_classification(
            n_samples=100_000,
            n_features=50,
            n_informative=20,
            n_redundant=10,
            n_classes=4,
            n_clusters_per_class=2,
            class_sep=2.0,
            # No label noise of its own (the default flips 1%): the planted flips are the only truth.
            flip_y=0.0,
            random_state=0,
        )
        return x.astype(float), y.astype(int)
    bunch = {"digits": load_digits, "cancer": load_breast_cancer, "wine": load_wine}[name]()
    return bunch.data.astype(float), bunch.target.astype(int).copy()


def random_flips(y: Array, rate: float, rng: np.random.Generator) -> tuple[Array, Array]:
    k = int(y.max()) + 1
    idx = rng.choice(len(y), round(rate * len(y)), replace=False)
    flipped = y.copy()
    flipped[idx] = (y[idx] + rng.integers(1, k, len(idx))) % k
    return flipped, np.sort(idx)


def pair_flips(y: Array, rate: float, rng: np.random.Generator) -> tuple[Array, Array]:
    k = int(y.max()) + 1
    idx = rng.choice(len(y), round(rate * len(y)), replace=False)
    flipped = y.copy()
    flipped[idx] = (y[idx] + 1) % k
    return flipped, np.sort(idx)


def anchor_probabilities(x: Array, y: Array) -> Array:
    """5-fold out-of-fold probabilities of StandardScaler + LogisticRegression (cleanlab's anchor)."""
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.asarray(cross_val_predict(model, x, y, cv=5, method="predict_proba"))


def boundary_flips(x: Array, y: Array, rate: float) -> tuple[Array, Array]:
    p = anchor_probabilities(x, y)
    order = np.argsort(-p, axis=1)
    top, second = order[:, 0], order[:, 1]
    margin = p[np.arange(len(y)), top] - p[np.arange(len(y)), second]
    margin[top != y] = np.inf  # only rows the model gets right
    idx = np.argsort(margin, kind="stable")[: round(rate * len(y))]
    flipped = y.copy()
    flipped[idx] = second[idx]
    return flipped, np.sort(idx)


def backdoor(
    x: Array, y: Array, frac_of_class: float, rng: np.random.Generator, *, source: int = 7, target: int = 1
) -> tuple[Array, Array, Array]:
    rows = np.flatnonzero(y == source)
    idx = np.sort(rng.choice(rows, round(frac_of_class * len(rows)), replace=False))
    poisoned = x.copy()
    img = poisoned[idx].reshape(-1, 8, 8)
    img[:, 5:8, 5:8] = 16.0
    poisoned[idx] = img.reshape(len(idx), -1)
    relabelled = y.copy()
    relabelled[idx] = target
    return poisoned, relabelled, idx


def dup_flood(x: Array, y: Array, rate: float, rng: np.random.Generator) -> tuple[Array, Array, Array]:
    n, k = len(y), int(y.max()) + 1
    m = round(rate * n)
    src = rng.choice(n, m, replace=False)
    copies = x[src].copy()
    lo, hi = x.min(0), x.max(0)
    for i in range(m):
        j = rng.choice(x.shape[1], 3, replace=False)
        copies[i, j] = np.clip(copies[i, j] + rng.choice([-1, 1], 3), lo[j], hi[j])
    labels = (y[src] + rng.integers(1, k, m)) % k
    return np.vstack([x, copies]), np.concatenate([y, labels]), np.arange(n, n + m)


def outliers(
    x: Array, y: Array, rate: float, rng: np.random.Generator, *, integer: bool
) -> tuple[Array, Array, Array]:
    n = len(y)
    m = round(rate * n)
    planted = rng.uniform(x.min(0), x.max(0), size=(m, x.shape[1]))
    if integer:
        planted = np.round(planted)
    labels = rng.integers(0, int(y.max()) + 1, m)
    return np.vstack([x, planted]), np.concatenate([y, labels]), np.arange(n, n + m)


def cells(quick: bool) -> list[Cell]:
    out: list[Cell] = []
    none = np.zeros(0, dtype=int)
    for name in ("digits", "cancer", "wine"):
        x, y = load(name)
        integer = name == "digits"
        out.append(Cell("clean", name, 0.0, x, y, none, (), integer))
        if name == "digits":
            fy, idx = boundary_flips(x, y, 0.10)  # deterministic: the rows nearest the boundary
            out.append(Cell("boundary flips", name, 0.10, x, fy, idx, LABEL_RULES, integer))
        for seed in range(SEEDS[name]):

            def rng(seed: int = seed) -> np.random.Generator:
                return np.random.default_rng(seed)

            for rate in (0.05, 0.10, 0.20):
                fy, idx = random_flips(y, rate, rng())
                out.append(Cell("random flips", name, rate, x, fy, idx, LABEL_RULES, integer, seed))
            fy, idx = pair_flips(y, 0.10, rng())
            out.append(Cell("pair flips", name, 0.10, x, fy, idx, LABEL_RULES, integer, seed))
            ox, oy, idx = outliers(x, y, 0.05, rng(), integer=integer)
            out.append(Cell("far outliers", name, 0.05, ox, oy, idx, OUTLIER_RULES, integer, seed))
            if name == "digits":
                for frac in (0.05, 0.10, 0.20):
                    bx, by, idx = backdoor(x, y, frac, rng())
                    out.append(Cell("backdoor 7->1", name, frac, bx, by, idx, BACKDOOR_RULES, integer, seed))
                dx, dy, idx = dup_flood(x, y, 0.05, rng())
                out.append(Cell("near-dup flood", name, 0.05, dx, dy, idx, DUP_RULES, integer, seed))
    if not quick:
        x, y = load("synthetic100k")
        out.append(Cell("clean", "synthetic100k", 0.0, x, y, none, (), False))
        fy, idx = random_flips(y, 0.10, np.random.default_rng(SEED))
        out.append(Cell("random flips", "synthetic100k", 0.10, x, fy, idx, LABEL_RULES, False))
    return out


# --- scoring ---------------------------------------------------------------------------------------


def score(flagged: Array, truth: Array) -> tuple[float | None, float]:
    """F1 of the flagged rows against the planted ones (None without planted rows), and the share of
    clean rows flagged."""
    planted = np.zeros(len(flagged), dtype=bool)
    planted[truth] = True
    clean_rate = float((flagged & ~planted).sum() / max((~planted).sum(), 1))
    if not planted.any():
        return None, clean_rate
    tp = int((flagged & planted).sum())
    precision = tp / max(int(flagged.sum()), 1)
    recall = tp / int(planted.sum())
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return f1, clean_rate


def row(cell: Cell, tool: str, flagged: Array, seconds: float) -> Row:
    f1, clean_rate = score(np.asarray(flagged, dtype=bool), cell.truth)
    return Row(cell.attack, cell.data, cell.rate, tool, f1, clean_rate, seconds)


# --- tools -----------------------------------------------------------------------------------------


def run_pipewarden(cell: Cell) -> tuple[list[Row], dict[str, Any]]:
    frame = pd.DataFrame(cell.x, columns=[f"f{i}" for i in range(cell.x.shape[1])])
    frame["y"] = cell.y
    table = Table(frame=frame, label="y", source=cell.data, shape=cell.shape)
    started = time.perf_counter()
    result = screen(table, fpr=FPR, seed=cell.seed)
    seconds = time.perf_counter() - started
    n = len(cell.y)
    aimed = np.zeros(n, dtype=bool)
    per_rule: dict[str, int] = {}
    for finding in result.report.findings:
        if finding.location is None or finding.location.row is None:
            continue
        rules = finding.evidence.get("detectors", [finding.rule_id])
        for rule in rules:
            per_rule[rule] = per_rule.get(rule, 0) + 1
        if set(rules) & set(cell.aimed):
            aimed[finding.location.row] = True
    rows = []
    if cell.aimed:
        rows.append(row(cell, f"pipewarden {'+'.join(r[-3:] for r in cell.aimed)}", aimed, seconds))
    rows.append(row(cell, "pipewarden any rule", result.flagged, seconds))
    planted = np.zeros(n, dtype=bool)
    planted[cell.truth] = True
    caught = {
        rule: int(
            sum(
                1
                for f in result.report.findings
                if f.location
                and f.location.row is not None
                and planted[f.location.row]
                and rule in f.evidence.get("detectors", [])
            )
        )
        for rule in per_rule
    }
    detail = {
        "flagged_by_rule": per_rule,
        "planted_caught_by_rule": caught,
        "estimates": {k: v for k, v in result.estimates.items() if k != "left_out_columns"},
    }
    return rows, detail


def run_cleanlab(cell: Cell, datalab: bool) -> list[Row]:
    from cleanlab.filter import find_label_issues

    started = time.perf_counter()
    probs = anchor_probabilities(cell.x, cell.y)
    proba_seconds = time.perf_counter() - started
    issues = find_label_issues(labels=cell.y, pred_probs=probs)
    rows = [row(cell, "cleanlab find_label_issues", issues, time.perf_counter() - started)]
    if not datalab:
        return rows
    from cleanlab import Datalab

    started = time.perf_counter()
    lab = Datalab(data={"X": cell.x, "y": cell.y}, label_name="y", verbosity=0)
    lab.find_issues(features=cell.x, pred_probs=probs)
    seconds = time.perf_counter() - started + proba_seconds
    table = lab.get_issues()
    rows.extend(
        row(cell, f"cleanlab Datalab {column[3:-6]}", table[column].to_numpy(), seconds)
        for column in ("is_label_issue", "is_near_duplicate_issue", "is_outlier_issue")
        if column in table.columns
    )
    return rows


def run_pyod(cell: Cell) -> list[Row]:
    from pyod.models.ecod import ECOD
    from pyod.models.iforest import IForest

    rows = []
    # Each at its defaults (contamination 0.1, what a user gets without knowing the answer) and, where
    # rows were planted, told the planted share as its contamination: an oracle no user has, shown as the
    # ceiling of what the detector's ranking can give.
    planted = len(cell.truth) / len(cell.y)
    settings: list[tuple[str, dict[str, Any]]] = [("", {})]
    if planted > 0:
        settings.append((" (told the planted rate)", {"contamination": planted}))
    for suffix, options in settings:
        for name, make in (
            ("pyod ECOD", lambda o=options: ECOD(**o)),
            ("pyod IForest", lambda o=options: IForest(random_state=SEED, **o)),
        ):
            started = time.perf_counter()
            model = make()
            model.fit(cell.x)
            rows.append(row(cell, name + suffix, model.labels_ == 1, time.perf_counter() - started))
    return rows


def run_art(cell: Cell) -> list[Row]:
    import torch
    from art.defences.detector.poison import ActivationDefence, SpectralSignatureDefense
    from art.estimators.classification import PyTorchClassifier

    torch.manual_seed(SEED)
    x = (cell.x / 16.0).astype(np.float32)
    classes = int(cell.y.max()) + 1
    model = torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, classes))
    classifier = PyTorchClassifier(
        model=model,
        loss=torch.nn.CrossEntropyLoss(),
        optimizer=torch.optim.Adam(model.parameters(), lr=1e-3),
        input_shape=(64,),
        nb_classes=classes,
        clip_values=(0.0, 1.0),
    )
    started = time.perf_counter()
    classifier.fit(x, cell.y, batch_size=64, nb_epochs=30, verbose=False)
    train_seconds = time.perf_counter() - started
    onehot = np.eye(classes, dtype=np.float32)[cell.y]
    rows = []
    defences: Sequence[tuple[str, Callable[[], Any]]] = (
        (
            "ART spectral signatures",
            lambda: SpectralSignatureDefense(
                classifier, x, onehot, batch_size=128, expected_pp_poison=cell.rate
            ).detect_poison(),
        ),
        ("ART activation clustering", lambda: ActivationDefence(classifier, x, onehot).detect_poison()),
    )
    for name, detect in defences:
        started = time.perf_counter()
        try:
            _, is_clean = detect()
        except Exception as error:  # a comparison tool's failure is recorded, not fatal
            print(
                f"{name} on {cell.attack} {cell.rate:.0%}: {type(error).__name__}: {error}", file=sys.stderr
            )
            continue
        flagged = np.asarray(is_clean) == 0
        rows.append(row(cell, name, flagged, time.perf_counter() - started + train_seconds))
    return rows


# --- main ------------------------------------------------------------------------------------------


def table(rows: list[Row]) -> str:
    """One line per attack, data set, rate and tool: F1 and clean rate averaged over the seeds run, and
    the worst F1 of any seed."""
    groups: dict[tuple[str, str, float, str], list[Row]] = {}
    for r in rows:
        groups.setdefault((r.attack, r.data, r.rate, r.tool), []).append(r)
    lines = [
        "| attack | data | rate | tool | F1 (mean) | worst F1 | clean rows flagged | seconds | seeds |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for (attack, data, rate, tool), runs in groups.items():
        scores = [r.f1 for r in runs if r.f1 is not None]
        mean = "-" if not scores else f"{float(np.mean(scores)):.3f}"
        worst = "-" if not scores else f"{min(scores):.3f}"
        clean = float(np.mean([r.clean_flagged for r in runs]))
        seconds = float(np.mean([r.seconds for r in runs]))
        lines.append(
            f"| {attack} | {data} | {rate:.0%} | {tool} | {mean} | {worst} | {clean:.2%} | {seconds:.2f} | "
            f"{len(runs)} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip the 100k set and ART")
    parser.add_argument("--only", default=None, help="run only cells of this data set")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    warnings.filterwarnings("ignore")
    WORK.mkdir(parents=True, exist_ok=True)
    rows: list[Row] = []
    details: list[dict[str, Any]] = []
    for cell in cells(args.quick):
        if args.only is not None and cell.data != args.only:
            continue
        print(
            f"{cell.attack} | {cell.data} | {cell.rate:.0%} | seed {cell.seed} ...",
            file=sys.stderr,
            flush=True,
        )
        pw_rows, detail = run_pipewarden(cell)
        rows.extend(pw_rows)
        details.append(
            {"attack": cell.attack, "data": cell.data, "rate": cell.rate, "seed": cell.seed, **detail}
        )
        rich = cell.attack in ("backdoor 7->1", "near-dup flood", "far outliers")
        rows.extend(run_cleanlab(cell, datalab=rich and cell.data != "synthetic100k"))
        if cell.attack in ("far outliers", "clean") and cell.data != "synthetic100k":
            rows.extend(run_pyod(cell))
        if cell.attack == "backdoor 7->1" and not args.quick:
            rows.extend(run_art(cell))
        (WORK / "poisoning.md").write_text(table(rows) + "\n")
        (WORK / "poisoning.json").write_text(json.dumps(details, indent=1, default=str))
    print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
