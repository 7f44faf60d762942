"""What the dashboard's tests share: a browser's Accept header, signing in through the login form,
storing artifacts with lineage, and reading a page's table rows."""

from __future__ import annotations

import json
import re

from fastapi.testclient import TestClient

from pipewarden.store import Artifact
from tests.server.serverkit import ADMIN, PASSWORD, ROOT, ServerKit, next_code

__all__ = ["FRAUD", "HTML", "put", "rows", "sign_in"]

#: What a browser's navigation accepts: the dashboard answers such a request as a browser's.
HTML = {"accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
FRAUD = "project:fraud"


def put(kit: ServerKit, name: str, *, parents: tuple[str, ...] = ()) -> Artifact:
    """Store a small clean JSON model as `name` (a different body per name), with its `parents`."""
    path = kit.root / "upload.json"
    path.write_text(json.dumps({"weights": [0.25, 0.5], "name": name}))
    try:
        return kit.ws.store().put(path, name=name, actor=ROOT.name, parents=list(parents))
    finally:
        path.unlink()


def sign_in(kit: ServerKit, client: TestClient, name: str = ADMIN, **factor: str) -> str:
    """Sign in through the login form (the administrator with a fresh TOTP code); the CSRF value the
    pages' forms carry."""
    if name == ADMIN and not factor:
        factor = {"totp_code": next_code(kit.admin_totp)}
    response = client.post(
        "/ui/login", data={"name": name, "password": PASSWORD, **factor}, follow_redirects=False
    )
    assert response.status_code == 303, response.text
    return str(client.cookies["pw_csrf"])


def rows(page: str, table: str) -> list[str]:
    """The body rows of the page's table of class `table`, as HTML."""
    body = page.split(f'<table class="{table}">', 1)[1].split("</table>", 1)[0]
    return re.findall(r"<tr[ >].*?</tr>", body.split("<tbody>", 1)[1], flags=re.S)
