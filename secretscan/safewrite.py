"""Writing the files secretscan is told to write (reports, ``--also`` files, baselines, migration
records, the docker plugin, caches) without ever writing through a symbolic link.

A report path may sit in a directory others can write to (a CI workspace, ``/tmp``), where a
symlink planted at that name would make a plain ``open(path, "w")`` overwrite — and, with
``--show-secrets``, chmod — whatever file it points to. So:

* **A file** (or a name that does not exist yet) is written to a new temporary file in the same
  directory, created with ``O_CREAT|O_EXCL|O_NOFOLLOW``, flushed to disk, then renamed onto the
  name. A rename replaces a symlink itself, never its target, so a link swapped in at any moment
  cannot redirect the write; readers see the old file or the new one, never half of one; a failure
  removes the temporary file. The file gets a new inode: its former mode and hard links are not
  kept. Mode: ``0600`` for private files (``--show-secrets`` reports, migration records), else
  ``0644`` (less the umask).
* **A symbolic link found at the name** (to a file, a directory or nothing) is refused with a
  one-line error: the user named a link, and neither following it nor silently replacing it is
  what they could have meant. (A link that appears between the check and the rename is replaced,
  never followed.)
* **A pipe or character device** (``-o /dev/null``, ``-o /dev/tty``, a named pipe, or a symlink
  to one) is not a file to replace: it is opened and written into. Renaming over ``/dev/null``
  as root would replace the device.
* **``/dev/stdout``, ``/dev/stderr``, ``/dev/fd/N``, ``/proc/self/fd/N``** mean this process's
  descriptor N, whatever it is (a terminal, a pipe, a socket, a file the shell opened with ``>``
  or ``>>``): the data is written to that descriptor, so appending and offsets behave as with
  the shell's own redirections.
* Anything else (a directory, a block device, a socket file) is refused.

``check_output`` runs the same checks before a scan, so a typo in ``-o`` fails in a second.
"""

from __future__ import annotations

import contextlib
import enum
import os
import re
import secrets
import stat
import sys
from pathlib import Path

from secretscan.errors import OutputError

PRIVATE_MODE = 0o600
PUBLIC_MODE = 0o644

_FD_ALIAS = re.compile(r"/dev/(?:std(?P<std>out|err)|fd/(?P<fd>\d+))|/proc/self/fd/(?P<proc>\d+)")
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


class _Kind(enum.Enum):
    FILE = "file"
    """A regular file, or nothing yet: written to a temporary file and renamed onto the name."""
    STREAM = "stream"
    """A pipe or character device (or a symlink to one): opened and written into."""


def check_output(path: Path) -> None:
    """Raise ``OutputError`` now if ``write_file(path, ...)`` is bound to fail or to be refused."""
    fd = _descriptor(path)
    if fd is not None:
        try:
            os.fstat(fd)
        except OSError:
            raise OutputError(f"{path}: descriptor {fd} is not open") from None
        return
    if _classify(path) is _Kind.STREAM:
        return
    parent = path.parent
    try:
        info = os.stat(parent)
    except FileNotFoundError:
        raise OutputError(f"{path}: directory {parent} does not exist") from None
    except OSError as exc:
        raise OutputError(f"{path}: cannot reach directory {parent} ({exc.strerror})") from None
    if not stat.S_ISDIR(info.st_mode):
        raise OutputError(f"{path}: {parent} is not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"{path}: cannot create files in directory {parent} (permission denied)")


def write_file(path: Path, data: str | bytes, *, mode: int = PUBLIC_MODE) -> None:
    """Write ``data`` (text as UTF-8) to ``path`` as described in the module docstring; ``mode``
    applies to a newly created file, less the umask. Raises ``OutputError`` (one line) on failure,
    leaving no temporary file behind."""
    raw = data.encode("utf-8", "backslashreplace") if isinstance(data, str) else data
    fd = _descriptor(path)
    if fd is not None:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
        try:
            _write_all(fd, raw)
        except OSError as exc:
            raise OutputError(f"{path}: cannot write ({exc.strerror})") from None
        return
    if _classify(path) is _Kind.STREAM:
        _write_stream(path, raw)
    else:
        _replace(path, raw, mode)


def _descriptor(path: Path) -> int | None:
    m = _FD_ALIAS.fullmatch(str(path))
    if m is None:
        return None
    if m["std"]:
        return 1 if m["std"] == "out" else 2
    return int(m["fd"] or m["proc"])


def _classify(path: Path) -> _Kind:
    try:
        info = os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):  # nothing there yet (a bad parent is check_output's to name)
        return _Kind.FILE
    except OSError as exc:
        raise OutputError(f"{path}: cannot write ({exc.strerror})") from None
    if stat.S_ISLNK(info.st_mode):
        try:
            target = os.stat(path)
        except OSError:
            target = None
        if target is not None and _is_stream(target.st_mode):
            return _Kind.STREAM
        raise OutputError(f"{path}: is a symbolic link; not followed (remove it, or name the file it points to)")
    if _is_stream(info.st_mode):
        return _Kind.STREAM
    if stat.S_ISREG(info.st_mode):
        return _Kind.FILE
    what = "a directory" if stat.S_ISDIR(info.st_mode) else "not a regular file, pipe or character device"
    raise OutputError(f"{path}: is {what}; not overwritten")


def _is_stream(mode: int) -> bool:
    return stat.S_ISFIFO(mode) or stat.S_ISCHR(mode)


def _write_stream(path: Path, raw: bytes) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NOCTTY | _CLOEXEC)
    except OSError as exc:
        raise OutputError(f"{path}: cannot write ({exc.strerror})") from None
    try:
        # the name may have been swapped since it was classified: never write into anything else
        if not _is_stream(os.fstat(fd).st_mode):
            raise OutputError(f"{path}: changed while being opened; not written")
        _write_all(fd, raw)
    except OSError as exc:
        raise OutputError(f"{path}: cannot write ({exc.strerror})") from None
    finally:
        os.close(fd)


def _replace(path: Path, raw: bytes, mode: int) -> None:
    tmp = path.parent / f".{path.name[:100]}.{secrets.token_hex(6)}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC, mode)
    except OSError as exc:
        raise OutputError(f"{path}: cannot write ({exc.strerror})") from None
    try:
        try:
            _write_all(fd, raw)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise OutputError(f"{path}: cannot write ({exc.strerror or exc})") from None
        raise


def _write_all(fd: int, raw: bytes) -> None:
    view = memoryview(raw)
    while view:
        view = view[os.write(fd, view) :]
