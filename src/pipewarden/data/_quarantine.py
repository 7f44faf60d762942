"""Where checked rows go: accepted rows to `--output`, rejected rows with their reasons to `--quarantine`.

Both files are written chunk by chunk into temporary files beside their targets
and renamed into place only when the whole input was checked, so a crash or an
error leaves whatever was there before, never a half-written file.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from pipewarden.data._readers import Writer, writer_for
from pipewarden.errors import DataInputError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

__all__ = ["REASONS_COLUMN", "ROW_COLUMN", "Sinks"]

ROW_COLUMN = "_pipewarden_row"
REASONS_COLUMN = "_pipewarden_reasons"


class Sinks:
    """The output and quarantine writers of one check (either may be absent)."""

    def __init__(
        self,
        *,
        source: Path | None,
        input_format: str,
        quarantine: Path | None,
        output: Path | None,
        label: str | None,
        row_shape: tuple[int, ...] | None,
    ) -> None:
        named = [p.resolve() for p in (source, quarantine, output) if p is not None]
        if len(set(named)) != len(named):
            raise DataInputError(
                f"{quarantine or output}: the input, output and quarantine must be different files"
            )
        self.output: Writer | None = None
        self.quarantine: Writer | None = None
        if output is not None:
            self.output = writer_for(output, default=input_format)(output, label=label, row_shape=row_shape)
        if quarantine is not None:
            kind = writer_for(quarantine, default="csv" if input_format == "npy" else input_format)
            if not kind.holds_text:
                raise DataInputError(
                    f"{quarantine}: a .npy file cannot hold the reasons; "
                    "name the quarantine .csv, .jsonl or .parquet"
                )
            self.quarantine = kind(quarantine, label=label, row_shape=row_shape)

    def write(self, frame: pd.DataFrame, rejected: np.ndarray, rows: np.ndarray, reasons: list[str]) -> None:
        """Send a chunk's accepted rows to the output and its rejected rows (with the 0-based input row and
        the reasons) to the quarantine."""
        if self.output is not None:
            self.output.write(frame[~rejected])
        if self.quarantine is not None:
            bad = frame[rejected]
            self.quarantine.write(bad.assign(**{ROW_COLUMN: rows, REASONS_COLUMN: reasons}))

    def commit(self) -> None:
        for writer in (self.output, self.quarantine):
            if writer is not None:
                writer.commit()

    def abort(self) -> None:
        for writer in (self.output, self.quarantine):
            if writer is not None:
                writer.abort()
