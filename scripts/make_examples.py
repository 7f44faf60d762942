"""Write examples/models/: a few benign model files and a few malicious ones with harmless payloads.

The malicious files only run `echo PWNED-...` or `print(...)` if loaded the
ordinary way; `pipewarden scan examples/models/` flags each of them and
passes the benign ones. Output is byte-for-byte deterministic, and
`--check` fails if the committed files differ from what this script writes
(CI runs it through tests/test_examples.py).

    python scripts/make_examples.py            # rewrite examples/models/
    python scripts/make_examples.py --check    # exit 1 if they are stale
"""

from __future__ import annotations

import argparse
import filecmp
import json
import pickle
import struct
import sys
import tempfile
import zlib
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.scan._asm import system_call  # noqa: E402 - needs the repository root on sys.path
from tests.scan.corpus import (  # noqa: E402
    _ORDINARY_TEMPLATE,
    _SSTI,
    _gguf,
    _memo_indirection,
    _npy_object,
    _polyglot,
    keras_v3_bytes,
)

README = """# Example models

Made by `scripts/make_examples.py`; do not edit by hand.

`benign/` holds ordinary files; `malicious/` holds files that run a harmless
command (`echo PWNED-...` or `print`) when loaded the ordinary way. Never load
them with pickle, torch.load, joblib.load or numpy.load(allow_pickle=True)
anyway: scan them.

    pipewarden scan examples/models/

| file | what it is |
| --- | --- |
{rows}
"""


def _npy(values: list[float]) -> bytes:
    header = f"{{'descr': '<f8', 'fortran_order': False, 'shape': ({len(values)},), }}"
    header += " " * (63 - (10 + len(header)) % 64) + "\n"
    return (
        b"\x93NUMPY\x01\x00"
        + struct.pack("<H", len(header))
        + header.encode()
        + struct.pack(f"<{len(values)}d", *values)
    )


def _safetensors() -> bytes:
    header = {
        "__metadata__": {"format": "pt"},
        "bias": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
        "weight": {"dtype": "F32", "shape": [2, 2], "data_offsets": [8, 24]},
    }
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw + struct.pack("<6f", 0.1, 0.2, 1.0, 0.0, 0.0, 1.0)


FILES: dict[str, tuple[str, Callable[[], bytes]]] = {
    "benign/plain-data.pkl": (
        "a pickle of plain Python data",
        lambda: pickle.dumps({"epochs": 3, "lr": 0.001, "layers": [4, 8, 2], "tags": ("demo",)}, protocol=4),
    ),
    "benign/weights.npy": ("a numpy array of floats", lambda: _npy([0.5, -1.25, 2.0])),
    "benign/model.safetensors": ("a safetensors file", _safetensors),
    "benign/tiny.gguf": (
        "a GGUF header with an ordinary chat template",
        lambda: _gguf(_ORDINARY_TEMPLATE),
    ),
    "malicious/os-system.pkl": (
        "os.system through GLOBAL and REDUCE",
        lambda: system_call("example"),
    ),
    "malicious/memo-indirection.pkl": (
        "os.system stored in the memo and called later",
        _memo_indirection,
    ),
    "malicious/model.joblib": (
        "a zlib-compressed joblib-style pickle",
        lambda: zlib.compress(system_call("joblib")),
    ),
    "malicious/polyglot.bin": ("a malicious pickle with a zip appended", _polyglot),
    "malicious/object-array.npy": (
        "a numpy object array whose pickle calls os.system",
        _npy_object,
    ),
    "malicious/lambda.keras": ("a Keras 3 model with a Lambda layer", lambda: keras_v3_bytes(custom=False)),
    "malicious/chat-template.gguf": (
        "a GGUF chat template that reaches __subclasses__",
        lambda: _gguf(_SSTI),
    ),
}


def write(dest: Path) -> None:
    rows = []
    for rel, (what, build) in FILES.items():
        path = dest / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(build())
        rows.append(f"| `{rel}` | {what} |")
    (dest / "README.md").write_text(README.format(rows="\n".join(rows)), encoding="utf-8")


def check(dest: Path) -> list[str]:
    """Paths under `dest` that differ from what `write` produces (missing, changed or extra)."""
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp)
        write(fresh)
        problems = []
        expected = {p.relative_to(fresh) for p in fresh.rglob("*") if p.is_file()}
        actual = {p.relative_to(dest) for p in dest.rglob("*") if p.is_file()} if dest.exists() else set()
        for rel in sorted(expected | actual):
            if rel not in actual:
                problems.append(f"{rel}: missing")
            elif rel not in expected:
                problems.append(f"{rel}: not made by this script")
            elif not filecmp.cmp(fresh / rel, dest / rel, shallow=False):
                problems.append(f"{rel}: differs")
        return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dest", nargs="?", type=Path, default=ROOT / "examples" / "models")
    parser.add_argument("--check", action="store_true", help="exit 1 if DEST is not what this script writes")
    args = parser.parse_args()
    if args.check:
        problems = check(args.dest)
        for line in problems:
            print(f"{args.dest}/{line}", file=sys.stderr)
        return 1 if problems else 0
    write(args.dest)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
