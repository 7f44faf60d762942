"""The HTTP authorization matrix, generated from the app's own route table.

Every route of `route_table(app)` is called by every built-in role (a service account holding the role,
presenting a real API token), on a resource inside the role's grant (project ``fraud``) and outside it
(``churn``), and with no credential and with a token that does not exist. The status each call gets
is compared with what the workspace's policy (`Policy.default().check`) decides for the route's guard,
and every call that reached a guarded route must have left exactly one event in the audit log, with
the outcome the status says.

Two things keep this from passing by construction: a route in the table without a recipe below fails
the test (so a new route cannot slip in unexamined), and a hand-written table of key cells states
what the documented roles must get, compared both with the policy and with the server.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi.testclient import TestClient

from pipewarden.events import Event
from pipewarden.identity import BUILTIN_ROLES, Grant, Policy, Subject
from pipewarden.server import RouteSpec, route_table
from tests.server.serverkit import PASSWORD, ServerKit

#: Where each built-in role is granted: the roles that act on a project's artifacts at `project:fraud`;
#: `admin` and `auditor`, whose resources (users, keys, the audit log) belong to no project, at `*`.
GRANTED_AT = {
    "admin": "*",
    "auditor": "*",
    "data-scientist": "project:fraud",
    "ml-engineer": "project:fraud",
    "pipeline-service": "project:fraud",
    "viewer": "project:fraud",
}
OTHER = "svc-other"  # a service account whose tokens the matrix's principals try to list and revoke
OTHER_ROLE = "viewer"
TARGET = "svc-target"  # a service account the account routes act on: disabled, enabled, granted roles
TARGET_USER = "uma"  # a user whose second factor the administrator resets
TARGET_ROLE = "viewer"
FINGERPRINT = "3f" * 32  # a client certificate's SHA-256, registered to nobody
CLEAN_JSON = b'{"weights": [0.25, 0.5]}'

META = "/v1/artifacts/{name:path}/versions/{version}"
CONTENT = "/v1/artifacts/{name:path}/versions/{version}/content"
LINEAGE = "/v1/artifacts/{name:path}/versions/{version}/lineage"
UPLOAD = "/v1/artifacts/{name:path}"
VERIFY = "/v1/artifacts/{name:path}/verify"
ONE = "-"  # the only variant of a route whose resource has no project


@dataclass(frozen=True, slots=True)
class Caller:
    """A matrix principal: the role, its service account, its token and the subject the policy sees."""

    role: str
    name: str
    token: str
    subject: Subject


@dataclass(frozen=True, slots=True)
class Cell:
    caller: Caller
    variant: str


@dataclass(frozen=True, slots=True)
class Recipe:
    """How to call one route: what it answers when allowed, its variants, path parameters, body.

    `checks` names what the library authorizes for a route guarded only `signed_in` (the token routes
    ask the identity part, which knows whose token it is); `session_only` marks a route that refuses
    API tokens whatever their roles (tokens are made from a login session, never with another token).
    """

    ok: int
    variants: tuple[str, ...] = (ONE,)
    params: Callable[[Matrix, Cell], dict[str, str]] = lambda m, c: {}
    query: Callable[[Matrix, Cell], dict[str, str]] = lambda m, c: {}
    body: Callable[[Matrix, Cell], bytes | None] = lambda m, c: None
    json_body: dict[str, Any] | None = None
    checks: Callable[[Matrix, Cell], list[tuple[str, str]]] = lambda m, c: []
    session_only: bool = False


def _artifact(variant: str) -> str:
    project, _, area = variant.partition("-")
    return f"{project}/{area or 'models'}/clf.json"


def _version(m: Matrix, c: Cell) -> dict[str, str]:
    return {"name": _artifact(c.variant), "version": "1"}


def _own_or_other(c: Cell) -> str:
    return c.caller.name if c.variant == "own" else OTHER


def _spare_token(m: Matrix, c: Cell) -> dict[str, str]:
    """A live token to revoke: the caller's own, or another principal's."""
    return {"token_id": m.kit.token_id(_own_or_other(c))}


def _revoke_checks(m: Matrix, c: Cell) -> list[tuple[str, str]]:
    if c.variant == "own":
        return [("token.revoke", f"token:{c.caller.name}/x")]
    # Another's token: token.manage, and the right to grant each role its owner holds.
    return [("token.manage", f"token:{OTHER}/x"), ("role.grant", f"role:{OTHER_ROLE}")]


def _list_checks(m: Matrix, c: Cell) -> list[tuple[str, str]]:
    if c.variant == "own":
        return [("token.read", f"token:{c.caller.name}")]
    return [("token.manage", f"token:{OTHER}")]


#: A small table (two features and a label) for the data and model routes.
TABLE_CSV = (
    "f1,f2,label\n" + "".join(f"{(i % 17) / 4:.2f},{(i * 7 % 13) / 3:.2f},{i % 2}\n" for i in range(120))
).encode()


def _contract_check(m: Matrix, c: Cell) -> list[tuple[str, str]]:
    # The contract is read as part of the check: the caller must be able to read it.
    return [("artifact.read", f"artifact:{c.variant}/contracts/c.yaml")]


def _control(name: str) -> Callable[[Matrix, Cell], list[tuple[str, str]]]:
    """Acting on `name`'s account: user.update on it, and role.grant on the role it holds."""
    return lambda m, c: [("user.update", f"user:{name}"), ("role.grant", f"role:{TARGET_ROLE}")]


