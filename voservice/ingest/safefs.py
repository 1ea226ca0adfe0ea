"""Reading an upload tree without leaving it (docs/uploading.md, "Symbolic links").

The uploader opens nothing whose real path lies outside the tree's real path:
every entry is classified with ``lstat`` before it is used, a symbolic link
is resolved (``os.path.realpath``) and kept only when its target is inside the
tree, and every file is opened with ``O_NOFOLLOW | O_NONBLOCK`` on its
resolved path and checked once more after opening (a regular file, whose
real path, as the kernel names the open file, is inside the tree), so a link
swapped in after the walk is refused too.  FIFOs, devices and sockets are
never opened.  Messages name the path in the tree only, never a link's target.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

_READ_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) \
    | getattr(os, "O_CLOEXEC", 0)

OUTSIDE = "symbolic link to outside the upload tree; not read"
UNRESOLVED = "symbolic link that cannot be resolved (broken, or a loop); not read"
SPECIAL = "not a regular file or folder (a FIFO, device or socket); not read"
VANISHED = "could not be read (it disappeared or is not accessible)"


class UnsafePath(OSError):
    """A path the uploader refuses to open; the message says why (never a link target)."""


def real_base(base: Path) -> Path:
    """The resolved upload tree (raises OSError when it does not exist)."""
    return Path(base).resolve(strict=True)


def _inside(real: Path, root: Path) -> bool:
    return real == root or real.is_relative_to(root)


def resolve(path: Path, root: Path) -> tuple[str | None, Path | None, str | None]:
    """Classify one entry of the tree: ``(kind, real path, refusal)``.

    ``kind`` is ``"dir"`` or ``"file"`` for an entry the uploader may use (then
    ``real path`` is where it really is, inside ``root``); otherwise ``kind``
    is None and ``refusal`` says why, naming nothing but the entry itself.
    """
    try:
        st = os.lstat(path)
    except OSError:
        return None, None, VANISHED
    try:  # a link's target; for any entry, a folder above swapped for a link shows too
        real = Path(path).resolve(strict=True)
    except (OSError, RuntimeError):
        return None, None, UNRESOLVED if stat.S_ISLNK(st.st_mode) else VANISHED
    if not _inside(real, root):
        return None, None, OUTSIDE
    if stat.S_ISLNK(st.st_mode):
        try:
            st = os.stat(real, follow_symlinks=False)
        except OSError:
            return None, None, VANISHED
        if stat.S_ISLNK(st.st_mode):  # swapped for a link while we looked
            return None, None, UNRESOLVED
    if stat.S_ISDIR(st.st_mode):
        return "dir", real, None
    if stat.S_ISREG(st.st_mode):
        return "file", real, None
    return None, None, SPECIAL


def _fd_path(fd: int) -> Path | None:
    """The real path of an open file as the kernel names it (Linux), None elsewhere."""
    try:
        return Path(os.readlink(f"/proc/self/fd/{fd}"))
    except OSError:
        return None


@contextlib.contextmanager
def open_inside(path: Path, root: Path) -> Iterator[BinaryIO]:
    """Open a regular file of the tree for reading; :class:`UnsafePath` when refused.

    The link (if any) is resolved and checked against ``root`` first; the
    resolved file is opened without following a link and checked again
    through the open descriptor, which closes the race with a file swapped
    after the check.
    """
    kind, real, refusal = resolve(path, root)
    if kind != "file" or real is None:
        raise UnsafePath(refusal or "a folder where a file is expected; not read")
    try:
        fd = os.open(real, _READ_FLAGS)
    except OSError:
        raise UnsafePath(UNRESOLVED if os.path.islink(real) else VANISHED) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UnsafePath(SPECIAL)
        opened = _fd_path(fd)
        if opened is not None and not _inside(opened, root):
            raise UnsafePath(OUTSIDE)
        if opened is None:  # no /proc: the path opened must still be the one checked
            st_real = os.stat(real, follow_symlinks=False)
            if (st_real.st_dev, st_real.st_ino) != (st.st_dev, st.st_ino):
                raise UnsafePath(VANISHED)
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        fh = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    with fh:
        yield fh


def read_bytes(path: Path, root: Path) -> bytes:
    """The bytes of a regular file of the tree (:class:`UnsafePath` when refused)."""
    with open_inside(path, root) as fh:
        return fh.read()


def read_head(path: Path, root: Path, size: int) -> bytes:
    """The first ``size`` bytes of a regular file of the tree."""
    with open_inside(path, root) as fh:
        return fh.read(size)
