"""`pipewarden user password | recovery-codes | enrol-mfa | reset-password` as people run them.

Most tests run the commands as a script would (standard input is not a
terminal, so nothing may prompt); one runs `user password` on a real
pseudo-terminal, answering its prompts the way a person types, to show the
prompts work and that nothing secret is echoed. "Machines" are shells with
their own home folder over the same workspace: a login on one is a session
the others do not hold.
"""

from __future__ import annotations

import os
import pty
import re
import select
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.cli.test_users_cli import (
    ADA_PHRASE,
    BOSS_PHRASE,
    VIC_PHRASE,
    Shell,
    log_in_with_enrolment,
    next_code,
    totp_from,
)

NEW_PHRASE = "juniper canvas harbour ribbon"
CODE_LINE = re.compile(r"^  ([a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4})$", re.M)
ANY_CODE = re.compile(r"\b[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}\b")


class Office:
    """A workspace with an administrator (boss, logged in with MFA on `sh`) and two users: vic, a
    viewer (MFA optional), and ada, an ML engineer (MFA required, not yet enrolled)."""

    def __init__(self, root: Path) -> None:
        self.sh = Shell(root)
        self.boss_pw = self.sh.secret_file("boss.pw", BOSS_PHRASE)
        self.vic_pw = self.sh.secret_file("vic.pw", VIC_PHRASE)
        self.ada_pw = self.sh.secret_file("ada.pw", ADA_PHRASE)
        self.new_pw = self.sh.secret_file("new.pw", NEW_PHRASE)
        made = self.sh("init", "--admin", "boss", "--admin-password-file", self.boss_pw)
        assert made.exit_code == 0, made.output
        self.boss_totp, self.boss_codes = log_in_with_enrolment(self.sh, "boss", self.boss_pw)
        for name, role, pw in (("vic", "viewer", self.vic_pw), ("ada", "ml-engineer", self.ada_pw)):
            added = self.sh("user", "add", name, "--role", role, "--password-file", pw)
            assert added.exit_code == 0, added.output

    def machine(self, label: str) -> Shell:
        """Another person's (or device's) command line over the same workspace."""
        other = Shell(self.sh.root)
        other.env["XDG_CONFIG_HOME"] = str(self.sh.root / label / ".config")
        return other


@pytest.fixture
def office(tmp_path: Path) -> Office:
    return Office(tmp_path)


def test_a_user_changes_their_password_and_their_other_sessions_end(office: Office) -> None:
    laptop, phone = office.machine("laptop"), office.machine("phone")
    for shell in (laptop, phone):
        assert shell("login", "--name", "vic", "--password-file", office.vic_pw).exit_code == 0
    changed = laptop(
        "user", "password", "--password-file", office.vic_pw, "--new-password-file", office.new_pw
    )
    assert changed.exit_code == 0, changed.output
    assert "changed the password of vic; 1 other login session(s) ended" in changed.stdout
    assert "API tokens are not affected" in changed.stderr
    assert VIC_PHRASE not in changed.output and NEW_PHRASE not in changed.output
    # The laptop's session (the one the change was made from) goes on; the phone's is revoked.
    assert laptop("whoami").stdout.startswith("vic (user)")
    ended = phone("whoami")
    assert ended.exit_code == 1 and "was revoked" in ended.stderr
    old = phone("login", "--name", "vic", "--password-file", office.vic_pw)
    assert old.exit_code == 1 and "the credentials were not accepted" in old.stderr
    assert phone("login", "--name", "vic", "--password-file", office.new_pw).exit_code == 0
    assert ("auth.password_change", "vic", "allowed") in office.sh.events()


