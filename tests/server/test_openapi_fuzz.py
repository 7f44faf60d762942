"""The API against its own OpenAPI document: schemathesis makes the requests, the app must keep its word.

The app runs in process (ASGI, no socket, no network) over a real workspace. For every operation the
document declares, schemathesis draws requests that match the document (positive) and requests that
break it (negative: wrong types, values out of range, malformed bodies), with hypothesis derandomized
and no example database, so every run draws the same requests. Two callers make them: an
administrator's API token, which may do everything (25 of each kind per operation), and nobody, with
no credential (10 of each). Every answer must be:

- no server error (`not_a_server_error`; an unexpected exception also surfaces from the transport);
- of a status, a content type and a body schema the operation declares (errors are RFC 9457 problem
  documents, declared on every route);
- a problem document that shows nothing of the server: not the workspace's path, not a trace.

Without a credential, a guarded operation never runs: it answers 401, unless the request was refused
as malformed before anyone was asked for a credential (an unparsable body, a path that matches no
route); afterwards the store holds nothing new and every event the run left is a denial.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.routing import APIRoute
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from pipewarden.server import Guard, route_table
from pipewarden.server._table import _flatten
from tests.server.serverkit import ADMIN, ServerKit, bearer

EXAMPLES = 25  # per operation and per mode (positive, negative), with a credential that may do anything
ANONYMOUS_EXAMPLES = 10  # without one: every request stops at the guard, so fewer tell as much
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
#: What no answer may show: a trace, the server's installed code.
LEAKS = ("Traceback", 'File "', "site-packages")
#: Without a credential: the guard's 401, or a refusal of a malformed request made before it.
ANONYMOUS_STATUSES = frozenset({400, 401, 404, 413, 422})


@dataclass
class Outcome:
    """What one fuzzing run saw: statuses per operation, and every failure with its request."""

    statuses: dict[str, Counter[int]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    def report(self) -> str:
        return "\n\n".join(self.failures)


@pytest.fixture(scope="module")
def kit(tmp_path_factory: pytest.TempPathFactory) -> ServerKit:
    return ServerKit(tmp_path_factory.mktemp("fuzz"))


@pytest.fixture(scope="module")
def app(kit: ServerKit) -> FastAPI:
    # The rate limit has its own tests (test_hardening.py); here it would turn the run into 429s.
    return kit.app(rate_per_minute=10**9)


@pytest.fixture(scope="module")
def schema(app: FastAPI) -> object:
    return schemathesis.openapi.from_asgi("/openapi.json", app)


def _operations(schema: object) -> Iterator[object]:
    for result in schema.get_all_operations():  # type: ignore[attr-defined]
        yield result.ok()  # a schema error fails the test here, naming the operation


def _guards(app: FastAPI) -> dict[str, Guard]:
    """Each route's guard by its OpenAPI label ("GET /v1/artifacts/{name}/versions/{version}")."""
    return {f"{r.method} {re.sub(r':path}', '}', r.path)}": r.guard for r in route_table(app)}


def _fuzz(
    schema: object,
    *,
    headers: dict[str, str] | None,
    examples: int,
    private: tuple[str, ...],
    also: Callable[[str, object], None] | None = None,
) -> Outcome:
    """Every operation, positive and negative, `examples` requests each; failures are collected (not
    raised) so one run reports every operation that fails."""
    outcome = Outcome()
    for operation in _operations(schema):
        label: str = operation.label  # type: ignore[attr-defined]
        seen = outcome.statuses.setdefault(label, Counter())

        def check(case: object, label: str = label, seen: Counter[int] = seen) -> None:
            response = case.call_and_validate(headers=headers, checks=CHECKS)  # type: ignore[attr-defined]
            seen[response.status_code] += 1
            text = response.content.decode("utf-8", "replace")
            # A problem document shows nothing of the server; an answer the caller was allowed may
            # (the audit log records the files a check named, for the operators who read it).
            hidden = (*LEAKS, *private) if response.status_code >= 400 else LEAKS
            shown = [leak for leak in hidden if leak in text]
            assert not shown, f"{label} answered {response.status_code} showing {shown}: {text[:500]}"
            if also is not None:
                also(label, response)

        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            run = settings(
                max_examples=examples,
                derandomize=True,
                database=None,
                deadline=None,
                suppress_health_check=list(HealthCheck),
                # No shrinking: the failing request is reported as drawn, and the run stays bounded.
                phases=(Phase.explicit, Phase.generate),
            )(given(case=operation.as_strategy(generation_mode=mode))(lambda case: check(case)))  # type: ignore[attr-defined]
            try:
                run()
            except Unsatisfiable:
                # Nothing in this operation can break the document (no parameters, or only free-form
                # strings): there is no negative request to make.
                assert mode is GenerationMode.NEGATIVE, label
            except Exception as exc:
                outcome.failures.append(f"{label} ({mode.value}): {type(exc).__name__}: {exc}")
    return outcome


