"""Fake secrets and the project trees that hold them, generated for the secrets tests.

Every secret here is made up: random characters from a seeded generator, shaped like a real credential
(an AWS access key id is ``AKIA`` and 16 upper-case letters and digits) so that the detectors see it, and
never valid anywhere. No secret is written literally in this file: each is assembled at run time, so the
repository itself holds nothing a scanner would flag.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipewarden.findings import Finding, Report

__all__ = [
    "FAKE",
    "Fake",
    "key_block",
    "notebook",
    "places",
    "problems_of",
    "secrets_of",
    "summary_of",
    "write",
    "write_benign",
    "write_planted",
]

_UPPER_DIGITS = string.ascii_uppercase + string.digits
_ALNUM = string.ascii_letters + string.digits
_BASE64 = _ALNUM + "+/"


def _random(seed: int, length: int, alphabet: str) -> str:
    rng = random.Random(seed)  # noqa: S311  # fake secrets must be reproducible, not unpredictable
    return "".join(rng.choice(alphabet) for _ in range(length))


@dataclass(frozen=True)
class Fake:
    """The made-up secrets planted in the test trees."""

    aws_key_id: str
    aws_secret: str
    github_token: str
    db_password: str
    yaml_password: str
    env_secret: str
    envrc_token: str
    toml_password: str
    notebook_key: str
    stream_password: str
    result_api_key: str
    error_password: str

    def values(self) -> list[str]:
        return [getattr(self, name) for name in self.__dataclass_fields__]


FAKE = Fake(
    aws_key_id="AK" + "IA" + _random(1, 16, _UPPER_DIGITS),
    aws_secret=_random(2, 40, _BASE64),
    github_token="gh" + "p_" + _random(3, 36, _ALNUM),
    db_password=_random(4, 20, _ALNUM),
    yaml_password=_random(5, 18, _ALNUM),
    env_secret=_random(6, 24, _ALNUM),
    envrc_token=_random(7, 32, _ALNUM),
    toml_password=_random(8, 22, _ALNUM),
    notebook_key="AK" + "IA" + _random(9, 16, _UPPER_DIGITS),
    stream_password=_random(10, 20, _ALNUM),
    result_api_key=_random(11, 32, _ALNUM),
    error_password=_random(12, 20, _ALNUM),
)


def secrets_of(report: Report) -> list[Finding]:
    return [f for f in report.findings if f.rule_id == "PW-SEC-101"]


def summary_of(report: Report) -> Finding:
    (summary,) = [f for f in report.findings if f.rule_id == "PW-SEC-200"]
    return summary


def places(report: Report) -> set[tuple[str, str, str]]:
    """(file, where in it, detector type) of each secret reported."""
    return {
        (f.location.path, f.location.member or f"line {f.location.row}", str(f.evidence["type"]))
        for f in secrets_of(report)
    }


def problems_of(report: Report) -> list[Finding]:
    """The files that could not be scanned, or not whole (PW-SEC-102)."""
    return [f for f in report.findings if f.rule_id == "PW-SEC-102"]


def key_block(seed: int, *, kind: str = "RSA") -> str:
    """A PEM block shaped like a private key; its body is random bytes, not a key."""
    body = base64.b64encode(random.Random(seed).randbytes(300)).decode()  # noqa: S311  # reproducible
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    label = f"{kind} PRIVATE" + " KEY"
    return "\n".join([f"-----BEGIN {label}-----", *lines, f"-----END {label}-----"]) + "\n"


def write(root: Path, name: str, text: str) -> Path:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def notebook(cells: list[dict[str, Any]], metadata: dict[str, Any] | None = None) -> str:
    """A notebook (nbformat 4) of `cells`; `metadata` goes into the notebook's beside its kernelspec."""
    kernel = {"kernelspec": {"name": "python3", "language": "python", "display_name": "Python 3"}}
    doc = {"cells": cells, "metadata": {**kernel, **(metadata or {})}, "nbformat": 4, "nbformat_minor": 5}
    return json.dumps(doc, indent=1)


