"""The text of the synthetic repository's files, and the lines that hold the planted secrets.

Each maker takes the seeded generator, the secrets planted in that file and the file's path, returns
its lines, and records on each secret where it put it (1-based line spans; for notebooks the cell,
the output and the line within that text). Secret values come from the caller; this module writes
only benign values, among them the placeholders that templates and tests use.
"""

from __future__ import annotations

import json
import random
import string
import uuid
from dataclasses import dataclass, field
from typing import Any

ALNUM = string.ascii_letters + string.digits
PLACEHOLDER = "changeme"
HEXDIGITS = "0123456789abcdef"
# AWS's documented example credentials, assembled so this file holds no key-shaped literal.
AWS_DOC_KEY_ID = "AK" + "IAIOSFODNN7" + "EXAMPLE"
AWS_DOC_SECRET = "".join(("wJalrXUtnFEMI/K7MDENG/", "bPxRfiCY", "EXAMPLEKEY"))
PACKAGES = (
    "numpy pandas scikit-learn torch torchvision transformers tokenizers datasets pyarrow fastapi uvicorn "
    "pydantic requests boto3 botocore s3fs mlflow optuna lightgbm xgboost matplotlib seaborn scipy tqdm "
    "sqlalchemy psycopg2-binary redis celery pyyaml jinja2 click rich httpx onnx onnxruntime"
).split()
NAMES = "features model labels scores batch frame table sample metrics weights config dataset".split()


@dataclass(frozen=True, slots=True)
class Spot:
    """Lines `first`..`last` (1-based) of a file, or of one text of a notebook: a cell's source
    (`output` None) or the text of its `output` (1-based)."""

    first: int
    last: int
    cell: int | None = None
    output: int | None = None


@dataclass
class Planted:
    """One planted secret: what it is, where it went (`spots`; `raw_lines` for a notebook's JSON)."""

    ident: str
    kind: str
    place: str
    value: str
    variant: str = "plain"
    file: str = ""
    spots: list[Spot] = field(default_factory=list)
    raw_lines: list[int] = field(default_factory=list)

    def needles(self) -> list[str]:
        """Text that marks this secret on a raw line: the value, each line of a key block, or the two
        halves of a value split across JSON strings."""
        if self.kind == "private-key":
            return [line for line in self.value.splitlines() if line.strip()]
        if self.variant == "split across strings":
            half = len(self.value) // 2
            return [self.value[:half], self.value[half:]]
        return [self.value]


def chars(rng: random.Random, alphabet: str, count: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(count))


def hex_text(rng: random.Random, count: int) -> str:
    return chars(rng, HEXDIGITS, count)


