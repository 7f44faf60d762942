"""Static checks of Jinja templates (chat templates in GGUF and tokenizer configs)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pipewarden.scan._context import ScanContext

__all__ = ["check_template"]

# Attributes that lead from any value to Python's internals (frames, code,
# module globals) in sandbox escapes, besides every name starting with "_".
_INTERNAL_ATTRS = frozenset(
    {
        "mro",
        "func_globals",
        "func_code",
        "f_globals",
        "f_locals",
        "f_back",
        "f_builtins",
        "gi_frame",
        "gi_code",
        "cr_frame",
        "cr_code",
        "ag_frame",
        "tb_frame",
        "tb_next",
        "co_code",
        "im_func",
        "im_self",
        "environ",
        "popen",
        "system",
        "import_module",
    }
)
_FORBIDDEN_GLOBALS = frozenset({"lipsum", "cycler", "joiner", "self", "config", "request", "url_for"})


def check_template(
    source: str, ctx: ScanContext, *, member: str | None, offset: int | None, key: str
) -> None:
    """Parse (never render) a template and report constructs that reach Python internals."""
    from jinja2 import nodes  # imported here: most scans meet no template
    from jinja2.exceptions import TemplateSyntaxError
    from jinja2.sandbox import SandboxedEnvironment

    env = SandboxedEnvironment()
    try:
        tree = env.parse(source)
    except TemplateSyntaxError as exc:
        ctx.add(
            "PW-SCAN-309",
            member=member,
            offset=offset,
            message=f"{key}: Jinja cannot parse the template (line {exc.lineno}: {exc.message})",
            evidence={"key": key},
        )
        return
    reasons: list[str] = []
    for node in tree.find_all(
        (
            nodes.Getattr,
            nodes.Getitem,
            nodes.Filter,
            nodes.Name,
            nodes.Import,
            nodes.FromImport,
            nodes.Include,
            nodes.Extends,
        )
    ):
        if isinstance(node, nodes.Getattr):
            if node.attr.startswith("_") or node.attr in _INTERNAL_ATTRS:
                reasons.append(f"attribute {node.attr!r}")
        elif isinstance(node, nodes.Getitem):
            arg = node.arg
            if (
                isinstance(arg, nodes.Const)
                and isinstance(arg.value, str)
                and (arg.value.startswith("_") or arg.value in _INTERNAL_ATTRS)
            ):
                reasons.append(f"item {arg.value!r}")
        elif isinstance(node, nodes.Filter):
            if node.name == "attr":
                first = node.args[0] if node.args else None
                if not isinstance(first, nodes.Const):
                    reasons.append("attr filter with a computed name")
                elif isinstance(first.value, str) and (
                    first.value.startswith("_") or first.value in _INTERNAL_ATTRS
                ):
                    reasons.append(f"attr filter {first.value!r}")
        elif isinstance(node, nodes.Name):
            if node.name in _FORBIDDEN_GLOBALS or node.name.startswith("__"):
                reasons.append(f"global {node.name!r}")
        else:
            reasons.append(f"{type(node).__name__.lower()} of another template")
    if reasons:
        unique = sorted(set(reasons))
        ctx.add(
            "PW-SCAN-308",
            member=member,
            offset=offset,
            message=f"{key}: template reaches for " + ", ".join(unique[:8]),
            evidence={"key": key, "constructs": unique[:20]},
        )
