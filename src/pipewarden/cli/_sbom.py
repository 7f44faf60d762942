"""`pipewarden sbom`: a CycloneDX 1.6 SBOM of the project's Python packages and the pipeline's artifacts."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from pipewarden.cli._app import app, err_console, fail
from pipewarden.cli._common import write_text_atomically
from pipewarden.errors import PipewardenError

if TYPE_CHECKING:
    from pipewarden.store import GuardedStore


def _store(workspace: Path | None) -> GuardedStore | None:
    """The workspace's store as the acting principal sees it (each read authorized and audited, as
    `pipewarden store lineage` does). An explicit --workspace must exist; without one, the workspace at
    $PIPEWARDEN_WORKSPACE or ./.pipewarden is used when there is one."""
    from pipewarden.cli._acting import acting
    from pipewarden.store import GuardedStore
    from pipewarden.workspace import Workspace

    root = Workspace.locate(workspace)
    if workspace is None and not (root / "config.yaml").exists():
        err_console().print(
            f"note: no workspace at {root}: the SBOM lists Python packages only",
            markup=False,
            highlight=False,
        )
        return None
    ws = Workspace.open(root)
    return GuardedStore(ws.store(), acting(ws))


@app.command("sbom")
def sbom(
    path: Annotated[
        Path,
        typer.Argument(
            help="requirements.txt, pyproject.toml, poetry.lock, uv.lock, pylock.toml, Pipfile.lock, "
            "a folder holding them, or an installed environment."
        ),
    ] = Path("."),
    workspace: Annotated[
        Path | None,
        typer.Option(
            "--workspace",
            "-w",
            help="The workspace whose stored models and data sets to include (default: $PIPEWARDEN_WORKSPACE "
            "or ./.pipewarden, when one is there).",
            show_default=False,
        ),
    ] = None,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Write the SBOM here (default: standard output).")
    ] = None,
) -> None:
    """Write a CycloneDX 1.6 SBOM (JSON): the Python packages PATH declares or locks, with purls and
    hashes, and the workspace's models (with a model card) and data sets, lineage as dependencies.

    The document is validated against the CycloneDX 1.6 schema before it is written. Exit 0 when it
    is written; 1 when a stored artifact fails a check (a manifest that does not verify, a lineage that
    reaches an artifact the principal may not list); 2 on a usage error (a path that cannot be read, a
    workspace that is not there, a document that does not validate).
    """
    from pipewarden.supply import build_sbom

    try:
        document = build_sbom(path, store=_store(workspace))
        text = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
        if output is None:
            sys.stdout.write(text)
        else:
            write_text_atomically(output, text, "SBOM")
    except PipewardenError as exc:
        raise fail(exc) from None
