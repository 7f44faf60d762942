"""The artifact store as its users see it, on both backends: put, get, versions, lineage, refusals, keys."""

from __future__ import annotations

import hashlib
import json
import pickle
import random
from collections.abc import Callable
from pathlib import Path

import pytest

from pipewarden.crypto import KeyRing
from pipewarden.errors import ArtifactNotFound, ArtifactRefused, ConfigError, KeyRingError, StoreError
from pipewarden.store import ArtifactStore, Backend, Reseal
from tests.store.conftest import CHUNK


@pytest.mark.parametrize("size", [0, 1, CHUNK, CHUNK * 3, CHUNK * 3 + 1])
def test_round_trip_of_any_size(store: ArtifactStore, tmp_path: Path, size: int) -> None:
    src = tmp_path / "rows.csv"
    src.write_bytes(random.Random(size).randbytes(size))  # noqa: S311  # fixed test bytes, the same every run
    art = store.put(src, name="data/rows", actor="alice")
    assert (art.ref, art.size, art.digest) == (
        "data/rows@1",
        size,
        hashlib.sha256(src.read_bytes()).hexdigest(),
    )
    out = tmp_path / "out.csv"
    assert store.get("data/rows", out) == store.resolve("data/rows@1")
    assert out.read_bytes() == src.read_bytes()
    assert store.read_bytes("data/rows@1") == src.read_bytes()


def test_bodies_are_encrypted_and_named_by_the_plaintext_digest(
    store: ArtifactStore, backend: Backend, payload: Path
) -> None:
    art = store.put(payload, name="features", actor="alice")
    keys = list(backend.iter_keys(""))
    assert f"blobs/sha256/{art.digest}/{art.uid}" in keys
    body = backend.get(art.body_key)
    plain = payload.read_bytes()
    assert plain[:64] not in body and plain[-64:] not in body
    assert len(body) > len(plain)


def test_versions_are_numbered_immutable_and_carry_metadata(
    store: ArtifactStore, payload: Path, tmp_path: Path
) -> None:
    first = store.put(payload, name="features", actor="alice", media_type="text/csv")
    other = tmp_path / "v2.csv"
    other.write_bytes(b"a,b\n1,2\n")
    second = store.put(other, name="features", actor="bob")
    assert (first.version, second.version) == (1, 2)
    assert store.versions("features") == [1, 2]
    assert store.resolve("features").ref == "features@2"
    got = store.resolve("features@1")
    assert (got.media_type, got.created_by, got.signer) == ("text/csv", "alice", store.signing_key.keyid)
    assert got.scan.scanned and got.scan.threshold == "medium"
    assert [a.ref for a in store.artifacts()] == ["features@1", "features@2"]


def test_a_version_is_never_overwritten_when_writers_race(store: ArtifactStore, payload: Path) -> None:
    store.put(payload, name="features", actor="alice")
    # A second writer that still believes version 1 is free takes the next one instead.
    original = store._latest
    store._latest = lambda name: 0  # type: ignore[method-assign]
    try:
        art = store.put(payload, name="features", actor="bob")
    finally:
        store._latest = original  # type: ignore[method-assign]
    assert art.version == 2
    assert store.resolve("features@1").created_by == "alice"
    assert store.verify().ok


def test_lineage_follows_parents_recursively(store: ArtifactStore, payload: Path, tmp_path: Path) -> None:
    raw = store.put(payload, name="raw", actor="ingest")
    clean = store.put(payload, name="clean", actor="etl", parents=[raw.ref])
    model_file = tmp_path / "weights.csv"
    model_file.write_bytes(b"0.1,0.2\n")
    model = store.put(model_file, name="model", actor="train", parents=["clean", "raw@1"])
    tree = store.lineage("model@1")
    assert tree.artifact == store.resolve(model.ref)
    assert [p.artifact.ref for p in tree.parents] == ["clean@1", "raw@1"]
    assert [p.artifact.ref for p in tree.parents[0].parents] == ["raw@1"]
    lines = tree.lines()
    assert (
        lines[0].startswith("model@1")
        and lines[1].startswith("  clean@1")
        and lines[2].startswith("    raw@1")
    )
    assert clean.parents[0].digest == raw.digest
    with pytest.raises(ArtifactNotFound, match="nope"):
        store.put(payload, name="x", actor="a", parents=["nope@1"])


def _evil_pickle(path: Path) -> Path:
    # CWE-502: GLOBAL os.system + REDUCE; the payload is only `echo`. Never loaded.
    path.write_bytes(b"\x80\x02cos\nsystem\nX\x07\x00\x00\x00echo hi\x85R.")
    return path


def test_model_files_are_scanned_and_refusals_recorded(store: ArtifactStore, tmp_path: Path) -> None:
    evil = _evil_pickle(tmp_path / "model.pkl")
    with pytest.raises(ArtifactRefused, match=r"model\.pkl: refused as churn.*PW-SCAN-101") as excinfo:
        store.put(evil, name="churn", actor="mallory")
    assert excinfo.value.report.max_severity is not None
    assert store.versions("churn") == []
    (refusal,) = store.refusals()
    assert (refusal.name, refusal.source, refusal.by, refusal.max_severity) == (
        "churn",
        "model.pkl",
        "mallory",
        "critical",
    )
    assert refusal.sha256 == hashlib.sha256(evil.read_bytes()).hexdigest()
    good = tmp_path / "model2.pkl"
    good.write_bytes(pickle.dumps({"weights": [0.5, 0.25]}, protocol=4))
    art = store.put(good, name="churn", actor="alice")
    assert art.scan.findings == 0 and art.scan.describe() == "clean"


