"""`pipewarden secrets`: planted fake secrets are found where they are (notebook outputs and metadata
too), benign look-alikes are not, and the secret itself never reaches a report. The baseline is tested
in `test_secrets_baseline`, failing closed and the limits in `test_secrets_limits`.

Every secret is made up at run time (see `secretfixtures`); none is valid anywhere.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from functools import cache
from pathlib import Path

import jsonschema
import pytest

from pipewarden.findings import Report, Severity
from pipewarden.supply import find_secrets, secret_fingerprint
from tests.cli.clirun import run
from tests.supply.secretfixtures import (
    FAKE,
    key_block,
    notebook,
    places,
    secrets_of,
    summary_of,
    write,
    write_benign,
    write_planted,
)

SCHEMA_PATH = Path(__file__).resolve().parents[1] / "data" / "sarif-schema-2.1.0.json"


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("planted")
    write_planted(root)
    return root


@pytest.fixture(scope="module")
def planted_report(planted: Path) -> Report:
    return find_secrets(planted)


# -- what is found, and where ------------------------------------------------------------------------


def test_every_planted_secret_is_found_where_it_is(planted_report: Report) -> None:
    assert places(planted_report) == {
        # A format detector reports a key even inside a call (detect-secrets alone drops such a line).
        ("app/storage.py", "line 3", "AWS Access Key"),
        ("app/storage.py", "line 4", "Secret Keyword"),
        ("deploy/values.yaml", "line 3", "Secret Keyword"),
        ("deploy/values.yaml", "line 5", "AWS Access Key"),
        (".env", "line 1", "GitHub Token"),
        (".env", "line 2", "Secret Keyword"),
        (".envrc", "line 1", "Base64 High Entropy String"),
        ("settings.toml", "line 3", "Secret Keyword"),
        ("keys/deploy.pem", "line 1", "Private Key"),
        ("notebooks/explore.ipynb", "cell 2 line 2", "AWS Access Key"),
        ("notebooks/explore.ipynb", "cell 2 output 1 line 2", "Secret Keyword"),
        ("notebooks/explore.ipynb", "cell 2 output 2 line 1", "Secret Keyword"),
        ("notebooks/explore.ipynb", "cell 3 output 1 line 2", "Secret Keyword"),
    }


def test_severity_is_critical_for_keys_that_open_infrastructure(planted_report: Report) -> None:
    by_type = {str(f.evidence["type"]): f.severity for f in secrets_of(planted_report)}
    assert by_type["AWS Access Key"] is Severity.CRITICAL
    assert by_type["Private Key"] is Severity.CRITICAL
    assert by_type["GitHub Token"] is Severity.CRITICAL
    assert by_type["Secret Keyword"] is Severity.HIGH
    assert by_type["Base64 High Entropy String"] is Severity.HIGH
    assert all(f.references == ("CWE-798",) for f in secrets_of(planted_report))


def test_a_value_several_detectors_match_is_one_finding_under_the_most_specific(
    planted_report: Report,
) -> None:
    (aws_secret,) = [
        f
        for f in secrets_of(planted_report)
        if f.location.path == "deploy/values.yaml" and f.location.row == 5
    ]
    assert aws_secret.evidence["type"] == "AWS Access Key"
    assert set(aws_secret.evidence["also_matched"]) == {"Secret Keyword", "Base64 High Entropy String"}


def test_notebook_findings_name_cell_output_and_media(planted_report: Report) -> None:
    in_notebook = {
        f.location.member: f for f in secrets_of(planted_report) if f.location.path.endswith(".ipynb")
    }
    source = in_notebook["cell 2 line 2"]
    assert source.location.row is None  # a line of a cell is not a line of the JSON file
    assert source.evidence["cell"] == 2 and "output" not in source.evidence
    stream = in_notebook["cell 2 output 1 line 2"]
    assert (stream.evidence["cell"], stream.evidence["output"], stream.evidence["media"]) == (2, 1, "text")
    result = in_notebook["cell 2 output 2 line 1"]
    assert result.evidence["media"] == "text/plain"  # the image/png beside it is not text and not read
    error = in_notebook["cell 3 output 1 line 2"]
    assert error.evidence["media"] == "traceback"
    assert "clear the notebook's outputs" in error.message


def test_notebook_and_cell_metadata_are_read(tmp_path: Path) -> None:
    # papermill records the parameters a notebook ran with in its metadata; nobody reads them again.
    cell = {
        "cell_type": "code",
        "metadata": {"tags": ["parameters"], "connection": {"password": FAKE.db_password}},
        "source": ["x = 1\n"],
        "outputs": [],
    }
    papermill = {"parameters": {"aws_key": FAKE.notebook_key, "run_date": "2026-01-01"}, "version": "2.6.0"}
    write(tmp_path, "run.ipynb", notebook([cell], {"papermill": papermill}))
    report = find_secrets(tmp_path)
    assert places(report) == {
        ("run.ipynb", "metadata line 9", "AWS Access Key"),
        ("run.ipynb", "cell 1 metadata line 3", "Secret Keyword"),
    }
    by_member = {f.location.member: f for f in secrets_of(report)}
    assert by_member["metadata line 9"].evidence["metadata"] is True
    assert "cell" not in by_member["metadata line 9"].evidence
    assert by_member["cell 1 metadata line 3"].evidence["cell"] == 1
    assert "notebook's metadata" in by_member["metadata line 9"].message
    # Metadata as notebooks carry it (kernel, language, tags, a commit id, saved widget state keyed by
    # hex model ids) is no finding.
    commit = hashlib.sha1(b"a commit", usedforsecurity=False).hexdigest()
    models = [hashlib.md5(bytes([n]), usedforsecurity=False).hexdigest() for n in range(3)]
    widgets = {
        "state": {m: {"model_name": "LayoutModel", "state": {"width": "50%"}} for m in models},
        "version_major": 2,
    }
    plain = {**cell, "metadata": {"tags": ["parameters"], "collapsed": False}}
    benign = {
        "git": {"commit": commit},
        "language_info": {"name": "python", "version": "3.11.9"},
        "widgets": {"application/vnd.jupyter.widget-state+json": widgets},
    }
    write(tmp_path, "run.ipynb", notebook([plain], benign))
    assert secrets_of(find_secrets(tmp_path)) == []
    # The same hex as a value, under a neutral name, is flagged: only a key of a record is a name.
    write(tmp_path, "run.ipynb", notebook([plain], {"service": {"credential": models[0]}}))
    assert places(find_secrets(tmp_path)) == {("run.ipynb", "metadata line 8", "Hex High Entropy String")}


def test_the_summary_counts_files_and_secrets(planted_report: Report) -> None:
    summary = summary_of(planted_report)
    assert summary.severity is Severity.INFO
    assert summary.evidence["files"] == planted_report.targets == 7
    assert summary.evidence["secrets"] == 13 and summary.evidence["accepted"] == 0


# -- what is not ------------------------------------------------------------------------------------


def test_hashes_commit_ids_and_placeholders_are_not_secrets(tmp_path: Path) -> None:
    write_benign(tmp_path)
    report = find_secrets(tmp_path)
    assert secrets_of(report) == []
    summary = summary_of(report)
    assert summary.evidence["skipped"] == {"lockfiles": 3}  # uv.lock, poetry.lock, package-lock.json
    assert summary.evidence["files"] == 6
    assert report.exit_code(Severity.LOW) == 0


def test_a_hex_value_is_a_digest_only_under_a_name_whose_word_says_so(tmp_path: Path) -> None:
    names = {
        # Words that merely contain a digest word: "oid" in ANDROID, "sha" in SHAREPOINT, "rev" in PREVIEW.
        "flagged": [
            "ANDROID_SIGNING",
            "SHAREPOINT_CRED",
            "PREVIEW_CRED",
            "ANDROID_API_KEY",
            "SHAREPOINT_SECRET",
        ],
        "digests": ["commit_sha", "git_rev", "file_hash", "etag", "ETag", "headCommit", "x-content-sha256"],
    }
    lines = {
        kind: [f'{name} = "{hashlib.sha256(name.encode()).hexdigest()}"' for name in group]
        for kind, group in names.items()
    }
    write(tmp_path, "flagged.py", "\n".join(lines["flagged"]) + "\n")
    write(tmp_path, "digests.py", "\n".join(lines["digests"]) + "\n")
    found = places(find_secrets(tmp_path))
    assert {(path, where) for path, where, _ in found} == {("flagged.py", f"line {n}") for n in range(1, 6)}
    # The first three are flagged for their shape alone: no keyword in the name.
    assert {kind for _, where, kind in found if where in ("line 1", "line 2", "line 3")} == {
        "Hex High Entropy String"
    }


def test_the_benign_files_are_ones_detect_secrets_alone_would_flag(tmp_path: Path) -> None:
    """The benign counterparts are real temptations: detect-secrets' own scan flags these four, so the
    test above shows pipewarden's filters at work, not harmless files."""
    from detect_secrets.core.scan import scan_file
    from detect_secrets.settings import default_settings

    write_benign(tmp_path)
    flagged = set()
    with default_settings():
        for name in (".pre-commit-config.yaml", "hashes.toml", "config/example.env", "tests/test_client.py"):
            if list(scan_file(str(tmp_path / name))):
                flagged.add(name)
    assert len(flagged) == 4


