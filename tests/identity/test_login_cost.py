"""A login costs one argon2 verification, whether or not the name exists, in a fresh process too.

Every CLI command builds its `Authenticator` (and so its `PasswordPolicy`)
afresh, as a new process does. The dummy hash for unknown names used to be
made lazily by hashing, so the first attempt on an unknown name cost two
argon2 runs (hash, then verify) against one for a real name: a timing oracle
for which names exist (regression). The work is counted here at the argon2
library itself, never timed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher

from pipewarden.db import Database
from pipewarden.errors import AuthenticationFailed
from pipewarden.identity import Authenticator, PasswordPolicy
from tests.identity.authkit import ROOT, Kit

ORIGIN = "203.0.113.40"
WRONG = "not the password, not at all"


@pytest.fixture
def argon2_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[Counter[str]]:
    """Counts of argon2's hash and verify calls, which still run for real."""
    calls: Counter[str] = Counter()

    def counting(name: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(self: PasswordHasher, *args: Any, **kwargs: Any) -> Any:
            calls[name] += 1
            return real(self, *args, **kwargs)

        return wrapper

    monkeypatch.setattr(PasswordHasher, "hash", counting("hash", PasswordHasher.hash))
    monkeypatch.setattr(PasswordHasher, "verify", counting("verify", PasswordHasher.verify))
    yield calls


def _fresh(kit: Kit) -> Authenticator:
    """What a new process builds: a new password policy (cheap parameters) and authenticator."""
    return Authenticator(
        kit.db,
        events=kit.events,
        keyring=kit.keyring,
        passwords=PasswordPolicy(memory_kib=19456, iterations=2),
        clock=kit.clock,
    )


@pytest.fixture
def kit(database: Database, tmp_path: Path) -> Kit:
    kit = Kit(database, tmp_path)
    kit.user("vic", "viewer")
    kit.user("dora", "viewer")
    kit.accounts.disable("dora", actor=ROOT)
    kit.service("ci", "pipeline-service")
    return kit


@pytest.mark.parametrize("name", ["vic", "nobody", "dora", "ci", "Not A Valid Name", "x" * 300])
def test_the_first_attempt_in_a_fresh_process_costs_one_argon2_run(
    kit: Kit, argon2_calls: Counter[str], name: str
) -> None:
    argon2_calls.clear()
    auth = _fresh(kit)  # building it costs nothing
    assert argon2_calls == Counter()
    with pytest.raises(AuthenticationFailed):
        auth.login(name, WRONG, origin=ORIGIN)
    assert argon2_calls == Counter({"verify": 1})
    with pytest.raises(AuthenticationFailed):
        auth.login(name, WRONG, origin=ORIGIN + "0")
    assert argon2_calls == Counter({"verify": 2})


def test_a_password_policy_makes_no_hash_until_asked(argon2_calls: Counter[str]) -> None:
    PasswordPolicy()
    PasswordPolicy(memory_kib=19456, iterations=2).dummy_verify(WRONG)
    assert argon2_calls == Counter({"verify": 1})
