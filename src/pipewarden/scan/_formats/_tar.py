"""tar archives (and the legacy PyTorch tar layout), recursed member by member."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipewarden.scan._formats._interface import FormatError, FormatScanner, child
from pipewarden.scan._formats._torch import scan_torch_tar
from pipewarden.scan._formats._zip import escapes_folder
from pipewarden.scan._input import Input, WindowInput

if TYPE_CHECKING:
    from pipewarden.scan._context import ScanContext
    from pipewarden.scan._engine import Engine


class TarScanner(FormatScanner):
    name = "tar"

    def sniff(self, head: bytes, inp: Input) -> bool:
        if inp.size < 512:
            return False
        block = inp.head(512)
        return block[257:262] == b"ustar" or (len(block) == 512 and _v7_checksum_ok(block))

    def scan(self, inp: Input, ctx: ScanContext, member: str | None, engine: Engine, depth: int) -> None:
        import tarfile  # imported on use: most scans meet no tar

        ctx.formats.add("tar")
        entries: dict[str, WindowInput] = {}
        with inp.open() as f:
            try:
                with tarfile.open(fileobj=f, mode="r:") as tar:
                    for info in tar:
                        ctx.check_time()
                        ctx.count_member()
                        where = child(member, info.name)
                        if escapes_folder(info.name) or (
                            (info.islnk() or info.issym()) and escapes_folder(info.linkname)
                        ):
                            ctx.add(
                                "PW-SCAN-204",
                                member=where,
                                message="member (or the link it makes) leaves the extraction folder",
                                evidence={"name": info.name, "link": info.linkname or None},
                            )
                        if info.issym() or info.islnk():
                            ctx.add(
                                "PW-SCAN-210",
                                member=where,
                                message=f"member is a link to {info.linkname!r}",
                                evidence={"link": info.linkname},
                            )
                            continue
                        if info.isfile():
                            entries[info.name] = WindowInput(inp, info.offset_data, info.size)
            except tarfile.TarError as exc:
                raise FormatError(f"tar archive cannot be read: {exc}") from None
        if scan_torch_tar(lambda name: entries[name], set(entries), ctx, member):
            return
        for name, data in entries.items():
            engine.scan_input(data, ctx, child(member, name), depth + 1, expected_model=False)


def _v7_checksum_ok(block: bytes) -> bool:
    """Old (v7) tar headers have no magic; a valid checksum and name are the tell."""
    try:
        stored = int(block[148:156].split(b"\0", 1)[0].strip() or b"-1", 8)
    except ValueError:
        return False
    computed = sum(block[:148]) + 8 * 32 + sum(block[156:])
    return stored == computed and block[0] != 0
