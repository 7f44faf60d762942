"""Requirements files read as pip reads them, and the audit: findings, aliases merged, fixes, fail closed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar

import pytest

from pipewarden.errors import ConfigError
from pipewarden.supply import OfflineDatabase, audit, read_requirements
from tests.cli.clirun import run
from tests.supply.osvfixtures import write_folder

H = "sha256:" + "ab" * 32


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_every_kind_of_line(tmp_path: Path) -> None:
    _write(tmp_path, "sub/more.txt", "Listed==1.2.3  # from a nested file\n")
    _write(tmp_path, "constraints.txt", "limited<6\n")
    main = _write(
        tmp_path,
        "requirements.txt",
        f"""--index-url https://mirror.example/simple
# a comment
-r sub/more.txt
-c constraints.txt
torchlike[cuda,extra]==2.3.0+cu121 ; python_version >= "3.9" \\
    --hash={H}
yaml-ish>=0.5
-e git+https://example.test/repo.git#egg=localpkg
./vendor/thing
weird===not.a.version
""",
    )
    deps = {d.name: d for d in read_requirements(main)}
    assert deps["Listed"].pinned == "1.2.3" and deps["Listed"].source.endswith("more.txt:1")
    assert deps["limited"].constraint
    torch = deps["torchlike"]
    assert torch.pinned == "2.3.0+cu121" and torch.extras == ("cuda", "extra") and torch.hashes == (H,)
    assert "python_version" in torch.marker and torch.source.endswith("requirements.txt:5")
    assert deps["yaml-ish"].pinned is None and deps["yaml-ish"].specifier == ">=0.5"
    assert deps["localpkg"].note and deps["thing"].note
    assert deps["weird"].pinned == "not.a.version"  # === takes any text; the audit cannot read it


@pytest.mark.parametrize(
    ("files", "problem"),
    [
        ({"requirements.txt": "-r requirements.txt\n"}, "included in a cycle"),
        ({"requirements.txt": "-r missing.txt\n"}, "no such requirements file"),
        ({"requirements.txt": "numpy==1.0\n--frobnicate\n"}, r"requirements\.txt:2: unknown option"),
        ({"requirements.txt": "numpy===\n"}, r"requirements\.txt:1: not a requirement"),
    ],
)
def test_a_bad_file_names_the_file_and_line(tmp_path: Path, files: dict[str, str], problem: str) -> None:
    for name, text in files.items():
        _write(tmp_path, name, text)
    with pytest.raises(ConfigError, match=problem):
        read_requirements(tmp_path / "requirements.txt")


def _audit(tmp_path: Path, text: str):  # type: ignore[no-untyped-def]
    return audit(
        read_requirements(_write(tmp_path, "requirements.txt", text)),
        OfflineDatabase(write_folder(tmp_path / "db")),
    )


def test_the_audit_reports_each_rule_and_merges_aliases(tmp_path: Path) -> None:
    report = _audit(
        tmp_path,
        f"torchlike==2.3.0+cu121 --hash={H}\n"
        f"listed==1.2.4 --hash={H}\n"
        f"listed2==1.0 --hash={H}\n"
        "yaml-ish>=0.5\n"
        "reqeusts==2.0\n"
        f"weird===1.0-not-pep440 --hash={H}\n",
    )
    by_rule: dict[str, list] = {}  # type: ignore[type-arg]
    for f in report.findings:
        by_rule.setdefault(f.rule_id, []).append(f)
    (torch,) = [f for f in by_rule["PW-DEPS-101"] if f.evidence["package"] == "torchlike"]
    assert set(torch.evidence["advisories"]) == {"PWTEST-0001", "GHSA-test-0001", "PWTEST-0007"}
    assert "CVE-0000-00001" in torch.evidence["aliases"] and torch.evidence["fix"] == "2.4.0"
    assert torch.severity.label == "high" and "upgrade to torchlike==2.4.0" in torch.message
    assert [f.evidence["package"] for f in by_rule["PW-DEPS-102"]] == ["reqeusts"]
    assert by_rule["PW-DEPS-102"][0].severity.label == "critical"
    assert [f.evidence["package"] for f in by_rule["PW-DEPS-201"]] == ["yaml-ish"]
    assert {f.evidence["package"] for f in by_rule["PW-DEPS-202"]} == {"reqeusts"}
    assert [f.evidence["reason"] for f in by_rule["PW-DEPS-103"]] == ["version not PEP 440"]
    (summary,) = by_rule["PW-DEPS-200"]
    assert summary.evidence["database_age_days"] is not None and summary.evidence["audited"] == 4


def test_a_package_the_database_has_no_record_for_is_clean_but_counted(tmp_path: Path) -> None:
    report = _audit(tmp_path, f"numpy==2.4.0 --hash={H}\n")
    assert [f.rule_id for f in report.findings] == ["PW-DEPS-200"]


def test_the_command_exits_by_findings_and_refuses_to_run_without_a_source(tmp_path: Path) -> None:
    write_folder(tmp_path / "db")
    _write(tmp_path, "requirements.txt", f"torchlike==1.2 --hash={H}\n")
    result = run("deps", "requirements.txt", "--db", "db", "--format", "json", cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    findings = json.loads(result.stdout)["findings"]
    assert [f["rule_id"] for f in findings] == ["PW-DEPS-101", "PW-DEPS-200"]
    assert findings[0]["evidence"]["fix"] == "1.5.0"
    missing = run("deps", "requirements.txt", "--db", "nowhere", cwd=tmp_path)
    assert missing.returncode == 2 and "no such vulnerability database" in missing.stderr


# --- the online path: a loopback server speaking the OSV API ------------------------------------------------


class _Osv(__import__("http.server").server.BaseHTTPRequestHandler):
    calls: ClassVar[list[str]] = []

    def _send(self, doc: object, status: int = 200) -> None:
        body = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        from pipewarden.supply import normalize
        from tests.supply.osvfixtures import RECORDS

        type(self).calls.append(self.path)
        queries = json.loads(self.rfile.read(int(self.headers["Content-Length"])))["queries"]
        results = []
        for query in queries:
            name = normalize(query["package"]["name"])
            ids = [d["id"] for d in RECORDS if normalize(d["affected"][0]["package"]["name"]) == name]
            results.append({"vulns": [{"id": i} for i in ids]} if ids else {})
        self._send({"results": results})

    def do_GET(self) -> None:
        from tests.supply.osvfixtures import RECORDS

        type(self).calls.append(self.path)
        wanted = self.path.rsplit("/", 1)[-1]
        doc = next((d for d in RECORDS if d["id"] == wanted), None)
        self._send(doc if doc else {"message": "Bug not found"}, 200 if doc else 404)

    def log_message(self, format: str, *args: object) -> None:
        return


def test_the_osv_api_is_asked_in_one_batch_and_an_unreachable_one_is_no_pass(tmp_path: Path) -> None:
    import http.server
    import socket
    import threading

    from pipewarden.supply import OsvApi

    _Osv.calls = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Osv)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    names = [f"pkg{i}" for i in range(150)]
    text = "".join(f"{n}==1.0 --hash={H}\n" for n in names) + f"torchlike==2.3.0 --hash={H}\n"
    deps = read_requirements(_write(tmp_path, "requirements.txt", text))
    try:
        api = OsvApi(f"http://127.0.0.1:{server.server_address[1]}")
        report = audit(deps, api)
    finally:
        server.shutdown()
    assert _Osv.calls.count("/v1/querybatch") == 1  # 151 packages, one query
    assert sorted(c for c in _Osv.calls if c.startswith("/v1/vulns/")) == [
        "/v1/vulns/GHSA-test-0001",
        "/v1/vulns/PWTEST-0001",
        "/v1/vulns/PWTEST-0007",
    ]
    assert [f.evidence["package"] for f in report.findings if f.rule_id == "PW-DEPS-101"] == ["torchlike"]
    assert not [f for f in report.findings if f.rule_id == "PW-DEPS-103"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    down = audit(deps, OsvApi(f"http://127.0.0.1:{closed}", timeout=2))
    assert len([f for f in down.findings if f.rule_id == "PW-DEPS-103"]) == 151
    assert down.exit_code(__import__("pipewarden.findings", fromlist=["Severity"]).Severity.MEDIUM) == 1


@pytest.mark.parametrize(
    ("name", "imitates"),
    [
        ("reqeusts", "requests"),  # two letters swapped
        ("nunpy", "numpy"),  # one letter changed
        ("torchvison", "torchvision"),  # one letter dropped
        ("tensorfl0w", "tensorflow"),  # a look-alike digit
        ("scikit-learm", "scikit-learn"),
        ("python-dateutils", "python-dateutil"),  # one letter added
        ("Scikit_Learm", "scikit-learn"),  # compared as PEP 503 names
    ],
)
def test_typosquats_of_popular_names_are_suspects(name: str, imitates: str) -> None:
    from pipewarden.supply._typosquat import popular_names, squat_target

    target = squat_target(name, popular_names())
    assert target is not None and target[0] == imitates


@pytest.mark.parametrize(
    "name", ["requests", "numpy", "torch", "boto", "dask", "s3fs", "my-internal-lib", "six"]
)
def test_popular_and_unrelated_names_are_not_suspects(name: str) -> None:
    from pipewarden.supply._typosquat import popular_names, squat_target

    assert squat_target(name, popular_names()) is None


def test_a_projects_own_names_join_the_list(tmp_path: Path) -> None:
    from pipewarden.supply._typosquat import popular_names

    report = audit(
        read_requirements(_write(tmp_path, "requirements.txt", f"acme-featurestore==1.0 --hash={H}\n")),
        OfflineDatabase(write_folder(tmp_path / "db")),
        popular=popular_names(["acme-feature-store"]),
    )
    assert [f.evidence.get("imitates") for f in report.findings if f.rule_id == "PW-DEPS-301"] == [
        "acme-feature-store"
    ]


def test_ignores_need_a_reason_and_an_expiry_and_expired_ones_come_back(tmp_path: Path) -> None:
    from datetime import date

    from pipewarden.supply import apply_ignores, load_ignores

    report = _audit(tmp_path, f"torchlike==2.3.0 --hash={H}\nyaml-ish>=0.5\n")
    policy = _write(
        tmp_path,
        "pyproject.toml",
        """
