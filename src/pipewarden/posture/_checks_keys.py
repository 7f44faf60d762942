"""Keys and the files around them: who can read the key files, who can change what decides trust, how
old the current key-encryption key is, and whether the store can encrypt at all.

Modes are read with ``lstat``, so a symbolic link is seen as one (pipewarden refuses to read a key
through a link). On systems without POSIX modes the permission checks pass nothing and flag nothing:
they are reported as not determinable. Any error a check did not plan for (a custom key provider's
client may raise anything) makes that check not determinable (PW-POST-129), never a crash.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from pipewarden.db import DATABASE_URL_ENV
from pipewarden.findings import Finding, Location
from pipewarden.posture._catalogue import CheckResult, PostureBaseline, finding
from pipewarden.posture._guard import guarded, logged
from pipewarden.workspace import Workspace

__all__ = ["check_keys"]

_POSIX = os.name == "posix"
#: What the store-encryption check seals and opens again: no secret, bound to its own context.
_PROBE = b"pipewarden posture: envelope round trip"
_PROBE_CONTEXT = b"pipewarden.posture/probe"


def check_keys(ws: Workspace, *, now: datetime, baseline: PostureBaseline) -> list[CheckResult]:
    """Key files (PW-POST-120, 121), folders and trust files (122, 123), KEK age (124, 125) and store
    encryption (130)."""
    place = Location(path=str(ws.root))
    return [
        guarded("key-files", rule="PW-POST-129", place=place, run=lambda: _key_files(ws)),
        guarded(
            "workspace-permissions", rule="PW-POST-129", place=place, run=lambda: _workspace_permissions(ws)
        ),
        guarded(
            "kek-age", rule="PW-POST-129", place=place, run=lambda: _kek_age(ws, now=now, baseline=baseline)
        ),
        CheckResult("store-encryption", tuple(_store_encryption(ws))),
    ]


def _mode(path: Path) -> str | int:
    """The permission bits of `path` itself, or why they cannot be read."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return "does not exist"
    except OSError as exc:
        return f"cannot be examined ({exc.strerror or type(exc).__name__})"
    if stat.S_ISLNK(st.st_mode):
        return "is a symbolic link, which pipewarden refuses to read a key through"
    return stat.S_IMODE(st.st_mode)


def _key_files(ws: Workspace) -> list[Finding]:
    files = [ws.signing_key_path]
    if ws.config.key_provider == "file":
        files.insert(0, ws.keyring_path)
    found = []
    for path in files:
        place = Location(path=str(path))
        if not _POSIX:
            found.append(
                finding("PW-POST-129", f"{path}: file modes are not POSIX here; not checked", location=place)
            )
            continue
        mode = _mode(path)
        if isinstance(mode, str):
            found.append(
                finding("PW-POST-129", f"{path}: {mode}", location=place, evidence={"file": str(path)})
            )
        elif mode & 0o007:
            found.append(
                finding(
                    "PW-POST-120",
                    f"{path}: mode {mode:04o}, open to every user of this machine",
                    location=place,
                    evidence={"file": str(path), "mode": f"{mode:04o}"},
                )
            )
        elif mode & 0o070:
            found.append(
                finding(
                    "PW-POST-121",
                    f"{path}: mode {mode:04o}, open to the file's group",
                    location=place,
                    evidence={"file": str(path), "mode": f"{mode:04o}"},
                )
            )
    return found


def _sqlite_file(ws: Workspace) -> Path | None:
    """The SQLite database file the workspace uses, if it uses one."""
    url = os.environ.get(DATABASE_URL_ENV)
    if not url:
        return ws.root / "pipewarden.db"
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        return None  # reported by the database-connection check (a port that is not a number: ValueError)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return None
    return Path(parsed.database)


def _trust_files(ws: Workspace) -> Iterable[Path]:
    """Files and folders whose content decides what is trusted or allowed: whoever may change them may
    grant themselves anything, or have their own keys accepted."""
    yield ws.root / "config.yaml"
    yield ws.root / "policy.yaml"
    yield ws.root / "monitor.yaml"
    if ws.config.scan_policy is not None:
        yield ws.root / ws.config.scan_policy
    yield ws.signing_key_path.with_name("signing.key.pub")
    for folder in ("trusted", "writers"):
        yield ws.keys_dir / folder
        yield from sorted((ws.keys_dir / folder).glob("*.pub"))


