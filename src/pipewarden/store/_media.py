"""Media types for what pipelines store: model formats first, then the platform's guess."""

from __future__ import annotations

import mimetypes
from pathlib import Path

__all__ = ["guess_media_type"]

MODEL_TYPES = {
    ".safetensors": "application/vnd.safetensors",
    ".onnx": "application/vnd.onnx",
    ".gguf": "application/vnd.gguf",
    ".pt": "application/vnd.pytorch",
    ".pth": "application/vnd.pytorch",
    ".pkl": "application/vnd.python.pickle",
    ".pickle": "application/vnd.python.pickle",
    ".joblib": "application/vnd.joblib",
    ".keras": "application/vnd.keras",
    ".h5": "application/x-hdf5",
    ".npy": "application/vnd.numpy",
    ".npz": "application/vnd.numpy+zip",
    ".parquet": "application/vnd.apache.parquet",
}


def guess_media_type(path: Path) -> str:
    known = MODEL_TYPES.get(path.suffix.lower())
    if known:
        return known
    guessed, _ = mimetypes.guess_type(path.name)
    return guessed or "application/octet-stream"
