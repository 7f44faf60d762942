"""The poisoning screen: each planted attack is found, clean rows are not flagged beyond the stated rate,
and flagged rows are accounted for."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_digits, make_blobs
from typer.testing import CliRunner

from pipewarden.cli import app
from pipewarden.data import Table, read_table, screen, screen_file
from pipewarden.errors import ConfigError, DataInputError

SEED = 7


def _blobs(rows: int = 600, *, seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    x, y = make_blobs(n_samples=rows, centers=3, n_features=6, cluster_std=1.0, random_state=seed)
    return np.round(x, 3), y


def _table(x: np.ndarray, y: np.ndarray | None, *, shape: tuple[int, ...] | None = None) -> Table:
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(x.shape[1])])
    if y is not None:
        frame["y"] = y
    return Table(frame=frame, label="y" if y is not None else None, source="train.csv", shape=shape)


def _rows(result, *rules: str) -> set[int]:
    return {
        f.location.row
        for f in result.report.findings
        if f.location.row is not None and (not rules or set(f.evidence["detectors"]) & set(rules))
    }


def test_clean_data_is_flagged_at_most_at_the_stated_rate() -> None:
    x, y = _blobs()
    result = screen(_table(x, y))
    # Five calibrated checks at 1% each on clean rows: well under the 5% the screen promises.
    assert result.flagged.mean() <= 0.05
    summary = [f for f in result.report.findings if f.rule_id == "PW-DATA-200"]
    assert len(summary) == 1 and summary[0].evidence["rows"] == 600


def test_random_label_flips_are_found() -> None:
    x, y = _blobs()
    rng = np.random.default_rng(SEED)
    flipped = rng.choice(len(y), 60, replace=False)
    noisy = y.copy()
    noisy[flipped] = (y[flipped] + rng.integers(1, 3, len(flipped))) % 3
    result = screen(_table(x, noisy))
    found = _rows(result, "PW-DATA-201", "PW-DATA-202")
    assert len(found & set(flipped.tolist())) >= 0.9 * len(flipped)
    assert len(found - set(flipped.tolist())) <= 0.05 * (len(y) - len(flipped))
    finding = next(f for f in result.report.findings if f.location.row == int(flipped[0]))
    assert finding.evidence["likely_label"] == str(y[flipped[0]])


def test_injected_outliers_are_found_globally() -> None:
    x, y = _blobs()
    rng = np.random.default_rng(SEED)
    far = np.round(rng.uniform(x.min() * 3, x.max() * 3, size=(20, x.shape[1])), 3)
    result = screen(_table(np.vstack([x, far]), np.concatenate([y, rng.integers(0, 3, 20)])))
    injected = set(range(len(y), len(y) + 20))
    assert injected <= _rows(result, "PW-DATA-211")


def test_flips_in_a_large_table_are_found_even_where_the_seed_alone_would_sample() -> None:
    # Above 20,000 rows the label check votes with neighbours from a sample of rows. The rows flipped here
    # are exactly the ones a sample drawn from the seed alone would start with: if the sample ignored the
    # data, half of every row's judges would be planted.
    from pipewarden.data._screen._neighbors import EXACT_ROWS

    rows = 5 * EXACT_ROWS  # 10% flipped: as many rows as half the sample
    x, y = make_blobs(n_samples=rows, centers=4, n_features=8, cluster_std=1.5, random_state=SEED)
    flipped = np.random.default_rng(0).choice(rows, rows // 10, replace=False)
    noisy = y.copy()
    noisy[flipped] = (y[flipped] + 1) % 4
    result = screen(_table(np.round(x, 4), noisy), checks=["labels"], seed=0)
    found = _rows(result, "PW-DATA-201", "PW-DATA-202")
    planted = set(flipped.tolist())
    assert len(found & planted) >= 0.9 * len(planted)
    assert len(found - planted) <= 0.02 * (len(y) - len(planted))


def test_an_outlier_within_its_class_is_found() -> None:
    x, y = _blobs()
    # A point in the middle of class 0, labelled 1: ordinary among all rows, alone among the 1s.
    centre0 = x[y == 0].mean(axis=0)
    result = screen(_table(np.vstack([x, centre0]), np.append(y, 1)), checks=["outliers"])
    assert len(y) in _rows(result, "PW-DATA-212")


def test_mislabelled_near_copies_flag_the_copy_not_the_original() -> None:
    x, y = _blobs()
    rng = np.random.default_rng(SEED)
    originals = rng.choice(len(y), 30, replace=False)
    copies = x[originals] + rng.choice([-0.001, 0.001], size=(30, x.shape[1]))
    labels = (y[originals] + 1) % 3
    result = screen(_table(np.vstack([x, copies]), np.concatenate([y, labels])), checks=["duplicates"])
    flagged = _rows(result, "PW-DATA-221")
    copy_rows = set(range(len(y), len(y) + 30))
    assert len(flagged & copy_rows) >= 27
    assert not flagged & set(originals.tolist())


def test_a_duplicate_flood_is_found() -> None:
    x, y = _blobs()
    flood = np.repeat(x[:1], 25, axis=0)
    result = screen(
        _table(np.vstack([x, flood]), np.concatenate([y, np.repeat(y[:1], 25)])), checks=["duplicates"]
    )
    assert len(_rows(result, "PW-DATA-222") & set(range(len(y), len(y) + 25))) >= 20


def _digits(classes: int = 5) -> tuple[np.ndarray, np.ndarray]:
    digits = load_digits(n_class=classes)
    return digits.data, digits.target


@pytest.mark.slow
def test_a_backdoor_patch_is_found_and_its_pixels_named() -> None:
    x, y = _digits()
    rng = np.random.default_rng(SEED)
    # BadNets-style trigger (Gu et al., 2017): a 3x3 bright patch in the corner, source class 3 -> label 1.
    stamped = rng.choice(np.flatnonzero(y == 3), 30, replace=False)
    poisoned = x.copy()
    images = poisoned[stamped].reshape(-1, 8, 8)
    images[:, 5:8, 5:8] = 16.0
    poisoned[stamped] = images.reshape(len(stamped), -1)
    labels = y.copy()
    labels[stamped] = 1
    result = screen(_table(poisoned, labels, shape=(8, 8)), checks=["backdoor"])
    found = _rows(result, "PW-DATA-231")
    assert len(found & set(stamped.tolist())) >= 27
    assert len(found - set(stamped.tolist())) <= 3
    finding = next(f for f in result.report.findings if f.rule_id == "PW-DATA-231")
    assert "(7,7)" in finding.evidence["pattern"]


def test_clean_digits_raise_no_backdoor() -> None:
    x, y = _digits()
    result = screen(_table(x, y, shape=(8, 8)), checks=["backdoor"])
    assert not _rows(result, "PW-DATA-231")


def test_shift_against_a_reference() -> None:
    x, y = _blobs()
    reference = _table(x[:300], y[:300])
    shifted = x[300:].copy()
    shifted[:, 2] += 3.0
    keep = np.flatnonzero(y[300:] != 2)  # a class all but vanishes
    result = screen(_table(shifted[keep], y[300:][keep]), reference=reference, checks=["shift"])
    rules = {(f.rule_id, f.location.column) for f in result.report.findings}
    assert ("PW-DATA-241", "f2") in rules
    assert any(rule == "PW-DATA-242" for rule, _ in rules)
    same = screen(_table(x[300:], y[300:]), reference=reference, checks=["shift"])
    assert not [f for f in same.report.findings if f.rule_id.startswith("PW-DATA-24")]


def test_bad_input_is_a_clear_error(tmp_path: Path) -> None:
    x, y = _blobs(60)
    with pytest.raises(DataInputError, match="label"):
        read_table(_csv(tmp_path, x, y), label="label")
    with pytest.raises(DataInputError, match="single class"):
        screen(_table(x, np.zeros(len(x), dtype=int)))
    with pytest.raises(ConfigError, match="false-positive rate"):
        screen(_table(x, y), fpr=0.0)
    with pytest.raises(ConfigError, match="not a screen check"):
        screen(_table(x, y), checks=["labels", "astrology"])
    text_only = Table(
        frame=pd.DataFrame({"note": [f"n{i}" for i in range(60)], "y": y}), label="y", source="t.csv"
    )
    with pytest.raises(DataInputError, match=r"t\.csv: no numeric or categorical feature column"):
        screen(text_only)


def _csv(folder: Path, x: np.ndarray, y: np.ndarray) -> Path:
    path = folder / "train.csv"
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(x.shape[1])])
    frame["y"] = y
    frame.to_csv(path, index=False)
    return path


def _noisy_csv(folder: Path) -> tuple[Path, np.ndarray]:
    x, y = _blobs()
    rng = np.random.default_rng(SEED)
    flipped = rng.choice(len(y), 40, replace=False)
    y = y.copy()
    y[flipped] = (y[flipped] + 1) % 3
    return _csv(folder, x, y), flipped


def test_quarantine_and_output_account_for_every_row(tmp_path: Path) -> None:
    path, _ = _noisy_csv(tmp_path)
    result = screen_file(path, label="y", quarantine=tmp_path / "q.csv", output=tmp_path / "ok.csv")
    quarantined = pd.read_csv(tmp_path / "q.csv")
    kept = pd.read_csv(tmp_path / "ok.csv")
    assert len(quarantined) == int(result.flagged.sum()) > 0
    assert len(quarantined) + len(kept) == result.rows == 600
    assert sorted(quarantined["_pipewarden_row"]) == list(result.flagged_rows)
    assert quarantined["_pipewarden_reasons"].str.contains("PW-DATA-2").all()
    original = pd.read_csv(path)
    rebuilt = pd.concat([kept, quarantined.drop(columns=["_pipewarden_row", "_pipewarden_reasons"])])
    assert len(rebuilt.merge(original, how="inner")) == len(original)


def test_cli_reports_json_with_rows_and_exits_one(tmp_path: Path) -> None:
    path, flipped = _noisy_csv(tmp_path)
    run = CliRunner().invoke(app, ["data", "screen", str(path), "--label", "y", "--format", "json"])
    assert run.exit_code == 1, run.output
    report = json.loads(run.stdout)
    rows = {
        f["location"]["row"] for f in report["findings"] if f["rule_id"] in {"PW-DATA-201", "PW-DATA-202"}
    }
    assert len(rows & set(flipped.tolist())) >= 36
    assert all("score" in f["evidence"] for f in report["findings"] if f["location"]["row"] is not None)


def test_cli_missing_label_column_exits_two(tmp_path: Path) -> None:
    path, _ = _noisy_csv(tmp_path)
    run = CliRunner().invoke(app, ["data", "screen", str(path), "--label", "nope"])
    assert run.exit_code == 2
    assert "nope" in run.output


@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl", "npy"])
def test_every_format_screens_alike(tmp_path: Path, fmt: str) -> None:
    x, y = _blobs(300)
    rng = np.random.default_rng(SEED)
    flipped = rng.choice(len(y), 15, replace=False)
    y = y.copy()
    y[flipped] = (y[flipped] + 1) % 3
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(x.shape[1])])
    frame["y"] = y
    labels_path = None
    if fmt == "csv":
        path = tmp_path / "train.csv"
        frame.to_csv(path, index=False)
    elif fmt == "parquet":
        path = tmp_path / "train.parquet"
        frame.to_parquet(path)
    elif fmt == "jsonl":
        path = tmp_path / "train.jsonl"
        frame.to_json(path, orient="records", lines=True)
    else:
        path = tmp_path / "train.npy"
        np.save(path, x)
        labels_path = tmp_path / "labels.npy"
        np.save(labels_path, y)
    result = screen_file(
        path, label=None if fmt == "npy" else "y", labels_path=labels_path, checks=["labels"]
    )
    found = _rows(result, "PW-DATA-201", "PW-DATA-202")
    assert len(found & set(flipped.tolist())) >= 13
    assert len(found) <= 15 + 0.05 * 300


def test_one_stray_word_does_not_take_a_column_out_of_the_screen() -> None:
    x, y = _blobs(300)
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(x.shape[1])]).astype(object)
    frame.loc[3, "f0"] = "n/a"  # one cell that is not a number
    frame.loc[7, "f0"] = 60.0  # far out in that same column
    frame["y"] = y
    result = screen(Table(frame=frame, label="y", source="t.csv"), checks=["outliers"])
    assert 7 in _rows(result, "PW-DATA-211")
    summary = next(f for f in result.report.findings if f.rule_id == "PW-DATA-200")
    assert "f0 (1)" in summary.message


def test_a_tiny_class_does_not_break_the_label_check() -> None:
    x, y = _blobs(300)
    y = y.copy()
    y[:3] = 3  # a class of three rows
    result = screen(_table(x, y), checks=["labels"])
    assert result.rows == 300


def test_labels_written_as_numbers_two_ways_are_one_label() -> None:
    x, y = _blobs(300)
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(x.shape[1])])
    frame["y"] = [f"{v}.0" if i % 2 else str(v) for i, v in enumerate(y)]
    result = screen(Table(frame=frame, label="y", source="t.csv"), checks=["labels"])
    assert result.flagged.mean() <= 0.05


def test_checks_that_cannot_run_fail_closed() -> None:
    x, y = _blobs(100)
    with pytest.raises(ConfigError, match="needs a label column"):
        screen(_table(x, None), checks=["labels"])
    with pytest.raises(ConfigError, match="needs a --reference"):
        screen(_table(x, y), checks=["shift"])
    result = screen(_table(x, None))  # the default set runs what it can, and says what it did not
    summary = next(f for f in result.report.findings if f.rule_id == "PW-DATA-200")
    assert "checks not run: backdoor, labels, shift" in summary.message


def test_discrete_tables_with_natural_repeats_are_not_a_flood() -> None:
    rng = np.random.default_rng(SEED)
    x = rng.integers(0, 2, size=(400, 3)).astype(float)
    y = (x[:, 0] + x[:, 1] > 0).astype(int)
    result = screen(_table(x, y), checks=["duplicates"])
    assert not _rows(result, "PW-DATA-222")
    summary = next(f for f in result.report.findings if f.rule_id == "PW-DATA-200")
    assert "floods not judged" in summary.message


def test_an_infinite_value_is_a_finding() -> None:
    x, y = _blobs(100)
    x = x.copy()
    x[5, 2] = np.inf
    result = screen(_table(x, y), checks=["outliers"])
    assert 5 in _rows(result, "PW-DATA-205")


def test_shift_compares_categories_by_value_not_by_encoded_column() -> None:
    rng = np.random.default_rng(SEED)
    cities = np.array(["paris", "lima", "oslo", "kyiv"])
    reference = pd.DataFrame({"a": rng.normal(size=400), "city": rng.choice(cities, 400)})
    batch = pd.DataFrame({"a": rng.normal(size=200), "city": rng.choice(cities[:3], 200)})
    result = screen(
        Table(frame=batch, label=None, source="b.csv"),
        reference=Table(frame=reference, label=None, source="r.csv"),
        checks=["shift"],
    )
    columns = {f.location.column for f in result.report.findings if f.rule_id == "PW-DATA-243"}
    assert not columns  # no column is missing: one city is simply absent from the batch
    assert ("PW-DATA-241", "city=kyiv") in {(f.rule_id, f.location.column) for f in result.report.findings}
