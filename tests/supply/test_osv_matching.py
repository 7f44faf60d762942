"""OSV matching by the schema's rules, on PEP 440 versions, with the database read fail-closed."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipewarden.errors import ConfigError
from pipewarden.supply import OfflineDatabase, Record, public_version, smallest_fix
from tests.supply.osvfixtures import RECORDS, record, write_folder, write_zip


def _rec(doc: dict) -> Record:  # type: ignore[type-arg]
    return Record.from_json(doc, source="test")


@pytest.mark.parametrize(
    ("version", "affected"),
    [
        ("0.9", False),
        ("1.0.0", True),
        ("1.4.9", True),
        ("1.5.0", False),
        ("1.9", False),
        ("2.0.0", True),
        ("2.3.0", True),
        ("2.3.0+cu121", True),
        ("2.3.1", False),
        ("2.3.1rc1", True),
        ("3.0", False),
    ],
)
def test_introduced_and_fixed_events(version: str, affected: bool) -> None:
    assert _rec(RECORDS[0]).affects("torchlike", public_version(version)) is affected


@pytest.mark.parametrize(
    ("version", "affected"),
    [("2.9", False), ("3.0.0", True), ("3.1.0", True), ("3.1.0.post1", False), ("3.1.1", False)],
)
def test_last_affected_is_inclusive(version: str, affected: bool) -> None:
    assert _rec(RECORDS[2]).affects("torch-like", public_version(version)) is affected


def test_names_compare_as_pep_503_and_zero_means_every_version() -> None:
    yaml_ish = _rec(RECORDS[3])
    assert yaml_ish.affects("YAML_ish", public_version("0.0.1")) and yaml_ish.affects(
        "yaml.ish", public_version("0.8.9")
    )
    assert not yaml_ish.affects("yaml-ish", public_version("0.9"))


def test_version_lists_withdrawn_records_and_limits() -> None:
    listed, withdrawn, limited = _rec(RECORDS[4]), _rec(RECORDS[5]), _rec(RECORDS[6])
    assert listed.affects("listed", public_version("1.2.3")) and not listed.affects(
        "listed", public_version("1.2.5")
    )
    assert listed.affects("listed", public_version("1.2.3.0"))  # compared as versions, not text
    assert not withdrawn.affects("listed", public_version("2.0.0"))
    assert limited.affects("limited", public_version("4.9")) and not limited.affects(
        "limited", public_version("5.0")
    )


def test_the_smallest_upgrade_clears_every_advisory() -> None:
    records = [_rec(d) for d in RECORDS if d["affected"][0]["package"]["name"] == "torchlike"]
    assert str(smallest_fix(records, "torchlike", public_version("2.3.0"))) == "2.4.0"
    assert str(smallest_fix(records, "torchlike", public_version("1.2"))) == "1.5.0"


def test_unreadable_ranges_are_problems_not_passes() -> None:
    bad = _rec(record("PWTEST-9", "x", ranges=[[{"introduced": "0"}, {"fixed": "not a version!"}]]))
    assert bad.problems and "not a PEP 440 version" in bad.problems[0]


def test_folder_and_zip_databases_read_alike(tmp_path: Path) -> None:
    folder = OfflineDatabase(write_folder(tmp_path / "db"))
    archive = OfflineDatabase(write_zip(tmp_path / "db.zip"))
    assert folder.count == archive.count == len(RECORDS)
    assert {r.id for r in folder.lookup(["TorchLike"]).records["torchlike"]} == {
        "PWTEST-0001",
        "GHSA-test-0001",
        "PWTEST-0007",
    }
    assert folder.newest is not None and folder.newest.year == 2026


def test_a_corrupt_or_empty_database_is_an_error_naming_it(tmp_path: Path) -> None:
    db = write_folder(tmp_path / "db")
    (db / "broken.json").write_text("{not json")
    with pytest.raises(ConfigError, match=r"broken\.json: not a JSON OSV record"):
        OfflineDatabase(db)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no OSV records"):
        OfflineDatabase(tmp_path / "empty")
    with pytest.raises(ConfigError, match="no such vulnerability database"):
        OfflineDatabase(tmp_path / "missing")
    (tmp_path / "notzip.bin").write_bytes(b"nope")
    with pytest.raises(ConfigError, match="neither a folder nor a zip"):
        OfflineDatabase(tmp_path / "notzip.bin")


@pytest.mark.parametrize(
    ("vector", "score", "rating"),
    [
        # Base scores of these vectors as the CVSS v3.1 calculator gives them.
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8, "critical"),
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H", 10.0, "critical"),
        ("CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H", 7.8, "high"),
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:U/C:H/I:H/A:H", 8.8, "high"),
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H", 7.5, "high"),
        ("CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:N/A:N", 5.9, "medium"),
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N", 6.1, "medium"),
        ("CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N", 0.0, "info"),
    ],
)
def test_cvss_base_scores(vector: str, score: float, rating: str) -> None:
    from pipewarden.supply._cvss import base_score, severity_of

    assert base_score(vector) == score
    assert severity_of(score).label == rating


def test_a_vector_that_is_not_cvss_v3_has_no_score() -> None:
    from pipewarden.supply._cvss import base_score

    assert base_score("AV:N/AC:L/Au:N/C:P/I:P/A:P") is None  # CVSS v2
    assert base_score("CVSS:3.1/AV:N/AC:L") is None


def test_an_advisory_with_only_a_vector_is_rated_by_it(tmp_path: Path) -> None:
    from pipewarden.supply import audit
    from pipewarden.supply._requirements import Dependency

    doc = record("PWTEST-0100", "vectored", ranges=[[{"introduced": "0"}]])
    doc["severity"] = [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:N/A:N"}]
    (tmp_path / "db").mkdir()
    (tmp_path / "db" / "a.json").write_text(__import__("json").dumps(doc))
    dep = Dependency(name="vectored", source="r.txt:1", pinned="1.0", hashes=("sha256:00",))
    report = audit([dep], OfflineDatabase(tmp_path / "db"))
    assert [f.severity.label for f in report.findings if f.rule_id == "PW-DEPS-101"] == ["medium"]
