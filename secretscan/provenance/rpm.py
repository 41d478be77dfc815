"""rpm's database: ``rpmdb.sqlite`` (Fedora, RHEL and UBI 9, Amazon Linux 2023) and the Berkeley DB
``Packages`` file (RHEL and UBI 8, CentOS 7, Amazon Linux 2).

Either holds one rpm header per installed package (SQLite: table ``Packages``, column ``blob``;
Berkeley DB: the values of a hash database). A header is an index of (tag, type, offset, count)
entries over a data store, all big-endian; the tags read here give the package's name, version and
release, and per file its directory, base name and digest (``FILEDIGESTALGO``: MD5, SHA-1 or
SHA-256).

Both are the image's claims, never trusted. The SQLite file is opened in memory (``sqlite3``
deserialises the bytes; nothing is written to disk): the schema must hold a ``Packages`` table and
the query may do a bounded number of steps. rpm keeps it in WAL mode; the copy in memory is switched
to rollback mode to open it, and what only the ``-wal`` file holds (changes not yet checkpointed:
rpm checkpoints when it closes the database) is not read. The Berkeley DB file is read page by page
here (its format: a metadata page, hash pages of key/value items, values too big for a page on
chains of overflow pages), each page and each chain visited at most once. Every header is checked
against its own length before a field is read. SUSE's ``Packages.db`` (ndb) is not read.
"""

from __future__ import annotations

import sqlite3
import struct
from collections.abc import Iterator

from secretscan.provenance.model import NO_DIGEST, Manager
from secretscan.provenance.packages import PackageTable

RPMDB_SQLITE = ("/var/lib/rpm/rpmdb.sqlite", "/usr/lib/sysimage/rpm/rpmdb.sqlite")
"""Fedora 36 and later keep the database under ``/usr/lib/sysimage``, ``/var/lib/rpm`` linking there."""
RPMDB_BDB = ("/var/lib/rpm/Packages", "/usr/lib/sysimage/rpm/Packages")

MAX_HEADERS = 100_000
MAX_ENTRIES = 10_000
"""Index entries in one header (a package has a few hundred tags at most)."""
_STEPS_PER_BYTE = 4
"""SQLite virtual-machine steps allowed per byte of the database: reading every row of a table is
a few steps per row; a schema crafted to loop (a view, a recursive query) is cut off."""

_NAME, _VERSION, _RELEASE = 1000, 1001, 1002
_FILEDIGESTS, _FILEFLAGS = 1035, 1037
_DIRINDEXES, _BASENAMES, _DIRNAMES = 1116, 1117, 1118
_FILEDIGESTALGO = 5011
_INT32, _STRING, _STRING_ARRAY, _I18N = 4, 6, 8, 9
_ALGORITHMS = {1: "md5", 2: "sha1", 8: "sha256"}
"""``FILEDIGESTALGO`` values (PGP hash algorithm numbers) whose digests records are checked with."""


def rpmdb_sqlite(table: PackageTable, data: bytes) -> None:
    for blob in _package_blobs(data):
        _read_header(table, blob)


def rpmdb_bdb(table: PackageTable, data: bytes) -> None:
    for blob in _bdb_values(data):
        _read_header(table, blob)


_BDB_HASH_MAGIC = 0x061561
_P_HASH_UNSORTED, _P_OVERFLOW, _P_HASH = 2, 7, 13
_H_KEYDATA, _H_OFFPAGE = 1, 3
_PAGE_HEADER = 26
"""lsn (8), pgno, prev_pgno, next_pgno (4 each), entries, hf_offset (2 each), level, type (1 each)."""


