"""Stores over both backends: a local folder, and a bucket on a real S3 HTTP endpoint on loopback."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pipewarden.crypto import FileKeyProvider, KeyRing, SigningKey, TrustedKeys
from pipewarden.store import ArtifactStore, Backend, LocalBackend, S3Backend
from tests.integration.s3server import S3_ENV, s3_server

CHUNK = 4096


@pytest.fixture(scope="session")
def s3_url() -> Iterator[str]:
    saved = {k: os.environ.get(k) for k in S3_ENV}
    os.environ.update(S3_ENV)
    try:
        with s3_server() as url:
            yield url
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def new_bucket(url: str) -> S3Backend:
    import boto3

    bucket = f"pw-{secrets.token_hex(6)}"
    boto3.client("s3", endpoint_url=url, region_name="us-east-1").create_bucket(Bucket=bucket)
    return S3Backend(bucket=bucket, prefix="team-a", endpoint_url=url, region="us-east-1")


@pytest.fixture(params=["local", "s3"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "s3":
        return new_bucket(request.getfixturevalue("s3_url"))
    return LocalBackend(tmp_path / "store")


@pytest.fixture
def ring_path(tmp_path: Path) -> Path:
    path = tmp_path / "keys" / "keyring.json"
    FileKeyProvider.create(path)
    return path


@pytest.fixture
def signer() -> SigningKey:
    return SigningKey.generate()


@pytest.fixture
def make_store(backend: Backend, ring_path: Path, signer: SigningKey) -> Callable[..., ArtifactStore]:
    def make(**overrides: object) -> ArtifactStore:
        kwargs: dict[str, object] = {
            "keyring": KeyRing.from_file(ring_path),
            "signing_key": signer,
            "trusted": TrustedKeys([signer.public], source="test"),
            "chunk_size": CHUNK,
        }
        kwargs.update(overrides)
        return ArtifactStore(backend, **kwargs)  # type: ignore[arg-type]

    return make


@pytest.fixture
def store(make_store: Callable[..., ArtifactStore]) -> ArtifactStore:
    return make_store()


@pytest.fixture
def payload(tmp_path: Path) -> Path:
    """Five and a half chunks of data that no scanner mistakes for a model."""
    path = tmp_path / "features.csv"
    path.write_bytes(
        b"".join(b"%d,%d,%d\n" % (i, i * 7 % 13, i % 2) for i in range(2600))[: CHUNK * 5 + 2048]
    )
    return path
