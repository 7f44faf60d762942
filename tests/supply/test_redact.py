"""URLs in dependency findings and SBOM notes: credentials (user-info, query) never copied, what locates the
code (scheme, host, path, pip's fragment) kept. Every credential here is made up."""

from __future__ import annotations

import string
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipewarden.supply import OfflineDatabase, audit, read_requirements
from pipewarden.supply._redact import redact_url, redact_urls
from tests.supply.osvfixtures import write_folder

MADE_UP = "S3CR3T" + "x9"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (f"https://builder:{MADE_UP}@pypi.internal.test/simple", "https://***@pypi.internal.test/simple"),
        # The user-info runs to the host's last "@": a password may hold one.
        (
            f"https://deploy:p@{MADE_UP}@git.internal.test/p-1.0.tar.gz",
            "https://***@git.internal.test/p-1.0.tar.gz",
        ),
        # A token as the user name; pip's "@rev" after the path is not user-info.
        (
            f"git+https://{MADE_UP}@git.internal.test/o/r.git@v1",
            "git+https://***@git.internal.test/o/r.git@v1",
        ),
        # A presigned download: the signature is in the query.
        (f"https://files.test/t-1.0.whl?X-Amz-Signature={MADE_UP}&a=b", "https://files.test/t-1.0.whl?***"),
        # An unescaped "/" in a password ends urllib's authority early; what follows is still dropped.
        (f"https://user:ab/{MADE_UP}@host.test/x.tar.gz", "https://***@host.test/x.tar.gz"),
        # pip's fragment keys are kept; any other fragment is not.
        (
            "git+ssh://git@host.test/o/r.git#egg=r&subdirectory=py",
            "git+ssh://***@host.test/o/r.git#egg=r&subdirectory=py",
        ),
        ("https://host.test/x.whl#sha256=" + "ab" * 32, "https://host.test/x.whl#sha256=" + "ab" * 32),
        (f"https://host.test/x.whl#token={MADE_UP}", "https://host.test/x.whl#***"),
        # Nothing to take out.
        ("https://[::1]:8080/simple", "https://[::1]:8080/simple"),
        ("./vendor/thing", "./vendor/thing"),
        # What urllib cannot take apart keeps only its scheme.
        (f"https://[{MADE_UP}@host/x", "https://***"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown
    assert redact_url(shown) == shown  # redacting twice changes nothing


def test_urls_in_text_keep_the_punctuation_around_them() -> None:
    note = f"installed from https://u:{MADE_UP}@h.test/x.whl?sig={MADE_UP}: no released version to check"
    assert redact_urls(note) == "installed from https://***@h.test/x.whl?***: no released version to check"
    assert redact_urls("from (git+https://t@h.test/r.git@v1).") == "from (git+https://***@h.test/r.git@v1)."


_PART = st.text(alphabet=string.ascii_letters + string.digits + "-._~!$&'()*+,;=%:@", min_size=1, max_size=20)


@given(user=_PART, password=_PART, query=_PART)
def test_no_credential_survives_whatever_characters_it_holds(user: str, password: str, query: str) -> None:
    user, password, query = (f"{MADE_UP}{part}" for part in (user, password, query))
    shown = redact_url(f"https://{user}:{password}@host.test/pkg-1.0.tar.gz?{query}")
    assert MADE_UP not in shown
    assert shown in ("https://***@host.test/pkg-1.0.tar.gz?***", "https://***")


def test_a_deps_finding_never_shows_a_url_credential(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text(
        f"privpkg @ https://deploy:p@{MADE_UP}@git.internal.test/privpkg-1.0.tar.gz\n"
        f"third @ https://files.internal.test/third-1.0.whl?X-Amz-Signature={MADE_UP}\n"
        f"-e git+https://{MADE_UP}@git.internal.test/o/r.git#egg=r\n"
        f"https://files.internal.test/fourth-2.0.tar.gz?sig={MADE_UP}\n"
    )
    deps = read_requirements(tmp_path / "requirements.txt")
    assert sorted(d.name for d in deps) == ["fourth-2.0", "privpkg", "r", "third"]
    report = audit(deps, OfflineDatabase(write_folder(tmp_path / "db")))
    notes = sorted(f.message for f in report.findings if f.rule_id == "PW-DEPS-103")
    tail = ": no released version to check"
    assert notes == [
        f"fourth-2.0: installed from https://files.internal.test/fourth-2.0.tar.gz?***{tail}",
        f"privpkg: installed from https://***@git.internal.test/privpkg-1.0.tar.gz{tail}",
        f"r: installed from git+https://***@git.internal.test/o/r.git#egg=r{tail}",
        f"third: installed from https://files.internal.test/third-1.0.whl?***{tail}",
    ]
    for fmt in ("text", "json", "sarif", "html"):
        assert MADE_UP not in report.render(fmt)
