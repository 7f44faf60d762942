"""Coverage-guided fuzzing of the model-file scanner with atheris (libFuzzer).

    python tests/fuzz/fuzz_scan.py -max_total_time=60 --target=zip

Targets (see tests/fuzz/seeds.py): pickle, zip, tar, compressed (alias gzip),
npy, safetensors, gguf, protobuf (alias onnx; also SavedModel and Keras
metadata) and all, the default, where the first input byte picks one of the
others. Each target frames its input with the format's magic so mutations keep
reaching that reader. The target can also come from PIPEWARDEN_FUZZ_TARGET.

For every input the harness checks the scanner's contract: `scan_bytes`
returns a `Report` and raises nothing, the report renders, and no audit event
that would mean running something from the input (a process, a shell, code
compiled or executed, a native library, `pickle.find_class`, an unexpected
import; see tests/fuzz/audit.py) fires while scanning. A slow input is caught
by libFuzzer's ``-timeout`` (10 s per input unless given).

Other libFuzzer flags pass through. The seeds are written into the first
corpus folder on the command line, or into <tmp>/pipewarden-fuzz-corpus/<target>
(reused by later runs) when none is given; a dictionary of magic numbers and
extreme integers goes beside that folder unless ``-dict=`` is given. ``--keep-going`` saves the first
input of each distinct failure as
``<artifact_prefix>failure-<exception>-<module>-<line>`` and keeps fuzzing
(hangs and crashes of the interpreter still stop the run).
"""

from __future__ import annotations

import os
import sys
import tempfile
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root, for tests.fuzz

import atheris

from tests.fuzz.audit import install, watching
from tests.fuzz.seeds import DICTIONARY, TARGETS, warmup_inputs

with atheris.instrument_imports(include=["pipewarden"]):
    from pipewarden.findings import Report
    from pipewarden.scan import scan_bytes

_ALIASES = {"gzip": "compressed", "onnx": "protobuf"}
_ORDER = sorted(TARGETS)
# Test-only target: fails on every input, so the smoke test can prove that a
# crash makes the harness exit non-zero.
_SELFTEST = "selftest-crash"


def check(data: bytes, *, name: str) -> Report:
    """Scan `data` and fail loudly if the scanner breaks its contract."""
    with watching() as events:
        report = scan_bytes(data, name=name)
    if not isinstance(report, Report):
        raise AssertionError(f"scan_bytes returned {type(report).__name__}, not a Report")
    if events:
        raise AssertionError(f"scanning ran something from the input: {events}")
    report.render("json")
    report.render("text")
    return report


def route(target: str, data: bytes) -> tuple[bytes, str]:
    """The bytes a target scans for one fuzz input, and the name to scan them under."""
    if target == "all":
        if not data:
            return data, "empty.bin"
        target, data = _ORDER[data[0] % len(_ORDER)], data[1:]
    spec = TARGETS[target]
    return spec.frame(data), spec.filename


def seed_corpus(target: str) -> list[bytes]:
    """The seeds of `target` as fuzz inputs (for `all`: prefixed with the byte that routes them)."""
    if target == "all":
        return [bytes([i]) + seed for i, name in enumerate(_ORDER) for seed in TARGETS[name].seeds()]
    if target == _SELFTEST:
        return [b"x"]
    return TARGETS[target].seeds()


class Triage:
    """--keep-going: save the first input per distinct failure and carry on fuzzing."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.seen: set[str] = set()

    def record(self, exc: BaseException, data: bytes) -> None:
        frames = traceback.extract_tb(exc.__traceback__)
        ours = [f for f in frames if f"{os.sep}pipewarden{os.sep}" in f.filename] or frames
        where = f"{Path(ours[-1].filename).stem}-{ours[-1].lineno}" if ours else "unknown"
        signature = f"{type(exc).__name__}-{where}"
        if signature in self.seen:
            return
        self.seen.add(signature)
        path = f"{self.prefix}failure-{signature}"
        Path(path).write_bytes(data)
        print(f"\n== new failure {signature}: input saved to {path}", file=sys.stderr)
        traceback.print_exception(exc, file=sys.stderr)


def _take_options(argv: list[str]) -> tuple[str, bool, list[str]]:
    target = os.environ.get("PIPEWARDEN_FUZZ_TARGET", "all")
    keep_going = False
    rest = []
    for arg in argv:
        if arg.startswith(("--target=", "-target=")):
            target = arg.split("=", 1)[1]
        elif arg == "--keep-going":
            keep_going = True
        else:
            rest.append(arg)
    target = _ALIASES.get(target, target)
    if target not in (*TARGETS, "all", _SELFTEST):
        sys.exit(f"fuzz_scan.py: unknown target {target!r}; choose from {', '.join(['all', *_ORDER])}")
    return target, keep_going, rest


def main() -> None:
    target, keep_going, argv = _take_options(sys.argv)
    install()
    # Unwatched warm-up: each reader imports what it needs once, before the watch starts.
    for data in [route("all", seed)[0] for seed in seed_corpus("all")] + warmup_inputs():
        scan_bytes(data)
    flags = [a for a in argv[1:] if a.startswith("-")]
    if not any(a.startswith("-timeout=") for a in flags):
        argv.append("-timeout=10")
    folders = [a for a in argv[1:] if not a.startswith("-")]
    if not folders:
        # libFuzzer leaves without running atexit handlers, so the default folder
        # is a fixed one, reused (and so growing) from run to run.
        folders = [str(Path(tempfile.gettempdir(), "pipewarden-fuzz-corpus", target))]
        argv.append(folders[0])
    corpus = Path(folders[0])  # libFuzzer adds new inputs to the first folder
    if not corpus.is_file():  # a file argument means: replay that input
        corpus.mkdir(parents=True, exist_ok=True)
        for i, seed in enumerate(seed_corpus(target)):
            (corpus / f"seed-{i:03d}").write_bytes(seed)
        if not any(a.startswith("-dict=") for a in flags):
            entries = ('"' + "".join(f"\\x{b:02x}" for b in token) + '"' for token in DICTIONARY)
            dictionary = corpus.parent / f"{corpus.name}.dict"
            dictionary.write_text("\n".join(entries) + "\n")
            argv.append(f"-dict={dictionary}")

    prefix = next((a.split("=", 1)[1] for a in argv if a.startswith("-artifact_prefix=")), "./")
    triage = Triage(prefix) if keep_going else None

    def one_input(raw: bytes) -> None:
        if target == _SELFTEST:
            raise RuntimeError("self-test crash")
        data, name = route(target, raw)
        try:
            check(data, name=name)
        except Exception as exc:
            if triage is None:
                raise
            triage.record(exc, raw)

    print(f"fuzz_scan.py: target {target}", file=sys.stderr, flush=True)
    atheris.Setup(argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
