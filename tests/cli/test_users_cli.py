"""`pipewarden init --admin`, `login`, `whoami`, `logout`, `user ...` and `token ...` as a person runs them.

Standard input is never a terminal here, so nothing may prompt: passwords come
from files and one-time codes from --totp-code, computed from the secret the
enrolment prints. Events are read back from the workspace's audit log.
"""

from __future__ import annotations

import base64
import json
import re
import time
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from pipewarden.cli import app
from pipewarden.identity import Totp
from pipewarden.workspace import Workspace

BOSS_PHRASE = "tangerine orbit velvet quarry"
ADA_PHRASE = "lantern meadow copper whistle"
VIC_PHRASE = "harbour violet saddle engine"


class Shell:
    """The command line of one person on one machine: a workspace, a home folder, a token or not."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.ws = root / "ws"
        self.env: dict[str, str | None] = {
            "PIPEWARDEN_WORKSPACE": str(self.ws),
            "XDG_CONFIG_HOME": str(root / "home" / ".config"),
            "PIPEWARDEN_TOKEN": None,
            "PIPEWARDEN_DATABASE_URL": None,
            "PIPEWARDEN_TOTP_CODE": None,
            "PIPEWARDEN_PASSWORD_FILE": None,
            "COLUMNS": "200",
        }

    def secret_file(self, name: str, text: str) -> str:
        path = self.root / name
        path.write_text(text + "\n")
        return str(path)

    def __call__(self, *args: str, token: str | None = None) -> Result:
        env = dict(self.env)
        if token is not None:
            env["PIPEWARDEN_TOKEN"] = token
        return CliRunner().invoke(app, list(args), env=env, catch_exceptions=False)

    def events(self) -> list[tuple[str, str, str]]:
        return [
            (e.event.action, e.event.actor, e.event.outcome)
            for e in Workspace.open(self.ws).audit_log().records()
        ]


def totp_from(output: str) -> Totp:
    match = re.search(r"secret \(to type in\): ([A-Z2-7]+)", output)
    assert match is not None, output
    secret = match.group(1)
    return Totp(base64.b32decode(secret + "=" * (-len(secret) % 8)))


def next_code(totp: Totp) -> str:
    """A code one step ahead: inside the window, and newer than any code used in this step."""
    return totp.code_at(time.time() + totp.period)


def log_in_with_enrolment(sh: Shell, name: str, password_file: str) -> tuple[Totp, list[str]]:
    """First login of someone whose roles need MFA: enrol from the printed secret, confirm, get codes."""
    first = sh("login", "--name", name, "--password-file", password_file)
    assert first.exit_code == 2, first.output
    assert "your roles require a second factor" in first.stderr and "--totp-code" in first.stderr
    totp = totp_from(first.stderr)
    done = sh(
        "login", "--name", name, "--password-file", password_file, "--totp-code", totp.code_at(time.time())
    )
    assert done.exit_code == 0, done.output
    codes = re.findall(r"^  ([a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4})$", done.stdout, re.M)
    assert len(codes) == 10 and f"logged in as {name} (with MFA)" in done.stdout
    return totp, codes


@pytest.fixture
def sh(tmp_path: Path) -> Shell:
    shell = Shell(tmp_path)
    result = shell(
        "init", "--admin", "boss", "--admin-password-file", shell.secret_file("boss.pw", BOSS_PHRASE)
    )
    assert result.exit_code == 0, result.output
    assert "admin        boss (role admin" in result.stdout
    return shell


def test_init_refuses_a_weak_admin_password_before_creating_anything(tmp_path: Path) -> None:
    shell = Shell(tmp_path)
    weak = shell(
        "init", "--admin", "boss", "--admin-password-file", shell.secret_file("weak", "password1234")
    )
    assert weak.exit_code == 2 and "too easy to guess" in weak.stderr
    assert "password1234" not in weak.output
    assert not shell.ws.exists()
    nothing = shell("init", "--admin", "boss")  # not a terminal: no prompt, and no default password either
    assert nothing.exit_code == 2 and "pass --admin-password-file" in nothing.stderr
    assert not shell.ws.exists()
    bad_name = shell(
        "init", "--admin", "Boss Man", "--admin-password-file", shell.secret_file("pw", BOSS_PHRASE)
    )
    assert bad_name.exit_code == 2 and "lower-case" in bad_name.stderr and not shell.ws.exists()


def test_init_without_admin_still_works_and_the_local_operator_bootstraps_one(tmp_path: Path) -> None:
    shell = Shell(tmp_path)
    assert shell("init").exit_code == 0
    not_logged_in = shell("user", "add", "boss", "--password-file", shell.secret_file("pw", BOSS_PHRASE))
    assert not_logged_in.exit_code == 1 and "not logged in" in not_logged_in.stderr
    made = shell(
        "user", "add", "boss", "--bootstrap", "--password-file", shell.secret_file("pw", BOSS_PHRASE)
    )
    assert made.exit_code == 0 and "created user boss (admin at *)" in made.stdout, made.output
    again = shell(
        "user", "add", "eve", "--bootstrap", "--password-file", shell.secret_file("pw", BOSS_PHRASE)
    )
    assert again.exit_code == 1 and "an administrator exists already" in again.stderr
    assert ("user.create", shell.events()[-1][1], "denied") == shell.events()[-1]


def test_login_whoami_users_tokens_and_logout(sh: Shell) -> None:
    boss_pw = str(sh.root / "boss.pw")
    wrong = sh(
        "login", "--name", "boss", "--password-file", sh.secret_file("wrong", "not the password at all")
    )
    assert wrong.exit_code == 1 and "the credentials were not accepted" in wrong.stderr
    _totp, _codes = log_in_with_enrolment(sh, "boss", boss_pw)
    session_files = list((sh.root / "home" / ".config" / "pipewarden" / "sessions").iterdir())
    assert len(session_files) == 1 and session_files[0].stat().st_mode & 0o777 == 0o600

    who = sh("whoami")
    assert who.exit_code == 0, who.output
    assert who.stdout.splitlines()[0] == "boss (user)"
    assert "admin at * (requires MFA)" in who.stdout and "mfa      yes" in who.stdout

    ada_pw = sh.secret_file("ada.pw", ADA_PHRASE)
    added = sh(
        "user", "add", "ada", "--role", "ml-engineer", "--scope", "project:fraud", "--password-file", ada_pw
    )
    assert added.exit_code == 0 and "created user ada (ml-engineer at project:fraud)" in added.stdout, (
        added.output
    )
    assert sh("user", "add", "ci", "--service", "--role", "pipeline-service").exit_code == 0
    weak = sh("user", "add", "weak", "--password-file", sh.secret_file("w", "qwertyuiop123"))
    assert weak.exit_code == 2 and "too easy to guess" in weak.stderr
    listed = json.loads(sh("user", "list", "--json").stdout)
    assert [(p["name"], p["kind"], p["mfa_enrolled"]) for p in listed] == [
        ("ada", "user", False),
        ("boss", "user", True),
        ("ci", "service", False),
    ]

    made = sh("token", "create", "--for", "ci", "--scope", "artifact.*", "--expires", "30d", "-d", "runner")
    assert made.exit_code == 0, made.output
    token = made.stdout.strip()
    assert re.fullmatch(r"pwt_[A-Za-z0-9]{12}_[A-Za-z0-9_-]{43}", token) and "shown once" in made.stderr
    token_id = token[4:16]
    tokens = json.loads(sh("token", "list", "--all", "--json").stdout)
    assert {t["token_id"]: t["owner"] for t in tokens}[token_id] == "ci"
    assert token not in json.dumps(tokens)

    as_ci = sh("whoami", token=token)
    assert (
        as_ci.exit_code == 0
        and as_ci.stdout.startswith("ci (service)")
        and "scopes artifact.*" in as_ci.stdout
    )
    assert sh("user", "disable", "ci").exit_code == 0
    stopped = sh("whoami", token=token)
    assert stopped.exit_code == 1 and "its owner ci is disabled" in stopped.stderr
    assert sh("user", "enable", "ci").exit_code == 0
    assert sh("token", "revoke", token_id).exit_code == 0
    revoked = sh("whoami", token=token)
    assert revoked.exit_code == 1 and "was revoked" in revoked.stderr
    assert sh("token", "create", "--scope", "artifact.read", "--expires", "2y").exit_code == 2

    out = sh("logout")
    assert out.exit_code == 0 and "logged out boss" in out.stdout
    after = sh("whoami")
    assert after.exit_code == 1 and "not logged in" in after.stderr
    actions = [a for a, _, _ in sh.events()]
    for expected in (
        "auth.login",
        "auth.mfa_enrol",
        "user.create",
        "token.create",
        "user.disable",
        "token.revoke",
    ):
        assert expected in actions
    assert ("auth.logout", "boss", "allowed") in sh.events()
    assert ("token.use", "ci", "denied") in sh.events()


def test_a_user_without_the_role_is_refused_and_the_refusal_recorded(sh: Shell) -> None:
    boss_pw = str(sh.root / "boss.pw")
    log_in_with_enrolment(sh, "boss", boss_pw)
    vic_pw = sh.secret_file("vic.pw", VIC_PHRASE)
    assert sh("user", "add", "vic", "--role", "viewer", "--password-file", vic_pw).exit_code == 0
    assert sh("logout").exit_code == 0
    login = sh("login", "--name", "vic", "--password-file", vic_pw)
    assert login.exit_code == 0 and "logged in as vic (without MFA)" in login.stdout, login.output
    denied = sh("user", "add", "mallory", "--password-file", vic_pw)
    assert denied.exit_code == 1 and "user.create on user:mallory is not allowed" in denied.stderr
    assert sh.events()[-1] == ("user.create", "vic", "denied")
    no_tokens = sh("token", "create", "--scope", "artifact.list")
    assert no_tokens.exit_code == 1 and "token.create on token:vic is not allowed" in no_tokens.stderr


def test_an_admin_resets_a_lost_authenticator(sh: Shell) -> None:
    boss_pw = str(sh.root / "boss.pw")
    boss_totp, _ = log_in_with_enrolment(sh, "boss", boss_pw)
    ada_pw = sh.secret_file("ada.pw", ADA_PHRASE)
    assert sh("user", "add", "ada", "--role", "ml-engineer", "--password-file", ada_pw).exit_code == 0
    assert sh("logout").exit_code == 0
    _ada_totp, ada_codes = log_in_with_enrolment(sh, "ada", ada_pw)
    assert sh("logout").exit_code == 0
    # ada lost her phone; a recovery code still gets her in.
    code_file = sh.secret_file("rc", ada_codes[0])
    rescued = sh("login", "--name", "ada", "--password-file", ada_pw, "--recovery-code-file", code_file)
    assert rescued.exit_code == 0 and "9 recovery code(s) left" in rescued.stderr, rescued.output
    again = sh("login", "--name", "ada", "--password-file", ada_pw, "--recovery-code-file", code_file)
    assert again.exit_code == 1
    assert sh("logout").exit_code == 0
    # The admin resets her second factor; she enrols a new one at her next login.
    back = sh("login", "--name", "boss", "--password-file", boss_pw, "--totp-code", next_code(boss_totp))
    assert back.exit_code == 0, back.output
    reset = sh("user", "reset-mfa", "ada")
    assert reset.exit_code == 0, reset.output
    assert sh.events()[-1] == ("auth.mfa_reset", "boss", "allowed")
    assert sh("logout").exit_code == 0
    log_in_with_enrolment(sh, "ada", ada_pw)


HELPDESK_POLICY = """\
format: pipewarden.policy/1
roles:
  helpdesk:
    description: looks after the accounts of viewers
    allow:
      - actions: [user.read, user.update]
        resources: "user:*"
      - actions: role.grant
        resources: "role:viewer"
