"""`pipewarden scan` as a user runs it: the real command in a child process.

Exit codes are the contract CI pipelines build on (DESIGN.md): 0 nothing at or
above the threshold, 1 findings at or above it, 2 usage or configuration
error. Every malicious fixture is built from opcodes here and is never loaded.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
from functools import cache
from html.parser import HTMLParser
from importlib.metadata import version
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from typer.testing import CliRunner

from tests.cli.clirun import run

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "data" / "sarif-schema-2.1.0.json"

# CWE-502, the classic: GLOBAL os.system, a one-string tuple, REDUCE. Loading
# this runs `echo hi`.
EVIL = b"\x80\x02cos\nsystem\nX\x07\x00\x00\x00echo hi\x85R."
# What pickle.dumps(mypkg.models.Net()) looks like for a stateless class at
# protocol 2: GLOBAL, EMPTY_TUPLE, NEWOBJ. Not dangerous, but not on the
# built-in allowlist either, so it needs a policy entry.
CUSTOM = b"\x80\x02cmypkg.models\nNet\n)\x81."
ALLOW_CUSTOM = "allow:\n  - global: mypkg.models.Net\n    reason: ours\n"


def touch_payload(marker: Path) -> bytes:
    """os.system('touch MARKER') (CWE-502): proves whether a scan ever ran the payload."""
    command = f"touch {marker}".encode()
    return b"\x80\x02cos\nsystem\nX" + len(command).to_bytes(4, "little") + command + b"\x85R."


@pytest.fixture
def work(tmp_path: Path) -> Path:
    (tmp_path / "benign.pkl").write_bytes(pickle.dumps({"a": 1}))
    (tmp_path / "evil.pkl").write_bytes(EVIL)
    (tmp_path / "custom.pkl").write_bytes(CUSTOM)
    clean = tmp_path / "clean"
    clean.mkdir()
    (clean / "benign.pkl").write_bytes(pickle.dumps([1, 2.5, "x", None]))
    (clean / "README.txt").write_text("not a model\n")
    mixed = tmp_path / "mixed"
    (mixed / "sub" / "deeper").mkdir(parents=True)
    (mixed / "a_benign.pkl").write_bytes(pickle.dumps({"a": 1}))
    (mixed / "sub" / "deeper" / "evil.pkl").write_bytes(EVIL)
    (mixed / "z_benign.pkl").write_bytes(pickle.dumps((1, 2)))
    (tmp_path / "ok-policy.yaml").write_text(ALLOW_CUSTOM)
    return tmp_path


def findings_of(result: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    doc: dict[str, Any] = json.loads(result.stdout)
    return list(doc["findings"])


def rule_ids(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [f["rule_id"] for f in findings_of(result)]


def assert_usage_error(result: subprocess.CompletedProcess[str], *named: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    for text in named:
        assert text in result.stderr, (text, result.stderr)


# -- version, help, verbosity --------------------------------------------------


def test_version_prints_the_installed_version(tmp_path: Path) -> None:
    result = run("--version", cwd=tmp_path)
    assert result.returncode == 0
    assert result.stdout == f"pipewarden {version('pipewarden')}\n"


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_root_help_lists_the_scan_command(tmp_path: Path, flag: str) -> None:
    result = run(flag, cwd=tmp_path)
    assert result.returncode == 0
    assert "scan" in result.stdout
    assert "--version" in result.stdout
    assert "--verbose" in result.stdout


def test_scan_help_documents_options_and_their_environment_variables(tmp_path: Path) -> None:
    result = run("scan", "--help", cwd=tmp_path)
    assert result.returncode == 0
    for text in (
        "--format",
        "--output",
        "--fail-on",
        "--policy",
        "--max-opcodes",
        "PIPEWARDEN_FORMAT",
        "PIPEWARDEN_FAIL_ON",
        "PIPEWARDEN_OUTPUT",
    ):
        assert text in result.stdout, text


def test_no_command_shows_usage_and_exits_2(tmp_path: Path) -> None:
    result = run(cwd=tmp_path)
    assert result.returncode == 2
    assert "Usage" in result.stdout + result.stderr


def test_scan_without_a_path_is_a_usage_error(tmp_path: Path) -> None:
    result = run("scan", cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


def test_unknown_option_is_a_usage_error(work: Path) -> None:
    result = run("scan", "benign.pkl", "--no-such-option", cwd=work)
    assert_usage_error(result, "--no-such-option")


@pytest.mark.parametrize("verbosity", [["-v"], ["-vv"], ["--verbose"]])
def test_verbose_flags_are_accepted_and_leave_the_report_alone(work: Path, verbosity: list[str]) -> None:
    plain = run("scan", "evil.pkl", cwd=work)
    verbose = run(*verbosity, "scan", "evil.pkl", cwd=work)
    assert verbose.returncode == plain.returncode == 1
    assert verbose.stdout == plain.stdout


# -- exit codes over real files ----------------------------------------------------


def test_benign_pickle_exits_0_and_stays_quiet_when_piped(work: Path) -> None:
    result = run("scan", "benign.pkl", cwd=work)
    assert result.returncode == 0
    assert result.stdout == "scan: 1 target(s), no findings\n"
    assert result.stderr == ""  # no progress bar or log noise when not on a terminal


def test_malicious_pickle_exits_1_and_names_the_danger(work: Path) -> None:
    result = run("scan", "evil.pkl", cwd=work)
    assert result.returncode == 1
    assert "PW-SCAN-101" in result.stdout
    assert "os.system" in result.stdout
    assert "evil.pkl" in result.stdout
    assert "worst: critical" in result.stdout


def test_scanning_never_runs_the_payload(tmp_path: Path) -> None:
    marker = tmp_path / "PWNED"
    (tmp_path / "trap.pkl").write_bytes(touch_payload(marker))
    result = run("scan", "trap.pkl", cwd=tmp_path)
    assert result.returncode == 1
    assert "PW-SCAN-101" in result.stdout
    assert not marker.exists()


def test_folder_scan_exits_1_if_any_file_in_it_is_malicious(work: Path) -> None:
    result = run("scan", "mixed", "--format", "json", cwd=work)
    assert result.returncode == 1
    doc = json.loads(result.stdout)
    assert doc["summary"]["targets"] == 3
    bad = [f for f in doc["findings"] if f["rule_id"] == "PW-SCAN-101"]
    assert [Path(f["location"]["path"]).as_posix() for f in bad] == ["mixed/sub/deeper/evil.pkl"]


def test_folder_of_benign_files_exits_0(work: Path) -> None:
    result = run("scan", "clean", cwd=work)
    assert result.returncode == 0
    assert "2 target(s)" in result.stdout


def test_several_paths_make_one_report(work: Path) -> None:
    result = run("scan", "benign.pkl", "clean", "evil.pkl", "--format", "json", cwd=work)
    assert result.returncode == 1
    doc = json.loads(result.stdout)
    assert doc["summary"]["targets"] == 4
    assert doc["summary"]["max_severity"] == "critical"


@pytest.mark.parametrize(
    ("target", "fail_on", "code"),
    [
        # custom.pkl holds one high finding (a global not on the allowlist).
        ("custom.pkl", None, 1),  # the default threshold is medium
        ("custom.pkl", "high", 1),
        ("custom.pkl", "critical", 0),
        ("custom.pkl", "CRITICAL", 0),  # case does not matter
        ("evil.pkl", "critical", 1),
        # clean/ holds a benign pickle and a README: one info finding (skipped file).
        ("clean", None, 0),
        ("clean", "low", 0),
        ("clean", "info", 1),
        ("benign.pkl", "info", 0),
    ],
)
def test_fail_on_sets_the_threshold_for_exit_1(
    work: Path, target: str, fail_on: str | None, code: int
) -> None:
    args = ["scan", target] + (["--fail-on", fail_on] if fail_on else [])
    assert run(*args, cwd=work).returncode == code


# -- report formats ------------------------------------------------------------------


@cache
def sarif_validator() -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(json.loads(SCHEMA_PATH.read_text(encoding="utf-8")))


def test_json_format_parses_and_carries_the_findings(work: Path) -> None:
    result = run("scan", "evil.pkl", "--format", "json", cwd=work)
    assert result.returncode == 1
    doc = json.loads(result.stdout)
    assert doc["tool"] == "pipewarden"
    assert doc["command"] == "scan"
    assert doc["summary"]["max_severity"] == "critical"
    (finding,) = doc["findings"]
    assert finding["rule_id"] == "PW-SCAN-101"
    assert finding["location"]["path"] == "evil.pkl"
    assert "CWE-502" in finding["references"]


@pytest.mark.parametrize("target", ["evil.pkl", "benign.pkl", "mixed", "clean"])
def test_sarif_format_validates_against_the_oasis_schema(work: Path, target: str) -> None:
    result = run("scan", target, "-f", "sarif", cwd=work)
    assert result.returncode in (0, 1)
    doc = json.loads(result.stdout)
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in sarif_validator().iter_errors(doc)]
    assert errors == []
    assert doc["version"] == "2.1.0"


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.attrs: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.attrs.update(name for name, _ in attrs)


def test_html_format_is_a_self_contained_page(work: Path) -> None:
    result = run("scan", "mixed", "--format", "html", cwd=work)
    assert result.returncode == 1
    assert result.stdout.startswith("<!DOCTYPE html>")
    parser = _Tags()
    parser.feed(result.stdout)
    assert "script" not in parser.tags
    assert not {"src", "href"} & parser.attrs
    assert "PW-SCAN-101" in result.stdout


# -- --output --------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["json", "sarif", "html", "text"])
def test_output_writes_the_report_to_the_file_instead_of_stdout(work: Path, fmt: str) -> None:
    piped = run("scan", "evil.pkl", "--format", fmt, cwd=work)
    written = run("scan", "evil.pkl", "--format", fmt, "--output", "report.out", cwd=work)
    assert written.returncode == piped.returncode == 1
    assert written.stdout == ""
    assert (work / "report.out").read_text(encoding="utf-8") == piped.stdout
    assert sorted(p.name for p in work.iterdir() if p.name.startswith("report")) == ["report.out"]


def test_output_replaces_an_older_report(work: Path) -> None:
    out = work / "report.json"
    out.write_text("old report\n")
    result = run("scan", "benign.pkl", "-f", "json", "-o", "report.json", cwd=work)
    assert result.returncode == 0
    assert json.loads(out.read_text())["summary"]["targets"] == 1


@pytest.mark.parametrize(
    "bad",
    [
        ["missing.pkl"],
        ["benign.pkl", "--fail-on", "severe"],
        ["custom.pkl", "--policy", "missing-policy.yaml"],
    ],
)
def test_a_failed_run_leaves_an_existing_report_untouched(work: Path, bad: list[str]) -> None:
    out = work / "report.json"
    out.write_text("previous report\n")
    result = run("scan", *bad, "-f", "json", "-o", "report.json", cwd=work)
    assert result.returncode == 2
    assert out.read_text() == "previous report\n"
    assert sorted(p.name for p in work.iterdir() if p.name.startswith("report")) == ["report.json"]


def test_a_failed_run_creates_no_report_file(work: Path) -> None:
    result = run("scan", "missing.pkl", "-o", "report.json", cwd=work)
    assert result.returncode == 2
    assert not [p for p in work.iterdir() if p.name.startswith("report")]


def test_output_into_a_missing_folder_is_an_error_naming_it(work: Path) -> None:
    result = run("scan", "benign.pkl", "-o", "nowhere/report.json", cwd=work)
    assert_usage_error(result, "nowhere/report.json")
    assert not (work / "nowhere").exists()


def test_output_onto_a_folder_fails_without_leaving_a_partial_file(work: Path) -> None:
    (work / "reports").mkdir()
    result = run("scan", "benign.pkl", "-o", "reports", cwd=work)
    assert_usage_error(result, "reports")
    assert sorted(p.name for p in work.iterdir() if p.name.startswith("reports")) == ["reports"]


# -- --policy --------------------------------------------------------------------------


def test_a_policy_file_allows_the_users_own_global(work: Path) -> None:
    assert run("scan", "custom.pkl", cwd=work).returncode == 1
    result = run("scan", "custom.pkl", "--policy", "ok-policy.yaml", cwd=work)
    assert result.returncode == 0
    assert "no findings" in result.stdout


def test_the_policy_can_come_from_the_environment(work: Path) -> None:
    result = run("scan", "custom.pkl", cwd=work, env={"PIPEWARDEN_SCAN_POLICY": "ok-policy.yaml"})
    assert result.returncode == 0


def test_a_policy_for_one_global_does_not_let_others_through(work: Path) -> None:
    result = run("scan", "evil.pkl", "custom.pkl", "--policy", "ok-policy.yaml", "-f", "json", cwd=work)
    assert result.returncode == 1
    assert rule_ids(result) == ["PW-SCAN-101"]


def test_a_policy_that_allows_os_system_is_refused(work: Path) -> None:
    (work / "danger.yaml").write_text("allow:\n  - global: os.system\n    reason: convenient\n")
    result = run("scan", "evil.pkl", "--policy", "danger.yaml", cwd=work)
    assert_usage_error(result, "danger.yaml", "os.system")


def test_the_unsafe_escape_hatch_is_logged_each_time(work: Path) -> None:
    (work / "unsafe.yaml").write_text(
        "unsafe_allow_dangerous: true\nallow:\n  - global: os.system\n    reason: lab machine\n"
    )
    result = run("scan", "evil.pkl", "--policy", "unsafe.yaml", cwd=work)
    assert result.returncode == 0
    assert "unsafe.yaml" in result.stderr
    assert "os.system" in result.stderr


@pytest.mark.parametrize(
    "content",
    [
        pytest.param("allow: [\n  - {global: x\n", id="bad-yaml"),
        pytest.param("allow:\n  - global: mypkg.models.Net\n", id="missing-reason"),
        pytest.param("allow:\n  - global: mypkg.models.Net\n    reason: '  '\n", id="blank-reason"),
        pytest.param("allow: []\n", id="empty-allow"),
        pytest.param("- mypkg.models.Net\n", id="not-a-mapping"),
        pytest.param(ALLOW_CUSTOM + "deny: []\n", id="unknown-key"),
        pytest.param("allow:\n  - global: 'not a name!'\n    reason: r\n", id="bad-global"),
        pytest.param("allow:\n  - global: Net\n    reason: r\n", id="no-module"),
        pytest.param("", id="empty-file"),
    ],
)
def test_a_malformed_policy_is_a_usage_error_naming_the_file(work: Path, content: str) -> None:
    (work / "broken-policy.yaml").write_text(content)
    result = run("scan", "custom.pkl", "--policy", "broken-policy.yaml", cwd=work)
    assert_usage_error(result, "broken-policy.yaml")


def test_a_missing_policy_file_is_a_usage_error_naming_it(work: Path) -> None:
    result = run("scan", "custom.pkl", "--policy", "nope.yaml", cwd=work)
    assert_usage_error(result, "nope.yaml")


# -- bad input -------------------------------------------------------------------------


def test_a_missing_path_is_a_usage_error_naming_it(work: Path) -> None:
    result = run("scan", "benign.pkl", "models/missing.pt", cwd=work)
    assert_usage_error(result, "models/missing.pt")
    assert result.stdout == ""


@pytest.mark.parametrize("name", ["models[v2]/x.pkl", "odd[/b]name.pkl"])
def test_error_messages_show_paths_with_brackets_literally(work: Path, name: str) -> None:
    result = run("scan", name, cwd=work)
    assert_usage_error(result, name)


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--format", "xml"], "'xml'"),
        (["-f", "JSON5"], "'JSON5'"),
        (["--fail-on", "severe"], "'severe'"),
        (["--max-opcodes", "0"], "--max-opcodes"),
        (["--max-seconds", "-1"], "--max-seconds"),
    ],
)
def test_bad_option_values_are_usage_errors_naming_the_value(work: Path, args: list[str], named: str) -> None:
    result = run("scan", "evil.pkl", *args, cwd=work)
    assert_usage_error(result, named)
    assert result.stdout == ""


# -- environment fallbacks -----------------------------------------------------------


def test_fail_on_falls_back_to_the_environment(work: Path) -> None:
    assert run("scan", "custom.pkl", cwd=work, env={"PIPEWARDEN_FAIL_ON": "critical"}).returncode == 0
    assert run("scan", "clean", cwd=work, env={"PIPEWARDEN_FAIL_ON": "info"}).returncode == 1


def test_a_bad_fail_on_in_the_environment_is_a_usage_error(work: Path) -> None:
    result = run("scan", "benign.pkl", cwd=work, env={"PIPEWARDEN_FAIL_ON": "sometimes"})
    assert_usage_error(result, "'sometimes'")


def test_format_falls_back_to_the_environment(work: Path) -> None:
    result = run("scan", "evil.pkl", cwd=work, env={"PIPEWARDEN_FORMAT": "json"})
    assert result.returncode == 1
    assert rule_ids(result) == ["PW-SCAN-101"]


def test_command_line_options_win_over_the_environment(work: Path) -> None:
    env = {"PIPEWARDEN_FORMAT": "json", "PIPEWARDEN_FAIL_ON": "critical"}
    result = run("scan", "custom.pkl", "--format", "sarif", "--fail-on", "high", cwd=work, env=env)
    assert result.returncode == 1
    assert json.loads(result.stdout)["version"] == "2.1.0"


def test_output_falls_back_to_the_environment(work: Path) -> None:
    result = run("scan", "evil.pkl", "-f", "json", cwd=work, env={"PIPEWARDEN_OUTPUT": "env-report.json"})
    assert result.returncode == 1
    assert result.stdout == ""
    assert json.loads((work / "env-report.json").read_text())["summary"]["max_severity"] == "critical"


# -- limits ----------------------------------------------------------------------------


def test_opcode_limit_is_a_finding_and_fails_the_scan(work: Path) -> None:
    # 100,000 list items: one opcode each, far more than the limit allows.
    (work / "long.pkl").write_bytes(pickle.dumps([0] * 100_000, protocol=2))
    assert run("scan", "long.pkl", cwd=work).returncode == 0
    result = run("scan", "long.pkl", "--max-opcodes", "10", "-f", "json", cwd=work)
    assert result.returncode == 1
    (limit,) = [f for f in findings_of(result) if f["rule_id"] == "PW-SCAN-203"]
    assert limit["severity"] == "high"
    assert limit["evidence"]["limit"] == "max_opcodes"
    # Hitting a limit fails closed even with a raised threshold.
    assert run("scan", "long.pkl", "--max-opcodes", "10", "--fail-on", "high", cwd=work).returncode == 1


def test_opcode_limit_applies_to_short_pickles_too(work: Path) -> None:
    (work / "short.pkl").write_bytes(pickle.dumps(list(range(200)), protocol=2))
    result = run("scan", "short.pkl", "--max-opcodes", "10", "-f", "json", cwd=work)
    assert result.returncode == 1
    assert "PW-SCAN-203" in rule_ids(result)


# -- in process, through typer's test runner -----------------------------------------------


@pytest.fixture
def app() -> Any:
    # `pipewarden.cli.main()` registers the scan command on import of its
    # module; the console script does the same.
    import pipewarden.cli._scan  # noqa: F401
    from pipewarden.cli import app

    return app


def test_in_process_scan_matches_the_console_script(
    work: Path, app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(work)
    for name in [k for k in os.environ if k.startswith("PIPEWARDEN_")]:
        monkeypatch.delenv(name)
    runner = CliRunner()
    result = runner.invoke(app, ["scan", "evil.pkl", "--format", "json"])
    assert result.exit_code == 1
    assert json.loads(result.stdout) == json.loads(run("scan", "evil.pkl", "-f", "json", cwd=work).stdout)
    result = runner.invoke(app, ["scan", "custom.pkl"], env={"PIPEWARDEN_FAIL_ON": "critical"})
    assert result.exit_code == 0


def test_in_process_version(app: Any) -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"pipewarden {version('pipewarden')}"