def test_refusals_say_why_and_never_repeat_a_password(office: Office) -> None:
    laptop = office.machine("laptop")
    assert laptop("login", "--name", "vic", "--password-file", office.vic_pw).exit_code == 0
    weak = laptop.secret_file("weak.pw", "vicvicvicvic1")
    refused = laptop("user", "password", "--password-file", office.vic_pw, "--new-password-file", weak)
    assert refused.exit_code == 2 and "too easy to guess" in refused.stderr
    assert "vicvicvicvic1" not in refused.output
    same = laptop("user", "password", "--password-file", office.vic_pw, "--new-password-file", office.vic_pw)
    assert same.exit_code == 2 and "the new password is the current one" in same.stderr
    wrong = laptop("user", "password", "--password-file", office.ada_pw, "--new-password-file", office.new_pw)
    assert wrong.exit_code == 1 and "the credentials were not accepted" in wrong.stderr
    no_new = laptop("user", "password", "--password-file", office.vic_pw)
    assert no_new.exit_code == 2 and "pass --new-password-file" in no_new.stderr
    # Nobody logged in on this machine, no --name, no terminal to ask on.
    nobody = office.machine("kiosk")
    unnamed = nobody(
        "user", "password", "--password-file", office.vic_pw, "--new-password-file", office.new_pw
    )
    assert unnamed.exit_code == 2 and "pass --name" in unnamed.stderr
    assert [e for e in office.sh.events() if e[0] == "auth.password_change"] == [
        ("auth.password_change", "vic", "denied")
    ] * 3


def test_an_enrolled_user_gives_a_code_or_a_recovery_code(office: Office) -> None:
    change = ("user", "password", "--password-file", office.boss_pw, "--new-password-file", office.new_pw)
    missing = office.sh(*change)
    assert missing.exit_code == 1
    assert "needs your password and a one-time code" in missing.stderr
    assert "pass --totp-code or --recovery-code-file" in missing.stderr
    code_file = office.sh.secret_file("rc", office.boss_codes[0])
    done = office.sh(*change, "--recovery-code-file", code_file)
    assert done.exit_code == 0, done.output
    assert "9 recovery code(s) left" in done.stderr
    back = office.sh(
        "login",
        "--name",
        "boss",
        "--password-file",
        office.new_pw,
        "--totp-code",
        next_code(office.boss_totp),
    )
    assert back.exit_code == 0, back.output


def test_an_admin_resets_a_password_from_an_mfa_session(office: Office) -> None:
    laptop = office.machine("laptop")
    assert laptop("login", "--name", "vic", "--password-file", office.vic_pw).exit_code == 0
    # $PIPEWARDEN_PASSWORD_FILE holds the administrator's own password: it never becomes vic's.
    office.sh.env["PIPEWARDEN_PASSWORD_FILE"] = office.boss_pw
    unset = office.sh("user", "reset-password", "vic")
    assert unset.exit_code == 2 and "pass --password-file" in unset.stderr
    reset = office.sh("user", "reset-password", "vic", "--password-file", office.new_pw)
    assert reset.exit_code == 0, reset.output
    assert "reset the password of vic; 1 login session(s) ended" in reset.stdout
    assert NEW_PHRASE not in reset.output
    assert office.sh.events()[-1] == ("auth.password_reset", "boss", "allowed")
    ended = laptop("whoami")
    assert ended.exit_code == 1 and "was revoked" in ended.stderr
    assert laptop("login", "--name", "vic", "--password-file", office.new_pw).exit_code == 0
    # vic may not reset anyone's; the administrator may not reset their own this way.
    denied = laptop("user", "reset-password", "boss", "--password-file", office.vic_pw)
    assert denied.exit_code == 1 and "user.update on user:boss is not allowed" in denied.stderr
    own = office.sh("user", "reset-password", "boss", "--password-file", office.new_pw)
    assert own.exit_code == 1 and "change your own password with 'pipewarden user password'" in own.stderr
    assert [e for e in office.sh.events() if e[0] == "auth.password_reset"][-2:] == [
        ("auth.password_reset", "vic", "denied"),
        ("auth.password_reset", "boss", "denied"),
    ]


