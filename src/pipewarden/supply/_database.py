"""Vulnerability sources behind one interface: `VulnerabilitySource.lookup(packages)`.

`OfflineDatabase` reads OSV records from a folder (every ``*.json`` under it) or a zip file of them, as
OSV publishes them per ecosystem (``PyPI/all.zip``). Its age is the newest record's ``modified`` time,
which every report shows. A record file that is not valid JSON, or not an OSV record, is an error naming
it: a database read in part would pass packages it never checked.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from pipewarden.errors import ConfigError
from pipewarden.supply._osv import Record, normalize

__all__ = ["Lookup", "OfflineDatabase", "VulnerabilitySource"]

#: Record files larger than this are refused (the largest PyPI records are tens of kilobytes).
_MAX_RECORD_BYTES = 8 << 20


@dataclass(frozen=True, slots=True)
class Lookup:
    """What a source knows of some packages: the records naming each, and the source's own description."""

    records: dict[str, tuple[Record, ...]]  # normalized name -> records naming it
    source: str  # "offline database <path>" or "OSV API <url>"
    as_of: datetime | None  # newest record's modified time (offline), or when it was asked (online)


class VulnerabilitySource(Protocol):
    def lookup(self, names: Iterable[str]) -> Lookup: ...


def _parse_time(text: str) -> datetime | None:
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


class OfflineDatabase:
    """OSV records from a folder or zip, indexed by package name."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._by_name: dict[str, list[Record]] = {}
        self.newest: datetime | None = None
        self.count = 0
        for source, text in self._files():
            try:
                doc = json.loads(text)
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise ConfigError(f"{source}: not a JSON OSV record ({exc})") from None
            record = Record.from_json(doc, source=source)
            self.count += 1
            when = _parse_time(record.modified)
            if when is not None and (self.newest is None or when > self.newest):
                self.newest = when
            for name in record.names():
                self._by_name.setdefault(name, []).append(record)
        if self.count == 0:
            raise ConfigError(f"{path}: no OSV records (a folder or zip of *.json files is expected)")

    def _files(self) -> Iterator[tuple[str, bytes]]:
        path = self.path
        if not path.exists():
            raise ConfigError(f"{path}: no such vulnerability database")
        if path.is_dir():
            for file in sorted(path.rglob("*.json")):
                if file.stat().st_size > _MAX_RECORD_BYTES:
                    raise ConfigError(f"{file}: larger than a record can be ({file.stat().st_size} bytes)")
                yield str(file), file.read_bytes()
            return
        try:
            archive = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError) as exc:
            raise ConfigError(f"{path}: neither a folder nor a zip of OSV records ({exc})") from None
        with archive:
            for info in sorted(archive.infolist(), key=lambda i: i.filename):
                if info.is_dir() or not info.filename.endswith(".json"):
                    continue
                if info.file_size > _MAX_RECORD_BYTES:
                    raise ConfigError(f"{path}!{info.filename}: larger than a record can be")
                yield f"{path}!{info.filename}", archive.read(info)

    def lookup(self, names: Iterable[str]) -> Lookup:
        found = {normalize(n): tuple(self._by_name.get(normalize(n), ())) for n in names}
        return Lookup(records=found, source=f"offline database {self.path}", as_of=self.newest)
