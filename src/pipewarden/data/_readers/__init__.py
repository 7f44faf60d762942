"""The data formats: one reader and one writer per format, chosen by content first, then by name."""

from __future__ import annotations

from pathlib import Path

from pipewarden.data._readers._csv import CsvReader, CsvWriter
from pipewarden.data._readers._interface import RawChunk, Reader, Writer, temporary
from pipewarden.data._readers._jsonl import JsonlReader, JsonlWriter
from pipewarden.data._readers._npy import NpyReader, NpyWriter, feature_names, labels_sidecar
from pipewarden.data._readers._parquet import ParquetReader, ParquetWriter
from pipewarden.errors import DataInputError

__all__ = [
    "FORMATS",
    "RawChunk",
    "Reader",
    "Writer",
    "detect",
    "feature_names",
    "labels_sidecar",
    "temporary",
    "writer_for",
]

_HEAD_BYTES = 1 << 16
# Binary formats that are not data tables, named in the refusal so the user knows what they gave.
_OTHER_MAGIC = (
    (b"\x80", "a Python pickle"),
    (b"PK\x03\x04", "a zip archive"),
    (b"\x1f\x8b", "a gzip file"),
    (b"\x89HDF\r\n\x1a\n", "an HDF5 file"),
    (b"ARROW1", "an Arrow IPC file"),
)
# Content is checked in this order; CSV (any UTF-8 text) is last.
_READERS: tuple[Reader, ...] = (ParquetReader(), NpyReader(), JsonlReader(), CsvReader())
_WRITERS: tuple[type[Writer], ...] = (CsvWriter, ParquetWriter, JsonlWriter, NpyWriter)
FORMATS = tuple(r.name for r in _READERS)


def _by_name(name: str) -> Reader:
    for reader in _READERS:
        if reader.name == name:
            return reader
    raise DataInputError(f"{name!r}: not a data format (expected one of {', '.join(FORMATS)})")


def _by_suffix(path: Path) -> Reader | None:
    suffix = path.suffix.lower()
    return next((r for r in _READERS if suffix in r.suffixes), None)


def _is_text(head: bytes) -> bool:
    import codecs

    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)  # a cut multi-byte char is fine
    except UnicodeDecodeError:
        return False
    return True


def detect(path: Path, *, source: str, fmt: str | None = None) -> Reader:
    """The reader for `path`, decided by its content; a file whose content is not what its name (or `fmt`)
    says is refused, and so is binary content that is no known data format."""
    try:
        if not path.exists():
            raise DataInputError(f"{source}: no such file")
        if not path.is_file():
            raise DataInputError(f"{source}: not a file")
        with path.open("rb") as fh:
            head = fh.read(_HEAD_BYTES)
    except OSError as exc:
        raise DataInputError(f"{source}: cannot read: {exc.strerror or exc}") from exc
    if not head.removeprefix(b"\xef\xbb\xbf").strip():
        raise DataInputError(f"{source}: empty file")
    content = next((r for r in _READERS[:2] if r.sniff(head)), None)
    if content is None:
        for magic, what in _OTHER_MAGIC:
            if head.startswith(magic):
                raise DataInputError(f"{source}: {what}, not a data file (CSV, Parquet, JSON Lines or .npy)")
        if not _is_text(head):
            raise DataInputError(f"{source}: binary content that is not Parquet or .npy, and not UTF-8 text")
        content = next(r for r in _READERS[2:] if r.sniff(head))
    claimed = _by_name(fmt) if fmt is not None else _by_suffix(path)
    if claimed is not None and claimed is not content:
        said = f"the format {fmt!r} asked for" if fmt is not None else "its name says"
        raise DataInputError(f"{source}: the content is {content.name}, not {claimed.name} as {said}")
    return content


def writer_for(target: Path, *, default: str) -> type[Writer]:
    """The writer for an output file: by its name's ending, else the input's format (`default`)."""
    suffix = target.suffix.lower()
    for writer in _WRITERS:
        if suffix in writer.suffixes:
            return writer
    return next(w for w in _WRITERS if w.name == default)
