"""Benign files written by the real libraries; none may be flagged."""

from __future__ import annotations

import json
import pickle
from collections.abc import Callable
from pathlib import Path

from tests.scan.corpus._common import (
    Case,
    _write,
)
from tests.scan.corpus._containers import _gguf

# --- benign files written by the real libraries ---------------------------------------------


def _plain_data() -> object:
    import collections
    import datetime
    import decimal

    return {
        "dict": {"a": 1},
        "set": {1, 2},
        "frozenset": frozenset({3}),
        "datetime": datetime.datetime(2024, 1, 2, 3, 4),
        "date": datetime.date(2024, 1, 2),
        "delta": datetime.timedelta(seconds=5),
        "decimal": decimal.Decimal("1.25"),
        "od": collections.OrderedDict(a=1),
        "counter": collections.Counter("abca"),
        "dd": collections.defaultdict(list, {"k": [1]}),
        "complex": 1 + 2j,
        "bytes": b"\x00\x01" * 40,
        "bytearray": bytearray(b"xyz"),
        "tuple": (1, "two", 3.0, None, True),
        "big": 2**100,
        "neg": -5,
    }


def _benign_pickle(protocol: int) -> Case:
    return Case(
        f"plain-data-p{protocol}",
        f"plain Python data, protocol {protocol}",
        False,
        lambda d: _write(d, "data.pkl", pickle.dumps(_plain_data(), protocol=protocol)),
    )


def _torch_case(name: str, what: str, make: Callable[[], object], legacy: bool = False) -> Case:
    def build(dest: Path) -> Path:
        import torch

        torch.manual_seed(0)
        path = dest / "model.pt"
        torch.save(make(), path, _use_new_zipfile_serialization=not legacy)
        return path

    return Case(name, what, False, build, None, ("torch",))


def _torch_state_dict() -> object:
    import torch

    return torch.nn.Linear(4, 2).state_dict()


def _torch_sequential() -> object:
    import torch

    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))


def _torch_checkpoint() -> object:
    import torch

    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    opt = torch.optim.Adam(model.parameters())
    model(torch.ones(1, 4)).sum().backward()
    opt.step()
    return {"epoch": 3, "model": model.state_dict(), "optimizer": opt.state_dict(), "loss": 0.25}


def _sklearn_pipeline() -> object:
    import numpy as np
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    rng = np.random.default_rng(0)
    import pandas as pd

    x = pd.DataFrame({"a": rng.normal(size=60), "b": rng.normal(size=60), "c": rng.choice(["x", "y"], 60)})
    y = (x["a"] > 0).astype(int)
    pre = ColumnTransformer([("num", StandardScaler(), ["a", "b"]), ("cat", OneHotEncoder(), ["c"])])
    return Pipeline([("pre", pre), ("rf", RandomForestClassifier(n_estimators=5, random_state=0))]).fit(x, y)


def _sklearn_case(name: str, *, use_joblib: bool, compress: int | str = 0) -> Case:
    def build(dest: Path) -> Path:
        model = _sklearn_pipeline()
        if use_joblib:
            import joblib

            path = dest / "model.joblib"
            joblib.dump(model, path, compress=compress)
            return path
        path = dest / "model.pkl"
        path.write_bytes(pickle.dumps(model))
        return path

    what = f"scikit-learn pipeline via {'joblib' if use_joblib else 'pickle'}" + (
        f", compress={compress}" if compress else ""
    )
    return Case(name, what, False, build, None, ("sklearn", "pandas", "joblib"))


def _pandas_case(dest: Path) -> Path:
    import numpy as np
    import pandas as pd

    df = pd.DataFrame(
        {
            "i": np.arange(10),
            "f": np.linspace(0, 1, 10),
            "s": list("abcdefghij"),
            "cat": pd.Categorical(list("xyxyxyxyxy")),
            "t": pd.date_range("2024-01-01", periods=10, tz="UTC"),
        }
    )
    path = dest / "frame.pkl"
    df.to_pickle(path)
    return path


def _numpy_case(dest: Path) -> Path:
    import numpy as np

    path = dest / "array.npy"
    np.save(path, np.arange(12, dtype=np.float32).reshape(3, 4))
    return path


def _npz_case(dest: Path) -> Path:
    import numpy as np

    path = dest / "arrays.npz"
    np.savez_compressed(path, a=np.arange(5), b=np.eye(3))
    return path


