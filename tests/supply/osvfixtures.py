"""A small OSV database written for the tests. Every record here is synthetic (ids PWTEST-..., GHSA-test-...,
MAL-TEST-...): the ranges exercise the OSV schema's rules, they describe no real advisory."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any


def record(
    rid: str,
    package: str,
    *,
    ranges: list[list[dict[str, str]]] = (),
    versions: list[str] = (),
    aliases: list[str] = (),
    withdrawn: bool = False,
    severity: str = "",
    summary: str = "",
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "schema_version": "1.6.0",
        "id": rid,
        "modified": "2026-11-20T10:00:00Z",
        "summary": summary or f"synthetic advisory {rid}",
        "aliases": list(aliases),
        "affected": [
            {
                "package": {"ecosystem": "PyPI", "name": package},
                "ranges": [{"type": "ECOSYSTEM", "events": events} for events in ranges],
                "versions": list(versions),
            }
        ],
    }
    if withdrawn:
        doc["withdrawn"] = "2026-11-21T00:00:00Z"
    if severity:
        doc["database_specific"] = {"severity": severity}
    return doc


RECORDS = [
    # Two disjoint affected ranges, fixed in 1.5.0 and 2.3.1.
    record(
        "PWTEST-0001",
        "torchlike",
        ranges=[[{"introduced": "1.0.0"}, {"fixed": "1.5.0"}, {"introduced": "2.0.0"}, {"fixed": "2.3.1"}]],
        aliases=["CVE-0000-00001", "GHSA-test-0001"],
        severity="HIGH",
    ),
    # The same vulnerability under another id, aliases overlapping: merged into one finding.
    record(
        "GHSA-test-0001",
        "torchlike",
        ranges=[[{"introduced": "2.0.0"}, {"fixed": "2.3.1"}]],
        aliases=["PWTEST-0001"],
        severity="HIGH",
    ),
    # last_affected: 3.1.0 itself is affected, 3.1.1 is not.
    record(
        "PWTEST-0002",
        "Torch_Like",
        ranges=[[{"introduced": "3.0.0"}, {"last_affected": "3.1.0"}]],
        severity="MODERATE",
    ),
    # From the first release on, fixed in 0.9.
    record("PWTEST-0003", "yaml-ish", ranges=[[{"introduced": "0"}, {"fixed": "0.9"}]], severity="CRITICAL"),
    # An explicit version list only.
    record("PWTEST-0004", "listed", versions=["1.2.3", "1.2.4"]),
    # Withdrawn: affects nothing.
    record("PWTEST-0005", "listed", versions=["2.0.0"], withdrawn=True),
    # A limit ends the range.
    record("PWTEST-0006", "limited", ranges=[[{"introduced": "0"}, {"limit": "5.0"}]]),
    # A second advisory on torchlike 2.x whose fix is later: the smallest clearing upgrade is 2.4.0.
    record(
        "PWTEST-0007", "torchlike", ranges=[[{"introduced": "2.3.0"}, {"fixed": "2.4.0"}]], severity="LOW"
    ),
    # A malicious package (the OSV malicious-packages feed).
    record("MAL-TEST-0001", "reqeusts", ranges=[[{"introduced": "0"}]], summary="Malicious code in reqeusts"),
]


def write_folder(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for doc in RECORDS:
        (folder / f"{doc['id']}.json").write_text(json.dumps(doc))
    return folder


def write_zip(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for doc in RECORDS:
            archive.writestr(f"{doc['id']}.json", json.dumps(doc))
    return path
