"""The whole command line against a workspace whose store is a bucket on a real S3 HTTP endpoint."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.s3server import S3_ENV, s3_server

CLI = [sys.executable, "-m", "pipewarden.cli"]


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    with s3_server() as url:
        import boto3

        boto3.client(
            "s3",
            endpoint_url=url,
            region_name="us-east-1",
            aws_access_key_id=S3_ENV["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=S3_ENV["AWS_SECRET_ACCESS_KEY"],
        ).create_bucket(Bucket="ml-artifacts")
        yield url


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        env={**os.environ, **S3_ENV, "PIPEWARDEN_ACTOR": "ci"},
        timeout=120,
    )


def test_init_put_get_verify_rotate_over_s3(endpoint: str, tmp_path: Path) -> None:
    init = run(
        "init",
        "--backend",
        "s3",
        "--s3-bucket",
        "ml-artifacts",
        "--s3-prefix",
        "team-a",
        "--s3-endpoint-url",
        endpoint,
        "--s3-region",
        "us-east-1",
        cwd=tmp_path,
    )
    assert init.returncode == 0, init.stderr
    data = tmp_path / "train.csv"
    data.write_bytes(b"x,y\n" + b"1,0\n" * 100_000)
    assert run("store", "put", "train.csv", "--name", "data/train", cwd=tmp_path).returncode == 0
    assert run("store", "put", "train.csv", "--name", "data/train", cwd=tmp_path).returncode == 0
    got = run("store", "get", "data/train@2", "-o", "copy.csv", cwd=tmp_path)
    assert got.returncode == 0, got.stderr
    assert (tmp_path / "copy.csv").read_bytes() == data.read_bytes()
    assert "checked 2 version(s): 0 failed" in run("store", "verify", cwd=tmp_path).stdout
    assert run("keys", "rotate", cwd=tmp_path).returncode == 0
    assert run("store", "verify", "data/train", cwd=tmp_path).returncode == 0

    import boto3

    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=S3_ENV["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=S3_ENV["AWS_SECRET_ACCESS_KEY"],
    )
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="ml-artifacts")["Contents"]]
    assert all(k.startswith("team-a/") for k in keys)
    body_key = next(k for k in keys if "/blobs/sha256/" in k)
    body = s3.get_object(Bucket="ml-artifacts", Key=body_key)["Body"].read()
    assert b"1,0\n1,0\n" not in body  # encrypted at rest
    s3.put_object(Bucket="ml-artifacts", Key=body_key, Body=body[:-1])
    bad = run("store", "verify", cwd=tmp_path)
    assert bad.returncode == 1
    assert sum(line.startswith("FAILED data/train@") for line in bad.stdout.splitlines()) == 1


def test_an_unreachable_endpoint_is_found_at_init(tmp_path: Path) -> None:
    init = run(
        "init",
        "--backend",
        "s3",
        "--s3-bucket",
        "nowhere",
        "--s3-endpoint-url",
        "http://127.0.0.1:9",
        cwd=tmp_path,
    )
    assert init.returncode == 2
    assert "s3://nowhere/" in init.stderr and "Traceback" not in init.stderr
    assert not (tmp_path / ".pipewarden" / "config.yaml").exists()
    assert not (tmp_path / ".pipewarden" / "keys" / "keyring.json").exists()