def test_the_threshold_is_the_stores_setting(
    make_store: Callable[..., ArtifactStore], tmp_path: Path
) -> None:
    from pipewarden.findings import Severity

    unknown = tmp_path / "m.pkl"
    unknown.write_bytes(b"\x80\x02cmypkg.models\nNet\n)\x81.")  # an unknown class: a HIGH finding
    lenient = make_store(scan_threshold=Severity.CRITICAL)
    assert lenient.put(unknown, name="m", actor="a").scan.max_severity == "high"
    with pytest.raises(ArtifactRefused):
        make_store(scan_threshold=Severity.HIGH).put(unknown, name="m", actor="a")


def test_bad_input_is_named_and_nothing_stored_is_lost(
    store: ArtifactStore, payload: Path, tmp_path: Path
) -> None:
    store.put(payload, name="features", actor="alice")
    with pytest.raises(ConfigError, match="not a valid artifact name"):
        store.put(payload, name="../escape", actor="a")
    with pytest.raises(StoreError, match=r"missing\.csv: cannot be read"):
        store.put(tmp_path / "missing.csv", name="features", actor="a")
    with pytest.raises(StoreError, match="not a regular file"):
        store.put(tmp_path, name="features", actor="a")
    with pytest.raises(ArtifactNotFound, match="features@9"):
        store.get("features@9", tmp_path / "out")
    with pytest.raises(ArtifactNotFound, match="ghost"):
        store.resolve("ghost")
    with pytest.raises(ConfigError, match="whole number"):
        store.resolve("features@latest")
    assert store.verify().ok and store.versions("features") == [1]


def test_rotation_reseals_every_data_key_and_keeps_everything_readable(
    store: ArtifactStore, backend: Backend, payload: Path, ring_path: Path, tmp_path: Path
) -> None:
    arts = [store.put(payload, name=f"a{i}", actor="x") for i in range(3)]
    bodies = {a.ref: backend.get(a.body_key) for a in arts}
    old = store.keyring.current_id
    with pytest.raises(KeyRingError, match="still seals the data keys of 3"):
        store.retire_key(old)
    new = store.keyring.rotate()
    assert store.key_usage() == {old: 3}
    assert store.reseal() == Reseal(resealed=3, failures=())
    assert store.key_usage() == {new: 3}
    assert {a.ref: backend.get(a.body_key) for a in arts} == bodies  # bodies untouched
    store.retire_key(old)
    reopened = ArtifactStore(
        backend, keyring=KeyRing.from_file(ring_path), signing_key=store.signing_key, trusted=store.trusted
    )
    for a in arts:
        assert reopened.read_bytes(a.ref) == payload.read_bytes()
    assert reopened.verify().ok


def test_manifests_are_signed_in_toto_statements(
    store: ArtifactStore, backend: Backend, payload: Path
) -> None:
    import base64

    art = store.put(payload, name="features", actor="alice")
    envelope = json.loads(backend.get("artifacts/features/@1.json"))
    statement = json.loads(base64.b64decode(envelope["payload"]))
    assert statement["subject"] == [{"name": "features@1", "digest": {"sha256": art.digest}}]
    assert statement["predicate"]["encryption"]["cipher"] == "AES-256-GCM"
    assert envelope["signatures"][0]["keyid"] == store.signing_key.keyid


def test_progress_is_reported_in_bytes_up_to_the_total(
    store: ArtifactStore, payload: Path, tmp_path: Path
) -> None:
    seen_put: list[tuple[int, int]] = []
    seen_get: list[tuple[int, int]] = []
    art = store.put(payload, name="features", actor="a", progress=lambda d, t: seen_put.append((d, t)))
    store.get(art.ref, tmp_path / "out.csv", progress=lambda d, t: seen_get.append((d, t)))
    size = payload.stat().st_size
    for seen in (seen_put, seen_get):
        assert seen[-1] == (size, size)
        assert [d for d, _ in seen] == sorted(d for d, _ in seen)
        assert len(seen) == 6  # one call per chunk


def test_get_into_a_new_folder_or_onto_a_folder(store: ArtifactStore, payload: Path, tmp_path: Path) -> None:
    store.put(payload, name="team/features", actor="a")
    store.get("team/features", tmp_path / "deploy" / "v1" / "features.csv")
    assert (tmp_path / "deploy" / "v1" / "features.csv").read_bytes() == payload.read_bytes()
    with pytest.raises(StoreError, match=r"is a folder; give the file to write, such as .*features"):
        store.get("team/features", tmp_path / "deploy")
    with pytest.raises(ArtifactNotFound, match="nope"):
        store.artifacts("nope")


def test_reseal_goes_on_past_a_damaged_artifact_and_names_it(
    store: ArtifactStore, backend: Backend, payload: Path
) -> None:
    good = store.put(payload, name="good", actor="a")
    bad = store.put(payload, name="bad", actor="a")
    backend.put(bad.keyslot_key, b"{}")
    store.keyring.rotate()
    result = store.reseal()
    assert result.resealed == 1
    assert [ref for ref, _ in result.failures] == ["bad@1"]
    assert store.read_bytes(good.ref) == payload.read_bytes()
