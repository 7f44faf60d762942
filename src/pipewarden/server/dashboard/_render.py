"""How the dashboard answers: Jinja2 pages (autoescaped), its static files, forms, and errors as pages.

A browser that is not signed in is sent to the login page (303) instead of getting the API's 401
problem document; so is one whose session ended. "A browser" is a request that accepts ``text/html``:
a script calling a page with a token and no such header gets the API's answers (401 as a problem
document), so the route table's guarantees hold for pages as they do for the API.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote

from fastapi import Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from pipewarden import errors as e
from pipewarden.server._caller import SESSION_COOKIE, Caller, csrf_token
from pipewarden.server._problems import STATUS
from pipewarden.server._state import ServerState

__all__ = [
    "HOME",
    "LOGIN",
    "STATIC",
    "Form",
    "PageRoute",
    "allowed",
    "caller_of",
    "done",
    "form_fields",
    "render",
    "safe_next",
    "server_state",
    "to_login",
    "wants_html",
]

_HERE = Path(__file__).parent
_FORM_TYPE = "application/x-www-form-urlencoded"
_MAX_FORM = 64 * 1024
_MAX_FIELDS = 64
LOGIN = "/ui/login"
HOME = "/ui/"


@dataclass(frozen=True, slots=True)
class StaticFile:
    body: bytes
    media_type: str
    version: str


def _static() -> dict[str, StaticFile]:
    """The static folder's files, read once: served by exact name, nothing else."""
    kinds = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}
    found = {}
    for path in sorted((_HERE / "static").iterdir()):
        if path.is_file() and path.suffix in kinds:
            body = path.read_bytes()
            found[path.name] = StaticFile(body, kinds[path.suffix], hashlib.sha256(body).hexdigest()[:12])
    return found


STATIC: Mapping[str, StaticFile] = _static()


def _static_url(name: str) -> str:
    # The content's digest in the URL: the file can be cached for good, and a new release is a new URL.
    return f"/ui/static/{name}?v={STATIC[name].version}"


