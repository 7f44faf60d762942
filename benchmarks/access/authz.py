"""Authorization decisions per second with a warm policy, against the 100,000/s target, beside Casbin.

    /work/venv/bin/python benchmarks/access/authz.py             # full run, about a minute
    /work/venv/bin/python benchmarks/access/authz.py --small     # a smoke run in seconds
    /work/venv/bin/python benchmarks/access/authz.py --no-casbin # pipewarden alone

Two workloads, generated from a fixed seed (the same requests every run):

- **full**: pipewarden's whole model. 1,000 principals over 40 projects, each
  with one to three grants (mostly scoped to a project), drawn from the
  built-in roles and two custom ones from a policy file (a role that allows
  writes under ``prod/`` and a role whose deny rule forbids them), plus a
  global deny rule; 15% of sessions without MFA; 10% of principals acting
  through API tokens with scopes; requests on their own and others' tokens.
- **comparable**: the part of it that a Casbin RBAC-with-domains model
  expresses exactly: the same roles and deny rules, scopes as domains, every
  session with MFA, no tokens. Casbin (``casbin.Enforcer``, run in a venv of
  its own from requirements-competitors.txt) decides the same requests; every
  decision of the two must agree, or the report says where they differ.

Requests mix reads, lists, writes, deletes, predictions and audits, half on the
principal's own projects, the rest on other projects and ``prod/``, so about 40%
are allowed. "Warm" means every (principal, action) plan is compiled:
one untimed pass first; then --passes timed passes; the table gives the median
and the best. "Cold" is the first pass of a freshly built policy (every plan
compiled during it). One thread, in process: a decision is a function call.

Results: benchmarks/access/results/authz.md and authz.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "scan"))
import _harness as scan_harness  # noqa: E402  # benchmarks/scan/_harness.py: venvs and report files

from pipewarden import __version__  # noqa: E402  # after the path set-up above, like every benchmark
from pipewarden.identity import Grant, Policy, Subject  # noqa: E402

WORK = HERE / ".work"
RESULTS = HERE / "results"
REQUIREMENTS = HERE / "requirements-competitors.txt"
VENV_ENV = "PIPEWARDEN_BENCH_CASBIN_VENV"
DEFAULT_VENV = WORK / "casbin-venv"
TARGET = 100_000
SEED = 20261126

POLICY = """\
format: pipewarden.policy/1
roles:
  release-manager:
    description: promotes models to production
    requires_mfa: true
    allow:
      - actions: [artifact.read, artifact.list, artifact.write, artifact.verify, model.sign, model.verify]
        resources: ["artifact:prod/*", "model:prod/*"]
  no-prod-writes:
    description: "a restriction: no writes or signatures under prod/"
    deny:
      - actions: [artifact.write, model.sign]
        resources: ["artifact:prod/*", "model:prod/*"]
deny:
  - actions: artifact.delete
    resources: "artifact:prod/*"
    reason: production versions are kept for audits
