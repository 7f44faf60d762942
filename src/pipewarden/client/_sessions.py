"""Login sessions with servers, kept per server in the user's configuration folder (mode 0600)."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from pipewarden.errors import ConfigError

__all__ = ["RemoteSessions"]


@dataclass(frozen=True, slots=True)
class RemoteSessions:
    """``$XDG_CONFIG_HOME/pipewarden/servers/<host_port>.json`` (else ``~/.config/...``)."""

    folder: Path

    @classmethod
    def default(cls) -> RemoteSessions:
        base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
        return cls(Path(base) / "pipewarden" / "servers")

    def _file(self, url: str) -> Path:
        return self.folder / (re.sub(r"[^A-Za-z0-9.-]+", "_", url.split("://", 1)[-1]) + ".json")

    def save(self, url: str, token: str, expires_at: str) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = self._file(url)
        tmp = path.with_name(f".{path.name}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump({"server": url, "token": token, "expires_at": expires_at}, out)
        os.replace(tmp, path)
        return path

    def load(self, url: str) -> str | None:
        """The session's token, or None when there is none or it has ended."""
        path = self._file(url)
        if not path.is_file():
            return None
        if path.stat().st_mode & 0o077:
            raise ConfigError(f"{path}: a session file must be readable by its owner only (chmod 600)")
        try:
            doc = json.loads(path.read_text())
            if datetime.fromisoformat(doc["expires_at"]) <= datetime.now(UTC):
                return None
            return str(doc["token"])
        except (ValueError, KeyError, TypeError):
            raise ConfigError(f"{path}: not a pipewarden session file") from None

    def forget(self, url: str) -> None:
        self._file(url).unlink(missing_ok=True)