def test_folders_that_hold_no_project_text_are_skipped_and_counted(tmp_path: Path) -> None:
    line = f'DB_PASSWORD = "{FAKE.db_password}"\n'
    for folder in (".git", "node_modules/pkg", "src/__pycache__", ".pipewarden", "venv-x"):
        write(tmp_path, f"{folder}/leak.py", line)
    write(tmp_path, "venv-x/pyvenv.cfg", "home = /usr/bin\n")
    write(tmp_path, "src/kept.py", line)
    report = find_secrets(tmp_path)
    assert {f.location.path for f in secrets_of(report)} == {"src/kept.py"}
    assert summary_of(report).evidence["skipped"] == {"folders": 5}


def test_exclude_globs_by_name_and_by_path(tmp_path: Path) -> None:
    line = f'DB_PASSWORD = "{FAKE.db_password}"\n'
    names = ("a/fixtures/one.py", "a/two.py", "b/data.csv", "b/keep.py", "c/d/three.py", "build/x/y.py")
    for name in names:
        write(tmp_path, name, line)
    write(tmp_path, "fixtures/kept.py", line)  # "*/fixtures" is anchored: not this one
    report = find_secrets(tmp_path, exclude=["*/fixtures", "*.csv", "c/d/*", "./a/two.py", "build/**"])
    assert {f.location.path for f in secrets_of(report)} == {"b/keep.py", "fixtures/kept.py"}
    # Matched folders (a/fixtures, build) are skipped whole; files are counted one by one.
    assert summary_of(report).evidence["skipped"] == {"excluded": 5}


