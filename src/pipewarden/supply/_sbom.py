"""A CycloneDX 1.6 SBOM of a project: its Python packages, and the pipeline's models and data sets.

Python packages come from `read_dependencies` (requirements files, pyproject.toml, lock files, an
installed environment); models and data sets from an artifact store's signed manifests and lineage
(see `_mlbom`). The document is built with cyclonedx-python-lib and validated against the CycloneDX 1.6
JSON schema the library bundles before it is returned: a document that does not validate is an error,
never an output.
"""

from __future__ import annotations

import functools
import json
import re
import tomllib
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cyclonedx.exception import CycloneDxException
from cyclonedx.model import HashAlgorithm, HashType, Property
from cyclonedx.model.bom import Bom
from cyclonedx.model.component import Component, ComponentType
from packageurl import PackageURL

from pipewarden.errors import ConfigError, ReportError
from pipewarden.supply._mlbom import ArtifactPart, ArtifactReader, read_artifacts
from pipewarden.supply._osv import normalize
from pipewarden.supply._redact import redact_urls
from pipewarden.supply._requirements import Dependency
from pipewarden.supply._sources import read_dependencies

if TYPE_CHECKING:
    from cyclonedx.validation.json import JsonStrictValidator

__all__ = ["build_sbom", "validate_sbom"]

# hashlib's names (as pip's --hash and lock files write them) -> the CycloneDX algorithm and hex length.
_HASHES: dict[str, tuple[HashAlgorithm, int]] = {
    "md5": (HashAlgorithm.MD5, 32),
    "sha1": (HashAlgorithm.SHA_1, 40),
    "sha256": (HashAlgorithm.SHA_256, 64),
    "sha384": (HashAlgorithm.SHA_384, 96),
    "sha512": (HashAlgorithm.SHA_512, 128),
    "sha3_256": (HashAlgorithm.SHA3_256, 64),
    "sha3_384": (HashAlgorithm.SHA3_384, 96),
    "sha3_512": (HashAlgorithm.SHA3_512, 128),
    "blake2b": (HashAlgorithm.BLAKE2B_512, 128),
}
_HEX = re.compile(r"^[0-9a-fA-F]+$")
_PROJECT_REF = "project"


def build_sbom(
    path: Path, *, store: ArtifactReader | None = None, now: datetime | None = None
) -> dict[str, Any]:
    """The CycloneDX 1.6 JSON document of the project at `path`, validated, as a dict.

    `path` is anything `read_dependencies` reads (a requirements file, pyproject.toml, a lock file, a
    folder holding them, an installed environment); its packages are ``library`` components with purls
    and the lock's hashes. With `store` (an `ArtifactStore`, or a `GuardedStore` to read as a principal),
    every stored version is a component too: models with a model card, data sets as ``data``, lineage
    as the dependency graph. `now` fixes the document's timestamp.

    >>> doc = build_sbom(Path("uv.lock"), store=Workspace.open().store())  # doctest: +SKIP
    >>> doc["specVersion"]  # doctest: +SKIP
    '1.6'
    """
    from cyclonedx.output.json import JsonV1Dot6

    from pipewarden import __version__

    packages = python_components(read_dependencies(path))
    part = read_artifacts(store) if store is not None else ArtifactPart((), (), (), ())
    bom = Bom()
    bom.metadata.timestamp = (now or datetime.now(UTC)).astimezone(UTC)
    bom.metadata.tools.components.add(
        Component(type=ComponentType.APPLICATION, name="pipewarden", version=__version__)
    )
    root = _project(path)
    bom.metadata.component = root
    bom.components.update(packages)
    bom.components.update(part.components)
    by_ref = {str(c.bom_ref): c for c in (*packages, *part.components)}
    bom.register_dependency(root, [*packages, *(by_ref[ref] for ref in part.tips)])
    for ref, parents in part.edges:
        bom.register_dependency(by_ref[ref], [by_ref[p] for p in parents])
    try:
        document: dict[str, Any] = json.loads(JsonV1Dot6(bom).output_as_string())
    except (CycloneDxException, ValueError, TypeError) as exc:
        raise ReportError(f"{path}: the SBOM cannot be serialized: {exc}") from exc
    extras = dict(part.extras)
    for component in document.get("components", []):
        component.update(extras.get(component.get("bom-ref", ""), {}))
    # The library gives every component an entry in the graph; an empty one says "depends on nothing".
    # Which package pulls in which is not read here, so packages get none (CycloneDX: unknown).
    python_refs = {str(c.bom_ref) for c in packages}
    document["dependencies"] = [
        d for d in document.get("dependencies", []) if d.get("dependsOn") or d["ref"] not in python_refs
    ]
    # The identifying fields first, as CycloneDX documents are usually read.
    head = ("$schema", "bomFormat", "specVersion", "serialNumber", "version", "metadata", "components")
    document = {k: document[k] for k in head if k in document} | document
    validate_sbom(document)
    return document


def python_components(dependencies: Iterable[Dependency]) -> list[Component]:
    """One ``library`` component per package and version (requirements naming the same one are merged);
    a ``-c`` constraint installs nothing and is left out."""
    groups: dict[str, list[Dependency]] = {}
    for dep in dependencies:
        if not dep.constraint:
            groups.setdefault(_ref(dep), []).append(dep)
    return [_component(ref, deps) for ref, deps in groups.items()]


