"""pipewarden's HTTPS server against the limit: the same app with no authentication, authorization or audit.

    python benchmarks/server/bench_server.py                          # about 7 minutes
    python benchmarks/server/bench_server.py --size-mb 64 --rounds 1 --seconds 3   # a quick run
    python benchmarks/server/bench_server.py --no-streaming --rounds 1 --seconds 3  # requests only

Three servers over one workspace (SQLite database, local store), each a process of its own on
loopback, each over TLS with the workspace's `--tls auto` certificate and uvicorn configured the way
`pipewarden serve` configures it (asyncio and h11, one worker, an access-log line per request):

- secure: `pipewarden serve --tls auto` itself (with --rate set out of the way): the full path;
- bare: _bare.py, the limit: the same library calls with no credential, no policy, no event and no
  middleware;
- bare + middleware: _bare.py --hardened: the bare routes behind pipewarden's middleware (rate limit,
  body limits, security headers), which tells the middleware's share from the rest.

Requests: 8 client threads in this process, each with a keep-alive HTTPS connection, call one route
for --seconds after 1 s of warm-up, for each route and server, --rounds times in an order that
alternates; the table gives the median round. Then one client alone against the secure and the bare
server: its latency is each request's own time, with no queue behind seven others. Routes:
`GET /healthz` (public; one database round trip), `GET /v1/artifacts/{name}/versions/{version}`
(a version's metadata: the secure server authenticates the bearer token, authorizes `artifact.list`,
reads the manifest and checks its signature, and appends one audit event; the bare server reads the
manifest and checks its signature) and `POST /v1/models/{name}/predict` with one row (a small
scikit-learn model stored, signed and scanned, with the data set it was trained on in its lineage:
both servers load it once the same way and answer through the inference guard; the secure server also
authenticates, authorizes `model.predict` and appends one audit event). Before and after the
measurements each server answers one prediction, which must agree.

Streaming: a 64 MiB file and a --size-mb one of random bytes (the two sizes show whether the server's
memory follows the size) uploaded (`PUT /v1/artifacts/...`: scanned, encrypted,
signed) and downloaded (`GET .../content`: verified into a spool file, then sent) through the secure
server, and the same bytes through the bare server's plain file routes; the server's peak RSS during
each (`/proc/<pid>/status` VmHWM, reset before each transfer through `/proc/<pid>/clear_refs`).

Results: benchmarks/server/results/server.md and server.json. The workspace and the data go to
benchmarks/server/.work/, removed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import ssl
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE.parent / "scan"))
sys.path.insert(0, str(HERE))
import _harness as scan_harness  # noqa: E402  (benchmarks/scan/_harness.py)
from _servers import (  # noqa: E402
    ARTIFACT,
    MODEL,
    PREDICT_ROW,
    WORK,
    Server,
    Setup,
    make_workspace,
    start_servers,
)
from _streaming import measure_streaming  # noqa: E402

RESULTS = HERE / "results"
CLIENTS = 8
WARMUP = 1.0
TARGET_RATIO = 0.5  # the full security path costs at most 2x throughput
TARGET_P99_MS = 5.0  # and adds at most 5 ms at p99
SERVERS = ("secure", "bare", "bare + middleware")
#: The concurrent load of the targets (8 clients, every server), and one client alone: its latency is
#: each request's own time, with no queueing behind the others.
PASSES = ((CLIENTS, SERVERS), (1, ("secure", "bare")))
#: Each route measured: its method, path and JSON body (None: no body).
ROUTES: dict[str, tuple[str, str, dict[str, Any] | None]] = {
    "healthz": ("GET", "/healthz", None),
    "metadata": ("GET", f"/v1/artifacts/{ARTIFACT}/versions/1", None),
    "predict": ("POST", f"/v1/models/{MODEL}/predict", {"rows": [PREDICT_ROW]}),
}


# --------------------------------------------------------------------------- requests


def hammer(
    server: Server,
    route: tuple[str, str, dict[str, Any] | None],
    *,
    clients: int,
    headers: dict[str, str],
    context: ssl.SSLContext,
    seconds: float,
) -> dict[str, Any]:
    """`clients` threads with keep-alive connections calling `route` for WARMUP + `seconds`; only the
    requests started after the warm-up count."""
    method, path, body = route
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors = [0] * clients
    start = time.monotonic()
    counted_from, until = start + WARMUP, start + WARMUP + seconds

    def client(i: int) -> None:
        with httpx.Client(verify=context, headers=headers, timeout=30) as http:
            url = server.url(path)
            while (now := time.monotonic()) < until:
                try:
                    ok = http.request(method, url, json=body).status_code == 200
                except httpx.HTTPError:
                    ok = False
                if now >= counted_from:
                    latencies[i].append(time.monotonic() - now)
                    errors[i] += not ok

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    time.sleep(max(0.0, counted_from - time.monotonic()))
    cpu0, ours0 = server.cpu_seconds(), _own_cpu()
    time.sleep(max(0.0, until - time.monotonic()))
    cpu1, ours1 = server.cpu_seconds(), _own_cpu()
    for t in threads:
        t.join()
    every = sorted(x for per in latencies for x in per)
    if not every:
        raise SystemExit(f"{server.label} {path}: no request completed")
    return {
        "load_1min": os.getloadavg()[0],
        "requests": len(every),
        "per_second": len(every) / seconds,
        "p50_ms": 1000 * every[len(every) // 2],
        "p99_ms": 1000 * every[min(len(every) - 1, int(len(every) * 0.99))],
        "errors": sum(errors),
        "server_cpu": (cpu1 - cpu0) / seconds,
        "client_cpu": (ours1 - ours0) / seconds,
    }


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def predict_answers(
    servers: dict[str, Server], setup: Setup, context: ssl.SSLContext, *, strict: bool = True
) -> dict[str, Any]:
    """One predict call to each server: before anything is measured (the model is loaded, once per
    server, and the answers must agree: the row is valid, the prediction the same), and after."""
    headers = {"authorization": f"Bearer {setup.token}"}
    method, path, body = ROUTES["predict"]
    answers: dict[str, Any] = {}
    for label, server in servers.items():
        response = httpx.request(
            method, server.url(path), json=body, headers=headers, verify=context, timeout=120
        )
        if response.status_code != 200:
            raise SystemExit(f"{label} POST {path}: {response.status_code} {response.text[:500]}")
        row = response.json()["rows"][0]
        answers[label] = {k: row[k] for k in ("verdict", "action", "prediction")}
    if strict and (
        len({json.dumps(a, sort_keys=True) for a in answers.values()}) != 1
        or any(a["action"] == "refuse" for a in answers.values())
    ):
        raise SystemExit(f"the servers' predictions differ or were refused: {answers}")
    return answers


def measure_requests(
    servers: dict[str, Server], setup: Setup, context: ssl.SSLContext, *, rounds: int, seconds: float
) -> dict[str, Any]:
    """Each pass (clients, servers) over both routes, `rounds` times in alternating order; per route
    and server the median round by throughput, and the verdict against the targets."""
    headers = {"authorization": f"Bearer {setup.token}"}
    passes: dict[str, Any] = {}
    for clients, labels in PASSES:
        runs: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for round_number in range(rounds):
            order = list(labels) if round_number % 2 == 0 else list(reversed(labels))
            for route, spec in ROUTES.items():
                for label in order:
                    run = hammer(
                        servers[label],
                        spec,
                        clients=clients,
                        headers=headers,
                        context=context,
                        seconds=seconds,
                    )
                    runs.setdefault((route, label), []).append(run)
                    print(
                        f"  {clients} client(s) {route:9} {label:18} {run['per_second']:7.0f}/s  "
                        f"p50 {run['p50_ms']:6.2f} ms  p99 {run['p99_ms']:6.2f} ms  errors {run['errors']}",
                        file=sys.stderr,
                    )
        table: dict[str, Any] = {}
        for route in ROUTES:
            table[route] = {}
            for label in labels:
                done = runs[(route, label)]
                median = sorted(done, key=lambda r: r["per_second"])[len(done) // 2]
                table[route][label] = {**median, "rounds": [round(r["per_second"], 1) for r in done]}
            secure, bare = table[route]["secure"], table[route]["bare"]
            ratio = secure["per_second"] / bare["per_second"]
            added = secure["p99_ms"] - bare["p99_ms"]
            table[route]["verdict"] = {
                "throughput_ratio": ratio,
                "p99_added_ms": added,
                "ratio_met": ratio >= TARGET_RATIO,
                "p99_met": added <= TARGET_P99_MS,
            }
        passes[str(clients)] = table
    return passes


def breakdown(setup: Setup, *, calls: int = 300) -> list[dict[str, Any]]:
    """Where a metadata request's library time goes: each step the secure route takes, called alone in
    this process (one thread, the servers stopped), `calls` times after a warm-up."""
    from pipewarden.events import Acting, Actor
    from pipewarden.identity import Authenticator, Policy, TokenCache
    from pipewarden.server import ServerSettings
    from pipewarden.server._state import ServerState
    from pipewarden.server.routes._models import ModelCache, answer
    from pipewarden.store import ArtifactRef
    from pipewarden.workspace import Workspace

    ws = Workspace.open(setup.ws)
    events = ws.events()
    policy = Policy.for_workspace(ws.root)
    # As the server makes it: tokens that worked are kept in memory for the settings' lifetime.
    auth = Authenticator(
        ws.database(),
        events=events,
        keyring=ws.keyring(),
        policy=policy,
        token_cache=TokenCache(lifetime=ServerSettings(tls_auto=True).token_cache_seconds),
    )
    uncached = Authenticator(ws.database(), events=events, keyring=ws.keyring(), policy=policy)
    subject = auth.authenticate_token(setup.token, origin="http:127.0.0.1")
    acting = Acting(
        actor=Actor(subject.name, subject.kind, "http:127.0.0.1", token_id=subject.token_id),
        events=events,
        authorizer=policy.bind(subject),
    )
    store = ws.store()
    ref = ArtifactRef(ARTIFACT, 1)
    served_by = ServerState(workspace=ws, settings=ServerSettings(workspace=ws.root, tls_auto=True))
    models = ModelCache()
    steps = [
        (
            "authenticate the bearer token, from the token cache (a hit: within its lifetime)",
            "secure",
            lambda: auth.authenticate_token(setup.token, origin="http:127.0.0.1"),
        ),
        (
            "authenticate the bearer token from the database (a read transaction: a miss)",
            "secure",
            lambda: uncached.authenticate_token(setup.token, origin="http:127.0.0.1"),
        ),
        (
            "decide the policy (artifact.list)",
            "secure",
            lambda: acting.authorize("artifact.list", f"artifact:{ARTIFACT}"),
        ),
        ("read the manifest, check its signature", "both", lambda: store.resolve(ref)),
        (
            "predict: the loaded model for one row, the guard's verdict, the model's answer",
            "both",
            lambda: answer(models.get(served_by, MODEL, None), [PREDICT_ROW], caller=subject.name),
        ),
        (
            "append the audit event (a write transaction, fsync)",
            "secure",
            lambda: acting.emit("artifact.list", f"artifact:{ARTIFACT}", "allowed", {"version": 1}),
        ),
    ]
    rows = []
    for label, where, step in steps:
        for _ in range(20):
            step()
        cpu, started = _own_cpu(), time.perf_counter()
        for _ in range(calls):
            step()
        wall = (time.perf_counter() - started) / calls
        rows.append(
            {"step": label, "done_by": where, "ms": 1000 * wall, "cpu_ms": 1000 * (_own_cpu() - cpu) / calls}
        )
    rows.append(_appends_at_once(acting, threads=CLIENTS, calls=calls))
    return rows


def _appends_at_once(acting: Any, *, threads: int, calls: int) -> dict[str, Any]:
    """`threads` threads appending `calls` events between them, each waiting for its own to be
    durable, as concurrent requests do: the audit log commits what arrives together in one transaction."""
    per_thread = max(1, calls // threads)
    start = threading.Barrier(threads + 1)

    def writer() -> None:
        start.wait()
        for _ in range(per_thread):
            acting.emit("artifact.list", f"artifact:{ARTIFACT}", "allowed", {"version": 1})

    workers = [threading.Thread(target=writer) for _ in range(threads)]
    for w in workers:
        w.start()
    cpu, started = _own_cpu(), time.perf_counter()
    start.wait()
    for w in workers:
        w.join()
    wall, count = time.perf_counter() - started, per_thread * threads
    return {
        "step": f"append the audit event, {threads} threads at once (group commit), per event",
        "done_by": "secure",
        "ms": 1000 * wall / count,
        "cpu_ms": 1000 * (_own_cpu() - cpu) / count,
    }


# --------------------------------------------------------------------------- report


def environment() -> dict[str, Any]:
    import fastapi
    import h11
    import starlette
    import uvicorn

    import pipewarden

    return {
        "machine": f"{platform.machine()} {platform.system()}",
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "pipewarden": pipewarden.__version__,
        "fastapi": fastapi.__version__,
        "starlette": starlette.__version__,
        "uvicorn": uvicorn.__version__,
        "h11": h11.__version__,
        "openssl": ssl.OPENSSL_VERSION,
        "pipewarden_source": scan_harness.source_revision(),
        "pipewarden_fingerprint": scan_harness.source_fingerprint(),
    }


def _met(ok: bool) -> str:
    return "met" if ok else "**not met**"


def render(data: dict[str, Any]) -> str:
    env = data["environment"]
    lines = [
        "# pipewarden's HTTPS server against the limit",
        "",
        f"`{data['command']}`, {data['date']}; {env['machine']}, {env['cpus']} CPUs, Python {env['python']}, "
        f"pipewarden {env['pipewarden']} ({env['pipewarden_source']}), FastAPI {env['fastapi']}, Starlette "
        f"{env['starlette']}, uvicorn {env['uvicorn']} (asyncio, h11 {env['h11']}), {env['openssl']}.",
        f"Load average (1 min) before the run {data['load_before'][0]:.2f}, after it "
        f"{data['load_after'][0]:.2f}: the clients, the servers and whatever else runs on the machine "
        "share its CPUs.",
        "",
        f"## Requests: keep-alive HTTPS clients, {data['seconds']:g} s per round after {WARMUP:g} s of "
        f"warm-up, median of {data['rounds']} round(s)",
        "",
        "| clients | route | server | requests/s | p50 (ms) | p99 (ms) | server CPU | server CPU per request "
        "(ms) | client CPU | errors | each round (/s) |",
        "| ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for clients, table in data["requests"].items():
        for route, by_server in table.items():
            for label, r in by_server.items():
                if label == "verdict":
                    continue
                lines.append(
                    f"| {clients} | {route} | {label} | {r['per_second']:,.0f} | {r['p50_ms']:.2f} | "
                    f"{r['p99_ms']:.2f} | {100 * r['server_cpu']:.0f}% | "
                    f"{1000 * r['server_cpu'] / r['per_second']:.2f} | {100 * r['client_cpu']:.0f}% | "
                    f"{r['errors']} | {', '.join(f'{x:,.0f}' for x in r['rounds'])} |"
                )
    lines += [
        "",
        "| clients | route | secure / bare throughput | target (>= 0.5: at most 2x slower) | "
        "p99 added (ms) | target (<= 5 ms) |",
        "| ---: | --- | ---: | --- | ---: | --- |",
    ]
    for clients, table in data["requests"].items():
        for route, by_server in table.items():
            v = by_server["verdict"]
            lines.append(
                f"| {clients} | {route} | {v['throughput_ratio']:.2f} | {_met(v['ratio_met'])} | "
                f"{v['p99_added_ms']:.2f} | {_met(v['p99_met'])} |"
            )
    lines += ["", "One row's answer from each server (the guard's verdict and the model's prediction):", ""]
    lines += [f"- {label}: `{answer}`" for label, answer in data["predict_answers"].items()]
    lines += [
        "",
        "## Streaming a large artifact",
        "",
        "| transfer | server | size (MiB) | seconds | MiB/s | first byte (s) | server RSS before (MiB) | "
        "peak (MiB) | above before (MiB) |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    if not data["streaming"]:
        lines.append("| not measured in this run (--no-streaming) | | | | | | | | |")
    for r in data["streaming"]:
        first = f"{r['first_byte_s']:.2f}" if r.get("first_byte_s") is not None else "-"
        lines.append(
            f"| {r['transfer']} | {r['server']} | {r['size_mib']:,.0f} | {r['seconds']:.2f} "
            f"| {r['mib_per_s']:,.0f} | {first} | {r['idle_rss_mib']:.0f} | {r['peak_rss_mib']:.0f} "
            f"| {r['above_idle_mib']:.0f} |"
        )
    lines += [
        "",
        "## Where a request's library time goes",
        "",
        "Each step of the secure routes alone, in one thread of the benchmark's process, the servers "
        "stopped (mean of 300 calls after a warm-up); the last row: the same appends from "
        f"{CLIENTS} threads at once, per event:",
        "",
        "| step | done by | ms per call | CPU ms per call |",
        "| --- | --- | ---: | ---: |",
    ]
    lines += [
        f"| {r['step']} | {r['done_by']} | {r['ms']:.3f} | {r['cpu_ms']:.3f} |" for r in data["breakdown"]
    ]
    lines += ["", "## Notes", ""]
    lines += [f"- {note}" for note in data["notes"]]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mb", type=int, default=1024, help="the large artifact streamed (MiB)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every request measurement")
    parser.add_argument("--seconds", type=float, default=5.0, help="measured seconds per round")
    parser.add_argument("--keep", action="store_true", help="keep benchmarks/server/.work/")
    parser.add_argument("--no-streaming", action="store_true", help="measure the requests only")
    args = parser.parse_args(argv)
    if args.size_mb < 1 or args.rounds < 1 or args.seconds <= 0:
        parser.error("--size-mb and --rounds are at least 1, --seconds is positive")
    shutil.rmtree(WORK, ignore_errors=True)
    (WORK / "data").mkdir(parents=True)
    load_before = os.getloadavg()
    before = scan_harness.source_fingerprint()
    setup = make_workspace(WORK)
    context = ssl.create_default_context(cafile=str(setup.cert))
    servers = start_servers(setup, context)
    streaming: list[dict[str, Any]] = []
    try:
        answers = predict_answers(servers, setup, context)
        print("requests:", file=sys.stderr)
        requests = measure_requests(servers, setup, context, rounds=args.rounds, seconds=args.seconds)
        answers_after = predict_answers(servers, setup, context, strict=False)
        if not args.no_streaming:
            print("streaming:", file=sys.stderr)
            sizes = sorted({min(64, args.size_mb), args.size_mb})
            streaming = measure_streaming(servers, setup, context, sizes=sizes)
    finally:
        for server in servers.values():
            server.stop()
    print("breakdown:", file=sys.stderr)
    steps = breakdown(setup)
    loads = [
        r["load_1min"]
        for table in requests.values()
        for route in table.values()
        for r in route.values()
        if "load_1min" in r
    ]
    notes = [
        f"load average (1 min) at the end of each request measurement: {min(loads):.2f} to {max(loads):.2f} "
        f"on {os.cpu_count()} CPUs"
    ]
    if answers_after != answers:
        notes.append(f"after the request measurements the predict answers were {answers_after}")
    for server in servers.values():
        log = server.log.read_text(errors="replace")
        if "Traceback" in log:
            notes.append(f"the {server.label} server logged a traceback (see {server.log.name} with --keep)")
    after = scan_harness.source_fingerprint()
    if before != after:
        notes.append(f"the source changed during the run ({before} -> {after})")
    data: dict[str, Any] = {
        "command": "python benchmarks/server/bench_server.py"
        + "".join(f" {a}" for a in (argv or sys.argv[1:])),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "environment": environment(),
        "load_before": load_before,
        "load_after": os.getloadavg(),
        "clients": CLIENTS,
        "rounds": args.rounds,
        "seconds": args.seconds,
        "targets": {"throughput_ratio": TARGET_RATIO, "p99_added_ms": TARGET_P99_MS},
        "requests": requests,
        "predict_answers": answers,
        "streaming": streaming,
        "breakdown": steps,
        "notes": notes,
    }
    scan_harness.write_outputs("server", render(data), data, json_to_stdout=False, directory=RESULTS)
    if not args.keep:
        shutil.rmtree(WORK, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
