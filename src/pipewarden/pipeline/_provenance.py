"""Provenance: what produced each artifact a stage wrote, as a signed in-toto statement.

The statement follows in-toto's Statement v1 with a SLSA Provenance v1 predicate
(https://slsa.dev/spec/v1.0/provenance): the subject is the artifact version and its SHA-256; the build
definition names the pipeline, the stage and its parameters (external), the service account and run id
(internal), and every resolved dependency: each input artifact pinned by digest, each input file by
digest, the stage's code (its source file's digest and its function's), the repository's commit when the
pipeline lives in a git checkout, and the Python distributions loaded in the process. It is signed as a
DSSE envelope with the workspace's signing key and stored as the artifact ``NAME.provenance``, whose
parent is the version it describes, so the store keeps, encrypts, signs and verifies it like any other.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import platform
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipewarden.crypto import INTOTO_PAYLOAD_TYPE, open_envelope, sign_envelope
from pipewarden.errors import IntegrityError

if TYPE_CHECKING:
    from pipewarden.crypto import SigningKey, TrustedKeys
    from pipewarden.store import Artifact, GuardedStore

__all__ = [
    "BUILD_TYPE",
    "PROVENANCE_SUFFIX",
    "Provenance",
    "build_statement",
    "code_digests",
    "git_commit",
    "loaded_distributions",
    "read_provenance",
    "sign_statement",
]

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
SLSA_PROVENANCE = "https://slsa.dev/provenance/v1"
#: Names this build type (the shape of externalParameters); a URN, as nothing needs to be fetched from it.
BUILD_TYPE = "urn:pipewarden:pipeline-stage:v1"
BUILDER_ID = "urn:pipewarden:pipeline-runner"
PROVENANCE_SUFFIX = ".provenance"


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def code_digests(func: Callable[..., Any]) -> list[dict[str, Any]]:
    """The stage's code as resolved dependencies: its source file and its own source text, by digest."""
    found: list[dict[str, Any]] = []
    try:
        source_file = inspect.getsourcefile(func)
    except TypeError:
        source_file = None
    if source_file and Path(source_file).is_file():
        found.append(
            {
                "name": f"code:{Path(source_file).name}",
                "uri": Path(source_file).resolve().as_uri(),
                "digest": {"sha256": _sha256_file(Path(source_file))},
            }
        )
    try:
        text = inspect.getsource(func)
    except (OSError, TypeError):
        text = None
    if text is not None:
        module = str(getattr(func, "__module__", "?"))
        if module.startswith("pipewarden_stage_") and source_file:  # a file beside the pipeline
            module = Path(source_file).name
        found.append(
            {
                "name": f"function:{module}:{getattr(func, '__qualname__', '?')}",
                "digest": {"sha256": hashlib.sha256(text.encode()).hexdigest()},
            }
        )
    return found


def git_commit(folder: Path) -> str | None:
    """The commit checked out in the git repository holding `folder`, read from ``.git`` (git is not run);
    None outside a repository or for a ref that cannot be read."""
    for place in (folder, *folder.parents):
        dot = place / ".git"
        if dot.is_file():  # a worktree or submodule: "gitdir: PATH"
            text = dot.read_text(encoding="utf-8", errors="replace").strip()
            if not text.startswith("gitdir:"):
                return None
            dot = (place / text.partition(":")[2].strip()).resolve()
        if not dot.is_dir():
            continue
        try:
            head = (dot / "HEAD").read_text(encoding="utf-8").strip()
        except OSError:
            return None
        if not head.startswith("ref:"):
            return head if len(head) in (40, 64) else None
        ref = head.partition(":")[2].strip()
        for gitdir in (dot, _common_dir(dot)):
            loose = gitdir / ref
            if loose.is_file():
                return loose.read_text(encoding="utf-8").strip() or None
            packed = gitdir / "packed-refs"
            if packed.is_file():
                for line in packed.read_text(encoding="utf-8").splitlines():
                    parts = line.split()
                    if len(parts) == 2 and parts[1] == ref:
                        return parts[0]
        return None
    return None


def _common_dir(gitdir: Path) -> Path:
    common = gitdir / "commondir"
    if common.is_file():
        return (gitdir / common.read_text(encoding="utf-8").strip()).resolve()
    return gitdir


def loaded_distributions() -> list[dict[str, Any]]:
    """The installed distributions whose top-level modules are loaded in this process, as package URLs."""
    owners = metadata.packages_distributions()
    names: set[str] = set()
    for module in list(sys.modules):
        top = module.partition(".")[0]
        names.update(owners.get(top, ()))
    found = []
    for name in sorted(names, key=str.lower):
        try:
            version = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
        found.append({"name": f"python:{name}", "uri": f"pkg:pypi/{name.lower()}@{version}"})
    return found


