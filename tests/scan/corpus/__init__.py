"""The scanner's corpus: malicious files (one per technique) and benign files from real libraries.

Used by the regression tests, the detection benchmark (benchmarks/scan) and
the examples script. Every malicious case's payload only prints a marker
(`echo PWNED-<slug>` or `print`), and `load` names the ordinary way a victim
would load it, so `test_corpus_acts.py` can prove the file really acts.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

from tests.scan._asm import (
    MARKER,
    call1,
    echo,
    frame,
    proto,
    sbu,
    stack_global,
    system_call,
)
from tests.scan.corpus._benign import _ORDINARY_TEMPLATE, benign_cases  # noqa: F401 - re-exported
from tests.scan.corpus._common import (
    LOAD_JOBLIB,
    LOAD_NPZ,
    LOAD_NUMPY,
    LOAD_PICKLE_ALL,
    LOAD_TORCH,
    Case,
    P,
    _raw,
    _write,
    available,
)
from tests.scan.corpus._containers import (
    _SSTI,
    _gguf,
    _joblib_compressed,
    _keras_h5,
    _keras_v3,
    _legacy_tar,
    _legacy_torch,
    _npy_object,
    _onnx_model,
    _polyglot,
    _safetensors_overlap,
    _saved_model,
    _seven_zip,
    _tar_gz,
    _torch_payload,
    _torch_zip,
    _zip_of,
)
from tests.scan.corpus._containers import (
    keras_v3_bytes as keras_v3_bytes,
)
from tests.scan.corpus._vm import (
    _after_malformed,
    _bound_method_gadget,
    _build_on_class,
    _computed_name,
    _dotted_name,
    _eval_builtin,
    _ext_code,
    _fix_imports,
    _frame_hidden,
    _frame_straddle,
    _gadget,
    _getattr_chain,
    _inst,
    _memo_indirection,
    _newobj_ex,
    _newobj_partial,
    _obj,
    _proto0_text,
    _runpy,
    _second_pickle,
    _setstate_hijack,
    _stack_global_memo_names,
    _subprocess,
    _truncated,
    _unknown_gadget,
    _weird_name,
)


def malicious_cases() -> list[Case]:
    """One case per technique; each must be flagged (exit 1 at the default threshold)."""
    cases = [
        _raw("reduce-os-system-p0", "model.pkl", "GLOBAL+REDUCE, protocol 0", _proto0_text),
        _raw(
            "reduce-os-system-p2",
            "model.pkl",
            "GLOBAL+REDUCE, protocol 2",
            lambda: system_call("p2"),
        ),
        _raw(
            "reduce-os-system-p4",
            "model.pkl",
            "STACK_GLOBAL+REDUCE, protocol 4",
            lambda: proto(4) + call1(stack_global("os", "system"), sbu(echo("p4"))) + P.STOP,
        ),
        _raw(
            "reduce-os-system-p5",
            "model.pkl",
            "protocol 5 with framing",
            lambda: proto(5) + frame(call1(stack_global("os", "system"), sbu(echo("p5"))) + P.STOP),
        ),
        _raw(
            "memo-indirection",
            "model.pkl",
            "global stored in the memo and called later",
            _memo_indirection,
        ),
        _raw(
            "stack-global-memo-names",
            "model.pkl",
            "STACK_GLOBAL names fetched from the memo",
            _stack_global_memo_names,
        ),
        _raw(
            "computed-name",
            "model.pkl",
            "module name computed at load time by str()",
            _computed_name,
        ),
        _raw("dotted-name", "model.pkl", "protocol-4 dotted name logging.os.system", _dotted_name),
        _raw("dotted-name-pickle", "model.pkl", "dotted name gettext.os.system", _weird_name),
        _raw(
            "fix-imports-builtin",
            "model.pkl",
            "__builtin__.eval renamed by fix_imports",
            _fix_imports,
        ),
        _raw("inst-opcode", "model.pkl", "INST opcode", _inst),
        _raw("obj-opcode", "model.pkl", "OBJ opcode", _obj),
        _raw(
            "newobj-partial",
            "model.pkl",
            "NEWOBJ functools.partial, then call of the result",
            _newobj_partial,
        ),
        _raw("newobj-ex-partial", "model.pkl", "NEWOBJ_EX functools.partial", _newobj_ex),
        _raw("exec-builtin", "model.pkl", "builtins.exec", _eval_builtin),
        _raw("subprocess", "model.pkl", "subprocess.check_call", _subprocess),
        _raw(
            "getattr-import-chain",
            "model.pkl",
            "getattr(__import__('os'), 'system')",
            _getattr_chain,
        ),
        _raw(
            "unlisted-gadget",
            "model.pkl",
            "exec gadget absent from denylists (numpy runstring)",
            _unknown_gadget,
        ),
        _raw("runpy-run-code", "model.pkl", "runpy._run_code", _runpy),
        _raw(
            "gadget-cprofile-run",
            "model.pkl",
            "cProfile.run executes a string",
            _gadget("cProfile", "run", sbu(f"print('{MARKER}-cprofile')")),
        ),
        _raw(
            "gadget-profile-run",
            "model.pkl",
            "profile.run executes a string",
            _gadget("profile", "run", sbu(f"print('{MARKER}-profile')")),
        ),
        _raw(
            "gadget-pydoc-pipepager",
            "model.pkl",
            "pydoc.pipepager runs a shell command",
            _gadget("pydoc", "pipepager", sbu("x"), sbu(echo("pipepager"))),
        ),
        _raw(
            "gadget-bdb-run",
            "model.pkl",
            "bdb.Bdb.run on a fresh debugger",
            lambda: (
                proto(4)
                + stack_global("bdb", "Bdb.run")
                + stack_global("bdb", "Bdb")
                + P.EMPTY_TUPLE
                + P.REDUCE
                + sbu(f"print('{MARKER}-bdb')")
                + P.TUPLE2
                + P.REDUCE
                + P.STOP
            ),
        ),
        _raw(
            "gadget-bound-method",
            "model.pkl",
            "code.InteractiveInterpreter.runsource by dotted name",
            _bound_method_gadget,
        ),
        _raw(
            "setstate-hijack",
            "model.pkl",
            "BUILD installs __setstate__ = os.system",
            _setstate_hijack,
        ),
        _raw("build-on-class", "model.pkl", "BUILD rewrites a class attribute", _build_on_class),
        Case(
            "ext-code",
            "EXT1 extension code",
            True,
            lambda d: _write(d, "model.pkl", _ext_code()),
            "import copyreg,pickle,sys; copyreg.add_extension('os','system',0xf0); "
            "pickle.load(open(sys.argv[1],'rb'))",
        ),
        _raw("frame-straddle", "model.pkl", "opcodes straddle a short FRAME", _frame_straddle),
        _raw(
            "frame-oversized",
            "model.joblib",
            "FRAME longer than the file (pure-Python unpickler reads it)",
            _frame_hidden,
            LOAD_JOBLIB,
        ),
        _raw(
            "second-pickle",
            "model.pkl",
            "benign pickle then malicious pickle",
            _second_pickle,
            LOAD_PICKLE_ALL,
        ),
        _raw("call-then-garbage", "model.pkl", "call, then malformed bytes", _after_malformed),
        _raw("truncated-after-call", "model.pkl", "call, then truncated stream", _truncated),
        _raw("pickle-zip-polyglot", "model.bin", "pickle with a zip appended", _polyglot),
        _raw(
            "no-extension",
            "weights",
            "pickle named without an extension",
            lambda: system_call("noext"),
        ),
        _raw(
            "misleading-extension",
            "model.safetensors",
            "pickle named .safetensors",
            lambda: system_call("misnamed"),
        ),
        Case(
            "torch-zip",
            "data.pkl in a torch zip",
            True,
            lambda d: _write(d, "model.pt", _torch_zip(_torch_payload("torchzip"))),
            LOAD_TORCH,
            ("torch",),
        ),
        Case(
            "torch-zip-odd-folder",
            "torch zip with an unusual top-level folder",
            True,
            lambda d: _write(d, "model.pt", _torch_zip(_torch_payload("torchfolder"), top="x9")),
            LOAD_TORCH,
            ("torch",),
        ),
        Case(
            "torch-zip-bad-crc",
            "torch zip with a wrong CRC (zipfile refuses, torch loads)",
            True,
            lambda d: _write(d, "model.pt", _torch_zip(_torch_payload("torchcrc"), bad_crc=True)),
            LOAD_TORCH,
            ("torch",),
        ),
        Case(
            "torch-zip-local-name",
            "local header names another file than the directory",
            True,
            lambda d: _write(
                d,
                "model.pt",
                _torch_zip(_torch_payload("torchname"), local_name="archive/data.pkX"),
            ),
            LOAD_TORCH,
            ("torch",),
        ),
        Case(
            "torch-legacy",
            "legacy torch.save stream",
            True,
            lambda d: _write(d, "model.pt", _legacy_torch("legacy")),
            LOAD_TORCH,
            ("torch",),
        ),
        Case(
            "torch-legacy-tar",
            "legacy torch tar format",
            True,
            lambda d: _write(d, "model.tar", _legacy_tar("tar")),
            LOAD_TORCH,
            ("torch",),
        ),
        _raw(
            "joblib-plain",
            "model.joblib",
            "joblib (uncompressed)",
            lambda: system_call("joblib"),
            LOAD_JOBLIB,
        ),
        *[
            _raw(
                f"joblib-{kind}",
                f"model.joblib.{kind}",
                f"joblib compressed with {kind}",
                _joblib_compressed(kind),
                LOAD_JOBLIB,
            )
            for kind in ("zlib", "gzip", "bz2", "xz", "lzma", "lz4")
        ],
        Case(
            "npy-object-array",
            "numpy object array",
            True,
            lambda d: _write(d, "array.npy", _npy_object()),
            LOAD_NUMPY,
        ),
        Case(
            "npz-object-array",
            "npz holding an object array",
            True,
            lambda d: _write(d, "arrays.npz", _zip_of({"a.npy": _npy_object()})),
            LOAD_NPZ,
        ),
        Case(
            "nested-zip",
            "pickle in a zip in a zip",
            True,
            lambda d: _write(
                d,
                "bundle.zip",
                _zip_of({"inner.zip": _zip_of({"m/model.pkl": system_call("nested")})}),
            ),
        ),
        Case("tar-gz", "pickle in a .tar.gz", True, lambda d: _write(d, "bundle.tar.gz", _tar_gz())),
        Case("seven-zip", "pickle in a 7z archive", True, _seven_zip, None, ("py7zr",)),
        Case(
            "keras-h5-lambda",
            "Keras .h5 with a Lambda layer",
            True,
            _keras_h5(False),
            None,
            ("h5py",),
        ),
        Case(
            "keras-h5-nested-lambda",
            "Lambda inside a nested model",
            True,
            _keras_h5(True),
            None,
            ("h5py",),
        ),
        Case("keras-v3-lambda", ".keras with a Lambda layer", True, _keras_v3(False)),
        Case("keras-v3-custom-module", ".keras naming a class in module os", True, _keras_v3(True)),
        Case("savedmodel-readfile", "SavedModel with a ReadFile op", True, _saved_model("ReadFile")),
        Case(
            "savedmodel-pyfunc",
            "SavedModel with an EagerPyFunc op",
            True,
            _saved_model("EagerPyFunc"),
        ),
        Case(
            "onnx-external-traversal",
            "ONNX external data ../../etc/passwd",
            True,
            lambda d: _write(d, "model.onnx", _onnx_model(location="../../../etc/passwd")),
        ),
        Case(
            "onnx-custom-domain",
            "ONNX node in a custom operator domain",
            True,
            lambda d: _write(d, "model.onnx", _onnx_model(domain="com.evil.ops")),
        ),
        Case(
            "gguf-ssti",
            "GGUF chat template reaching __subclasses__",
            True,
            lambda d: _write(d, "model.gguf", _gguf(_SSTI)),
        ),
        Case(
            "tokenizer-config-ssti",
            "tokenizer_config.json chat template SSTI",
            True,
            lambda d: _write(d, "tokenizer_config.json", json.dumps({"chat_template": _SSTI}).encode()),
        ),
        Case(
            "safetensors-overlap",
            "safetensors header with overlapping tensors",
            True,
            lambda d: _write(d, "model.safetensors", _safetensors_overlap()),
        ),
        Case(
            "zip-slip",
            "zip member escaping the folder",
            True,
            lambda d: _write(d, "bundle.zip", _zip_of({"../../evil.pkl": pickle.dumps(1)})),
        ),
    ]
    return cases


def write_corpus(dest: Path) -> list[tuple[Case, Path]]:
    """Build every available case into its own folder under `dest`."""
    out = []
    for case in malicious_cases() + benign_cases():
        if not available(case):
            continue
        folder = dest / ("malicious" if case.malicious else "benign") / case.name
        folder.mkdir(parents=True, exist_ok=True)
        out.append((case, case.build(folder)))
    return out