def _ref(dep: Dependency) -> str:
    """The bom-ref: the purl of a pinned package; the versionless purl of a range (the installer picks
    the version); a name of its own for code that is not a released version (a URL, a path)."""
    if dep.note:
        return f"python-source:{normalize(dep.name)}"
    return str(_purl(dep).to_string())


def _purl(dep: Dependency) -> PackageURL:
    return PackageURL(type="pypi", name=normalize(dep.name), version=dep.pinned)


def _component(ref: str, deps: list[Dependency]) -> Component:
    first = deps[0]
    hashes: dict[tuple[HashAlgorithm, str], HashType] = {}
    facts: list[tuple[str, str]] = []
    for dep in deps:
        facts.append(("pipewarden:source", dep.source))
        if dep.pinned is None and dep.specifier:
            facts.append(("pipewarden:specifier", dep.specifier))
        if dep.marker:
            facts.append(("pipewarden:marker", dep.marker))
        if dep.extras:
            facts.append(("pipewarden:extras", ",".join(dep.extras)))
        facts.extend(("pipewarden:group", group) for group in dep.groups)
        if dep.note:
            # A URL's user-info and query are credentials (a token, a presigned signature): never copied.
            facts.append(("pipewarden:note", redact_urls(dep.note)))
        for text in dep.hashes:
            parsed = _hash(text, dep)
            if parsed is None:
                facts.append(("pipewarden:hash", text))
            else:
                hashes[(parsed.alg, parsed.content)] = parsed
    return Component(
        type=ComponentType.LIBRARY,
        name=first.name,
        version=first.pinned,
        purl=None if first.note else _purl(first),
        bom_ref=ref,
        hashes=list(hashes.values()),
        properties=[Property(name=n, value=v) for n, v in dict.fromkeys(facts)],
    )


def _hash(text: str, dep: Dependency) -> HashType | None:
    """A ``sha256:<hex>`` hash as CycloneDX's; None for an algorithm CycloneDX has no name for."""
    alg, _, content = text.partition(":")
    known = _HASHES.get(alg.strip().lower().replace("-", "_"))
    if known is None:
        return None
    algorithm, length = known
    if len(content) != length or not _HEX.match(content):
        raise ConfigError(f"{dep.source}: {dep.name}: {text[:80]!r} is not a {alg} digest")
    return HashType(alg=algorithm, content=content.lower())


def _project(path: Path) -> Component:
    """The component the SBOM describes: the project named in pyproject.toml beside `path`, else the
    folder's name."""
    folder = (path if path.is_dir() else path.parent).resolve()
    name, version = folder.name or "project", None
    try:
        doc = tomllib.loads((folder / "pyproject.toml").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        doc = {}  # the name is only a label: without a readable pyproject.toml, the folder's name does
    project = doc.get("project")
    if not isinstance(project, dict):
        project = doc.get("tool", {}).get("poetry") if isinstance(doc.get("tool"), dict) else None
    if isinstance(project, dict):
        if isinstance(project.get("name"), str) and project["name"]:
            name = project["name"]
        if isinstance(project.get("version"), str) and project["version"]:
            version = project["version"]
    return Component(type=ComponentType.APPLICATION, name=name, version=version, bom_ref=_PROJECT_REF)


def validate_sbom(document: dict[str, Any]) -> None:
    """Check `document` against the CycloneDX 1.6 JSON schema bundled with cyclonedx-python-lib (strict:
    no unknown fields), then the two rules the schema cannot express: every bom-ref is unique, and the
    dependency graph names only bom-refs of the document. Raise `ReportError` naming the first problem.
    """
    if not isinstance(document, dict):
        raise ReportError(f"the SBOM: a CycloneDX document is a JSON object, not {type(document).__name__}")
    label = str(document.get("serialNumber") or "the SBOM")
    try:
        text = json.dumps(document)
    except (TypeError, ValueError) as exc:
        raise ReportError(f"{label}: not JSON ({exc})") from None
    try:
        error = _validator().validate_str(text)
    except (CycloneDxException, ImportError, OSError, NotImplementedError) as exc:
        # A validator that cannot run passes nothing.
        raise ReportError(f"{label}: cannot be validated against the CycloneDX 1.6 schema: {exc}") from exc
    if error is not None:
        detail = error.data
        where = getattr(detail, "json_path", "$")
        message = str(getattr(detail, "message", detail))
        if len(message) > 300:
            message = message[:300] + "..."
        raise ReportError(f"{label}: not valid CycloneDX 1.6 at {where}: {message}")
    _check_references(document, label)


@functools.cache
def _validator() -> JsonStrictValidator:
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    return JsonStrictValidator(SchemaVersion.V1_6)


def _bom_refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "bom-ref" and isinstance(value, str):
                yield value
            else:
                yield from _bom_refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _bom_refs(item)


def _check_references(document: dict[str, Any], label: str) -> None:
    known: set[str] = set()
    for ref in _bom_refs(document):
        if ref in known:
            raise ReportError(f"{label}: bom-ref {ref!r} is used twice; every bom-ref must be unique")
        known.add(ref)
    seen: set[str] = set()
    for entry in document.get("dependencies", []):
        ref = entry["ref"]
        if ref in seen:
            raise ReportError(f"{label}: the dependency graph has two entries for {ref!r}")
        seen.add(ref)
        for target in (ref, *entry.get("dependsOn", []), *entry.get("provides", [])):
            # A BOM-Link (urn:cdx:...) points into another document, which is not checked here.
            if target not in known and not target.startswith("urn:cdx:"):
                raise ReportError(f"{label}: the dependency graph names {target!r}, which no component has")
