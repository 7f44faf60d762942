"""The ML-BOM part of an SBOM: the artifact store's models and data sets as CycloneDX 1.6 components.

Every stored version becomes one component, read from its signed manifest only (no body is decrypted):
a model file (by the media type the store recorded) is a ``machine-learning-model`` with a model card,
anything else is ``data``. Lineage becomes the dependency graph: a version depends on the versions it
was made from, each pinned by digest and checked by the store's own lineage read.

cyclonedx-python-lib 11 has no model card or component data yet (CycloneDX 1.6 ``modelCard`` and
``data``), so those parts are kept here as JSON and merged into the serialized document by bom-ref.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from cyclonedx.model import HashAlgorithm, HashType, Property
from cyclonedx.model.component import Component, ComponentType

if TYPE_CHECKING:
    from pipewarden.store import Artifact, ArtifactRef, Lineage

__all__ = [
    "DATASET_TYPES",
    "MODEL_FORMATS",
    "ArtifactPart",
    "ArtifactReader",
    "artifact_ref",
    "is_model",
    "read_artifacts",
]

#: Media types (as the store records them) of files that carry a model, and the format each names.
MODEL_FORMATS = {
    "application/vnd.safetensors": "safetensors",
    "application/vnd.onnx": "onnx",
    "application/vnd.gguf": "gguf",
    "application/vnd.pytorch": "pytorch",
    "application/vnd.python.pickle": "pickle",
    "application/vnd.joblib": "joblib",
    "application/vnd.keras": "keras",
    "application/x-hdf5": "hdf5",
}

#: Media types of data sets (CycloneDX data type ``dataset``); other non-model files are ``other``.
DATASET_TYPES = frozenset(
    {
        "text/csv",
        "text/tab-separated-values",
        "application/json",
        "application/jsonl",
        "application/x-ndjson",
        "application/vnd.apache.parquet",
        "application/vnd.apache.arrow.file",
        "application/vnd.numpy",
        "application/vnd.numpy+zip",
    }
)

# CycloneDX 1.6's pattern for a component's mime-type; a stored media type that does not fit (a name given
# with `store put --media-type`) stays in the pipewarden:media-type property only.
_MIME = re.compile(r"^[-+a-z0-9.]+/[-+a-z0-9.]+$")
# The cipher every stored body is sealed with (the manifest's "encryption" predicate: PWSTRM/1).
_CIPHER = "AES-256-GCM"


class ArtifactReader(Protocol):
    """What an SBOM reads of a store: `ArtifactStore`, or `GuardedStore` for a principal's view."""

    def artifacts(self, name: str | None = None) -> list[Artifact]: ...

    def lineage(self, ref: str | ArtifactRef) -> Lineage: ...


@dataclass(frozen=True, slots=True)
class ArtifactPart:
    """The components of a store, their dependency edges, the JSON parts the library cannot express, and
    the tips (the versions no other version was made from), which the project itself depends on."""

    components: tuple[Component, ...]
    edges: tuple[tuple[str, tuple[str, ...]], ...]
    extras: tuple[tuple[str, dict[str, Any]], ...]
    tips: tuple[str, ...]


def artifact_ref(ref: str) -> str:
    """The bom-ref of a stored version (``NAME@VERSION``), as pipewarden names artifacts as resources."""
    return f"artifact:{ref}"


def _essence(media_type: str) -> str:
    """A media type without its parameters, in lower case (``text/csv; charset=utf-8`` -> ``text/csv``)."""
    return media_type.split(";", 1)[0].strip().lower()


def is_model(media_type: str) -> bool:
    return _essence(media_type) in MODEL_FORMATS


