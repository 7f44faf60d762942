"""The format-scanner interface: one implementation per serialization format."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

from pipewarden.errors import ScanError

if TYPE_CHECKING:
    from pipewarden.scan._context import ScanContext
    from pipewarden.scan._engine import Engine
    from pipewarden.scan._input import Input

__all__ = ["FormatError", "FormatScanner"]


class FormatError(ScanError):
    """The file does not follow its format; reported as a malformed-file finding."""

    def __init__(self, message: str, *, offset: int | None = None) -> None:
        super().__init__(message)
        self.offset = offset


class FormatScanner(ABC):
    """Recognises one format by content and reports what it finds in it."""

    #: short name shown in reports ("pickle", "pytorch-zip", ...)
    name: str

    @abstractmethod
    def sniff(self, head: bytes, inp: Input) -> bool:
        """True if `inp` (whose first bytes are `head`) is in this format."""

    @abstractmethod
    def scan(self, inp: Input, ctx: ScanContext, member: str | None, engine: Engine, depth: int) -> None:
        """Add findings for `inp` to `ctx`; raise `FormatError` for malformed input."""


def child(member: str | None, name: str) -> str:
    """The member path of `name` inside `member` (nested containers joined with '!')."""
    return f"{member}!{name}" if member else name