def _bdb_values(data: bytes) -> Iterator[bytes]:
    """The values of a Berkeley DB hash database, in page order."""
    if len(data) < 512:
        raise ValueError("not a Berkeley DB file")
    for order in "<>":
        if struct.unpack_from(f"{order}I", data, 12)[0] == _BDB_HASH_MAGIC:
            break
    else:
        raise ValueError("not a Berkeley DB hash database")
    page_size = struct.unpack_from(f"{order}I", data, 20)[0]
    if page_size < 512 or page_size > 65536 or page_size & (page_size - 1):
        raise ValueError(f"Berkeley DB page size {page_size}")
    pages = len(data) // page_size
    chained: set[int] = set()  # overflow pages already read as part of a chain
    found = 0
    for number in range(1, pages):
        page = number * page_size
        kind = data[page + 25]
        if kind not in (_P_HASH, _P_HASH_UNSORTED):
            continue
        entries = struct.unpack_from(f"{order}H", data, page + 20)[0]
        entries = min(entries, (page_size - _PAGE_HEADER) // 2)
        offsets = struct.unpack_from(f"{order}{entries}H", data, page + _PAGE_HEADER)
        for i in range(1, entries, 2):  # key, value, key, value: the values
            start = offsets[i]
            end = offsets[i - 1]  # items are stored from the page's end backwards
            if not _PAGE_HEADER <= start < end <= page_size:
                continue
            item = data[page + start : page + end]
            if item[0] == _H_KEYDATA:
                value = item[1:]
            elif item[0] == _H_OFFPAGE and len(item) >= 12:
                first, length = struct.unpack_from(f"{order}II", item, 4)
                value = _overflow(data, order, page_size, first, length, chained)
            else:
                continue
            found += 1
            if found > MAX_HEADERS:
                return
            yield value


def _overflow(data: bytes, order: str, page_size: int, number: int, length: int, chained: set[int]) -> bytes:
    """A value kept on a chain of overflow pages (each holding ``hf_offset`` bytes after its header)."""
    parts: list[bytes] = []
    left = length
    while number and left > 0 and number not in chained and (number + 1) * page_size <= len(data):
        chained.add(number)
        page = number * page_size
        if data[page + 25] != _P_OVERFLOW:
            break
        next_page, _, used = struct.unpack_from(f"{order}IHH", data, page + 16)
        used = min(used, page_size - _PAGE_HEADER, left)
        parts.append(data[page + _PAGE_HEADER : page + _PAGE_HEADER + used])
        left -= used
        number = next_page
    return b"".join(parts)


def _package_blobs(data: bytes) -> Iterator[bytes]:
    if len(data) < 100 or not data.startswith(b"SQLite format 3\0"):
        raise ValueError("not an SQLite database")
    image = bytearray(data)
    image[18] = image[19] = 1  # WAL -> rollback journal: a WAL database cannot be opened from memory
    connection = sqlite3.connect(":memory:")
    steps = [0]
    budget = max(1_000_000, len(data) * _STEPS_PER_BYTE) // 1000

    def progress() -> int:
        steps[0] += 1
        return 1 if steps[0] > budget else 0  # non-zero interrupts the query

    try:
        connection.deserialize(bytes(image))
        connection.execute("PRAGMA query_only = ON")
        connection.execute("PRAGMA trusted_schema = OFF")
        connection.set_progress_handler(progress, 1000)
        kind = connection.execute("SELECT type FROM sqlite_master WHERE name = 'Packages'").fetchone()
        if kind != ("table",):
            raise ValueError("no Packages table")
        rows = connection.execute("SELECT blob FROM Packages LIMIT ?", (MAX_HEADERS,))
        for (blob,) in rows:
            if isinstance(blob, bytes):
                yield blob
    except sqlite3.Error as exc:
        raise ValueError(f"SQLite: {exc}") from None
    finally:
        connection.close()


def _read_header(table: PackageTable, blob: bytes) -> None:
    """One package's header (without the 8-byte magic, as the database stores it)."""
    if len(blob) < 8:
        return
    count, store_size = struct.unpack_from(">II", blob)
    store = 8 + 16 * count
    if count > MAX_ENTRIES or store + store_size > len(blob):
        return  # a header larger than its blob: nothing in it is read
    fields: dict[int, tuple[int, int, int]] = {}
    for i in range(count):
        tag, kind, offset, items = struct.unpack_from(">iiii", blob, 8 + 16 * i)
        if 0 <= offset < store_size and items >= 0:
            fields[tag] = (kind, store + offset, items)
    view = _Header(blob, fields, store + store_size)
    name = view.string(_NAME)
    if not name:
        return
    version = "-".join(part for part in (view.string(_VERSION), view.string(_RELEASE)) if part)
    table.versions[name] = version
    package = table.package(Manager.RPM, name, version)
    directories = view.strings(_DIRNAMES)
    names = view.strings(_BASENAMES)
    indexes = view.ints(_DIRINDEXES, len(names))
    digests = view.strings(_FILEDIGESTS, len(names))
    algorithm = _ALGORITHMS.get((view.ints(_FILEDIGESTALGO, 1) or [1])[0])  # rpm before 4.6: MD5, no tag
    if len(indexes) != len(names):
        return
    for base, index, digest in zip(names, indexes, digests + [""] * (len(names) - len(digests)), strict=True):
        if not 0 <= index < len(directories):
            continue
        path = "/" + (directories[index] + base).lstrip("/")
        record = f"{algorithm}:{digest.lower()}" if digest and algorithm else NO_DIGEST  # "": a directory
        table.file(path, package, record)
        table.owned_dir(path.rsplit("/", 1)[0] or "/", package)
        if record == NO_DIGEST:  # a directory (or link) the package owns: files in it are its own
            table.owned_dir(path, package)


class _Header:
    """Typed reads of a header's data store, each bounded by the store's end."""

    def __init__(self, blob: bytes, fields: dict[int, tuple[int, int, int]], end: int) -> None:
        self._blob, self._fields, self._end = blob, fields, end

    def string(self, tag: int) -> str:
        found = self._fields.get(tag)
        if found is None or found[0] not in (_STRING, _I18N, _STRING_ARRAY):
            return ""
        strings = self._strings_at(found[1], 1)
        return strings[0] if strings else ""

    def strings(self, tag: int, limit: int | None = None) -> list[str]:
        found = self._fields.get(tag)
        if found is None or found[0] not in (_STRING_ARRAY, _I18N):
            return []
        return self._strings_at(found[1], found[2] if limit is None else min(found[2], limit))

    def ints(self, tag: int, limit: int) -> list[int]:
        found = self._fields.get(tag)
        if found is None or found[0] != _INT32:
            return []
        count = min(found[2], limit, (self._end - found[1]) // 4)
        return list(struct.unpack_from(f">{count}i", self._blob, found[1])) if count > 0 else []

    def _strings_at(self, start: int, count: int) -> list[str]:
        out: list[str] = []
        at = start
        while len(out) < count and at < self._end:
            stop = self._blob.find(b"\0", at, self._end)
            if stop < 0:
                break
            out.append(self._blob[at:stop].decode("utf-8", "surrogateescape"))
            at = stop + 1
        return out