def _bound(m: Matrix, c: Cell) -> dict[str, str]:
    """A binding to revoke, made again if a call took it (in the database directly, as the operator's
    setup: the call's own events are the only ones its window may hold)."""
    from pipewarden.identity._bindings import bindings, grant

    with m.kit.ws.database().transaction() as conn:
        if not any(b.scope == "project:spare" for b in bindings(conn, subject=TARGET)):
            grant(conn, subject=TARGET, role=TARGET_ROLE, scope="project:spare", granted_by="root")
    return {"subject": TARGET, "scope": "project:spare"}


#: One recipe per route of the table, by (method, path template).
RECIPES: dict[tuple[str, str], Recipe] = {
    ("GET", "/healthz"): Recipe(ok=200),
    ("POST", "/v1/session"): Recipe(ok=200, json_body={"name": "val", "password": PASSWORD}),
    # Logging out ends a login session; an API token is not one (it is revoked with DELETE /v1/tokens).
    ("DELETE", "/v1/session"): Recipe(ok=400),
    ("GET", "/v1/whoami"): Recipe(ok=200),
    ("GET", "/v1/users"): Recipe(ok=200),
    ("PUT", "/v1/users/{name}"): Recipe(
        ok=201,
        params=lambda m, c: {"name": "newcomer"},
        json_body={"password": PASSWORD, "grants": [{"role": "viewer", "scope": "project:fraud"}]},
    ),
    # Acting on someone else's account is the identity part's decision: user.update and role.grant on
    # each role the account holds.
    ("POST", "/v1/users/{name}/disable"): Recipe(
        ok=200, params=lambda m, c: {"name": TARGET}, checks=_control(TARGET)
    ),
    ("POST", "/v1/users/{name}/enable"): Recipe(
        ok=200, params=lambda m, c: {"name": TARGET}, checks=_control(TARGET)
    ),
    ("DELETE", "/v1/users/{name}/mfa"): Recipe(
        ok=200, params=lambda m, c: {"name": TARGET_USER}, checks=_control(TARGET_USER)
    ),
    ("GET", "/v1/roles"): Recipe(ok=200),
    ("GET", "/v1/bindings"): Recipe(ok=200, query=lambda m, c: {"subject": OTHER}),
    ("POST", "/v1/roles/{role}/bindings"): Recipe(
        ok=201,
        params=lambda m, c: {"role": TARGET_ROLE},
        json_body={"subject": TARGET, "scope": "project:churn"},
    ),
    ("DELETE", "/v1/roles/{role}/bindings"): Recipe(
        ok=200, params=lambda m, c: {"role": TARGET_ROLE}, query=_bound
    ),
    ("GET", "/v1/service-accounts"): Recipe(ok=200),
    ("PUT", "/v1/service-accounts/{name}"): Recipe(
        ok=201, params=lambda m, c: {"name": "svc-made"}, json_body={"display_name": "a new stage"}
    ),
    ("GET", "/v1/service-accounts/{name}/certificates"): Recipe(ok=200, params=lambda m, c: {"name": TARGET}),
    # A certificate is a credential: registered from a login session only, as tokens are made.
    ("POST", "/v1/service-accounts/{name}/certificates"): Recipe(
        ok=201,
        params=lambda m, c: {"name": TARGET},
        json_body={"fingerprint": FINGERPRINT},
        checks=_control(TARGET),
        session_only=True,
    ),
    ("DELETE", "/v1/service-accounts/{name}/certificates/{fingerprint}"): Recipe(
        ok=200,
        params=lambda m, c: {"name": TARGET, "fingerprint": FINGERPRINT},
        checks=_control(TARGET),
        session_only=True,
    ),
    # The second factor's routes are public (a user who must enrol has no session yet) and answer only
    # over TLS: this client speaks plain HTTP, so each is refused before any credential is checked.
    ("POST", "/v1/mfa/enrolment"): Recipe(ok=400, json_body={"name": "val", "password": PASSWORD}),
    ("POST", "/v1/mfa/enrolment/confirm"): Recipe(
        ok=400, json_body={"name": "val", "password": PASSWORD, "totp_code": "123456"}
    ),
    ("POST", "/v1/mfa/recovery-codes"): Recipe(ok=400, json_body={"name": "val", "password": PASSWORD}),
    ("GET", "/v1/tokens"): Recipe(
        ok=200,
        variants=("own", "other"),
        query=lambda m, c: {} if c.variant == "own" else {"owner": OTHER},
        checks=_list_checks,
    ),
    ("POST", "/v1/tokens"): Recipe(
        ok=201,
        json_body={"scopes": ["artifact.list"], "days": 1},
        checks=lambda m, c: [("token.create", f"token:{c.caller.name}")],
        session_only=True,
    ),
    ("DELETE", "/v1/tokens/{token_id}"): Recipe(
        ok=200, variants=("own", "other"), params=_spare_token, checks=_revoke_checks
    ),
    ("GET", "/v1/artifacts"): Recipe(ok=200),
    ("GET", META): Recipe(ok=200, variants=("fraud", "churn"), params=_version),
    ("GET", CONTENT): Recipe(ok=200, variants=("fraud", "churn"), params=_version),
    ("GET", LINEAGE): Recipe(ok=200, variants=("fraud", "churn"), params=_version),
    ("PUT", UPLOAD): Recipe(
        ok=201,
        variants=("fraud", "churn", "fraud-data", "churn-data"),
        params=lambda m, c: {"name": _artifact(c.variant)},
        body=lambda m, c: CLEAN_JSON,
    ),
    ("POST", VERIFY): Recipe(
        ok=200, variants=("fraud", "churn"), params=lambda m, c: {"name": _artifact(c.variant)}
    ),
    ("POST", "/v1/scan/{project}"): Recipe(
        ok=200,
        variants=("fraud", "churn"),
        params=lambda m, c: {"project": c.variant},
        query=lambda m, c: {"name": "w.json"},
        body=lambda m, c: CLEAN_JSON,
    ),
    ("POST", "/v1/data/{name:path}/check"): Recipe(
        ok=200,
        variants=("fraud", "churn"),
        params=lambda m, c: {"name": f"{c.variant}/data/batch.csv"},
        query=lambda m, c: {"contract": f"{c.variant}/contracts/c.yaml"},
        body=lambda m, c: TABLE_CSV,
        checks=_contract_check,
    ),
    ("POST", "/v1/data/{name:path}/screen"): Recipe(
        ok=200,
        variants=("fraud", "churn"),
        params=lambda m, c: {"name": f"{c.variant}/data/train.csv"},
        query=lambda m, c: {"label": "label"},
        body=lambda m, c: TABLE_CSV,
    ),
    ("POST", "/v1/models/{name:path}/predict"): Recipe(
        ok=200,
        variants=("fraud", "churn"),
        params=lambda m, c: {"name": f"{c.variant}/models/lr"},
        json_body={"rows": [{"f1": 1.0, "f2": 2.0}]},
    ),
    ("GET", "/metrics"): Recipe(ok=200),
    ("GET", "/v1/audit/records"): Recipe(ok=200, query=lambda m, c: {"limit": "5"}),
    ("POST", "/v1/audit/verify"): Recipe(ok=200),
    ("GET", "/v1/audit/records/{seq}/proof"): Recipe(ok=200, params=lambda m, c: {"seq": "1"}),
    ("GET", "/v1/alerts"): Recipe(ok=200),
    ("POST", "/v1/alerts/{alert_id}/ack"): Recipe(ok=200, params=lambda m, c: {"alert_id": str(m.alert_id)}),
    ("POST", "/v1/alerts/silences"): Recipe(
        ok=201,
        json_body={"matchers": {"rule_id": "PW-MON-101"}, "reason": "planned load test", "minutes": 30},
    ),
    # The dashboard's pages. A script presenting a token gets a page (200) or a refusal (403), never a
    # redirect to the login form; a form's answer to it is a page saying what was done.
    ("GET", "/"): Recipe(ok=200),  # a redirect to /ui/, followed: the overview's one event
    ("GET", "/ui/"): Recipe(ok=200),
    ("GET", "/ui/login"): Recipe(ok=200),
    ("POST", "/ui/login"): Recipe(ok=400),  # the login form posted without its fields
    ("POST", "/ui/logout"): Recipe(ok=400),  # as DELETE /v1/session: an API token is not a session
    ("GET", "/ui/static/{name}"): Recipe(ok=200, params=lambda m, c: {"name": "dashboard.css"}),
    ("GET", "/ui/alerts"): Recipe(ok=200),
    ("POST", "/ui/alerts/{alert_id}/ack"): Recipe(ok=200, params=lambda m, c: {"alert_id": str(m.alert_id)}),
    ("POST", "/ui/alerts/silences"): Recipe(
        ok=200, body=lambda m, c: b"rule_id=PW-MON-101&reason=planned+load+test&minutes=30"
    ),
    ("GET", "/ui/audit"): Recipe(ok=200),
    ("POST", "/ui/audit/verify"): Recipe(ok=200),
    ("POST", "/ui/store/verify"): Recipe(ok=200),
    ("GET", "/ui/artifacts"): Recipe(ok=200),
    ("GET", "/ui/artifacts/{name:path}/versions/{version}"): Recipe(
        ok=200, variants=("fraud", "churn"), params=_version
    ),
    ("GET", "/ui/users"): Recipe(ok=200),
}

