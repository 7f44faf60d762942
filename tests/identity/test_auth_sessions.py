"""The command line's session file: private to its OS user, one per workspace, refused when exposed."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from pipewarden.errors import ConfigError
from pipewarden.identity import SessionFile, StoredSession

WHEN = datetime(2026, 1, 5, 21, 0, tzinfo=UTC)
ID = "AAAAAAAAAAAA"
TOKEN = f"pwt_{ID}_" + "b" * 43


def session() -> StoredSession:
    return StoredSession(principal="ada", token_id=ID, expires_at=WHEN, token=TOKEN)


def test_saved_private_and_read_back(tmp_path: Path) -> None:
    sessions = SessionFile.for_workspace(tmp_path / "ws", config_home=tmp_path / "home")
    assert sessions.load() is None
    sessions.save(session())
    assert sessions.load() == session()
    assert sessions.path.stat().st_mode & 0o777 == 0o600
    assert sessions.path.parent.stat().st_mode & 0o777 == 0o700
    assert sessions.path.is_relative_to(tmp_path / "home" / "pipewarden" / "sessions")
    assert sessions.delete() is True and sessions.load() is None and sessions.delete() is False


def test_one_file_per_workspace_however_the_path_is_written(tmp_path: Path) -> None:
    (tmp_path / "ws").mkdir()
    home = tmp_path / "home"
    a = SessionFile.for_workspace(tmp_path / "ws", config_home=home)
    b = SessionFile.for_workspace(tmp_path / "ws" / ".." / "ws", config_home=home)
    c = SessionFile.for_workspace(tmp_path / "other", config_home=home)
    assert a.path == b.path != c.path


def test_a_file_others_could_read_is_refused(tmp_path: Path) -> None:
    sessions = SessionFile.for_workspace(tmp_path / "ws", config_home=tmp_path / "home")
    sessions.save(session())
    os.chmod(sessions.path, 0o644)
    with pytest.raises(ConfigError, match="open to other users"):
        sessions.load()


def test_a_symbolic_link_or_garbage_is_refused(tmp_path: Path) -> None:
    sessions = SessionFile.for_workspace(tmp_path / "ws", config_home=tmp_path / "home")
    sessions.save(session())
    real = sessions.path.with_name("real.json")
    sessions.path.rename(real)
    sessions.path.symlink_to(real)
    with pytest.raises(ConfigError, match="cannot be read"):
        sessions.load()
    sessions.path.unlink()
    sessions.path.write_text("{not json")
    os.chmod(sessions.path, 0o600)
    with pytest.raises(ConfigError, match="not a pipewarden session file"):
        sessions.load()


def test_xdg_config_home_is_used_only_when_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert SessionFile.for_workspace(tmp_path).path.is_relative_to(tmp_path / "xdg")
    monkeypatch.setenv("XDG_CONFIG_HOME", "relative/dir")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert SessionFile.for_workspace(tmp_path).path.is_relative_to(tmp_path / "home" / ".config")
