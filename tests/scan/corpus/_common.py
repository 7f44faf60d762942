"""Shared pieces of the corpus: the Case record, loaders, writers."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

P = pickle

LOAD_PICKLE = "import pickle,sys; pickle.load(open(sys.argv[1],'rb'))"
LOAD_PICKLE_ALL = (
    "import pickle,sys\nf=open(sys.argv[1],'rb')\n"
    "while True:\n    try: pickle.load(f)\n    except EOFError: break"
)
LOAD_TORCH = "import torch,sys; torch.load(sys.argv[1], weights_only=False)"
LOAD_JOBLIB = "import joblib,sys; joblib.load(sys.argv[1])"
LOAD_NUMPY = "import numpy,sys; numpy.load(sys.argv[1], allow_pickle=True)"
LOAD_NPZ = "import numpy,sys; d=numpy.load(sys.argv[1], allow_pickle=True); [d[k] for k in d.files]"


@dataclass(frozen=True)
class Case:
    name: str
    technique: str
    malicious: bool
    build: Callable[[Path], Path]
    load: str | None = None  # Python run with the path as argv[1]: the victim's ordinary load
    needs: tuple[str, ...] = ()  # importable modules the builder or loader needs


def _write(dest: Path, name: str, data: bytes) -> Path:
    path = dest / name
    path.write_bytes(data)
    return path


def _raw(
    name: str, filename: str, technique: str, data: Callable[[], bytes], load: str = LOAD_PICKLE
) -> Case:
    return Case(name, technique, True, lambda d: _write(d, filename, data()), load)


def available(case: Case) -> bool:
    import importlib.util

    return all(importlib.util.find_spec(mod) is not None for mod in case.needs)
