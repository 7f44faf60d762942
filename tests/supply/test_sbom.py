"""The CycloneDX 1.6 SBOM: Python packages with purls and hashes, the store's models (with a model card) and
data sets, lineage as the dependency graph; every document checked against the bundled schema twice, by
`validate_sbom` and independently with jsonschema."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import pickle
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from jsonschema import Draft7Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7
from safetensors.numpy import save_file

from pipewarden import __version__
from pipewarden.crypto import FileKeyProvider, KeyRing
from pipewarden.errors import AccessDenied, ConfigError, IntegrityError, ReportError
from pipewarden.events import Acting, Actor, Events
from pipewarden.store import ArtifactStore, GuardedStore, LocalBackend
from pipewarden.supply import build_sbom, validate_sbom
from pipewarden.workspace import Workspace
from tests.cli.clirun import run
from tests.eventlog import MemoryLog

NOW = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
SHA_A, SHA_B, SHA_C = "a1" * 32, "b2" * 32, "c3" * 32
SHA512 = "d4" * 64


# -- an independent check: jsonschema over the schema file cyclonedx-python-lib ships -----------------


def _independent() -> Draft7Validator:
    folder = resources.files("cyclonedx.schema._res")

    def load(name: str) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(folder.joinpath(name).read_text(encoding="utf-8"))
        return loaded

    schema = load("bom-1.6.SNAPSHOT.schema.json")
    registry: Registry[Any] = Registry().with_resources(
        (
            f"http://cyclonedx.org/schema/{name}",
            Resource.from_contents(load(name), default_specification=DRAFT7),
        )
        for name in ("spdx.SNAPSHOT.schema.json", "jsf-0.82.SNAPSHOT.schema.json")
    )
    return Draft7Validator(schema, registry=registry, format_checker=Draft7Validator.FORMAT_CHECKER)


INDEPENDENT = _independent()


def _schema_errors(document: dict[str, Any]) -> list[str]:
    return [f"{e.json_path}: {e.message}" for e in INDEPENDENT.iter_errors(document)]


def _by_ref(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["bom-ref"]: c for c in document["components"]}


def _graph(document: dict[str, Any]) -> dict[str, list[str]]:
    return {d["ref"]: sorted(d.get("dependsOn", [])) for d in document["dependencies"]}


def _props(entries: list[dict[str, str]]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for entry in entries:
        out.setdefault(entry["name"], []).append(entry["value"])
    return out


# -- Python packages ------------------------------------------------------------------------------------


def test_requirements_with_hashes_become_library_components_with_purls(tmp_path: Path) -> None:
    (tmp_path / "constraints.txt").write_text("urllib3==2.2.1\n")
    (tmp_path / "requirements.txt").write_text(
        "-c constraints.txt\n"
        f"Requests==2.31.0 --hash=sha256:{SHA_A} \\\n    --hash=sha512:{SHA512}\n"
        "Zope.Interface_Extra==6.1 ; python_version >= '3.10'\n"
        "numpy>=1.26,<3\n"
        f"requests==2.31.0 --hash=sha256:{SHA_A}\n"  # named twice: one component, one hash
        "torch[cuda]==2.3.0\n"
    )
    doc = build_sbom(tmp_path / "requirements.txt", now=NOW)
    assert _schema_errors(doc) == []
    comps = _by_ref(doc)
    assert sorted(comps) == [
        "pkg:pypi/numpy",
        "pkg:pypi/requests@2.31.0",
        "pkg:pypi/torch@2.3.0",
        "pkg:pypi/zope-interface-extra@6.1",
    ]  # the -c constraint installs nothing, so urllib3 is not a component
    requests = comps["pkg:pypi/requests@2.31.0"]
    assert (requests["type"], requests["name"], requests["version"]) == ("library", "Requests", "2.31.0")
    assert requests["purl"] == "pkg:pypi/requests@2.31.0"
    assert sorted((h["alg"], h["content"]) for h in requests["hashes"]) == [
        ("SHA-256", SHA_A),
        ("SHA-512", SHA512),
    ]
    assert _props(requests["properties"])["pipewarden:source"] == [
        f"{tmp_path / 'requirements.txt'}:2",
        f"{tmp_path / 'requirements.txt'}:6",  # after the continued line
    ]
    zope = comps["pkg:pypi/zope-interface-extra@6.1"]
    assert zope["purl"] == "pkg:pypi/zope-interface-extra@6.1" and "hashes" not in zope
    assert _props(zope["properties"])["pipewarden:marker"] == ['python_version >= "3.10"']
    assert _props(comps["pkg:pypi/torch@2.3.0"]["properties"])["pipewarden:extras"] == ["cuda"]
    # A range is not a version: none is invented; the specifier is kept as written.
    numpy = comps["pkg:pypi/numpy"]
    assert "version" not in numpy and numpy["purl"] == "pkg:pypi/numpy"
    assert _props(numpy["properties"])["pipewarden:specifier"] == ["<3,>=1.26"]
    # The project depends on every package; which package pulls in which is not known, so packages have
    # no entry of their own (an empty entry would say "depends on nothing").
    assert _graph(doc) == {"project": sorted(comps)}
    assert doc["metadata"]["component"] == {
        "bom-ref": "project",
        "name": tmp_path.name,
        "type": "application",
    }


def test_lock_files_give_every_locked_package_with_its_hashes(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "churn-service"\nversion = "0.4.0"\n')
    (tmp_path / "uv.lock").write_text(
        'version = 1\n[[package]]\nname = "churn-service"\nversion = "0.4.0"\nsource = { editable = "." }\n'
        '[[package]]\nname = "scikit_learn"\nversion = "1.5.2"\n'
        'source = { registry = "https://mirror.example/simple" }\n'
        f'sdist = {{ url = "https://x/s.tar.gz", hash = "sha256:{SHA_B}" }}\n'
        f'wheels = [{{ url = "https://x/s1.whl", hash = "sha256:{SHA_C}" }},'
        f' {{ url = "https://x/s2.whl", hash = "sha256:{SHA_C}" }}]\n'
        '[[package]]\nname = "joblib"\nversion = "1.4.2"\n'
        'source = { registry = "https://mirror.example/simple" }\n'
        f'wheels = [{{ url = "https://x/j.whl", hash = "sha256:{SHA_A.upper()}" }}]\n'
    )
    doc = build_sbom(tmp_path, now=NOW)  # the folder: the lock, not pyproject.toml's ranges
    assert _schema_errors(doc) == []
    comps = _by_ref(doc)
    assert sorted(comps) == ["pkg:pypi/joblib@1.4.2", "pkg:pypi/scikit-learn@1.5.2"]
    sklearn = comps["pkg:pypi/scikit-learn@1.5.2"]
    assert sklearn["purl"] == "pkg:pypi/scikit-learn@1.5.2" and sklearn["name"] == "scikit_learn"
    assert sorted(h["content"] for h in sklearn["hashes"]) == [SHA_B, SHA_C]
    assert comps["pkg:pypi/joblib@1.4.2"]["hashes"] == [{"alg": "SHA-256", "content": SHA_A}]
    root = doc["metadata"]["component"]
    assert (root["name"], root["version"]) == ("churn-service", "0.4.0")


def test_a_malformed_hash_is_an_error_naming_the_lock(tmp_path: Path) -> None:
    (tmp_path / "poetry.lock").write_text(
        '[[package]]\nname = "torchlike"\nversion = "1.2"\nfiles = [{file = "t.whl", hash = "sha256:abc"}]\n'
    )
    with pytest.raises(ConfigError, match=r"poetry\.lock:torchlike: torchlike: 'sha256:abc' is not a sha256"):
        build_sbom(tmp_path / "poetry.lock")


def test_credentials_in_a_requirement_url_are_not_copied(tmp_path: Path) -> None:
    secret = "s3cr" + "et-" + "tok3n"
    (tmp_path / "requirements.txt").write_text(
        f"-e git+https://deploy:{secret}@git.example.test/team/feature-lib.git#egg=feature-lib\n"
    )
    doc = build_sbom(tmp_path / "requirements.txt", now=NOW)
    assert secret not in json.dumps(doc)
    lib = _by_ref(doc)["python-source:feature-lib"]
    assert "purl" not in lib and "version" not in lib  # not a released version: no purl is made up
    assert _props(lib["properties"])["pipewarden:note"] == [
        "installed from git+https://***@git.example.test/team/feature-lib.git#egg=feature-lib: "
        "no released version to check"
    ]


def test_no_part_of_a_url_credential_reaches_the_sbom(tmp_path: Path) -> None:
    """A password holding "@" (the user-info runs to the host's last "@"), a token as the user name, a
    presigned download's signature in the query, a bare URL line: none of it is copied."""
    a1, a2, b, d, e1, e2 = ("S3CR3T" + tag for tag in ("A1", "A2", "B", "D", "E1", "E2"))
    token = "gh" + "p_" + "S3CR3TC" * 5
    (tmp_path / "requirements.txt").write_text(
        f"--index-url https://builder:{b}@pypi.internal.test/simple\n"
        f"privpkg @ https://deploy:{a1}@{a2}@git.internal.test/privpkg-1.0.tar.gz\n"
        f"other @ git+https://{token}@git.internal.test/org/other.git@v1\n"
        f"third @ https://files.internal.test/third-1.0-py3-none-any.whl?X-Amz-Signature={d}&a=b\n"
        f"https://{e1}:{e2}@files.internal.test/fourth-2.0.tar.gz?sig={d}\n"
    )
    doc = build_sbom(tmp_path / "requirements.txt", now=NOW)
    text = json.dumps(doc)
    assert "S3CR3T" not in text
    notes = {ref: _props(c["properties"])["pipewarden:note"][0] for ref, c in _by_ref(doc).items()}
    assert notes["python-source:privpkg"].startswith(
        "installed from https://***@git.internal.test/privpkg-1.0.tar.gz: "
    )
    assert notes["python-source:other"].startswith(
        "installed from git+https://***@git.internal.test/org/other"
    )
    assert notes["python-source:third"].startswith(
        "installed from https://files.internal.test/third-1.0-py3-none-any.whl?***: "
    )
    # A bare URL is named after its file, never after its user-info or query.
    assert notes["python-source:fourth-2-0"].startswith(
        "installed from https://***@files.internal.test/fourth-2.0.tar.gz?***: "
    )


def test_metadata_names_the_tool_time_and_a_fresh_serial(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text("requests==2.31.0\n")
    first = build_sbom(tmp_path / "requirements.txt", now=NOW)
    second = build_sbom(tmp_path / "requirements.txt", now=NOW)
    assert (first["bomFormat"], first["specVersion"], first["version"]) == ("CycloneDX", "1.6", 1)
    assert first["metadata"]["timestamp"] == "2030-01-02T03:04:05+00:00"
    assert first["metadata"]["tools"]["components"] == [
        {"name": "pipewarden", "type": "application", "version": __version__}
    ]
    assert re.fullmatch(
        r"urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}", first["serialNumber"]
    )
    assert first["serialNumber"] != second["serialNumber"]
    assert {**first, "serialNumber": ""} == {**second, "serialNumber": ""}


# -- models and data sets from a workspace's store ------------------------------------------------------


@dataclass
class Pipeline:
    ws: Workspace
    store: ArtifactStore
    files: dict[str, Path]


@pytest.fixture
def pipeline(tmp_path: Path) -> Pipeline:
    """A real workspace: training data, a safetensors model made from it (two versions), and a pickled
    head fine-tuned from the model with the data; the project's requirements beside it."""
    ws = Workspace.init(tmp_path / "ws")
    store = ws.store()
    files = {
        "train": tmp_path / "train.csv",
        "bert": tmp_path / "bert.safetensors",
        "bert2": tmp_path / "bert2.safetensors",
        "head": tmp_path / "head.pkl",
    }
    files["train"].write_text("x,y\n" + "".join(f"{i},{i % 2}\n" for i in range(50)))
    save_file({"w": np.arange(8, dtype=np.float32)}, str(files["bert"]))
    save_file({"w": np.ones(8, dtype=np.float32)}, str(files["bert2"]))
    # A plain dict of floats: benign, the scan finds nothing.
    files["head"].write_bytes(pickle.dumps({"weights": [0.25, 0.5], "bias": 1.0}, protocol=4))
    store.put(files["train"], name="data/train", actor="ingest-bot")
    store.put(files["bert"], name="bert", actor="ada", parents=["data/train@1"])
    store.put(files["bert2"], name="bert", actor="ada")
    store.put(files["head"], name="churn/head", actor="ada", parents=["bert@1", "data/train@1"])
    (tmp_path / "requirements.txt").write_text(f"safetensors==0.4.5 --hash=sha256:{SHA_A}\n")
    return Pipeline(ws, store, files)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_models_carry_hashes_and_a_model_card_data_sets_are_data_lineage_is_the_graph(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    doc = build_sbom(tmp_path / "requirements.txt", store=pipeline.store, now=NOW)
    assert _schema_errors(doc) == []
    comps = _by_ref(doc)
    files = pipeline.files
    expected = {
        "artifact:data/train@1": ("data", files["train"], "text/csv"),
        "artifact:bert@1": ("machine-learning-model", files["bert"], "application/vnd.safetensors"),
        "artifact:bert@2": ("machine-learning-model", files["bert2"], "application/vnd.safetensors"),
        "artifact:churn/head@1": ("machine-learning-model", files["head"], "application/vnd.python.pickle"),
    }
    for ref, (kind, source, media) in expected.items():
        comp = comps[ref]
        assert (comp["type"], comp["mime-type"]) == (kind, media), ref
        assert comp["hashes"] == [{"alg": "SHA-256", "content": _sha256(source)}], ref
    assert (comps["artifact:bert@2"]["name"], comps["artifact:bert@2"]["version"]) == ("bert", "2")

    train = comps["artifact:data/train@1"]
    assert train["data"] == [{"type": "dataset", "name": "data/train"}] and "modelCard" not in train
    assert _props(train["properties"])["pipewarden:created-by"] == ["ingest-bot"]

    card = comps["artifact:churn/head@1"]["modelCard"]
    # Only the data parents are the model's data sets; the base model is a dependency, not a data set.
    assert card["modelParameters"] == {"datasets": [{"ref": "artifact:data/train@1"}]}
    facts = _props(card["properties"])
    head = pipeline.store.resolve("churn/head@1")
    bert1 = pipeline.store.resolve("bert@1")
    train1 = pipeline.store.resolve("data/train@1")
    assert facts["pipewarden:format"] == ["pickle"]
    assert facts["pipewarden:signer"] == [pipeline.ws.signing_key().keyid]
    assert facts["pipewarden:signature"] == ["verified"]
    assert facts["pipewarden:encrypted-at-rest"] == ["true"]
    assert facts["pipewarden:encryption"] == ["AES-256-GCM"]
    assert facts["pipewarden:created-by"] == ["ada"]
    assert facts["pipewarden:created-at"] == [head.created_at]
    assert facts["pipewarden:scan:verdict"] == ["clean"]
    assert facts["pipewarden:scan:findings"] == ["0"]
    assert facts["pipewarden:scan:threshold"] == ["medium"]
    assert facts["pipewarden:parent"] == [
        f"bert@1 sha256:{bert1.digest}",
        f"data/train@1 sha256:{train1.digest}",
    ]
    # Nothing pipewarden does not know: no task, approach, architecture or metrics.
    assert set(card) == {"modelParameters", "properties"}
    assert "modelParameters" not in comps["artifact:bert@2"]["modelCard"]  # no parents, no data sets

    assert _graph(doc) == {
        "artifact:bert@1": ["artifact:data/train@1"],
        "artifact:bert@2": [],
        "artifact:churn/head@1": ["artifact:bert@1", "artifact:data/train@1"],
        "artifact:data/train@1": [],
        # The project: its packages and the versions nothing else was made from.
        "project": ["artifact:bert@2", "artifact:churn/head@1", "pkg:pypi/safetensors@0.4.5"],
    }


def test_media_types_as_stored_decide_mime_type_and_kind_of_data(pipeline: Pipeline, tmp_path: Path) -> None:
    notes = tmp_path / "labels.txt"
    notes.write_bytes(pipeline.files["train"].read_bytes())
    pipeline.store.put(
        pipeline.files["train"], name="data/eval", actor="ada", media_type="Text/CSV; header=present"
    )
    pipeline.store.put(notes, name="labels", actor="ada", media_type="labels in our own format")
    doc = build_sbom(tmp_path / "requirements.txt", store=pipeline.store, now=NOW)
    assert _schema_errors(doc) == []
    evaluation, labels = _by_ref(doc)["artifact:data/eval@1"], _by_ref(doc)["artifact:labels@1"]
    assert evaluation["mime-type"] == "text/csv" and evaluation["data"][0]["type"] == "dataset"
    # Not a media type CycloneDX accepts: kept as stored in a property, and not called a data set.
    assert "mime-type" not in labels and labels["data"] == [{"type": "other", "name": "labels"}]
    assert _props(labels["properties"])["pipewarden:media-type"] == ["labels in our own format"]


def test_the_store_is_read_from_manifests_only_never_decrypted(pipeline: Pipeline, tmp_path: Path) -> None:
    other_ring = tmp_path / "other" / "keyring.json"
    FileKeyProvider.create(other_ring)
    blind = ArtifactStore(
        LocalBackend(pipeline.ws.root / "store"),
        keyring=KeyRing.from_file(other_ring),
        signing_key=pipeline.ws.signing_key(),
        trusted=pipeline.ws.store_writers(),
    )
    with pytest.raises(IntegrityError):
        blind.read_bytes("bert@1")  # this ring cannot open a single body
    doc = build_sbom(tmp_path / "requirements.txt", store=blind, now=NOW)
    assert _by_ref(doc)["artifact:bert@1"]["hashes"][0]["content"] == _sha256(pipeline.files["bert"])


def test_a_tampered_manifest_stops_the_sbom(pipeline: Pipeline, tmp_path: Path) -> None:
    manifest = pipeline.ws.root / "store" / "artifacts" / "data" / "train" / "@1.json"
    envelope = json.loads(manifest.read_bytes())
    statement = json.loads(base64.b64decode(envelope["payload"]))
    statement["predicate"]["created_by"] = "someone-else"
    envelope["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    manifest.write_text(json.dumps(envelope))
    with pytest.raises(IntegrityError, match=r"data/train@1 manifest"):
        build_sbom(tmp_path / "requirements.txt", store=pipeline.store, now=NOW)


@dataclass(frozen=True)
class _Verdict:
    allowed: bool
    rule: str


class _AllBut:
    """An authorizer that lets a principal list every artifact but one."""

    def __init__(self, hidden: str) -> None:
        self.hidden = hidden

    def check(self, action: str, resource: str) -> _Verdict:
        return _Verdict(resource != self.hidden, f"everything but {self.hidden}")


def _guarded(store: ArtifactStore, hidden: str) -> tuple[GuardedStore, MemoryLog]:
    log = MemoryLog()
    acting = Acting(actor=Actor("ada", "user", "test"), events=Events(log), authorizer=_AllBut(hidden))
    return GuardedStore(store, acting), log


def test_read_as_a_principal_every_read_is_an_event_and_hidden_lineage_fails_closed(
    pipeline: Pipeline, tmp_path: Path
) -> None:
    seen, log = _guarded(pipeline.store, hidden="artifact:nothing-hidden")
    doc = build_sbom(tmp_path / "requirements.txt", store=seen, now=NOW)
    assert "artifact:churn/head@1" in _by_ref(doc)
    assert [(e.action, e.resource, e.outcome) for e in log.events] == [
        ("artifact.list", "artifact:*", "allowed"),
        # The lineage of each tip: bert@2 has none; churn/head@1's covers bert@1 and the data set.
        ("artifact.list", "artifact:churn/head", "allowed"),
    ]
    # The data set is out of this principal's reach: the models made from it cannot be described whole,
    # so there is no SBOM (rather than one with a hole in its lineage).
    blind, log = _guarded(pipeline.store, hidden="artifact:data/train")
    with pytest.raises(AccessDenied, match="reaches artifacts it may not list"):
        build_sbom(tmp_path / "requirements.txt", store=blind, now=NOW)
    assert [(e.action, e.resource, e.outcome) for e in log.events] == [
        ("artifact.list", "artifact:*", "allowed"),
        ("artifact.list", "artifact:churn/head", "denied"),
    ]


# -- validation -------------------------------------------------------------------------------------------


def test_validate_sbom_names_the_first_violation(pipeline: Pipeline, tmp_path: Path) -> None:
    good = build_sbom(tmp_path / "requirements.txt", store=pipeline.store, now=NOW)
    validate_sbom(good)
    serial = good["serialNumber"]

    bad_type = copy.deepcopy(good)
    bad_type["components"][0]["type"] = "model-ish"
    assert _schema_errors(bad_type)  # the independent check agrees
    with pytest.raises(
        ReportError,
        match=re.escape(
            f"{serial}: not valid CycloneDX 1.6 at $.components[0].type: 'model-ish' is not one of"
        ),
    ):
        validate_sbom(bad_type)

    unknown_field = copy.deepcopy(good)
    model = next(c for c in unknown_field["components"] if c["type"] == "machine-learning-model")
    model["modelCard"]["accuracy"] = "0.99"
    assert _schema_errors(unknown_field)
    with pytest.raises(ReportError, match=r"modelCard.*'accuracy' was unexpected"):
        validate_sbom(unknown_field)

    bad_hash = copy.deepcopy(good)
    bad_hash["components"][0]["hashes"][0]["content"] = "not-hex"
    with pytest.raises(ReportError, match=r"\$\.components\[0\]\.hashes\[0\]\.content"):
        validate_sbom(bad_hash)

    # What the schema cannot say: bom-refs are unique, and the graph names only what the document has.
    twice = copy.deepcopy(good)
    twice["components"][1]["bom-ref"] = twice["components"][0]["bom-ref"]
    assert _schema_errors(twice) == []
    first_ref = twice["components"][0]["bom-ref"]
    with pytest.raises(ReportError, match=re.escape(f"bom-ref {first_ref!r} is used twice")):
        validate_sbom(twice)
    dangling = copy.deepcopy(good)
    dangling["dependencies"].append({"ref": "artifact:ghost@1"})
    with pytest.raises(ReportError, match=r"the dependency graph names 'artifact:ghost@1'"):
        validate_sbom(dangling)


# -- the command ------------------------------------------------------------------------------------------


def test_cli_writes_a_valid_sbom_with_the_workspace_and_exits_0(pipeline: Pipeline, tmp_path: Path) -> None:
    result = run("sbom", "requirements.txt", "-w", "ws", "-o", "bom.json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    doc = json.loads((tmp_path / "bom.json").read_text(encoding="utf-8"))
    assert _schema_errors(doc) == []
    assert _by_ref(doc)["artifact:bert@1"]["type"] == "machine-learning-model"
    assert not list(tmp_path.glob(".bom.json*"))  # written through a temporary file, renamed into place


def test_cli_without_a_workspace_prints_packages_only(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text("requests==2.31.0\n")
    result = run("sbom", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert [c["bom-ref"] for c in doc["components"]] == ["pkg:pypi/requests@2.31.0"]
    assert "no workspace at .pipewarden" in result.stderr


def test_cli_usage_errors_exit_2(tmp_path: Path) -> None:
    missing = run("sbom", "nowhere.txt", cwd=tmp_path)
    assert missing.returncode == 2 and "nowhere.txt: no such file or folder" in missing.stderr
    (tmp_path / "requirements.txt").write_text("requests==2.31.0\n")
    no_ws = run("sbom", "-w", "absent", "-o", "bom.json", cwd=tmp_path)
    assert no_ws.returncode == 2 and "no pipewarden workspace here" in no_ws.stderr
    assert not (tmp_path / "bom.json").exists()
