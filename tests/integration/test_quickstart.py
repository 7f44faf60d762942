"""The quickstart, run as the README says: `pipewarden run examples/quickstart/pipeline.yaml` on a machine
with nothing configured. Every planted attack must be caught, quarantined or blocked, every clean step
must pass, the alerts must be raised, and the HTML report must open in a real browser with its sections.

The examples are copied into a fresh folder with their relative layout, so the run makes its workspace
there and not in the repository. Screenshots go to ``$PIPEWARDEN_TEST_ARTIFACTS`` if set.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.cli.clirun import run

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
COMMAND = "pipewarden run examples/quickstart/pipeline.yaml"
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")


@dataclass(frozen=True)
class Quickstart:
    root: Path
    exit_code: int
    stdout: str
    stderr: str
    report: dict[str, Any]
    html: Path


def _copy_examples(target: Path) -> None:
    shutil.copytree(REPO / "examples" / "quickstart", target / "examples" / "quickstart")
    (target / "examples" / "models" / "malicious").mkdir(parents=True)
    shutil.copy(REPO / "examples/models/malicious/model.joblib", target / "examples/models/malicious")


@pytest.fixture(scope="module")
def quickstart(tmp_path_factory: pytest.TempPathFactory) -> Quickstart:
    root = tmp_path_factory.mktemp("fresh-clone")
    _copy_examples(root)
    done = run(*COMMAND.split()[1:], cwd=root)
    html = next(
        line.split("report: ", 1)[1] for line in done.stdout.splitlines() if line.startswith("report: ")
    )
    report = json.loads((Path(html).parent / "report.json").read_text())
    return Quickstart(root, done.returncode, done.stdout, done.stderr, report, Path(html))


def test_the_readme_starts_with_the_quickstart_command() -> None:
    text = README.read_text()
    first_block = text.split("```sh", 1)[1].split("```", 1)[0]
    assert COMMAND in first_block


def test_every_planted_attack_is_handled_and_every_clean_step_passes(quickstart: Quickstart) -> None:
    assert quickstart.exit_code == 0, quickstart.stdout + quickstart.stderr
    stages = {s["name"]: s for s in quickstart.report["stages"]}
    # The work: each step passed.
    for name in ("ingest", "train", "evaluate", "serve", "login-burst"):
        assert stages[name]["outcome"] == "passed", stages[name]
    # The drills: each attack on the pipeline stopped the way it must be.
    assert stages["offer-malicious-model"]["outcome"] == "blocked"
    assert stages["offer-malicious-model"]["stored"] == []
    assert stages["tamper-with-stored-model"]["outcome"] == "tampered"
    assert stages["read-out-of-scope"]["outcome"] == "denied"
    # The planted rows: each gate caught every one it was expected to.
    planted = json.loads((quickstart.root / "examples/quickstart/data/planted.json").read_text())
    gates = {(s["name"], g["gate"]): g for s in quickstart.report["stages"] for g in s["gates"]}
    assert gates[("ingest", "contract")]["missed"] == []
    assert set(planted["malformed"]) <= set(gates[("ingest", "contract")]["quarantined"])
    assert gates[("ingest", "screen")]["missed"] == []
    assert gates[("serve", "guard")]["missed"] == []
    assert set(planted["suspect_requests"]) <= set(gates[("serve", "guard")]["quarantined"])
    assert {a["rule_id"] for a in quickstart.report["alerts"]} >= {"PW-MON-102", "PW-MON-109", "PW-MON-110"}
    assert quickstart.report["missing_alerts"] == []
    assert "PASSED" in quickstart.stdout and quickstart.report["seconds"] < 120


def test_the_workspace_is_made_with_a_first_admin_whose_password_is_never_printed(
    quickstart: Quickstart,
) -> None:
    workspace = quickstart.root / ".pipewarden" / "quickstart"
    password_file = workspace / "first-admin-password"
    assert (workspace / "config.yaml").is_file() and password_file.stat().st_mode & 0o777 == 0o600
    password = password_file.read_text().strip()
    assert password not in quickstart.stdout + quickstart.stderr
    assert password not in quickstart.html.read_text()


def test_the_model_has_verified_provenance_naming_its_data_and_code(quickstart: Quickstart) -> None:
    workspace = quickstart.root / ".pipewarden" / "quickstart"
    done = run(
        "store", "lineage", "quickstart/models/churn", "--workspace", str(workspace), cwd=quickstart.root
    )
    assert done.returncode == 0, done.stderr
    assert "provenance quickstart/models/churn.provenance@1" in done.stdout
    assert "(SLSA v1, verified)" in done.stdout
    assert "artifact:quickstart/data/customers" in done.stdout and "code:stages.py" in done.stdout
    assert "stage train, as qs-train" in done.stdout


def test_a_planted_attack_that_slips_through_fails_the_run(quickstart: Quickstart, tmp_path: Path) -> None:
    _copy_examples(tmp_path)
    planted_file = tmp_path / "examples/quickstart/data/planted.json"
    planted = json.loads(planted_file.read_text())
    clean = next(i for i in range(1000) if i not in planted["malformed"] and i not in planted["poisoned"])
    planted["malformed"].append(clean)  # a "planted" row the contract has no reason to catch
    planted_file.write_text(json.dumps(planted))
    # The same workspace: its keys and accounts exist; only the expectation changed.
    pipeline = tmp_path / "examples/quickstart/pipeline.yaml"
    workspace = quickstart.root / ".pipewarden" / "quickstart"
    done = run("run", str(pipeline), "--workspace", str(workspace), "--format", "json", cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    result = json.loads(done.stdout)
    ingest = next(s for s in result["stages"] if s["name"] == "ingest")
    assert ingest["met"] is False and ingest["gates"][0]["missed"] == [clean]


@pytest.mark.skipif(
    not (CHROMIUM.exists() and CHROMEDRIVER.exists()) and os.environ.get("PIPEWARDEN_REQUIRE_BROWSER") != "1",
    reason="needs Debian's chromium and chromium-driver",
)
def test_the_html_report_opens_in_a_browser_with_every_section(
    quickstart: Quickstart, tmp_path_factory: pytest.TempPathFactory
) -> None:
    from selenium import webdriver
    from selenium.webdriver.common.by import By

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1300,2600",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium')}",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(str(CHROMEDRIVER)))
    try:
        driver.get(quickstart.html.as_uri())
        assert "quickstart" in driver.title
        for section in ("verdict", "stages", "findings", "scores", "quarantine", "alerts", "lineage"):
            element = driver.find_element(By.ID, section)
            assert element.is_displayed(), section
        assert "PASSED" in driver.find_element(By.ID, "verdict").text
        assert len(driver.find_elements(By.CSS_SELECTOR, "#scores svg")) >= 2  # screen detectors, guard
        assert driver.find_elements(By.CSS_SELECTOR, "#lineage svg rect")
        assert "PW-MON-110" in driver.find_element(By.ID, "alerts").text
        # Self-contained: nothing blocked by its content policy, nothing fetched.
        severe = [m["message"] for m in driver.get_log("browser") if m["level"] == "SEVERE"]
        assert severe == []
        shots = Path(os.environ.get("PIPEWARDEN_TEST_ARTIFACTS") or tmp_path_factory.mktemp("screenshots"))
        shots.mkdir(parents=True, exist_ok=True)
        path = shots / "run-report.png"
        assert driver.save_screenshot(str(path))
        print(f"screenshot: {path}")
    finally:
        driver.quit()
