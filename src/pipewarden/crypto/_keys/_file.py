"""KEKs in a JSON key file (mode 0600) that `pipewarden init` creates.

    {"format": "pipewarden.keyring/1", "current": "kek-...",
     "keys": [{"id": "kek-...", "created": "...Z", "material": "<base64>", "retired": null}]}

A retired key keeps its id and dates; its material is erased.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipewarden.crypto._files import read_private, write_atomic
from pipewarden.crypto._keys._interface import KEK_ID, KekInfo, KeyRingError
from pipewarden.crypto._keys._local import LocalKeys
from pipewarden.crypto._stream import new_data_key

__all__ = ["FileKeyProvider"]

_FORMAT = "pipewarden.keyring/1"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _new_id() -> str:
    return f"kek-{datetime.now(UTC):%Y%m%d}-{secrets.token_hex(4)}"


class FileKeyProvider(LocalKeys):
    """KEKs kept in a key file; `rotate` and `retire` rewrite it atomically."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        raw = read_private(self.path, what="key ring")
        current, infos, material = self._parse(raw)
        super().__init__(source=str(self.path), current=current, infos=infos, material=material)

    def _reload(self) -> None:
        """Read back what was written, through the same checks as at start."""
        self._set(*self._parse(read_private(self.path, what="key ring")))

    @classmethod
    def create(cls, path: Path) -> FileKeyProvider:
        """Write a new key file with one fresh KEK; refuses to overwrite an existing one."""
        if path.exists():
            raise KeyRingError(f"{path}: a key ring exists already; it is never overwritten")
        kek_id = _new_id()
        cls._write(path, current=kek_id, entries=[_entry(kek_id, new_data_key())])
        return cls(path)

    def _parse(self, raw: bytes) -> tuple[str, tuple[KekInfo, ...], dict[str, bytes]]:
        where = str(self.path)
        try:
            doc = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise KeyRingError(f"{where}: key ring is not valid JSON ({exc})") from None
        if not isinstance(doc, dict) or doc.get("format") != _FORMAT:
            raise KeyRingError(f"{where}: not a pipewarden key ring (expected format {_FORMAT!r})")
        entries = doc.get("keys")
        if not isinstance(entries, list) or not entries:
            raise KeyRingError(f"{where}: key ring holds no keys")
        infos: list[KekInfo] = []
        material: dict[str, bytes] = {}
        for i, entry in enumerate(entries):
            if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
                raise KeyRingError(f"{where}: keys[{i}] has no id")
            kek_id = entry["id"]
            if not KEK_ID.match(kek_id) or kek_id in material or any(x.kek_id == kek_id for x in infos):
                raise KeyRingError(f"{where}: keys[{i}] has an invalid or repeated id {kek_id!r}")
            retired = entry.get("retired")
            if retired is None:
                try:
                    material[kek_id] = base64.b64decode(str(entry.get("material", "")), validate=True)
                except ValueError:  # binascii.Error, and non-ASCII text
                    raise KeyRingError(f"{where}: key {kek_id!r} material is not base64") from None
            infos.append(
                KekInfo(
                    kek_id=kek_id,
                    created=str(entry.get("created", "")),
                    current=kek_id == doc.get("current"),
                    retired=None if retired is None else str(retired),
                )
            )
        return str(doc.get("current")), tuple(infos), material

    @staticmethod
    def _write(path: Path, *, current: str, entries: list[dict[str, Any]]) -> None:
        doc = {"format": _FORMAT, "current": current, "keys": entries}
        write_atomic(path, (json.dumps(doc, indent=2) + "\n").encode())

    def _entries(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for info in self._infos:
            entry = {"id": info.kek_id, "created": info.created, "retired": info.retired}
            if info.retired is None:
                entry["material"] = base64.b64encode(self._material[info.kek_id]).decode()
            out.append(entry)
        return out

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """Hold an exclusive lock on the key ring and re-read it, so concurrent updates never lose a key."""
        lock_path = self.path.with_name(self.path.name + ".lock")
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
        except OSError as exc:
            raise KeyRingError(f"{lock_path}: cannot lock the key ring: {exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._reload()
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def rotate(self) -> str:
        with self._locked():
            kek_id = _new_id()
            entries = [*self._entries(), _entry(kek_id, new_data_key())]
            self._write(self.path, current=kek_id, entries=entries)
            self._reload()
        return kek_id

    def retire(self, kek_id: str) -> None:
        with self._locked():
            if kek_id == self._current:
                raise KeyRingError(f"{self.path}: {kek_id} is the current key; rotate first, then retire it")
            entries = self._entries()
            for entry in entries:
                if entry["id"] == kek_id:
                    if entry["retired"] is not None:
                        raise KeyRingError(f"{self.path}: {kek_id} was retired already on {entry['retired']}")
                    entry["retired"] = _now()
                    entry.pop("material", None)
                    break
            else:
                raise KeyRingError(f"{self.path}: no key {kek_id!r} in this key ring")
            self._write(self.path, current=self._current, entries=entries)
            self._reload()


def _entry(kek_id: str, material: bytes) -> dict[str, Any]:
    return {"id": kek_id, "created": _now(), "material": base64.b64encode(material).decode(), "retired": None}
