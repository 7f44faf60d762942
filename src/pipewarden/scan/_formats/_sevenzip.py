"""7z archives, through the optional py7zr dependency (``pipewarden[7z]``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipewarden.scan._formats._interface import FormatError, FormatScanner, child
from pipewarden.scan._formats._zip import escapes_folder
from pipewarden.scan._input import BytesInput, Input

if TYPE_CHECKING:
    from pipewarden.scan._context import ScanContext
    from pipewarden.scan._engine import Engine

_MAGIC = b"7z\xbc\xaf\x27\x1c"


class SevenZipScanner(FormatScanner):
    name = "7z"

    def sniff(self, head: bytes, inp: Input) -> bool:
        return head[:6] == _MAGIC

    def scan(self, inp: Input, ctx: ScanContext, member: str | None, engine: Engine, depth: int) -> None:
        ctx.formats.add("7z")
        try:
            import py7zr
        except ImportError:
            ctx.add(
                "PW-SCAN-207",
                member=member,
                message="7z archive, but py7zr is not installed (pip install 'pipewarden[7z]'): not checked",
            )
            return
        try:
            with inp.open() as f, py7zr.SevenZipFile(f, mode="r") as archive:
                infos = archive.list()
                total = sum(i.uncompressed or 0 for i in infos)
                if total > ctx.limits.max_decompressed_bytes - ctx.decompressed:
                    ctx.add(
                        "PW-SCAN-206",
                        member=member,
                        message=f"7z archive expands to {total} bytes, over the decompression limit",
                    )
                    return
                for info in infos:
                    ctx.count_member()
                    where = child(member, info.filename)
                    if escapes_folder(info.filename):
                        ctx.add(
                            "PW-SCAN-204",
                            member=where,
                            message="member leaves the extraction folder",
                        )
                    if getattr(info, "is_symlink", False):
                        ctx.add("PW-SCAN-210", member=where, message="member is a symbolic link")
                names = [
                    i.filename for i in infos if not i.is_directory and not getattr(i, "is_symlink", False)
                ]
                # One member at a time, into memory capped at the remaining decompression budget.
                from py7zr.io import BytesIOFactory

                for name in names:
                    ctx.check_time()
                    archive.reset()
                    factory = BytesIOFactory(
                        limit=max(1, ctx.limits.max_decompressed_bytes - ctx.decompressed)
                    )
                    archive.extract(targets=[name], factory=factory)
                    product = factory.products.get(name)
                    if product is None:
                        raise FormatError(f"{name}: member could not be extracted")
                    product.seek(0)
                    data = product.read()
                    ctx.count_decompressed(len(data))
                    engine.scan_input(
                        BytesInput(data), ctx, child(member, name), depth + 1, expected_model=False
                    )
        except (
            py7zr.exceptions.Bad7zFile,
            py7zr.exceptions.UnsupportedCompressionMethodError,
            py7zr.exceptions.PasswordRequired,
            py7zr.exceptions.ArchiveError,
            py7zr.exceptions.DecompressionError,
            py7zr.exceptions.CrcError,
            OSError,
            ValueError,
            EOFError,
        ) as exc:
            raise FormatError(f"7z archive cannot be read: {exc}") from None
