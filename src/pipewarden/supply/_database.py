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

__all__ = ["Lookup", "OfflineDatabase", "OsvApi", "VulnerabilitySource"]

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


class OsvApi:
    """The OSV API: one batched query per 1,000 packages (``POST /v1/querybatch``, every advisory of each
    package, pages followed), then each advisory's full record (``GET /v1/vulns/ID``, several at once).

    A package the API could not answer for (unreachable, an error status, a malformed answer) is left out
    of the lookup's records, so the audit reports it as not audited; nothing is ever taken as clean
    because the network failed.
    """

    BATCH = 1000

    def __init__(self, url: str = "https://api.osv.dev", *, timeout: float = 30.0, workers: int = 8) -> None:
        if not url.startswith(("https://", "http://")):
            raise ConfigError(f"OSV API url {url!r} is not http(s)")
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.workers = workers
        self.requests = 0  # HTTP requests made, for the benchmark and tests

    def _call(self, method: str, path: str, body: dict[str, object] | None = None) -> dict[str, object]:
        import urllib.error
        import urllib.request

        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(  # noqa: S310  # scheme checked in __init__
            self.url + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        self.requests += 1
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                doc = json.loads(response.read())
        except (urllib.error.URLError, OSError, TimeoutError, json.JSONDecodeError, ValueError) as exc:
            raise ConnectionError(f"{method} {path}: {type(exc).__name__}") from None
        if not isinstance(doc, dict):
            raise ConnectionError(f"{method} {path}: the answer is not a JSON object")
        return doc

    def lookup(self, names: Iterable[str]) -> Lookup:
        from concurrent.futures import ThreadPoolExecutor

        wanted = sorted({normalize(n) for n in names})
        ids: dict[str, set[str]] = {}
        answered: set[str] = set()
        for start in range(0, len(wanted), self.BATCH):
            chunk = wanted[start : start + self.BATCH]
            pending: list[tuple[str, str | None]] = [(name, None) for name in chunk]
            while pending:
                queries = [
                    {
                        "package": {"name": name, "ecosystem": "PyPI"},
                        **({"page_token": token} if token else {}),
                    }
                    for name, token in pending
                ]
                try:
                    results = self._call("POST", "/v1/querybatch", {"queries": queries}).get("results")
                except ConnectionError:
                    break  # these packages stay unanswered: the audit says so
                if not isinstance(results, list) or len(results) != len(pending):
                    break
                following: list[tuple[str, str | None]] = []
                for (name, _), result in zip(pending, results, strict=True):
                    vulns = result.get("vulns", []) if isinstance(result, dict) else None
                    if not isinstance(vulns, list):
                        continue
                    ids.setdefault(name, set()).update(
                        str(v["id"]) for v in vulns if isinstance(v, dict) and "id" in v
                    )
                    token = result.get("next_page_token")
                    if token:
                        following.append((name, str(token)))
                    else:
                        answered.add(name)
                pending = following
        unique = sorted({i for found in ids.values() for i in found})
        records: dict[str, Record] = {}

        def fetch(vuln_id: str) -> tuple[str, Record | None]:
            try:
                return vuln_id, Record.from_json(
                    self._call("GET", f"/v1/vulns/{vuln_id}"), source=f"OSV {vuln_id}"
                )
            except (ConnectionError, ConfigError):
                return vuln_id, None

        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            records.update((vuln_id, rec) for vuln_id, rec in pool.map(fetch, unique) if rec is not None)
        found: dict[str, tuple[Record, ...]] = {}
        for name in answered:
            mine = ids.get(name, set())
            if all(i in records for i in mine):  # a record that could not be fetched: not answered
                found[name] = tuple(records[i] for i in sorted(mine))
        return Lookup(records=found, source=f"OSV API {self.url}", as_of=datetime.now(UTC))
