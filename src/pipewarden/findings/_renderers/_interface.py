"""The renderer interface: one implementation per output format."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pipewarden.findings._model import Report

__all__ = ["Renderer"]


class Renderer(ABC):
    """Turns a `Report` into the text of one output format."""

    #: the name users pass to ``--format``
    name: str
    #: a file suffix for ``--output`` defaults and downloads
    suffix: str

    @abstractmethod
    def render(self, report: Report) -> str:
        """The whole document for `report`."""