_ENV = Environment(
    loader=FileSystemLoader(_HERE / "templates"),
    autoescape=select_autoescape(enabled_extensions=("html",), default=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def _utc(value: datetime | str) -> datetime | None:
    if isinstance(value, str):  # a manifest's ISO 8601 time
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    return (value if value.tzinfo is not None else value.replace(tzinfo=UTC)).astimezone(UTC)


def _stamp(value: datetime | str) -> str:
    """A time as people read it on every page: ``2030-05-01 12:30 UTC``."""
    moment = _utc(value)
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment is not None else str(value)


def _iso(value: datetime | str) -> str:
    moment = _utc(value)
    return moment.isoformat() if moment is not None else ""


_ENV.globals["static_url"] = _static_url
_ENV.filters["stamp"] = _stamp
_ENV.filters["iso"] = _iso


def wants_html(request: Request) -> bool:
    """Whether the request is a browser's navigation (it accepts ``text/html``)."""
    return "text/html" in request.headers.get("accept", "")


def safe_next(target: str | None, default: str = HOME) -> str:
    """A place in the dashboard to go to after a login or a form: a path under ``/ui/`` and nothing
    else (no other site, no scheme-relative ``//host``, no backslash tricks)."""
    if (
        not target
        or not target.startswith("/ui/")
        or "//" in target
        or "\\" in target
        or any(ord(c) < 0x21 or ord(c) == 0x7F for c in target)
        or len(target) > 512
    ):
        return default
    return target


def server_state(request: Request) -> ServerState:
    found: ServerState = request.app.state.pipewarden
    return found


def caller_of(request: Request) -> Caller:
    found: Caller | None = getattr(request.state, "caller", None)
    if found is None:  # a guarded page always has one
        raise e.AuthenticationFailed("this page needs a signed-in user")
    return found


def allowed(caller: Caller, action: str, resource: str) -> bool:
    """What the policy decides, asked without acting: what a page shows or offers, not what it does."""
    return caller.acting.authorizer.check(action, resource).allowed


_NAV: tuple[tuple[str, str, tuple[str, str] | None], ...] = (
    ("Overview", HOME, None),
    ("Alerts", "/ui/alerts", ("alert.read", "alert:*")),
    ("Audit log", "/ui/audit", ("audit.read", "audit:log")),
    ("Artifacts", "/ui/artifacts", None),
    ("Users", "/ui/users", ("user.read", "user:*")),
)


def _nav(caller: Caller | None) -> list[dict[str, str]]:
    """The pages the caller's roles let it open (the policy asked, nothing done)."""
    if caller is None:
        return []
    return [
        {"label": label, "href": href} for label, href, need in _NAV if need is None or allowed(caller, *need)
    ]


def _csrf(request: Request, caller: Caller | None) -> str:
    if caller is None or not caller.via_cookie:
        return ""  # a token in a header needs no CSRF value
    return csrf_token(request.cookies.get(SESSION_COOKIE, ""))


def render(request: Request, template: str, *, status: int = 200, **context: Any) -> HTMLResponse:
    """`template` with `context`, the signed-in caller's navigation and the form's CSRF value."""
    caller: Caller | None = getattr(request.state, "caller", None)
    page = _ENV.get_template(template).render(
        me=caller.subject.name if caller is not None else None,
        nav=_nav(caller),
        here=request.url.path,
        csrf=_csrf(request, caller),
        **context,
    )
    return HTMLResponse(page, status_code=status)


def done(request: Request, *, to: str, message: str, status: int = 200) -> Response:
    """The answer to a form that did something: back to `to` (303) for a browser, where that page
    shows the outcome; for a script, a short page saying what was done with `status` (following a
    redirect would be a second request, and a second event)."""
    if wants_html(request):
        return RedirectResponse(to, status_code=303)
    return render(request, "done.html", status=status, message=message, back=to)


def _status(exc: e.PipewardenError) -> int:
    return next(status for family, status, _ in STATUS if isinstance(exc, family))


def _detail(request: Request, exc: e.PipewardenError) -> str:
    detail = str(exc)
    root = request.app.state.pipewarden.workspace.root
    for form in sorted({str(root.absolute()), str(root.resolve())}, key=len, reverse=True):
        detail = detail.replace(form, "<workspace>")
    return detail[:2000]


def to_login(request: Request) -> RedirectResponse:
    """To the login page, coming back here afterwards; a session that no longer works is forgotten."""
    here = safe_next(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
    target = LOGIN if request.method != "GET" or here == HOME else f"{LOGIN}?next={quote(here, safe='/')}"
    response = RedirectResponse(target, status_code=303)
    if request.cookies.get(SESSION_COOKIE):
        response.delete_cookie(SESSION_COOKIE)
        response.delete_cookie("pw_csrf")
    return response


def error_page(request: Request, exc: e.PipewardenError) -> HTMLResponse:
    status = _status(exc)
    titles = {
        400: "That request was not right",
        401: "Not signed in",
        403: "Not allowed",
        404: "Not found",
        409: "Integrity problem",
        429: "Too many attempts",
    }
    return render(
        request,
        "error.html",
        status=status,
        title=titles.get(status, "Refused"),
        detail=_detail(request, exc),
        code=status,
    )


class PageRoute(APIRoute):
    """A dashboard route: its guard refusals and the library's errors answered as pages.

    Not signed in (or a session that ended): a browser goes to the login page, anyone else gets the
    API's 401. Every other error of pipewarden's is a page with the status the API would send.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page(request: Request) -> Response:
            try:
                return await handler(request)
            except e.AuthenticationFailed as exc:
                if isinstance(exc, e.LoginThrottled) or not wants_html(request):
                    raise
                return to_login(request)
            except e.PipewardenError as exc:
                return error_page(request, exc)

        return page


class Form:
    """The fields of a posted form (``application/x-www-form-urlencoded``)."""

    def __init__(self, fields: Mapping[str, list[str]]) -> None:
        self.fields = fields

    def all(self, name: str) -> list[str]:
        return list(self.fields.get(name, []))

    def one(self, name: str, *, label: str, max_length: int = 256, required: bool = True) -> str:
        """The field's single value, stripped; `ConfigError` naming the field's label when it is
        missing (and required), repeated, or too long."""
        values = self.fields.get(name, [])
        if len(values) > 1:
            raise e.ConfigError(f"{label}: given more than once")
        value = values[0].strip() if values else ""
        if required and not value:
            raise e.ConfigError(f"{label}: required")
        if len(value) > max_length:
            raise e.ConfigError(f"{label}: at most {max_length} characters")
        return value


async def form_fields(request: Request) -> Form:
    """The request's form: an urlencoded body (a body with no content type is read as one) of at most
    64 KiB and 64 fields; `ConfigError` for anything else."""
    kind = request.headers.get("content-type", _FORM_TYPE).partition(";")[0].strip().lower()
    if kind != _FORM_TYPE:
        raise e.ConfigError(f"{kind or 'the body'}: this page takes a form ({_FORM_TYPE})")
    body = await request.body()
    if len(body) > _MAX_FORM:
        raise e.ConfigError(f"the form is over {_MAX_FORM} bytes")
    try:
        fields = parse_qs(body.decode("ascii"), keep_blank_values=True, max_num_fields=_MAX_FIELDS)
    except (UnicodeDecodeError, ValueError):
        raise e.ConfigError(f"the form is not {_FORM_TYPE} of at most {_MAX_FIELDS} fields") from None
    return Form(fields)
