"""URLs with their credentials taken out, for every report and document that names where code comes from.

A requirement's URL can carry a secret in two places: the user-info before the host
(``https://user:token@host/...``, a token alone as the user name) and the query
(``...whl?X-Amz-Signature=...``, a presigned download; ``?token=...``). Both are replaced with ``***``,
so a reader sees that there was one and never what it was. The fragment is pip's (``#egg=name``,
``#subdirectory=...``, ``#sha256=...``) and is kept when it holds only those keys; any other is
replaced too.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

__all__ = ["redact_url", "redact_urls"]

# What pip reads from a fragment (PEP 440 direct references, pip's VCS support): names and hashes.
_PIP_FRAGMENT_KEYS = frozenset({"egg", "subdirectory", "md5", "sha1", "sha224", "sha256", "sha384", "sha512"})
_FRAGMENT_VALUE = re.compile(r"[A-Za-z0-9_.+/-]*")
# A URL inside free text: a scheme, "://", then anything up to white space.
_URL_IN_TEXT = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://\S+")
# Punctuation that ends a sentence around a URL rather than belonging to it.
_TRAILING = ":;,.)]}'\""


def _fragment(fragment: str) -> str:
    pairs = [piece.partition("=") for piece in fragment.split("&")]
    if all(key in _PIP_FRAGMENT_KEYS and eq and _FRAGMENT_VALUE.fullmatch(v) for key, eq, v in pairs):
        return "#" + fragment
    return "#***"


def redact_url(url: str) -> str:
    """`url` with its user-info (everything before the host's last ``@``), query and any fragment
    that is not pip's replaced with ``***``; text without ``://`` (a path) is returned as it is.

    >>> redact_url("https://deploy:p@ss@files.example/pkg-1.0.tar.gz?X-Amz-Signature=abc#egg=pkg")
    'https://***@files.example/pkg-1.0.tar.gz?***#egg=pkg'
    """
    scheme, sep, _ = url.partition("://")
    if not sep:
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        # Not a URL urllib can take apart (a bad IPv6 host, say): keep only what cannot be a secret.
        return f"{scheme}://***"
    _, at, host = parts.netloc.rpartition("@")
    path = parts.path
    try:
        parts.port  # noqa: B018  # raises when what follows the host's ":" is no port
    except ValueError:
        # ``user:pa/ss@host/...``: an unescaped "/" in the password ends the authority early, and the
        # rest of the password looks like a port. The user-info runs to the last "@" before the query.
        _, at, rest = (parts.netloc + parts.path).rpartition("@")
        host, slash, path = rest.partition("/")
        path = slash + path
    text = f"{scheme}://" + ("***@" if at else "") + host + path
    if parts.query:
        text += "?***"
    if parts.fragment:
        text += _fragment(parts.fragment)
    return text


def redact_urls(text: str) -> str:
    """`text` with every URL in it passed through `redact_url` (a note such as ``installed from
    https://...: no released version to check``); punctuation after a URL stays outside it."""

    def one(match: re.Match[str]) -> str:
        url = match.group(0)
        stripped = url.rstrip(_TRAILING)
        return redact_url(stripped) + url[len(stripped) :]

    return _URL_IN_TEXT.sub(one, text)
