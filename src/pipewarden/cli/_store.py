"""`pipewarden store ...`: put, get, ls, verify and lineage over the workspace's artifact store."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from pipewarden.cli import _remote
from pipewarden.cli._app import EXIT_FINDINGS, app, err_console, fail
from pipewarden.cli._common import ActorOption, WorkspaceOption, byte_progress
from pipewarden.cli._remote import remote
from pipewarden.errors import ArtifactRefused, PipewardenError

if TYPE_CHECKING:
    from pipewarden.crypto import TrustedKeys
    from pipewarden.store import GuardedStore

store_app = typer.Typer(help="The encrypted, signed artifact store.", no_args_is_help=True)
app.add_typer(store_app, name="store")


def _on_server(run: Callable[[], object]) -> None:
    """Run a command against the server, its errors shown and mapped to exit codes as locally."""
    try:
        run()
    except PipewardenError as exc:
        raise fail(exc) from None


def _open(workspace: Path | None, actor: str | None = None) -> GuardedStore:
    """The workspace's store as the acting principal sees it: each operation authorized and audited."""
    from pipewarden.cli._acting import acting
    from pipewarden.store import GuardedStore
    from pipewarden.workspace import Workspace

    ws = Workspace.open(workspace)
    return GuardedStore(ws.store(), acting(ws, actor=actor))


def store_writers(workspace: Path | None) -> TrustedKeys:
    from pipewarden.workspace import Workspace

    return Workspace.open(workspace).store_writers()


@store_app.command()
def put(
    file: Annotated[Path, typer.Argument(help="The file to store.")],
    name: Annotated[str, typer.Option("--name", "-n", help="Artifact name; the next version is assigned.")],
    parent: Annotated[
        list[str] | None, typer.Option("--parent", help="NAME@VERSION it was made from (repeatable).")
    ] = None,
    media_type: Annotated[
        str | None, typer.Option(help="Media type (default: guessed from the name).")
    ] = None,
    actor: ActorOption = None,
    workspace: WorkspaceOption = None,
) -> None:
    """Scan, encrypt, sign and store FILE as the next version of NAME.

    A model file with scan findings at or above the workspace's threshold is refused (exit 1) and the refusal
    is recorded.
    """
    if (client := remote()) is not None:
        _on_server(
            lambda: _remote.store_put(
                client, file, name=name, parents=tuple(parent or ()), media_type=media_type
            )
        )
        return
    try:
        store = _open(workspace, actor)
        with byte_progress(f"storing {file.name}") as progress:
            art = store.put(
                file,
                name=name,
                parents=tuple(parent or ()),
                media_type=media_type,
                progress=progress,
            )
    except ArtifactRefused as exc:
        err_console().print(exc.report.render("text"), end="", markup=False, highlight=False)
        raise fail(exc) from None
    except PipewardenError as exc:
        raise fail(exc) from None
    typer.echo(f"stored {art.ref}  {art.size} bytes  sha256:{art.digest}  scan: {art.scan.describe()}")


@store_app.command()
def get(
    ref: Annotated[str, typer.Argument(help="NAME (latest version) or NAME@VERSION.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the verified bytes.")],
    workspace: WorkspaceOption = None,
) -> None:
    """Verify an artifact's signature, key and every byte, then write it to --output (atomically)."""
    if (client := remote()) is not None:
        _on_server(lambda: _remote.store_get(client, ref, output))
        return
    try:
        store = _open(workspace)
        with byte_progress(f"verifying {ref}") as progress:
            art = store.get(ref, output, progress=progress)
    except PipewardenError as exc:
        raise fail(exc) from None
    typer.echo(f"{art.ref} -> {output}  sha256:{art.digest}  signed by {art.signer}")


@store_app.command("ls")
def ls(
    name: Annotated[str | None, typer.Argument(help="Only this artifact's versions.")] = None,
    refused: Annotated[bool, typer.Option("--refused", help="List refused files instead.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document instead of a table.")] = False,
    workspace: WorkspaceOption = None,
) -> None:
    """List stored versions (each manifest's signature is checked), or refusals."""
    if (client := remote()) is not None and not refused:
        _on_server(lambda: _remote.store_ls(client, name, as_json=as_json))
        return
    from dataclasses import asdict

    try:
        store = _open(workspace)
        if refused:
            refusals = store.refusals()
            if as_json:
                typer.echo(json.dumps([asdict(r) for r in refusals], indent=2))
                return
            for r in refusals:
                typer.echo(
                    f"{r.at}  {r.name}  {r.source}  sha256:{r.sha256[:16]}  by {r.by}  worst {r.max_severity}"
                )
            return
        arts = store.artifacts(name)
    except PipewardenError as exc:
        raise fail(exc) from None
    if as_json:
        typer.echo(json.dumps([asdict(a) | {"ref": a.ref} for a in arts], indent=2))
        return
    for a in arts:
        typer.echo(
            f"{a.ref:<32} {a.size:>12}  sha256:{a.digest[:16]}  {a.created_at}  by {a.created_by}  "
            f"scan: {a.scan.describe()}"
        )


@store_app.command("verify")
def verify_store(
    name: Annotated[str | None, typer.Argument(help="Only this artifact (default: everything).")] = None,
    workspace: WorkspaceOption = None,
) -> None:
    """Check every version end to end. Exit 1 on any integrity failure, naming each."""
    if (client := remote()) is not None:
        code = 0

        def check() -> None:
            nonlocal code
            code = _remote.store_verify(client, name)

        _on_server(check)
        raise typer.Exit(code)
    try:
        result = _open(workspace).verify(name)
    except PipewardenError as exc:
        raise fail(exc) from None
    for ref, problem in result.failures:
        typer.echo(f"FAILED {ref}: {problem}")
    note = (
        f"; {result.unreferenced} unreferenced object(s) from interrupted writes"
        if result.unreferenced
        else ""
    )
    typer.echo(f"checked {result.checked} version(s): {len(result.failures)} failed{note}")
    if not result.ok:
        raise typer.Exit(EXIT_FINDINGS)


@store_app.command()
def lineage(
    ref: Annotated[str, typer.Argument(help="NAME or NAME@VERSION.")],
    workspace: WorkspaceOption = None,
) -> None:
    """Show where an artifact came from: its parents, recursively, each pinned by digest."""
    if (client := remote()) is not None:
        _on_server(lambda: _remote.store_lineage(client, ref))
        return
    from pipewarden.pipeline import read_provenance

    try:
        store = _open(workspace)
        tree = store.lineage(ref)
        # What produced it, when a pipeline stage did: its signed provenance, verified.
        provenance = read_provenance(store, tree.artifact, trusted=store_writers(workspace))
    except PipewardenError as exc:
        raise fail(exc) from None
    typer.echo("\n".join(tree.lines()))
    if provenance is not None:
        typer.echo("\n".join(provenance.lines()))
