"""When a check fails in a way it did not plan for: the check is not determinable, never a crash or a pass.

A custom key provider's client, a database driver or a URL parser may raise anything, and the posture
report is where an operator learns what could not be checked, so any exception a check raises becomes
its group's "could not be determined" finding (the id ending in 9), naming the error's type and its
message, and is logged. Neither ever holds a secret: every URL in the text is cut to its scheme, host
and port, and the database password, wherever else it appears, is masked.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Iterable
from urllib.parse import parse_qsl, urlsplit

from pipewarden.db import DATABASE_URL_ENV
from pipewarden.errors import PipewardenError
from pipewarden.findings import Finding, Location
from pipewarden.posture._catalogue import CheckResult, finding

__all__ = ["error_text", "failure", "guarded", "guarded_group", "logged", "redact"]

logger = logging.getLogger(__name__)

_URL = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*)://([^\s'\"<>]*)")
_MASK = "***"


def _shorten(match: re.Match[str]) -> str:
    scheme, rest = match.group(1), match.group(2)
    # Whatever comes before the last '@' is user info (a password may hold '/', '?' or '#'); the host
    # and port follow it, up to the path, query or fragment, which may hold keys too.
    host = re.split(r"[/?#]", rest.rpartition("@")[2], maxsplit=1)[0]
    return f"{scheme}://{host}"


def _database_secrets() -> list[str]:
    """The password in ``$PIPEWARDEN_DATABASE_URL`` (in its user info or its query), if it has one."""
    url = os.environ.get(DATABASE_URL_ENV) or ""
    found: list[str] = []
    if "@" in url:
        # As written, even in a URL too broken to parse: user info runs to the last '@'.
        userinfo = url.rpartition("@")[0].partition("://")[2] or url.rpartition("@")[0]
        if ":" in userinfo:
            found.append(userinfo.partition(":")[2])
    try:
        parts = urlsplit(url)
        if parts.password:
            found.append(parts.password)
        found.extend(v for k, v in parse_qsl(parts.query) if k.lower() == "password" and v)
    except ValueError:
        pass  # a URL too broken to split: its password is still cut out of any URL in the text
    return sorted({secret for secret in found if secret}, key=len, reverse=True)


def redact(text: str) -> str:
    """`text` with every URL cut to ``scheme://host:port`` (user info, path, query and fragment dropped)
    and the database password masked wherever else it appears."""
    text = _URL.sub(_shorten, text)
    for secret in _database_secrets():
        text = text.replace(secret, _MASK)
    return text


def error_text(exc: BaseException) -> str:
    """What went wrong, fit to show: a pipewarden error's own message (it names its input), anything
    else as its type and message."""
    message = redact(str(exc))
    if isinstance(exc, PipewardenError):
        return message or type(exc).__name__
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def logged(check: str, exc: BaseException) -> str:
    """`error_text(exc)`, logged as the reason `check` could not be decided."""
    text = error_text(exc)
    logger.warning("posture: the %s check could not be determined: %s", check, text)
    return text


def failure(rule: str, check: str, place: Location, exc: BaseException) -> Finding:
    """The finding `rule` (a "could not be determined" id) saying why `check` could not be decided."""
    text = logged(check, exc)
    return finding(
        rule,
        f"{check}: could not be determined: {text}",
        location=place,
        evidence={"check": check, "error": type(exc).__name__},
    )


def guarded(check: str, *, rule: str, place: Location, run: Callable[[], Iterable[Finding]]) -> CheckResult:
    """`check`'s result: the findings `run` makes, or the one `rule` finding if it raises anything."""
    try:
        return CheckResult(check, tuple(run()))
    except Exception as exc:  # fail closed: an unplanned error is an undetermined check, never a crash
        return CheckResult(check, (failure(rule, check, place, exc),))


def guarded_group(
    checks: Iterable[str], *, rule: str, place: Location, run: Callable[[], list[CheckResult]]
) -> list[CheckResult]:
    """A group's results, or, if the group itself raises, each of its `checks` not determinable."""
    try:
        return run()
    except Exception as exc:  # fail closed, as in `guarded`
        return [CheckResult(check, (failure(rule, check, place, exc),)) for check in checks]
