"""Report renderers, one per output format."""

from __future__ import annotations

from pipewarden.errors import ConfigError
from pipewarden.findings._renderers._html import HtmlRenderer
from pipewarden.findings._renderers._interface import Renderer
from pipewarden.findings._renderers._json import JsonRenderer
from pipewarden.findings._renderers._sarif import SarifRenderer
from pipewarden.findings._renderers._text import TextRenderer

__all__ = ["FORMATS", "Renderer", "get_renderer"]

FORMATS: tuple[str, ...] = ("text", "json", "sarif", "html")


def get_renderer(fmt: str, *, color: bool = False) -> Renderer:
    """The renderer for `fmt`; `ConfigError` names the format if it is unknown."""
    if fmt == "text":
        return TextRenderer(color=color)
    renderers: dict[str, type[Renderer]] = {
        "json": JsonRenderer,
        "sarif": SarifRenderer,
        "html": HtmlRenderer,
    }
    try:
        return renderers[fmt]()
    except KeyError:
        raise ConfigError(f"{fmt!r}: unknown report format (expected one of {', '.join(FORMATS)})") from None
