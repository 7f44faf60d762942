"""Report renderers, one per output format, imported when first asked for."""

from __future__ import annotations

from importlib import import_module

from pipewarden.errors import ConfigError
from pipewarden.findings._renderers._interface import Renderer

__all__ = ["FORMATS", "Renderer", "get_renderer"]

FORMATS: tuple[str, ...] = ("text", "json", "sarif", "html")

_CLASSES = {
    "text": ("_text", "TextRenderer"),
    "json": ("_json", "JsonRenderer"),
    "sarif": ("_sarif", "SarifRenderer"),
    "html": ("_html", "HtmlRenderer"),
}


def get_renderer(fmt: str, *, color: bool = False) -> Renderer:
    """The renderer for `fmt`; `ConfigError` names the format if it is unknown."""
    try:
        module_name, class_name = _CLASSES[fmt]
    except KeyError:
        raise ConfigError(f"{fmt!r}: unknown report format (expected one of {', '.join(FORMATS)})") from None
    cls: type[Renderer] = getattr(import_module(f"{__name__}.{module_name}"), class_name)
    if fmt == "text":
        return cls(color=color)  # type: ignore[call-arg]
    return cls()
