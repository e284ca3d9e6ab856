"""Files the library writes and reads, opened so that another local user cannot redirect them.

    fd = open_regular(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)   # refuses a symlink, a FIFO, a device
    replace_keeping(path, write)     # rewrite ``path`` through a new file in its directory, same mode and owner
    data = read_trusted(path, max_bytes=..., what="cache file")      # bytes, or None with one warning

Writing: the last path component is opened with ``O_NOFOLLOW`` (a planted symlink is refused, never
followed) and ``O_NONBLOCK`` (a planted FIFO is refused instead of blocking the open), and whatever was
opened must be a regular file with one link (a hard link to someone else's file is refused too); a
refused file raises `UnsafeFileError` naming what it found. Temporary files are made with
``O_EXCL`` and a random name in the target's own directory (``tempfile.mkstemp``), then renamed over
the target: a rename replaces a planted symlink itself, never what it points to.

Reading from the cache dir: a file is used only when it is a regular file, at most ``max_bytes`` long,
owned by the current user and writable by nobody else; otherwise it is ignored with one warning per
file and reason, and the caller fetches again. The cache dir is created 0700.
"""

from __future__ import annotations

import logging
import os
import stat
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO

from ..errors import UnsafeFileError

__all__ = [
    "UnsafeFileError", "open_regular", "check_regular", "replace_keeping", "write_beside", "read_trusted", "private_dir",
]

log = logging.getLogger("openrouter_registry")

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISLNK, "a symlink"), (stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a regular file"


def _refuse(path: Path | str, found: str) -> UnsafeFileError:
    return UnsafeFileError(
        f"refusing to write {str(path)!r}: it is {found}, not a regular file of its own (another user may have "
        f"planted it); remove it or choose another path"
    )


def check_regular(path: Path | str) -> None:
    """Raise `UnsafeFileError` when ``path`` exists and is not a plain regular file (``lstat``: a
    symlink is refused, not followed). A missing file passes."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISREG(info.st_mode):
        raise _refuse(path, _kind(info.st_mode))
    if info.st_nlink > 1:
        raise _refuse(path, f"a hard link ({info.st_nlink} names for one file)")


def open_regular(path: Path | str, flags: int, mode: int = 0o644, *, truncate: bool = False) -> int:
    """``os.open(path, flags)`` that refuses a symlink (``O_NOFOLLOW``), a FIFO, a device or a hard link
    with `UnsafeFileError`; ``truncate`` empties the file only once it is known to be a regular one."""
    try:
        fd = os.open(path, flags | _NOFOLLOW | _NONBLOCK | _CLOEXEC, mode)
    except OSError as exc:
        import errno

        if exc.errno in (errno.ELOOP, errno.EMLINK):  # O_NOFOLLOW met a symlink
            raise _refuse(path, "a symlink") from None
        if exc.errno in (errno.ENXIO, errno.EISDIR):  # a FIFO nobody reads, a directory
            check_regular(path)
        raise
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise _refuse(path, _kind(info.st_mode))
        if info.st_nlink > 1:
            raise _refuse(path, f"a hard link ({info.st_nlink} names for one file)")
        if _NONBLOCK:
            os.set_blocking(fd, True)
        if truncate:
            os.ftruncate(fd, 0)
    except BaseException:
        os.close(fd)
        raise
    return fd


def replace_keeping(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Rewrite ``path``: ``write`` fills a new file made beside it (`write_beside`), which gets ``path``'s
    mode and owner, is synced, and replaces ``path`` atomically. ``path`` must be a regular file of its
    own (`UnsafeFileError` otherwise); when its owner or group cannot be kept, nothing is replaced
    (`UnsafeFileError`). A failure leaves ``path`` as it was."""
    check_regular(path)
    write_beside(path, write, keep=os.lstat(path))


def write_beside(path: Path, write: Callable[[IO[bytes]], None], *, keep: os.stat_result | None = None) -> None:
    """``write`` fills a new file made with ``O_EXCL`` and a random name (mode 0600) in ``path``'s
    directory, which is then renamed over ``path`` (a rename replaces a planted symlink itself, never what
    it points to); readers see the old file or the new one, never half. With ``keep`` (``path``'s
    ``lstat``), the new file gets that mode and owner and is synced first, and ``path`` must still be a
    regular file when it is replaced. On any failure the new file is removed."""
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            if keep is not None:
                _keep_owner_and_mode(handle.fileno(), path, keep)
            write(handle)
            if keep is not None:
                handle.flush()
                os.fsync(handle.fileno())
        if keep is not None:
            check_regular(path)  # still the file we measured (the caller holds the run's lock)
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise


def _keep_owner_and_mode(fd: int, path: Path, info: os.stat_result) -> None:
    if (info.st_uid, info.st_gid) != (os.geteuid(), os.getegid()):
        try:
            os.fchown(fd, info.st_uid, info.st_gid)
        except OSError:
            raise UnsafeFileError(
                f"cannot rewrite {str(path)!r} keeping its owner (uid {info.st_uid}, gid {info.st_gid}): "
                f"run as its owner, or copy it to a file of your own"
            ) from None
    os.fchmod(fd, stat.S_IMODE(info.st_mode))


def private_dir(folder: Path) -> None:
    """Create ``folder`` (and its parents) 0700 when missing."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)


_warned: set[tuple[str, str]] = set()
_warned_lock = threading.Lock()


def _ignore(path: Path, what: str, reason: str) -> None:
    with _warned_lock:
        if (str(path), reason) in _warned:
            return
        _warned.add((str(path), reason))
    log.warning("Ignoring the %s %s: %s; it will be fetched or learned again", what, path, reason)


def read_trusted(path: Path, *, max_bytes: int, what: str = "cache file") -> bytes | None:
    """The bytes of ``path`` when it may be trusted; None when it does not exist; None and one warning
    (per file and reason) when it is not a regular file, is over ``max_bytes``, is not owned by the
    current user, is group- or world-writable, or cannot be read."""
    try:
        fd = os.open(path, os.O_RDONLY | _NOFOLLOW | _NONBLOCK | _CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        import errno

        _ignore(path, what, "it is a symlink" if exc.errno == errno.ELOOP else f"it cannot be read ({exc.strerror})")
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            reason = f"it is {_kind(info.st_mode)}"
        elif info.st_size > max_bytes:
            reason = f"it is {info.st_size} bytes, over the {max_bytes}-byte bound"
        elif hasattr(os, "geteuid") and info.st_uid != os.geteuid():
            reason = f"it is owned by uid {info.st_uid}, not by this user"
        elif info.st_mode & 0o022:
            reason = f"it is writable by other users (mode {stat.S_IMODE(info.st_mode):o})"
        else:
            os.set_blocking(fd, True)
            with os.fdopen(fd, "rb", closefd=False) as handle:
                data = handle.read(max_bytes + 1)
            if len(data) <= max_bytes:
                return data
            reason = f"it grew over the {max_bytes}-byte bound while being read"
    except OSError as exc:
        reason = f"it cannot be read ({exc.strerror})"
    finally:
        os.close(fd)
    _ignore(path, what, reason)
    return None