def test_new_recovery_codes_replace_the_old_ones(office: Office) -> None:
    regenerate = ("user", "recovery-codes", "--password-file", office.boss_pw)
    missing = office.sh(*regenerate)
    assert missing.exit_code == 1 and "pass --totp-code or --recovery-code-file" in missing.stderr
    made = office.sh(*regenerate, "--totp-code", next_code(office.boss_totp))
    assert made.exit_code == 0, made.output
    codes = CODE_LINE.findall(made.stdout)
    assert len(codes) == 10 and not set(codes) & set(office.boss_codes)
    assert "the old ones no longer work" in made.stderr
    assert office.sh.events()[-1] == ("auth.recovery_code", "boss", "allowed")
    office.sh("logout")
    with_old = office.sh.secret_file("old.rc", office.boss_codes[1])
    login = ("login", "--name", "boss", "--password-file", office.boss_pw, "--recovery-code-file")
    assert office.sh(*login, with_old).exit_code == 1
    assert office.sh(*login, office.sh.secret_file("new.rc", codes[1])).exit_code == 0
    # Someone without a second factor has no recovery codes to replace.
    laptop = office.machine("laptop")
    none = laptop(
        "user", "recovery-codes", "--name", "vic", "--password-file", office.vic_pw, "--totp-code", "1"
    )
    assert none.exit_code == 1 and "no second factor is enrolled" in none.stderr


def test_a_user_whose_roles_do_not_require_it_enrols_and_later_replaces_an_authenticator(
    office: Office,
) -> None:
    laptop = office.machine("laptop")
    enrol = ("user", "enrol-mfa", "--name", "vic", "--password-file", office.vic_pw)
    first = laptop(*enrol)
    assert first.exit_code == 2 and "a new second factor" in first.stderr and "--totp-code" in first.stderr
    totp = totp_from(first.stderr)
    done = laptop(*enrol, "--totp-code", totp.code_at(time.time()))
    assert done.exit_code == 0, done.output
    codes = CODE_LINE.findall(done.stdout)
    assert len(codes) == 10
    assert "enrolled a second factor for vic" in done.stdout and "logged in as vic (with MFA)" in done.stdout
    assert laptop("whoami").stdout.startswith("vic (user)")
    # From now on every login of vic needs the second factor.
    needs = office.machine("phone")("login", "--name", "vic", "--password-file", office.vic_pw)
    assert needs.exit_code == 2 and "a one-time code is needed" in needs.stderr
    # Replacing it needs the current one (here a recovery code); the old authenticator then stops working.
    refused = laptop(*enrol)
    assert refused.exit_code == 1 and "pass --current-totp-code or --recovery-code-file" in refused.stderr
    began = laptop(*enrol, "--recovery-code-file", laptop.secret_file("rc", codes[0]))
    assert began.exit_code == 2, began.output
    replacement = totp_from(began.stderr)
    assert replacement.secret != totp.secret
    confirmed = laptop(*enrol, "--totp-code", replacement.code_at(time.time()))
    assert confirmed.exit_code == 0, confirmed.output
    phone = office.machine("phone")
    old = phone("login", "--name", "vic", "--password-file", office.vic_pw, "--totp-code", next_code(totp))
    assert old.exit_code == 1
    events = [e for e in office.sh.events() if e[0] == "auth.mfa_enrol" and e[1] == "vic"]
    assert [outcome for _, _, outcome in events] == ["allowed", "allowed", "denied", "allowed", "allowed"]


# --- on a terminal ------------------------------------------------------------------------------


def _read_until(fd: int, text: str, seen: bytearray) -> None:
    """Read the terminal until `text` shows up (a minute at most, so a missing prompt fails the test)."""
    deadline = time.monotonic() + 60
    while text.encode() not in seen:
        ready, _, _ = select.select([fd], [], [], max(deadline - time.monotonic(), 0))
        if not ready:
            raise AssertionError(f"no {text!r} on the terminal; it shows:\n{seen.decode(errors='replace')}")
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: the program ended
            chunk = b""
        if not chunk:
            raise AssertionError(f"the program ended before {text!r}:\n{seen.decode(errors='replace')}")
        seen.extend(chunk)


