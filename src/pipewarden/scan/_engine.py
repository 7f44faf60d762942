"""The scan engine: recognise each input by content, dispatch to format scanners, recurse."""

from __future__ import annotations

import logging
import os
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from pipewarden.scan._context import LimitHit, ScanContext
from pipewarden.scan._formats._compressed import CompressedScanner
from pipewarden.scan._formats._gguf import GgufScanner
from pipewarden.scan._formats._interface import FormatError, FormatScanner
from pipewarden.scan._formats._json import JsonScanner
from pipewarden.scan._formats._keras import KerasH5Scanner
from pipewarden.scan._formats._numpy import NumpyScanner
from pipewarden.scan._formats._onnx import OnnxScanner
from pipewarden.scan._formats._pickle import PickleScanner
from pipewarden.scan._formats._safetensors import SafetensorsScanner
from pipewarden.scan._formats._savedmodel import KerasMetadataScanner, SavedModelScanner
from pipewarden.scan._formats._sevenzip import SevenZipScanner
from pipewarden.scan._formats._tar import TarScanner
from pipewarden.scan._formats._zip import ZipScanner
from pipewarden.scan._formats._zipread import find_eocd

if TYPE_CHECKING:
    from pipewarden.scan._input import Input
    from pipewarden.scan._limits import ScanLimits
    from pipewarden.scan._policy import ScanPolicy

__all__ = ["MODEL_SUFFIXES", "Engine"]

logger = logging.getLogger(__name__)

#: File suffixes under which people store models: an unknown format there is a finding.
MODEL_SUFFIXES = frozenset(
    {
        ".pkl",
        ".pickle",
        ".p",
        ".dat",
        ".joblib",
        ".jl",
        ".pt",
        ".pth",
        ".bin",
        ".ckpt",
        ".tar",
        ".pt2",
        ".ptl",
        ".model",
        ".mdl",
        ".sav",
        ".npy",
        ".npz",
        ".h5",
        ".hdf5",
        ".keras",
        ".pb",
        ".onnx",
        ".safetensors",
        ".gguf",
        ".ggml",
        ".zip",
        ".7z",
        ".gz",
        ".bz2",
        ".xz",
        ".lzma",
        ".lz4",
        ".z",
        ".zlib",
        ".msgpack",
        ".tflite",
        ".mar",
        ".nemo",
        ".llamafile",
        ".dill",
    }
)

# Formats that exclude every other reading of the same bytes once recognised.
#: Suffixes that name one exclusive format, whose loader a file so named is meant for.
_FORMAT_SUFFIXES = {
    "gguf": (".gguf",),
    "npy": (".npy",),
    "safetensors": (".safetensors",),
    "onnx": (".onnx",),
    "hdf5": (".h5", ".hdf5"),
    "7z": (".7z",),
}

_EXCLUSIVE = (
    "npy",
    "safetensors",
    "gguf",
    "hdf5",
    "7z",
    "compressed",
    "onnx",
    "tf-savedmodel",
    "keras-metadata",
)


