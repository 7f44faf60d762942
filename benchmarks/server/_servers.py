"""What bench_server.py runs against: the workspace, and the three server processes over it.

The workspace is made the way an operator makes one (an administrator who enrolled TOTP, a pipeline
service account with an API token the administrator made, one stored artifact, and a small
scikit-learn model stored, scanned and signed with the data set it was trained on in its lineage)
with the `--tls auto` certificate for 127.0.0.1. The secure server is `pipewarden serve` itself; the bare
ones are _bare.py. Each is a process of its own, its output in a log file under .work/.
"""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
WORK = HERE / ".work"
HOST = "127.0.0.1"
MIB = 1024 * 1024
ARTIFACT = "fraud/models/clf.json"
#: The model predictions are asked of, and the data set in its lineage (the guard is fitted on it).
MODEL = "fraud/models/scorer"
TRAINING_DATA = "fraud/data/train"
#: One row, well inside the training data: the guard passes it and the model answers.
PREDICT_ROW = {"f1": 0.42, "f2": -0.17}
PASSWORD = "cobalt lantern meadow quince"  # noqa: S105  # a throwaway workspace's administrator
#: Requests per minute per address and per credential: out of the way of 8 clients on one address
#: (the limiter has tests of its own).
RATE = "1000000000"


@dataclass(frozen=True)
class Setup:
    ws: Path
    cert: Path
    key: Path
    token: str


def make_workspace(root: Path) -> Setup:
    """A workspace as an operator makes one: an administrator who enrolled TOTP, a pipeline service
    account (pipeline-service on project:fraud) with an API token the administrator made, and one
    small stored artifact; and the `--tls auto` certificate for 127.0.0.1."""
    from pipewarden.events import Actor
    from pipewarden.identity import ADMIN_ROLE, Accounts, Authenticator, Grant, Policy
    from pipewarden.server._tls import auto_certificate
    from pipewarden.workspace import Workspace

    ws = Workspace.init(root / "ws")
    root_actor = Actor("bench", "system", "bench")
    events = ws.events()
    accounts = Accounts(ws.database(), events=events)
    auth = Authenticator(
        ws.database(), events=events, keyring=ws.keyring(), policy=Policy.for_workspace(ws.root)
    )
    accounts.create_user("boss", password=PASSWORD, actor=root_actor, grants=[Grant(ADMIN_ROLE)])
    enrolment = auth.begin_mfa_enrolment("boss", password=PASSWORD, origin="bench")
    code = enrolment.totp.code_at(datetime.now(UTC).timestamp())
    admin = auth.confirm_mfa_enrolment("boss", code, password=PASSWORD, origin="bench").login.subject
    accounts.create_service("stage", actor=root_actor, grants=[Grant("pipeline-service", "project:fraud")])
    token = auth.create_token(
        "stage", by=admin, scopes=["*"], lifetime=timedelta(days=1), origin="bench"
    ).plaintext
    source = root / "clf.json"
    source.write_bytes(b'{"layers": [4, 8, 1], "weights": [0.125, -0.5, 0.75]}')
    ws.store().put(source, name=ARTIFACT, actor="bench")
    store_model(ws.store(), root)
    files = auto_certificate(ws.root / "tls", hosts=[HOST])
    return Setup(ws.root, files.cert, files.key, token)


def store_model(store: Any, root: Path) -> str:
    """A logistic regression trained on 300 generated rows, stored (scanned, signed) with its training
    data as its parent, as `tests/server/test_data_and_models.py` sets one up; its reference."""
    import joblib
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(7)
    x = rng.normal(size=(300, 2))
    frame = pd.DataFrame({"f1": x[:, 0].round(4), "f2": x[:, 1].round(4), "label": (x.sum(axis=1) > 0) * 1})
    data = root / "train.csv"
    frame.to_csv(data, index=False)
    data_ref = store.put(data, name=TRAINING_DATA, actor="bench").ref
    model_path = root / "scorer.joblib"
    joblib.dump(LogisticRegression().fit(frame[["f1", "f2"]], frame["label"]), model_path)
    art = store.put(model_path, name=MODEL, actor="bench", parents=[data_ref])
    if not art.scan.scanned or art.scan.findings:
        raise SystemExit(f"{art.ref}: the store's scan did not pass the benchmark's model")
    return str(art.ref)


# --------------------------------------------------------------------------- the servers


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


class Server:
    """One server process, its log in a file, ready once /healthz answers."""

    def __init__(self, label: str, command: list[str], *, port: int, context: ssl.SSLContext) -> None:
        env = {k: v for k, v in os.environ.items() if k != "PIPEWARDEN_DATABASE_URL"}
        self.label = label
        self.port = port
        self.log = WORK / f"server-{label.replace(' + ', '-')}.log"
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=WORK)
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise SystemExit(f"{label}: the server exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(self.url("/healthz"), verify=context, timeout=5).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"{label}: the server did not answer in 60 s")
            time.sleep(0.2)

    def url(self, path: str) -> str:
        return f"https://{HOST}:{self.port}{path}"

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_kib(self, field: str) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
        raise SystemExit(f"{self.label}: /proc/{self.proc.pid}/status has no {field}")

    def reset_peak(self) -> bool:
        """Reset VmHWM to the current RSS (Linux: '5' to clear_refs); False where that is not allowed."""
        try:
            Path(f"/proc/{self.proc.pid}/clear_refs").write_text("5")
        except OSError:
            return False
        return True

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def start_servers(setup: Setup, context: ssl.SSLContext) -> dict[str, Server]:
    secure_port = free_port()
    os.environ["PIPEWARDEN_WORKSPACE"] = str(setup.ws)
    servers = {
        "secure": Server(
            "secure",
            [
                sys.executable,
                "-m",
                "pipewarden.cli",
                "serve",
                "--tls",
                "auto",
                "--port",
                str(secure_port),
                "--rate",
                RATE,
            ],
            port=secure_port,
            context=context,
        )
    }
    for label, extra in (("bare", []), ("bare + middleware", ["--hardened"])):
        port = free_port()
        command = [sys.executable, str(HERE / "_bare.py"), "--workspace", str(setup.ws), "--port", str(port)]
        command += ["--cert", str(setup.cert), "--key", str(setup.key), "--files", str(WORK / "data")]
        servers[label] = Server(label, [*command, "--rate", RATE, *extra], port=port, context=context)
    return servers