#: Key cells, written out from docs/access.md ("Built-in roles"), never computed: (role, method, path
#: template, variant) -> the status the server must answer. Each is also checked against the policy.
KEY_CELLS: dict[tuple[str, str, str, str], int] = {
    # The administrator verifies, reads and exports the audit log, and reads the server's metrics.
    ("admin", "POST", "/v1/audit/verify", ONE): 200,
    ("admin", "GET", "/v1/audit/records/{seq}/proof", ONE): 200,
    ("admin", "GET", "/metrics", ONE): 200,
    ("admin", "GET", CONTENT, "churn"): 200,
    # The auditor reads and verifies the log, and nothing else: not even an artifact's manifest.
    ("auditor", "POST", "/v1/audit/verify", ONE): 200,
    ("auditor", "GET", "/v1/audit/records", ONE): 200,
    ("auditor", "GET", META, "fraud"): 403,
    ("auditor", "PUT", UPLOAD, "fraud"): 403,
    ("auditor", "GET", "/v1/alerts", ONE): 403,
    # A data scientist writes data sets, not models, and only inside its project.
    ("data-scientist", "PUT", UPLOAD, "fraud"): 403,
    ("data-scientist", "PUT", UPLOAD, "fraud-data"): 201,
    ("data-scientist", "PUT", UPLOAD, "churn-data"): 403,
    ("data-scientist", "GET", CONTENT, "fraud"): 200,
    ("data-scientist", "POST", "/v1/audit/verify", ONE): 403,
    # A viewer lists and verifies, never reads bytes and never writes.
    ("viewer", "PUT", UPLOAD, "fraud"): 403,
    ("viewer", "PUT", UPLOAD, "fraud-data"): 403,
    ("viewer", "GET", CONTENT, "fraud"): 403,
    ("viewer", "POST", VERIFY, "fraud"): 200,
    ("viewer", "GET", META, "fraud"): 200,
    # An ML engineer writes in its project only; alerts and metrics are not a project's.
    ("ml-engineer", "PUT", UPLOAD, "fraud"): 201,
    ("ml-engineer", "PUT", UPLOAD, "churn"): 403,
    ("ml-engineer", "GET", "/v1/alerts", ONE): 403,
    ("ml-engineer", "GET", "/metrics", ONE): 403,
    ("ml-engineer", "GET", "/v1/users", ONE): 403,
    # Scanning a file is a project's action: inside its project, not outside.
    ("ml-engineer", "POST", "/v1/scan/{project}", "fraud"): 200,
    ("ml-engineer", "POST", "/v1/scan/{project}", "churn"): 403,
    ("data-scientist", "POST", "/v1/scan/{project}", "fraud"): 200,
    ("ml-engineer", "DELETE", "/v1/tokens/{token_id}", "own"): 200,
    ("ml-engineer", "DELETE", "/v1/tokens/{token_id}", "other"): 403,
    # A pipeline's service account reads and writes artifacts, never alerts or the log.
    ("pipeline-service", "PUT", UPLOAD, "fraud"): 201,
    ("pipeline-service", "GET", "/v1/alerts", ONE): 403,
    ("pipeline-service", "GET", "/v1/audit/records", ONE): 403,
    # Nobody acknowledges or silences alerts but an administrator.
    ("ml-engineer", "POST", "/v1/alerts/{alert_id}/ack", ONE): 403,
    ("admin", "POST", "/v1/alerts/{alert_id}/ack", ONE): 200,
    ("auditor", "POST", "/v1/alerts/silences", ONE): 403,
    # A token never mints another token, an administrator's included.
    ("admin", "POST", "/v1/tokens", ONE): 403,
    # Accounts and roles are the administrator's: nobody else creates, disables or grants.
    ("admin", "PUT", "/v1/users/{name}", ONE): 201,
    ("ml-engineer", "PUT", "/v1/users/{name}", ONE): 403,
    ("admin", "PUT", "/v1/service-accounts/{name}", ONE): 201,
    ("pipeline-service", "PUT", "/v1/service-accounts/{name}", ONE): 403,
    ("admin", "POST", "/v1/users/{name}/disable", ONE): 200,
    ("auditor", "POST", "/v1/users/{name}/disable", ONE): 403,
    ("admin", "POST", "/v1/roles/{role}/bindings", ONE): 201,
    ("ml-engineer", "POST", "/v1/roles/{role}/bindings", ONE): 403,
    ("viewer", "GET", "/v1/roles", ONE): 403,
    ("admin", "DELETE", "/v1/users/{name}/mfa", ONE): 200,
    # A token never registers a client certificate either: that too is minting a credential.
    ("admin", "POST", "/v1/service-accounts/{name}/certificates", ONE): 403,
}