[[tool.pipewarden.ignore]]
id = "CVE-0000-00001"
package = "torchlike"
reason = "the vulnerable parser is never reached"
expires = 2027-01-31

[[tool.pipewarden.ignore]]
id = "PW-DEPS-201"
reason = "yaml-ish floats on purpose until the migration"
expires = "2026-06-01"
""",
    )
    ignores = load_ignores(policy)
    before = apply_ignores(report, ignores, today=date(2026, 5, 1))
    assert [f.rule_id for f in before.findings] == ["PW-DEPS-200"]
    assert before.findings[0].evidence["ignored"] == 2
    after = apply_ignores(report, ignores, today=date(2026, 7, 1))
    assert sorted(f.rule_id for f in after.findings) == ["PW-DEPS-200", "PW-DEPS-201", "PW-DEPS-901"]
    later = apply_ignores(report, ignores, today=date(2027, 2, 1))
    assert sorted(f.rule_id for f in later.findings).count("PW-DEPS-901") == 2
    for text, problem in [
        ('[[tool.pipewarden.ignore]]\nid = "X"\nexpires = 2027-01-01\n', "needs a reason"),
        ('[[tool.pipewarden.ignore]]\nid = "X"\nreason = "r"\n', "needs an expiry date"),
        ('[[tool.pipewarden.ignore]]\nid = "X"\nreason = "r"\nexpires = "soon"\n', "not a date"),
        ('[tool.pipewarden]\nignore = "X"\n', "array of tables"),
    ]:
        bad = _write(tmp_path, "bad.toml", text)
        with pytest.raises(ConfigError, match=problem):
            load_ignores(bad)


def test_the_command_reads_ignores_from_the_pyproject_beside_the_file(tmp_path: Path) -> None:
    write_folder(tmp_path / "db")
    _write(tmp_path, "requirements.txt", f"torchlike==1.2 --hash={H}\n")
    _write(
        tmp_path,
        "pyproject.toml",
        '[[tool.pipewarden.ignore]]\nid = "PWTEST-0001"\n'
        'reason = "accepted risk, ticket 7"\nexpires = 2099-01-01\n',
    )
    result = run("deps", "requirements.txt", "--db", "db", "--format", "json", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert [f["rule_id"] for f in json.loads(result.stdout)["findings"]] == ["PW-DEPS-200"]
