"""The secrets engine: detect-secrets' detectors and filters, driven line by line by pipewarden.

pipewarden runs the detectors itself rather than through detect-secrets' scan loop, for three reasons:
a notebook is read cell by cell and output by output (never run); no secret value may reach a log
(detect-secrets' own loop logs each value it filters out); and no candidate is verified against its
vendor's service, which would send the secret over the network.

A secret is known by its fingerprint, never its value: ``PBKDF2-HMAC-SHA256(secret, salt = scheme tag
+ detector type, 100,000 iterations)``, first 128 bits, hex. The digest is deliberately slow: reports
and baselines travel further than the code (CI logs, code-scanning services, a baseline in every clone),
and a fast hash of a short password (like the plain SHA-1 detect-secrets keeps in its baseline) is
reversed by trying a word list in seconds. It is unkeyed so that a secret has the same fingerprint on
every machine and in every run, which is what lets a baseline accept it.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import re
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

__all__ = [
    "CRITICAL_TYPES",
    "FINGERPRINT_SCHEME",
    "Candidates",
    "Engine",
    "detectors",
    "secret_fingerprint",
    "text_passes",
]

logger = logging.getLogger(__name__)

FINGERPRINT_SCHEME = "pbkdf2-sha256/100000/128"
_ITERATIONS = 100_000
_SALT = b"pipewarden/secrets/fingerprint/v1\x00"

# Credentials that open infrastructure or publish what others install: critical.
CRITICAL_TYPES = frozenset(
    {
        "Private Key",
        "AWS Access Key",
        "Azure Storage Account access key",
        "IBM Cloud IAM Key",
        "IBM COS HMAC Credentials",
        "SoftLayer Credentials",
        "Cloudant Credentials",
        "GitHub Token",
        "GitLab Token",
        "PyPI Token",
        "NPM tokens",
        "Artifactory Credentials",
    }
)
# Detectors that judge by a line's shape rather than a token's format; they rank below the others when
# several name the same value.
_SHAPE_DETECTORS = ("Secret Keyword", "Base64 High Entropy String", "Hex High Entropy String")
# A public IP address is not a secret.
_NOT_SECRETS = frozenset({"IPPublicDetector"})

# Values that stand in for a secret in examples, templates and tests, and words for a state or a
# verdict (`"secrets": "fail"`) that the keyword detector takes for a password.
_PLACEHOLDER = re.compile(
    r"change[-_ ]?(me|it)|x{3,}|\*{3,}|\.{3,}|-{3,}|(.)\2{5,}|dummy|sample|fake|test(ing)?|todo|tbd|none"
    r"|null|nil|undefined|password|passwd|secret|token|api[-_ ]?key|(your|insert|enter|replace|put)([-_ ].*)?"
    r"|.*[-_ ]here|true|false|yes|no|on|off|pass(ed)?|fail(ed)?|ok|skip(ped)?|enabled|disabled|required"
    r"|optional|default",
    re.IGNORECASE,
)
_PLACEHOLDER_PART = re.compile(
    r"example|changeme|placeholder|redacted|dummy|fake|not[-_ ]?(a[-_ ]?)?real|do[-_ ]?not[-_ ]?use",
    re.IGNORECASE,
)
# What a secret-named variable often holds instead of the secret: the name of the variable that does
# (`TOKEN_ENV = "SERVICE_TOKEN"`).
_VARIABLE_NAME = re.compile(r"[A-Z][A-Z0-9]*(_[A-Z0-9]+)+")
# A digest labelled with its algorithm (``--hash=sha256:``, ``@sha256:``, ``integrity="sha512-``), or a
# hex value under a name for a digest or commit (``rev: "<sha>"``, ``"fingerprint": "<hex>"``).
_DIGEST_LABEL = re.compile(r"(sha-?(1|224|256|384|512)|sha3[-_]\d+|md5|blake2[bs]?)\s*[:=-]?\s*$", re.I)
_DIGEST_PREFIX = re.compile(r"(sha(1|256|384|512)|md5)[-:]", re.IGNORECASE)
# Hex digits of MD5, SHA-1, SHA-224, SHA-256, SHA-384 and SHA-512 (and the SHA-3 and BLAKE2 sizes).
_DIGEST_LENGTHS = frozenset({32, 40, 56, 64, 96, 128})
# The words of a name for a digest or commit. A name matches when one of its words (split at ``_ . -``
# and camelCase) is one of these exactly: ``commit_sha`` and ``gitRev`` do, ``ANDROID_KEY`` (oid),
# ``SHAREPOINT_SECRET`` (sha) and ``PREVIEW_TOKEN`` (rev) do not.
_DIGEST_WORDS = frozenset(
    {
        "rev",
        "revision",
        "commit",
        "sha",
        "sha1",
        "sha224",
        "sha256",
        "sha384",
        "sha512",
        "sha1sum",
        "sha256sum",
        "sha512sum",
        "md5",
        "md5sum",
        "blake2b",
        "hash",
        "hashes",
        "hexdigest",
        "digest",
        "digests",
        "checksum",
        "checksums",
        "fingerprint",
        "fingerprints",
        "etag",
        "oid",
        "integrity",
    }
)
_NAME_SEPARATORS = re.compile(r"[_.-]+")
_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_NAME = re.compile(r"[A-Za-z_][\w.-]*")
_HEX = re.compile(r"[0-9a-fA-F]+")
_KEY_END = re.compile(r"-{4,5} ?END [A-Z0-9 ]*-{4,5}|Private-MAC: *[0-9a-fA-F]+")
_NOT_BASE64 = re.compile(r"[^A-Za-z0-9+/=]")
_COMMENT = re.compile(r"\s+(#|//|;)")
# What follows a mapping key whose value is an object or a list, inline (JSON) or on the next lines
# (YAML): such a key names a record (a saved Jupyter widget's model id), it does not hold a credential.
_KEY_OF_A_BLOCK = re.compile(r"[\"']?\s*:\s*([{\[]|$)")

_ENGINE_LOCK = threading.Lock()


def secret_fingerprint(kind: str, value: str) -> str:
    """The fingerprint a finding and a baseline give a secret of detector type `kind` (see the module
    docstring): 32 hex digits, the same on every machine, from which the value is not cheaply found."""
    digest = hashlib.pbkdf2_hmac("sha256", value.encode(), _SALT + kind.encode(), _ITERATIONS)
    return digest[:16].hex()


def _is_placeholder(value: str) -> bool:
    bare = value.strip("'\"` ")
    return bool(_PLACEHOLDER.fullmatch(bare) or _PLACEHOLDER_PART.search(bare))


def _is_digest(value: str, line: str) -> bool:
    if _DIGEST_PREFIX.match(value):
        return True
    at = line.find(value)
    before = line[:at].rstrip("\"'` ") if at >= 0 else ""
    if _DIGEST_LABEL.search(before):
        return True
    names = _NAME.findall(before)
    if not (_HEX.fullmatch(value) and names):
        return False
    if names[-1] == "content" and len(value) in _DIGEST_LENGTHS:
        # A CycloneDX hash: {"alg": "SHA-256", "content": "<hex>"} (SBOMs list one per package file).
        return True
    return _names_a_digest(names[-1])


def _names_a_digest(name: str) -> bool:
    """True when a word of `name` is a digest word (`_DIGEST_WORDS`); each piece between separators
    counts whole (``ETag``) and split at camelCase boundaries (``commitSha``)."""
    for piece in _NAME_SEPARATORS.split(name):
        words = {piece, *_CAMEL_BOUNDARY.split(piece)}
        if any(word.lower() in _DIGEST_WORDS for word in words):
            return True
    return False


def _filtered(value: str, line: str, plugin: Any, filename: str) -> bool:
    """True when detect-secrets' default heuristics, or pipewarden's own, say `value` is no secret."""
    from detect_secrets.filters import heuristic
    from detect_secrets.plugins.base import RegexBasedDetector
    from detect_secrets.plugins.high_entropy_strings import HighEntropyStringsPlugin

    if (
        heuristic.is_sequential_string(value)
        or heuristic.is_potential_uuid(value)
        or heuristic.is_templated_secret(value)
        or heuristic.is_prefixed_with_dollar_sign(value)
        or heuristic.is_not_alphanumeric_string(value)
        or heuristic.is_likely_id_string(value, line, plugin)
        or _is_placeholder(value)
    ):
        return True
    if isinstance(plugin, RegexBasedDetector):
        # A token of a known format is reported even in a line that also calls something: detect-secrets
        # would drop the whole line `client("s3", key="AKIA...")` as an indirect reference.
        return False
    if heuristic.is_indirect_reference(line) or heuristic.is_swagger_file(filename):
        return True
    if not isinstance(plugin, HighEntropyStringsPlugin):
        return bool(_VARIABLE_NAME.fullmatch(value))
    return _is_digest(value, line) or _is_block_key(value, line)


def _is_block_key(value: str, line: str) -> bool:
    at = line.find(value)
    return at >= 0 and bool(_KEY_OF_A_BLOCK.match(line, at + len(value)))


def _rank(kind: str) -> tuple[int, str]:
    if kind in _SHAPE_DETECTORS:
        return 2 + _SHAPE_DETECTORS.index(kind), kind
    return (0 if kind in CRITICAL_TYPES else 1), kind


def _key_block(lines: Sequence[str], index: int, header: str) -> str:
    """What identifies a private key: its header and the base64 of its body up to the END line, so two
    keys in one file differ and a replaced key is a new finding."""
    text = "\n".join(lines[index : index + 400])
    start = max(text.find(header), 0)
    end = _KEY_END.search(text, start + len(header))
    return header if end is None else header + ":" + _NOT_BASE64.sub("", text[start : end.end()])


def _identities(plugin: Any, line: str, value: str) -> list[str]:
    """The secrets behind a value a format detector reported. Some of its patterns capture only a
    token's prefix (``(ghp|gho|...)_`` for code-host tokens), so every token of that kind would share
    one value; each match whose captured prefix is the value stands for its whole token instead."""
    if type(plugin).__name__ == "JwtTokenDetector":
        # Its pattern ends lazily, before the signature: the whole token is the secret, so two tokens
        # with the same claims and different signatures are two secrets.
        whole_token = re.search(re.escape(value) + r"[A-Za-z0-9_=-]*", line)
        return [whole_token.group(0) if whole_token else value]
    found = []
    for regex in getattr(plugin, "denylist", ()):
        for match in regex.finditer(line):
            whole = match.group(0)
            groups = [i for i in range(1, regex.groups + 1) if match.group(i) == value]
            if whole == value or not groups:
                continue
            prefix = match.start(groups[0]) == match.start() and 2 * len(value) < len(whole)
            found.append(whole if prefix else value)
    return sorted(set(found)) or [value]


class _Named(io.StringIO):
    """In-memory text with a name, as detect-secrets' transformers expect of a file."""

    def __init__(self, text: str, name: str) -> None:
        super().__init__(text)
        self.name = name


