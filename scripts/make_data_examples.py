"""Write examples/data/: a trusted training table, a new batch with bad rows, and a poisoned training set.

    python scripts/make_data_examples.py            # rewrite examples/data/
    python scripts/make_data_examples.py --check    # exit 1 if the committed files differ

`train.csv` is clean; `batch.csv` holds 200 new rows of which 6 are bad (a spreadsheet formula, a NUL
byte, a missing value, a value far out of range, an unknown site, a label never seen);
`poisoned.csv` is `train.csv` with 24 labels flipped, 8 points injected far away and a flood of 12
mislabelled near-copies of one row. Output is byte-for-byte deterministic.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
TARGET = ROOT / "examples" / "data"
SPECIES = ("adelie", "chinstrap", "gentoo")
SITES = ("biscoe", "dream", "torgersen")
COLUMNS = ("bill_length", "bill_depth", "flipper_length", "body_mass", "site", "species")
CENTRES = np.array([[38.8, 18.3, 190.0, 3700.0], [48.8, 18.4, 196.0, 3730.0], [47.5, 15.0, 217.0, 5080.0]])
SPREADS = np.array([2.7, 1.2, 6.5, 450.0])


def _rows(rng: np.random.Generator, count: int) -> list[list[object]]:
    species = rng.integers(0, 3, count)
    values = CENTRES[species] + rng.standard_normal((count, 4)) * SPREADS
    rows: list[list[object]] = []
    for label, (bill, depth, flipper, mass) in zip(species.tolist(), values.tolist(), strict=True):
        rows.append(
            [
                round(bill, 1),
                round(depth, 1),
                round(flipper),
                int(round(mass, -1)),
                SITES[rng.integers(0, 3)],
                SPECIES[label],
            ]
        )
    return rows


def _far(rng: np.random.Generator) -> list[object]:
    return [
        round(float(rng.uniform(80, 95)), 1),
        round(float(rng.uniform(2, 5)), 1),
        int(rng.uniform(120, 140)),
        int(round(float(rng.uniform(9000, 12000)), -1)),
        SITES[int(rng.integers(0, 3))],
        SPECIES[int(rng.integers(0, 3))],
    ]


def _csv(rows: list[list[object]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows(rows)
    return out.getvalue()


def build() -> dict[str, str]:
    rng = np.random.default_rng(20261126)
    train = _rows(rng, 600)
    batch = _rows(rng, 200)
    batch[10][4] = '=HYPERLINK("http://example.invalid","click")'  # CSV injection (CWE-1236)
    batch[40][4] = "dream\x00"  # a NUL byte
    batch[70][0] = ""  # a missing measurement
    batch[100][3] = 52000  # body mass ten times any seen
    batch[130][4] = "atlantis"  # a site the contract does not know
    batch[160][5] = "emperor"  # a label never seen in training
    poisoned = [list(row) for row in train]
    flips = rng.choice(len(poisoned), 24, replace=False)
    for i in flips.tolist():
        current = SPECIES.index(str(poisoned[i][5]))
        poisoned[i][5] = SPECIES[(current + 1 + int(rng.integers(0, 2))) % 3]
    poisoned.extend(_far(rng) for _ in range(8))  # far outliers
    source = poisoned[5]
    wrong = SPECIES[(SPECIES.index(str(source[5])) + 1) % 3]
    # A flood of near-copies of one row, all with another label.
    poisoned.extend(
        [source[0], source[1], source[2], int(str(source[3])) + 10 * (k % 2), source[4], wrong]
        for k in range(12)
    )
    return {"train.csv": _csv(train), "batch.csv": _csv(batch), "poisoned.csv": _csv(poisoned)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if examples/data/ is stale")
    args = parser.parse_args()
    files = build()
    if args.check:
        stale = [
            n for n, text in files.items() if not (TARGET / n).exists() or (TARGET / n).read_text() != text
        ]
        for name in stale:
            print(f"examples/data/{name} is stale", file=sys.stderr)
        return 1 if stale else 0
    TARGET.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (TARGET / name).write_text(text, encoding="utf-8", newline="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
