"""Workspaces: created complete and private, opened with their settings checked."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

from pipewarden.errors import ConfigError, KeyRingError
from pipewarden.store import LocalBackend, S3Backend
from pipewarden.workspace import Workspace, WorkspaceConfig


def test_init_creates_everything_with_private_modes(tmp_path: Path) -> None:
    ws = Workspace.init(tmp_path / "ws")
    assert ws.root.stat().st_mode & 0o777 == 0o700
    assert ws.keyring_path.stat().st_mode & 0o777 == 0o600
    assert ws.signing_key_path.stat().st_mode & 0o777 == 0o600
    assert (ws.root / "config.yaml").stat().st_mode & 0o777 == 0o600
    opened = Workspace.open(tmp_path / "ws")
    assert opened.config == WorkspaceConfig()
    assert isinstance(opened.store().backend, LocalBackend)
    assert opened.signing_key().keyid == opened.public_key().keyid
    assert list(opened.trusted_keys()) == [opened.public_key().keyid]


def test_location_comes_from_argument_then_environment_then_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PIPEWARDEN_WORKSPACE", raising=False)
    assert Workspace.locate() == Path(".pipewarden")
    monkeypatch.setenv("PIPEWARDEN_WORKSPACE", str(tmp_path / "env"))
    assert Workspace.locate() == tmp_path / "env"
    assert Workspace.locate(tmp_path / "arg") == tmp_path / "arg"


def test_missing_or_bad_workspaces_are_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="run 'pipewarden init' first"):
        Workspace.open(tmp_path)
    (tmp_path / "config.yaml").write_text("format: pipewarden.workspace/1\nstore: {backend: s3}\n")
    with pytest.raises(
        ConfigError, match=r"config\.yaml: store\.backend is 's3' but store\.s3\.bucket is not set"
    ):
        Workspace.open(tmp_path)
    (tmp_path / "config.yaml").write_text("format: pipewarden.workspace/1\nkeys: {provider: vault}\n")
    with pytest.raises(ConfigError, match="'vault'"):
        Workspace.open(tmp_path)
    (tmp_path / "config.yaml").write_text("format: pipewarden.workspace/1\nstores: {}\n")
    with pytest.raises(ConfigError, match="unknown setting"):
        Workspace.open(tmp_path)
    (tmp_path / "config.yaml").write_text("format: pipewarden.workspace/1\nstore: {scan_fail_on: severe}\n")
    with pytest.raises(ConfigError, match="severe"):
        Workspace.open(tmp_path)
    (tmp_path / "config.yaml").write_text(": : :\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        Workspace.open(tmp_path)


def test_keys_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ws = Workspace.init(tmp_path / "ws", config=WorkspaceConfig(key_provider="env"))
    assert not ws.keyring_path.exists()
    monkeypatch.delenv("PIPEWARDEN_KEYS", raising=False)
    with pytest.raises(KeyRingError, match=r"\$PIPEWARDEN_KEYS: not set"):
        ws.store()
    old = base64.b64encode(os.urandom(32)).decode()
    monkeypatch.setenv("PIPEWARDEN_KEYS", f"kek-a:{old}")
    data = tmp_path / "d.csv"
    data.write_text("1,2\n")
    ws.store().put(data, name="d", actor="ci")
    # Rotation with keys from the environment: a new key first, then reseal.
    monkeypatch.setenv("PIPEWARDEN_KEYS", f"kek-b:{base64.b64encode(os.urandom(32)).decode()},kek-a:{old}")
    store = ws.store()
    assert store.key_usage() == {"kek-a": 1}
    assert store.reseal() == 1
    monkeypatch.setenv("PIPEWARDEN_KEYS", os.environ["PIPEWARDEN_KEYS"].split(",")[0])
    assert ws.store().read_bytes("d") == b"1,2\n"


def test_s3_settings_round_trip_through_the_file(tmp_path: Path) -> None:
    config = WorkspaceConfig(
        backend="s3",
        s3_bucket="models",
        s3_prefix="prod",
        s3_endpoint_url="http://127.0.0.1:9000",
        s3_region="eu-west-1",
        scan_fail_on="high",
    )
    ws = Workspace.init(tmp_path / "ws", config=config)
    assert not (ws.root / "store").exists()
    assert Workspace.open(ws.root).config == config
    backend = Workspace.open(ws.root).store().backend
    assert isinstance(backend, S3Backend)
    assert backend.location == "s3://models/prod/"


def test_trusting_another_key(tmp_path: Path) -> None:
    from pipewarden.crypto import SigningKey

    ws = Workspace.init(tmp_path / "ws")
    other = SigningKey.generate()
    other.save(tmp_path / "ci.key")
    ws.trust(tmp_path / "ci.key.pub")
    assert set(ws.trusted_keys()) == {ws.public_key().keyid, other.keyid}


def test_the_store_scans_with_the_workspaces_allowlist(tmp_path: Path) -> None:
    from pipewarden.errors import ArtifactRefused

    model = tmp_path / "net.pkl"
    model.write_bytes(
        b"\x80\x02cmypkg.models\nNet\n)\x81."
    )  # a class of the team's own: unknown to the scanner
    plain = Workspace.init(tmp_path / "plain")
    with pytest.raises(ArtifactRefused, match="PW-SCAN-1"):
        plain.store().put(model, name="net", actor="ci")
    ws = Workspace.init(tmp_path / "ws", config=WorkspaceConfig(scan_policy="allow.yaml"))
    (ws.root / "allow.yaml").write_text(
        "allow:\n  - global: mypkg.models.Net\n    reason: our network class\n"
    )
    art = ws.store().put(model, name="net", actor="ci")
    assert art.scan.findings == 0
