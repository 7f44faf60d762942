"""Model signing and verification, side by side: pipewarden and model-signing.

    /work/venv/bin/python benchmarks/store/sign.py            # full run
    /work/venv/bin/python benchmarks/store/sign.py --small    # a 1/50 scale smoke run

Two inputs, generated into benchmarks/store/.work/data/ (pseudo-random bytes): one
2 GiB single-file model (model.safetensors) and a folder of 1,000 files of mixed
sizes (about 400 MiB). Each tool signs and verifies each input with its own CLI:

    pipewarden sign PATH --key KEY -o SIG
    pipewarden verify PATH --signature SIG --public-key KEY.pub
    model_signing sign key PATH --private_key EC.pem --signature SIG
    model_signing verify key PATH --public_key EC.pub.pem --signature SIG

pipewarden signs with Ed25519 (the only key type it takes), model-signing with an
ECDSA P-256 key (its `key` method takes secp256r1, secp384r1 or secp521r1 keys, not
Ed25519). Both hash with SHA-256, their default.

Every run is a fresh process under _measure.py: wall time from start to exit
(interpreter start-up included) and the process's peak RSS. Each run waits for a quiet
machine and is run again if other processes took CPU meanwhile (see _common.measure).
Each input is read once right before its runs, so every run reads it from the page
cache. Runs are interleaved across the tools; the table gives the median of --repeat
runs (default 3).

After the timed runs the inputs are altered three ways, in place (one byte flipped in
the 2 GiB file; one byte flipped in a small file of the folder; a file added to the
folder), and each tool verifies each: verification must fail. Every change is undone
right after.

Results: benchmarks/store/results/sign.md and sign.json. Where pipewarden is slower
than model-signing, a cProfile summary goes to results/profile-sign-<case>-<op>.txt.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import _common as c
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

SIGN_WORK = c.WORK / "sign"
TOOLS = ("pipewarden", "model-signing")


@dataclass(frozen=True)
class Signer:
    name: str
    sign: Callable[[Path, Path], list[str]]  # (target, signature) -> argv
    verify: Callable[[Path, Path], list[str]]
    version: list[str]


def make_signers(pipewarden: Path, model_signing: Path, keys: Path) -> dict[str, Signer]:
    pw_key, ec_key = keys / "pipewarden.key", keys / "model-signing.pem"
    if not pw_key.exists():
        subprocess.run(
            [str(pipewarden), "keys", "new-signing-key", str(pw_key)], check=True, capture_output=True
        )
    if not ec_key.exists():
        private = ec.generate_private_key(ec.SECP256R1())
        pem = private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        public = private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        ec_key.write_bytes(pem)
        ec_key.chmod(0o600)
        ec_key.with_suffix(".pub.pem").write_bytes(public)
    pw, ms = str(pipewarden), str(model_signing)
    return {
        "pipewarden": Signer(
            "pipewarden",
            lambda t, s: [pw, "sign", str(t), "--key", str(pw_key), "-o", str(s)],
            lambda t, s: [pw, "verify", str(t), "--signature", str(s), "--public-key", f"{pw_key}.pub"],
            [pw, "--version"],
        ),
        "model-signing": Signer(
            "model-signing",
            lambda t, s: [ms, "sign", "key", str(t), "--private_key", str(ec_key), "--signature", str(s)],
            lambda t, s: [
                ms,
                "verify",
                "key",
                str(t),
                "--public_key",
                str(ec_key.with_suffix(".pub.pem")),
                "--signature",
                str(s),
            ],
            [ms, "--version"],
        ),
    }


# --------------------------------------------------------------------------- measuring


def summarize(runs: list[c.Run]) -> dict[str, object]:
    walls = [r.wall_seconds for r in runs]
    failed = [r for r in runs if r.timed_out or r.exit_code != 0]
    return {
        "ok": not failed,
        "detail": c.strip_paths(_message(failed[0]))[:300] if failed else "",
        "wall_seconds": [round(w, 3) for w in walls],
        "median_seconds": round(c.median(walls), 3),
        "rss_mib": [round(r.max_rss_kib / 1024, 1) for r in runs],
        "peak_rss_mib": round(max(r.max_rss_kib for r in runs) / 1024, 1),
        "foreign_cpu_seconds": [r.foreign_cpu_seconds for r in runs],
        "tries": [r.tries for r in runs],
        "disturbed": [r.disturbed for r in runs],
    }


def _message(run: c.Run) -> str:
    if run.timed_out:
        return f"timed out after {run.wall_seconds:.0f} s"
    text = " ".join((run.stderr + " " + run.stdout).split())
    return f"exit {run.exit_code}: {text}"


def _verify_failure(run: c.Run) -> str:
    """What a failed verify said, shortest form: pipewarden's list of changes (indented lines
    under its one-line summary), model-signing's error without its fixed prefix."""
    if run.timed_out:
        return f"timed out after {run.wall_seconds:.0f} s"
    lines = [ln for ln in run.stderr.splitlines() if ln.strip()]
    changes = [ln.strip() for ln in lines if ln.startswith(" ")]
    text = "; ".join(changes) if changes else (lines[-1] if lines else run.stdout.strip())
    text = text.removeprefix("Verification failed with error: ")
    return f"exit {run.exit_code}: {text}"


