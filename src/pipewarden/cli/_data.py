"""`pipewarden data profile`, `data check` (data contracts) and `data screen` (the poisoning screen)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from pipewarden.cli._app import app, fail
from pipewarden.cli._common import WorkspaceOption, emit_report, report_attributes, write_text_atomically
from pipewarden.cli._engine import EngineOption, SchedulerOption, announce_engine
from pipewarden.errors import PipewardenError
from pipewarden.findings import FORMATS, Severity, get_renderer

if TYPE_CHECKING:
    from pipewarden.data import CheckResult, Contract
    from pipewarden.events._event import Scalar

data_app = typer.Typer(
    help="Data integrity: contracts checked on every batch, and the poisoning screen for training sets.",
    no_args_is_help=True,
)
app.add_typer(data_app, name="data")

LabelOption = Annotated[
    str | None,
    typer.Option("--label", envvar="PIPEWARDEN_LABEL", help="The label column (or the name for --labels)."),
]
LabelsOption = Annotated[
    Path | None,
    typer.Option(
        "--labels", envvar="PIPEWARDEN_LABELS", help="A file of labels, one per row (.npy, .csv, .txt)."
    ),
]
FormatOption = Annotated[
    str | None,
    typer.Option(
        "--input-format",
        envvar="PIPEWARDEN_DATA_FORMAT",
        help="csv, parquet, jsonl or npy (default: by content).",
    ),
]

ReportFormatOption = Annotated[
    str,
    typer.Option("--format", "-f", envvar="PIPEWARDEN_FORMAT", help=f"Report format: {', '.join(FORMATS)}."),
]
ReportPathOption = Annotated[
    Path | None,
    typer.Option("-o", "--report", envvar="PIPEWARDEN_OUTPUT", help="Write the report here."),
]
FailOnOption = Annotated[
    str,
    typer.Option(
        "--fail-on",
        envvar="PIPEWARDEN_FAIL_ON",
        help="Exit 1 on findings at or above: critical, high, medium, low, info.",
    ),
]
AcceptedOption = Annotated[
    Path | None,
    typer.Option("--output", envvar="PIPEWARDEN_DATA_OUTPUT", help="Write the rows that pass here."),
]


@data_app.command("profile")
def profile_command(
    data: Annotated[Path, typer.Argument(help="Trusted data: CSV, Parquet, JSON Lines or .npy.")],
    output: Annotated[
        Path,
        typer.Option("--output", "-o", envvar="PIPEWARDEN_CONTRACT", help="Write the contract (YAML) here."),
    ],
    label: LabelOption = None,
    labels: LabelsOption = None,
    margin: Annotated[
        float,
        typer.Option(
            envvar="PIPEWARDEN_MARGIN", help="Widen numeric ranges by this fraction of the observed range."
        ),
    ] = 0.1,
    input_format: FormatOption = None,
    workspace: WorkspaceOption = None,
) -> None:
    """Learn a data contract from trusted data and write it as YAML for people to review and edit.

    Exit 0 on success, 2 on unreadable data or a usage error. Inside a workspace the action is recorded in its
    audit log (action data.check, mode profile).
    """
    from pipewarden.cli._acting import perform_where_recorded
    from pipewarden.data import profile, read_table

    def learn() -> Contract:
        table = read_table(data, label=label, labels_path=labels, fmt=input_format)
        return profile(table, margin=margin)

    def describe(contract: Contract) -> dict[str, Scalar]:
        return {"mode": "profile", "columns": len(contract.columns), "label": contract.label or ""}

    try:
        contract = perform_where_recorded(workspace, "data.check", "data", [data], learn, describe=describe)
        note = f"Learned by `pipewarden data profile` from {data.name}."
        write_text_atomically(output, contract.to_yaml(note=note), "contract")
    except PipewardenError as exc:
        raise fail(exc) from None
    typer.echo(f"{output}: contract with {len(contract.columns)} columns", err=True)


@data_app.command("check")
def check_command(
    data: Annotated[Path, typer.Argument(help="The batch to check: CSV, Parquet, JSON Lines or .npy.")],
    contract_path: Annotated[
        Path, typer.Option("--contract", "-c", envvar="PIPEWARDEN_CONTRACT", help="The contract YAML file.")
    ],
    quarantine: Annotated[
        Path | None,
        typer.Option(
            envvar="PIPEWARDEN_QUARANTINE", help="Write every rejected row, with its reasons, here."
        ),
    ] = None,
    accepted: AcceptedOption = None,
    fmt: ReportFormatOption = "text",
    report_path: ReportPathOption = None,
    fail_on: FailOnOption = "medium",
    labels: LabelsOption = None,
    chunk_rows: Annotated[
        int, typer.Option(help="Rows read and checked at a time (bounds memory).", min=1)
    ] = 65_536,
    input_format: FormatOption = None,
    engine: EngineOption = "local",
    scheduler: SchedulerOption = None,
    workspace: WorkspaceOption = None,
) -> None:
    """Check a batch of data against its contract, per row and per column.

    Rows that break the contract, or hold dangerous content whatever it says, are rejected: --quarantine
    writes them with the reasons, --output the accepted rows; no row is dropped silently. Exit 0 when nothing
    is at or above --fail-on, 1 otherwise, 2 on a usage error or unreadable input. Inside a workspace the
    check is recorded in its audit log (action data.check).
    """
    from pipewarden.cli._acting import perform_where_recorded
    from pipewarden.data import Contract, check, check_dask

    try:
        threshold = Severity.parse(fail_on)
        get_renderer(fmt)  # an unknown format is a usage error before any work is done
        contract = Contract.load(contract_path)
        on_dask = announce_engine(engine, scheduler)

        def run() -> CheckResult:
            options: dict[str, Any] = {"quarantine": quarantine, "output": accepted, "chunk_rows": chunk_rows}
            if on_dask:
                return check_dask(
                    data,
                    contract=contract,
                    labels_path=labels,
                    fmt=input_format,
                    scheduler=scheduler,
                    **options,
                )
            return check(data, contract=contract, labels_path=labels, fmt=input_format, **options)

        def describe(result: CheckResult) -> dict[str, Scalar]:
            return {
                "mode": "check",
                "rows": result.rows,
                "accepted": result.accepted,
                "quarantined": result.quarantined,
                **report_attributes(result.report, threshold),
            }

        result = perform_where_recorded(workspace, "data.check", "data", [data], run, describe=describe)
        emit_report(result.report, fmt=fmt, output=report_path)
    except PipewardenError as exc:
        raise fail(exc) from None
    raise typer.Exit(result.report.exit_code(threshold))


@data_app.command("screen")
def screen_command(
    data: Annotated[Path, typer.Argument(help="Training data: CSV, Parquet, JSON Lines or .npy.")],
    label: LabelOption = None,
    labels: LabelsOption = None,
    reference: Annotated[
        Path | None,
        typer.Option(envvar="PIPEWARDEN_REFERENCE", help="Trusted data to compare distributions with."),
    ] = None,
    fpr: Annotated[
        float,
        typer.Option(
            envvar="PIPEWARDEN_FPR",
            help="Share of clean rows each calibrated check may flag (0 < fpr < 0.5).",
        ),
    ] = 0.01,
    only: Annotated[
        list[str] | None,
        typer.Option(
            "--check", help="Run only this check (repeatable): labels, outliers, duplicates, backdoor, shift."
        ),
    ] = None,
    quarantine: Annotated[
        Path | None,
        typer.Option(envvar="PIPEWARDEN_QUARANTINE", help="Write every flagged row, with its reasons, here."),
    ] = None,
    accepted: AcceptedOption = None,
    fmt: ReportFormatOption = "text",
    report_path: ReportPathOption = None,
    fail_on: FailOnOption = "medium",
    seed: Annotated[int, typer.Option(help="Seed for the folds and samples (results are reproducible).")] = 0,
    input_format: FormatOption = None,
    engine: EngineOption = "local",
    scheduler: SchedulerOption = None,
    workspace: WorkspaceOption = None,
) -> None:
    """Screen training data for planted rows: flipped labels, outliers, near-duplicate floods, backdoor
    triggers, and shift against --reference.

    One finding per suspected row (location.row is its 0-based index). Exit 0 when nothing is at or above
    --fail-on, 1 otherwise, 2 on a usage error or unreadable input. Inside a workspace the screen is recorded
    in its audit log (action data.screen).
    """
    from pipewarden.cli._acting import perform_where_recorded
    from pipewarden.data import ScreenResult, screen_file, screen_file_dask

    try:
        threshold = Severity.parse(fail_on)
        get_renderer(fmt)  # an unknown format is a usage error before any work is done
        on_dask = announce_engine(engine, scheduler)

        def run() -> ScreenResult:
            where = {"scheduler": scheduler} if on_dask else {}
            return (screen_file_dask if on_dask else screen_file)(
                data,
                label=label,
                labels_path=labels,
                reference=reference,
                fpr=fpr,
                checks=only or None,
                quarantine=quarantine,
                output=accepted,
                fmt=input_format,
                seed=seed,
                **where,
            )

        def describe(result: ScreenResult) -> dict[str, Scalar]:
            return {
                "rows": result.rows,
                "flagged": int(result.flagged.sum()),
                **report_attributes(result.report, threshold),
            }

        result = perform_where_recorded(workspace, "data.screen", "data", [data], run, describe=describe)
        emit_report(result.report, fmt=fmt, output=report_path)
    except PipewardenError as exc:
        raise fail(exc) from None
    raise typer.Exit(result.report.exit_code(threshold))