def write_planted(root: Path, fake: Fake = FAKE) -> None:
    """One secret or more in each kind of file the scan reads (the tests name the expected places)."""
    write(
        root,
        "app/storage.py",
        "import boto3\n\n"
        f'client = boto3.client("s3", aws_access_key_id="{fake.aws_key_id}")\n'
        f'DB_PASSWORD = "{fake.db_password}"\n',
    )
    write(
        root,
        "deploy/values.yaml",
        "database:\n"
        "  host: db.internal\n"
        f"  password: {fake.yaml_password}\n"
        "aws:\n"
        f"  aws_secret_access_key: '{fake.aws_secret}'\n",
    )
    write(root, ".env", f"GITHUB_TOKEN={fake.github_token}\nSECRET_KEY={fake.env_secret}\n")
    write(root, ".envrc", f"export API_TOKEN={fake.envrc_token}\n")
    write(root, "settings.toml", f'[database]\nuser = "svc"\npassword = "{fake.toml_password}"\n')
    write(root, "keys/deploy.pem", key_block(1))
    write(
        root,
        "notebooks/explore.ipynb",
        notebook(
            [
                {"cell_type": "markdown", "metadata": {}, "source": ["# Exploring the data\n"]},
                {
                    "cell_type": "code",
                    "execution_count": 1,
                    "metadata": {},
                    "source": ["import boto3\n", f'key_id = "{fake.notebook_key}"\n'],
                    "outputs": [
                        {
                            "output_type": "stream",
                            "name": "stdout",
                            "text": ["connecting\n", f"password='{fake.stream_password}'\n"],
                        },
                        {
                            "output_type": "execute_result",
                            "execution_count": 1,
                            "metadata": {},
                            "data": {
                                "text/plain": [f"{{'user': 'svc', 'api_key': '{fake.result_api_key}'}}"],
                                "image/png": base64.b64encode(bytes(range(200))).decode(),
                            },
                        },
                    ],
                },
                {
                    "cell_type": "code",
                    "execution_count": 2,
                    "metadata": {},
                    "source": ["connect()\n"],
                    "outputs": [
                        {
                            "output_type": "error",
                            "ename": "ConnectionError",
                            "evalue": "refused",
                            "traceback": [
                                "\x1b[0;31mConnectionError\x1b[0m: refused",
                                f"\x1b[0;32mconfig\x1b[0m = {{'password': '{fake.error_password}'}}",
                            ],
                        }
                    ],
                },
            ]
        ),
    )


def write_benign(root: Path) -> None:
    """What holds hashes, commit ids and placeholders but no secret: nothing here may be reported."""
    digest = hashlib.sha256(b"numpy").hexdigest()
    other = hashlib.sha256(b"scipy").hexdigest()
    write(
        root,
        "requirements.txt",
        f"numpy==2.1.0 \\\n    --hash=sha256:{digest} \\\n    --hash=sha256:{other}\n"
        f"scipy==1.14.0 --hash=sha256:{other}\n",
    )
    lock_lines = []
    for n in range(40):
        name = f"pkg{n}"
        lock_lines += [
            "[[package]]",
            f'name = "{name}"',
            'version = "1.0.0"',
            f'sdist = {{ hash = "sha256:{hashlib.sha256(name.encode()).hexdigest()}" }}',
        ]
    write(root, "uv.lock", "\n".join(lock_lines) + "\n")
    write(root, "poetry.lock", "\n".join(lock_lines) + "\n")
    integrity = base64.b64encode(hashlib.sha512(b"left-pad").digest()).decode()
    write(
        root,
        "web/package-lock.json",
        json.dumps({"packages": {"node_modules/left-pad": {"integrity": f"sha512-{integrity}"}}}),
    )
    # Digests named as digests, in files that are not lock files.
    write(root, "hashes.toml", f'[artifacts]\nmodel = "sha256:{digest}"\nchecksum = "{other}"\n')
    sha = hashlib.sha1(b"a commit", usedforsecurity=False).hexdigest()
    write(
        root,
        ".pre-commit-config.yaml",
        f"repos:\n  - repo: local-hooks\n    rev: {sha}\n    hooks:\n      - id: lint\n",
    )
    write(root, "CHANGELOG.md", f"Fixed in commit {sha} (see also {sha[:12]}).\n")
    write(
        root,
        "tests/test_client.py",
        'def test_login():\n    password = "changeme"\n    api_key = "<your-key>"\n'
        '    token = "${API_TOKEN}"\n    secret = "your-secret-here"\n'
        '    aws_key = "AKIA' + 'IOSFODNN7EXAMPLE"\n'
        '    db_password = "not-a-real-password-41"\n'
        '    TOKEN_ENV = "SERVICE_API_TOKEN"  # the variable that holds it\n',
    )
    write(root, "config/example.env", "API_TOKEN=\nDB_PASSWORD=changeme\nSECRET_KEY=xxxxxxxx\n")
