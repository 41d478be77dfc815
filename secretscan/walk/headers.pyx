# cython: language_level=3, boundscheck=True, wraparound=False, cdivision=True
"""Tar headers as nearly every layer writes them, read in C.

A layer of 70,000 small files is 70,000 headers, and reading one in Python took about 4 µs (12 µs
with everything an entry needs) where a compiled loop takes well under one. Only the plain kind is
read here: numbers written as Go, Docker and GNU tar write them (zero-padded octal, NUL-terminated),
a checksum that holds, a file or directory. Anything else is left to the Python reader in
``tarstream`` (pax, GNU long names, base-256 numbers, odd names), which decides as tarfile does.

Every index into ``buf`` is checked against its length before it is read: the bytes are an image's,
and an image may be hostile.
"""

from libc.string cimport memchr, memcmp

DEF BLOCK = 512


cdef inline bint _octal_digits(const unsigned char* p, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        if p[i] < 48 or p[i] > 55:
            return False
    return True


cdef inline long long _octal(const unsigned char* p, Py_ssize_t n) noexcept nogil:
    """The value of ``n`` octal digits (checked by ``_octal_digits``); at most 11: below 2**33."""
    cdef long long value = 0
    cdef Py_ssize_t i
    for i in range(n):
        value = value * 8 + (p[i] - 48)
    return value


cdef inline bint _number(const unsigned char* p, Py_ssize_t digits) noexcept nogil:
    """``digits`` octal digits and a NUL."""
    return _octal_digits(p, digits) and p[digits] == 0


cdef inline bint _device(const unsigned char* p) noexcept nogil:
    """A device number field: empty (eight NULs) or seven digits and a NUL."""
    cdef Py_ssize_t i
    if _number(p, 7):
        return True
    for i in range(8):
        if p[i] != 0:
            return False
    return True


cdef inline bint _canonical(const unsigned char* h) noexcept nogil:
    """Bytes 100-156 and 329-345 as ``tarstream.CANONICAL_NUMBERS`` and ``_CANONICAL_DEVICES``
    match them: mode, uid, gid (7 digits and a NUL), size, mtime (11 and a NUL), the checksum (6,
    a NUL, a space); device major and minor each empty or 7 digits and a NUL."""
    return (
        _number(h + 100, 7) and _number(h + 108, 7) and _number(h + 116, 7)
        and _number(h + 124, 11) and _number(h + 136, 11)
        and _number(h + 148, 6) and h[155] == 32
        and _device(h + 329) and _device(h + 337)
    )


cdef inline bint _checksum_holds(const unsigned char* h) noexcept nogil:
    """The checksum field (six octal digits, checked) equals the block's unsigned sum with the field
    counted as eight spaces."""
    cdef long total = 256
    cdef Py_ssize_t i
    for i in range(148):
        total += h[i]
    for i in range(156, BLOCK):
        total += h[i]
    return total == _octal(h + 148, 6)


cdef inline bint _plain(const unsigned char* h) noexcept nogil:
    return _canonical(h) and _checksum_holds(h)


cdef inline Py_ssize_t _length(const unsigned char* p, Py_ssize_t limit) noexcept nogil:
    """Bytes before the first NUL within ``limit``."""
    cdef const unsigned char* nul = <const unsigned char*>memchr(p, 0, limit)
    return limit if nul == NULL else nul - p


cdef inline Py_ssize_t _find(const unsigned char* p, Py_ssize_t n, const unsigned char* needle, Py_ssize_t m) noexcept nogil:
    """Where ``needle`` (``m`` > 0 bytes) first is among the ``n`` bytes at ``p``; -1 if nowhere."""
    cdef Py_ssize_t i
    if m == 0:
        return -1
    for i in range(n - m + 1):
        if p[i] == needle[0] and memcmp(p + i, needle, m) == 0:
            return i
    return -1


cdef inline bint _contains(const unsigned char* p, Py_ssize_t n, const unsigned char* needle, Py_ssize_t m) noexcept nogil:
    """Whether ``needle`` (``m`` > 0 bytes) is among the ``n`` bytes at ``p``."""
    return _find(p, n, needle, m) >= 0


def plain_entry(const unsigned char[::1] buf, Py_ssize_t at, bytes long_name=None):
    """The header at ``buf[at:at+512]`` read the quick way, as ``(path, directory, mode, size,
    mtime)``, when it is a file or directory written the usual way whose name needs nothing done to
    it; None for anything else. ``path`` is ``/`` and the name (a ustar prefix joined, a directory's
    trailing slash gone): plain ASCII, not absolute, no ``.`` or ``..`` part, no empty part, no
    backslash, no whiteout. ``long_name``: the UTF-8 path a pax header before it gives (its own name
    and prefix then do not count), as tarfile applies it (trailing slashes dropped)."""
    if at < 0 or at + BLOCK > buf.shape[0]:
        return None
    return _entry(&buf[at], long_name)


def pax_path_entry(const unsigned char[::1] buf, Py_ssize_t at):
    """A pax header at ``buf[at]`` that holds one record, ``path``, and nothing else (as npm trees'
    long names are written), with the header after it, read as ``tarstream`` reads such a pair
    (``_pax_records``, then ``plain_entry`` with that path): ``(entry, header_at)``, the entry as
    ``plain_entry`` gives it and where the member's own header is in ``buf``. None for anything
    else, which ``tarstream`` then reads: other records, a charset, a pair not whole in ``buf``."""
    cdef Py_ssize_t end = buf.shape[0]
    if at < 0 or at + BLOCK > end:
        return None
    cdef const unsigned char* h = &buf[at]
    if h[156] != 120 or not _plain(h):  # "x"
        return None
    cdef long long size = _octal(h + 124, 11)
    if size == 0 or size > 65536 or at + BLOCK + _padded(size) + BLOCK > end:
        return None
    cdef Py_ssize_t header_at = at + BLOCK + _padded(size)
    cdef const unsigned char* records = h + BLOCK
    cdef Py_ssize_t digits = 0
    cdef long long length = 0
    cdef Py_ssize_t i
    while digits < size and digits < 10 and 48 <= records[digits] <= 57:
        length = length * 10 + (records[digits] - 48)
        digits += 1
    # "<length> path=<value>\n", the record exactly the header's data, then padding NULs
    if digits == 0 or digits > 9 or length != size or digits + 6 > size - 1:
        return None
    if memcmp(records + digits, b" path=", 6) != 0 or records[size - 1] != 10:
        return None
    for i in range(size, _padded(size)):
        if records[i] != 0:
            return None
    if _contains(records, size, b"hdrcharset=", 11):
        return None
    value = (<const char*>records)[digits + 6 : size - 1]
    entry = _entry(&buf[header_at], value)
    return None if entry is None else (entry, header_at)


def pass_members(const unsigned char[::1] buf, Py_ssize_t at, Py_ssize_t most, object members):
    """The members from ``buf[at]`` on that ``members`` (``walk.layer._Members``) lets pass,
    taken here one after another without a Python call each, up to ``most`` of them: plain
    headers (``plain_entry``, ``pax_path_entry``) of directories, and of files whose bytes are
    whole in ``buf`` (and at most ``largest``) that its remembered answers let pass (``places`` by directory, ``names`` by
    the last two parts of a path, worked out by ``place_of`` and ``plain_of`` when not known yet),
    whose place finds nothing odd about them (``odd``; in a directory whose place is ``recorded``,
    ``vouches`` asks the records about the file and its bytes instead), whose first bytes are no
    archive's (``first_bytes``, a table of 256 flags, or ``ustar`` at 257) and in which ``finds``
    finds nothing. Each is recorded in ``present`` (and a file in ``sizes``). Returns ``(offset, files,
    bytes)``: where the first member not taken starts, and the files taken and their bytes."""
    cdef Py_ssize_t end = buf.shape[0]
    cdef Py_ssize_t header_at, data_at, next_at, size, cut, files = 0, total = 0, taken = 0
    cdef dict places = members.places
    cdef dict names = members.names
    cdef dict present = members.present
    cdef dict sizes = members.sizes
    cdef const unsigned char[::1] first = members.first_bytes
    cdef Py_ssize_t largest = members.largest
    cdef object place_of = members.place_of
    cdef object plain_of = members.plain_of
    cdef object finds = members.finds
    cdef object vouches = members.vouches
    cdef object recorded = members.recorded
    cdef object dir_kind = members.dir_kind
    cdef object file_kind = members.file_kind
    cdef str path, directory, tail
    cdef const unsigned char* data
    while taken < most and at >= 0 and at + BLOCK <= end:
        header_at = at
        entry = _entry(&buf[at], None)
        if entry is None:
            paxed = pax_path_entry(buf, at)
            if paxed is None:
                break
            entry, header_at = paxed
        path = entry[0]
        if entry[1]:  # a directory
            present[path] = dir_kind
            at = header_at + BLOCK
            taken += 1
            continue
        size = entry[3]
        data_at = header_at + BLOCK
        next_at = data_at + _padded(size)
        if size > largest or next_at > end:
            break
        cut = path.rfind("/")
        directory = path[:cut]
        place = places.get(directory, places)  # (the dict itself: not known yet)
        if place is places:
            place = place_of(path, directory)
        if place is None:
            break
        tail = path[path.rfind("/", 0, cut) + 1 :]
        plain = names.get(tail)
        if plain is None:
            plain = plain_of(path, tail)
        if not plain or (place is not recorded and place.odd(0, entry[4], entry[2]) is not None):
            break
        if size > 0:  # (an empty file's data_at may be the end of ``buf``)
            data = &buf[data_at]
            if first[data[0]] or (size >= 262 and memcmp(data + 257, b"ustar", 5) == 0):
                break
            content = (<const char*>data)[:size]
        else:
            content = b""
        if place is recorded and not vouches(path, entry[4], entry[2], content):
            break
        if finds(content):
            break
        present[path] = file_kind
        sizes[path] = size
        files += 1
        total += size
        taken += 1
        at = next_at
    return at, files, total


cdef object _entry(const unsigned char* h, bytes long_name):
    """``plain_entry`` of the header block at ``h`` (512 bytes, checked by the caller)."""
    cdef unsigned char kind = h[156]
    if kind != 48 and kind != 0 and kind != 53:  # "0", NUL, "5"
        return None
    if not _plain(h):
        return None
    cdef Py_ssize_t name_length = _length(h, 100)
    cdef bint directory = kind == 53 or (kind == 0 and name_length > 0 and h[name_length - 1] == 47)
    cdef bytes raw
    if long_name is not None:
        raw = long_name.rstrip(b"/")
    else:
        raw = (<const char*>h)[:name_length]
        if directory:
            raw = raw.rstrip(b"/")
        if h[345] != 0:
            raw = (<const char*>h)[345 : 345 + _length(h + 345, 155)] + b"/" + raw
    cdef const unsigned char* name = <const unsigned char*>(<const char*>raw)
    cdef Py_ssize_t n = len(raw)
    cdef Py_ssize_t i
    if n == 0 or name[0] == 47 or name[n - 1] == 46 or name[n - 1] == 47:  # "/" first; "." or "/" last
        return None
    for i in range(n):
        if name[i] >= 128 or name[i] == 92:  # not ASCII; a backslash
            return None
        if name[i] == 47 and i + 1 < n and name[i + 1] == 47:  # "//"
            return None
        if name[i] == 46 and i + 1 < n and name[i + 1] == 47:  # "./": a "." or ".." part, or a name ending with a dot
            return None
        if name[i] == 46 and i + 3 < n and name[i + 1] == 119 and name[i + 2] == 104 and name[i + 3] == 46:  # ".wh."
            return None
    path = "/" + raw.decode("ascii")
    mode = _octal(h + 100, 7)
    if directory:
        return path, True, mode, 0, 0
    return path, False, mode, _octal(h + 124, 11), _octal(h + 136, 11)


cdef inline bint _holds_any(const unsigned char* p, Py_ssize_t n, tuple needles):
    """Whether any of ``needles`` is among the ``n`` bytes at ``p``."""
    cdef bytes needle
    for needle in needles:
        if _contains(p, n, <const unsigned char*>(<const char*>needle), len(needle)):
            return True
    return False


cdef inline bint _name_wanted(const unsigned char* h, tuple name_endings, tuple name_parts):
    """Whether a header's ``name`` field ends with one of ``name_endings``, or its ``name`` or ustar
    ``prefix`` holds one of ``name_parts``."""
    cdef Py_ssize_t name_length = _length(h, 100)
    cdef bytes ending
    if _holds_any(h, name_length, name_parts):
        return True
    if h[345] != 0 and _holds_any(h + 345, _length(h + 345, 155), name_parts):
        return True
    for ending in name_endings:
        if len(ending) <= name_length and memcmp(h + name_length - len(ending), <const char*>ending, len(ending)) == 0:
            return True
    return False


cdef inline Py_ssize_t _padded(long long length) noexcept nogil:
    return (length + BLOCK - 1) // BLOCK * BLOCK


def skip_plain(
    const unsigned char[::1] buf,
    Py_ssize_t at,
    Py_ssize_t limit,
    tuple name_endings,
    tuple name_parts,
    dict sizes=None,
):
    """Follow the chain of plain members from ``buf[at]`` (a member's first header), stopping at
    the first member that starts at or past ``limit``, is not whole in ``buf`` (its headers), or is
    one the caller wants to look at itself. Returns ``(offset, members)``: where it stopped (possibly
    past the end of ``buf``, where the next header is) and how many members it went past.

    A plain member is one header written the usual way (as ``plain_entry``: usual numbers, a
    checksum that holds) of any kind but the extended and uncuttable ones (``x L K g V M``) and
    the sparse ``S``, and no link, device, directory or fifo (``1``-``6``) that gives a size
    (tarfile skips no data after one), perhaps after one pax header (``x``, at most 64 KiB, no
    ``size`` record) whose records hold none of ``name_endings`` and ``name_parts``. A member the
    caller wants: a file (``0``, NUL, ``7``) named by its own header whose ``name`` field ends with
    one of ``name_endings`` or whose ``name`` or ustar prefix holds one of ``name_parts``.
    ``sizes``: filled with the size of each file gone past, by its name as the archive writes it
    (a ustar prefix joined, or the pax path)."""
    cdef Py_ssize_t size = buf.shape[0]
    cdef Py_ssize_t members = 0
    cdef Py_ssize_t header_at
    cdef const unsigned char* h
    cdef const unsigned char* records
    cdef unsigned char kind
    cdef long long length
    cdef bint named
    cdef bytes needle
    cdef bytes name = None
    cdef Py_ssize_t path_at, path_end
    for needle in name_endings + name_parts:
        if len(needle) == 0:
            raise ValueError("an empty name ending or part would stop at every file")
    while at >= 0 and at < limit and at + BLOCK <= size:
        header_at, named = at, False
        h = &buf[at]
        if h[156] == 120:  # "x": a pax header, for the member after it
            if not _plain(h):
                break
            length = _octal(h + 124, 11)
            header_at = at + BLOCK + _padded(length)
            if length > 65536 or header_at + BLOCK > size:
                break
            records = h + BLOCK
            if _contains(records, length, b" size=", 6) or _holds_any(records, length, name_endings + name_parts):
                break
            named = _contains(records, length, b" path=", 6)
            if named and sizes is not None:
                path_at = _find(records, length, b" path=", 6) + 6
                path_end = path_at
                while path_end < length and records[path_end] != 10:
                    path_end += 1
                name = (<const char*>records)[path_at:path_end]
            h = &buf[header_at]
        kind = h[156]
        if kind in b"xLKgVMS":
            break
        if not _plain(h):
            break
        if 49 <= kind <= 54 and _octal(h + 124, 11) != 0:  # "1"-"6" with a size: tarfile skips no data
            break
        if not named and (kind == 48 or kind == 0 or kind == 55) and _name_wanted(h, name_endings, name_parts):
            break
        if sizes is not None and (kind == 48 or kind == 0 or kind == 55):
            if not named:
                name = (<const char*>h)[: _length(h, 100)]
                if h[345] != 0:
                    name = (<const char*>h)[345 : 345 + _length(h + 345, 155)] + b"/" + name
            sizes[name] = _octal(h + 124, 11)
        at = header_at + BLOCK + _padded(_octal(h + 124, 11))
        members += 1
    return at, members
