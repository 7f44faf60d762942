"""`pipewarden sign PATH` and `pipewarden verify PATH`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipewarden.cli._app import app, fail
from pipewarden.cli._common import WorkspaceOption
from pipewarden.errors import PipewardenError


@app.command()
def sign(
    path: Annotated[Path, typer.Argument(help="A model folder or file.")],
    key: Annotated[
        Path | None,
        typer.Option(
            "--key", "-k", envvar="PIPEWARDEN_SIGNING_KEY", help="Private key (default: the workspace's)."
        ),
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Signature file (default PATH.pwsig).")
    ] = None,
    hash_algorithm: Annotated[str, typer.Option("--hash", help="sha256 or blake3.")] = "sha256",
    shard_size: Annotated[int, typer.Option(help="Files larger than this are hashed in parallel shards.")] = (
        256 << 20
    ),
    ignore: Annotated[
        list[str] | None, typer.Option("--ignore", help="Glob of files to leave out (repeatable).")
    ] = None,
    follow_symlinks: Annotated[bool, typer.Option(help="Sign what symbolic links point to.")] = False,
    workspace: WorkspaceOption = None,
) -> None:
    """Sign every file of a model: a DSSE-wrapped in-toto statement, Ed25519."""
    from pipewarden.cli._acting import perform_where_recorded
    from pipewarden.crypto import SigningKey, sign_model
    from pipewarden.crypto._hashing import DEFAULT_IGNORE
    from pipewarden.workspace import Workspace

    try:
        signing_key = SigningKey.load(key) if key is not None else Workspace.open(workspace).signing_key()
        out, manifest = perform_where_recorded(
            workspace,
            "model.sign",
            "model",
            [path],
            lambda: sign_model(
                path,
                key=signing_key,
                output=output,
                algorithm=hash_algorithm,
                shard_size=shard_size,
                ignore=(*DEFAULT_IGNORE, *(ignore or ())),
                follow_symlinks=follow_symlinks,
            ),
            describe=lambda r: {"files": len(r[1].files), "signer": signing_key.keyid},
        )
    except PipewardenError as exc:
        raise fail(exc) from None
    typer.echo(f"signed {len(manifest.files)} file(s) of {path} as {signing_key.keyid}: {out}")


@app.command()
def verify(
    path: Annotated[Path, typer.Argument(help="The model folder or file that was signed.")],
    signature: Annotated[
        Path | None, typer.Option("--signature", "-s", help="Signature file (default PATH.pwsig).")
    ] = None,
    public_key: Annotated[
        list[Path] | None,
        typer.Option(
            "--public-key", "-p", help="Trust this PEM public key (repeatable; default: the workspace's)."
        ),
    ] = None,
    workspace: WorkspaceOption = None,
) -> None:
    """Check a model against its signature. Exit 0 only if every file matches and the signature is good;
    otherwise name each file modified, added, removed or renamed, and exit 1."""
    from pipewarden.cli._acting import perform_where_recorded
    from pipewarden.crypto import PublicKey, TrustedKeys, verify_model
    from pipewarden.workspace import Workspace

    try:
        if public_key:
            trusted = TrustedKeys([PublicKey.load(p) for p in public_key], source="--public-key")
        else:
            trusted = Workspace.open(workspace).trusted_keys()
        manifest = perform_where_recorded(
            workspace,
            "model.verify",
            "model",
            [path],
            lambda: verify_model(path, trusted=trusted, signature=signature),
            describe=lambda m: {"files": len(m.files), "signer": m.signer},
        )
    except PipewardenError as exc:
        raise fail(exc) from None
    typer.echo(f"verified {len(manifest.files)} file(s) of {path}, signed by {manifest.signer}")
