"""Keras models (.h5 / HDF5 and .keras zip): the model config, walked recursively.

A Keras config names classes by (module, class_name); loading imports the
module and constructs the class, and a Lambda layer carries marshalled Python
bytecode (or source) that runs when the model is built or called
(CVE-2024-3660 for the safe_mode bypass). Nested models (a Sequential inside
a Functional, a layer wrapper's inner layer) are walked too. No TensorFlow or
Keras is needed: the config is JSON.
"""

from __future__ import annotations

import json
from functools import cache
from typing import TYPE_CHECKING, Any

from pipewarden.scan._formats._interface import FormatError, FormatScanner
from pipewarden.scan._policy import ALLOWLIST_DIR

if TYPE_CHECKING:
    from pipewarden.scan._context import ScanContext
    from pipewarden.scan._engine import Engine
    from pipewarden.scan._input import Input

_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_LAMBDA = frozenset({"Lambda", "__lambda__"})
# Values of "class_name" that are Keras' own serialization markers, not classes.
_MARKERS = frozenset(
    {
        "__tensor__",
        "__numpy__",
        "__keras_tensor__",
        "__typespec__",
        "__bytes__",
        "__slice__",
        "__ellipsis__",
        "__passthrough__",
        "__tuple__",
        "__list__",
        "__dict__",
    }
)
# {"class_name": "function", "module": M, "config": NAME} names a function that
# Keras imports from M: only Keras' own activation/loss/metric/op modules pass
# (CVE-2025-8747 used keras.utils.get_file this way).
_FUNCTION_MODULES = frozenset(
    f"{prefix}{part}"
    for prefix in ("keras.", "keras.src.", "tf_keras.", "tensorflow.keras.")
    for part in ("activations", "losses", "metrics", "ops", "backend")
)


@cache
def known_keras_classes() -> frozenset[str]:
    text = (ALLOWLIST_DIR / "keras_classes.list").read_text("utf-8")
    return frozenset(
        line.split()[0] for line in text.splitlines() if line.strip() and not line.startswith("#")
    )


def _module_ok(module: Any) -> bool:
    return module is None or (
        isinstance(module, str)
        and (
            module == "keras"
            or module.startswith(("keras.", "tf_keras.", "tensorflow.keras", "tensorflow.python.keras"))
        )
    )


def check_keras_config(config: Any, ctx: ScanContext, member: str | None, *, path: str = "model") -> None:
    """Walk a Keras config (any nesting) and report Lambda layers and unknown classes."""
    known = known_keras_classes()
    stack: list[tuple[Any, str]] = [(config, path)]
    seen = 0
    while stack:
        node, where = stack.pop()
        seen += 1
        if seen & 0xFFF == 0:
            ctx.check_time()
        if isinstance(node, list):
            stack.extend((item, f"{where}[{i}]") for i, item in enumerate(node))
            continue
        if not isinstance(node, dict):
            continue
        class_name = node.get("class_name")
        inner = node.get("config")
        label = where
        if isinstance(inner, dict) and isinstance(inner.get("name"), str):
            label = f"{where}/{inner['name']}"
        if isinstance(class_name, str):
            module = node.get("module")
            registered = node.get("registered_name")
            if class_name in _LAMBDA:
                code = inner.get("function") if isinstance(inner, dict) else None
                ctx.add(
                    "PW-SCAN-301",
                    member=member,
                    message=f"{label}: Lambda layer carries Python code that runs when the model is loaded "
                    "or called",
                    evidence={"layer": label, "function": str(code)[:200]},
                )
                continue  # its function is the code just reported
            elif class_name == "TFOpLambda":
                fn = inner.get("function") if isinstance(inner, dict) else None
                ctx.add(
                    "PW-SCAN-302",
                    member=member,
                    message=f"{label}: TFOpLambda calls TensorFlow function {fn!r} chosen by name",
                    evidence={"layer": label, "function": str(fn)[:200]},
                )
            elif class_name == "function":
                fn = node.get("config")
                if module not in _FUNCTION_MODULES or not isinstance(fn, str) or not fn.isidentifier():
                    ctx.add(
                        "PW-SCAN-302",
                        member=member,
                        message=f"{label}: function {fn!r} imported from module {module!r}, outside Keras' "
                        "activations, losses, metrics and ops",
                        evidence={"layer": label, "module": module, "function": str(fn)[:200]},
                    )
            elif class_name not in _MARKERS and (
                class_name not in known
                or not _module_ok(module)
                or (
                    isinstance(registered, str)
                    and registered not in (class_name, f"keras>{class_name}")
                    and not registered.startswith("keras")
                )
            ):
                ctx.add(
                    "PW-SCAN-302",
                    member=member,
                    message=f"{label}: {(module + '.') if isinstance(module, str) else ''}{class_name} "
                    "is not a Keras built-in; loading imports and constructs it",
                    evidence={
                        "layer": label,
                        "class_name": class_name,
                        "module": module,
                        "registered_name": registered,
                    },
                )
        for key, value in node.items():
            if isinstance(value, dict | list):
                stack.append((value, f"{label}.{key}" if key not in ("config", "layers") else label))


def scan_keras_config_json(raw: bytes, ctx: ScanContext, member: str | None, *, limit: int) -> None:
    if len(raw) > limit:
        raise FormatError(f"Keras config of {len(raw)} bytes is over the header limit")
    try:
        config = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        ctx.add("PW-SCAN-312", member=member, message=f"Keras config is not JSON: {exc}")
        return
    ctx.formats.add("keras-v3")
    check_keras_config(config, ctx, member)


class KerasH5Scanner(FormatScanner):
    """HDF5 files; Keras keeps its config in the root attributes ``model_config`` and ``training_config``."""

    name = "hdf5"

    def sniff(self, head: bytes, inp: Input) -> bool:
        return head[:8] == _HDF5_MAGIC

    def scan(self, inp: Input, ctx: ScanContext, member: str | None, engine: Engine, depth: int) -> None:
        ctx.formats.add("hdf5")
        try:
            import h5py
        except ImportError:
            ctx.add(
                "PW-SCAN-207",
                member=member,
                message="HDF5 file, but h5py is not installed: not checked",
            )
            return
        with inp.open() as f:
            try:
                h5 = h5py.File(f, "r")
            except (OSError, ValueError) as exc:
                raise FormatError(f"HDF5 file cannot be opened: {exc}") from None
            with h5:
                links: list[str] = []

                def visit(name: str, link: Any) -> None:
                    if isinstance(link, h5py.ExternalLink):
                        links.append(f"{name} -> {link.filename}:{link.path}")

                h5.visititems_links(visit) if hasattr(h5, "visititems_links") else None
                for name in ("model_config", "training_config"):
                    if name not in h5.attrs:
                        continue
                    raw = h5.attrs[name]
                    if isinstance(raw, bytes):
                        raw = raw.decode("utf-8", errors="replace")
                    try:
                        config = json.loads(str(raw))
                    except json.JSONDecodeError as exc:
                        ctx.add(
                            "PW-SCAN-312",
                            member=member,
                            message=f"{name} attribute is not JSON: {exc}",
                        )
                        continue
                    ctx.formats.add("keras-h5")
                    check_keras_config(config, ctx, member, path=name)
                for text in links:
                    ctx.add(
                        "PW-SCAN-204",
                        member=member,
                        message=f"HDF5 external link {text} reads another file",
                        evidence={"link": text},
                    )