#: Guarded routes that record nothing, each with why: reading one's own identity is not an action on
#: any resource (the command line's `whoami` records nothing either).
RECORDS_NOTHING = {("GET", "/v1/whoami")}


@dataclass
class Result:
    """One call: who, what, the status the policy expects, what the server answered, what it recorded."""

    who: str
    method: str
    template: str
    variant: str
    path: str
    expected: int
    status: int
    events: list[Event]
    body: str


@dataclass
class Matrix:
    kit: ServerKit
    client: TestClient
    table: tuple[RouteSpec, ...]
    callers: list[Caller]
    alert_id: int
    policy: Policy = field(default_factory=Policy.default)
    results: list[Result] = field(default_factory=list)


def _fill(template: str, params: dict[str, str]) -> str:
    path = template
    for key, value in params.items():
        path = path.replace("{" + key + ":path}", value).replace("{" + key + "}", value)
    assert "{" not in path, (template, params)
    return path


def _allowed(m: Matrix, spec: RouteSpec, recipe: Recipe, cell: Cell, params: dict[str, str]) -> bool:
    """What the policy decides for this call, from the route's guard (and, for a route guarded only
    `signed_in`, what the recipe says the library asks)."""
    needs: list[tuple[str, str]] = []
    if spec.guard.kind == "action":
        assert spec.guard.action is not None
        needs.append((spec.guard.action, spec.guard.resource_for(params)))
    needs += recipe.checks(m, cell)
    if recipe.session_only and cell.caller.subject.token_scopes is not None:
        return False
    return all(m.policy.check(cell.caller.subject, action, resource).allowed for action, resource in needs)


