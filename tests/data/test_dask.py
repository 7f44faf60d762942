"""The Dask engine for `check` and `screen`: the same result as the local engine, on a real two-worker
cluster of processes, over data sets with planted duplicates, repeated unique values, bad rows and a label
shift; a failing partition is an error, never a pass."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipewarden.data import ColumnSpec, Contract, check, check_dask, screen_file, screen_file_dask
from pipewarden.data import _dask as data_dask
from pipewarden.data._partitions import RunKeys, keyed
from pipewarden.errors import DataError, DataInputError

distributed = pytest.importorskip("distributed")

CONTRACT = Contract(
    columns=(
        ColumnSpec(name="id", dtype="string", pattern="[0-9]{6}", unique=True),
        ColumnSpec(name="amount", dtype="number", minimum=-100, maximum=100),
        ColumnSpec(name="note", dtype="string", nullable=True, max_length=30),
        ColumnSpec(name="kind", dtype="category", categories=("a", "b", "c")),
        ColumnSpec(name="y", dtype="integer"),
    ),
    label="y",
    labels=("0", "1"),
    class_balance=(("0", 0.5), ("1", 0.5)),
    balance_tolerance=0.05,
    max_duplicate_fraction=0.01,
)


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=40
    )
    with distributed.Client(cluster) as connected:
        yield connected
    cluster.close()


def _planted(n: int = 6000, seed: int = 3) -> pd.DataFrame:
    """Clean rows, then: whole-row duplicates (some beyond the allowance), ids repeated with other cells,
    values out of range, formulas, unknown categories and a label skew in the second half."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "id": [f"{i:06d}" for i in range(n)],
            "amount": np.round(rng.uniform(-90, 90, n), 2).astype(str),
            "note": [f"note {i % 97}" for i in range(n)],
            "kind": rng.choice(["a", "b", "c"], n),
            "y": np.where(
                np.arange(n) < n // 2, rng.integers(0, 2, n), (rng.random(n) < 0.8).astype(int)
            ).astype(str),
        }
    )
    for row in rng.choice(np.arange(100, n), 90, replace=False):  # exact copies of an earlier row
        frame.iloc[row] = frame.iloc[int(rng.integers(0, row))]
    for row in rng.choice(np.arange(100, n), 40, replace=False):  # an earlier id, other cells
        frame.loc[row, "id"] = f"{int(rng.integers(0, row)):06d}"
    frame.loc[rng.choice(n, 30, replace=False), "amount"] = "5000"
    frame.loc[rng.choice(n, 20, replace=False), "note"] = "=HYPERLINK(1)"
    frame.loc[rng.choice(n, 15, replace=False), "kind"] = "z"
    frame.loc[rng.choice(n, 10, replace=False), "note"] = ""
    return frame


def _same(local: Any, remote: Any) -> None:
    assert (remote.rows, remote.accepted, remote.quarantined) == (
        local.rows,
        local.accepted,
        local.quarantined,
    )
    assert remote.report.to_dict() == local.report.to_dict()


def _parquet(frame: pd.DataFrame, path: Path, *, group: int) -> Path:
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, row_group_size=group)
    return path


def test_parquet_partitions_give_the_local_result(tmp_path: Path, client: Any) -> None:
    path = _parquet(_planted(), tmp_path / "batch.parquet", group=500)
    local = check(path, contract=CONTRACT, chunk_rows=700)
    remote = check_dask(path, contract=CONTRACT, chunk_rows=700, client=client, partition_rows=1000)
    _same(local, remote)
    rules = {f.rule_id for f in local.report.findings}
    # The planted faults are all found (a test of nothing if they were not).
    assert {"PW-DATA-109", "PW-DATA-113", "PW-DATA-114", "PW-DATA-112"} <= rules
    assert local.quarantined > 100


def test_the_quarantine_and_output_files_are_the_local_ones(tmp_path: Path, client: Any) -> None:
    frame = _planted(3000)
    for suffix in ("parquet", "csv"):
        if suffix == "parquet":
            path = _parquet(frame, tmp_path / "in.parquet", group=400)
        else:
            path = tmp_path / "in.csv"
            frame.to_csv(path, index=False, quoting=csv.QUOTE_MINIMAL)
        local = check(
            path,
            contract=CONTRACT,
            chunk_rows=512,
            quarantine=tmp_path / f"q-local.{suffix}",
            output=tmp_path / f"o-local.{suffix}",
        )
        remote = check_dask(
            path,
            contract=CONTRACT,
            chunk_rows=512,
            quarantine=tmp_path / f"q-dask.{suffix}",
            output=tmp_path / f"o-dask.{suffix}",
            client=client,
            partition_rows=900,
            partition_bytes=20_000,
        )
        assert remote.rows == local.rows == len(frame)
        assert remote.quarantined == local.quarantined > 0
        for kind in ("q", "o"):
            a = (tmp_path / f"{kind}-local.{suffix}").read_bytes()
            b = (tmp_path / f"{kind}-dask.{suffix}").read_bytes()
            assert a == b, f"{kind} file differs for {suffix}"


def test_csv_byte_ranges_give_the_local_result_with_numbers_parsed(tmp_path: Path, client: Any) -> None:
    frame = _planted(5000, seed=8)
    path = tmp_path / "batch.csv"
    frame.to_csv(path, index=False, quoting=csv.QUOTE_MINIMAL)
    assert b'"' not in path.read_bytes()  # so the file is cut into byte ranges
    local = check(path, contract=CONTRACT, chunk_rows=1000)
    remote = check_dask(path, contract=CONTRACT, chunk_rows=1000, client=client, partition_bytes=30_000)
    _same(local, remote)
    # A listing cut short: the first rows in input order, whichever partition they sit in.
    local = check(path, contract=CONTRACT, max_row_findings=5)
    remote = check_dask(path, contract=CONTRACT, max_row_findings=5, client=client, partition_bytes=30_000)
    _same(local, remote)


