"""A synthetic machine-learning repository with planted secrets, and the truth of where each one is.

`build_tree` writes a monorepo of ML projects (modules, tests, YAML configs, env files, Jupyter
notebooks with outputs, requirements with hashes, poetry and uv lock files, CycloneDX SBOMs, markdown
docs, CSV data, PNG images) from one seed, and plants secrets in it. Every secret value is drawn at run
time from the seed (private keys are real EC and Ed25519 keys derived from it); none is written in this
file, and the shapes that scanners look for are assembled from pieces. The benign content carries what
makes secret scanners noisy: UUIDs, labelled digests, commit ids, package hashes, base64 images in
notebook outputs, and the placeholder credentials of tests and templates.

A planted secret is known by its `spots`: line spans of the file, or for a notebook the cell, the
output (None for the cell's source) and the line span within that text as nbformat joins it (a
traceback's entries joined by newlines). `raw_lines` are the lines of the notebook's JSON file that hold
the value (or, for a value split across two JSON strings, either part), for tools that read the file
as plain lines.
"""

from __future__ import annotations

import base64
import json
import random
import string
import struct
import uuid
import zlib
from dataclasses import dataclass
from pathlib import Path

from _secrets_content import (
    ALNUM,
    Planted,
    chars,
    env_file,
    python_module,
    test_module,
    yaml_config,
)
from _secrets_noise import csv_file, doc_file, lock_files, other_files, sbom_file
from _secrets_notebook import notebook_cells
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

KINDS = (
    "aws-access-key-id",
    "aws-secret-key",
    "github-token",
    "gitlab-token",
    "slack-token",
    "stripe-key",
    "private-key",
    "db-url-password",
    "jwt",
    "secret-assignment",
)
PLACES = ("code", "yaml", "env", "notebook source", "notebook output")
PROJECTS = ("vision", "ranking", "forecast", "intent", "fraud", "recsys", "speech", "churn", "ocr", "pricing")


@dataclass
class Tree:
    root: Path
    files: list[str]
    planted: list[Planted]
    bytes: int = 0


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _private_key(rng: random.Random) -> str:
    style = rng.choice(("ec-traditional", "ec-pkcs8", "ed25519-pkcs8"))
    key: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
    if style == "ed25519-pkcs8":
        key = ed25519.Ed25519PrivateKey.from_private_bytes(rng.randbytes(32))
    else:
        # A scalar just below 2**(bits - 1), under the group order of either curve.
        curve = ec.SECP256R1() if rng.random() < 0.6 else ec.SECP384R1()
        key = ec.derive_private_key(
            rng.randrange(2 ** (curve.key_size - 2), 2 ** (curve.key_size - 1)), curve
        )
    fmt = (
        serialization.PrivateFormat.TraditionalOpenSSL
        if style == "ec-traditional"
        else serialization.PrivateFormat.PKCS8
    )
    pem = key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption())
    return pem.decode().strip()


def make_value(kind: str, rng: random.Random) -> str:
    """A fresh random value of a kind, in that kind's published shape."""
    digits = string.digits
    if kind == "aws-access-key-id":
        return "AK" + "IA" + chars(rng, string.ascii_uppercase + "234567", 16)
    if kind == "aws-secret-key":
        return chars(rng, ALNUM + "/+", 40)
    if kind == "github-token":
        return "gh" + "p_" + chars(rng, ALNUM, 36)
    if kind == "gitlab-token":
        return "gl" + "pat-" + chars(rng, ALNUM + "_-", 20)
    if kind == "slack-token":
        return (
            "xo" + "xb-" + chars(rng, digits, 12) + "-" + chars(rng, digits, 13) + "-" + chars(rng, ALNUM, 24)
        )
    if kind == "stripe-key":
        return "sk" + "_live_" + chars(rng, ALNUM, 24)
    if kind == "private-key":
        return _private_key(rng)
    if kind == "db-url-password":
        return chars(rng, ALNUM, rng.randint(14, 20))
    if kind == "jwt":
        compact = (",", ":")
        header = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=compact).encode())
        claims = {"sub": f"svc-{chars(rng, digits, 6)}", "iat": 1_700_000_000 + rng.randrange(10**7)}
        claims["exp"] = claims["iat"] + 86_400 * 90
        body = _b64url(json.dumps(claims, separators=compact).encode())
        return f"{header}.{body}.{_b64url(rng.randbytes(32))}"
    if kind == "secret-assignment":
        if rng.random() < 0.5:
            return chars(rng, ALNUM, rng.randint(24, 32))
        words = ("Falcon", "Harbor", "Quartz", "Meadow", "Copper", "Lantern", "Orbit", "Juniper", "Basalt")
        return f"{rng.choice(words)}-{rng.choice(words)}-{rng.randint(1000, 9999)}{rng.choice('!#%&@')}"
    raise ValueError(f"{kind}: unknown kind")