"""


def test_listing_users_is_one_event_and_a_helpdesk_reaches_only_accounts_it_could_make(sh: Shell) -> None:
    policy = sh.ws / "policy.yaml"
    policy.write_text(HELPDESK_POLICY)
    policy.chmod(0o600)
    boss_pw = str(sh.root / "boss.pw")
    log_in_with_enrolment(sh, "boss", boss_pw)
    vic_pw = sh.secret_file("vic.pw", VIC_PHRASE)
    hal_pw = sh.secret_file("hal.pw", ADA_PHRASE)
    assert sh("user", "add", "vic", "--role", "viewer", "--password-file", vic_pw).exit_code == 0
    assert sh("user", "add", "hal", "--role", "helpdesk", "--password-file", hal_pw).exit_code == 0
    listed = sh("user", "list")
    assert listed.exit_code == 0 and len(listed.stdout.splitlines()) == 3, listed.output
    last = list(Workspace.open(sh.ws).audit_log().records())[-1].event
    assert (last.action, last.actor, last.resource, last.outcome) == (
        "user.read",
        "boss",
        "user:*",
        "allowed",
    )
    assert last.attributes == {"count": 3}
    assert sh("logout").exit_code == 0

    assert sh("login", "--name", "hal", "--password-file", hal_pw).exit_code == 0
    # user.update alone does not reach an administrator's account: hal could not make one.
    refused = sh("user", "disable", "boss")
    assert refused.exit_code == 1 and "hal: role.grant on role:admin is not allowed" in refused.stderr
    assert sh.events()[-1] == ("user.update", "hal", "denied")
    taken = sh("user", "reset-password", "boss", "--password-file", sh.secret_file("new", VIC_PHRASE + " x"))
    assert taken.exit_code == 1 and "hal: role.grant on role:admin is not allowed" in taken.stderr
    assert sh.events()[-1] == ("auth.password_reset", "hal", "denied")
    # A viewer's account is within reach.
    assert sh("user", "disable", "vic").exit_code == 0
    assert sh.events()[-1] == ("user.disable", "hal", "allowed")
