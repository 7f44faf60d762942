"""An audit-hook watch (PEP 578) for "the scanner never runs what it inspects".

Audit hooks cannot be removed, so `install()` adds one hook per process and
it does nothing unless a `watching()` block is active. Inside the block it
records every event that would mean the scanner ran, imported or loaded
something chosen by its input: a process or shell, code compiled or executed,
a native library, `pickle.find_class`, a network connection or an import of a
module the scanner does not use itself.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["install", "watching"]

# Event names, or prefixes ending with a dot (see the audit events table of the
# Python documentation).
_FORBIDDEN = (
    "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty", "os.startfile",
    "subprocess.Popen", "pty.spawn", "ctypes.", "builtins.input", "pickle.find_class",
    "marshal.load", "webbrowser.open", "socket.", "urllib.Request", "exec", "compile", "import",
)  # fmt: skip

# Packages the scanner imports lazily for its own readers. A caller warms them
# up before watching; this list is the backstop for rarely reached corners.
# unicodedata: Python's parser imports it to normalise non-ASCII identifiers
# (ast.literal_eval of an npy header).
_OWN_PACKAGES = frozenset(
    {"pipewarden", "encodings", "h5py", "py7zr", "lz4", "jinja2", "markupsafe", "unicodedata"}
)

# Callers of compile()/exec() that run nothing the input chose: ast.parse only
# builds a syntax tree (npy headers, TorchScript code), and Jinja, on a
# template syntax error, compiles and runs the fixed line
# "raise __jinja_exception__" to give the exception a frame at the template's
# line (jinja2/debug.py, fake_traceback).
_HARMLESS_CALLERS = (
    (f"{os.sep}ast.py", "parse"),
    (f"{os.sep}jinja2{os.sep}debug.py", "fake_traceback"),
)


class _Watch:
    def __init__(self) -> None:
        self.armed = False
        self.busy = False
        self.events: list[str] = []
        self.modules: set[str] = set()

    def __call__(self, event: str, args: tuple[object, ...]) -> None:
        if not self.armed or self.busy or not event.startswith(_FORBIDDEN):
            return
        # sys._getframe and frame attributes raise audit events of their own.
        self.busy = True
        try:
            if event in ("compile", "exec") and _harmless_caller():
                return
            if event in ("exec", "marshal.loads") and _inside_import_machinery():
                return  # a module body or .pyc: the import itself is judged below
            if event == "import" and _own(str(args[0])):
                return
            self.events.append(f"{event} {str(args[:1])[:200]}")
        except Exception as exc:  # a hook that raises would change the scan under test
            self.events.append(f"{event} (the watch failed: {exc!r})")
        finally:
            self.busy = False


def _own(module: str) -> bool:
    return module.split(".")[0] in _OWN_PACKAGES


def _harmless_caller() -> bool:
    # 0: this helper, 1: the hook, 2: the Python function that called compile() or exec()
    code = sys._getframe(2).f_code
    return any(code.co_filename.endswith(path) and code.co_name == fn for path, fn in _HARMLESS_CALLERS)


def _inside_import_machinery() -> bool:
    frame = sys._getframe(2)
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib"):
            return True
        frame = frame.f_back  # type: ignore[assignment]
    return False


_WATCH = _Watch()
_installed = False


def install() -> None:
    """Add the hook to this process (once; later calls do nothing)."""
    global _installed
    if not _installed:
        sys.addaudithook(_WATCH)
        _installed = True


@contextmanager
def watching() -> Iterator[list[str]]:
    """Record forbidden events raised inside the block into the list it yields.

    importlib.import_module raises no "import" event, so modules that appear in
    `sys.modules` during the block are recorded too.
    """
    install()
    if _WATCH.armed:
        raise RuntimeError("watching() blocks do not nest")
    events: list[str] = []
    if len(sys.modules) != len(_WATCH.modules):
        _WATCH.modules = set(sys.modules)
    _WATCH.events = events
    _WATCH.armed = True
    try:
        yield events
    finally:
        _WATCH.armed = False
        if len(sys.modules) != len(_WATCH.modules):
            new = set(sys.modules) - _WATCH.modules
            events += [f"new module {m}" for m in sorted(new) if not _own(m)]
