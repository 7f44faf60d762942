"""`pipewarden audit ...`: verify, tail, export and prove records of the workspace's audit log."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from pipewarden.cli._app import app, err_console, fail
from pipewarden.cli._common import WorkspaceOption
from pipewarden.errors import ConfigError, IntegrityError, PipewardenError

if TYPE_CHECKING:
    from pipewarden.audit import AuditLog, AuditVerification, Entry
    from pipewarden.events._event import Scalar

audit_app = typer.Typer(help="The tamper-evident audit log.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")


T = TypeVar("T")
LOG = "audit:log"


def _run(
    workspace: Path | None,
    action: str,
    operation: Callable[[AuditLog], T],
    *,
    describe: Callable[[T], Mapping[str, Scalar]] | None = None,
    **attrs: Scalar,
) -> T:
    """Run `operation` on the workspace's audit log as the acting principal, authorized and recorded."""
    from pipewarden.cli._acting import acting
    from pipewarden.workspace import Workspace

    ws = Workspace.open(workspace)
    log = ws.audit_log()
    return acting(ws).perform(action, LOG, lambda: operation(log), describe=describe, attributes=attrs)


@contextmanager
def _record_progress() -> Iterator[Callable[[int], None] | None]:
    """A count of records checked on stderr when it is a terminal; nothing when piped."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.progress import Progress, SpinnerColumn, TextColumn

    with Progress(
        SpinnerColumn(),
        TextColumn("verifying: {task.completed} records"),
        console=err_console(),
        transient=True,
    ) as bar:
        task = bar.add_task("", total=None)

        def update(done: int) -> None:
            bar.update(task, completed=done)

        yield update


@audit_app.command()
def verify(
    checkpoint: Annotated[
        list[Path] | None,
        typer.Option(
            "--checkpoint",
            help="An exported checkpoint file kept elsewhere to check the log against too (repeatable).",
        ),
    ] = None,
    workspace: WorkspaceOption = None,
) -> None:
    """Check every record's hash and link, every stored checkpoint, and the exported checkpoints.

    Exit 0 when the log is intact; 1 naming the first bad record and how it is bad (modified, deleted,
    inserted, reordered, truncated, rewritten) or the bad checkpoint; 2 for a configuration error.
    """
    from pipewarden.cli import _remote

    if (client := _remote.remote()) is not None:
        try:
            _remote.audit_verify(client)
        except PipewardenError as exc:
            raise fail(exc) from None
        return
    extra = list(checkpoint or ())
    for path in extra:
        if not path.is_file():
            raise fail(ConfigError(f"{path}: checkpoint file does not exist"))
    seen: list[AuditVerification] = []

    def check(log: AuditLog) -> AuditVerification:
        with _record_progress() as progress:
            result = log.verify(progress=progress, extra_checkpoints=extra)
        seen.append(result)
        if result.problem is not None:
            # Raised inside the action, so the event says so (outcome error, reason integrity).
            raise IntegrityError(f"audit log {result.log_id}: {result.problem.describe()}")
        return result

    try:
        result = _run(
            workspace,
            "audit.verify",
            check,
            describe=lambda r: {"records": r.records, "checkpoints": r.checkpoints, "exported": r.exported},
        )
    except IntegrityError as exc:
        if seen:
            bad = seen[0]
            typer.echo(
                f"audit log {bad.log_id}: checked {bad.records} records, {bad.checkpoints} stored "
                f"checkpoints, {bad.exported} exported checkpoint files"
            )
        raise fail(exc) from None
    except PipewardenError as exc:
        raise fail(exc) from None
    typer.echo(result.describe())


def _line(entry: Entry) -> str:
    e = entry.event
    when = e.time.isoformat(timespec="seconds").replace("+00:00", "Z")
    return f"{entry.seq:>8}  {when}  {e.outcome:<7}  {e.actor_kind}:{e.actor}  {e.action}  {e.resource}"


@audit_app.command()
def tail(
    n: Annotated[int, typer.Option("-n", "--lines", min=1, help="How many of the newest records.")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    workspace: WorkspaceOption = None,
) -> None:
    """Show the newest records, oldest first."""
    from pipewarden.cli import _remote

    if (client := _remote.remote()) is not None and not as_json:
        try:
            _remote.audit_tail(client, n)
        except PipewardenError as exc:
            raise fail(exc) from None
        return
    try:
        entries = _run(workspace, "audit.read", lambda log: log.tail(n), describe=lambda e: {"count": len(e)})
    except PipewardenError as exc:
        raise fail(exc) from None
    for entry in entries:
        if as_json:
            doc = {"seq": entry.seq, "hash": entry.hash.hex(), "event": entry.event.to_dict()}
            typer.echo(json.dumps(doc, sort_keys=True, ensure_ascii=False))
        else:
            typer.echo(_line(entry))


@audit_app.command()
def export(
    fmt: Annotated[str, typer.Option("--format", help="Output format; jsonl is the one there is.")] = "jsonl",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write (atomically); stdout if omitted.")
    ] = None,
    start: Annotated[int, typer.Option("--from", min=1, help="First record to export.")] = 1,
    workspace: WorkspaceOption = None,
) -> None:
    """Export records as JSON Lines: seq, hash, prev_hash and the event, byte for byte as hashed."""
    if fmt != "jsonl":
        raise fail(ConfigError(f"--format {fmt!r}: only 'jsonl' is supported"))
    try:

        def write(log: AuditLog) -> int:
            if output is None:
                written = log.export_jsonl(sys.stdout.buffer, start=start)
                sys.stdout.buffer.flush()
                return written
            return _export_to(log, output, start)

        count = _run(workspace, "audit.export", write, describe=lambda c: {"count": c}, start=start)
    except PipewardenError as exc:
        raise fail(exc) from None
    if output is not None:
        typer.echo(f"exported {count} records to {output}")


def _export_to(log: AuditLog, output: Path, start: int) -> int:
    """Write to a temporary file beside `output`, then move it into place: never a half export."""
    import os
    import tempfile

    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{output.name}.", suffix=".tmp", dir=output.parent)
    except OSError as exc:
        raise ConfigError(f"{output}: cannot write here: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            count = log.export_jsonl(fh, start=start)
        os.replace(tmp, output)
    except OSError as exc:
        raise ConfigError(f"{output}: cannot write: {exc.strerror}") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return count


@audit_app.command()
def proof(
    seq: Annotated[int, typer.Argument(min=1, help="The record to prove.")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write; stdout if omitted.")
    ] = None,
    workspace: WorkspaceOption = None,
) -> None:
    """Write a self-contained inclusion proof of record SEQ: check it anywhere with `audit check-proof`."""
    from pipewarden.crypto import write_atomic

    try:
        doc = _run(
            workspace,
            "audit.export",
            lambda log: log.proof(seq),
            describe=lambda d: {"tree_size": d["tree_size"]},
            proof_of=seq,
        )
        text = json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
        if output is None:
            typer.echo(text, nl=False)
        else:
            write_atomic(output, text.encode(), mode=0o644)
            typer.echo(f"proof of record {seq} against checkpoint {doc['tree_size']} written to {output}")
    except PipewardenError as exc:
        raise fail(exc) from None


@audit_app.command("check-proof")
def check_proof(
    file: Annotated[Path, typer.Argument(help="A proof written by `pipewarden audit proof`.")],
    key: Annotated[
        list[Path],
        typer.Option("--key", help="The log's public key (PEM) to check the checkpoint with (repeatable)."),
    ],
    log: Annotated[
        str | None,
        typer.Option("--log", help="The log id it must belong to (deployments sharing a key sign several)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the proven event as JSON.")] = False,
) -> None:
    """Check an inclusion proof offline: exit 0 when the record is in the signed log, 1 when not."""
    from pipewarden.audit import verify_proof
    from pipewarden.crypto import PublicKey, TrustedKeys

    try:
        trusted = TrustedKeys([PublicKey.load(k) for k in key], source=", ".join(map(str, key)))
        try:
            data = file.read_bytes()
        except OSError as exc:
            raise ConfigError(f"{file}: cannot be read: {exc.strerror}") from None
        verdict = verify_proof(data, trusted, label=str(file), expected_log=log)
    except PipewardenError as exc:
        raise fail(exc) from None
    if as_json:
        typer.echo(json.dumps(verdict.event.to_dict(), sort_keys=True, ensure_ascii=False))
        return
    e = verdict.event
    typer.echo(
        f"{file}: record {verdict.seq} is in audit log {verdict.log} (checkpoint of {verdict.tree_size} "
        f"records signed by {verdict.signer} at {verdict.checkpoint_time}): {e.action} by {e.actor} on "
        f"{e.resource}, {e.outcome}"
    )
