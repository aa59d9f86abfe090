"""Files radar keeps beside a SQLite history: created private, never opened through a link.

A user's history and run locks live in directories other users may share (a project checkout,
/tmp); a link planted at a predictable name must not make radar create, truncate or expose
another file.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import IO

_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


def private_dir(path: Path) -> None:
    """Create `path` with mode 0700 when it is missing (missing parents get the default mode);
    an existing directory keeps its permissions."""
    if not path.is_dir():
        path.mkdir(mode=0o700, parents=True, exist_ok=True)


def prepare_sqlite_file(path: Path) -> None:
    """Before SQLite opens `path`: its directory (0700 when created here) and the file (created
    empty with mode 0600 when missing). An existing file keeps its permissions; a link at `path`
    is refused (OSError ELOOP), so SQLite never creates or opens a file through it."""
    private_dir(path.parent)
    flags = os.O_RDONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | _CLOEXEC
    os.close(os.open(path, flags, 0o600))


def open_lock_file(path: Path) -> IO[str]:
    """`path` opened for reading and writing, created with mode 0600 when missing, in a
    directory created with mode 0700. Neither the directory nor the file is followed when it is a
    link, and a file that is not a regular file of its own (a hard link to another) is refused:
    the caller truncates it."""
    private_dir(path.parent)
    directory = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | _CLOEXEC)
    try:
        fd = os.open(
            path.name, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | _CLOEXEC, 0o600, dir_fd=directory
        )
    finally:
        os.close(directory)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
            raise OSError(f"{path} is not a regular file of its own; refusing to use it as a lock")
        return os.fdopen(fd, "r+", encoding="utf-8")
    except BaseException:
        os.close(fd)
        raise