Answer = str | Callable[[str], str]


def on_terminal(sh: Shell, args: list[str], answers: list[tuple[str, Answer]]) -> tuple[int, str]:
    """Run the pipewarden command in a new process whose terminal is a pseudo-terminal; type each
    answer once its prompt is shown (an answer may be worked out from what the screen shows).
    Returns the exit status and everything the terminal showed."""
    env = dict(os.environ)
    for key, value in sh.env.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    pid, fd = pty.fork()
    if pid == 0:  # the child: its standard streams and controlling terminal are the pseudo-terminal
        os.execve(sys.executable, [sys.executable, "-m", "pipewarden.cli", *args], env)  # noqa: S606  # the command under test
    seen = bytearray()
    try:
        for prompt, answer in answers:
            # A hidden prompt ends with the space getpass writes after turning echo off; typing sooner
            # would be flushed (TCSAFLUSH) or echoed.
            _read_until(fd, prompt, seen)
            typed = answer if isinstance(answer, str) else answer(seen.decode(errors="replace"))
            os.write(fd, typed.encode() + b"\r")
        while True:
            ready, _, _ = select.select([fd], [], [], 60)
            if not ready:
                raise AssertionError(f"the program did not end:\n{seen.decode(errors='replace')}")
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            seen.extend(chunk)
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    return os.waitstatus_to_exitcode(status), seen.decode(errors="replace")


def test_on_a_terminal_it_asks_for_each_secret_hidden_and_for_the_code_when_needed(office: Office) -> None:
    """boss is logged in on this machine and enrolled: no options at all, every answer typed."""
    code = next_code(office.boss_totp)
    status, screen = on_terminal(
        office.sh,
        ["user", "password"],
        [
            ("current password: ", BOSS_PHRASE),
            ("new password for boss: ", NEW_PHRASE),
            ("Repeat for confirmation: ", NEW_PHRASE),
            ("one-time code (or a recovery code): ", code),
        ],
    )
    assert status == 0, screen
    assert "changed the password of boss; 0 other login session(s) ended" in screen
    # Nothing typed was shown.
    for secret in (BOSS_PHRASE, NEW_PHRASE, code):
        assert secret not in screen
    assert [e for e in office.sh.events() if e[0] == "auth.password_change"] == [
        ("auth.password_change", "boss", "denied"),  # the first try, before the code was asked for
        ("auth.password_change", "boss", "allowed"),
    ]
    assert office.sh("whoami").stdout.startswith("boss (user)")
    again = office.machine("laptop")("login", "--name", "boss", "--password-file", office.new_pw)
    assert again.exit_code == 2 and "a one-time code is needed" in again.stderr  # the password took


def test_an_enrolment_on_a_terminal_shows_the_secret_and_asks_for_a_code(office: Office) -> None:
    """ada's roles require MFA; she enrols with `user enrol-mfa` rather than at login, typing the code
    her app shows for the secret on the screen."""
    laptop = office.machine("laptop")
    status, screen = on_terminal(
        laptop,
        ["user", "enrol-mfa", "--name", "ada"],
        [
            ("password: ", ADA_PHRASE),
            ("code from the authenticator: ", lambda shown: totp_from(shown).code_at(time.time())),
        ],
    )
    assert status == 0, screen
    assert "enrolled a second factor for ada" in screen and "logged in as ada (with MFA)" in screen
    assert len(set(ANY_CODE.findall(screen))) == 10
    assert ADA_PHRASE not in screen
    who = laptop("whoami")
    assert who.stdout.startswith("ada (user)") and "mfa      yes" in who.stdout