def _has_aliases(text: str) -> bool:
    """True when a YAML text uses aliases: detect-secrets' YAML reader walks each alias's target again,
    so nested aliases (a "billion laughs" file) would never finish."""
    if "*" not in text:
        return False
    import yaml

    try:
        return any(isinstance(token, yaml.AliasToken) for token in yaml.scan(text, Loader=yaml.SafeLoader))
    except yaml.YAMLError:
        return True


def text_passes(text: str, name: str) -> list[list[str]]:
    """The file's lines, then the same lines as detect-secrets' transformers rewrite them (YAML and INI
    values quoted, env-style files read as INI), line numbers kept. Findings of every pass count."""
    from detect_secrets.transformers.config import ConfigFileTransformer, EagerConfigFileTransformer
    from detect_secrets.transformers.yaml import YAMLTransformer
    from detect_secrets.types import NamedIO

    passes = [text.splitlines()]
    for transformer in (YAMLTransformer(), ConfigFileTransformer(), EagerConfigFileTransformer()):
        if not transformer.should_parse_file(name):
            continue
        if isinstance(transformer, YAMLTransformer) and _has_aliases(text):
            # YAML aliases nest ("billion laughs"); such files are read as lines only.
            continue
        # INI readers interpolate '%(name)s' (which nests like YAML aliases) and refuse a lone '%'
        # (which would drop the whole file's reading): escaped, every '%' is read as itself.
        source = text if isinstance(transformer, YAMLTransformer) else text.replace("%", "%%")
        try:
            lines = transformer.parse_file(cast(NamedIO, _Named(source, name)))
        except Exception as exc:  # the plain lines are scanned whatever a transformer makes of them
            logger.debug("%s: %s did not read it (%s)", name, type(transformer).__name__, type(exc).__name__)
            continue
        if lines:
            passes.append(lines)
    return passes


