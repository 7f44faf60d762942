"""Typosquat suspects: a dependency whose name is one slip away from a popular package's.

A name is a suspect when it is not itself on the list and, against some listed name:

- its optimal-string-alignment distance (insertions, deletions, substitutions, and swaps of two
  neighbouring letters) is 1, for names of at least 5 characters, or 2 for names of at least 10; or
- it reads the same once characters people confuse are folded together (``0``/``o``, ``1``/``l``/``i``,
  ``rn``/``m``, ``vv``/``w``, ``5``/``s``) and separators dropped (``py-torch`` is ``pytorch``).

Names are compared normalized (PEP 503). The list ships with pipewarden (`popular.txt`); a project adds
its internal names, which are the ones most worth squatting.
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib import resources

from pipewarden.supply._osv import normalize

__all__ = ["popular_names", "squat_target"]

_FOLDS = (("rn", "m"), ("vv", "w"), ("0", "o"), ("1", "l"), ("i", "l"), ("5", "s"), ("-", ""))


def popular_names(extra: Iterable[str] = ()) -> frozenset[str]:
    text = resources.files("pipewarden.supply").joinpath("popular.txt").read_text(encoding="utf-8")
    names = {
        normalize(line.strip()) for line in text.splitlines() if line.strip() and not line.startswith("#")
    }
    return frozenset(names | {normalize(n) for n in extra})


def _fold(name: str) -> str:
    for old, new in _FOLDS:
        name = name.replace(old, new)
    return name


def _distance(a: str, b: str, limit: int) -> int:
    """Optimal string alignment distance, giving up (returning limit + 1) once it must exceed `limit`."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cost = 0 if ca == cb else 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                current[j] = min(current[j], previous2[j - 2] + 1)
        if min(current) > limit:
            return limit + 1
        previous2, previous = previous, current
    return previous[-1]


def squat_target(name: str, popular: frozenset[str]) -> tuple[str, str] | None:
    """(the popular name it imitates, how) when `name` looks like a slip of one, else None."""
    key = normalize(name)
    if key in popular:
        return None
    folded = _fold(key)
    for target in sorted(popular):
        if target == key:
            continue
        if _fold(target) == folded:
            return target, "reads the same with look-alike characters or separators"
        limit = 2 if len(key) >= 10 else 1 if len(key) >= 5 else 0
        if limit and _distance(key, target, limit) <= limit:
            return target, f"{_distance(key, target, limit)} edit(s) away"
    return None
