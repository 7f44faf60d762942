"""Workspaces: created complete and private, opened with their settings checked."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import pytest

from pipewarden.errors import ConfigError, KeyRingError
from pipewarden.store import BackendError, LocalBackend, S3Backend
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
    assert store.reseal().resealed == 1
    monkeypatch.setenv("PIPEWARDEN_KEYS", os.environ["PIPEWARDEN_KEYS"].split(",")[0])
    assert ws.store().read_bytes("d") == b"1,2\n"


def test_s3_settings_round_trip_through_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import boto3

    from tests.integration.s3server import S3_ENV, s3_server

    for k, v in S3_ENV.items():
        monkeypatch.setenv(k, v)
    with s3_server() as url:
        boto3.client("s3", endpoint_url=url, region_name="eu-west-1").create_bucket(
            Bucket="models", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
        )
        config = WorkspaceConfig(
            backend="s3",
            s3_bucket="models",
            s3_prefix="prod",
            s3_endpoint_url=url,
            s3_region="eu-west-1",
            scan_fail_on="high",
        )
        ws = Workspace.init(tmp_path / "ws", config=config)
        assert not (ws.root / "store").exists()
        assert Workspace.open(ws.root).config == config
        backend = Workspace.open(ws.root).store().backend
        assert isinstance(backend, S3Backend)
        assert backend.location == "s3://models/prod/"
        assert list(backend.iter_keys("")) == []  # the init probe cleaned up after itself

        # A service that ignores If-None-Match cannot keep versions immutable: init refuses it.
        class IgnoresConditions:
            def __init__(self, client: object) -> None:
                self._client = client

            def put_object(self, **kwargs: object) -> object:
                kwargs.pop("IfNoneMatch", None)
                return self._client.put_object(**kwargs)  # type: ignore[attr-defined]

            def __getattr__(self, name: str) -> object:
                return getattr(self._client, name)

        lax = S3Backend(
            bucket="models",
            endpoint_url=url,
            region="eu-west-1",
            client=IgnoresConditions(boto3.client("s3", endpoint_url=url, region_name="eu-west-1")),
        )
        with pytest.raises(BackendError, match="ignored a conditional write"):
            lax.check_conditional_writes()


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


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("format: pipewarden.workspace/1\nkeys: [1]\n", "keys must be a mapping, not list"),
        ("format: pipewarden.workspace/1\nstore: x\n", "store must be a mapping, not str"),
        ("format: pipewarden.workspace/1\nstore: {s3: 5}\n", r"store\.s3 must be a mapping, not int"),
        (
            "format: pipewarden.workspace/1\nstore: {s3: {endpoint_url: [1]}}\n",
            r"store\.s3\.endpoint_url must be a string",
        ),
        ("format: pipewarden.workspace/1\nkeys: {provider: 'os:system('}\n", "expected 'file', 'env'"),
    ],
)
def test_settings_of_the_wrong_type_are_named(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "config.yaml").write_text(text)
    with pytest.raises(ConfigError, match=message):
        Workspace.open(tmp_path)


def test_settings_and_trusted_keys_others_can_change_are_refused(tmp_path: Path) -> None:
    ws = Workspace.init(tmp_path / "ws")
    (ws.root / "config.yaml").write_bytes(b"\xff\xfe")
    with pytest.raises(ConfigError, match="not UTF-8"):
        Workspace.open(ws.root)
    (ws.root / "config.yaml").write_text(WorkspaceConfig().to_yaml())
    (ws.root / "config.yaml").chmod(0o666)
    with pytest.raises(ConfigError, match=r"writable by group or other users.*chmod go-w"):
        Workspace.open(ws.root)
    (ws.root / "config.yaml").chmod(0o600)
    (ws.keys_dir / "signing.key.pub").chmod(0o664)
    with pytest.raises(ConfigError, match="trusted public key is writable by group"):
        Workspace.open(ws.root).trusted_keys()


def test_model_signers_and_store_writers_are_trusted_separately(tmp_path: Path) -> None:
    from pipewarden.crypto import SigningKey

    ws = Workspace.init(tmp_path / "ws")
    ci, writer = SigningKey.generate(), SigningKey.generate()
    ci.save(tmp_path / "ci.key")
    writer.save(tmp_path / "writer.key")
    ws.trust(tmp_path / "ci.key.pub")
    ws.trust(tmp_path / "writer.key.pub", store_writer=True)
    assert ci.keyid in ws.trusted_keys() and ci.keyid not in ws.store_writers()
    assert writer.keyid in ws.store_writers() and writer.keyid not in ws.trusted_keys()
    assert set(ws.store().trusted) == {ws.public_key().keyid, writer.keyid}


def test_a_key_provider_of_ones_own_from_the_configuration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What a KMS-backed provider looks like from pipewarden's side: wrap and unwrap by a service
    # (here, a stand-in that keeps one key in memory; a real one would call the KMS).
    (tmp_path / "acme_kms.py").write_text(
        "from pipewarden.crypto import KekInfo, KeyProvider, WrappedKey, new_data_key, seal, open_sealed\n"
        "KEY = new_data_key()\n"
        "class Provider(KeyProvider):\n"
        "    def __init__(self, *, workspace):\n"
        "        self.source = f'acme-kms for {workspace.root.name}'\n"
        "    def current_id(self): return 'acme-1'\n"
        "    def keys(self): return (KekInfo('acme-1', '', True, None),)\n"
        "    def wrap(self, data_key, *, context):\n"
        "        return WrappedKey('acme-1', seal(KEY, data_key, aad=context))\n"
        "    def unwrap(self, wrapped, *, context, label):\n"
        "        return open_sealed(KEY, wrapped.blob, aad=context, label=label)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    ws = Workspace.init(tmp_path / "ws", config=WorkspaceConfig(key_provider="acme_kms:Provider"))
    assert not ws.keyring_path.exists()
    data = tmp_path / "d.csv"
    data.write_text("1,2\n")
    art = ws.store().put(data, name="d", actor="ci")
    assert Workspace.open(ws.root).store().read_bytes(art.ref) == b"1,2\n"
    assert ws.store().key_usage() == {"acme-1": 1}
    (ws.root / "config.yaml").write_text(WorkspaceConfig(key_provider="acme_kms:Missing").to_yaml())
    with pytest.raises(ConfigError, match="cannot be loaded"):
        Workspace.open(ws.root).keyring()
