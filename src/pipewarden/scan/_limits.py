"""Bounds on every scan, so any input returns a report in bounded time and memory."""

from __future__ import annotations

from dataclasses import dataclass, fields

from pipewarden.errors import ConfigError

__all__ = ["ScanLimits"]

_GiB = 1 << 30


@dataclass(frozen=True, slots=True)
class ScanLimits:
    """Limits for one scan. Hitting any of them is a finding of at least high.

    The defaults fit real models (a 2-million-object pickle, a 4 GB checkpoint,
    a hub snapshot of a few hundred files) with room to spare.
    """

    #: opcodes executed per pickle stream
    max_opcodes: int = 200_000_000
    #: memo entries per pickle stream
    max_memo: int = 50_000_000
    #: nested MARKs (container depth) per pickle stream
    max_depth: int = 10_000
    #: items on the unpickler's stack at once
    max_stack: int = 50_000_000
    #: pickles read one after the other from one stream
    max_pickles_per_stream: int = 64
    #: bytes of one text-opcode line (protocol 0 STRING, INT, GLOBAL...)
    max_line_bytes: int = 1 << 20
    #: how deep containers may nest (zip in tar in zip ...)
    max_archive_depth: int = 8
    #: members read from all archives of one target
    max_members: int = 200_000
    #: bytes produced by decompression for one target, all members together
    max_decompressed_bytes: int = 64 * _GiB
    #: ratio of decompressed to compressed size for one member (bomb guard)
    max_compression_ratio: int = 2_000
    #: bytes of metadata headers (safetensors, GGUF, npy, JSON configs)
    max_header_bytes: int = 256 << 20
    #: wall-clock seconds for one target
    max_seconds: float = 900.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, int | float) or isinstance(value, bool) or value <= 0:
                raise ConfigError(f"--{f.name.replace('_', '-')}: must be a positive number, got {value!r}")

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))
