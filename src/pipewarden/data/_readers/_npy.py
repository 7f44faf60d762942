"""NumPy `.npy` arrays, memory-mapped and read in row slices; never unpickled.

The header is parsed first and an array of Python objects is refused: loading
one means unpickling it, which runs whatever code the file names (CWE-502).
`np.load` is also called with ``allow_pickle=False``, always. A 1-D array is
one column, a 2-D array has columns ``f0..f{d-1}``, and a rank 3 or 4 array
(images) is flattened row-wise with the per-row shape kept on the table.
"""

from __future__ import annotations

import shutil
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from pipewarden.data._readers._interface import RawChunk, Reader, Writer, temporary
from pipewarden.errors import DataInputError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

__all__ = ["NpyReader", "NpyWriter", "feature_names", "labels_sidecar"]

MAGIC = b"\x93NUMPY"  # NEP 1, the .npy format


def feature_names(width: int) -> list[str]:
    return [f"f{i}" for i in range(width)]


def _header(path: Path, source: str) -> tuple[tuple[int, ...], Any]:
    import numpy as np

    try:
        with path.open("rb") as fh:
            version = np.lib.format.read_magic(fh)
            if version == (1, 0):
                shape, _fortran, dtype = np.lib.format.read_array_header_1_0(fh)
            else:
                shape, _fortran, dtype = np.lib.format.read_array_header_2_0(fh)
    except (ValueError, OSError) as exc:
        raise DataInputError(f"{source}: not a readable .npy header: {exc}") from exc
    if dtype.hasobject:
        raise DataInputError(
            f"{source}: an array of Python objects (dtype {dtype.str}); loading it would unpickle it, "
            "so it is refused"
        )
    if not 1 <= len(shape) <= 4:
        raise DataInputError(f"{source}: an array of rank {len(shape)}; rows need rank 1 to 4")
    return tuple(int(d) for d in shape), dtype


def _open(path: Path, source: str) -> np.ndarray:
    import numpy as np

    _header(path, source)
    try:
        array: np.ndarray = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise DataInputError(f"{source}: cannot read the array: {exc}") from exc
    return array


class NpyReader(Reader):
    name = "npy"
    suffixes = (".npy",)

    def sniff(self, head: bytes) -> bool:
        return head.startswith(MAGIC)

    def row_shape(self, path: Path, *, source: str) -> tuple[int, ...] | None:
        shape, _ = _header(path, source)
        return shape[1:] if len(shape) >= 3 else None

    def chunks(
        self, path: Path, *, source: str, chunk_rows: int, numeric: Collection[str] = ()
    ) -> Iterator[RawChunk]:
        import numpy as np
        import pandas as pd

        array = _open(path, source)
        rows = array.shape[0]
        if array.dtype.names:  # a structured array: its fields are the columns
            for start in range(0, rows, chunk_rows):
                yield RawChunk(frame=pd.DataFrame.from_records(array[start : start + chunk_rows].copy()))
            return
        width = 1
        for d in array.shape[1:]:
            width *= d
        names = feature_names(width)
        for start in range(0, rows, chunk_rows):
            block = array[start : start + chunk_rows].reshape(-1, width).copy()  # a copy of one slice
            # An array has no missing values: a NaN in it is a NaN (a finding), not a gap.
            none = np.zeros(block.shape[0], dtype=bool)
            missing = dict.fromkeys(names, none) if block.dtype.kind in "fc" else {}
            yield RawChunk(frame=pd.DataFrame(block, columns=names), missing=missing)


def labels_sidecar(target: Path) -> Path:
    """Where the labels of accepted .npy rows go: ``x.npy`` → ``x.labels.npy``."""
    return target.with_name(f"{target.stem}.labels.npy")


class _Part:
    """An array written row block by row block; the .npy header (which states the row count) last."""

    def __init__(self, final: Path) -> None:
        self.final = final
        self.tmp = temporary(final)
        self.body = final.with_name(f".{final.name}.pipewarden-body")
        self.fh: BinaryIO | None = None
        self.dtype: Any = None
        self.rows = 0

    def append(self, block: np.ndarray) -> None:
        import numpy as np

        if self.fh is None:
            self.fh = self.body.open("wb")
            self.dtype = block.dtype
        elif block.dtype != self.dtype and not np.can_cast(block.dtype, self.dtype, casting="safe"):
            raise DataInputError(f"{self.final}: rows of type {block.dtype} after rows of type {self.dtype}")
        self.fh.write(block.astype(self.dtype, copy=False).tobytes(order="C"))
        self.rows += block.shape[0]

    def finish(self, row_shape: tuple[int, ...], fallback: Any) -> tuple[Path, Path]:
        import numpy as np

        if self.fh is not None:
            self.fh.close()
        dtype = self.dtype if self.dtype is not None else fallback
        header = {
            "descr": np.lib.format.dtype_to_descr(np.dtype(dtype)),
            "fortran_order": False,
            "shape": (self.rows, *row_shape),
        }
        with self.tmp.open("wb") as out:
            np.lib.format.write_array_header_2_0(out, header)
            if self.fh is not None:
                with self.body.open("rb") as body:
                    shutil.copyfileobj(body, out)
        self.body.unlink(missing_ok=True)
        return self.tmp, self.final

    def discard(self) -> None:
        if self.fh is not None:
            self.fh.close()
        self.body.unlink(missing_ok=True)
        self.tmp.unlink(missing_ok=True)


class NpyWriter(Writer):
    """The feature columns as one array (reshaped to the per-row shape of an image array), and the label
    column, if any, as a second array beside it (``x.labels.npy``). Only numbers: no reasons column."""

    name = "npy"
    suffixes = (".npy",)
    holds_text = False

    def __init__(
        self, target: Path, *, label: str | None = None, row_shape: tuple[int, ...] | None = None
    ) -> None:
        super().__init__(target, label=label, row_shape=row_shape)
        self._features = _Part(target)
        self._labels = _Part(labels_sidecar(target)) if label is not None else None
        self._width: int | None = None

    def write(self, frame: pd.DataFrame) -> None:
        features = frame.drop(columns=[self.label]) if self.label is not None else frame
        try:
            block = features.to_numpy()
            if block.dtype.hasobject:
                raise TypeError("text columns")
        except (TypeError, ValueError) as exc:
            raise DataInputError(f"{self.target}: a .npy file holds numbers only ({exc})") from exc
        self._width = block.shape[1]
        self._features.append(block)
        if self._labels is not None and self.label is not None:
            labels = frame[self.label].to_numpy()
            if labels.dtype.hasobject:
                labels = labels.astype(str)
            self._labels.append(labels)

    def finish(self) -> list[tuple[Path, Path]]:
        shape = self.row_shape if self.row_shape is not None else (self._width or 0,)
        pairs = [self._features.finish(shape, "float64")]
        if self._labels is not None:
            pairs.append(self._labels.finish((), "int64"))
        return pairs

    def discard(self) -> None:
        self._features.discard()
        if self._labels is not None:
            self._labels.discard()