def _call(
    m: Matrix,
    spec: RouteSpec,
    recipe: Recipe,
    cell: Cell,
    *,
    headers: dict[str, str],
    params: dict[str, str] | None = None,
) -> tuple[str, int, list[Event], str]:
    path = _fill(spec.path, recipe.params(m, cell) if params is None else params)
    body = recipe.body(m, cell)
    start = m.kit.head()
    response = m.client.request(
        spec.method,
        path,
        headers=headers,
        params=recipe.query(m, cell),
        content=body,
        json=recipe.json_body if body is None else None,
    )
    m.client.cookies.clear()  # a login's session cookie must not become the next call's credential
    return path, response.status_code, m.kit.events_since(start), response.text[:300]


def _run(m: Matrix) -> None:
    for spec in m.table:
        recipe = RECIPES.get((spec.method, spec.path))
        if recipe is None:
            continue  # reported by test_every_route_in_the_table_has_a_recipe
        for caller in m.callers:
            for variant in recipe.variants:
                cell = Cell(caller, variant)
                params = recipe.params(m, cell)
                allowed = spec.guard.kind == "public" or _allowed(m, spec, recipe, cell, params)
                path, status, events, text = _call(
                    m, spec, recipe, cell, headers={"authorization": f"Bearer {caller.token}"}, params=params
                )
                m.results.append(
                    Result(
                        caller.role,
                        spec.method,
                        spec.path,
                        variant,
                        path,
                        recipe.ok if allowed else 403,
                        status,
                        events,
                        text,
                    )
                )


