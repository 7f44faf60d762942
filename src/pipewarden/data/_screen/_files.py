"""`screen_file`: the screen over a data file, with the flagged rows split off into a quarantine."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from pipewarden.data._quarantine import Sinks
from pipewarden.data._readers import detect
from pipewarden.data._screen._screen import ScreenResult, screen
from pipewarden.data._table import read_table
from pipewarden.errors import DataError

__all__ = ["screen_file"]


def screen_file(
    path: Path | str,
    *,
    label: str | None = None,
    labels_path: Path | None = None,
    reference: Path | str | None = None,
    fpr: float = 0.01,
    checks: Iterable[str] | None = None,
    quarantine: Path | str | None = None,
    output: Path | str | None = None,
    fmt: str | None = None,
    seed: int = 0,
) -> ScreenResult:
    """Screen the data file at `path`; write flagged rows (with their reasons) to `quarantine` and the
    others to `output`, both atomically. Every input row lands in exactly one of them.

    >>> result = screen_file("train.csv", label="y", quarantine="suspects.csv")  # doctest: +SKIP
    """
    source = Path(path)
    name = str(path)
    table = read_table(source, label=label, labels_path=labels_path, fmt=fmt)
    trusted = None
    if reference is not None:
        # The reference holds its labels in a column of the same name; labels from a separate file
        # leave the reference compared on its features only.
        trusted = read_table(Path(reference), label=label if labels_path is None else None)
    result = screen(table, reference=trusted, fpr=fpr, checks=checks, seed=seed)
    if quarantine is None and output is None:
        return result
    reasons: dict[int, list[str]] = {}
    for finding in result.report.findings:
        if finding.location.row is not None:
            reasons.setdefault(finding.location.row, []).append(f"{finding.rule_id}: {finding.message}")
    flagged = result.flagged
    sinks = Sinks(
        source=source,
        input_format=detect(source, source=name, fmt=fmt).name,  # the format the rows are written back in
        quarantine=Path(quarantine) if quarantine is not None else None,
        output=Path(output) if output is not None else None,
        label=table.label,
        row_shape=table.shape,
    )
    try:
        rows = np.flatnonzero(flagged)
        sinks.write(table.frame, flagged, rows, ["; ".join(reasons.get(int(r), [])) for r in rows])
        if int(flagged.sum()) + int((~flagged).sum()) != result.rows:  # never: but fail closed if it were
            raise DataError(f"{name}: row accounting broken")
        sinks.commit()
    except BaseException:
        sinks.abort()
        raise
    return result
