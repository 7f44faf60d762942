"""Walking the tree the gate checks: every file, minus what is provably not the project's own content.

What is skipped must not be a hiding place: a folder named ``node_modules`` deep in ``models/``, or a
folder holding a lone ``pyvenv.cfg``, is read like any other. Only these are left out, and each one is
named in the gate's summary:

- ``.git`` anywhere (git cannot commit a folder of that name, so it is never the project's content);
- at the tree's root only: the caches and tool folders listed in `ROOT_ONLY_FOLDERS`;
- a real virtual environment anywhere: ``pyvenv.cfg`` beside an interpreter (``bin/python`` or
  ``Scripts/python.exe``) and a ``site-packages`` folder (``pipewarden deps ENV`` audits those).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path, PurePosixPath

__all__ = ["ROOT_ONLY_FOLDERS", "Walk", "excluded", "is_virtualenv", "relative_to", "tree_files"]

#: Folders skipped only when they sit at the tree's root, where the tools that make them put them.
ROOT_ONLY_FOLDERS = frozenset(
    {
        ".pipewarden",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".tox",
        ".nox",
        ".hypothesis",
        "node_modules",
    }
)


@dataclass(slots=True)
class Walk:
    """The files found, and every folder left out with the reason (for the summary)."""

    files: list[Path] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)


def is_virtualenv(folder: Path) -> bool:
    """A real virtual environment: ``pyvenv.cfg``, an interpreter and a ``site-packages`` folder."""
    if not (folder / "pyvenv.cfg").is_file():
        return False
    interpreter = any((folder / p).exists() for p in ("bin/python", "bin/python3", "Scripts/python.exe"))
    packages = (folder / "Lib" / "site-packages").is_dir() or any(folder.glob("lib*/python*/site-packages"))
    return interpreter and packages


def excluded(relative: str, patterns: Iterable[str]) -> bool:
    """Whether a path (POSIX, relative to the tree) or one of its parent folders matches a pattern.

    Patterns are shell globs on the relative path; ``build``, ``build/`` and ``build/**`` all exclude the
    folder and everything in it.
    """
    parts = PurePosixPath(relative).parts
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for raw in patterns:
        pattern = raw.strip()
        while pattern.endswith(("/**", "/")):
            pattern = pattern.removesuffix("/**").removesuffix("/")
        pattern = pattern.removeprefix("./")
        if pattern and any(fnmatchcase(p, pattern) for p in prefixes):
            return True
    return False


def tree_files(root: Path, start: Path, patterns: Iterable[str], walk: Walk | None = None) -> Walk:
    """Every regular file under `start` (a file or a folder inside `root`), sorted, minus the excluded
    patterns and the folders the module docstring names. Symlinked folders are not followed."""
    patterns = tuple(patterns)
    walk = walk if walk is not None else Walk()
    if not start.is_dir():
        if not excluded(relative_to(root, start), patterns):
            walk.files.append(start)
        return walk
    top = os.path.abspath(root)
    for dirpath, dirnames, filenames in os.walk(start, followlinks=False):
        here = Path(dirpath)
        kept = []
        for name in sorted(dirnames):
            rel = relative_to(root, here / name)
            why = _why_skipped(here / name, name, at_root=os.path.abspath(here) == top)
            if excluded(rel, patterns):
                walk.skipped[rel] = "excluded by the policy"
            elif why is not None:
                walk.skipped[rel] = why
            else:
                kept.append(name)
        dirnames[:] = kept
        walk.files.extend(
            here / name
            for name in sorted(filenames)
            if not excluded(relative_to(root, here / name), patterns)
        )
    return walk


def _why_skipped(folder: Path, name: str, *, at_root: bool) -> str | None:
    if name == ".git":
        return "version control"
    if at_root and name in ROOT_ONLY_FOLDERS:
        return "a tool's folder at the tree's root"
    if is_virtualenv(folder):
        return "a virtual environment"
    return None


def relative_to(root: Path, path: Path) -> str:
    """`path` relative to `root` in POSIX form, or as given when it is outside the tree."""
    try:
        return Path(os.path.abspath(path)).relative_to(os.path.abspath(root)).as_posix() or "."
    except ValueError:
        return path.as_posix()