def uuid_text(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def version_text(rng: random.Random) -> str:
    return f"{rng.randint(0, 4)}.{rng.randint(0, 30)}.{rng.randint(0, 12)}"


def project_of(rel: str) -> str:
    return rel.split("/")[1] if rel.startswith("projects/") else "core"


def _place(
    head: list[str],
    blocks: list[list[str]],
    marked: list[tuple[Planted, list[str], int, int]],
    rng: random.Random,
) -> list[str]:
    """Blocks in order with each secret's block put at a random place among them; the spans recorded."""
    items: list[tuple[list[str], tuple[Planted, int, int] | None]] = [(b, None) for b in blocks]
    for secret, block, first, last in marked:
        items.insert(rng.randint(0, len(items)), (block, (secret, first, last)))
    lines = list(head)
    for block, mark in items:
        if mark is not None:
            secret, first, last = mark
            secret.spots.append(Spot(len(lines) + 1 + first, len(lines) + 1 + last))
        lines.extend(block)
    return lines


def _one(lines: list[str], value: str) -> tuple[list[str], int, int]:
    """A block whose single ``{v}`` line holds the value."""
    at = next(i for i, line in enumerate(lines) if "{v}" in line)
    return [line.replace("{v}", value) for line in lines], at, at


# -- python ---------------------------------------------------------------------------------------

_CODE_FORMS: dict[str, list[list[str]]] = {
    "aws-access-key-id": [
        ['AWS_ACCESS_KEY_ID = "{v}"', ""],
        [
            "def _s3_client():",
            "    return boto3.client(",
            '        "s3",',
            '        aws_access_key_id="{v}",',
            '        region_name="eu-west-1",',
            "    )",
            "",
        ],
    ],
    "aws-secret-key": [
        ['AWS_SECRET_ACCESS_KEY = "{v}"', ""],
        [
            "STORAGE_OPTIONS = {",
            '    "key": os.environ.get("S3_KEY_ID"),',
            '    "aws_secret_access_key": "{v}",',
            "}",
            "",
        ],
    ],
    "github-token": [
        ['GITHUB_TOKEN = "{v}"', ""],
        ["def _headers() -> dict[str, str]:", '    return {"Authorization": "token {v}"}', ""],
    ],
    "gitlab-token": [
        ['gl = gitlab.Gitlab("https://git.corp.internal", private_token="{v}")', ""],
        ['GITLAB_TOKEN = "{v}"', ""],
    ],
    "slack-token": [['SLACK_BOT_TOKEN = "{v}"', ""], ['slack = WebClient(token="{v}")', ""]],
    "stripe-key": [['stripe.api_key = "{v}"', ""], ['STRIPE_SECRET_KEY = "{v}"', ""]],
    "db-url-password": [
        ['DATABASE_URL = "postgresql://mlflow:{v}@db.corp.internal:5432/mlflow"', ""],
        ['engine = create_engine("mysql+pymysql://etl:{v}@warehouse.corp.internal/features")', ""],
    ],
    "jwt": [['SERVICE_JWT = "{v}"', ""], ['HEADERS = {"Authorization": "Bearer {v}"}', ""]],
    "secret-assignment": [
        ['db_password = "{v}"', ""],
        ['API_SECRET = "{v}"', ""],
        ["auth = OAuth2Session(", '    client_id="ml-batch",', '    client_secret="{v}",', ")", ""],
    ],
}


def code_block(secret: Planted, rng: random.Random) -> tuple[list[str], int, int]:
    """Python lines holding the secret, and the span (0-based, in the block) it takes."""
    if secret.kind == "private-key":
        pem = secret.value.splitlines()
        name = rng.choice(("SIGNING_KEY_PEM", "DEPLOY_KEY", "_TLS_KEY"))
        return [f'{name} = """{pem[0]}', *pem[1:], '"""', ""], 0, len(pem) - 1
    return _one(rng.choice(_CODE_FORMS[secret.kind]), secret.value)


_FUNCS = (
    [
        "def {fn}(frame: pd.DataFrame, column: str = {col!r}) -> pd.DataFrame:",
        '    """Standardise one column in place of the raw values."""',
        "    out = frame.copy()",
        "    out[column] = (out[column] - out[column].mean()) / (out[column].std() + 1e-8)",
        "    return out",
    ],
    [
        "def {fn}(scores: np.ndarray, labels: np.ndarray, threshold: float = 0.5) -> dict[str, float]:",
        "    predicted = scores >= threshold",
        "    tp = float(np.sum(predicted & (labels == 1)))",
        "    fp = float(np.sum(predicted & (labels == 0)))",
        "    fn = float(np.sum(~predicted & (labels == 1)))",
        '    return {"precision": tp / max(tp + fp, 1.0), "recall": tp / max(tp + fn, 1.0)}',
    ],
    [
        "def {fn}(model: torch.nn.Module, loader, optimizer, epochs: int = {n}) -> list[float]:",
        "    losses = []",
        "    for epoch in range(epochs):",
        "        for batch, target in loader:",
        "            optimizer.zero_grad()",
        "            loss = torch.nn.functional.cross_entropy(model(batch), target)",
        "            loss.backward()",
        "            optimizer.step()",
        "        losses.append(float(loss))",
        '        logger.info("epoch %d loss %.4f", epoch, losses[-1])',
        "    return losses",
    ],
    [
        "def {fn}(path: Path) -> dict[str, Any]:",
        '    with path.open(encoding="utf-8") as handle:',
        "        config = yaml.safe_load(handle)",
        '    config.setdefault("seed", {n})',
        '    config["password"] = os.environ["DB_PASSWORD"]',
        "    return config",
    ],
    [
        "class {cls}:",
        '    """Keeps the running mean and variance of a stream of batches."""',
        "",
        "    def __init__(self, width: int) -> None:",
        "        self.count = 0",
        "        self.mean = np.zeros(width)",
        "        self.m2 = np.zeros(width)",
        "",
        "    def update(self, batch: np.ndarray) -> None:",
        "        for row in batch:",
        "            self.count += 1",
        "            delta = row - self.mean",
        "            self.mean += delta / self.count",
        "            self.m2 += delta * (row - self.mean)",
    ],
    [
        "def {fn}(client, bucket: str = {col!r}) -> list[str]:",
        '    api_key = os.getenv("FEATURE_STORE_API_KEY")',
        '    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket)',
        '    return [item["Key"] for page in pages for item in page.get("Contents", [])]',
    ],
)


def _fill(line: str, values: dict[str, Any]) -> str:
    """The template line with ``{name}`` (``{name!r}`` quoted) replaced; other braces are code."""
    for key, value in values.items():
        line = line.replace("{" + key + "!r}", repr(value)).replace("{" + key + "}", str(value))
    return line


def _benign_constants(rng: random.Random, rel: str) -> list[list[str]]:
    out = []
    if rng.random() < 0.35:
        out.append([f'RUN_ID = "{uuid_text(rng)}"', f'MODEL_SHA256 = "{hex_text(rng, 64)}"', ""])
    if rng.random() < 0.25:
        out.append([f'BASELINE_COMMIT = "{hex_text(rng, 40)}"', 'TOKEN_ENV = "FEATURE_STORE_TOKEN"', ""])
    if rng.random() < 0.06:
        files = ("train.parquet", "valid.parquet", "test.parquet")
        out.append(
            ["EXPECTED_CHECKSUMS = {", *[f'    "{f}": "{hex_text(rng, 64)}",' for f in files], "}", ""]
        )
    if rng.random() < 0.03:
        golden = __import__("base64").b64encode(rng.randbytes(48)).decode()
        out.append([f'_GOLDEN_EMBEDDING_B64 = "{golden}"', ""])
    out.append([f'ARTIFACT_URI = "s3://ml-artifacts/{project_of(rel)}/models/{hex_text(rng, 12)}"', ""])
    return out


def python_module(rng: random.Random, here: list[Planted], rel: str) -> list[str]:
    head = [f'"""{rng.choice(NAMES).capitalize()} utilities for the {project_of(rel)} models."""', ""]
    head += [
        "from __future__ import annotations",
        "",
        "import logging",
        "import os",
        "from pathlib import Path",
    ]
    head += [
        "from typing import Any",
        "",
        "import numpy as np",
        "import pandas as pd",
        "import torch",
        "import yaml",
    ]
    head += ["", "logger = logging.getLogger(__name__)", ""]
    blocks = _benign_constants(rng, rel)
    for _ in range(rng.randint(3, 8)):
        template = rng.choice(_FUNCS)
        fmt = {"fn": f"{rng.choice(('load', 'fit', 'score', 'build', 'scale'))}_{rng.choice(NAMES)}"}
        fmt |= {
            "cls": f"Running{rng.choice(NAMES).capitalize()}",
            "col": rng.choice(NAMES),
            "n": rng.randint(2, 64),
        }
        blocks.append([_fill(line, fmt) for line in template] + ["", ""])
    return _place(head, blocks, [(s, *code_block(s, rng)) for s in here], rng)


def _assign(name: str, value: str) -> str:
    """``NAME = "value"``, assembled so that this file holds no assignment a secrets scanner flags."""
    return f'{name} = "{value}"'


def test_module(rng: random.Random, here: list[Planted], rel: str) -> list[str]:
    head = ['"""Tests for the data and serving helpers."""', "", "import pytest", ""]
    fixtures = [
        [_assign("PLACEHOLDER_PASSWORD", PLACEHOLDER), _assign("TOKEN", "<your-token>"), ""],
        [f'AWS_KEY_ID = "{AWS_DOC_KEY_ID}"', f'AWS_SECRET = "{AWS_DOC_SECRET}"', ""],
        [
            "def test_login_with_placeholder(client):",
            f'    assert client.login("alice", password="{PLACEHOLDER}")',
            "",
        ],
        [
            "def test_rejects_empty_token():",
            "    with pytest.raises(ValueError):",
            '        Settings(token="")',
            "",
        ],
        [_assign("TEST_DSN", "postgresql://" + ":".join(("user", "password")) + "@localhost:5432/test"), ""],
        ["def test_header(api):", '    api.headers["Authorization"] = "Bearer xxxxxxxxxxxx"', ""],
        [_assign("API_KEY", "test-api-key"), _assign("secret", "dummy-secret-value"), ""],
    ]
    blocks = rng.sample(fixtures, rng.randint(2, 4))
    if rng.random() < 0.08:
        blocks.append([_assign("LEGACY_PASSWORD", "hunter2"), ""])
    if rng.random() < 0.05:
        head_b64 = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
        claims = (
            __import__("base64")
            .urlsafe_b64encode(json.dumps({"sub": "test-user"}, separators=(",", ":")).encode())
            .decode()
        )
        blocks.append([f'FIXTURE_JWT = "{head_b64}.{claims.rstrip("=")}.{chars(rng, ALNUM, 43)}"', ""])
    for number in range(rng.randint(2, 6)):
        blocks.append(
            [
                f"def test_{rng.choice(NAMES)}_{number}(tmp_path):",
                f"    frame = make_frame(rows={rng.randint(5, 500)})",
                "    assert len(frame) > 0",
                "",
            ]
        )
    return _place(head, blocks, [], rng)


# -- yaml, env ------------------------------------------------------------------------------------

_YAML_FORMS: dict[str, list[list[str]]] = {
    "aws-access-key-id": [["storage:", "  backend: s3", "  aws_access_key_id: {v}", "  region: eu-west-1"]],
    "aws-secret-key": [["storage:", "  bucket: ml-artifacts", '  aws_secret_access_key: "{v}"']],
    "github-token": [["github:", "  repo: ml/models", "  token: {v}"]],
    "gitlab-token": [["gitlab:", "  url: https://git.corp.internal", "  private_token: {v}"]],
    "slack-token": [["alerts:", "  channel: '#ml-alerts'", '  bot_token: "{v}"']],
    "stripe-key": [["billing:", "  provider: stripe", "  secret_key: {v}"]],
    "db-url-password": [
        ["tracking:", "  backend_store_uri: postgresql://mlflow:{v}@db.corp.internal:5432/mlflow"]
    ],
    "jwt": [["serving:", "  endpoint: https://serve.corp.internal/v1", '  auth_header: "Bearer {v}"']],
    "secret-assignment": [
        ["database:", "  user: etl", "  password: {v}"],
        ["oauth:", '  client_secret: "{v}"'],
    ],
}


def _unique_key(block: list[str], used: set[str]) -> list[str]:
    key = block[0].rstrip(":")
    name, number = key, 2
    while name in used:
        name, number = f"{key}_{number}", number + 1
    used.add(name)
    return [f"{name}:", *block[1:]]


def yaml_config(rng: random.Random, here: list[Planted], rel: str) -> list[str]:
    project = project_of(rel)
    used = {"experiment", "data", "model", "trainer", "image", "logging"}
    blocks = [
        [
            "experiment:",
            f"  name: {project}-{rng.choice(NAMES)}",
            f"  run_id: {uuid_text(rng)}",
            f"  seed: {rng.randint(0, 99)}",
        ],
        ["data:", f"  path: s3://ml-data/{project}/v{rng.randint(1, 9)}", f'  sha256: "{hex_text(rng, 64)}"'],
        [
            "model:",
            f"  arch: {rng.choice(('resnet50', 'bert-base', 'lgbm', 'tft'))}",
            f"  dropout: 0.{rng.randint(0, 5)}",
        ],
        [
            "trainer:",
            f"  lr: {rng.choice(('3e-4', '1e-3', '0.01'))}",
            f"  batch_size: {rng.choice((32, 64, 256))}",
        ],
        [
            "image:",
            f"  ref: registry.corp.internal/ml/{project}@sha256:{hex_text(rng, 64)}",
            f"  commit: {hex_text(rng, 40)}",
        ],
        [
            "logging:",
            "  level: info",
            "  api_key: ${WANDB_API_KEY}",
            '  password: "{{ .Values.db.password }}"',
        ],
    ]
    blocks = [[*b, ""] for b in rng.sample(blocks, rng.randint(3, len(blocks)))]
    marked = []
    for secret in here:
        if secret.kind == "private-key":
            pem = ["    " + line for line in secret.value.splitlines()]
            block = _unique_key(["tls:", "  cert_file: /etc/ssl/certs/serving.crt", "  key: |", *pem], used)
            marked.append((secret, [*block, ""], 2, len(block) - 1))
        else:
            lines, first, last = _one(rng.choice(_YAML_FORMS[secret.kind]), secret.value)
            marked.append((secret, [*_unique_key(lines, used), ""], first, last))
    return _place([f"# {project} training configuration", ""], blocks, marked, rng)


_ENV_NAMES = {
    "aws-access-key-id": "AWS_ACCESS_KEY_ID",
    "aws-secret-key": "AWS_SECRET_ACCESS_KEY",
    "github-token": "GITHUB_TOKEN",
    "gitlab-token": "GITLAB_TOKEN",
    "slack-token": "SLACK_BOT_TOKEN",
    "stripe-key": "STRIPE_SECRET_KEY",
    "jwt": "SERVING_JWT",
    "secret-assignment": "DB_PASSWORD",
}


def env_file(rng: random.Random, here: list[Planted], rel: str) -> list[str]:
    if rel.endswith(".example"):
        lines = ["# copy to .env and fill in", "OPENAI_API_KEY=<your-key>", "DB_PASSWORD=changeme"]
        lines += [f"AWS_ACCESS_KEY_ID={AWS_DOC_KEY_ID}", f"AWS_SECRET_ACCESS_KEY={AWS_DOC_SECRET}"]
        blocks = [[line] for line in lines]
    else:
        blocks = [
            ["LOG_LEVEL=info"],
            [f"MODEL_DIR=/models/{project_of(rel)}"],
            [f"PORT={rng.choice((8000, 8080, 9000))}", f"WORKERS={rng.randint(1, 8)}"],
            ["MLFLOW_TRACKING_URI=http://mlflow:5000"],
            [f"RUN_ID={uuid_text(rng)}", f"GIT_SHA={hex_text(rng, 40)}"],
        ]
    marked = []
    for secret in here:
        if secret.kind == "private-key":
            pem = secret.value.splitlines()
            marked.append(
                (secret, [f'SERVICE_PRIVATE_KEY="{pem[0]}', *pem[1:-1], pem[-1] + '"'], 0, len(pem) - 1)
            )
        elif secret.kind == "db-url-password":
            marked.append(
                (secret, [f"DATABASE_URL=postgresql://app:{secret.value}@db.corp.internal/app"], 0, 0)
            )
        else:
            prefix = rng.choice(("", "", "export "))
            value = f'"{secret.value}"' if rng.random() < 0.3 else secret.value
            marked.append((secret, [f"{prefix}{_ENV_NAMES[secret.kind]}={value}"], 0, 0))
    return _place([], blocks, marked, rng)
