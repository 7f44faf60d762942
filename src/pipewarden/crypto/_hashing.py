"""Digests of model files and folders: every file, large files in parallel shards.

A file no larger than the shard size gets the plain digest of its bytes (what
``sha256sum`` prints). A larger file is cut into shards of `shard_size` bytes
that are hashed in parallel; its digest is the digest of the concatenated raw
shard digests, and its entry records the shard size so the same cut is made
when verifying.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import stat
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from pipewarden.errors import ConfigError

__all__ = ["ALGORITHMS", "DEFAULT_SHARD_SIZE", "FileDigest", "Tree", "hash_tree", "hasher"]

DEFAULT_SHARD_SIZE = 256 << 20
ALGORITHMS = ("sha256", "blake3")
_BLOCK = 1 << 20
#: Never part of a model: version-control metadata.
DEFAULT_IGNORE = (".git", ".gitattributes", ".hg", ".svn")


class _Hash(Protocol):
    def update(self, data: bytes | memoryview, /) -> object: ...
    def digest(self) -> bytes: ...


def hasher(algorithm: str) -> Callable[[], _Hash]:
    """The constructor of a hash by name; BLAKE3 needs the `blake3` extra."""
    if algorithm == "sha256":
        return hashlib.sha256
    if algorithm == "blake3":
        try:
            import blake3
        except ImportError:
            raise ConfigError(
                "hash algorithm blake3 needs the blake3 package: pip install 'pipewarden[blake3]'"
            ) from None
        return blake3.blake3
    raise ConfigError(f"unknown hash algorithm {algorithm!r}; choose one of {', '.join(ALGORITHMS)}")


@dataclass(frozen=True, slots=True)
class FileDigest:
    """One file of a tree: its path relative to the root (POSIX form), size and hex digest."""

    path: str
    size: int
    digest: str


@dataclass(frozen=True, slots=True)
class Tree:
    """What was hashed: the files, and what could not be (links, devices), by relative path."""

    files: tuple[FileDigest, ...]
    unsigned: tuple[tuple[str, str], ...]


def _hash_range(path: Path, start: int, length: int, new: Callable[[], _Hash]) -> bytes:
    h = new()
    buf = bytearray(min(_BLOCK, max(length, 1)))
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as fh:
        fh.seek(start)
        left = length
        while left > 0:
            n = fh.readinto(view[: min(left, len(buf))])
            if not n:
                raise OSError(0, "it shrank while it was being hashed", str(path))
            h.update(view[:n])
            left -= n
    return h.digest()


def _walk(
    root: Path, *, ignore: Sequence[str], follow_symlinks: bool
) -> tuple[list[tuple[str, Path]], list[tuple[str, str]]]:
    files: list[tuple[str, Path]] = []
    unsigned: list[tuple[str, str]] = []

    def ignored(rel: str) -> bool:
        name = rel.rsplit("/", 1)[-1]
        return any(fnmatch.fnmatchcase(rel, pat) or fnmatch.fnmatchcase(name, pat) for pat in ignore)

    def visit(path: Path, rel: str) -> None:
        st = path.stat() if follow_symlinks else path.lstat()
        if stat.S_ISLNK(st.st_mode):
            unsigned.append((rel, f"symbolic link to {os.readlink(path)!r}"))
        elif stat.S_ISDIR(st.st_mode):
            for child in sorted(os.listdir(path)):
                child_rel = f"{rel}/{child}" if rel else child
                if not ignored(child_rel):
                    visit(path / child, child_rel)
        elif stat.S_ISREG(st.st_mode):
            files.append((rel, path))
        else:
            unsigned.append((rel, "not a regular file"))

    root_st = root.lstat()
    if stat.S_ISREG(root_st.st_mode) or (follow_symlinks and root.is_file()):
        files.append((root.name, root))
    else:
        visit(root, "")
    return files, unsigned


def hash_tree(
    root: Path,
    *,
    algorithm: str = "sha256",
    shard_size: int = DEFAULT_SHARD_SIZE,
    ignore: Sequence[str] = DEFAULT_IGNORE,
    follow_symlinks: bool = False,
    workers: int | None = None,
) -> Tree:
    """Hash a file or every file under a folder, files and shards in parallel threads."""
    if shard_size < _BLOCK:
        raise ConfigError(f"shard size {shard_size} is below the minimum of {_BLOCK} bytes")
    new = hasher(algorithm)
    try:
        return _hash_tree(
            root, new, shard_size=shard_size, ignore=ignore, follow_symlinks=follow_symlinks, workers=workers
        )
    except OSError as exc:
        where = exc.filename or root
        raise ConfigError(f"{where}: cannot be read: {exc.strerror or exc}") from None


def _hash_tree(
    root: Path,
    new: Callable[[], _Hash],
    *,
    shard_size: int,
    ignore: Sequence[str],
    follow_symlinks: bool,
    workers: int | None,
) -> Tree:
    files, unsigned = _walk(root, ignore=ignore, follow_symlinks=follow_symlinks)
    sizes = [p.stat().st_size for _, p in files]
    jobs: list[tuple[int, int, int]] = []  # (file index, start, length)
    for i, size in enumerate(sizes):
        if size <= shard_size:
            jobs.append((i, 0, size))
        else:
            jobs.extend((i, start, min(shard_size, size - start)) for start in range(0, size, shard_size))
    # Largest first, so one big file's last shard does not start after every small file is done.
    order = sorted(range(len(jobs)), key=lambda j: -jobs[j][2])
    results: list[bytes] = [b""] * len(jobs)
    with ThreadPoolExecutor(
        max_workers=workers or os.cpu_count() or 2, thread_name_prefix="pipewarden-hash"
    ) as pool:
        futures = {
            pool.submit(_hash_range, files[jobs[j][0]][1], jobs[j][1], jobs[j][2], new): j for j in order
        }
        for future, j in futures.items():
            results[j] = future.result()
    digests: list[FileDigest] = []
    j = 0
    for i, (rel, _) in enumerate(files):
        if sizes[i] <= shard_size:
            digest = results[j]
            j += 1
        else:
            count = -(-sizes[i] // shard_size)
            combined = new()
            for raw in results[j : j + count]:
                combined.update(raw)
            digest = combined.digest()
            j += count
        digests.append(FileDigest(path=rel, size=sizes[i], digest=digest.hex()))
    return Tree(files=tuple(digests), unsigned=tuple(unsigned))