"""

# (action, weight): what principals ask for, most often reads.
ACTION_MIX = [
    ("artifact.read", 30),
    ("artifact.list", 15),
    ("artifact.write", 10),
    ("artifact.verify", 8),
    ("artifact.delete", 3),
    ("model.predict", 10),
    ("model.sign", 3),
    ("model.verify", 5),
    ("scan.run", 4),
    ("data.check", 3),
    ("data.screen", 2),
    ("pipeline.run", 2),
    ("monitor.ingest", 2),
    ("audit.read", 1),
    ("user.create", 1),
    ("role.grant", 1),
]
TOKEN_ACTIONS = [("token.read", 3), ("token.revoke", 1), ("token.create", 1)]

# (role, scoped to a project?, weight) for the comparable workload; the full one adds the rest.
COMPARABLE_GRANTS = [
    ("ml-engineer", True, 30),
    ("ml-engineer", False, 4),
    ("viewer", False, 12),
    ("viewer", True, 12),
    ("pipeline-service", True, 15),
    ("auditor", False, 4),
    ("release-manager", False, 5),
    ("no-prod-writes", True, 6),
    ("admin", False, 2),
]
FULL_ONLY_GRANTS = [("data-scientist", True, 12)]


@dataclass(frozen=True)
class Workload:
    name: str
    subjects: list[Subject]
    requests: list[tuple[Subject, str, str]]


def _pick(rng: random.Random, weighted: list) -> tuple:
    return rng.choices(weighted, weights=[w[-1] for w in weighted])[0]


def _resource(rng: random.Random, action: str, home: list[str], projects: list[str], owner: str) -> str:
    kind = action.partition(".")[0]
    roll = rng.random()
    project = rng.choice(home) if roll < 0.5 else "prod" if roll < 0.6 else rng.choice(projects)
    thing = rng.randrange(200)
    if kind == "token":
        whose = owner if rng.random() < 0.7 else f"user{rng.randrange(1000):04d}"
        return f"token:{whose}" if action == "token.create" else f"token:{whose}/t{thing:05d}"
    return {
        "artifact": f"artifact:{project}/model-{thing}",
        "model": f"model:{project}/model-{thing}",
        "data": f"data:{project}/batch-{thing}",
        "scan": f"scan:{project}/upload-{thing}.pt",
        "pipeline": f"pipeline:{project}/train",
        "monitor": f"monitor:{project}/stream",
        "audit": "audit:log",
        "user": f"user:new{thing}",
        "role": "role:viewer",
    }[kind]


def make_workload(name: str, *, count: int, principals: int, projects: int) -> Workload:
    full = name == "full"
    rng = random.Random(f"{SEED}-{name}")  # noqa: S311  # a reproducible workload, not a secret
    all_projects = [f"p{i:02d}" for i in range(projects)]
    grants_mix = COMPARABLE_GRANTS + (FULL_ONLY_GRANTS if full else [])
    subjects = []
    homes: dict[str, list[str]] = {}
    for i in range(principals):
        pname = f"user{i:04d}"
        home = rng.sample(all_projects, rng.randint(1, 2))
        grants = []
        for _ in range(rng.randint(1, 3)):
            role, scoped, _w = _pick(rng, grants_mix)
            grants.append(Grant(role, f"project:{rng.choice(home)}" if scoped else "*"))
        grants = list(dict.fromkeys(grants))
        mfa = rng.random() >= 0.15 if full else True
        scopes = None
        if full and rng.random() < 0.10:
            scopes = frozenset(
                {"artifact.read", "artifact.list", f"model.predict@project:{home[0]}", "token.read"}
            )
        kind = "service" if any(g.role == "pipeline-service" for g in grants) else "user"
        subjects.append(
            Subject(
                pname,
                kind,
                tuple(grants),
                mfa=mfa,
                token_scopes=scopes,
                token_id="t0000000000a" if scopes is not None else None,
            )
        )
        homes[pname] = home
    mix = ACTION_MIX + (TOKEN_ACTIONS if full else [])
    requests = []
    for _ in range(count):
        subject = rng.choice(subjects)
        (action, _w) = _pick(rng, mix)
        resource = _resource(rng, action, homes[subject.name], all_projects, subject.name)
        requests.append((subject, action, resource))
    return Workload(name, subjects, requests)


def decisions(policy: Policy, requests: list[tuple[Subject, str, str]]) -> str:
    return "".join("Y" if policy.check(s, a, r).allowed else "N" for s, a, r in requests)


def time_pass(policy: Policy, requests: list[tuple[Subject, str, str]]) -> float:
    check = policy.check
    start = time.perf_counter()
    for subject, action, resource in requests:
        check(subject, action, resource)
    return time.perf_counter() - start


def measure_pipewarden(workload: Workload, passes: int) -> dict[str, object]:
    cold_policy = Policy.from_yaml(POLICY, source="policy.yaml")
    cold = time_pass(cold_policy, workload.requests)
    policy = Policy.from_yaml(POLICY, source="policy.yaml")
    verdicts = decisions(policy, workload.requests)  # the untimed warm-up pass
    seconds = [time_pass(policy, workload.requests) for _ in range(passes)]
    n = len(workload.requests)
    return {
        "tool": "pipewarden",
        "version": __version__,
        "requests": n,
        "allowed": verdicts.count("Y"),
        "cold_per_second": n / cold,
        "seconds": seconds,
        "median_per_second": n / statistics.median(seconds),
        "best_per_second": n / min(seconds),
        "decisions": verdicts,
    }


# --------------------------------------------------------------------------- Casbin

CASBIN_MODEL = """\
[request_definition]
r = sub, dom, obj, act

[policy_definition]
p = sub, obj, act, eft

[role_definition]
g = _, _, _

[policy_effect]
e = some(where (p.eft == allow)) && !some(where (p.eft == deny))

