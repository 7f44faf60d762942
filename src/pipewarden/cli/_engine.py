"""`--engine` and `--scheduler`: where `scan`, `data check` and `data screen` run (see docs/dask.md)."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from pipewarden.cli._app import err_console

__all__ = ["EngineOption", "SchedulerOption", "announce_engine"]

EngineOption = Annotated[
    str,
    typer.Option(
        "--engine",
        envvar="PIPEWARDEN_ENGINE",
        help="local (this process) or dask (a Dask cluster; needs the dask extra).",
    ),
]
SchedulerOption = Annotated[
    str | None,
    typer.Option(
        "--scheduler",
        envvar="PIPEWARDEN_SCHEDULER",
        help="With --engine dask: the scheduler's address (tls://host:8786); "
        "without it a local cluster is started for the run.",
        show_default=False,
    ),
]


def announce_engine(engine: str, scheduler: str | None) -> bool:
    """Whether the run goes to Dask; a usage error (exit 2) for an unknown engine, a missing Dask install,
    or --scheduler without --engine dask. Says so on stderr when a local cluster is started."""
    from pipewarden.engine import parse_engine, require_dask
    from pipewarden.errors import ConfigError

    if parse_engine(engine) == "local":
        if scheduler is not None:
            raise ConfigError(f"--scheduler {scheduler}: only used with --engine dask")
        return False
    require_dask()
    # Dask's own progress chatter (cluster start, workers joining) is not the command's to show.
    logging.getLogger("distributed").setLevel(logging.WARNING)
    if scheduler is None:
        err_console().print("engine dask: no --scheduler given, starting a local Dask cluster for this run")
    return True
