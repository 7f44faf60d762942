"""The dashboard's working pages: alerts (acknowledge, silence), the audit log, artifacts with their
lineage, and users and roles. Each view is one event, made by the library call it reads through."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import Request, Response
from fastapi.responses import HTMLResponse

from pipewarden.errors import ConfigError
from pipewarden.server._table import Guard
from pipewarden.server.dashboard._lineage import artifact_href, layout, verdict_class
from pipewarden.server.dashboard._logview import OUTCOMES, Filters, read_page
from pipewarden.server.dashboard._pages import FormFields, router, verifications
from pipewarden.server.dashboard._render import allowed, caller_of, done, render, server_state

_SHOW = {
    "open": ("firing", "acknowledged"),
    "resolved": ("resolved",),
    "all": ("firing", "acknowledged", "resolved"),
}
_DURATIONS = ((60, "1 hour"), (240, "4 hours"), (1440, "1 day"), (10080, "7 days"))
_MAX_ID = 2**63 - 1


def _number(text: str, what: str) -> int:
    """A positive integer from a path or a form; `ConfigError` naming `what` otherwise."""
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= _MAX_ID:
        raise ConfigError(f"{text[:40]!r}: {what} is a positive integer")
    return int(text)


def _store(request: Request) -> Any:
    from pipewarden.store import GuardedStore

    return GuardedStore(server_state(request).store, caller_of(request).acting)


# --- alerts -----------------------------------------------------------------------------------------


@router.get_("/ui/alerts", guard=Guard.needs("alert.read", "alert:*"))
def alerts(request: Request, show: str = "open") -> HTMLResponse:
    from pipewarden.monitor import AlertBook

    if show not in _SHOW:
        raise ConfigError(f"show {show[:40]!r}: one of {', '.join(_SHOW)}")
    me = caller_of(request)
    book = AlertBook(server_state(request).workspace.database())
    found, silences = me.acting.perform(
        "alert.read",
        "alert:*",
        lambda: (book.alerts(status=_SHOW[show]), book.silences()),
        describe=lambda r: {"count": len(r[0])},
    )
    now = datetime.now(UTC)
    return render(
        request,
        "alerts.html",
        alerts=found,
        show=show,
        silences=[s for s in silences if s.active(now)],
        may_ack={a.id: allowed(me, "alert.ack", f"alert:{a.id}") for a in found},
        may_silence=allowed(me, "alert.silence", "alert:*"),
        durations=_DURATIONS,
    )


@router.post_("/ui/alerts/{alert_id}/ack", guard=Guard.needs("alert.ack", "alert:{alert_id}"))
def acknowledge(alert_id: str, request: Request) -> Response:
    from pipewarden.monitor import AlertBook

    me = caller_of(request)
    number = _number(alert_id, "an alert's id")
    book = AlertBook(server_state(request).workspace.database(), acting=me.acting)
    book.acknowledge(number, by=me.acting.actor.name)
    return done(request, to="/ui/alerts", message=f"Alert {number} acknowledged.")


@router.post_("/ui/alerts/silences", guard=Guard.needs("alert.silence", "alert:*"))
def silence(request: Request, form: FormFields) -> Response:
    """Silence alerts matching a rule id (a glob pattern) and any of the alert's labels chosen."""
    from pipewarden.monitor import AlertBook

    me = caller_of(request)
    matchers = {"rule_id": form.one("rule_id", label="Rule", max_length=128)}
    labels = form.all("label")
    if len(labels) > 15:
        raise ConfigError("labels: at most 15")
    for label in labels:
        key, sep, value = label.partition("=")
        if not sep or not key or len(key) > 64 or len(value) > 1024 or key == "rule_id":
            raise ConfigError(f"label {label[:80]!r}: name=value")
        matchers[key] = value
    reason = form.one("reason", label="Reason", max_length=1000)
    minutes = _number(form.one("minutes", label="Duration", max_length=6), "a duration in minutes")
    if minutes > 30 * 24 * 60:
        raise ConfigError(f"{minutes} minutes: a silence lasts at most 30 days")
    book = AlertBook(server_state(request).workspace.database(), acting=me.acting)
    made = book.silence(matchers, reason=reason, duration=timedelta(minutes=minutes), by=me.acting.actor.name)
    return done(
        request, to="/ui/alerts", message=f"Silence {made.id} made, until {made.ends_at:%Y-%m-%d %H:%M} UTC."
    )