[matchers]
m = (p.sub == "*" || g(r.sub, p.sub, r.dom)) && keyMatch(r.obj, p.obj) && keyMatch(r.act, p.act)
"""


def _prefix_pattern(text: str) -> str:
    """A pattern Casbin's keyMatch reads as pipewarden does: literal, or one '*' at the end."""
    if "?" in text or "{" in text or ("*" in text and text.index("*") != len(text) - 1):
        raise SystemExit(f"{text!r}: not expressible with keyMatch; keep it out of the comparable workload")
    return text


def casbin_rules(policy: Policy, workload: Workload) -> tuple[list[list[str]], list[list[str]]]:
    """pipewarden's roles, deny rules and grants as Casbin p and g lines (RBAC with domains)."""
    used = {g.role for s in workload.subjects for g in s.grants}
    p: list[list[str]] = []
    for name in sorted(used):
        role = policy.role(name)
        for effect, rules in (("allow", role.allow), ("deny", role.deny)):
            for rule in rules:
                if rule.personal:
                    continue  # own-token rules: the comparable workload has no token requests
                for action in rule.actions:
                    objects = [s.text for s in rule.resources] or ["*"]
                    p.extend(
                        [name, _prefix_pattern(o), _prefix_pattern(action.text), effect] for o in objects
                    )
    for rule in policy.deny:
        for action in rule.actions:
            objects = [s.text for s in rule.resources] or ["*"]
            p.extend(["*", _prefix_pattern(o), _prefix_pattern(action.text), "deny"] for o in objects)
    g = [
        [s.name, grant.role, grant.scope.removeprefix("project:") if grant.scope != "*" else "*"]
        for s in workload.subjects
        for grant in s.grants
    ]
    return p, g


def casbin_python(option: str | None, *, install: bool) -> Path | None:
    venv = Path(option or os.environ.get(VENV_ENV) or DEFAULT_VENV).expanduser().resolve()
    python = venv / "bin" / "python"
    probe = [str(python), "-c", "import casbin"]
    if python.exists() and subprocess.run(probe, capture_output=True, check=False).returncode == 0:
        return python
    if not install:
        return None
    print(f"creating Casbin's venv at {venv} ...", file=sys.stderr)
    scan_harness.install_venv(venv, REQUIREMENTS)
    return python


def measure_casbin(python: Path, policy: Policy, workload: Workload, passes: int) -> dict[str, object]:
    p, g = casbin_rules(policy, workload)
    job = {
        "model": CASBIN_MODEL,
        "p": p,
        "g": g,
        "requests": [[s.name, r, a] for s, a, r in workload.requests],
        "passes": passes,
    }
    WORK.mkdir(parents=True, exist_ok=True)
    path = WORK / "casbin-workload.json"
    path.write_text(json.dumps(job), encoding="utf-8")
    out = subprocess.run(
        [str(python), str(HERE / "_casbin_worker.py"), str(path)], capture_output=True, text=True, check=True
    )
    result = json.loads(out.stdout)
    n = len(workload.requests)
    return {
        "tool": "casbin",
        "version": result["version"],
        "requests": n,
        "allowed": result["decisions"].count("Y"),
        "seconds": result["seconds"],
        "median_per_second": n / statistics.median(result["seconds"]),
        "best_per_second": n / min(result["seconds"]),
        "decisions": result["decisions"],
        "policy_lines": len(p),
        "grouping_lines": len(g),
    }


# --------------------------------------------------------------------------- report


def _row(workload: str, r: dict, base: float | None) -> str:
    median, best = r["median_per_second"], r["best_per_second"]
    cold = f"{r['cold_per_second']:,.0f}" if "cold_per_second" in r else "-"
    ratio = f"{median / base:.3f}x" if base else "1.00x"
    target = f"{median / TARGET:.1f}x" if r["tool"] == "pipewarden" else "-"
    allowed = f"{r['allowed']:,} ({100 * r['allowed'] / r['requests']:.0f}%)"
    return (
        f"| {workload} | {r['tool']} {r['version']} | {r['requests']:,} | {allowed} | {median:,.0f} | "
        f"{best:,.0f} | {1e6 / median:.2f} | {cold} | {ratio} | {target} |"
    )


