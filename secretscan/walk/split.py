"""One big layer on several cores: an uncompressed layer in a local file is cut at member
boundaries into pieces that workers scan side by side, and the pieces' results are merged back
into the layer's result.

A real image often has one layer that holds most of its files (``npm ci`` writes 70,000), and a
layer per worker left that worker alone with it. Pieces need member boundaries, and a tar has no
index: the headers are walked once, seeking past each member's data (512 bytes read per member),
and cuts are made only before a member whose extended headers (PAX, GNU long names) are all its
own. Anything unusual (a header that does not check out, a PAX global header whose settings would
not reach the later pieces, more members than the walk is allowed) and the layer is not cut.
The layer's digest is still taken over all its bytes, in a task of its own.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import BinaryIO

from secretscan.provenance.index import listed_content
from secretscan.provenance.model import LayerPackages
from secretscan.provenance.packages import SHARED
from secretscan.walk.fate import LayerPaths
from secretscan.walk.layer import LayerResult

MIN_PIECE = 48 * 1024 * 1024
"""About the size of a piece; layers smaller than two are not cut."""
MAX_PARTS = 32
MAX_HEADERS = 2_000_000
"""Headers walked to find the cuts; a layer with more members is scanned whole."""
_BLOCK = 512
_EXTENDED = (b"x", b"L", b"K")
"""A PAX header, a GNU long name or long link name: they describe the member after them."""
_NOT_CUTTABLE = (b"g", b"V", b"M")
"""PAX global header (applies to all later members), volume label, multi-volume continuation."""


@dataclass(frozen=True, slots=True)
class Piece:
    layer: int
    """Position of the layer in the image's layer list."""
    start: int = 0
    end: int | None = None
    """Stored bytes [start, end); ``end`` None with ``start`` 0: the whole layer, as usual."""
    digest_only: bool = False
    """Only the layer's digest, over all its bytes (the pieces cannot give it)."""

    @property
    def whole(self) -> bool:
        return self.end is None and not self.digest_only


def cut_points(stream: BinaryIO, size: int, parts: int) -> list[int]:
    """Offsets of member boundaries near ``size * k / parts`` (k = 1 .. parts-1), ascending; []
    when the layer should not be cut. ``stream`` reads the stored (uncompressed) layer and seeks."""
    targets = [size * k // parts for k in range(1, parts)]
    cuts: list[int] = []
    pos = 0
    member_start = 0
    for _ in range(MAX_HEADERS):
        if not targets:
            return cuts
        if pos + _BLOCK > size:
            return cuts
        stream.seek(pos)
        header = stream.read(_BLOCK)
        if len(header) < _BLOCK or not header.strip(b"\0"):
            return cuts  # end of archive
        length = _checked_size(header)
        kind = header[156:157]
        if length is None or kind in _NOT_CUTTABLE:
            return []
        pos += _BLOCK + -(-length // _BLOCK) * _BLOCK
        if kind in _EXTENDED:
            continue  # belongs to the member whose header follows
        if member_start >= targets[0] and member_start > (cuts[-1] if cuts else 0):
            cuts.append(member_start)
            while targets and targets[0] <= member_start:
                targets.pop(0)
        member_start = pos
    return []


def _checked_size(header: bytes) -> int | None:
    """The member's data size, if the header's checksum holds (None: not a header we trust)."""
    try:
        stored = int(header[148:156].split(b"\0", 1)[0].strip() or b"-1", 8)
    except ValueError:
        return None
    computed = sum(header[:148]) + 8 * 32 + sum(header[156:])
    if stored != computed:
        return None
    field = header[124:136]
    if field[0] & 0x80:  # base-256 (GNU): big sizes
        if field[0] != 0x80:
            return None
        return int.from_bytes(field[1:], "big")
    try:
        return int(field.split(b"\0", 1)[0].strip() or b"0", 8)
    except ValueError:
        return None


def plan(sizes: Sequence[int | None], cuttable: Sequence[bool], workers: int) -> list[tuple[int, int]]:
    """(layer position, parts) for the layers worth cutting: every layer of at least two
    ``MIN_PIECE`` is cut into pieces of about that size, so that workers that take the next piece
    as they finish stay busy to the end (bytes are a poor measure of work: 70,000 small files take
    longer than one big one)."""
    if workers <= 1:
        return []
    return [
        (i, min(MAX_PARTS, size // MIN_PIECE))
        for i, (size, ok) in enumerate(zip(sizes, cuttable, strict=True))
        if ok and size and size >= 2 * MIN_PIECE
    ]


def layer_digest(stream: BinaryIO) -> str:
    h = hashlib.sha256()
    while chunk := stream.read(1 << 20):
        h.update(chunk)
    return "sha256:" + h.hexdigest()


def merge(pieces: Sequence[LayerResult], digest: str | None) -> LayerResult:
    """The layer's result from its pieces' (in layer order)."""
    merged = LayerResult(stored_digest=digest, compression="none")
    merged.paths = LayerPaths()
    sizes: dict[str, int] = {}
    packages = LayerPackages()
    for piece in pieces:
        merged.matches.extend(piece.matches)
        merged.paths.present.update(piece.paths.present)
        merged.paths.whiteouts |= piece.paths.whiteouts
        merged.paths.opaque_dirs |= piece.paths.opaque_dirs
        merged.hardlinks.extend(piece.hardlinks)
        merged.skipped.extend(piece.skipped)
        if piece.error and merged.error is None:
            merged.error = piece.error
        merged.files += piece.files
        merged.bytes += piece.bytes
        merged.facts.update(piece.facts)
        merged.secrets.update(piece.secrets)
        sizes.update(piece.sizes)
        _merge_packages(packages, piece.packages)
    merged.packages = packages
    merged.package_files, merged.package_bytes = listed_content(packages, sizes)
    return merged


def _merge_packages(into: LayerPackages, piece: LayerPackages) -> None:
    offset = len(into.packages)
    into.packages.extend(piece.packages)
    for path, (index, digest) in piece.files.items():
        if digest or path not in into.files:
            into.files[path] = (index + offset, digest)
    for root, index in piece.roots.items():
        moved = SHARED if index == SHARED else index + offset
        into.roots[root] = moved if into.roots.get(root, moved) == moved else SHARED
    into.root_mtimes.update(piece.root_mtimes)
    into.versions.update(piece.versions)
    for directory, index in piece.owned_dirs.items():
        into.owned_dirs.setdefault(directory, index + offset)