def _bad_token() -> str:
    # The shape of a real token (prefix, 12-character id, 43-character secret) that was never issued.
    return "pwt" + "_" + "Zz9Yy8Xx7Ww6" + "_" + "q" * 43


def _data_and_models(kit: ServerKit) -> None:
    """Per project: a contract, a data set and a model made from it (for the data and model routes)."""
    import joblib
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    from pipewarden.data import profile, read_table

    data = kit.root / "table.csv"
    data.write_bytes(TABLE_CSV)
    contract = kit.root / "c.yaml"
    contract.write_text(profile(read_table(data, label="label")).to_yaml())
    frame = pd.read_csv(data)
    model = kit.root / "lr.joblib"
    joblib.dump(LogisticRegression().fit(frame[["f1", "f2"]], frame["label"]), model)
    store = kit.ws.store()
    for project in ("fraud", "churn"):
        store.put(contract, name=f"{project}/contracts/c.yaml", actor="root")
        train = store.put(data, name=f"{project}/data/table.csv", actor="root")
        store.put(
            model,
            name=f"{project}/models/lr",
            actor="root",
            parents=[train.ref],
            media_type="application/vnd.joblib",
        )


@pytest.fixture(scope="module")
def matrix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Matrix]:
    kit = ServerKit(tmp_path_factory.mktemp("matrix"))
    kit.user("val", Grant("viewer", "project:fraud"))  # needs no MFA: logs in with a password alone
    kit.service(OTHER, Grant(OTHER_ROLE, "project:fraud"))
    kit.service(TARGET, Grant(TARGET_ROLE, "project:fraud"))
    kit.user(TARGET_USER, Grant(TARGET_ROLE, "project:fraud"))
    callers = []
    for role in sorted(BUILTIN_ROLES):
        name = kit.service(f"svc-{role}", Grant(role, GRANTED_AT[role]))
        token = kit.token(name)
        subject = Subject(
            name, "service", (Grant(role, GRANTED_AT[role]),), mfa=True, token_scopes=frozenset({"*"})
        )
        callers.append(Caller(role, name, token, subject))
    for name in ("fraud/models/clf.json", "churn/models/clf.json"):
        kit.put(name, CLEAN_JSON)
    _data_and_models(kit)
    alert_id = kit.alert()
    client = kit.client(rate_per_minute=1_000_000)
    m = Matrix(kit, client, route_table(client.app), callers, alert_id)  # type: ignore[arg-type]
    _run(m)
    yield m
    client.close()


def test_the_matrix_covers_every_built_in_role(matrix: Matrix) -> None:
    assert set(GRANTED_AT) == set(BUILTIN_ROLES)
    assert {c.role for c in matrix.callers} == set(BUILTIN_ROLES)


