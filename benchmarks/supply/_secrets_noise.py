"""Files of the synthetic repository that hold no secret, only what looks like one to a scanner.

Lock files and requirements with package hashes, CycloneDX SBOMs with component hashes, markdown docs
with commit ids and digests, CSV data with hashed ids, and the project files around them. The package
index they name is a made-up internal mirror.
"""

from __future__ import annotations

import json
import random
from typing import Any

from _secrets_content import NAMES, PACKAGES, Planted, hex_text, project_of, uuid_text, version_text

INDEX = "https://packages.corp.internal/simple"


def _pins(rng: random.Random, count: int) -> list[tuple[str, str]]:
    return [(name, version_text(rng)) for name in sorted(rng.sample(PACKAGES, count))]


def doc_file(rng: random.Random, here: list[Planted], rel: str) -> list[str]:
    project = project_of(rel)
    lines = [f"# {project}: {rng.choice(NAMES)} notes", ""]
    lines += [
        f"The {project} model is trained nightly from the feature store and promoted by hand after review.",
        "Each promotion records the commit, the data snapshot and the evaluation report.",
        "",
        "## Changelog",
        "",
    ]
    for _ in range(rng.randint(3, 10)):
        commit = hex_text(rng, 40)
        short = commit[:7] if rng.random() < 0.5 else commit
        lines.append(f"- {rng.choice(('Fix', 'Add', 'Tune', 'Drop'))} {rng.choice(NAMES)} handling ({short})")
    lines += ["", "## Models", "", "| version | digest | AUC |", "| --- | --- | ---: |"]
    for number in range(rng.randint(2, 5)):
        lines.append(f"| v{number + 1} | `sha256:{hex_text(rng, 64)}` | 0.{rng.randint(800, 990)} |")
    lines += [
        "",
        "## Running it",
        "",
        "```sh",
        "export WANDB_API_KEY=<your-key>",
        "pip install --require-hashes",
    ]
    lines += [f"python -m {project}.train --config configs/base.yaml", "```", ""]
    if rng.random() < 0.3:
        lines += ["A local config for the database looks like:", "", "```yaml", "database:", "  user: app"]
        lines += ["  password: changeme", "```", ""]
    return lines


def csv_file(rng: random.Random, here: list[Planted], rel: str) -> list[str]:
    """A data sample. A quarter carry a hashed user id; a fifth of those come from an exporter that
    quotes every field (as ``csv.QUOTE_ALL`` does), which puts the hex digests in quotes."""
    hashed = rng.random() < 0.25
    quoted = hashed and rng.random() < 0.2
    header = ["id", "event_time", "feature_a", "feature_b", "segment", "label"]
    if hashed:
        header.insert(1, "user_hash")
    lines = [",".join(header)]
    for number in range(rng.randint(10, 30) if quoted else rng.randint(30, 120)):
        row = [
            str(number),
            f"2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:00:00",
        ]
        row += [
            f"{rng.gauss(0, 1):.5f}",
            f"{rng.random():.5f}",
            rng.choice(("a", "b", "c")),
            str(rng.randint(0, 1)),
        ]
        if hashed:
            row.insert(1, hex_text(rng, 32))
        lines.append(",".join(f'"{cell}"' for cell in row) if quoted else ",".join(row))
    return lines


def sbom_file(rng: random.Random, here: list[Planted], rel: str) -> list[str]:
    components = []
    for name, version in _pins(rng, rng.randint(15, len(PACKAGES))):
        hashes = [{"alg": "SHA-256", "content": hex_text(rng, 64)}]
        if rng.random() < 0.3:
            hashes.append({"alg": "SHA-512", "content": hex_text(rng, 128)})
        purl = f"pkg:pypi/{name}@{version}"
        components.append(
            {
                "bom-ref": purl,
                "hashes": hashes,
                "name": name,
                "purl": purl,
                "type": "library",
                "version": version,
            }
        )
    doc: dict[str, Any] = {
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "serialNumber": f"urn:uuid:{uuid_text(rng)}",
        "version": 1,
        "metadata": {
            "timestamp": "2024-06-01T12:00:00Z",
            "component": {"name": project_of(rel), "type": "application"},
        },
        "components": components,
    }
    return json.dumps(doc, indent=2).splitlines()


