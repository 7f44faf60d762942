"""The allowlist decision: which globals a model file may reference.

A pickle can name any importable object, and loading it imports the module and
may call the object. pipewarden decides by allowlist: a global is safe only if
its (module, name) pair is on the curated list shipped in `_allowlist/` (each
entry with a reason) or added by the user's policy file. Anything else is
reported: critical when it is known to reach code execution, files, the
network or the interpreter's internals; high when it is merely unknown.
"""

from __future__ import annotations

import enum
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from pipewarden.errors import ConfigError
from pipewarden.scan._dangerous import DANGEROUS_MODULES, DANGEROUS_NAMES, DANGEROUS_PREFIXES

__all__ = ["GlobalVerdict", "ScanPolicy", "Verdict"]

logger = logging.getLogger(__name__)

#: The shipped data files: pickle allowlists (*.txt), Keras classes, TensorFlow ops.
ALLOWLIST_DIR = Path(__file__).with_name("_allowlist")

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


class Verdict(enum.Enum):
    """The allowlist's answer for one global."""

    SAFE = "safe"
    UNKNOWN = "unknown"
    DANGEROUS = "dangerous"


@dataclass(frozen=True, slots=True)
class GlobalVerdict:
    verdict: Verdict
    module: str
    name: str
    reason: str

    @property
    def qualified(self) -> str:
        return f"{self.module}.{self.name}"


@cache
def _shipped_allowlist() -> Mapping[tuple[str, str], str]:
    """The curated allowlist shipped with pipewarden (`_allowlist/*.txt`)."""
    entries: dict[tuple[str, str], str] = {}
    folder = ALLOWLIST_DIR
    for item in sorted(folder.iterdir(), key=lambda p: p.name):
        if not item.name.endswith(".txt"):
            continue
        for lineno, raw in enumerate(item.read_text(encoding="utf-8").splitlines(), 1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            parts = line.split(None, 2)
            if len(parts) < 3:
                raise ConfigError(f"{item.name}:{lineno}: expected 'module name reason'")
            entries[(parts[0], parts[1])] = parts[2]
    return entries


def is_dangerous(module: str, name: str) -> str | None:
    """Why (module, name) is known to be dangerous, or None."""
    full = f"{module}.{name}"
    root = module.split(".", 1)[0]
    if root in DANGEROUS_MODULES or module in DANGEROUS_MODULES:
        return f"module {module!r} reaches the OS, the interpreter or further code"
    for part in (*module.split("."), *name.split(".")):
        if part in DANGEROUS_NAMES:
            return f"{part!r} reaches code execution, files or interpreter internals"
    for prefix in DANGEROUS_PREFIXES:
        if full == prefix or full.startswith(prefix):
            return f"{prefix!r} loads or runs further code, or touches files"
    if not _IDENT.match(module) or not _IDENT.match(name):
        return "the name is not a plain Python identifier path"
    return None


class ScanPolicy:
    """Which globals model files may reference: the shipped allowlist plus user additions.

    Build one with `ScanPolicy.default()` or `ScanPolicy.from_file(path)`; a
    policy file is YAML::

        allow:
          - global: mypackage.models.TinyNet
            reason: our own model class, reviewed in PR 42

    Entries that would allow a known-dangerous global are refused unless the
    file sets ``unsafe_allow_dangerous: true``; each use of that is logged.
    """

    __slots__ = ("_extra", "_shipped", "_unsafe", "source")

    def __init__(
        self,
        *,
        extra: Mapping[tuple[str, str], str] | None = None,
        unsafe_allow_dangerous: bool = False,
        source: str = "built-in allowlist",
    ) -> None:
        self._shipped = _shipped_allowlist()
        if not self._shipped:
            raise ConfigError("pipewarden's shipped allowlist is empty: the installation is broken")
        self._extra: Mapping[tuple[str, str], str] = dict(extra or {})
        self._unsafe = unsafe_allow_dangerous
        self.source = source

    @classmethod
    def default(cls) -> ScanPolicy:
        return cls()

    @classmethod
    def from_file(cls, path: str | Path) -> ScanPolicy:
        """Read a policy file; `ConfigError` names the file and the bad entry."""
        import yaml  # imported here: only policy files need it

        p = Path(path)
        try:
            doc: Any = yaml.safe_load(p.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"{p}: cannot read policy file: {exc.strerror or exc}") from exc
        except yaml.YAMLError as exc:
            raise ConfigError(f"{p}: not valid YAML: {exc}") from exc
        if not isinstance(doc, dict):
            raise ConfigError(f"{p}: a policy file is a mapping with an 'allow' list")
        unknown_keys = set(doc) - {"allow", "unsafe_allow_dangerous"}
        if unknown_keys:
            raise ConfigError(f"{p}: unknown key(s) {', '.join(sorted(map(str, unknown_keys)))}")
        unsafe = doc.get("unsafe_allow_dangerous", False)
        if not isinstance(unsafe, bool):
            raise ConfigError(f"{p}: unsafe_allow_dangerous must be true or false")
        entries = doc.get("allow")
        if not isinstance(entries, list) or not entries:
            raise ConfigError(f"{p}: 'allow' must be a non-empty list of entries")
        extra: dict[tuple[str, str], str] = {}
        for i, entry in enumerate(entries, 1):
            where = f"{p}: allow entry {i}"
            if not isinstance(entry, dict) or set(entry) - {"global", "reason"}:
                raise ConfigError(f"{where}: expected a mapping with 'global' and 'reason'")
            qualified, reason = entry.get("global"), entry.get("reason")
            if not isinstance(qualified, str) or not _IDENT.match(qualified.replace(":", ".")):
                raise ConfigError(f"{where}: 'global' must be a dotted name such as pkg.mod.Class")
            if not isinstance(reason, str) or not reason.strip():
                raise ConfigError(f"{where}: every entry needs a 'reason'")
            if ":" in qualified:
                module, name = qualified.split(":", 1)
            else:
                module, _, name = qualified.rpartition(".")
            if not module:
                raise ConfigError(f"{where}: {qualified!r} has no module part")
            danger = is_dangerous(module, name)
            if danger and not unsafe:
                raise ConfigError(
                    f"{where}: {qualified} is known to be dangerous ({danger}); "
                    "set unsafe_allow_dangerous: true to allow it anyway"
                )
            extra[(module, name)] = reason.strip()
        return cls(extra=extra, unsafe_allow_dangerous=unsafe, source=str(p))

    def classify(self, module: str, name: str) -> GlobalVerdict:
        """The verdict for a global the file references.

        The shipped entries are curated, so they stand even where a module is on
        the dangerous list for its other names (``builtins.set``); entries from a
        policy file were checked against that list when the file was read.
        """
        key = (module, name)
        reason = self._shipped.get(key)
        if reason is not None:
            return GlobalVerdict(Verdict.SAFE, module, name, reason)
        danger = is_dangerous(module, name)
        reason = self._extra.get(key)
        if reason is not None:
            if danger is not None:
                logger.warning(
                    "%s: unsafe_allow_dangerous lets %s.%s pass (%s)",
                    self.source,
                    module,
                    name,
                    danger,
                )
            return GlobalVerdict(Verdict.SAFE, module, name, f"{self.source}: {reason}")
        if danger is not None:
            return GlobalVerdict(Verdict.DANGEROUS, module, name, danger)
        return GlobalVerdict(Verdict.UNKNOWN, module, name, "not on the allowlist")
