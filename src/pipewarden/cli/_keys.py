"""`pipewarden keys ...`: list, rotate, reseal and retire KEKs; signing keys and trust."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from pipewarden.cli._app import EXIT_FINDINGS, app, err_console, fail
from pipewarden.cli._common import WorkspaceOption
from pipewarden.errors import PipewardenError

if TYPE_CHECKING:
    from pipewarden.store import GuardedStore, Reseal

keys_app = typer.Typer(
    help="Key-encryption keys, signing keys and trusted public keys.", no_args_is_help=True
)
app.add_typer(keys_app, name="keys")


def _guarded(workspace: Path | None) -> GuardedStore:
    from pipewarden.cli._acting import acting
    from pipewarden.store import GuardedStore
    from pipewarden.workspace import Workspace

    ws = Workspace.open(workspace)
    return GuardedStore(ws.store(), acting(ws))


@keys_app.command("list")
def list_keys(workspace: WorkspaceOption = None) -> None:
    """Show every key-encryption key (never its material) and how many artifacts each seals."""
    from pipewarden.workspace import Workspace

    try:
        ws = Workspace.open(workspace)
        ring = ws.keyring()
        try:
            usage: dict[str, int] | None = ws.store().key_usage()
        except PipewardenError as exc:
            usage = None
            err_console().print(f"warning: cannot count key use: {exc}", markup=False, highlight=False)
        for info in ring.keys():
            state = "current" if info.current else (f"retired {info.retired}" if info.retired else "active")
            count = "?" if usage is None else str(usage.get(info.kek_id, 0))
            typer.echo(f"{info.kek_id}  {state:<28} seals {count} artifact(s)")
        typer.echo(f"signing key {ws.public_key().keyid}")
    except PipewardenError as exc:
        raise fail(exc) from None


def _report_reseal(result: Reseal) -> None:
    for ref, problem in result.failures:
        typer.echo(f"FAILED {ref}: {problem}")
    if result.failures:
        typer.echo(
            f"{len(result.failures)} artifact(s) could not be re-sealed; see 'pipewarden store verify'"
        )
        raise typer.Exit(EXIT_FINDINGS)


@keys_app.command()
def rotate(workspace: WorkspaceOption = None) -> None:
    """Make a new key-encryption key and re-seal every data key under it (bodies are not rewritten).

    Checks the store first: if any artifact's manifest or key slot fails to verify, nothing is rotated.
    """
    from pipewarden.cli._acting import acting
    from pipewarden.workspace import Workspace

    try:
        ws = Workspace.open(workspace)
        store = ws.store()

        def rotate_and_reseal() -> tuple[str, Reseal]:
            store.key_usage()  # every manifest and key slot readable, before anything changes
            return store.keyring.rotate(), store.reseal()

        new, result = acting(ws).perform(
            "key.rotate",
            "key:ring",
            rotate_and_reseal,
            describe=lambda r: {"kek": r[0], "resealed": r[1].resealed, "failures": len(r[1].failures)},
        )
    except PipewardenError as exc:
        raise fail(exc) from None
    typer.echo(f"new key {new}; re-sealed {result.resealed} data key(s).")
    _report_reseal(result)
    typer.echo("Older keys can now be retired.")


@keys_app.command()
def reseal(workspace: WorkspaceOption = None) -> None:
    """Re-seal every data key under the current KEK (after changing $PIPEWARDEN_KEYS, say)."""

    try:
        result = _guarded(workspace).reseal()
    except PipewardenError as exc:
        raise fail(exc) from None
    typer.echo(f"re-sealed {result.resealed} data key(s)")
    _report_reseal(result)


@keys_app.command()
def retire(
    kek_id: Annotated[str, typer.Argument(help="The key id, as 'pipewarden keys list' shows it.")],
    workspace: WorkspaceOption = None,
) -> None:
    """Destroy an old key-encryption key; refused while any artifact still needs it."""

    try:
        _guarded(workspace).retire_key(kek_id)
    except PipewardenError as exc:
        raise fail(exc) from None
    typer.echo(f"retired {kek_id}")


@keys_app.command("export-public")
def export_public(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")
    ] = None,
    workspace: WorkspaceOption = None,
) -> None:
    """Print this workspace's public signing key (PEM), for verifiers to trust."""
    from pipewarden.crypto import write_atomic
    from pipewarden.workspace import Workspace

    try:
        pem = Workspace.open(workspace).public_key().to_pem()
        if output is None:
            sys.stdout.write(pem.decode())
        else:
            write_atomic(output, pem, mode=0o644)
    except PipewardenError as exc:
        raise fail(exc) from None


@keys_app.command("new-signing-key")
def new_signing_key(
    output: Annotated[
        Path, typer.Argument(help="Private key file to create (mode 0600); FILE.pub beside it.")
    ],
) -> None:
    """Create an Ed25519 signing key for a person or a service.

    Encrypted with $PIPEWARDEN_KEY_PASSPHRASE when that is set.
    """
    from pipewarden.crypto import SigningKey
    from pipewarden.crypto._signing import env_passphrase

    try:
        key = SigningKey.generate()
        key.save(output, passphrase=env_passphrase())
    except PipewardenError as exc:
        raise fail(exc) from None
    typer.echo(f"{output}: {key.keyid}")


@keys_app.command()
def trust(
    public_key: Annotated[Path, typer.Argument(help="A PEM public key file.")],
    store_writer: Annotated[
        bool,
        typer.Option(
            "--store-writer", help="Accept its artifact manifests in the store, not model signatures."
        ),
    ] = False,
    workspace: WorkspaceOption = None,
) -> None:
    """Accept model signatures by this public key (or, with --store-writer, its writes to the store)."""
    from pipewarden.cli._acting import acting
    from pipewarden.workspace import Workspace

    try:
        ws = Workspace.open(workspace)
        key = acting(ws).perform(
            "key.trust",
            "key:writers" if store_writer else "key:trusted",
            lambda: ws.trust(public_key, store_writer=store_writer),
            describe=lambda k: {"keyid": k.keyid},
        )
    except PipewardenError as exc:
        raise fail(exc) from None
    typer.echo(f"trusted {key.keyid}" + (" as a store writer" if store_writer else " for model signatures"))
