"""What a store backend is: a flat namespace of objects with atomic, all-or-nothing writes.

Keys are POSIX-style relative paths (``artifacts/bert/@3.json``). The store
above decides what the objects mean; a backend only promises:

- an object becomes visible whole or not at all (`writer` commits on success,
  leaves nothing visible on failure or crash);
- `put(exclusive=True)` fails with `ObjectExists` when the key exists, atomically,
  which is what makes versions immutable when two writers race;
- reads stream, so a body of any size needs bounded memory.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import BinaryIO, Protocol

from pipewarden.errors import StoreError

__all__ = ["Backend", "BackendError", "ObjectExists", "ObjectNotFound", "ObjectWriter", "check_key"]

_KEY = re.compile(r"^[A-Za-z0-9_@.+-]+(/[A-Za-z0-9_@.+-]+)*$")


class BackendError(StoreError):
    """A backend could not read or write an object (I/O, permissions, the service)."""


class ObjectNotFound(BackendError):
    """No object under that key."""


class ObjectExists(BackendError):
    """An exclusive write found the key taken."""


class ObjectWriter(Protocol):
    def write(self, data: bytes, /) -> object: ...


def check_key(key: str) -> str:
    """Refuse keys that could escape the backend's root or mean different things on different backends."""
    if not _KEY.match(key) or any(part in {".", ".."} for part in key.split("/")):
        raise BackendError(f"{key!r} is not a valid object key")
    return key


class Backend(ABC):
    """Object storage under one root: a local folder or an S3 bucket and prefix."""

    #: Where the objects live, for messages (a folder, ``s3://bucket/prefix``).
    location: str

    @abstractmethod
    def writer(self, key: str) -> AbstractContextManager[ObjectWriter]:
        """Stream an object in; it appears under `key` only when the block exits without error."""

    @abstractmethod
    def put(self, key: str, data: bytes, *, exclusive: bool = False) -> None:
        """Write a small object atomically; with `exclusive`, `ObjectExists` if the key is taken."""

    @abstractmethod
    def get(self, key: str) -> bytes:
        """A small object's bytes; `ObjectNotFound` if absent."""

    @abstractmethod
    def open(self, key: str) -> AbstractContextManager[BinaryIO]:
        """A large object as a stream with `read(n)`; `ObjectNotFound` if absent."""

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    @abstractmethod
    def iter_keys(self, prefix: str) -> Iterator[str]:
        """Every key that starts with `prefix`, in lexical order."""

    @abstractmethod
    def move(self, source: str, target: str) -> None:
        """Make `source`'s object appear under `target` (atomically) and remove `source`."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove an object; absent is not an error."""
