"""OSV records and whether a package version is affected, by the OSV schema's own rules.

A record (https://ossf.github.io/osv-schema/) lists `affected` packages, each with `ranges` of `events`
(`introduced`, `fixed`, `last_affected`, `limit`) and/or explicit `versions`. For the PyPI ecosystem a
version is compared as PEP 440 prescribes, on its public part (``2.1.0+cu121`` is ``2.1.0``):

- within one range, the events are sorted by version and walked in order; a version is affected after an
  `introduced` at or below it (``"0"`` is below everything) and stops being affected at a `fixed` at or
  below it, or after a `last_affected` below it; a `limit` at or below it ends the range;
- the explicit `versions` list affects those versions exactly (compared as versions, not as text);
- a record with `withdrawn` set affects nothing; `aliases` (CVE, GHSA ids) are merged into one finding.

A version that cannot be read as PEP 440, or a range that cannot be evaluated, is not "unaffected": it is
reported as not auditable (fail closed), by the caller.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from packaging.version import InvalidVersion, Version

from pipewarden.errors import ConfigError

__all__ = ["Affected", "Record", "UnreadableVersion", "normalize", "parse_version", "public_version"]

ECOSYSTEM = "PyPI"
_NAME = re.compile(r"[-_.]+")


def normalize(name: str) -> str:
    """A package name as PEP 503 compares them: lower case, runs of ``-``, ``_`` and ``.`` as one ``-``."""
    return _NAME.sub("-", name).lower()


class UnreadableVersion(ValueError):
    """A version string PEP 440 cannot read; the package cannot be audited."""


def parse_version(text: str) -> Version:
    try:
        return Version(text)
    except InvalidVersion:
        raise UnreadableVersion(f"{text!r} is not a PEP 440 version") from None


def public_version(text: str) -> Version:
    """The version with any local part (``+cu121``) dropped: what advisories are written against."""
    return parse_version(parse_version(text).public)


@dataclass(frozen=True, slots=True)
class _Range:
    events: tuple[tuple[str, Version | None], ...]  # (kind, version); None is introduced "0"

    def affects(self, version: Version) -> bool:
        affected = False
        for kind, at in self.events:
            if kind == "introduced":
                if at is None or version >= at:
                    affected = True
            elif at is None:
                continue
            elif kind == "fixed" and version >= at:
                affected = False
            elif kind == "last_affected" and version > at:
                affected = False
            elif kind == "limit" and version >= at:
                return False
        return affected

    @property
    def fixed(self) -> tuple[Version, ...]:
        return tuple(at for kind, at in self.events if kind == "fixed" and at is not None)


@dataclass(frozen=True, slots=True)
class Affected:
    """One `affected` entry of a record, for one package."""

    name: str  # normalized
    ranges: tuple[_Range, ...]
    versions: frozenset[Version]

    def affects(self, version: Version) -> bool:
        return version in self.versions or any(r.affects(version) for r in self.ranges)

    def fixes_after(self, version: Version) -> tuple[Version, ...]:
        """The fixed versions above `version`, lowest first: the candidates for an upgrade."""
        return tuple(sorted({f for r in self.ranges for f in r.fixed if f > version}))


@dataclass(frozen=True, slots=True)
class Record:
    id: str
    aliases: tuple[str, ...]
    summary: str
    modified: str
    withdrawn: bool
    affected: tuple[Affected, ...]
    severity: tuple[tuple[str, str], ...] = ()  # (type, score), e.g. ("CVSS_V3", "CVSS:3.1/AV:N/...")
    references: tuple[str, ...] = ()
    malicious: bool = False  # an OSV malicious-package record (MAL-...)
    level: str = ""  # the advisory database's own severity word (GitHub's LOW/MODERATE/HIGH/CRITICAL)
    problems: tuple[str, ...] = field(default=())  # parts that could not be read (ranges skipped)

    @classmethod
    def from_json(cls, doc: Mapping[str, Any], *, source: str) -> Record:
        if not isinstance(doc, Mapping) or not isinstance(doc.get("id"), str):
            raise ConfigError(f"{source}: an OSV record is an object with an 'id'")
        record_id = doc["id"]
        problems: list[str] = []
        affected: list[Affected] = []
        for entry in doc.get("affected", []) or []:
            package = entry.get("package", {}) if isinstance(entry, Mapping) else {}
            if package.get("ecosystem") != ECOSYSTEM or not isinstance(package.get("name"), str):
                continue
            ranges: list[_Range] = []
            for raw in entry.get("ranges", []) or []:
                if raw.get("type") not in ("ECOSYSTEM", "SEMVER"):
                    continue  # GIT ranges name commits, not releases
                try:
                    ranges.append(_range(raw.get("events", [])))
                except (UnreadableVersion, TypeError, AttributeError) as exc:
                    problems.append(f"{package['name']}: range not readable ({exc})")
            versions: set[Version] = set()
            for text in entry.get("versions", []) or []:
                try:
                    versions.add(public_version(str(text)))
                except UnreadableVersion:
                    problems.append(f"{package['name']}: listed version {text!r} is not PEP 440")
            affected.append(Affected(normalize(package["name"]), tuple(ranges), frozenset(versions)))
        severity = tuple(
            (str(s.get("type", "")), str(s.get("score", "")))
            for s in doc.get("severity", []) or []
            if isinstance(s, Mapping)
        )
        return cls(
            id=record_id,
            aliases=tuple(str(a) for a in doc.get("aliases", []) or []),
            summary=str(doc.get("summary", "") or doc.get("details", ""))[:300],
            modified=str(doc.get("modified", "")),
            withdrawn=bool(doc.get("withdrawn")),
            affected=tuple(affected),
            severity=severity,
            references=tuple(
                str(r.get("url"))
                for r in doc.get("references", []) or []
                if isinstance(r, Mapping) and r.get("url")
            ),
            malicious=record_id.startswith("MAL-"),
            level=str(
                (doc.get("database_specific") or {}).get("severity", "")
                if isinstance(doc.get("database_specific"), Mapping)
                else ""
            ),
            problems=tuple(problems),
        )

    def names(self) -> set[str]:
        return {a.name for a in self.affected}

    def affects(self, name: str, version: Version) -> bool:
        if self.withdrawn:
            return False
        wanted = normalize(name)
        return any(a.name == wanted and a.affects(version) for a in self.affected)

    def fixes_after(self, name: str, version: Version) -> tuple[Version, ...]:
        wanted = normalize(name)
        return tuple(sorted({f for a in self.affected if a.name == wanted for f in a.fixes_after(version)}))

    def ids(self) -> tuple[str, ...]:
        """The record's id and its aliases: one vulnerability by every name it goes by."""
        return (self.id, *self.aliases)


def _range(events: Iterable[Any]) -> _Range:
    parsed: list[tuple[str, Version | None]] = []
    for event in events:
        ((kind, text),) = dict(event).items()
        if kind not in ("introduced", "fixed", "last_affected", "limit"):
            raise UnreadableVersion(f"unknown event {kind!r}")
        if kind == "introduced" and text == "0":
            parsed.append((kind, None))
        elif kind == "limit" and text == "*":
            continue  # no limit
        else:
            parsed.append((kind, public_version(str(text))))
    # Sorted by version ("0" first); at one version, an introduced before what ends a range.
    order = {"introduced": 0, "last_affected": 1, "fixed": 1, "limit": 2}
    parsed.sort(key=lambda e: (e[1] is not None, e[1] or Version("0"), order[e[0]]))
    return _Range(tuple(parsed))