def _lightgbm_case(dest: Path) -> Path:
    import lightgbm as lgb
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 4))
    model = lgb.LGBMClassifier(n_estimators=5, verbose=-1).fit(x, (x[:, 0] > 0).astype(int))
    path = dest / "lgbm.pkl"
    path.write_bytes(pickle.dumps(model))
    return path


def _safetensors_case(dest: Path) -> Path:
    import numpy as np
    from safetensors.numpy import save_file

    path = dest / "model.safetensors"
    save_file({"w": np.ones((3, 3), dtype=np.float32), "b": np.zeros(3, dtype=np.float16)}, str(path))
    return path


def _onnx_case(dest: Path) -> Path:
    import onnx
    from onnx import TensorProto, helper

    node = helper.make_node("Relu", ["x"], ["y"])
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
        [helper.make_tensor("w", TensorProto.FLOAT, [1], [1.0])],
    )
    path = dest / "model.onnx"
    onnx.save(helper.make_model(graph), str(path))
    return path


_ORDINARY_TEMPLATE = (
    "{% for message in messages %}{% if message['role'] == 'user' %}"
    "{{ '<|user|>' + message['content'].strip() }}"
    "{% elif message['role'] == 'assistant' %}{{ '<|assistant|>' + message['content'] }}{% endif %}"
    "{% if loop.last and add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}{% endfor %}"
)


def _keras_h5_benign(dest: Path) -> Path:
    import h5py

    config = {
        "class_name": "Sequential",
        "config": {
            "name": "m",
            "layers": [
                {
                    "class_name": "InputLayer",
                    "config": {"name": "in", "batch_input_shape": [None, 4]},
                },
                {"class_name": "Dense", "config": {"name": "d", "units": 2, "activation": "relu"}},
            ],
        },
    }
    path = dest / "model.h5"
    with h5py.File(path, "w") as f:
        f.attrs["model_config"] = json.dumps(config)
        f.create_dataset("model_weights/d/kernel", data=[[1.0, 2.0]] * 4)
    return path


def benign_cases() -> list[Case]:
    """Ordinary files from the real libraries; none may be flagged."""
    return [
        *[_benign_pickle(p) for p in range(6)],
        _torch_case("torch-state-dict", "torch state dict (zip)", _torch_state_dict),
        _torch_case("torch-sequential", "whole nn.Sequential (zip)", _torch_sequential),
        _torch_case("torch-checkpoint", "checkpoint with optimizer state", _torch_checkpoint),
        _torch_case(
            "torch-legacy-state-dict",
            "state dict in the legacy format",
            _torch_state_dict,
            legacy=True,
        ),
        _sklearn_case("sklearn-pickle", use_joblib=False),
        _sklearn_case("sklearn-joblib", use_joblib=True),
        _sklearn_case("sklearn-joblib-zlib", use_joblib=True, compress=3),
        _sklearn_case("sklearn-joblib-gzip", use_joblib=True, compress="gzip"),
        _sklearn_case("sklearn-joblib-bz2", use_joblib=True, compress="bz2"),
        _sklearn_case("sklearn-joblib-xz", use_joblib=True, compress="xz"),
        _sklearn_case("sklearn-joblib-lzma", use_joblib=True, compress="lzma"),
        _sklearn_case("sklearn-joblib-lz4", use_joblib=True, compress="lz4"),
        Case("pandas-frame", "pandas DataFrame.to_pickle", False, _pandas_case, None, ("pandas",)),
        Case("numpy-npy", "numpy .npy", False, _numpy_case, None, ("numpy",)),
        Case("numpy-npz", "numpy .npz (compressed)", False, _npz_case, None, ("numpy",)),
        Case("lightgbm", "LightGBM classifier pickle", False, _lightgbm_case, None, ("lightgbm",)),
        Case("safetensors", "safetensors file", False, _safetensors_case, None, ("safetensors",)),
        Case("onnx", "ONNX model", False, _onnx_case, None, ("onnx",)),
        Case(
            "gguf-template",
            "GGUF with an ordinary chat template",
            False,
            lambda d: _write(d, "model.gguf", _gguf(_ORDINARY_TEMPLATE)),
        ),
        Case("keras-h5", "Keras .h5 with built-in layers", False, _keras_h5_benign, None, ("h5py",)),
        Case(
            "tokenizer-config",
            "tokenizer_config.json with an ordinary template",
            False,
            lambda d: _write(
                d,
                "tokenizer_config.json",
                json.dumps({"chat_template": _ORDINARY_TEMPLATE}).encode(),
            ),
        ),
    ]