class Engine:
    def __init__(self, *, policy: ScanPolicy, limits: ScanLimits) -> None:
        self.policy = policy
        self.limits = limits
        self.pickle_scanner = PickleScanner()
        self.scanners: tuple[FormatScanner, ...] = (
            NumpyScanner(),
            SafetensorsScanner(),
            GgufScanner(),
            KerasH5Scanner(),
            SevenZipScanner(),
            CompressedScanner(),
            OnnxScanner(),
            SavedModelScanner(),
            KerasMetadataScanner(),
            ZipScanner(),
            TarScanner(),
            self.pickle_scanner,
            JsonScanner(),
        )

    def context(self, display_path: str) -> ScanContext:
        return ScanContext(path=display_path, policy=self.policy, limits=self.limits)

    @staticmethod
    def is_zip_tail(inp: Input) -> bool:
        return find_eocd(inp) is not None

    def recognise(self, inp: Input) -> list[FormatScanner]:
        head = inp.head(64)
        matched: list[FormatScanner] = []
        for scanner in self.scanners:
            if scanner.name == "json" and matched:
                continue
            if scanner.sniff(head, inp):
                if scanner.name in _EXCLUSIVE:
                    # A pickle can begin with another format's magic bytes (BINFLOAT
                    # is 'G', as in GGUF): pickle.load would still run it.
                    pickle = self.pickle_scanner
                    return [scanner, pickle] if pickle.sniff(head, inp) else [scanner]
                matched.append(scanner)
        return matched

    def scan_input(
        self, inp: Input, ctx: ScanContext, member: str | None, depth: int, *, expected_model: bool
    ) -> None:
        """Scan one input (a file or a member) and everything inside it."""
        name = member.rsplit("!", 1)[-1] if member else ctx.path
        expected = expected_model or PurePosixPath(name.replace("\\", "/")).suffix.lower() in MODEL_SUFFIXES
        if depth > self.limits.max_archive_depth:
            ctx.add(
                "PW-SCAN-203",
                member=member,
                message=f"containers nest deeper than {self.limits.max_archive_depth} levels; not opened",
                evidence={"limit": "max_archive_depth"},
            )
            return
        try:
            ctx.check_time()
            if inp.size == 0:
                if expected:
                    ctx.add(
                        "PW-SCAN-202",
                        member=member,
                        message="file is empty where a model was expected",
                    )
                return
            matched = self.recognise(inp)
        except LimitHit as exc:
            self._limit(ctx, member, exc)
            return
        except (OSError, FormatError) as exc:
            ctx.add("PW-SCAN-208", member=member, message=f"cannot be read: {exc}")
            return
        except Exception as exc:  # fail closed: a sniffer bug must not pass a file
            logger.debug("recognising %s failed", ctx.path, exc_info=True)
            ctx.add(
                "PW-SCAN-202",
                member=member,
                message=f"the format could not be recognised ({type(exc).__name__}: {exc})",
                evidence={"error": type(exc).__name__},
            )
            return
        if not matched:
            if expected:
                ctx.add(
                    "PW-SCAN-201",
                    member=member,
                    message="content matches no model format pipewarden knows, so it cannot be checked",
                    evidence={"head": inp.head(16).hex()},
                )
            else:
                ctx.add(
                    "PW-SCAN-209",
                    member=member,
                    message="content matches no model format; nothing a loader runs",
                )
            return
        # When bytes read both as a pickle and as a format whose magic a pickle can
        # start with, the pickle reading decides if the other one is malformed,
        # unless the file's name says it is that format: then its own loader
        # would read it, and a malformed header is a finding.
        tentative = len(matched) > 1 and self.pickle_scanner in matched
        suffix = PurePosixPath(name.replace("\\", "/")).suffix.lower()
        for scanner in matched:
            named_as = suffix in _FORMAT_SUFFIXES.get(scanner.name, ())
            self._run(
                scanner,
                inp,
                ctx,
                member,
                depth,
                tentative=tentative and scanner.name in _EXCLUSIVE and not named_as,
            )

    def _limit(self, ctx: ScanContext, member: str | None, exc: LimitHit) -> None:
        ctx.add(
            "PW-SCAN-203",
            member=member,
            message=f"{exc}; the rest was not checked",
            evidence={"limit": exc.limit},
        )

    def _run(
        self,
        scanner: FormatScanner,
        inp: Input,
        ctx: ScanContext,
        member: str | None,
        depth: int,
        *,
        tentative: bool = False,
    ) -> None:
        try:
            scanner.scan(inp, ctx, member, self, depth)
        except FormatError as exc:
            if tentative:
                logger.debug("%s: not %s after all (%s); read as a pickle", ctx.path, scanner.name, exc)
                return
            ctx.add(
                "PW-SCAN-202",
                member=member,
                offset=exc.offset,
                message=f"{scanner.name}: {exc}",
                evidence={"format": scanner.name},
            )
        except LimitHit as exc:
            self._limit(ctx, member, exc)
        except (RecursionError, MemoryError) as exc:
            self._limit(ctx, member, LimitHit("memory", f"{scanner.name}: {type(exc).__name__}"))
        except OSError as exc:
            ctx.add("PW-SCAN-208", member=member, message=f"{scanner.name}: read failed: {exc}")
        except Exception as exc:
            logger.debug("scanner %s failed on %s", scanner.name, ctx.path, exc_info=True)
            ctx.add(
                "PW-SCAN-202",
                member=member,
                message=f"{scanner.name}: the file could not be analysed ({type(exc).__name__}: {exc})",
                evidence={"format": scanner.name, "error": type(exc).__name__},
            )


def iter_files(root: Path) -> list[Path]:
    """Every regular file under `root`, sorted, without following symlinked folders."""
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        found.extend(Path(dirpath) / fname for fname in sorted(filenames))
    return found
