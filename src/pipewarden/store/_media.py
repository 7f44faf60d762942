"""Media types for what pipelines store: model formats first, then the platform's guess."""

from __future__ import annotations

import mimetypes
from pathlib import Path

__all__ = ["TABLE_SUFFIXES", "guess_media_type", "suffix_for"]

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


#: The tabular data sets' media types, and the suffix a local copy needs to be read as such.
TABLE_SUFFIXES = {
    "text/csv": ".csv",
    "application/vnd.apache.parquet": ".parquet",
    "application/x-parquet": ".parquet",
}
_BY_TYPE = {
    **{media: suffix for suffix, media in MODEL_TYPES.items()},
    **TABLE_SUFFIXES,
    "application/json": ".json",
}


def suffix_for(media_type: str) -> str:
    """The file suffix that reads as `media_type` (parameters ignored); '' for a type not known here."""
    return _BY_TYPE.get(media_type.split(";")[0], "")


def guess_media_type(path: Path) -> str:
    known = MODEL_TYPES.get(path.suffix.lower())
    if known:
        return known
    guessed, _ = mimetypes.guess_type(path.name)
    return guessed or "application/octet-stream"