@contextlib.contextmanager
def detectors() -> Iterator[list[Any]]:
    """detect-secrets' detectors with their default settings and no verification (which would send each
    candidate to its vendor). Its settings are process-global, so one scan configures them at a time."""
    from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class
    from detect_secrets.settings import get_plugins, transient_settings

    classes: dict[str, type[Any]] = get_mapping_from_secret_type_to_class()
    names = sorted(cls.__name__ for cls in classes.values())
    wanted = [{"name": name} for name in names if name not in _NOT_SECRETS]
    with _ENGINE_LOCK, transient_settings({"plugins_used": wanted, "filters_used": []}):
        yield list(get_plugins())


@dataclass
class Candidates:
    """The distinct values one file holds that passed every filter. The first `limit` (in line order)
    are fingerprinted and reported; the rest are only counted: each fingerprint costs tens of
    milliseconds by design, and a file of test vectors or generated keys holds thousands of them."""

    limit: int
    kept: set[str] = field(default_factory=set)
    over: set[str] = field(default_factory=set)

    def admit(self, identity: str) -> bool:
        """True when `identity` is (or now becomes) one of the kept ones."""
        if identity in self.kept:
            return True
        if len(self.kept) < self.limit:
            self.kept.add(identity)
            return True
        self.over.add(identity)
        return False

    @property
    def total(self) -> int:
        return len(self.kept) + len(self.over)


