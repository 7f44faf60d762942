"""The artifact store: content-addressed, encrypted at rest, signed, versioned, with lineage.

Object layout under the backend's root::

    artifacts/<name>/@<version>.json   signed manifest (DSSE, in-toto Statement v1); written last,
                                       exclusively: a version exists once this object does
    keyslots/<uid>.json                 the body's data key, sealed under a KEK; rewritten on rotation
    blobs/sha256/<digest>/<uid>         the encrypted body (PWSTRM/1), under the plaintext's digest
    staging/<uid>                       a body being written; moved into blobs/ once hashed
    refusals/<time>-<uid>.json          signed record of a file the scan refused
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import secrets
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from pipewarden._canonical import canonical_json
from pipewarden.crypto import (
    DEFAULT_CHUNK_SIZE,
    KeyRing,
    SigningKey,
    TrustedKeys,
    WrappedKey,
    decrypt_stream,
    encrypt_stream,
    new_data_key,
    open_envelope,
    sign_envelope,
)
from pipewarden.crypto import INTOTO_PAYLOAD_TYPE as _INTOTO
from pipewarden.errors import (
    ArtifactNotFound,
    ArtifactRefused,
    IntegrityError,
    KeyRingError,
    PipewardenError,
    StoreError,
)
from pipewarden.findings import Severity
from pipewarden.store._backends._interface import Backend, ObjectExists, ObjectNotFound
from pipewarden.store._keyslot import keyslot_json, parse_keyslot
from pipewarden.store._media import guess_media_type
from pipewarden.store._records import (
    Artifact,
    ArtifactRef,
    Lineage,
    ParentRef,
    ScanVerdict,
    check_name,
)
from pipewarden.store._refusals import Refusal, read_refusals, record_refusal
from pipewarden.store._source import SourceReader, file_identity, observer

if TYPE_CHECKING:
    from pipewarden.scan import ScanPolicy

__all__ = ["ArtifactStore", "Refusal", "Reseal", "StoreVerification"]

logger = logging.getLogger(__name__)

_MAX_VERSION_RACES = 32


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True, slots=True)
class Reseal:
    """What `reseal` did: how many data keys it re-sealed, and the artifacts it could not."""

    resealed: int
    failures: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class StoreVerification:
    """The outcome of checking every version: `failures` maps `name@version` to what is wrong."""

    checked: int
    failures: tuple[tuple[str, str], ...]
    unreferenced: int

    @property
    def ok(self) -> bool:
        return not self.failures


class _Discard:
    def write(self, data: bytes) -> int:
        return len(data)


class ArtifactStore:
    """Named, versioned, encrypted and signed artifacts over one backend.

    >>> store = Workspace.open().store()
    >>> art = store.put("model.safetensors", name="bert", actor="alice")
    >>> store.get("bert@1", Path("out/model.safetensors"))   # verified before a byte is written
    """

    def __init__(
        self,
        backend: Backend,
        *,
        keyring: KeyRing,
        signing_key: SigningKey,
        trusted: TrustedKeys,
        scan_threshold: Severity = Severity.MEDIUM,
        scan_policy: ScanPolicy | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> None:
        self.backend = backend
        self.keyring = keyring
        self.signing_key = signing_key
        self.trusted = trusted
        self.scan_threshold = scan_threshold
        self.scan_policy = scan_policy
        self.chunk_size = chunk_size

    # -- writing ----------------------------------------------------------------------------------

    def put(
        self,
        path: str | os.PathLike[str],
        *,
        name: str,
        actor: str,
        parents: Sequence[str] = (),
        media_type: str | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> Artifact:
        """Scan, encrypt, sign and store a file as the next version of `name`; return its record.

        Raises `ArtifactRefused` (and records the refusal) if the scan finds
        anything at or above the store's threshold. `progress(done, total)` is
        called with byte counts as the body is written.
        """
        source = Path(path)
        check_name(name)
        try:
            before = source.stat()
        except OSError as exc:
            raise StoreError(f"{source}: cannot be read: {exc.strerror}") from None
        if not source.is_file():
            raise StoreError(f"{source}: not a regular file")
        try:
            with open(source, "rb"):
                pass
        except OSError as exc:
            raise StoreError(f"{source}: cannot be read: {exc.strerror}") from None
        pinned = tuple(self._pin_parent(p) for p in parents)
        verdict = self._scan(source, name=name, actor=actor)
        uid = secrets.token_hex(16)
        draft = Artifact(
            name=name,
            version=1,
            uid=uid,
            digest="0" * 64,
            size=0,
            media_type=media_type or guess_media_type(source),
            created_by=actor,
            created_at=_now(),
            parents=pinned,
            scan=verdict,
            chunk_size=self.chunk_size,
        )
        data_key = new_data_key()
        digest = hashlib.sha256()
        staging = f"staging/{uid}"
        try:
            with self.backend.writer(staging) as out, SourceReader(source) as fh:
                size = encrypt_stream(
                    fh,
                    out,
                    key=data_key,
                    context=draft.body_context(),
                    chunk_size=self.chunk_size,
                    observe=observer(digest, progress, before.st_size),
                )
            # The bytes stored must be the bytes scanned. Any write to the file, or a
            # file swapped in under the same name, changes its change time (ctime),
            # which its owner cannot set back, unlike the modification time.
            after = source.stat()
            if file_identity(after) != file_identity(before) or size != after.st_size:
                raise StoreError(
                    f"{source}: changed while it was being scanned or stored; nothing was stored, try again"
                )
            art = replace(draft, digest=digest.hexdigest(), size=size)
            self.backend.move(staging, art.body_key)
        except BaseException:
            with contextlib.suppress(PipewardenError):
                self.backend.delete(staging)
            raise
        return self._publish(art, data_key)

    def _publish(self, art: Artifact, data_key: bytes) -> Artifact:
        version = self._latest(art.name) + 1
        for _ in range(_MAX_VERSION_RACES):
            art = replace(art, version=version, previous=self._manifest_digest(art.name, version - 1))
            wrapped = self.keyring.wrap(data_key, context=art.key_context())
            self.backend.put(art.keyslot_key, keyslot_json(wrapped))
            envelope = sign_envelope(
                canonical_json(art.to_statement()), payload_type=_INTOTO, key=self.signing_key
            )
            try:
                self.backend.put(_manifest_key(art.name, version), envelope, exclusive=True)
            except ObjectExists:
                version += 1  # another writer took this version first; take the next
                continue
            logger.info("stored %s (%d bytes, sha256:%s)", art.ref, art.size, art.digest)
            return replace(art, signer=self.signing_key.keyid)
        raise StoreError(f"{art.name}: could not claim a version after {_MAX_VERSION_RACES} tries")

    def _manifest_digest(self, name: str, version: int) -> str | None:
        """SHA-256 of a version's manifest file, after checking its signature; None before version 1."""
        if version < 1:
            return None
        envelope = self._manifest_bytes(name, version)
        self._parse_manifest(name, version, envelope)
        return hashlib.sha256(envelope).hexdigest()

    def _pin_parent(self, text: str) -> ParentRef:
        parent = self.resolve(text)
        return ParentRef(name=parent.name, version=parent.version, digest=parent.digest)

    def _scan(self, source: Path, *, name: str, actor: str) -> ScanVerdict:
        from pipewarden.scan import scan_path

        report = scan_path(source, policy=self.scan_policy, assume_model=False)
        worst = report.max_severity
        verdict = ScanVerdict(
            scanned=True,
            max_severity=worst.label if worst is not None else None,
            findings=len(report.findings),
            threshold=self.scan_threshold.label,
        )
        blocking = report.at_or_above(self.scan_threshold)
        if blocking:
            record_refusal(
                self.backend,
                self.signing_key,
                source,
                name=name,
                actor=actor,
                threshold=self.scan_threshold,
                findings=blocking,
            )
            raise ArtifactRefused(
                f"{source}: refused as {name}: the scan found {len(blocking)} finding(s) at or above "
                f"{self.scan_threshold.label} (worst: {blocking[0].rule_id} {blocking[0].title})",
                report=report,
            )
        return verdict

    # -- reading ----------------------------------------------------------------------------------

    def versions(self, name: str) -> list[int]:
        check_name(name)
        prefix = f"artifacts/{name}/@"
        out = []
        for key in self.backend.iter_keys(prefix):
            tail = key[len(prefix) :]
            if tail.endswith(".json") and tail[:-5].isdigit():
                out.append(int(tail[:-5]))
        return sorted(out)

    def _latest(self, name: str) -> int:
        versions = self.versions(name)
        return versions[-1] if versions else 0

    def resolve(self, ref: str | ArtifactRef) -> Artifact:
        """The verified manifest of `NAME@VERSION` (or of the latest `NAME`); the body is not read."""
        r = ArtifactRef.parse(ref) if isinstance(ref, str) else ref
        version = r.version or self._latest(r.name)
        if not version:
            raise ArtifactNotFound(f"{r}: no such artifact in {self.backend.location}")
        return self._parse_manifest(r.name, version, self._manifest_bytes(r.name, version))

    def _manifest_bytes(self, name: str, version: int) -> bytes:
        try:
            return self.backend.get(_manifest_key(name, version))
        except ObjectNotFound:
            raise ArtifactNotFound(f"{name}@{version}: no such version in {self.backend.location}") from None

    def _parse_manifest(self, name: str, version: int, envelope: bytes) -> Artifact:
        """Check a manifest file's signature and that it describes the version it is stored as."""
        label = f"{name}@{version}"
        payload, signer = open_envelope(
            envelope, trusted=self.trusted, payload_type=_INTOTO, label=f"{label} manifest"
        )
        art = Artifact.from_statement(payload, signer=signer, label=f"{label} manifest")
        if (art.name, art.version) != (name, version):
            raise IntegrityError(f"{label}: manifest describes {art.ref}; it was moved from there")
        return art

    def _read_keyslot(self, art: Artifact) -> WrappedKey:
        label = f"{art.ref} keyslot"
        try:
            raw = self.backend.get(art.keyslot_key)
        except ObjectNotFound:
            raise IntegrityError(f"{label}: missing; the body cannot be opened") from None
        return parse_keyslot(raw, label=label)

    def _data_key(self, art: Artifact) -> bytes:
        wrapped = self._read_keyslot(art)
        try:
            return self.keyring.unwrap(wrapped, context=art.key_context(), label=f"{art.ref} keyslot")
        except KeyRingError as exc:
            # A slot naming a key this ring lacks, or a retired one: the artifact cannot be opened
            # and so cannot be verified, whether the slot or the ring is at fault.
            raise IntegrityError(str(exc)) from exc

    def _stream_verified(
        self, art: Artifact, sink: object, progress: Callable[[int, int], None] | None = None
    ) -> None:
        data_key = self._data_key(art)
        digest = hashlib.sha256()
        try:
            with self.backend.open(art.body_key) as body:
                size = decrypt_stream(
                    body,
                    sink if sink is not None else _Discard(),  # type: ignore[arg-type]
                    key=data_key,
                    expect_context=art.body_context(),
                    label=f"{art.ref} body",
                    observe=observer(digest, progress, art.size),
                    expect_chunk_size=art.chunk_size,
                )
        except ObjectNotFound:
            raise IntegrityError(f"{art.ref} body: missing from {self.backend.location}") from None
        if size != art.size or digest.hexdigest() != art.digest:
            raise IntegrityError(
                f"{art.ref} body: decrypts to {size} bytes with sha256:{digest.hexdigest()}, "
                f"but the signed manifest says {art.size} bytes with sha256:{art.digest}"
            )

    def get(
        self,
        ref: str | ArtifactRef,
        dest: str | os.PathLike[str],
        *,
        progress: Callable[[int, int], None] | None = None,
    ) -> Artifact:
        """Verify an artifact end to end and only then write it to `dest` (atomically)."""
        art = self.resolve(ref)
        target = Path(dest)
        if target.is_dir():
            example = target / art.name.rsplit("/", 1)[-1]
            raise StoreError(f"{target}: is a folder; give the file to write, such as {example}")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
        except OSError as exc:
            raise StoreError(f"{target}: cannot write here: {exc.strerror}") from None
        try:
            with os.fdopen(fd, "wb") as out:
                self._stream_verified(art, out, progress)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        return art

    def read_bytes(self, ref: str | ArtifactRef) -> bytes:
        """A small artifact's verified bytes, in memory."""
        art = self.resolve(ref)
        chunks: list[bytes] = []

        class _Collect:
            def write(self, data: bytes) -> int:
                chunks.append(data)
                return len(data)

        self._stream_verified(art, _Collect())
        return b"".join(chunks)

    def names(self) -> list[str]:
        out = set()
        for key in self.backend.iter_keys("artifacts/"):
            head, sep, _ = key[len("artifacts/") :].rpartition("/@")
            if sep:
                out.add(head)
        return sorted(out)

    def artifacts(self, name: str | None = None) -> list[Artifact]:
        """Every version (of one name, or all), each manifest's signature verified."""
        if name is not None and not self.versions(name):
            raise ArtifactNotFound(f"{name}: no such artifact in {self.backend.location}")
        names = [name] if name is not None else self.names()
        return [self.resolve(ArtifactRef(n, v)) for n in names for v in self.versions(n)]

    def verify(self, name: str | None = None) -> StoreVerification:
        """Check every version end to end; never stops at the first failure."""
        failures: list[tuple[str, str]] = []
        checked = 0
        referenced: set[str] = set()
        names = [name] if name is not None else self.names()
        if name is not None and not self.versions(name):
            raise ArtifactNotFound(f"{name}: no such artifact in {self.backend.location}")
        for n in names:
            versions = self.versions(n)
            failures.extend(
                (
                    f"{n}@{v}",
                    f"{n}@{v}: missing; versions are never deleted, so it was removed from the store",
                )
                for v in sorted(set(range(1, versions[-1] + 1)) - set(versions))
            )
            digests: dict[int, str] = {}  # each manifest file's SHA-256, read once
            for v in versions:
                checked += 1
                ref = f"{n}@{v}"
                try:
                    envelope = self._manifest_bytes(n, v)
                    digests[v] = hashlib.sha256(envelope).hexdigest()
                    art = self._parse_manifest(n, v, envelope)
                    referenced.update({art.body_key, art.keyslot_key})
                    self._check_chain(art, digests)
                    self._stream_verified(art, None)
                except (IntegrityError, KeyRingError, StoreError) as exc:
                    failures.append((ref, str(exc)))
        unreferenced = 0
        if name is None:
            for prefix in ("staging/", "blobs/", "keyslots/"):
                unreferenced += sum(1 for k in self.backend.iter_keys(prefix) if k not in referenced)
        return StoreVerification(checked=checked, failures=tuple(failures), unreferenced=unreferenced)

    @staticmethod
    def _check_chain(art: Artifact, digests: dict[int, str]) -> None:
        """A version's manifest names the exact manifest file of the version before it."""
        actual = digests.get(art.version - 1)
        if art.previous is None or actual is None:
            return
        if actual != art.previous:
            raise IntegrityError(
                f"{art.ref}: the manifest of {art.name}@{art.version - 1} is not the one this version was "
                "written after; it was replaced"
            )

    def lineage(self, ref: str | ArtifactRef) -> Lineage:
        """The artifact and its parents, recursively; each parent's digest must be the one pinned."""
        return self._lineage(self.resolve(ref), seen=())

    def _lineage(self, art: Artifact, *, seen: tuple[str, ...]) -> Lineage:
        if art.ref in seen:
            raise IntegrityError(f"{art.ref}: lineage loops back to itself")
        parents = []
        for p in art.parents:
            parent = self.resolve(ArtifactRef(p.name, p.version))
            if parent.digest != p.digest:
                raise IntegrityError(
                    f"{art.ref}: parent {p} has sha256:{parent.digest}, not the pinned {p.digest}"
                )
            parents.append(self._lineage(parent, seen=(*seen, art.ref)))
        return Lineage(artifact=art, parents=tuple(parents))

    def refusals(self) -> list[Refusal]:
        """Every refusal record, each signature checked."""
        return read_refusals(self.backend, self.trusted)

    # -- keys -------------------------------------------------------------------------------------

    def key_usage(self) -> dict[str, int]:
        """How many artifacts' data keys each KEK seals."""
        usage: dict[str, int] = {}
        for art in self.artifacts():
            kek_id = self._read_keyslot(art).kek_id
            usage[kek_id] = usage.get(kek_id, 0) + 1
        return usage

    def reseal(self) -> Reseal:
        """Re-seal every data key not under the current KEK; bodies are not touched.

        Goes on past an artifact that fails (its manifest or key slot does not
        verify) and reports it, so one damaged artifact never blocks rotation.
        """
        current = self.keyring.current_id
        count = 0
        failures: list[tuple[str, str]] = []
        for n in self.names():
            for v in self.versions(n):
                ref = f"{n}@{v}"
                try:
                    art = self.resolve(ArtifactRef(n, v))
                    wrapped = self._read_keyslot(art)
                    if wrapped.kek_id == current:
                        continue
                    data_key = self.keyring.unwrap(wrapped, context=art.key_context(), label=f"{ref} keyslot")
                    rewrapped = keyslot_json(self.keyring.wrap(data_key, context=art.key_context()))
                    self.backend.put(art.keyslot_key, rewrapped)
                    count += 1
                except (IntegrityError, KeyRingError, StoreError) as exc:
                    failures.append((ref, str(exc)))
        logger.info("re-sealed %d data key(s) under %s; %d failed", count, current, len(failures))
        return Reseal(resealed=count, failures=tuple(failures))

    def retire_key(self, kek_id: str) -> None:
        """Retire a KEK, refusing while any artifact's data key is still sealed under it."""
        users = self.key_usage().get(kek_id, 0)
        if users:
            raise KeyRingError(
                f"{kek_id}: still seals the data keys of {users} artifact(s); run 'pipewarden keys rotate' "
                "or 'pipewarden keys reseal' first"
            )
        self.keyring.retire(kek_id)


def _manifest_key(name: str, version: int) -> str:
    return f"artifacts/{name}/@{version}.json"