def _workspace_permissions(ws: Workspace) -> list[Finding]:
    if not _POSIX:
        return [
            finding(
                "PW-POST-129",
                f"{ws.root}: file modes are not POSIX here; not checked",
                location=Location(path=str(ws.root)),
            )
        ]
    found = []
    for folder in (ws.root, ws.keys_dir):
        mode = _mode(folder)
        if isinstance(mode, int) and mode & 0o077:
            found.append(
                finding(
                    "PW-POST-122",
                    f"{folder}: mode {mode:04o}, open to other users; it holds the keys"
                    + (" and the database" if folder == ws.root else ""),
                    location=Location(path=str(folder)),
                    evidence={"path": str(folder), "mode": f"{mode:04o}"},
                )
            )
    database = _sqlite_file(ws)
    if database is not None:
        # A database file readable by others in a folder they may enter: password hashes, sealed TOTP
        # secrets and the audit log, readable (a closed workspace folder already keeps them out).
        folder_mode = _mode(database.parent)
        for path in (database, database.with_name(database.name + "-wal")):
            mode = _mode(path)
            if (
                isinstance(mode, int)
                and isinstance(folder_mode, int)
                and mode & 0o044
                and folder_mode & 0o011
            ):
                found.append(
                    finding(
                        "PW-POST-122",
                        f"{path}: mode {mode:04o} in a folder of mode {folder_mode:04o}: others can read the "
                        "database",
                        location=Location(path=str(path)),
                        evidence={
                            "path": str(path),
                            "mode": f"{mode:04o}",
                            "folder_mode": f"{folder_mode:04o}",
                        },
                    )
                )
    for path in _trust_files(ws):
        mode = _mode(path)
        if isinstance(mode, int) and mode & 0o022:
            found.append(
                finding(
                    "PW-POST-123",
                    f"{path}: mode {mode:04o}, writable by group or other users",
                    location=Location(path=str(path)),
                    evidence={"path": str(path), "mode": f"{mode:04o}"},
                )
            )
    return found


def _parse_created(text: str) -> datetime | None:
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _kek_age(ws: Workspace, *, now: datetime, baseline: PostureBaseline) -> list[Finding]:
    place = Location(path=str(ws.keyring_path) if ws.config.key_provider == "file" else str(ws.root))
    try:
        ring = ws.keyring()
        current = next((k for k in ring.keys() if k.current), None)
        source = ring.provider.source
    except Exception as exc:  # a custom provider (a KMS client) may raise anything: never a crash
        return [
            finding(
                "PW-POST-129",
                f"the key ring cannot be opened: {logged('kek-age', exc)}",
                location=place,
                evidence={"provider": ws.config.key_provider, "error": type(exc).__name__},
            )
        ]
    if current is None:
        return [finding("PW-POST-129", f"{source}: no key is marked current", location=place)]
    facts = {"kek": current.kek_id, "provider": ws.config.key_provider}
    if not current.created:
        # The provider keeps no creation dates (keys from an environment variable, some KMS clients):
        # the age can never be known here, by design, so this is said at low severity, not failed.
        return [
            finding(
                "PW-POST-125",
                f"{source}: key {current.kek_id} records no creation time, so its age is unknown",
                location=place,
                evidence=facts,
            )
        ]
    created = _parse_created(current.created)
    if created is None:
        return [
            finding(
                "PW-POST-129",
                f"{source}: key {current.kek_id} has an unreadable creation time, so its age is unknown",
                location=place,
                evidence=facts,
            )
        ]
    age = now - created
    if age <= baseline.kek_max_age:
        return []
    return [
        finding(
            "PW-POST-124",
            f"{source}: the current key {current.kek_id} was made on {created:%Y-%m-%d}, {age.days} days ago "
            f"(rotate at least every {baseline.kek_max_age.days} days)",
            location=place,
            evidence={
                "kek": current.kek_id,
                "created": created.isoformat(),
                "age_days": age.days,
                "max_age_days": baseline.kek_max_age.days,
            },
        )
    ]


def _store_encryption(ws: Workspace) -> list[Finding]:
    """Every artifact is sealed under the current KEK (AES-256-GCM, envelope encryption); it cannot be
    turned off, so what is checked is that it works: the key ring opens and seals and opens a value."""
    place = Location(path=str(ws.keyring_path) if ws.config.key_provider == "file" else str(ws.root))
    try:
        ring = ws.keyring()
        sealed = ring.seal(_PROBE, context=_PROBE_CONTEXT)
        opened = ring.open(sealed, context=_PROBE_CONTEXT, label="posture probe")
    except Exception as exc:
        # An operator's own key provider (a KMS client) may raise anything; that too is a store that
        # cannot encrypt, never a pass.
        problem = logged("store-encryption", exc)
    else:
        if opened == _PROBE:
            return []
        problem = "a value sealed under the current key did not open to the same bytes"
    return [
        finding(
            "PW-POST-130",
            f"the store cannot encrypt or decrypt: {problem}",
            location=place,
            evidence={"provider": ws.config.key_provider},
        )
    ]
