"""Every dependency file format, read statically: names, exact pins, hashes, and errors naming the file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipewarden.errors import ConfigError
from pipewarden.supply import OfflineDatabase, audit, read_dependencies
from tests.supply.osvfixtures import write_folder

SHA = "sha256:" + "cd" * 32


def _deps(path: Path) -> dict[str, tuple[str | None, tuple[str, ...]]]:
    return {d.name: (d.pinned, d.hashes) for d in read_dependencies(path)}


def test_pyproject_pep621_groups_and_poetry(tmp_path: Path) -> None:
    path = tmp_path / "pyproject.toml"
    path.write_text(
        """
[project]
name = "demo"
dependencies = ["torchlike==2.3.0", "numpy>=1.26"]
[project.optional-dependencies]
viz = ["matplotlib==3.9.0 ; python_version >= '3.10'"]
[dependency-groups]
test = ["pytest==8.0.0", {include-group = "lint"}]
lint = ["ruff"]
[tool.poetry.dependencies]
python = "^3.11"
requests = "2.31.0"
pandas = "^2.1"
mylib = {git = "https://example.test/mylib.git"}
[tool.poetry.group.dev.dependencies]
black = {version = "==24.1.0"}
"""
    )
    deps = {d.name: d for d in read_dependencies(path)}
    assert deps["torchlike"].pinned == "2.3.0" and deps["numpy"].pinned is None
    assert (
        deps["matplotlib"].groups == ("viz",)
        and deps["pytest"].pinned == "8.0.0"
        and deps["ruff"].pinned is None
    )
    assert deps["requests"].pinned == "2.31.0" and deps["pandas"].pinned is None
    assert deps["mylib"].note and deps["black"].pinned == "24.1.0" and "python" not in deps


def test_lock_files(tmp_path: Path) -> None:
    (tmp_path / "poetry.lock").write_text(
        f'[[package]]\nname = "torchlike"\nversion = "1.2"\nfiles = [{{file = "t.whl", hash = "{SHA}"}}]\n'
    )
    assert _deps(tmp_path / "poetry.lock") == {"torchlike": ("1.2", (SHA,))}
    (tmp_path / "uv.lock").write_text(
        'version = 1\n[[package]]\nname = "demo"\nversion = "0.1.0"\nsource = { editable = "." }\n'
        '[[package]]\nname = "listed"\nversion = "1.2.3"\n'
        'source = { registry = "https://mirror.example/simple" }\n'
        f'sdist = {{ url = "https://x/listed.tar.gz", hash = "{SHA}" }}\n'
        f'wheels = [{{ url = "https://x/listed.whl", hash = "{SHA}" }}]\n'
    )
    assert _deps(tmp_path / "uv.lock") == {"listed": ("1.2.3", (SHA, SHA))}
    (tmp_path / "pylock.toml").write_text(
        'lock-version = "1.0"\n[[packages]]\nname = "yaml-ish"\nversion = "0.8"\n'
        '[[packages.wheels]]\nurl = "https://x/y.whl"\nhashes = {sha256 = "' + "ef" * 32 + '"}\n'
    )
    assert _deps(tmp_path / "pylock.toml") == {"yaml-ish": ("0.8", ("sha256:" + "ef" * 32,))}
    (tmp_path / "Pipfile.lock").write_text(
        json.dumps(
            {
                "default": {"reqeusts": {"version": "==2.0", "hashes": [SHA]}},
                "develop": {"local": {"path": ".", "editable": True}},
            }
        )
    )
    locked = {d.name: d for d in read_dependencies(tmp_path / "Pipfile.lock")}
    assert locked["reqeusts"].pinned == "2.0" and locked["local"].note


def test_a_folder_audits_its_locks_not_the_ranges_they_resolve(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "d"\ndependencies = ["torchlike>=1"]\n')
    (tmp_path / "poetry.lock").write_text(
        f'[[package]]\nname = "torchlike"\nversion = "1.2"\nfiles = [{{file = "t.whl", hash = "{SHA}"}}]\n'
    )
    report = audit(read_dependencies(tmp_path), OfflineDatabase(write_folder(tmp_path / "db")))
    assert [f.rule_id for f in report.findings] == ["PW-DEPS-101", "PW-DEPS-200"]


def test_an_installed_environment_from_its_metadata(tmp_path: Path) -> None:
    site = tmp_path / "venv" / "lib" / "python3.11" / "site-packages"
    for name, version in (("torchlike", "2.3.0+cu121"), ("Listed", "9.9")):
        meta = site / f"{name}-{version}.dist-info"
        meta.mkdir(parents=True)
        (meta / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n\nbody\n")
    deps = {d.name: d for d in read_dependencies(tmp_path / "venv")}
    assert deps["torchlike"].pinned == "2.3.0+cu121" and not deps["torchlike"].direct
    report = audit(list(deps.values()), OfflineDatabase(write_folder(tmp_path / "db")))
    assert [f.rule_id for f in report.findings] == [
        "PW-DEPS-101",
        "PW-DEPS-200",
    ]  # no hash finding: installed


@pytest.mark.parametrize(
    ("name", "text", "problem"),
    [
        ("pyproject.toml", "[project\n", "not valid TOML"),
        ("pyproject.toml", '[project]\ndependencies = "numpy"\n', "expected a list"),
        ("pyproject.toml", '[project]\ndependencies = ["numpy==="]\n', "is not a requirement"),
        ("poetry.lock", '[[package]]\nname = "x"\n', "needs a name and a version"),
        ("Pipfile.lock", "{", "not valid JSON"),
    ],
)
def test_a_broken_file_is_an_error_naming_it(tmp_path: Path, name: str, text: str, problem: str) -> None:
    (tmp_path / name).write_text(text)
    with pytest.raises(ConfigError, match=problem) as caught:
        read_dependencies(tmp_path / name)
    assert str(caught.value).startswith(str(tmp_path / name))


def test_a_folder_without_dependency_files_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no dependency file here"):
        read_dependencies(tmp_path)
