"""JSON side files of model folders: tokenizer configs carry Jinja chat templates."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from pipewarden.scan._formats._interface import FormatScanner
from pipewarden.scan._formats._jinja import check_template

if TYPE_CHECKING:
    from pipewarden.scan._context import ScanContext
    from pipewarden.scan._engine import Engine
    from pipewarden.scan._input import Input


#: JSON configs and tokenizer files are small; a larger '{...' file is not read whole to sniff it.
_MAX_SNIFF = 16 << 20


def _document(inp: Input) -> dict[str, Any] | None:
    """The input parsed as a JSON object, or None; parsed once, as sniffing and scanning both need it."""
    if "_json_document" not in inp.__dict__:
        try:
            doc = json.loads(inp.read_all().decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
            doc = None
        inp.__dict__["_json_document"] = doc if isinstance(doc, dict) else None
    cached: dict[str, Any] | None = inp.__dict__["_json_document"]
    return cached


class JsonScanner(FormatScanner):
    name = "json"

    def sniff(self, head: bytes, inp: Input) -> bool:
        # Bytes that merely start like JSON (a length prefix whose low byte is '{', say)
        # are not JSON: only a document that parses is one, so that anything else
        # named as a model stays an unknown format.
        if not (head.lstrip()[:1] == b"{" and b'"' in head) or inp.size > _MAX_SNIFF:
            return False
        return _document(inp) is not None

    def scan(self, inp: Input, ctx: ScanContext, member: str | None, engine: Engine, depth: int) -> None:
        if inp.size > ctx.limits.max_header_bytes:
            return
        doc = _document(inp)
        if doc is None:
            return  # not a JSON object after all: nothing a loader would run
        ctx.formats.add("json")
        template = doc.get("chat_template")
        if isinstance(template, str):
            check_template(template, ctx, member=member, offset=None, key="chat_template")
        elif isinstance(template, list):
            for item in template:
                if isinstance(item, dict) and isinstance(item.get("template"), str):
                    check_template(
                        item["template"],
                        ctx,
                        member=member,
                        offset=None,
                        key=f"chat_template[{item.get('name')!s}]",
                    )
