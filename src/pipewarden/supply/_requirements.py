"""Requirements files: every line a pip requirements file may hold, read without running pip.

Handled: a requirement with extras, a version specifier and an environment marker; ``--hash=`` options
(on the line or continued with ``\\``); comments; ``-r`` / ``--requirement`` and ``-c`` /
``--constraint`` files, relative to the file naming them (nested, each read once, a cycle is an error);
options pip takes that name no package (``--index-url``, ``--extra-index-url``, ``--find-links``,
``--trusted-host``, ``--pre``, ``--prefer-binary``, ``--no-binary``, ``--only-binary``,
``--require-hashes``). An editable install (``-e``), a URL or a local path names code that is not a
released version, so it cannot be checked against advisories: it is returned as unpinned, with its text.
A line pip itself would refuse is an error naming the file and the line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from packaging.requirements import InvalidRequirement, Requirement

from pipewarden.errors import ConfigError
from pipewarden.supply._osv import normalize
from pipewarden.supply._redact import redact_url, redact_urls

__all__ = ["Dependency", "from_requirement", "read_requirements"]

_OPTIONS_WITH_VALUE = (
    "-i",
    "--index-url",
    "--extra-index-url",
    "-f",
    "--find-links",
    "--trusted-host",
    "--no-binary",
    "--only-binary",
    "--use-feature",
    "--config-settings",
)
_FLAGS = ("--pre", "--prefer-binary", "--require-hashes", "--no-index")
_HASH = re.compile(r"--hash[=\s]+([A-Za-z0-9]+:[0-9A-Fa-f]+)")


@dataclass(frozen=True, slots=True)
class Dependency:
    """One requirement as declared: its name, the exact version when it is pinned with ``==``, and how."""

    name: str  # as written
    source: str  # "requirements.txt:12"
    pinned: str | None = None  # the version of an exact pin (== or ===), else None
    specifier: str = ""
    extras: tuple[str, ...] = ()
    marker: str = ""
    hashes: tuple[str, ...] = ()
    direct: bool = True  # False for what an environment has installed already (no download to hash)
    note: str = ""  # why it cannot be pinned (an editable or URL requirement)
    constraint: bool = False  # from a -c file: limits versions, installs nothing
    groups: tuple[str, ...] = field(default=())

    @property
    def key(self) -> str:
        return normalize(self.name)


def from_requirement(
    requirement: Requirement,
    where: str,
    *,
    hashes: tuple[str, ...] = (),
    constraint: bool = False,
    group: str = "",
) -> Dependency:
    """A parsed PEP 508 requirement as a dependency: pinned when exactly one ``==``/``===`` names a
    version without a wildcard; a URL requirement is code that is not a released version."""
    if requirement.url:
        return Dependency(
            name=requirement.name,
            source=where,
            note=f"installed from {redact_url(requirement.url)[:200]}: no released version to check",
            constraint=constraint,
            groups=(group,) if group else (),
        )
    pins = [s for s in requirement.specifier if s.operator in ("==", "===") and "*" not in s.version]
    return Dependency(
        name=requirement.name,
        source=where,
        pinned=pins[0].version if len(pins) == 1 else None,
        specifier=str(requirement.specifier),
        extras=tuple(sorted(requirement.extras)),
        marker=str(requirement.marker) if requirement.marker else "",
        hashes=hashes,
        constraint=constraint,
        groups=(group,) if group else (),
    )


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """(first line number, line) with ``\\`` continuations joined and comments dropped."""
    out: list[tuple[int, str]] = []
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw
        if not pending:
            start = number
        # A comment starts at '#' at the line's start or after whitespace (a URL fragment is not one).
        line = re.sub(r"(^|\s)#.*$", "", line)
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        line = pending + line
        pending = ""
        if line.strip():
            out.append((start, line.strip()))
    if pending.strip():
        out.append((start, pending.strip()))
    return out


def read_requirements(
    path: Path, *, _seen: tuple[Path, ...] = (), constraint: bool = False
) -> list[Dependency]:
    """Every requirement of a requirements file and the files it includes."""
    resolved = path.resolve()
    if resolved in _seen:
        chain = " -> ".join(str(p) for p in (*_seen, resolved))
        raise ConfigError(f"{path}: included in a cycle ({chain})")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such requirements file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read ({exc})") from None
    found: list[Dependency] = []
    for number, line in _logical_lines(text):
        where = f"{path}:{number}"
        first, _, rest = line.partition(" ")
        option, eq, value = first.partition("=")
        if option in ("-r", "--requirement", "-c", "--constraint"):
            target = (value if eq else rest).strip()
            if not target:
                raise ConfigError(f"{where}: {option} needs a file")
            found.extend(
                read_requirements(
                    path.parent / target,
                    _seen=(*_seen, resolved),
                    constraint=constraint or option in ("-c", "--constraint"),
                )
            )
            continue
        if option in _OPTIONS_WITH_VALUE or option in _FLAGS:
            continue
        if option in ("-e", "--editable") or re.match(r"^(\.|/|[a-z+]+://|git\+)", line):
            target = (value if eq else rest).strip() if option in ("-e", "--editable") else line
            found.append(
                Dependency(
                    name=_name_of_url(target),
                    source=where,
                    note=f"installed from {redact_urls(target)[:200]}: no released version to check",
                    constraint=constraint,
                )
            )
            continue
        if line.startswith("-"):
            raise ConfigError(f"{where}: unknown option {first!r}")
        hashes = tuple(_HASH.findall(line))
        spec = _HASH.sub("", line).strip()
        spec = re.sub(r"\s--\S+.*$", "", spec).strip()  # other per-requirement options (--global-option)
        try:
            requirement = Requirement(spec)
        except InvalidRequirement as exc:
            raise ConfigError(f"{where}: not a requirement ({exc})") from None
        found.append(from_requirement(requirement, where, hashes=hashes, constraint=constraint))
    return found


def _name_of_url(target: str) -> str:
    match = re.search(r"#egg=([A-Za-z0-9_.-]+)", target)
    if match:
        return match.group(1)
    # The last segment of a URL's path: never its user-info or query, which hold credentials.
    try:
        path = urlsplit(target).path if "://" in target else target
    except ValueError:
        path = ""
    stem = path.rstrip("/").rsplit("/", 1)[-1]
    return re.sub(r"(\.git|\.zip|\.tar\.gz|\.whl)$", "", stem) or redact_url(target)
