"""`pipewarden init`, `keys`, `sign`, `verify` and `store` as a user runs them: real child processes.

Exit codes: 0 success, 1 a failed security check (tampering, bad signature, refused model), 2 usage or
configuration error.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

CLI = [sys.executable, "-m", "pipewarden.cli"]


def run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,  # never a terminal: nothing may prompt
        env={**os.environ, "PIPEWARDEN_ACTOR": "ci-bot", **(env or {})},
        timeout=120,
    )


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    result = run("init", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    return tmp_path


def test_init_creates_private_keys_and_refuses_to_run_twice(tmp_path: Path) -> None:
    first = run("init", "--workspace", tmp_path / "ws", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "keyring.json (mode 0600" in first.stdout
    root = tmp_path / "ws"
    assert (root.stat().st_mode & 0o777, (root / "keys" / "keyring.json").stat().st_mode & 0o777) == (
        0o700,
        0o600,
    )
    assert (root / "keys" / "signing.key").stat().st_mode & 0o777 == 0o600
    keyring = (root / "keys" / "keyring.json").read_bytes()
    again = run("init", "--workspace", root, cwd=tmp_path)
    assert again.returncode == 2
    assert "exists here already" in again.stderr
    assert (root / "keys" / "keyring.json").read_bytes() == keyring
    bad = run("init", "--workspace", tmp_path / "b", "--backend", "ftp", cwd=tmp_path)
    assert bad.returncode == 2 and "'ftp'" in bad.stderr


def test_workspace_location_from_the_environment(tmp_path: Path) -> None:
    env = {"PIPEWARDEN_WORKSPACE": str(tmp_path / "elsewhere")}
    assert run("init", cwd=tmp_path, env=env).returncode == 0
    assert (tmp_path / "elsewhere" / "config.yaml").is_file()
    (tmp_path / "d.csv").write_text("a,b\n")
    assert run("store", "put", "d.csv", "--name", "d", cwd=tmp_path, env=env).returncode == 0
    missing = run("store", "ls", cwd=tmp_path)
    assert missing.returncode == 2 and "run 'pipewarden init' first" in missing.stderr


def test_put_get_ls_lineage_and_verify(ws: Path) -> None:
    (ws / "train.csv").write_text("x,y\n1,0\n2,1\n")
    (ws / "model.pkl").write_bytes(b"\x80\x04\x95\x0b\x00\x00\x00\x00\x00\x00\x00}\x94\x8c\x01w\x94K\x01s.")
    put = run("store", "put", "train.csv", "--name", "data/train", cwd=ws)
    assert put.returncode == 0, put.stderr
    assert put.stdout.startswith("stored data/train@1")
    put2 = run("store", "put", "model.pkl", "--name", "churn", "--parent", "data/train@1", cwd=ws)
    assert put2.returncode == 0, put2.stderr
    assert "scan: clean" in put2.stdout
    got = run("store", "get", "churn", "-o", "restored.pkl", cwd=ws)
    assert got.returncode == 0, got.stderr
    assert (ws / "restored.pkl").read_bytes() == (ws / "model.pkl").read_bytes()
    listing = run("store", "ls", "--json", cwd=ws)
    docs = json.loads(listing.stdout)
    assert [d["ref"] for d in docs] == ["churn@1", "data/train@1"]
    assert docs[0]["created_by"] == "ci-bot"
    lineage = run("store", "lineage", "churn@1", cwd=ws)
    assert lineage.stdout.splitlines()[0].startswith("churn@1")
    assert lineage.stdout.splitlines()[1].startswith("  data/train@1")
    ok = run("store", "verify", cwd=ws)
    assert ok.returncode == 0 and "checked 2 version(s): 0 failed" in ok.stdout


def test_store_verify_names_each_tampered_version_and_exits_1(ws: Path) -> None:
    for name in ("a", "b", "c"):
        (ws / f"{name}.csv").write_text(f"{name}\n" * 1000)
        assert run("store", "put", f"{name}.csv", "--name", name, cwd=ws).returncode == 0
    blobs = sorted((ws / ".pipewarden" / "store" / "blobs").rglob("*"))
    bodies = [p for p in blobs if p.is_file()]
    for body in bodies[:2]:
        data = bytearray(body.read_bytes())
        data[-3] ^= 0xFF
        body.write_bytes(bytes(data))
    result = run("store", "verify", cwd=ws)
    assert result.returncode == 1
    failed = [line for line in result.stdout.splitlines() if line.startswith("FAILED")]
    assert len(failed) == 2
    assert "2 failed" in result.stdout
    get = run("store", "get", failed[0].split()[1].rstrip(":"), "-o", "out.csv", cwd=ws)
    assert get.returncode == 1 and "failed:" in get.stderr
    assert not (ws / "out.csv").exists()


def test_a_malicious_model_is_refused_with_exit_1_and_recorded(ws: Path) -> None:
    # CWE-502: GLOBAL os.system + REDUCE with an `echo` payload; never loaded.
    (ws / "evil.pkl").write_bytes(b"\x80\x02cos\nsystem\nX\x07\x00\x00\x00echo hi\x85R.")
    result = run("store", "put", "evil.pkl", "--name", "churn", cwd=ws)
    assert result.returncode == 1
    assert "PW-SCAN-101" in result.stderr and "refused as churn" in result.stderr
    refused = run("store", "ls", "--refused", "--json", cwd=ws)
    (record,) = json.loads(refused.stdout)
    assert (record["name"], record["by"], record["max_severity"]) == ("churn", "ci-bot", "critical")
    assert run("store", "ls", cwd=ws).stdout == ""


def test_keys_rotate_reseal_retire_and_export(ws: Path) -> None:
    (ws / "d.csv").write_text("1\n")
    assert run("store", "put", "d.csv", "--name", "d", cwd=ws).returncode == 0
    before = run("keys", "list", cwd=ws).stdout.splitlines()
    old = before[0].split()[0]
    assert "current" in before[0] and "seals 1 artifact(s)" in before[0]
    retire_now = run("keys", "retire", old, cwd=ws)
    assert retire_now.returncode == 2 and "still seals the data keys of 1 artifact" in retire_now.stderr
    rotated = run("keys", "rotate", cwd=ws)
    assert rotated.returncode == 0 and "re-sealed 1 data key(s)" in rotated.stdout
    assert run("keys", "retire", old, cwd=ws).returncode == 0
    after = run("keys", "list", cwd=ws).stdout
    assert f"{old}  retired" in after
    assert run("store", "get", "d", "-o", "d2.csv", cwd=ws).returncode == 0
    pem = run("keys", "export-public", cwd=ws).stdout
    assert pem.startswith("-----BEGIN PUBLIC KEY-----")
    assert "PRIVATE" not in pem


def test_sign_and_verify_name_every_change(ws: Path) -> None:
    model = ws / "bert"
    model.mkdir()
    (model / "config.json").write_text("{}")
    (model / "weights.safetensors").write_bytes(os.urandom(10000))
    (model / "vocab.txt").write_text("a\nb\n")
    signed = run("sign", "bert", cwd=ws)
    assert signed.returncode == 0, signed.stderr
    assert (ws / "bert.pwsig").is_file()
    assert run("verify", "bert", cwd=ws).returncode == 0
    (model / "config.json").write_text('{"evil": 1}')
    (model / "vocab.txt").rename(model / "vocab2.txt")
    (model / "weights.safetensors").unlink()
    (model / "hook.py").write_text("print(1)\n")
    result = run("verify", "bert", cwd=ws)
    assert result.returncode == 1
    for line in (
        "modified: config.json",
        "renamed: vocab.txt (now vocab2.txt)",
        "removed: weights.safetensors",
        "added: hook.py",
    ):
        assert line in result.stderr


def test_sign_with_another_key_and_verify_with_its_public_key(ws: Path, tmp_path: Path) -> None:
    (ws / "m.onnx").write_bytes(b"\x08\x07")
    made = run("keys", "new-signing-key", "svc.key", cwd=ws)
    assert made.returncode == 0 and (ws / "svc.key.pub").is_file()
    assert run("sign", "m.onnx", "--key", "svc.key", "-o", "m.sig", cwd=ws).returncode == 0
    untrusted = run("verify", "m.onnx", "--signature", "m.sig", cwd=ws)
    assert untrusted.returncode == 1 and "not among" in untrusted.stderr
    assert run("verify", "m.onnx", "-s", "m.sig", "--public-key", "svc.key.pub", cwd=ws).returncode == 0
    assert run("keys", "trust", "svc.key.pub", cwd=ws).returncode == 0
    assert run("verify", "m.onnx", "-s", "m.sig", cwd=ws).returncode == 0
    (ws / "svc.key").chmod(0o644)
    loose = run("sign", "m.onnx", "--key", "svc.key", cwd=ws)
    assert loose.returncode == 2 and "chmod 600" in loose.stderr


def test_a_world_readable_key_ring_stops_every_store_command(ws: Path) -> None:
    (ws / ".pipewarden" / "keys" / "keyring.json").chmod(0o644)
    (ws / "d.csv").write_text("1\n")
    result = run("store", "put", "d.csv", "--name", "d", cwd=ws)
    assert result.returncode == 2
    assert "keyring.json" in result.stderr and "chmod 600" in result.stderr