@pytest.mark.skipif(os.name != "posix", reason="needs symlinks")
def test_symlinks_are_not_followed_out_of_the_tree(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    write(outside, "leak.py", f'DB_PASSWORD = "{FAKE.db_password}"\n')
    root = tmp_path / "root"
    write(root, "a.py", "x = 1\n")
    (root / "linked.py").symlink_to(outside / "leak.py")
    (root / "linked-dir").symlink_to(outside, target_is_directory=True)
    report = find_secrets(root)
    assert secrets_of(report) == []
    assert summary_of(report).evidence["skipped"] == {"symlinks": 2}


def test_an_inline_allowlist_comment_is_honoured_and_counted(tmp_path: Path) -> None:
    write(tmp_path, "a.py", f'DB_PASSWORD = "{FAKE.db_password}"  # pragma: allowlist secret\n')
    write(tmp_path, "b.yaml", f"db:\n  password: {FAKE.yaml_password}  # pragma: allowlist secret\n")
    write(tmp_path, "c.env", f"# pragma: allowlist nextline secret\nSECRET_KEY={FAKE.env_secret}\n")
    report = find_secrets(tmp_path)
    assert secrets_of(report) == []
    assert summary_of(report).evidence["allowlisted"] == 3
    write(tmp_path, "d.py", f'DB_PASSWORD = "{FAKE.db_password}"\n')  # the same secret, not allowlisted here
    assert places(find_secrets(tmp_path)) == {("d.py", "line 1", "Secret Keyword")}


# -- the secret never leaves ------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["text", "json", "sarif", "html"])
def test_no_secret_nor_a_prefix_of_one_is_in_any_render(planted_report: Report, fmt: str) -> None:
    rendered = planted_report.render(fmt)
    for value in FAKE.values():
        assert value not in rendered
        assert value[:8] not in rendered, f"a prefix of a secret is in the {fmt} report"
    body = key_block(1).splitlines()[1]
    assert body[:16] not in rendered


@cache
def sarif_validator() -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(json.loads(SCHEMA_PATH.read_text(encoding="utf-8")))


def test_sarif_validates_and_points_at_the_line(planted_report: Report) -> None:
    doc = json.loads(planted_report.render("sarif"))
    sarif_validator().validate(doc)
    regions = {
        r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]: r["locations"][0][
            "physicalLocation"
        ].get("region")
        for r in doc["runs"][0]["results"]
        if r["ruleId"] == "PW-SEC-101"
    }
    assert regions["settings.toml"] == {"startLine": 3}


# -- fingerprints -----------------------------------------------------------------------------------