def test_every_route_in_the_table_has_a_recipe(matrix: Matrix) -> None:
    """A new route without an expectation fails here; so does a recipe for a route that went away."""
    table = {(s.method, s.path) for s in matrix.table}
    assert not table - RECIPES.keys(), f"new route without an expectation: {sorted(table - RECIPES.keys())}"
    assert not RECIPES.keys() - table, (
        f"recipe for a route not in the table: {sorted(RECIPES.keys() - table)}"
    )
    assert len(matrix.table) == len(table), "a route appears twice in the table"


def test_every_call_gets_what_the_policy_decides(matrix: Matrix) -> None:
    wrong = [
        f"{r.who:17} {r.method:6} {r.path}: expected {r.expected}, got {r.status} {r.body}"
        for r in matrix.results
        if r.status != r.expected
    ]
    assert not wrong, "\n".join(wrong)
    denied = sum(r.status == 403 for r in matrix.results)
    # The matrix is not one-sided: many calls are refused and many are not.
    assert denied > 40 and len(matrix.results) - denied > 40


def test_key_cells_are_what_the_roles_promise(matrix: Matrix) -> None:
    by_cell = {(r.who, r.method, r.template, r.variant): r for r in matrix.results}
    missing = [cell for cell in KEY_CELLS if cell not in by_cell]
    assert not missing, f"key cells the matrix did not call: {missing}"
    wrong = [
        f"{cell}: documented {want}, policy expects {by_cell[cell].expected}, server answered "
        f"{by_cell[cell].status}"
        for cell, want in KEY_CELLS.items()
        if not want == by_cell[cell].expected == by_cell[cell].status
    ]
    assert not wrong, "\n".join(wrong)


def test_every_call_to_a_guarded_route_is_one_event_with_its_outcome(matrix: Matrix) -> None:
    guards = {(s.method, s.path): s.guard for s in matrix.table}
    wrong = []
    for r in matrix.results:
        guard = guards[(r.method, r.template)]
        if guard.kind == "public" or (r.method, r.template) in RECORDS_NOTHING:
            continue
        outcomes = [(e.actor, e.outcome) for e in r.events]
        want_outcome = "denied" if r.status == 403 else "allowed" if r.status < 300 else "error"
        if outcomes != [(f"svc-{r.who}", want_outcome)]:
            wrong.append(f"{r.who} {r.method} {r.path} -> {r.status}: events {outcomes}")
            continue
        if guard.kind == "action" and r.events[0].action != guard.action:
            wrong.append(f"{r.who} {r.method} {r.path}: event {r.events[0].action}, not {guard.action}")
    assert not wrong, "\n".join(wrong)


def test_routes_that_record_nothing_do_record_nothing(matrix: Matrix) -> None:
    for r in matrix.results:
        if (r.method, r.template) in RECORDS_NOTHING:
            assert r.status == 200 and r.events == [], (r.who, r.path, r.events)


@pytest.mark.parametrize(
    ("credential", "reason"),
    [(None, "no credential"), ("bad", "unknown"), ("Basic dXNlcjpwdw==", "not bearer")],
)
def test_without_a_working_credential_every_guarded_route_is_401_and_one_denial(
    matrix: Matrix, credential: str | None, reason: str
) -> None:
    m = matrix
    caller = m.callers[0]
    wrong = []
    calls = 0
    for spec in m.table:
        recipe = RECIPES[(spec.method, spec.path)]
        cell = Cell(caller, recipe.variants[0])
        if credential is None:
            headers = {}
        elif credential == "bad":
            headers = {"authorization": f"Bearer {_bad_token()}"}
        else:
            headers = {"authorization": credential}
        path, status, events, text = _call(m, spec, recipe, cell, headers=headers)
        if spec.guard.kind == "public":
            if status in (401, 403):
                wrong.append(f"public {spec.method} {path}: {status} {text}")
            continue
        calls += 1
        if status != 401 or '"urn:pipewarden:problem:authentication-failed"' not in text:
            wrong.append(f"{spec.method} {path}: {status} {text}")
        if [(e.actor, e.outcome) for e in events] != [("anonymous", "denied")]:
            wrong.append(f"{spec.method} {path}: events {[(e.action, e.actor, e.outcome) for e in events]}")
        elif reason == "unknown" and events[0].action != "token.use":
            wrong.append(f"{spec.method} {path}: a bad token is recorded as {events[0].action}")
    assert not wrong, "\n".join(wrong)
    assert calls >= len([s for s in m.table if s.guard.kind != "public"])
