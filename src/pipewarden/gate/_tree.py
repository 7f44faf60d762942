"""Walking the tree the gate checks: every file, minus what is not the project's own content."""

from __future__ import annotations

import os
from collections.abc import Iterable
from fnmatch import fnmatchcase
from pathlib import Path, PurePosixPath

__all__ = ["SKIPPED_FOLDERS", "excluded", "relative_to", "tree_files"]

#: Folders never walked: version control, caches, dependencies installed by tools, and pipewarden's own
#: workspace (its store holds encrypted bodies, which the store scans on the way in). A folder holding
#: ``pyvenv.cfg`` is a virtual environment and is skipped too; `pipewarden deps` audits environments.
SKIPPED_FOLDERS = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        ".pipewarden",
        ".mypy_cache",
        ".pytest_cache",
        ".ruff_cache",
        ".tox",
        ".nox",
        "__pycache__",
        "node_modules",
    }
)


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


def tree_files(root: Path, start: Path, patterns: Iterable[str]) -> list[Path]:
    """Every regular file under `start` (a file or a folder inside `root`), sorted, minus the skipped
    folders and the excluded patterns. Symlinked folders are not followed."""
    patterns = tuple(patterns)
    if not start.is_dir():
        rel = relative_to(root, start)
        return [] if excluded(rel, patterns) else [start]
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(start, followlinks=False):
        here = Path(dirpath)
        dirnames[:] = sorted(
            d
            for d in dirnames
            if d not in SKIPPED_FOLDERS
            and not (here / d / "pyvenv.cfg").exists()
            and not excluded(relative_to(root, here / d), patterns)
        )
        for name in sorted(filenames):
            path = here / name
            if not excluded(relative_to(root, path), patterns):
                found.append(path)
    return found


def relative_to(root: Path, path: Path) -> str:
    """`path` relative to `root` in POSIX form, or as given when it is outside the tree."""
    try:
        return Path(os.path.abspath(path)).relative_to(os.path.abspath(root)).as_posix() or "."
    except ValueError:
        return path.as_posix()