def _spool(kit: ServerKit) -> list[str]:
    folder = kit.ws.root / "spool"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_the_document_declares_every_route_and_its_errors_as_problem_documents(
    app: FastAPI, schema: object
) -> None:
    document = app.openapi()
    declared = {f"{m.upper()} {p}" for p, ops in document["paths"].items() for m in ops if m != "parameters"}
    served = {
        f"{m} {re.sub(r':path}', '}', r.path)}"
        for r in _flatten(list(app.routes))
        if isinstance(r, APIRoute) and r.include_in_schema
        for m in r.methods
    }
    assert served == declared and len(declared) >= 20
    assert {op.label for op in _operations(schema)} == declared  # type: ignore[attr-defined]
    guards = _guards(app)
    problem = {"$ref": "#/components/schemas/Problem"}
    for label in declared:
        method, path = label.split(" ", 1)
        responses = document["paths"][path][method.lower()]["responses"]
        expected = {"400", "404", "409", "413", "422", "429", "500", "503"}
        if guards[label].kind != "public":
            expected |= {"401", "403"}
        assert expected <= set(responses), (label, sorted(responses))
        for status in expected:
            assert responses[status]["content"] == {"application/problem+json": {"schema": problem}}, label
    assert "401" in document["paths"]["/v1/session"]["post"]["responses"]  # a login that fails
    assert "HTTPValidationError" not in document["components"]["schemas"]
    fields = document["components"]["schemas"]["Problem"]["properties"]
    assert {"type", "title", "status", "detail", "instance"} <= set(fields)
    upload = document["paths"]["/v1/artifacts/{name}"]["put"]["requestBody"]["content"]
    assert upload == {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}


def test_an_administrator_token_gets_no_server_error_and_only_documented_answers(
    kit: ServerKit, schema: object
) -> None:
    token = kit.token(ADMIN)
    outcome = _fuzz(schema, headers=bearer(token), examples=EXAMPLES, private=(str(kit.ws.root),))
    assert not outcome.failures, outcome.report()
    # Every operation was called, and the token did reach handlers: not everything was refused.
    assert all(sum(seen.values()) > 0 for seen in outcome.statuses.values()), outcome.statuses
    successes = sum(n for seen in outcome.statuses.values() for status, n in seen.items() if status < 300)
    assert successes > 100, outcome.statuses
    assert outcome.statuses["PUT /v1/artifacts/{name}"][201] > 0  # uploads were stored
    # What the run did is all in the audit log, unbroken, and nothing was left in the spool folder.
    assert kit.ws.audit_log().verify().problem is None
    assert _spool(kit) == []


def test_without_a_credential_no_guarded_operation_runs(app: FastAPI, kit: ServerKit, schema: object) -> None:
    guards = _guards(app)
    names_before = kit.ws.store().names()
    start = kit.head()
    wrong: list[str] = []

    def refused(label: str, response: object) -> None:
        status: int = response.status_code  # type: ignore[attr-defined]
        if guards[label].kind != "public" and status not in ANONYMOUS_STATUSES:
            wrong.append(f"{label}: {status}")

    outcome = _fuzz(
        schema, headers=None, examples=ANONYMOUS_EXAMPLES, private=(str(kit.ws.root),), also=refused
    )
    assert not outcome.failures, outcome.report()
    assert not wrong, wrong
    for label, seen in outcome.statuses.items():
        if guards[label].kind != "public":
            assert seen[401] > 0, (label, seen)  # the guard was reached, and said no
    assert kit.ws.store().names() == names_before
    # Every event the run left is a refusal: of a request without a credential, or of a login (whose
    # name may be a real user's: the document's examples and earlier answers feed the generator).
    outcomes = Counter((e.action, e.outcome) for e in kit.events_since(start))
    assert set(outcomes) <= {("http.request", "denied"), ("auth.login", "denied")}, outcomes
    assert _spool(kit) == []
