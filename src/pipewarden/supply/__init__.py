"""The supply chain: dependencies against vulnerability advisories, fail closed.

>>> from pathlib import Path
>>> from pipewarden.supply import OfflineDatabase, audit, read_requirements
>>> deps = read_requirements(Path("requirements.txt"))  # doctest: +SKIP
>>> report = audit(deps, OfflineDatabase(Path("osv-pypi.zip")))  # doctest: +SKIP
"""

from __future__ import annotations

from pipewarden.supply._audit import DEPS_RULES, audit, smallest_fix
from pipewarden.supply._database import Lookup, OfflineDatabase, OsvApi, VulnerabilitySource
from pipewarden.supply._ignores import Ignore, apply_ignores, load_ignores
from pipewarden.supply._osv import Record, normalize, public_version
from pipewarden.supply._requirements import Dependency, read_requirements
from pipewarden.supply._sbom import build_sbom, validate_sbom
from pipewarden.supply._secrets import (
    SECRETS_BASELINE_NAME,
    SECRETS_MAX_BYTES,
    SECRETS_RULES,
    find_secrets,
    secret_fingerprint,
    write_secrets_baseline,
)
from pipewarden.supply._sources import DEPENDENCY_FILES, read_dependencies

__all__ = [
    "DEPENDENCY_FILES",
    "DEPS_RULES",
    "SECRETS_BASELINE_NAME",
    "SECRETS_MAX_BYTES",
    "SECRETS_RULES",
    "Dependency",
    "Ignore",
    "Lookup",
    "OfflineDatabase",
    "OsvApi",
    "Record",
    "VulnerabilitySource",
    "apply_ignores",
    "audit",
    "build_sbom",
    "find_secrets",
    "load_ignores",
    "normalize",
    "public_version",
    "read_dependencies",
    "read_requirements",
    "secret_fingerprint",
    "smallest_fix",
    "validate_sbom",
    "write_secrets_baseline",
]