def lock_files(rng: random.Random, here: list[Planted], rel: str) -> list[str]:
    name = rel.rsplit("/", 1)[-1]
    pins = _pins(rng, rng.randint(10, 30))
    if name.startswith("requirements"):
        lines = [f"--index-url {INDEX}", ""]
        for package, version in pins:
            hashes = [f"    --hash=sha256:{hex_text(rng, 64)}" for _ in range(rng.randint(1, 3))]
            lines += [f"{package}=={version} \\", *[h + " \\" for h in hashes[:-1]], hashes[-1]]
        return lines
    if name == "poetry.lock":
        lines = []
        for package, version in pins:
            lines += [
                "[[package]]",
                f'name = "{package}"',
                f'version = "{version}"',
                "optional = false",
                "files = [",
            ]
            for tag in ("cp311-cp311-manylinux_2_17_x86_64", "py3-none-any")[: rng.randint(1, 2)]:
                wheel = f"{package.replace('-', '_')}-{version}-{tag}.whl"
                lines.append(f'    {{file = "{wheel}", hash = "sha256:{hex_text(rng, 64)}"}},')
            lines += ["]", ""]
        return [*lines, "[metadata]", 'lock-version = "2.0"', f'content-hash = "{hex_text(rng, 64)}"']
    lines = ["version = 1", 'requires-python = ">=3.11"', ""]
    for package, version in pins:
        base = f"{INDEX.rsplit('/', 1)[0]}/files/{package}"
        lines += [
            "[[package]]",
            f'name = "{package}"',
            f'version = "{version}"',
            f'source = {{ registry = "{INDEX}" }}',
        ]
        size = rng.randint(10_000, 9_000_000)
        digest = hex_text(rng, 64)
        lines.append(
            f'sdist = {{ url = "{base}-{version}.tar.gz", hash = "sha256:{digest}", size = {size} }}'
        )
        lines.append("wheels = [")
        for _ in range(rng.randint(1, 4)):
            lines.append(
                f'    {{ url = "{base}-{version}-py3-none-any.whl", hash = "sha256:{hex_text(rng, 64)}" }},'
            )
        lines += ["]", ""]
    return lines


def other_files(rng: random.Random, here: list[Planted], rel: str) -> list[str]:
    name = rel.rsplit("/", 1)[-1]
    project = project_of(rel)
    if name == "pyproject.toml":
        deps = [f'  "{p}>={v}",' for p, v in _pins(rng, 8)]
        return [
            "[project]",
            f'name = "{project}"',
            f'version = "{version_text(rng)}"',
            "dependencies = [",
            *deps,
            "]",
        ]
    if name == "Dockerfile":
        return [
            f"FROM python:3.11-slim@sha256:{hex_text(rng, 64)}",
            "COPY requirements.txt .",
            "RUN pip install --no-cache-dir --require-hashes -r requirements.txt",
            f'LABEL org.opencontainers.image.revision="{hex_text(rng, 40)}"',
            'CMD ["python", "-m", "serve"]',
        ]
    if name == ".pre-commit-config.yaml":
        lines = ["repos:"]
        for hook in ("ruff-pre-commit", "mirrors-mypy", "pre-commit-hooks"):
            lines += [f"  - repo: https://git.corp.internal/mirrors/{hook}", f"    rev: {hex_text(rng, 40)}"]
            lines += ["    hooks:", f"      - id: {hook.split('-')[0]}"]
        return lines
    if name == "Makefile":
        return ["test:", "\tpytest -q", "", "lint:", "\truff check ."]
    if name == ".gitignore":
        return [".env", "*.pem", "__pycache__/", ".venv/", "mlruns/"]
    if name == "setup.cfg":
        return ["[flake8]", "max-line-length = 110", "", "[coverage:run]", "branch = true"]
    return [f"# {project}", "", f"Models for {project}. See docs/ for the changelog.", ""]