def bench_case(
    signers: dict[str, Signer], target: Path, sigs: Path, *, repeat: int, timeout: float, mem_limit: int
) -> dict[str, dict[str, dict[str, object]]]:
    """Sign then verify with every tool, `repeat` times, interleaved; return per op, per tool."""
    runs: dict[str, dict[str, list[c.Run]]] = {op: {n: [] for n in signers} for op in ("sign", "verify")}
    for rep in range(repeat):
        for op in ("sign", "verify"):
            for name, signer in signers.items():
                sig = sigs / f"{target.name}.{name}.sig"
                argv = signer.sign(target, sig) if op == "sign" else signer.verify(target, sig)
                run = c.measure(argv, timeout=timeout, mem_limit=mem_limit)
                runs[op][name].append(run)
                print(
                    f"  run {rep + 1} {op:<6} {name:<13} exit {run.exit_code} {run.wall_seconds:7.2f} s "
                    f"{run.max_rss_kib / 1024:7.0f} MiB",
                    file=sys.stderr,
                    flush=True,
                )
    out = {op: {n: summarize(rs) for n, rs in by_tool.items()} for op, by_tool in runs.items()}
    for name in signers:
        out["sign"][name]["signature_bytes"] = (sigs / f"{target.name}.{name}.sig").stat().st_size
    return out


def flip_byte(path: Path, offset: int) -> None:
    with open(path, "r+b") as f:
        f.seek(offset)
        value = f.read(1)[0]
        f.seek(offset)
        f.write(bytes([value ^ 0x01]))


