"""Types of the compiled tar header reader (headers.pyx)."""

from typing_extensions import Buffer

def plain_entry(buf: Buffer, at: int, long_name: bytes | None = None) -> tuple[str, bool, int, int, int] | None: ...
def skip_plain(
    buf: Buffer,
    at: int,
    limit: int,
    name_endings: tuple[bytes, ...],
    name_parts: tuple[bytes, ...],
    sizes: dict[bytes, int] | None = None,
) -> tuple[int, int]: ...
def pax_path_entry(buf: Buffer, at: int) -> tuple[tuple[str, bool, int, int, int], int] | None: ...
def pass_members(buf: Buffer, at: int, most: int, members: object) -> tuple[int, int, int]: ...