def report(results: dict, args: argparse.Namespace) -> str:
    env = results["environment"]
    lines = [
        "# Authorization decisions per second",
        "",
        f"Machine: {env['machine']}, {env['cpus']} CPUs, Python {env['python']} (pipewarden source "
        f"{env['source']}, fingerprint {env['fingerprint']}), load average {env['load_average']:.2f} "
        "at the start. One thread, in process, "
        f"median of {args.passes} timed passes after one untimed pass; target {TARGET:,} decisions/s.",
        "",
        "| workload | tool | requests | allowed | decisions/s (median) | best | µs per decision | "
        "cold first pass (/s) | throughput vs pipewarden | vs target |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        _row("full", results["full"], None),
    ]
    side = results["comparable"]
    lines.append(_row("comparable", side["pipewarden"], None))
    if "casbin" in side:
        lines.append(_row("comparable", side["casbin"], side["pipewarden"]["median_per_second"]))
    lines.append("")
    lines += [f"- {note}" for note in results["notes"]]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--small", action="store_true", help="a smoke run: fewer requests and passes")
    parser.add_argument("--passes", type=int, default=None, help="timed passes (default 5; 2 with --small)")
    parser.add_argument("--requests", type=int, default=None, help="requests per workload (default 200,000)")
    parser.add_argument("--casbin-requests", type=int, default=None, help="requests Casbin decides (20,000)")
    parser.add_argument("--no-casbin", dest="casbin", action="store_false", help="measure pipewarden alone")
    parser.add_argument("--casbin-venv", help=f"Casbin's venv (default ${VENV_ENV}, else {DEFAULT_VENV})")
    parser.add_argument("--json", action="store_true", help="print the JSON results too")
    args = parser.parse_args()
    args.passes = args.passes or (2 if args.small else 5)
    count = args.requests or (20_000 if args.small else 200_000)
    casbin_count = args.casbin_requests or (2_000 if args.small else 20_000)

    notes: list[str] = []
    full = make_workload("full", count=count, principals=1000, projects=40)
    results: dict[str, object] = {
        "environment": {
            "machine": platform.machine() + " " + platform.system(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "source": scan_harness.source_revision(),
            "fingerprint": scan_harness.source_fingerprint(),
            # Other work on the machine slows a CPU-bound loop: the report says how busy it was.
            "load_average": os.getloadavg()[0],
        },
        "target_per_second": TARGET,
        "full": measure_pipewarden(full, args.passes),
    }
    comparable = make_workload("comparable", count=casbin_count, principals=1000, projects=40)
    pw = measure_pipewarden(comparable, args.passes)
    side: dict[str, object] = {"pipewarden": pw}
    python = casbin_python(args.casbin_venv, install=args.casbin) if args.casbin else None
    if python is not None:
        policy = Policy.from_yaml(POLICY, source="policy.yaml")
        cb = measure_casbin(python, policy, comparable, args.passes)
        side["casbin"] = cb
        differ = [i for i, (a, b) in enumerate(zip(pw["decisions"], cb["decisions"], strict=True)) if a != b]
        if differ:
            shown = [comparable.requests[i] for i in differ[:5]]
            examples = "; ".join(
                f"{s.name} {a} {r} (pipewarden {pw['decisions'][i]})"
                for (s, a, r), i in zip(shown, differ, strict=False)
            )
            notes.append(
                f"DECISIONS DIFFER on {len(differ)} of {len(comparable.requests)} requests, so the "
                f"comparison is not like for like: {examples}"
            )
        else:
            notes.append(
                f"Casbin and pipewarden agree on all {len(comparable.requests):,} comparable decisions "
                f"(Casbin: {cb['policy_lines']} policy lines, {cb['grouping_lines']} role assignments "
                "with domains)."
            )
    else:
        notes.append("Casbin was not measured (--no-casbin, or its venv is missing).")
    results["comparable"] = side
    notes += [
        "full: 1,000 principals, 40 projects, built-in and custom roles, a global deny, 15% of sessions "
        "without MFA, 10% of principals acting through scoped API tokens, token requests on own and "
        "others' tokens.",
        "comparable: the same without MFA differences or tokens, and without data-scientist (whose "
        "'artifact:*/data/*' patterns keyMatch cannot express); Casbin's request domain is the resource "
        "name's first path segment, computed in its timed loop as a caller would.",
        "cold first pass: a freshly built policy deciding the whole request list once, compiling every "
        "(principal, grants, session, action) plan on first use.",
        f"Command: python benchmarks/access/authz.py{' --small' if args.small else ''}.",
    ]
    results["notes"] = notes
    for part in (results["full"], pw, side.get("casbin")):
        if isinstance(part, dict):
            part.pop("decisions", None)
    markdown = report(results, args)
    directory = WORK / "results-small" if args.small else RESULTS
    scan_harness.write_outputs("authz", markdown, results, json_to_stdout=args.json, directory=directory)


if __name__ == "__main__":
    main()