def tamper_checks(
    signers: dict[str, Signer], model: Path, folder: Path, sigs: Path, *, timeout: float, mem_limit: int
) -> list[dict[str, object]]:
    """Alter the inputs three ways; every tool's verify must fail on each. Each change is undone."""
    small = next(
        p for p in sorted(folder.rglob("*")) if p.is_file() and 1024 <= p.stat().st_size <= 128 * 1024
    )
    extra = folder / "block_00" / "added.json"

    def flip_model() -> Callable[[], None]:
        flip_byte(model, model.stat().st_size // 2)
        return lambda: flip_byte(model, model.stat().st_size // 2)

    def flip_small() -> Callable[[], None]:
        flip_byte(small, small.stat().st_size // 2)
        return lambda: flip_byte(small, small.stat().st_size // 2)

    def add_file() -> Callable[[], None]:
        extra.write_text('{"added": true}\n')
        return lambda: extra.unlink()

    changes = (
        (
            model,
            f"one byte flipped in the middle of {model.name} ({c.size_of(model) / c.MIB:.0f} MiB)",
            flip_model,
        ),
        (
            folder,
            f"one byte flipped in {small.relative_to(folder)} ({small.stat().st_size} bytes)",
            flip_small,
        ),
        (folder, f"a file added to the folder ({extra.relative_to(folder)})", add_file),
    )
    results = []
    for target, description, apply in changes:
        undo = apply()
        try:
            row: dict[str, object] = {"change": description}
            for name, signer in signers.items():
                run = c.measure_once(
                    signer.verify(target, sigs / f"{target.name}.{name}.sig"),
                    timeout=timeout,
                    mem_limit=mem_limit,
                )
                # Both CLIs exit 1 when verification fails (2 is a usage error for both).
                detected = not run.timed_out and run.exit_code == 1
                row[name] = {"detected": detected, "detail": c.strip_paths(_verify_failure(run))[:300]}
                print(
                    f"  tamper: {name:<13} {'detected' if detected else 'MISSED'}: {description}",
                    file=sys.stderr,
                )
        finally:
            undo()
        results.append(row)
    return results


def references(model: Path, repeat: int) -> dict[str, float]:
    """Reading the 2 GiB file, and hashing it with SHA-256 in one thread, in this process."""
    reads = []
    for _ in range(repeat):
        c.wait_for_quiet()
        reads.append(c.read_through(model))
    hashes = []
    for _ in range(repeat):
        c.wait_for_quiet()
        start = time.perf_counter()
        h = hashlib.sha256()
        with open(model, "rb", buffering=0) as f:
            while block := f.read(c.MIB):
                h.update(block)
        hashes.append(time.perf_counter() - start)
    return {"read_seconds": round(c.median(reads), 3), "sha256_seconds": round(c.median(hashes), 3)}


# --------------------------------------------------------------------------- report


def _ratio(x: float, base: float) -> str:
    return f"{x / base:.2f}x" if base > 0 else "-"


def render(data: dict[str, object]) -> str:
    env = data["environment"]
    assert isinstance(env, dict)
    ref = data["references"]
    assert isinstance(ref, dict)
    model_mib = ref["model_mib"]
    lines = [
        "# Model signing and verification, side by side",
        "",
        f"Machine: {env['machine']}, {env['cpus']} CPUs, {env['memory_gib']} GiB, Python {env['python']}, "
        f"{env['openssl']}. Versions: "
        + ", ".join(f"{k} {v}" for k, v in env["versions"].items())
        + f" (pipewarden source {env['pipewarden_source']}, fingerprint {env['pipewarden_fingerprint']}).",
        "",
        "pipewarden signs with an Ed25519 key, model-signing (`sign key` / `verify key`) with an "
        "ECDSA P-256 key; both hash every file with SHA-256, their default, on a pool of threads. "
        "pipewarden also cuts a file above 256 MiB into shards hashed in parallel; model-signing's "
        "CLI hashes each file whole, in one thread. Wall time is from process start to exit "
        f"(start-up included), the median of {data['repeat']} runs interleaved across the tools; "
        "peak RSS is the largest over those runs. Inputs are in the page cache (each read right "
        "before its runs). Ratios are model-signing / pipewarden: above 1 model-signing is slower "
        "or bigger.",
        "",
        f"References, in one Python process: reading the {model_mib:.0f} MiB file in 1 MiB chunks takes "
        f"{ref['read_seconds']:.2f} s ({model_mib / ref['read_seconds']:.0f} MiB/s); SHA-256 over it in one "
        f"thread {ref['sha256_seconds']:.2f} s ({model_mib / ref['sha256_seconds']:.0f} MiB/s).",
        "",
        "| case | size | files | operation | tool | median wall (s) | runs (s) | size / time (MiB/s) "
        "| time vs pipewarden | peak RSS (MiB) | RSS vs pipewarden |",
        "| --- | ---: | ---: | --- | --- | ---: | --- | ---: | ---: | ---: | ---: |",
    ]
    startup = data["startup"]
    assert isinstance(startup, dict)
    base = startup["pipewarden"]
    for name, r in startup.items():
        lines.append(
            f"| start-up | - | - | `--version` | {name} | {r['median_seconds']:.2f} "
            f"| {', '.join(f'{w:.2f}' for w in r['wall_seconds'])} | - "
            f"| {_ratio(r['median_seconds'], base['median_seconds'])} | {r['peak_rss_mib']:.0f} "
            f"| {_ratio(r['peak_rss_mib'], base['peak_rss_mib'])} |"
        )
    cases = data["cases"]
    assert isinstance(cases, list)
    for case in cases:
        mib = case["size_bytes"] / c.MIB
        for op in ("sign", "verify"):
            results = case["results"][op]
            base = results["pipewarden"]
            for name, r in results.items():
                status = "" if r["ok"] else f" **failed**: {r['detail'][:80]}"
                lines.append(
                    f"| {case['name']} | {mib:.0f} MiB | {case['files']} | {op}{status} | {name} "
                    f"| {r['median_seconds']:.2f} | {', '.join(f'{w:.2f}' for w in r['wall_seconds'])} "
                    f"| {mib / r['median_seconds']:.0f} "
                    f"| {_ratio(r['median_seconds'], base['median_seconds'])} "
                    f"| {r['peak_rss_mib']:.0f} | {_ratio(r['peak_rss_mib'], base['peak_rss_mib'])} |"
                )
    measured = [startup[n] for n in startup] + [
        case["results"][op][n] for case in cases for op in ("sign", "verify") for n in case["results"][op]
    ]
    lines += [
        "",
        "Interference: "
        + c.interference(
            [t for r in measured for t in r["tries"]], [d for r in measured for d in r["disturbed"]]
        ),
    ]
    lines += ["", "Signature file sizes: "]
    lines[-1] += "; ".join(
        f"{case['name']}: "
        + ", ".join(f"{n} {r['signature_bytes']:,} bytes" for n, r in case["results"]["sign"].items())
        for case in cases
    )
    lines[-1] += "."
    tamper = data["tamper"]
    assert isinstance(tamper, list)
    lines += [
        "",
        "## Sanity check: an altered model must fail verification",
        "",
        "| change | " + " | ".join(TOOLS) + " |",
        "| --- | " + " | ".join("---" for _ in TOOLS) + " |",
    ]
    for row in tamper:
        cells = []
        for name in TOOLS:
            r = row[name]
            detail = r["detail"][:100].replace("|", "\\|")
            cells.append(("detected" if r["detected"] else "**missed**") + f" ({detail})")
        lines.append(f"| {row['change']} | " + " | ".join(cells) + " |")
    lines += c.scan_harness.report_footer(data.get("notes"), heading="Notes", cases=cases)
    return "\n".join(lines)


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--competitors-venv",
        help=f"venv holding model_signing (default: ${c.COMPETITORS_ENV}, "
        f"else {c.DEFAULT_COMPETITORS_VENV}); created from requirements-competitors.txt if missing",
    )
    parser.add_argument(
        "--pipewarden", type=Path, help="the pipewarden CLI (default: the one beside this Python)"
    )
    parser.add_argument("--repeat", type=int, default=3)
    c.add_run_options(parser)
    args = parser.parse_args(argv)

    model_signing = c.ensure_competitor(c.competitors_venv(args.competitors_venv))
    pipewarden = args.pipewarden or c.scan_harness.default_pipewarden()
    python = pipewarden.parent / "python"
    ours = c.package_versions(python, ["pipewarden", "cryptography"])
    theirs = c.package_versions(model_signing.parent / "python", ["model-signing", "cryptography"])
    versions = {
        "pipewarden": ours["pipewarden"],
        "model-signing": theirs["model-signing"],
        "cryptography": ours["cryptography"],
        "cryptography (model-signing's venv)": theirs["cryptography"],
    }
    c.compile_pipewarden(python)
    scale = 0.02 if args.small else 1.0
    out_dir = c.RESULTS if scale == 1.0 else c.WORK / "results-small"
    mem_limit = int(args.mem_limit_gib * c.GIB)

    inputs = c.Inputs(scale)
    try:
        model = inputs.model_file(regenerate=args.regenerate)
        folder = inputs.model_folder(regenerate=args.regenerate)
        keys, sigs = SIGN_WORK / "keys", SIGN_WORK / "signatures"
        keys.mkdir(parents=True, exist_ok=True)
        sigs.mkdir(parents=True, exist_ok=True)
        signers = make_signers(pipewarden, model_signing, keys)

        print("warming the page cache and measuring the references ...", file=sys.stderr, flush=True)
        ref: dict[str, object] = {"model_mib": c.size_of(model) / c.MIB, **references(model, args.repeat)}

        data: dict[str, object] = {
            "environment": c.environment(versions),
            "repeat": args.repeat,
            "timeout": args.timeout,
            "scale": scale,
            "references": ref,
        }
        startup = {
            name: summarize(
                [c.measure(s.version, timeout=args.timeout, mem_limit=mem_limit) for _ in range(args.repeat)]
            )
            for name, s in signers.items()
        }
        data["startup"] = startup

        cases = []
        notes: list[str] = []
        for name, target, description in (
            ("model-2gb", model, "one file of pseudo-random bytes named model.safetensors"),
            (
                "folder-1000-files",
                folder,
                "1,000 files in 20 subfolders: 10 of 8-24 MiB, 90 of 0.5-4 MiB, 900 of 1-128 KiB",
            ),
        ):
            print(f"{name}: {c.strip_paths(str(target))}", file=sys.stderr, flush=True)
            # Again right before the case: a virtual machine may page out file data left
            # untouched for a minute or so.
            c.read_through(target)
            before = c.scan_harness.source_fingerprint()
            results = bench_case(
                signers, target, sigs, repeat=args.repeat, timeout=args.timeout, mem_limit=mem_limit
            )
            after = c.scan_harness.source_fingerprint()
            files = 1 if target.is_file() else sum(1 for p in target.rglob("*") if p.is_file())
            cases.append(
                {
                    "name": name,
                    "description": description if scale == 1.0 else f"{description}, at scale {scale}",
                    "size_bytes": c.size_of(target),
                    "files": files,
                    "results": results,
                    "pipewarden_source": before if before == after else f"{before} -> {after}",
                }
            )
            if before != after:
                notes.append(
                    f"{name}: the source changed while this case ran (its runs may mix two versions)"
                )
            for op, by_tool in results.items():
                pw, ms = by_tool["pipewarden"], by_tool["model-signing"]
                if ms["ok"] and pw["median_seconds"] > ms["median_seconds"]:
                    note = (
                        f"{name} {op}: pipewarden {pw['median_seconds']:.2f} s, model-signing "
                        f"{ms['median_seconds']:.2f} s"
                    )
                    if args.profile:
                        sig = sigs / f"{target.name}.pipewarden.sig"
                        cli_args = (
                            signers["pipewarden"].sign(target, sig)
                            if op == "sign"
                            else signers["pipewarden"].verify(target, sig)
                        )
                        prof = c.profile(
                            python,
                            ["cli", *cli_args[1:]],
                            out_dir / f"profile-sign-{name}-{op}.txt",
                            timeout=args.timeout,
                        )
                        note += f" (cProfile: {prof})"
                    notes.append(note)
        data["cases"] = cases
        print("tamper checks ...", file=sys.stderr, flush=True)
        data["tamper"] = tamper_checks(
            signers, model, folder, sigs, timeout=args.timeout, mem_limit=mem_limit
        )
        data["notes"] = notes
    finally:
        shutil.rmtree(c.SCRATCH, ignore_errors=True)
        shutil.rmtree(SIGN_WORK / "signatures", ignore_errors=True)
        if not args.keep:
            inputs.remove_created()
    c.write_outputs("sign", render(data), data, json_to_stdout=False, directory=out_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
