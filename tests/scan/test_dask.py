"""The Dask engine for `scan`: the same report as the local engine on a real two-worker cluster of
processes (the whole corpus of malicious and benign files, in batches), a batch that fails or a worker that
dies is a finding or an error, and `pipewarden scan --engine dask` end to end."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipewarden.findings import Severity
from pipewarden.scan import ScanLimits, scan_path, scan_path_dask
from tests.cli.clirun import run
from tests.scan._asm import system_call
from tests.scan.corpus import write_corpus

distributed = pytest.importorskip("distributed")
dask = pytest.importorskip("dask")


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    # A dead worker's task is not retried on another: the test sees the death at once.
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        cluster = distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=40
        )
    with distributed.Client(cluster) as connected:
        yield connected
    cluster.close()


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The corpus twice over in nested folders, plus files a hub holds: a README, an empty weight file, a
    broken link, a malicious pickle inside a zip (the payloads only echo a marker)."""
    root = tmp_path_factory.mktemp("hub")
    write_corpus(root / "org-a" / "model-1")
    shutil.copytree(root / "org-a" / "model-1", root / "org-b" / "model-2")
    (root / "org-a" / "README.md").write_text("# a model card\n", encoding="utf-8")
    (root / "org-a" / "empty.bin").write_bytes(b"")
    (root / "org-b" / "gone.pkl").symlink_to(root / "nowhere.pkl")
    import zipfile

    with zipfile.ZipFile(root / "org-b" / "bundle.zip", "w") as z:
        z.writestr("inner/data.pkl", system_call("zipped"))  # CWE-502: os.system('echo ...') in a member
        z.writestr("inner/ok.pkl", pickle.dumps({"weights": [1.0, 2.0]}, protocol=4))
    return root


def test_the_dask_report_is_the_local_report(tree: Path, client: Any) -> None:
    local = scan_path(tree)
    for files in (1, 7):  # one file a task, and odd batches
        remote = scan_path_dask(tree, client=client, batch_files=files)
        assert remote.to_dict() == local.to_dict()
    assert local.targets > 50 and local.counts()["critical"] > 20  # the planted payloads were all seen


def test_files_named_directly_and_progress(tree: Path, client: Any) -> None:
    named = sorted(p for p in tree.glob("org-a/model-1/*/*/*") if p.is_file())[:9]
    seen: list[tuple[int, int]] = []
    remote = scan_path_dask(
        *named, client=client, batch_files=2, progress=lambda _p, done, total: seen.append((done, total))
    )
    assert remote.to_dict() == scan_path(*named).to_dict()
    assert seen[-1] == (9, 9) and [d for d, _ in seen] == sorted(d for d, _ in seen)


class _Unloadable(ScanLimits):
    """Limits that cannot be rebuilt on a worker: every task that receives them fails there."""

    def __reduce__(self) -> Any:
        return (_refuse, ())


def _refuse() -> None:
    raise RuntimeError("these limits refuse to load")


def test_a_batch_that_fails_is_a_finding_on_each_of_its_files(tree: Path, client: Any) -> None:
    files = sorted(p for p in tree.glob("org-b/model-2/*/*/*") if p.is_file())[:6]
    report = scan_path_dask(*files, client=client, limits=_Unloadable(), batch_files=4)
    assert report.targets == 6
    failed = [f for f in report.findings if f.rule_id == "PW-SCAN-208" and f.evidence.get("engine") == "dask"]
    assert sorted(f.location.path for f in failed) == sorted(str(p) for p in files)
    assert report.exit_code(Severity.MEDIUM) == 1  # fail closed: nothing passes unscanned


def _die(item: int) -> int:
    if item == 1:
        os._exit(1)  # the worker process dies while running this task
    return item


def test_a_worker_that_dies_is_an_error_outcome(client: Any) -> None:
    from pipewarden.engine import in_order

    outcomes = list(in_order(client, _die, [0, 1, 2], window=3))
    assert [o.index for o in outcomes] == [0, 1, 2]
    assert outcomes[0].value == 0 and outcomes[0].error is None
    assert outcomes[1].error is not None and outcomes[1].value is None
    assert type(outcomes[1].error).__name__ == "KilledWorker"


def test_the_command_with_engine_dask_gives_the_local_report(
    tree: Path, client: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    address = client.scheduler.address
    target = str(tree / "org-b")
    local = run("scan", target, "-f", "json", cwd=tmp_path)
    remote = run("scan", target, "-f", "json", "--engine", "dask", "--scheduler", address, cwd=tmp_path)
    assert remote.returncode == local.returncode == 1, remote.stderr
    assert json.loads(remote.stdout) == json.loads(local.stdout)
    from typer.testing import CliRunner

    from pipewarden.cli import app

    unknown = CliRunner().invoke(app, ["scan", target, "--engine", "spark"])
    assert unknown.exit_code == 2 and "not an engine" in unknown.output
    # A missing install is a usage error that names the extra.
    monkeypatch.setitem(sys.modules, "distributed", None)
    missing = CliRunner().invoke(app, ["scan", target, "--engine", "dask"])
    assert missing.exit_code == 2 and "pipewarden[dask]" in missing.output