def test_the_fingerprint_is_stable_and_names_type_and_secret(planted: Path, planted_report: Report) -> None:
    again = find_secrets(planted)
    assert [f.evidence["fingerprint"] for f in secrets_of(again)] == [
        f.evidence["fingerprint"] for f in secrets_of(planted_report)
    ]
    (aws,) = [
        f for f in secrets_of(planted_report) if f.location.path == "app/storage.py" and f.location.row == 3
    ]
    assert aws.evidence["fingerprint"] == secret_fingerprint("AWS Access Key", FAKE.aws_key_id)
    assert re.fullmatch(r"[0-9a-f]{32}", str(aws.evidence["fingerprint"]))
    # The detector type is part of it: one value under two types gives two fingerprints.
    assert secret_fingerprint("Secret Keyword", FAKE.aws_key_id) != aws.evidence["fingerprint"]


def test_a_fingerprint_is_not_a_fast_hash_of_the_secret() -> None:
    import hashlib

    value = FAKE.db_password
    fingerprint = secret_fingerprint("Secret Keyword", value)
    for algorithm in ("sha1", "sha256", "md5"):
        assert hashlib.new(algorithm, value.encode()).hexdigest()[:32] != fingerprint


def test_a_code_host_token_is_known_by_all_of_it_not_its_prefix(tmp_path: Path) -> None:
    # detect-secrets reports only the captured "ghp" of such a token; every token would share it.
    other = "gh" + "p_" + FAKE.result_api_key + "abcd"
    write(tmp_path, ".env", f"A={FAKE.github_token}\nB={other}\n")
    prints = [f.evidence["fingerprint"] for f in secrets_of(find_secrets(tmp_path))]
    assert len(prints) == 2 and len(set(prints)) == 2
    assert prints[0] == secret_fingerprint("GitHub Token", FAKE.github_token)


def test_one_secret_has_one_fingerprint_in_every_kind_of_file(tmp_path: Path) -> None:
    password = FAKE.toml_password
    write(tmp_path, "a.py", f'DB_PASSWORD = "{password}"\n')
    write(tmp_path, "b.yaml", f"db:\n  password: {password}  # the staging one\n")
    write(tmp_path, "c.env", f"DB_PASSWORD={password} # staging\n")
    write(tmp_path, "d.ini", f"[db]\npassword = {password}\n")
    cell = {"cell_type": "code", "source": [f'db_password = "{password}"'], "outputs": []}
    write(tmp_path, "e.ipynb", notebook([cell]))
    found = secrets_of(find_secrets(tmp_path))
    assert sorted(f.location.path for f in found) == ["a.py", "b.yaml", "c.env", "d.ini", "e.ipynb"]
    assert {f.evidence["fingerprint"] for f in found} == {secret_fingerprint("Secret Keyword", password)}


def test_a_key_in_a_yaml_block_is_one_finding_on_its_first_line(tmp_path: Path) -> None:
    block = "".join(f"    {line}\n" for line in key_block(3).splitlines())
    write(tmp_path, "tls.yaml", f"tls:\n  key: |\n{block}  cert: none\n")
    write(tmp_path, "tls.pem", key_block(3))
    found = {
        (f.location.path, f.location.row): f.evidence["fingerprint"]
        for f in secrets_of(find_secrets(tmp_path))
    }
    assert set(found) == {("tls.yaml", 3), ("tls.pem", 1)}
    assert found[("tls.yaml", 3)] == found[("tls.pem", 1)]


def test_two_private_keys_in_one_file_have_their_own_fingerprints(tmp_path: Path) -> None:
    write(tmp_path, "keys.pem", key_block(1) + key_block(2))
    write(tmp_path, "same.pem", "\n\n" + key_block(1))
    report = find_secrets(tmp_path)
    prints = {(f.location.path, f.location.row): f.evidence["fingerprint"] for f in secrets_of(report)}
    first, second = prints[("keys.pem", 1)], prints[("keys.pem", 1 + len(key_block(1).splitlines()))]
    assert first != second
    assert prints[("same.pem", 3)] == first  # the same key elsewhere is the same fingerprint


# -- the command ------------------------------------------------------------------------------------


def test_cli_exit_codes_and_thresholds(tmp_path: Path) -> None:
    clean = tmp_path / "clean"
    write_benign(clean)
    assert run("secrets", str(clean), cwd=tmp_path).returncode == 0
    dirty = tmp_path / "dirty"
    write(dirty, "a.py", f'DB_PASSWORD = "{FAKE.db_password}"\n')
    assert run("secrets", str(dirty), cwd=tmp_path).returncode == 1
    assert run("secrets", str(dirty), "--fail-on", "critical", cwd=tmp_path).returncode == 0  # high only
    bad = run("secrets", str(dirty), "--fail-on", "severe", cwd=tmp_path)
    assert bad.returncode == 2 and "'severe': not a severity" in bad.stderr
    missing = run("secrets", "nowhere", cwd=tmp_path)
    assert missing.returncode == 2 and "nowhere: no such file or folder" in missing.stderr