def test_a_quoting_csv_file_and_a_labels_file_are_one_partition(tmp_path: Path, client: Any) -> None:
    frame = _planted(1500)
    labels = frame.pop("y")
    path = tmp_path / "batch.csv"
    frame.to_csv(path, index=False, quoting=csv.QUOTE_NONNUMERIC)
    pd.DataFrame({"y": labels}).to_csv(tmp_path / "labels.csv", index=False)
    kw: dict[str, Any] = {"contract": CONTRACT, "chunk_rows": 200, "labels_path": tmp_path / "labels.csv"}
    _same(check(path, **kw), check_dask(path, client=client, partition_bytes=5000, **kw))


def test_labels_of_the_wrong_length_are_refused_as_locally(tmp_path: Path, client: Any) -> None:
    frame = _planted(1200)
    labels = frame.pop("y")
    path = _parquet(frame, tmp_path / "batch.parquet", group=300)
    pd.DataFrame({"y": labels[:-1]}).to_csv(tmp_path / "labels.csv", index=False)
    with pytest.raises(DataInputError, match="labels for"):
        check_dask(
            path, contract=CONTRACT, labels_path=tmp_path / "labels.csv", client=client, partition_rows=300
        )


def test_a_partition_that_fails_is_an_error_not_a_pass(
    tmp_path: Path, client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _parquet(_planted(2000), tmp_path / "batch.parquet", group=500)
    original = path.read_bytes()
    planned = data_dask.partitions

    def plan_then_truncate(*args: Any, **kwargs: Any) -> Any:
        found = planned(*args, **kwargs)
        path.write_bytes(original[: len(original) // 2])  # the file breaks after the client planned it
        return found

    monkeypatch.setattr(data_dask, "partitions", plan_then_truncate)
    with pytest.raises(DataError, match=r"batch\.parquet"):
        check_dask(path, contract=CONTRACT, client=client, partition_rows=500)


def test_every_task_of_a_run_hashes_with_the_run_keys_and_the_process_keeps_its_own() -> None:
    from pipewarden.data import _hashing

    values = pa.array(["alpha", "beta", "gamma" * 30])
    own = _hashing.value_hashes(values).copy()
    keys = RunKeys.draw()
    with keyed(keys):
        first = _hashing.value_hashes(values).copy()
        with keyed(keys):  # a second task of the same run on another thread shares them
            assert np.array_equal(_hashing.value_hashes(values), first)
    assert not np.array_equal(first, own)  # other keys, other hashes (2**-64 chance of a false failure)
    assert np.array_equal(_hashing.value_hashes(values), own)
    with keyed(keys):
        assert np.array_equal(_hashing.value_hashes(values), first)  # the same run: the same hashes


def test_the_screen_on_a_worker_gives_the_local_result(tmp_path: Path, client: Any) -> None:
    rng = np.random.default_rng(0)
    n = 600
    x = rng.normal(size=(n, 3))
    y = (x[:, 0] > 0).astype(int)
    y[rng.choice(n, 15, replace=False)] ^= 1  # flipped labels
    x[:5] += 12  # outliers
    frame = pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "y": y})
    path = _parquet(frame, tmp_path / "train.parquet", group=100)
    kw: dict[str, Any] = {"label": "y", "seed": 4}
    local = screen_file(path, quarantine=tmp_path / "q-local.csv", **kw)
    remote = screen_file_dask(path, quarantine=tmp_path / "q-dask.csv", client=client, **kw)
    local_findings = [f for f in local.report.to_dict()["findings"] if f["rule_id"] != "PW-DATA-200"]
    remote_findings = [f for f in remote.report.to_dict()["findings"] if f["rule_id"] != "PW-DATA-200"]
    assert remote_findings == local_findings and local.flagged.sum() > 10
    assert np.array_equal(remote.flagged, local.flagged)
    assert (tmp_path / "q-local.csv").read_bytes() == (tmp_path / "q-dask.csv").read_bytes()
    with pytest.raises(DataInputError, match="no such file"):
        screen_file_dask(tmp_path / "missing.csv", client=client)


def test_the_check_command_with_engine_dask(tmp_path: Path, client: Any) -> None:
    from typer.testing import CliRunner

    from pipewarden.cli import app

    path = _parquet(_planted(1500), tmp_path / "batch.parquet", group=400)
    (tmp_path / "contract.yaml").write_text(CONTRACT.to_yaml(), encoding="utf-8")
    common = ["data", "check", str(path), "-c", str(tmp_path / "contract.yaml"), "-f", "json"]
    local = CliRunner().invoke(app, [*common, "--quarantine", str(tmp_path / "q1.parquet")])
    remote = CliRunner().invoke(
        app,
        [*common, "--quarantine", str(tmp_path / "q2.parquet"), "--engine", "dask"],
        env={"PIPEWARDEN_SCHEDULER": client.scheduler.address},
    )
    assert remote.exit_code == local.exit_code == 1, remote.output
    assert (tmp_path / "q1.parquet").read_bytes() == (tmp_path / "q2.parquet").read_bytes()
    assert json.loads(remote.stdout)["findings"] == [
        {
            **f,
            "evidence": {
                **f["evidence"],
                **({"quarantine": str(tmp_path / "q2.parquet")} if "quarantine" in f["evidence"] else {}),
            },
        }
        for f in json.loads(local.stdout)["findings"]
    ]
