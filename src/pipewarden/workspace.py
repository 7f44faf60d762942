"""A workspace: the folder that holds a deployment's keys, configuration and (by default) store.

    .pipewarden/                 mode 0700
      config.yaml                what provider holds the KEKs, which store backend, the scan threshold
      keys/keyring.json          key-encryption keys (mode 0600)       [provider: file]
      keys/signing.key           this workspace's Ed25519 signing key (mode 0600)
      keys/signing.key.pub       its public key
      keys/trusted/*.pub         other public keys whose model signatures `verify` accepts
      keys/writers/*.pub         other public keys whose artifact manifests the store accepts
      store/                     the local artifact store            [backend: local]
      pipewarden.db              the database (SQLite, WAL)   [unless $PIPEWARDEN_DATABASE_URL is set]
      audit/checkpoints/         signed audit-log checkpoints, kept outside the database too

Its location is `--workspace`, else ``$PIPEWARDEN_WORKSPACE``, else ``./.pipewarden``.
"""

from __future__ import annotations

import importlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from pipewarden.crypto import (
    ENV_VAR,
    EnvKeyProvider,
    FileKeyProvider,
    KeyProvider,
    KeyRing,
    PublicKey,
    SigningKey,
    TrustedKeys,
    write_atomic,
)
from pipewarden.crypto._files import check_not_writable_by_others
from pipewarden.crypto._signing import env_passphrase
from pipewarden.errors import ConfigError
from pipewarden.findings import Severity

if TYPE_CHECKING:
    from pipewarden.audit import AuditLog
    from pipewarden.db import Database
    from pipewarden.events import Events
    from pipewarden.scan import ScanPolicy
    from pipewarden.store import ArtifactStore, Backend, S3Backend

__all__ = ["DEFAULT_WORKSPACE", "WORKSPACE_ENV", "Workspace", "WorkspaceConfig", "close_audit_logs"]

WORKSPACE_ENV = "PIPEWARDEN_WORKSPACE"
DEFAULT_WORKSPACE = Path(".pipewarden")
_FORMAT = "pipewarden.workspace/1"
_PROVIDER_CLASS = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


@dataclass(frozen=True, slots=True)
class WorkspaceConfig:
    """The settings in ``config.yaml``, checked when read."""

    key_provider: str = "file"
    key_env: str = ENV_VAR
    backend: str = "local"
    s3_bucket: str = ""
    s3_prefix: str = ""
    s3_endpoint_url: str | None = None
    s3_region: str | None = None
    scan_fail_on: str = "medium"
    scan_policy: str | None = None

    def __post_init__(self) -> None:
        if self.key_provider not in {"file", "env"} and not _PROVIDER_CLASS.match(self.key_provider):
            raise ConfigError(
                f"keys.provider is {self.key_provider!r}; expected 'file', 'env', or 'package.module:Class' "
                "naming a KeyProvider (a KMS or Vault client)"
            )
        if self.backend not in {"local", "s3"}:
            raise ConfigError(f"store.backend is {self.backend!r}; expected 'local' or 's3'")
        if self.backend == "s3" and not self.s3_bucket:
            raise ConfigError("store.backend is 's3' but store.s3.bucket is not set")
        Severity.parse(self.scan_fail_on)

    @classmethod
    def from_yaml(cls, text: str, *, source: str) -> WorkspaceConfig:
        try:
            doc = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{source}: not valid YAML ({exc})") from None
        if not isinstance(doc, dict) or doc.get("format") != _FORMAT:
            raise ConfigError(f"{source}: not a pipewarden workspace configuration (format {_FORMAT})")
        known = {"format", "keys", "store"}
        if set(doc) - known:
            raise ConfigError(f"{source}: unknown setting(s): {', '.join(sorted(set(doc) - known))}")
        keys = _section(doc, "keys", source)
        store = _section(doc, "store", source)
        s3 = _section(store, "s3", source, parent="store.")
        try:
            return cls(
                key_provider=_text(keys, "provider", "file", source, "keys."),
                key_env=_text(keys, "env_var", ENV_VAR, source, "keys."),
                backend=_text(store, "backend", "local", source, "store."),
                s3_bucket=_text(s3, "bucket", "", source, "store.s3."),
                s3_prefix=_text(s3, "prefix", "", source, "store.s3."),
                s3_endpoint_url=_text(s3, "endpoint_url", None, source, "store.s3."),
                s3_region=_text(s3, "region", None, source, "store.s3."),
                scan_fail_on=_text(store, "scan_fail_on", "medium", source, "store."),
                scan_policy=_text(store, "scan_policy", None, source, "store."),
            )
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc}") from None

    def to_yaml(self) -> str:
        doc: dict[str, Any] = {
            "format": _FORMAT,
            "keys": {"provider": self.key_provider, "env_var": self.key_env},
            "store": {"backend": self.backend, "scan_fail_on": self.scan_fail_on},
        }
        if self.scan_policy is not None:
            doc["store"]["scan_policy"] = self.scan_policy
        if self.backend == "s3":
            doc["store"]["s3"] = {
                "bucket": self.s3_bucket,
                "prefix": self.s3_prefix,
                "endpoint_url": self.s3_endpoint_url,
                "region": self.s3_region,
            }
        return yaml.safe_dump(doc, sort_keys=False)


