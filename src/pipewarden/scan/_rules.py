"""The scan part's rules: stable ids, default severities, titles and references.

References: CWE-502 (deserialization of untrusted data), CWE-94 (code
injection), CWE-22 (path traversal), CWE-400/CWE-409 (resource exhaustion,
decompression bombs), MITRE ATLAS AML.T0010.003 (ML supply chain compromise:
model) and AML.T0011.000 (user execution: unsafe ML artifacts).
"""

from __future__ import annotations

from dataclasses import dataclass

from pipewarden.findings import Severity

__all__ = ["RULES", "Rule"]

_MODEL = ("AML.T0010.003", "AML.T0011.000")


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    severity: Severity
    title: str
    references: tuple[str, ...]


def _r(rule_id: str, severity: Severity, title: str, *refs: str) -> Rule:
    return Rule(rule_id, severity, title, tuple(refs))


C, H, M, INFO = Severity.CRITICAL, Severity.HIGH, Severity.MEDIUM, Severity.INFO

_ALL = (
    # pickle virtual machine
    _r("PW-SCAN-101", C, "dangerous global in pickle", "CWE-502", "CWE-94", *_MODEL),
    _r("PW-SCAN-102", H, "global not on the allowlist", "CWE-502", *_MODEL),
    _r("PW-SCAN-103", C, "call target cannot be resolved statically", "CWE-502", "CWE-94", *_MODEL),
    _r("PW-SCAN-104", C, "global name computed at load time", "CWE-502", "CWE-94", *_MODEL),
    _r("PW-SCAN-105", C, "copyreg extension code", "CWE-502", *_MODEL),
    _r("PW-SCAN-106", C, "pickle mutates a module-level object", "CWE-502", "CWE-94", *_MODEL),
    _r("PW-SCAN-107", M, "persistent id outside a PyTorch file", "CWE-502", *_MODEL),
    _r("PW-SCAN-108", M, "pickle frame boundaries violated", "CWE-502", *_MODEL),
    _r("PW-SCAN-109", H, "malformed pickle", "CWE-502", *_MODEL),
    _r("PW-SCAN-110", M, "data after the pickle", "CWE-502", *_MODEL),
    # containers and formats
    _r("PW-SCAN-201", H, "unknown format where a model was expected", "CWE-502", *_MODEL),
    _r("PW-SCAN-202", H, "malformed file", "CWE-20", *_MODEL),
    _r("PW-SCAN-203", H, "scan limit reached", "CWE-400", *_MODEL),
    _r("PW-SCAN-204", H, "archive member escapes its folder", "CWE-22", *_MODEL),
    _r("PW-SCAN-205", M, "inconsistent zip structure", "CWE-20", *_MODEL),
    _r("PW-SCAN-206", H, "decompression bomb", "CWE-409", *_MODEL),
    _r("PW-SCAN-207", H, "format needs an optional dependency", "CWE-502", *_MODEL),
    _r("PW-SCAN-208", H, "unreadable file", "CWE-502", *_MODEL),
    _r("PW-SCAN-209", INFO, "file skipped: not a model format"),
    _r("PW-SCAN-210", M, "archive link member", "CWE-59", *_MODEL),
    # model formats
    _r("PW-SCAN-301", C, "Keras Lambda layer", "CWE-94", *_MODEL),
    _r("PW-SCAN-302", H, "Keras object outside the known layers", "CWE-94", *_MODEL),
    _r("PW-SCAN-303", H, "TensorFlow op that touches files or processes", "CWE-94", *_MODEL),
    _r("PW-SCAN-304", M, "TensorFlow op not on the allowlist", "CWE-94", *_MODEL),
    _r("PW-SCAN-305", H, "ONNX external data outside the model folder", "CWE-22", *_MODEL),
    _r("PW-SCAN-306", M, "ONNX custom operator domain", "CWE-94", *_MODEL),
    _r("PW-SCAN-307", H, "unsafe safetensors header", "CWE-20", *_MODEL),
    _r("PW-SCAN-308", C, "chat template reaches Python internals", "CWE-94", "CWE-1336", *_MODEL),
    _r("PW-SCAN-309", H, "chat template cannot be parsed", "CWE-1336", *_MODEL),
    _r("PW-SCAN-310", H, "TorchScript code calls outside torch", "CWE-94", *_MODEL),
    _r("PW-SCAN-311", M, "numpy object array (pickle inside)", "CWE-502", *_MODEL),
    _r("PW-SCAN-312", H, "Keras config cannot be read", "CWE-502", *_MODEL),
)

RULES: dict[str, Rule] = {r.id: r for r in _ALL}