# --- the audit log ----------------------------------------------------------------------------------


@router.get_("/ui/audit", guard=Guard.needs("audit.read", "audit:log"))
def audit(
    request: Request, actor: str = "", action: str = "", outcome: str = "", before: str = ""
) -> HTMLResponse:
    """Records newest first, filtered, each with its hash and whether the newest verification covers it."""
    me = caller_of(request)
    state = server_state(request)
    filters = Filters(actor=actor.strip(), action=action.strip(), outcome=outcome.strip())
    start = _number(before, "before") if before else None
    log = state.workspace.audit_log()

    def read() -> Any:
        page = read_page(log, before=start, filters=filters)
        return page, verifications(request).refresh(state.workspace.database(), page.head)

    page, checks = me.acting.perform(
        "audit.read",
        "audit:log",
        read,
        describe=lambda r: {"count": len(r[0].entries), "scanned": r[0].scanned},
    )
    rows = [(entry, *checks.mark(entry.seq)) for entry in page.entries]
    return render(
        request,
        "audit.html",
        rows=rows,
        page=page,
        filters=filters,
        outcomes=OUTCOMES,
        newest=start is None,
        last=checks.audit,
        may_verify=allowed(me, "audit.verify", "audit:log"),
    )


# --- artifacts --------------------------------------------------------------------------------------


@router.get_("/ui/artifacts", guard=Guard.signed_in())
def artifacts(request: Request) -> HTMLResponse:
    """Every artifact the caller may list, newest version first (the listing is one event)."""
    by_name: dict[str, list[Any]] = {}
    for art in _store(request).artifacts():
        by_name.setdefault(art.name, []).append(art)
    rows = []
    for name in sorted(by_name):
        versions = sorted(by_name[name], key=lambda a: a.version, reverse=True)
        rows.append(
            {
                "latest": versions[0],
                "versions": versions,
                "href": artifact_href(name, versions[0].version),
                "verdict": verdict_class(versions[0]),
            }
        )
    return render(request, "artifacts.html", rows=rows, href=artifact_href)


@router.get_(
    "/ui/artifacts/{name:path}/versions/{version}", guard=Guard.needs("artifact.list", "artifact:{name}")
)
def artifact(name: str, version: str, request: Request) -> HTMLResponse:
    """One version: its manifest, scan verdict and signer, and its lineage as a graph."""
    me = caller_of(request)
    number = _number(version, "a version")
    tree = _store(request).lineage(f"{name}@{number}")
    return render(
        request,
        "artifact.html",
        art=tree.artifact,
        tree=tree,
        graph=layout(tree),
        verdict=verdict_class(tree.artifact),
        href=artifact_href,
        may_read=allowed(me, "artifact.read", f"artifact:{name}"),
    )


# --- users and roles --------------------------------------------------------------------------------


@router.get_("/ui/users", guard=Guard.needs("user.read", "user:*"))
def users(request: Request) -> HTMLResponse:
    from pipewarden.identity import Accounts

    me = caller_of(request)
    state = server_state(request)
    accounts = Accounts(state.workspace.database(), events=state.workspace_events)
    found = accounts.list_as(me.acting.actor)
    needs_mfa = {p.name: p.kind == "user" and state.authenticator.requires_mfa(p.grants) for p in found}
    return render(request, "users.html", principals=found, needs_mfa=needs_mfa)