def png_base64(rng: random.Random) -> str:
    """A small real PNG (noisy RGB bars, like a saved plot) as notebooks store it."""
    width, height = rng.randint(48, 80), rng.randint(32, 56)
    rows = bytearray()
    for y in range(height):
        rows.append(0)
        for x in range(width):
            level = 255 if (x // 8 + y // 8) % 2 else rng.randrange(256)
            rows.extend((level, rng.randrange(256), (x * 3 + y) % 256))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    head = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", head) + chunk(b"IDAT", zlib.compress(bytes(rows)))
    return base64.b64encode(png + chunk(b"IEND", b"")).decode()


def _plan(count: int, rng: random.Random) -> list[Planted]:
    """`count` secrets cycling through every (kind, place) pair, with notebook variants: cells stored
    as one JSON string, and outputs whose text splits the value across two JSON strings."""
    pairs = [(k, p) for k in KINDS for p in PLACES]
    rng.shuffle(pairs)
    planted = []
    for number in range(count):
        kind, place = pairs[number % len(pairs)]
        secret = Planted(f"S{number + 1:03d}", kind, place, make_value(kind, rng))
        planted.append(secret)
    splittable = [s for s in planted if s.place == "notebook output" and s.kind != "private-key"]
    for secret in splittable[: max(1, count // 15)]:
        secret.variant = "split across strings"
    sources = [s for s in planted if s.place == "notebook source"]
    for secret in sources[: max(1, count // 15)]:
        secret.variant = "one-string cell"
    return planted


def _hosts(pool: list[str], wanted: list[Planted], rng: random.Random) -> dict[str, list[Planted]]:
    """Spread the secrets over distinct files of the pool where there are enough."""
    chosen: dict[str, list[Planted]] = {}
    order = rng.sample(pool, len(pool))
    for index, secret in enumerate(wanted):
        chosen.setdefault(order[index % len(order)], []).append(secret)
    return chosen


def _layout(files: int, rng: random.Random) -> dict[str, list[str]]:
    """Relative paths per category, about `files` in all."""
    projects = PROJECTS[: max(1, min(len(PROJECTS), files // 200))]
    share = {"code": 0.36, "tests": 0.10, "yaml": 0.12, "env": 0.015, "notebook": 0.07, "docs": 0.10}
    share |= {"csv": 0.10, "image": 0.01}
    out: dict[str, list[str]] = {k: [] for k in (*share, "lock", "sbom", "other")}
    for name in projects:
        base = f"projects/{name}"
        out["other"] += [f"{base}/pyproject.toml", f"{base}/Dockerfile", f"{base}/README.md"]
        out["lock"] += [f"{base}/requirements.txt", f"{base}/requirements-dev.txt"]
        out["lock"].append(f"{base}/{'poetry.lock' if len(out['lock']) % 4 else 'uv.lock'}")
        out["sbom"].append(f"{base}/sbom.cdx.json")
    out["other"] += [".pre-commit-config.yaml", "Makefile", ".gitignore", "setup.cfg", "README.md"]
    fixed = sum(len(v) for v in out.values())
    budget = max(files - fixed, len(share) * 2)
    folders = {
        "code": "src/{pkg}/{sub}",
        "tests": "tests",
        "yaml": "configs",
        "env": "",
        "notebook": "notebooks",
        "docs": "docs",
        "csv": "data/{sub}",
        "image": "docs/img",
    }
    suffix = {"code": ".py", "tests": ".py", "yaml": ".yaml", "notebook": ".ipynb", "docs": ".md"}
    suffix |= {"csv": ".csv", "image": ".png"}
    subs = ("features", "models", "training", "serving", "evaluation", "io", "utils", "pipelines")
    stems = ("loader", "metrics", "schema", "transform", "train", "predict", "encoder", "sampler", "report")
    for category, part in share.items():
        for number in range(max(2, round(budget * part / sum(share.values())))):
            project = projects[number % len(projects)]
            sub = subs[(number // len(projects)) % len(subs)]
            if category == "env":
                names = (".env", "deploy/staging.env", "deploy/prod.env", ".env.example", "docker/app.env")
                base = f"projects/{project}/services/svc{number // (len(projects) * 5)}"
                out[category].append(f"{base}/{names[(number // len(projects)) % len(names)]}")
                continue
            folder = folders[category].format(pkg=project.replace("-", "_"), sub=sub)
            stem = "test_" if category == "tests" else ""
            stem += f"{rng.choice(stems)}_{number:04d}"
            out[category].append(f"projects/{project}/{folder}/{stem}{suffix[category]}")
    return out


def build_tree(root: Path, *, files: int, secrets: int, seed: int) -> Tree:
    """Write the repository under `root` and return where every planted secret is."""
    rng = random.Random(seed)  # noqa: S311  # reproducible content, not cryptography
    layout = _layout(files, rng)
    planted = _plan(secrets, rng)
    pools = {"code": "code", "yaml": "yaml", "env": "env", "notebook source": "notebook"}
    pools["notebook output"] = "notebook"
    hosts: dict[str, list[Planted]] = {}
    for place, category in pools.items():
        for rel, found in _hosts(layout[category], [s for s in planted if s.place == place], rng).items():
            hosts.setdefault(rel, []).extend(found)
    total = 0
    for category, paths in layout.items():
        for rel in paths:
            here = hosts.get(rel, [])
            for secret in here:
                secret.file = rel
            data = _render(category, rel, here, rng)
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            total += len(data)
            if category == "notebook":
                _raw_lines(data.decode(), here)
    everything = sorted(p for paths in layout.values() for p in paths)
    return Tree(root=root, files=everything, planted=planted, bytes=total)


def _render(category: str, rel: str, here: list[Planted], rng: random.Random) -> bytes:
    if category == "image":
        return base64.b64decode(png_base64(rng))
    if category == "notebook":
        doc = {
            "cells": notebook_cells(rng, here, png_base64, uuid.UUID(int=rng.getrandbits(128))),
            "metadata": {
                "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
                "language_info": {"name": "python", "version": "3.11.7"},
            },
            "nbformat": 4,
            "nbformat_minor": 5,
        }
        # As Jupyter writes a notebook: one-space indent, keys sorted, non-ASCII kept.
        return (json.dumps(doc, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode()
    makers = {
        "code": python_module,
        "tests": test_module,
        "yaml": yaml_config,
        "env": env_file,
        "docs": doc_file,
        "csv": csv_file,
        "sbom": sbom_file,
        "lock": lock_files,
        "other": other_files,
    }
    lines = makers[category](rng, here, rel)
    return ("\n".join(lines) + "\n").encode()


def _raw_lines(text: str, here: list[Planted]) -> None:
    lines = text.splitlines()
    for secret in here:
        marks = {m for n in secret.needles() for m in (n, json.dumps(n)[1:-1])}
        secret.raw_lines = [i for i, line in enumerate(lines, 1) if any(m in line for m in marks)]