def _section(doc: dict[str, Any], key: str, source: str, *, parent: str = "") -> dict[str, Any]:
    value = doc.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{source}: {parent}{key} must be a mapping, not {type(value).__name__}")
    return value


def _text(section: dict[str, Any], key: str, default: Any, source: str, parent: str) -> Any:
    value = section.get(key, default)
    if value is None or isinstance(value, str):
        return value
    raise ConfigError(f"{source}: {parent}{key} must be a string, not {type(value).__name__}")


class Workspace:
    """An initialised workspace folder; opening one checks it is complete."""

    def __init__(self, root: Path, config: WorkspaceConfig) -> None:
        self.root = root
        self.config = config
        self._database: Database | None = None
        self._events: Events | None = None
        self._audit_log: AuditLog | None = None

    @staticmethod
    def locate(path: str | os.PathLike[str] | None = None) -> Path:
        """`path`, else ``$PIPEWARDEN_WORKSPACE``, else ``./.pipewarden``."""
        if path is not None:
            return Path(path)
        return Path(os.environ.get(WORKSPACE_ENV) or DEFAULT_WORKSPACE)

    @property
    def keys_dir(self) -> Path:
        return self.root / "keys"

    @property
    def keyring_path(self) -> Path:
        return self.keys_dir / "keyring.json"

    @property
    def signing_key_path(self) -> Path:
        return self.keys_dir / "signing.key"

    @classmethod
    def init(
        cls, path: str | os.PathLike[str] | None = None, *, config: WorkspaceConfig | None = None
    ) -> Workspace:
        """Create a workspace with fresh keys; refuses to touch one that exists."""
        root = cls.locate(path)
        if (root / "config.yaml").exists():
            raise ConfigError(f"{root}: a workspace exists here already; its keys are never replaced")
        config = config or WorkspaceConfig()
        try:
            root.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.chmod(root, 0o700)
            (root / "keys" / "trusted").mkdir(parents=True, exist_ok=True, mode=0o700)
            (root / "keys" / "writers").mkdir(parents=True, exist_ok=True, mode=0o700)
            os.chmod(root / "keys", 0o700)
        except OSError as exc:
            raise ConfigError(f"{root}: cannot create the workspace: {exc.strerror}") from None
        ws = cls(root, config)
        if config.backend == "s3":
            # Before any key is made: a bucket that cannot be reached or cannot refuse an
            # overwrite is found now, not at the first put.
            ws._s3_backend().check_conditional_writes()
        if config.key_provider == "file":
            FileKeyProvider.create(ws.keyring_path)
        SigningKey.generate().save(ws.signing_key_path, passphrase=env_passphrase())
        if config.backend == "local":
            (root / "store").mkdir(exist_ok=True, mode=0o700)
        # config.yaml last: a workspace is complete once it exists.
        write_atomic(root / "config.yaml", config.to_yaml().encode(), mode=0o600)
        return ws

    @classmethod
    def open(cls, path: str | os.PathLike[str] | None = None) -> Workspace:
        root = cls.locate(path)
        cfg = root / "config.yaml"
        try:
            text = cfg.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError(f"{root}: no pipewarden workspace here; run 'pipewarden init' first") from None
        except OSError as exc:
            raise ConfigError(f"{cfg}: cannot be read: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise ConfigError(f"{cfg}: not UTF-8 text") from None
        check_not_writable_by_others(cfg, what="workspace configuration")
        return cls(root, WorkspaceConfig.from_yaml(text, source=str(cfg)))

    def keyring(self) -> KeyRing:
        provider = self.config.key_provider
        if provider == "env":
            return KeyRing(EnvKeyProvider(self.config.key_env))
        if provider == "file":
            return KeyRing(FileKeyProvider(self.keyring_path))
        # 'package.module:Class': a KeyProvider of the operator's own (a KMS or Vault client),
        # named in the operator's configuration and constructed with the workspace.
        module_name, _, class_name = provider.partition(":")
        try:
            cls = getattr(importlib.import_module(module_name), class_name)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(f"keys.provider {provider!r} cannot be loaded: {exc}") from None
        if not (isinstance(cls, type) and issubclass(cls, KeyProvider)):
            raise ConfigError(f"keys.provider {provider!r} is not a pipewarden.crypto.KeyProvider")
        provider_class: Any = cls  # constructed as the KeyProvider docstring says: Class(workspace=...)
        return KeyRing(provider_class(workspace=self))

    def signing_key(self) -> SigningKey:
        return SigningKey.load(self.signing_key_path)

    def public_key(self) -> PublicKey:
        return self._load_public(self.signing_key_path.with_name("signing.key.pub"))

    def _load_public(self, path: Path) -> PublicKey:
        check_not_writable_by_others(path, what="trusted public key")
        return PublicKey.load(path)

    def _trust_set(self, folder: str) -> TrustedKeys:
        keys = [self.public_key()]
        keys.extend(self._load_public(p) for p in sorted((self.keys_dir / folder).glob("*.pub")))
        return TrustedKeys(keys, source=str(self.keys_dir / folder))

    def trusted_keys(self) -> TrustedKeys:
        """Keys whose model signatures `verify` accepts: this workspace's and ``keys/trusted/*.pub``."""
        return self._trust_set("trusted")

    def store_writers(self) -> TrustedKeys:
        """Keys whose artifact manifests the store accepts: this workspace's and ``keys/writers/*.pub``.

        Kept apart from `trusted_keys`: a key trusted to sign models does not
        get to write the store's records (scan verdicts, lineage) as well.
        """
        return self._trust_set("writers")

    def trust(self, public_key_file: Path, *, store_writer: bool = False) -> PublicKey:
        """Add a public key to ``keys/trusted/`` (model signatures) or ``keys/writers/`` (store manifests)."""
        key = PublicKey.load(public_key_file)
        folder = "writers" if store_writer else "trusted"
        write_atomic(self.keys_dir / folder / f"{key.keyid.split(':')[1][:16]}.pub", key.to_pem(), mode=0o644)
        return key

    def database(self) -> Database:
        """The workspace's database (opened once, schema brought up to date): ``$PIPEWARDEN_DATABASE_URL``,
        else ``pipewarden.db`` in the workspace."""
        if self._database is None:
            from pipewarden.db import Database

            self._database = Database.for_workspace(self.root)
        return self._database

    def audit_log(self) -> AuditLog:
        """The workspace's audit log (one per Workspace object), in its database.

        Checkpoints are signed with the workspace key and exported to
        ``audit/checkpoints/``; the keys trusted for them are the workspace's own
        and ``keys/writers/*.pub``, the replicas that write the same database. The
        log's id is kept in the database (made on first use), so replicas sharing
        one database agree on it without sharing a file.
        """
        if self._audit_log is None:
            from pipewarden.audit import AuditLog

            folder = self.root / "audit" / "checkpoints"
            try:
                folder.parent.mkdir(exist_ok=True, mode=0o700)
                folder.mkdir(exist_ok=True, mode=0o700)
            except OSError as exc:
                raise ConfigError(f"{folder}: cannot create the checkpoint folder: {exc.strerror}") from None
            self._audit_log = AuditLog(
                self.database(),
                signing_key=self.signing_key(),
                trusted=self.store_writers(),
                log_id=self._audit_log_id(),
                checkpoint_dir=folder,
            )
            _OPEN_LOGS.append(self._audit_log)
        return self._audit_log

    def _audit_log_id(self) -> str:
        """The id checkpoints name, from the database (table ``audit_log_info``), made on first use."""
        from pipewarden.audit import database_log_id

        return database_log_id(self.database())

    def events(self) -> Events:
        """The one event path of this workspace: its audit log, then any subscribers."""
        if self._events is None:
            from pipewarden.events import Events

            self._events = Events(self.audit_log())
        return self._events

    def _scan_policy(self) -> ScanPolicy | None:
        """The YAML allowlist named by ``store.scan_policy`` (relative to the workspace), if any."""
        if self.config.scan_policy is None:
            return None
        from pipewarden.scan import ScanPolicy

        return ScanPolicy.from_file(self.root / self.config.scan_policy)

    def _s3_backend(self) -> S3Backend:
        from pipewarden.store import S3Backend

        return S3Backend(
            bucket=self.config.s3_bucket,
            prefix=self.config.s3_prefix,
            endpoint_url=self.config.s3_endpoint_url,
            region=self.config.s3_region,
        )

    def _backend(self) -> Backend:
        from pipewarden.store import LocalBackend

        if self.config.backend == "s3":
            return self._s3_backend()
        return LocalBackend(self.root / "store")

    def store(self) -> ArtifactStore:
        from pipewarden.store import ArtifactStore

        return ArtifactStore(
            self._backend(),
            keyring=self.keyring(),
            signing_key=self.signing_key(),
            trusted=self.store_writers(),
            scan_threshold=Severity.parse(self.config.scan_fail_on),
            scan_policy=self._scan_policy(),
        )


#: Audit logs opened through a workspace in this process, closed by `close_audit_logs`.
_OPEN_LOGS: list[AuditLog] = []


def close_audit_logs() -> None:
    """Close every audit log a workspace opened in this process: each signs a last checkpoint over
    what it appended, so a short-lived process (a CLI command) leaves no record uncovered. Call it
    when the process is done with its workspaces; the command line does, at exit."""
    while _OPEN_LOGS:
        _OPEN_LOGS.pop().close()