def test_cli_never_prints_a_secret_even_when_verbose(tmp_path: Path) -> None:
    write_planted(tmp_path)
    for fmt in ("text", "json", "sarif", "html"):
        result = run("-vv", "secrets", ".", "--format", fmt, "-o", f"report.{fmt}", cwd=tmp_path)
        assert result.returncode == 1, result.stderr
        written = (tmp_path / f"report.{fmt}").read_text(encoding="utf-8")
        for value in FAKE.values():
            assert value not in result.stdout + result.stderr + written


def test_files_built_to_exhaust_a_parser_are_still_scanned_quickly(tmp_path: Path) -> None:
    """A YAML "billion laughs" (nested aliases) and INI interpolation nested the same way make
    detect-secrets' transformers run for ever; pipewarden reads such files line by line instead."""
    yaml_lines = ['a: &a ["x","x","x","x","x","x","x","x","x"]']
    for level, name in enumerate("bcdefghi"):
        previous = "abcdefgh"[level]
        yaml_lines.append(f"{name}: &{name} [" + ",".join([f"*{previous}"] * 9) + "]")
    write(tmp_path, "bomb.yaml", "\n".join([*yaml_lines, f"password: {FAKE.yaml_password}"]) + "\n")
    ini = ["[s]", "a = x"]
    ini += [f"{chr(98 + i)} = " + f"%({chr(97 + i)})s" * 10 for i in range(10)]
    write(tmp_path, "nested.ini", "\n".join([*ini, f"password = {FAKE.toml_password}"]) + "\n")
    result = run("secrets", ".", "--format", "json", cwd=tmp_path)  # run() times out, so a hang fails
    assert result.returncode == 1
    found = {
        f["location"]["path"] for f in json.loads(result.stdout)["findings"] if f["rule_id"] == "PW-SEC-101"
    }
    assert found == {"bomb.yaml", "nested.ini"}


@pytest.mark.skipif(os.name != "posix", reason="needs a FIFO")
def test_a_fifo_in_the_tree_is_skipped_not_opened(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")
    write(tmp_path, "a.py", "x = 1\n")
    report = find_secrets(tmp_path)  # opening the FIFO would block for ever
    assert summary_of(report).evidence["skipped"] == {"special": 1}


def test_an_sboms_package_hashes_are_not_secrets_but_hex_under_a_secret_name_is(tmp_path: Path) -> None:
    import hashlib

    from pipewarden.supply import build_sbom

    digests = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(3)]
    reqs = tmp_path / "requirements.txt"
    reqs.write_text("".join(f"pkg{i}==1.0 --hash=sha256:{d}\n" for i, d in enumerate(digests)))
    (tmp_path / "sbom.cdx.json").write_text(json.dumps(build_sbom(reqs), indent=2))
    assert secrets_of(find_secrets(tmp_path)) == []
    (tmp_path / "settings.json").write_text(json.dumps({"api_token": digests[0]}, indent=2))
    (found,) = secrets_of(find_secrets(tmp_path))
    assert found.location.path == "settings.json"


def test_a_lone_percent_sign_in_an_env_file_does_not_hide_its_secrets(tmp_path: Path) -> None:
    # A config reader refuses a lone '%' (interpolation syntax); the file's other values must still count.
    planted = "Lantern" + "-Copper-8101"
    (tmp_path / "b.env").write_text(f"PROGRESS=50%\nDB_PASSWORD={planted}\n")
    (found,) = secrets_of(find_secrets(tmp_path))
    assert found.location.path == "b.env" and found.location.row == 2


def test_two_tokens_with_the_same_claims_are_two_secrets(tmp_path: Path) -> None:
    import base64

    def part(doc: dict[str, str]) -> str:
        return base64.urlsafe_b64encode(json.dumps(doc).encode()).decode().rstrip("=")

    claims = part({"alg": "HS256", "typ": "JWT"}) + "." + part({"sub": "1234567890", "name": "svc"})
    (tmp_path / "one.py").write_text(f'T = "{claims}.c2lnbmF0dXJlMTExMTE"\n')
    (tmp_path / "two.py").write_text(f'T = "{claims}.b3RoZXJzaWduYXR1cmU"\n')
    found = secrets_of(find_secrets(tmp_path))
    assert {f.evidence["type"] for f in found} == {"JSON Web Token"}
    assert len({f.evidence["fingerprint"] for f in found}) == 2
