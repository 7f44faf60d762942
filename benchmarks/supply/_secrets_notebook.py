"""Jupyter notebooks of the synthetic repository: cells with outputs, and secrets in sources and outputs.

Cells are written as Jupyter writes them (nbformat 4.5, sources as lists of lines); outputs are stream
text, an ``execute_result`` (text/plain, a DataFrame's text/html), ``display_data`` with a PNG plot and
an error with an IPython-coloured traceback. A secret in an output is placed in stream text, in an
``execute_result``'s repr, or in an error's value (and so in the traceback's last line).
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from typing import Any

from _secrets_content import NAMES, Planted, Spot, code_block, hex_text

ERR_ANSI = "\x1b[0;31m"
RESET = "\x1b[0m"


def _cell(
    source: list[str], outputs: list[dict[str, Any]], number: int, rng: random.Random, *, one: bool = False
):
    text = "\n".join(source)
    return {
        "cell_type": "code",
        "execution_count": number,
        "id": hex_text(rng, 8),
        "metadata": {},
        "outputs": outputs,
        # Jupyter stores a source as a list of lines, each but the last ending in a newline; other
        # writers store one string (nbformat allows both).
        "source": text if one else [line + "\n" for line in source[:-1]] + source[-1:],
    }


def _stream(lines: list[str]) -> dict[str, Any]:
    return {"name": "stdout", "output_type": "stream", "text": [line + "\n" for line in lines]}


_OUTPUT_LINES = {
    "aws-access-key-id": "{'bucket': 'ml-artifacts', 'aws_access_key_id': '{v}', 'region': 'eu-west-1'}",
    "aws-secret-key": "{'bucket': 'ml-artifacts', 'aws_secret_access_key': '{v}', 'region': 'eu-west-1'}",
    "github-token": "GITHUB_TOKEN={v}",
    "gitlab-token": "GITLAB_TOKEN={v}",
    "slack-token": "SLACK_BOT_TOKEN={v}",
    "stripe-key": "STRIPE_SECRET_KEY={v}",
    "jwt": "Authorization: Bearer {v}",
}
# Assembled so that this file holds no secret-named assignment a scanner flags.
_OUTPUT_LINES.update(
    [("db-url-password", "connecting to postgresql://mlflow:{v}@db.corp.internal:5432/mlflow")]
)
_OUTPUT_LINES["secret-assignment"] = "{'user': 'etl', 'api_" + "secret': '{v}', 'timeout': 30}"


def _secret_output(secret: Planted, rng: random.Random) -> tuple[str, dict[str, Any], list[tuple[int, int]]]:
    """A cell source, one output holding the secret, and the line spans of it in that output."""
    v = secret.value
    if secret.kind == "private-key":
        if rng.random() < 0.5:
            pem = v.splitlines()
            return 'print(open("keys/deploy.pem").read())', _stream(pem), [(1, len(pem))]
        text = repr(v + "\n")
        out = {
            "data": {"text/plain": [text]},
            "execution_count": 1,
            "metadata": {},
            "output_type": "execute_result",
        }
        return 'Path("keys/deploy.pem").read_text()', out, [(1, 1)]
    line = _OUTPUT_LINES[secret.kind].replace("{v}", v)
    if secret.variant == "split across strings":
        # One text split inside the value across two strings of the list, as a writer that flushes
        # output in chunks may store it.
        cut = line.index(v) + len(v) // 2
        text = ["epoch 3 done\n", line[:cut], line[cut:] + "\n", "saved\n"]
        return "print(settings)", {"name": "stdout", "output_type": "stream", "text": text}, [(2, 2)]
    style = rng.choice(("stream", "result", "error"))
    if style == "stream":
        before = ["loading settings", "LOG_LEVEL=info"][: rng.randint(0, 2)]
        return (
            "!cat ../.env" if "=" in line else "print(settings)",
            _stream([*before, line]),
            [(len(before) + 1,) * 2],
        )
    if style == "result":
        plain = f"Settings(name='{rng.choice(NAMES)}', secret={line!r}, retries=3)"
        out = {
            "data": {"text/plain": [plain]},
            "execution_count": 1,
            "metadata": {},
            "output_type": "execute_result",
        }
        return "settings", out, [(1, 1)]
    evalue = f"could not use {line}"
    frames = [
        ERR_ANSI + "-" * 75 + RESET,
        f"{ERR_ANSI}ConnectionError{RESET}                           Traceback (most recent call last)",
        "Cell \x1b[0;32mIn[4], line 2\x1b[0m\n"
        "\x1b[1;32m      1\x1b[0m client \x1b[38;5;241m=\x1b[39m connect()\n"
        "\x1b[0;32m----> 2\x1b[0m client\x1b[38;5;241m.\x1b[39mping()",
        f"{ERR_ANSI}ConnectionError{RESET}: {evalue}",
    ]
    out = {"ename": "ConnectionError", "evalue": evalue, "output_type": "error", "traceback": frames}
    last = len("\n".join(frames).splitlines())
    return "client.ping()", out, [(1, 1), (last, last)]


def notebook_cells(
    rng: random.Random, here: list[Planted], png: Callable[[random.Random], str], run: uuid.UUID
) -> list[dict[str, Any]]:
    """The cells of one notebook; each planted secret gets its own cell, at a random place."""
    frame = "\n".join(
        ["   id  feature_a  feature_b  label"]
        + [f"{i:>5}  {rng.random():9.4f}  {rng.random():9.4f}  {rng.randint(0, 1):>5}" for i in range(5)]
    )
    cells: list[Any] = [
        {
            "cell_type": "markdown",
            "id": hex_text(rng, 8),
            "metadata": {},
            "source": ["# Exploration\n", "Notes."],
        },
        [
            "import pandas as pd",
            "import matplotlib.pyplot as plt",
            'df = pd.read_parquet("s3://ml-data/x.parquet")',
        ],
        ("df.head()", {"data": {"text/plain": [frame], "text/html": ["<table>...</table>"]}}),
        ("train(model)", _stream([f"epoch {e}/5 - loss: {rng.random():.4f}" for e in range(1, 6)])),
        ("print(run.info)", _stream([f"run id: {run}", f"model sha256: {hex_text(rng, 64)}"])),
    ]
    for _ in range(rng.randint(1, 3)):
        data = {"image/png": png(rng), "text/plain": ["<Figure size 640x480 with 1 Axes>"]}
        cells.insert(rng.randint(2, len(cells)), ("plt.plot(history)", {"data": data, "display": True}))
    if rng.random() < 0.3:
        tb = [f"{ERR_ANSI}KeyError{RESET}: 'label'"]
        cells.append(("df['label']", {"ename": "KeyError", "evalue": "'label'", "traceback": tb}))
    for secret in here:
        cells.insert(rng.randint(2, len(cells)), secret)
    out = []
    for number, item in enumerate(cells, 1):
        if isinstance(item, dict):
            out.append(item)
        elif isinstance(item, list):
            out.append(_cell(item, [], number, rng))
        elif isinstance(item, tuple):
            source, output = item
            if "image/png" in output.get("data", {}):
                output = {"data": output["data"], "metadata": {}, "output_type": "display_data"}
            elif "data" in output:
                output = {
                    **output,
                    "execution_count": number,
                    "metadata": {},
                    "output_type": "execute_result",
                }
            elif "ename" in output:
                output = {**output, "output_type": "error"}
            out.append(_cell([source], [output], number, rng))
        elif item.place == "notebook source":
            lines, first, last = code_block(item, rng)
            source = ["import boto3", *lines[:-1], "client = make_client()"]
            item.spots.append(Spot(first + 2, last + 2, cell=number))
            out.append(_cell(source, [], number, rng, one=item.variant == "one-string cell"))
        else:
            source, output, spans = _secret_output(item, rng)
            if output["output_type"] == "execute_result":
                output["execution_count"] = number
            item.spots.extend(Spot(a, b, cell=number, output=1) for a, b in spans)
            out.append(_cell([source], [output], number, rng))
    return out
