"""`safe_load`: scan a pickle, joblib or PyTorch file, then load the very bytes that were scanned.

The file is read once. The scan must pass at the threshold, and the load
itself runs under a restricted unpickler that enforces the same allowlist on
every `find_class`, so a difference between the emulator and the real
unpickler cannot let an unlisted global through.
"""

from __future__ import annotations

import _compat_pickle
import io
import logging
import pickle
import types
from pathlib import Path
from typing import IO, Any

from pipewarden.errors import SafeLoadError, ScanInputError, UnsafeModelError
from pipewarden.findings import Severity
from pipewarden.scan._api import scan_bytes
from pipewarden.scan._formats._compressed import _open, compression_of
from pipewarden.scan._formats._pickle import TORCH_LEGACY_MAGIC
from pipewarden.scan._limits import ScanLimits
from pipewarden.scan._policy import ScanPolicy, Verdict

__all__ = ["safe_load"]

logger = logging.getLogger(__name__)


def _checked(policy: ScanPolicy, where: str, module: str, name: str) -> tuple[str, str]:
    if (module, name) in _compat_pickle.NAME_MAPPING:
        module, name = _compat_pickle.NAME_MAPPING[(module, name)]
    elif module in _compat_pickle.IMPORT_MAPPING:
        module = _compat_pickle.IMPORT_MAPPING[module]
    verdict = policy.classify(module, name)
    if verdict.verdict is not Verdict.SAFE:
        raise pickle.UnpicklingError(
            f"{where}: global {module}.{name} refused at load time ({verdict.reason})"
        )
    return module, name


def _restricted_pickle_module(policy: ScanPolicy, where: str) -> types.SimpleNamespace:
    # No persistent_load method here: torch assigns its own on the instance,
    # which the C unpickler ignores when the class defines one.
    class Unpickler(pickle.Unpickler):
        def find_class(self, module: str, name: str) -> Any:
            module, name = _checked(policy, where, module, name)
            return super().find_class(module, name)

    def load(file: IO[bytes], **kwargs: Any) -> Any:
        return Unpickler(file, **kwargs).load()

    return types.SimpleNamespace(Unpickler=Unpickler, load=load, __name__="pipewarden_restricted_pickle")


def _load_torch(data: bytes, policy: ScanPolicy, where: str, map_location: Any) -> Any:
    try:
        import torch
    except ImportError:
        raise SafeLoadError(f"{where}: a PyTorch file, but torch is not installed") from None
    module = _restricted_pickle_module(policy, where)
    # weights_only must be False for a custom pickle_module; the restriction is ours.
    return torch.load(io.BytesIO(data), map_location=map_location, pickle_module=module, weights_only=False)


def _load_pickle(stream: IO[bytes], policy: ScanPolicy, where: str) -> Any:
    def refuse(pid: Any) -> Any:
        raise pickle.UnpicklingError(f"{where}: persistent ids are not loaded outside PyTorch files")

    try:
        from joblib.numpy_pickle import NumpyUnpickler
    except ImportError:
        plain = _restricted_pickle_module(policy, where).Unpickler(stream)
        plain.persistent_load = refuse
        return plain.load()

    class RestrictedNumpyUnpickler(NumpyUnpickler):  # type: ignore[misc]
        def find_class(self, module: str, name: str) -> Any:
            module, name = _checked(policy, where, module, name)
            return super().find_class(module, name)

        def persistent_load(self, pid: Any) -> Any:
            return refuse(pid)

    # joblib's unpickler reads plain pickles exactly as pickle does, and joblib's
    # inline arrays too.
    return RestrictedNumpyUnpickler(where, stream, "auto").load()


def safe_load(
    path: str | Path,
    *,
    threshold: Severity = Severity.MEDIUM,
    policy: ScanPolicy | None = None,
    limits: ScanLimits | None = None,
    map_location: Any = "cpu",
) -> Any:
    """Scan `path` and, if nothing reaches `threshold`, load it with a restricted unpickler.

    Loads raw pickles (any protocol, optionally compressed), joblib dumps and
    PyTorch checkpoints (zip and legacy). Raises `UnsafeModelError` (with the
    report) when the scan finds anything at or above `threshold` or the load
    meets a global off the allowlist, `SafeLoadError` for other formats.

        >>> model = safe_load("model.joblib")
    """
    p = Path(path)
    where = str(p)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise ScanInputError(f"{where}: cannot be read: {exc.strerror or exc}") from exc
    policy = policy or ScanPolicy.default()
    report = scan_bytes(data, name=where, policy=policy, limits=limits)
    blocking = report.at_or_above(threshold)
    if blocking:
        worst = blocking[0]
        raise UnsafeModelError(
            f"{where}: refused: {len(blocking)} finding(s) at or above {threshold.label}; "
            f"worst: {worst.rule_id} {worst.title}: {worst.message}",
            report=report,
        )
    try:
        if data[:4] == b"PK\x03\x04" or data.startswith(TORCH_LEGACY_MAGIC):
            return _load_torch(data, policy, where, map_location)
        kind = compression_of(data[:16])
        if kind is not None:
            with _open(kind, io.BytesIO(data)) as stream:
                return _load_pickle(stream, policy, where)
        if data[:1] == b"\x80" or data[:1] in (b"(", b"c", b"]", b"}", b"N", b")"):
            return _load_pickle(io.BytesIO(data), policy, where)
    except pickle.UnpicklingError as exc:
        raise UnsafeModelError(f"{exc}", report=report) from exc
    except (EOFError, ValueError, TypeError, AttributeError, ImportError, RuntimeError) as exc:
        raise SafeLoadError(f"{where}: load failed: {type(exc).__name__}: {exc}") from exc
    raise SafeLoadError(
        f"{where}: safe_load loads pickle, joblib and PyTorch files; "
        f"this file is {', '.join(sorted(f.rule_id for f in report.findings)) or 'another format'}"
    )