def read_artifacts(store: ArtifactReader) -> ArtifactPart:
    """Every version in `store` as a component, with lineage as dependency edges.

    The lineage of each tip is read through the store, which checks that every parent is the version
    pinned by digest (and, for a `GuardedStore`, that the principal may list each ancestor); every
    version with parents is on the lineage of some tip, so every edge in the graph has been checked.
    """
    arts = {a.ref: a for a in store.artifacts()}
    derived = {str(p) for a in arts.values() for p in a.parents}
    tips = sorted(ref for ref in arts if ref not in derived)
    for ref in tips:
        if arts[ref].parents:
            for node in store.lineage(ref).walk():
                arts.setdefault(node.artifact.ref, node.artifact)
    components: list[Component] = []
    edges: list[tuple[str, tuple[str, ...]]] = []
    extras: list[tuple[str, dict[str, Any]]] = []
    for ref in sorted(arts):
        art = arts[ref]
        parents = [arts[str(p)] for p in art.parents]
        facts = _facts(art)
        model = is_model(art.media_type)
        components.append(
            Component(
                type=ComponentType.MACHINE_LEARNING_MODEL if model else ComponentType.DATA,
                name=art.name,
                version=str(art.version),
                bom_ref=artifact_ref(ref),
                hashes=[HashType(alg=HashAlgorithm.SHA_256, content=art.digest)],
                # A model's facts are in its model card; a data set's on the component.
                properties=None if model else [Property(name=n, value=v) for n, v in facts],
            )
        )
        edges.append((artifact_ref(ref), tuple(artifact_ref(p.ref) for p in parents)))
        # cyclonedx-python-lib 11 writes a component's mime type as "mimeType", which the 1.6 schema does
        # not know ("mime-type"): it is set here with the parts the library lacks.
        part = _model_card(parents, facts) if model else _data(art)
        if _MIME.match(_essence(art.media_type)):
            part = {"mime-type": _essence(art.media_type), **part}
        extras.append((artifact_ref(ref), part))
    return ArtifactPart(
        components=tuple(components),
        edges=tuple(edges),
        extras=tuple(extras),
        tips=tuple(artifact_ref(ref) for ref in tips),
    )


def _facts(art: Artifact) -> list[tuple[str, str]]:
    """What the store knows of a version, as ``pipewarden:*`` properties (each value a string)."""
    scan = art.scan
    facts = [
        ("pipewarden:artifact", art.ref),
        ("pipewarden:media-type", art.media_type),
        ("pipewarden:size", str(art.size)),
        ("pipewarden:created-by", art.created_by),
        ("pipewarden:created-at", art.created_at),
        ("pipewarden:signer", art.signer),
        ("pipewarden:signature", "verified"),
        ("pipewarden:encrypted-at-rest", "true"),
        ("pipewarden:encryption", _CIPHER),
        ("pipewarden:scan:verdict", scan.describe()),
        ("pipewarden:scan:scanned", "true" if scan.scanned else "false"),
        ("pipewarden:scan:findings", str(scan.findings)),
        ("pipewarden:scan:max-severity", scan.max_severity or "none"),
        ("pipewarden:scan:threshold", scan.threshold),
    ]
    facts.extend(("pipewarden:parent", f"{p} sha256:{p.digest}") for p in art.parents)
    fmt = MODEL_FORMATS.get(_essence(art.media_type))
    if fmt is not None:
        facts.insert(1, ("pipewarden:format", fmt))
    return facts


def _model_card(parents: Sequence[Artifact], facts: list[tuple[str, str]]) -> dict[str, Any]:
    """A CycloneDX 1.6 model card with only what pipewarden knows: the data sets it was made from (its
    data parents) and the store's facts. Task, approach, architecture and metrics are unknown here, so
    they are left out rather than guessed."""
    card: dict[str, Any] = {}
    datasets = [{"ref": artifact_ref(p.ref)} for p in parents if not is_model(p.media_type)]
    if datasets:
        card["modelParameters"] = {"datasets": datasets}
    card["properties"] = [{"name": n, "value": v} for n, v in facts]
    return {"modelCard": card}


def _data(art: Artifact) -> dict[str, Any]:
    kind = "dataset" if _essence(art.media_type) in DATASET_TYPES else "other"
    return {"data": [{"type": kind, "name": art.name}]}
