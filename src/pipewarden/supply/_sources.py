"""Dependency sources behind one function: `read_dependencies(path)` for any file a Python project declares
or locks its dependencies in, or an installed environment. Nothing is run: files are parsed, and an
environment is read from its ``*.dist-info/METADATA`` files.

- ``requirements*.txt`` (or any other file name): every requirement (see `_requirements`);
- ``pyproject.toml``: ``[project]`` dependencies and optional dependencies, ``[dependency-groups]``, and
  Poetry's ``[tool.poetry]`` dependencies and groups (a bare Poetry version is an exact pin; ``^`` and
  ``~`` ranges are not pins);
- ``poetry.lock``: every ``[[package]]`` with its version and file hashes;
- ``uv.lock``: every ``[[package]]`` with its version and sdist / wheel hashes (the project itself and
  local or editable sources are left out);
- ``pylock.toml``, ``pylock.*.toml`` (PEP 751): every ``[[packages]]`` with its version and hashes;
- ``Pipfile.lock``: ``default`` and ``develop`` with versions and hashes;
- a ``site-packages`` folder or a virtual environment: every installed distribution, from its metadata.

A path that is a folder other than an environment is searched for those files (not recursively). A
file that cannot be parsed is an error naming it.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement

from pipewarden.errors import ConfigError
from pipewarden.supply._redact import redact_url
from pipewarden.supply._requirements import Dependency, from_requirement, read_requirements

__all__ = ["DEPENDENCY_FILES", "read_dependencies"]

DEPENDENCY_FILES = (
    "pyproject.toml",
    "poetry.lock",
    "uv.lock",
    "pylock.toml",
    "Pipfile.lock",
    "requirements.txt",
)


def _toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None


def _pep508(spec: str, where: str, group: str = "") -> Dependency:
    try:
        requirement = Requirement(spec)
    except InvalidRequirement as exc:
        raise ConfigError(f"{where}: {spec!r} is not a requirement ({exc})") from None
    return from_requirement(requirement, where, group=group)


def _strings(value: Any, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str | dict) for v in value):
        raise ConfigError(f"{where}: expected a list of requirements")
    return [v for v in value if isinstance(v, str)]  # {include-group = ...} entries name other groups


_POETRY_EXACT = re.compile(r"^(==)?\s*\d[\w.!+-]*$")


def _poetry(name: str, spec: Any, where: str, group: str) -> Dependency | None:
    if name.lower() == "python":
        return None
    if isinstance(spec, Mapping):
        if any(k in spec for k in ("git", "path", "url")):
            target = spec.get("git") or spec.get("path") or spec.get("url")
            return Dependency(
                name=name,
                source=where,
                note=f"installed from {redact_url(str(target))[:200]}",
                groups=(group,),
            )
        spec = spec.get("version", "*")
    text = str(spec).strip()
    exact = _POETRY_EXACT.match(text)
    return Dependency(
        name=name,
        source=where,
        pinned=text.lstrip("=").strip() if exact else None,
        specifier=text,
        groups=(group,),
    )


def _pyproject(path: Path) -> list[Dependency]:
    doc = _toml(path)
    found: list[Dependency] = []
    project = doc.get("project", {})
    found.extend(
        _pep508(spec, f"{path}:[project]")
        for spec in _strings(project.get("dependencies", []), f"{path} [project] dependencies")
    )
    for extra, specs in (project.get("optional-dependencies", {}) or {}).items():
        where = f"{path}:[project.optional-dependencies.{extra}]"
        found.extend(_pep508(spec, where, extra) for spec in _strings(specs, where))
    for group, specs in (doc.get("dependency-groups", {}) or {}).items():
        where = f"{path}:[dependency-groups.{group}]"
        found.extend(_pep508(spec, where, group) for spec in _strings(specs, where))
    poetry = (doc.get("tool", {}) or {}).get("poetry", {}) or {}
    sections = [
        ("main", poetry.get("dependencies", {}) or {}),
        ("dev", poetry.get("dev-dependencies", {}) or {}),
    ]
    sections += [
        (g, (v or {}).get("dependencies", {}) or {}) for g, v in (poetry.get("group", {}) or {}).items()
    ]
    for group, table in sections:
        for name, spec in table.items():
            dep = _poetry(name, spec, f"{path}:[tool.poetry {group}]", group)
            if dep is not None:
                found.append(dep)
    return found


def _hashes(items: Iterable[Any]) -> tuple[str, ...]:
    out: list[str] = []
    for item in items:
        if isinstance(item, Mapping):
            value = item.get("hash")
            if isinstance(value, str):
                out.append(value)
            hashes = item.get("hashes")
            if isinstance(hashes, Mapping):
                out.extend(f"{k}:{v}" for k, v in hashes.items())
        elif isinstance(item, str):
            out.append(item)
    return tuple(out)


def _locked(
    name: Any, version: Any, where: str, hashes: tuple[str, ...], *, installed: bool = False
) -> Dependency:
    if not isinstance(name, str) or not isinstance(version, str):
        raise ConfigError(f"{where}: a locked package needs a name and a version")
    # `direct` False marks what is installed already: no download left whose hash could be checked.
    return Dependency(
        name=name, source=where, pinned=version, specifier=f"=={version}", hashes=hashes, direct=not installed
    )


def _poetry_lock(path: Path) -> list[Dependency]:
    return [
        _locked(p.get("name"), p.get("version"), f"{path}:{p.get('name')}", _hashes(p.get("files", []) or []))
        for p in _toml(path).get("package", []) or []
    ]


def _uv_lock(path: Path) -> list[Dependency]:
    found = []
    for p in _toml(path).get("package", []) or []:
        source = p.get("source", {}) or {}
        if any(k in source for k in ("editable", "virtual", "path", "directory")):
            continue  # the project itself, or local code: nothing released to check
        items = [p.get("sdist", {}) or {}, *(p.get("wheels", []) or [])]
        found.append(_locked(p.get("name"), p.get("version"), f"{path}:{p.get('name')}", _hashes(items)))
    return found


def _pylock(path: Path) -> list[Dependency]:
    found = []
    for p in _toml(path).get("packages", []) or []:
        items = [p.get("sdist", {}) or {}, *(p.get("wheels", []) or [])]
        if p.get("version") is None:
            found.append(
                Dependency(
                    name=str(p.get("name")),
                    source=f"{path}:{p.get('name')}",
                    note="locked without a version (a VCS or directory source)",
                )
            )
            continue
        found.append(_locked(p.get("name"), p.get("version"), f"{path}:{p.get('name')}", _hashes(items)))
    return found


def _pipfile_lock(path: Path) -> list[Dependency]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: not valid JSON ({exc})") from None
    found = []
    for section in ("default", "develop"):
        for name, entry in (doc.get(section, {}) or {}).items():
            where = f"{path}:{section}.{name}"
            version = str(entry.get("version", ""))
            if not version.startswith("=="):
                found.append(
                    Dependency(
                        name=name, source=where, note="locked without an exact version (a VCS or path source)"
                    )
                )
                continue
            found.append(_locked(name, version[2:], where, tuple(entry.get("hashes", []) or [])))
    return found


def _environment(folder: Path) -> list[Dependency]:
    found = []
    for metadata in sorted(folder.glob("*.dist-info/METADATA")):
        name = version = None
        for line in metadata.read_text(encoding="utf-8", errors="replace").splitlines():
            if not line.strip():
                break  # the headers end at the first blank line
            key, _, value = line.partition(":")
            if key == "Name":
                name = value.strip()
            elif key == "Version":
                version = value.strip()
        if name and version:
            found.append(_locked(name, version, str(metadata.parent), (), installed=True))
        else:
            found.append(
                Dependency(
                    name=metadata.parent.name, source=str(metadata), note="metadata without a name or version"
                )
            )
    return found


def _site_packages(path: Path) -> Path | None:
    if any(path.glob("*.dist-info")):
        return path
    candidates = sorted(path.glob("lib/python3*/site-packages")) + sorted(path.glob("Lib/site-packages"))
    return candidates[0] if candidates else None


def read_dependencies(path: Path) -> list[Dependency]:
    """The dependencies `path` declares or locks (see the module docstring)."""
    if not path.exists():
        raise ConfigError(f"{path}: no such file or folder")
    if path.is_dir():
        site = _site_packages(path)
        if site is not None:
            return _environment(site)
        found: list[Dependency] = []
        files = [path / name for name in DEPENDENCY_FILES if (path / name).is_file()]
        files += sorted(p for p in path.glob("pylock.*.toml") if p.is_file())
        if any(f.name != "pyproject.toml" and f.suffix in (".lock", ".toml") for f in files):
            # A lock file pins what pyproject.toml's ranges resolve to: audit the lock, not the ranges.
            files = [f for f in files if f.name != "pyproject.toml"]
        if not files:
            raise ConfigError(
                f"{path}: no dependency file here ({', '.join(DEPENDENCY_FILES)}) and no environment"
            )
        for file in files:
            found.extend(read_dependencies(file))
        return found
    name = path.name
    if name == "pyproject.toml":
        return _pyproject(path)
    if name == "poetry.lock":
        return _poetry_lock(path)
    if name == "uv.lock":
        return _uv_lock(path)
    if name == "Pipfile.lock":
        return _pipfile_lock(path)
    if name == "pylock.toml" or (name.startswith("pylock.") and name.endswith(".toml")):
        return _pylock(path)
    return read_requirements(path)
