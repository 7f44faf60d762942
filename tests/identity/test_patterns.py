"""The pattern languages: globs agree with the standard library's; scopes and actions mean what they say."""

from __future__ import annotations

import fnmatch
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipewarden.errors import ConfigError
from pipewarden.identity import ACTIONS, RESOURCE_TYPES, Grant, Policy, Subject, TokenScope
from pipewarden.identity._patterns import ActionPattern, Selector

# Names and globs over a small alphabet, so that matches and near misses are both common.
NAME = st.text(alphabet="ab/.-", min_size=1, max_size=12)
GLOB = st.text(alphabet="ab/.-*?", min_size=1, max_size=8).filter(lambda g: ":" not in g)


@given(glob=GLOB, name=NAME)
def test_a_name_glob_matches_as_fnmatch_does(glob: str, name: str) -> None:
    """With brackets refused, our globs are fnmatch's: '*' any run ('/' included), '?' one character."""
    matches = Selector.parse(glob).compile("ada")
    assert matches("artifact", name) is fnmatch.fnmatchcase(name, glob)


@given(glob=GLOB, name=NAME)
def test_a_typed_glob_matches_only_its_type(glob: str, name: str) -> None:
    matches = Selector.parse(f"artifact:{glob}").compile("ada")
    assert matches("artifact", name) is fnmatch.fnmatchcase(name, glob)
    assert matches("model", name) is False


@given(project=st.from_regex(r"[a-z][a-z0-9-]{0,8}", fullmatch=True), name=NAME)
def test_a_project_covers_its_name_and_what_is_under_it(project: str, name: str) -> None:
    matches = Selector.parse(f"project:{project}").compile("ada")
    assert matches("artifact", f"{project}/{name}")
    assert matches("pipeline", project)
    assert not matches("artifact", f"{project}x/{name}")
    assert matches("artifact", name) is (name == project or name.startswith(project + "/"))


@given(
    owner=st.from_regex(r"[a-z][a-z0-9._-]{0,10}", fullmatch=True),
    other=st.from_regex(r"[a-z][a-z0-9._-]{0,10}", fullmatch=True),
)
def test_self_stands_for_the_subjects_own_name_only(owner: str, other: str) -> None:
    matches = Selector.parse("token:{self}/*").compile(owner)
    assert matches("token", f"{owner}/Ab12")
    assert matches("token", f"{other}/Ab12") is (other == owner)


def test_self_matches_nothing_without_a_subject() -> None:
    assert not Selector.parse("token:{self}/*").compile(None)("token", "ada/x")


@given(action=st.sampled_from(sorted(ACTIONS)))
def test_action_patterns(action: str) -> None:
    kind, _, verb = action.partition(".")
    assert ActionPattern.parse("*").matches(action)
    assert ActionPattern.parse(action).matches(action)
    assert ActionPattern.parse(f"{kind}.*").matches(action)
    assert ActionPattern.parse(f"*.{verb}").matches(action)
    for other in ACTIONS:
        if other != action:
            assert not ActionPattern.parse(action).matches(other)
            assert ActionPattern.parse(f"{kind}.*").matches(other) is other.startswith(kind + ".")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("artifact", "an action pattern is"),
        ("artifact.reed", "not a pipewarden action"),
        ("artefact.*", "'artefact' is not a resource type"),
        ("*.fly", "no action has the verb 'fly'"),
        ("", "an action pattern is"),
    ],
)
def test_bad_action_patterns(text: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(problem)):
        ActionPattern.parse(text)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "non-empty"),
        ("artifact:", "name the resources after the ':'"),
        ("projekt:x", "'projekt' is not a resource type"),
        ("project:a/b", "a project name is"),
        ("fraud/[ab]", "only '*' and '?' are special"),
        ("fraud/{x}", "only '*' and '?' are special"),
        ("x" * 300, "at most 256 characters"),
    ],
)
def test_bad_resource_patterns(text: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(problem)):
        Selector.parse(text)


def test_token_scopes_parse_and_refuse() -> None:
    scope = TokenScope.parse("artifact.*@project:fraud")
    assert scope.action.text == "artifact.*" and scope.resources is not None
    assert TokenScope.parse("audit.read").resources is None
    with pytest.raises(ConfigError, match=r"token scope 'artifact\.read@'"):
        TokenScope.parse("artifact.read@")


def test_every_resource_type_has_actions_and_every_action_a_type() -> None:
    assert {a.partition(".")[0] for a in ACTIONS} == set(RESOURCE_TYPES)


@given(scope=st.sampled_from(["*", "project:fraud", "fraud/*", "artifact:fraud/*"]), name=NAME)
def test_a_scoped_grant_never_allows_more_than_the_same_grant_everywhere(scope: str, name: str) -> None:
    policy = Policy.default()
    everywhere = Subject("ada", "user", (Grant("ml-engineer"),), mfa=True)
    scoped = Subject("ada", "user", (Grant("ml-engineer", scope),), mfa=True)
    for action in ("artifact.read", "artifact.write", "artifact.delete"):
        if policy.check(scoped, action, f"artifact:{name}").allowed:
            assert policy.check(everywhere, action, f"artifact:{name}").allowed