@dataclass
class Engine:
    """Runs the detectors over lines; remembers fingerprints and how many secrets were allowlisted."""

    plugins: list[Any]
    fingerprints: dict[tuple[str, str], str] = field(default_factory=dict)
    allowlisted: int = 0

    def fingerprint(self, kind: str, identity: str) -> str:
        key = (kind, identity)
        if key not in self.fingerprints:
            self.fingerprints[key] = secret_fingerprint(kind, identity)
        return self.fingerprints[key]

    def scan(
        self, passes: Sequence[Sequence[str]], name: str, candidates: Candidates
    ) -> list[tuple[int, str, str, tuple[str, ...]]]:
        """(line, detector type, fingerprint, other types that matched) per secret and line, once each,
        for the secrets `candidates` admits (in order of their first line).

        The first reading that finds a secret places it; a later reading (a transformer's, whose line
        for a YAML block is the key's, not the value's) only adds the detectors that matched it.
        """
        found: dict[str, dict[int, set[str]]] = {}
        allowed: set[str] = set()
        for one_pass in passes:
            here, inline = self._read(list(one_pass), name)
            for identity, by_line in here.items():
                if identity not in found:
                    # A rewritten line may have lost the allowlist comment the first reading saw.
                    if identity not in allowed:
                        found[identity] = by_line
                    continue
                later = set().union(*by_line.values())
                for kinds in found[identity].values():
                    kinds |= later
            allowed |= inline
        self.allowlisted += len(allowed - found.keys())
        hits = []
        for identity, by_line in sorted(found.items(), key=lambda item: min(item[1])):
            if not candidates.admit(identity):
                continue
            for number, kinds in by_line.items():
                primary, *others = sorted(kinds, key=_rank)
                hits.append((number, primary, self.fingerprint(primary, identity), tuple(others)))
        return sorted(hits)

    def _read(self, lines: list[str], name: str) -> tuple[dict[str, dict[int, set[str]]], set[str]]:
        """What one reading of a file holds: secret -> line -> detector types, and the secrets on lines
        allowlisted inline."""
        from detect_secrets.filters.allowlist import is_line_allowlisted
        from detect_secrets.plugins.base import RegexBasedDetector
        from detect_secrets.util.code_snippet import get_code_snippet

        found: dict[str, dict[int, set[str]]] = {}
        allowed: set[str] = set()
        for index, raw in enumerate(lines):
            line = raw.rstrip()
            if not line.strip():
                continue
            context = get_code_snippet(lines, index + 1)
            inline_ok = is_line_allowlisted(filename=name, line=line, context=context)
            for plugin in self.plugins:
                for potential in plugin.analyze_line(
                    filename=name, line=line, line_number=index + 1, context=context
                ):
                    value = potential.secret_value
                    if not value or _filtered(value, line, plugin, name):
                        continue
                    kind = str(plugin.secret_type)
                    if kind == "Private Key":
                        identities = [_key_block(lines, index, value)]
                    elif isinstance(plugin, RegexBasedDetector):
                        identities = _identities(plugin, line, value)
                    else:
                        # An unquoted value runs to the end of the line: a trailing comment is not part
                        # of it (the transformers' reading of the same line stops before it).
                        identities = [_COMMENT.split(value, maxsplit=1)[0]]
                    for identity in identities:
                        if inline_ok:
                            allowed.add(identity)
                        else:
                            found.setdefault(identity, {}).setdefault(index + 1, set()).add(kind)
        return found, allowed