def build_statement(
    *,
    artifact: Artifact,
    pipeline: str,
    stage: str,
    account: str,
    run_id: str,
    params: Mapping[str, Any],
    inputs: Sequence[Artifact],
    files: Mapping[str, Path],
    code: Sequence[Mapping[str, Any]],
    commit: str | None,
    started: datetime,
    finished: datetime,
) -> dict[str, Any]:
    from pipewarden import __version__

    resolved: list[dict[str, Any]] = [
        {"name": f"artifact:{a.name}", "uri": f"pipewarden:artifact/{a.ref}", "digest": {"sha256": a.digest}}
        for a in inputs
    ]
    resolved += [
        {"name": f"file:{name}", "uri": path.resolve().as_uri(), "digest": {"sha256": _sha256_file(path)}}
        for name, path in sorted(files.items())
    ]
    resolved += [dict(c) for c in code]
    if commit is not None:
        resolved.append({"name": "repository", "digest": {"gitCommit": commit}})
    resolved += loaded_distributions()
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": artifact.ref, "digest": {"sha256": artifact.digest}}],
        "predicateType": SLSA_PROVENANCE,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": {
                    "pipeline": pipeline,
                    "stage": stage,
                    "params": _jsonable(dict(params)),
                },
                "internalParameters": {"account": account, "python": platform.python_version()},
                "resolvedDependencies": resolved,
            },
            "runDetails": {
                "builder": {"id": BUILDER_ID, "version": {"pipewarden": __version__}},
                "metadata": {
                    "invocationId": run_id,
                    "startedOn": started.isoformat(timespec="seconds").replace("+00:00", "Z"),
                    "finishedOn": finished.isoformat(timespec="seconds").replace("+00:00", "Z"),
                },
            },
        },
    }


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str, sort_keys=True))


def sign_statement(statement: Mapping[str, Any], key: SigningKey) -> bytes:
    payload = json.dumps(statement, sort_keys=True, separators=(",", ":")).encode()
    return sign_envelope(payload, payload_type=INTOTO_PAYLOAD_TYPE, key=key)


@dataclass(frozen=True, slots=True)
class Provenance:
    """A verified provenance statement: who signed it and what it says."""

    ref: str
    signer: str
    statement: Mapping[str, Any]

    @property
    def dependencies(self) -> list[Mapping[str, Any]]:
        return list(self.statement["predicate"]["buildDefinition"]["resolvedDependencies"])

    @property
    def inputs(self) -> list[str]:
        """The input artifacts, as ``NAME@VERSION``."""
        return [
            d["uri"].removeprefix("pipewarden:artifact/")
            for d in self.dependencies
            if str(d.get("uri", "")).startswith("pipewarden:artifact/")
        ]

    def lines(self) -> list[str]:
        build = self.statement["predicate"]["buildDefinition"]
        meta = self.statement["predicate"]["runDetails"]["metadata"]
        out = [
            f"provenance {self.ref}  signed by {self.signer}  (SLSA v1, verified)",
            f"  built by  pipeline {build['externalParameters']['pipeline']}, stage "
            f"{build['externalParameters']['stage']}, as {build['internalParameters']['account']}, "
            f"run {meta['invocationId']}",
        ]
        for dep in self.dependencies:
            digest = dep.get("digest", {})
            shown = next(iter(digest.items()), None)
            where = f"  {shown[0]}:{str(shown[1])[:16]}" if shown else ""
            if not str(dep["name"]).startswith("python:"):
                out.append(f"  from      {dep['name']}{where}")
        pythons = [
            d["uri"].removeprefix("pkg:pypi/") for d in self.dependencies if d["name"].startswith("python:")
        ]
        if pythons:
            out.append(f"  python    {len(pythons)} distributions loaded ({', '.join(pythons[:6])}, ...)")
        params = build["externalParameters"].get("params") or {}
        if params:
            out.append(f"  params    {json.dumps(params, sort_keys=True)[:200]}")
        return out


def read_provenance(store: GuardedStore, artifact: Artifact, *, trusted: TrustedKeys) -> Provenance | None:
    """The newest provenance stored for `artifact`, read as `store`'s principal (authorized and audited)
    and verified: the store's own checks, the DSSE signature by a trusted key, and a subject that is
    exactly this version and digest. None if there is none, or if the principal may not list it.
    Raises `IntegrityError` for a statement that does not verify or that names another artifact."""
    name = artifact.name + PROVENANCE_SUFFIX
    if not store.acting.authorizer.check("artifact.list", f"artifact:{name}").allowed:
        return None
    raw = store.store
    records = [raw.resolve(f"{name}@{version}") for version in sorted(raw.versions(name), reverse=True)]
    records = [
        r
        for r in records
        if any(p.name == artifact.name and p.version == artifact.version for p in r.parents)
    ]
    if len(records) > 1:
        # A stage stores one statement per output; a second one for the same version is not its.
        refs = ", ".join(r.ref for r in records)
        raise IntegrityError(f"{artifact.ref}: more than one provenance statement ({refs}); none is trusted")
    for record in records:
        envelope = store.read_bytes(record.ref)
        payload, signer = open_envelope(
            envelope, trusted=trusted, payload_type=INTOTO_PAYLOAD_TYPE, label=record.ref
        )
        try:
            statement = json.loads(payload)
            subject = statement["subject"]
            ok = (
                statement["_type"] == STATEMENT_TYPE
                and statement["predicateType"] == SLSA_PROVENANCE
                and subject == [{"name": artifact.ref, "digest": {"sha256": artifact.digest}}]
                # Stored by the account it names, which also stored the artifact itself.
                and statement["predicate"]["buildDefinition"]["internalParameters"]["account"]
                == record.created_by
                == artifact.created_by
            )
        except (KeyError, TypeError, json.JSONDecodeError):
            ok = False
        if not ok:
            raise IntegrityError(f"{record.ref}: the provenance statement does not describe {artifact.ref}")
        return Provenance(record.ref, signer, statement)
    return None
