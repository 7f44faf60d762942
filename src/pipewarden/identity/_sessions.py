"""Where the command line keeps a person's login session: one private file per OS user and workspace.

    $XDG_CONFIG_HOME/pipewarden/sessions/<sha256 of the workspace path>.json    mode 0600, folder 0700

A session token is a credential of a person, not of the workspace, so it lives
in that person's home, not in the workspace folder: a workspace may be shared
(a team folder, a copy on another host, one PostgreSQL database behind many
workspaces) and whoever can read the workspace must not thereby act as
everyone who logged in through it. One file per workspace lets one person be
logged in to several deployments at once. ``$PIPEWARDEN_TOKEN`` takes
precedence over the file, for CI jobs and services, which have no home to
keep a session in.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from pipewarden.crypto import write_atomic
from pipewarden.errors import ConfigError

__all__ = ["SESSION_FORMAT", "TOKEN_ENV", "SessionFile", "StoredSession"]

TOKEN_ENV = "PIPEWARDEN_TOKEN"  # noqa: S105  # the name of an environment variable, not a token
SESSION_FORMAT = "pipewarden.session/1"
_MAX_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class StoredSession:
    """A session as kept on disk: the token (never in a repr), whose it is and until when."""

    principal: str
    token_id: str
    expires_at: datetime
    token: str = field(repr=False)


def _config_home() -> Path:
    xdg = os.environ.get("XDG_CONFIG_HOME")
    # The XDG Base Directory specification: a relative value is invalid and must be ignored.
    if xdg and Path(xdg).is_absolute():
        return Path(xdg)
    return Path.home() / ".config"


class SessionFile:
    """The session file of one workspace for the current OS user.

    >>> sessions = SessionFile.for_workspace(ws.root)
    >>> sessions.save(StoredSession(principal="ada", token_id=..., expires_at=..., token=...))
    >>> sessions.load()           # None when nobody is logged in
    """

    def __init__(self, path: Path, *, workspace: Path) -> None:
        self.path = path
        self.workspace = workspace

    @classmethod
    def for_workspace(cls, root: Path, *, config_home: Path | None = None) -> SessionFile:
        resolved = root.resolve()
        name = hashlib.sha256(str(resolved).encode()).hexdigest()[:32]
        folder = (config_home or _config_home()) / "pipewarden" / "sessions"
        return cls(folder / f"{name}.json", workspace=resolved)

    def save(self, session: StoredSession) -> None:
        """Write the session atomically, readable by the OS user alone (folder 0700, file 0600)."""
        folder = self.path.parent
        try:
            folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.chmod(folder, 0o700)
        except OSError as exc:
            raise ConfigError(f"{folder}: cannot create the session folder: {exc.strerror}") from None
        doc = {
            "format": SESSION_FORMAT,
            "workspace": str(self.workspace),
            "principal": session.principal,
            "token_id": session.token_id,
            "expires_at": session.expires_at.isoformat(),
            "token": session.token,
        }
        write_atomic(self.path, json.dumps(doc, indent=2).encode(), mode=0o600)

    def load(self) -> StoredSession | None:
        """The stored session, or None if there is none; refuses a file others could read or swap."""
        flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
        try:
            fd = os.open(self.path, flags)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise ConfigError(f"{self.path}: the session file cannot be read: {exc.strerror}") from None
        with os.fdopen(fd, "rb") as fh:
            st = os.fstat(fh.fileno())
            if not stat.S_ISREG(st.st_mode):
                raise ConfigError(f"{self.path}: the session file is not a regular file")
            if os.name == "posix" and (st.st_mode & 0o077 or st.st_uid != os.getuid()):
                raise ConfigError(
                    f"{self.path}: the session file is open to other users or not yours "
                    f"(mode {stat.S_IMODE(st.st_mode):04o}); refusing to use it. Delete it and log in again"
                )
            raw = fh.read(_MAX_BYTES + 1)
        try:
            doc = json.loads(raw) if len(raw) <= _MAX_BYTES else None
            if not isinstance(doc, dict) or doc.get("format") != SESSION_FORMAT:
                raise ValueError("not a session")
            return StoredSession(
                principal=str(doc["principal"]),
                token_id=str(doc["token_id"]),
                expires_at=datetime.fromisoformat(str(doc["expires_at"])),
                token=str(doc["token"]),
            )
        except (ValueError, KeyError, UnicodeDecodeError):
            raise ConfigError(
                f"{self.path}: not a pipewarden session file; delete it and run 'pipewarden login'"
            ) from None

    def delete(self) -> bool:
        """Remove the session file; True if there was one."""
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
            return True
        return False
