"""Atomic file writes: write a temporary file next to the target, rename it into place on success.

A rejected input, an interrupted run or a full disk never leaves a half-written
file, and a reader never sees one. Standard library only (no h5py, no torch), so
that any writer can use it cheaply.

Where the disk is full, a file would outgrow its size limit, or the folder cannot be
written (read-only, no permission), :func:`atomic_path` raises :class:`OutputError`:
one line that names the target and the cause (an ``OSError`` and a ``WtalError``, so
``wtal`` prints it as one line and exits with code 2).

A process killed while it writes (SIGKILL, out of memory) leaves its temporary file
behind: hidden (``.<name>.<host>.<pid>.*.tmp``), never read as the target, and removed
by the next write of the same target on that host once its writer is gone. Files are
not fsynced before the rename: a power loss of the machine may lose the latest writes.
"""

from __future__ import annotations

import errno
import glob
import os
import socket
import tempfile
from contextlib import contextmanager
from pathlib import Path

from wtal_kit.errors import WtalError

# errno values that mean "this output cannot be written here", not "the program is wrong"
DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM})
_HINTS = {errno.ENOSPC: "disk full", errno.EDQUOT: "disk quota exceeded", errno.EFBIG: "file size limit reached",
          errno.EROFS: "read-only folder", errno.EACCES: "check its permissions", errno.EPERM: "check its permissions"}
_PROBE_BYTES = 1 << 16


class OutputError(WtalError, OSError):
    """An output that cannot be written (disk full, file size limit, read-only folder, no permission).

    ``str()`` is one line: ``<path>: cannot write: <cause> (<hint>)``.
    """

    def __init__(self, path, code: int):
        OSError.__init__(self, code, os.strerror(code), str(path))

    def __reduce__(self):  # rebuilt from (path, code) when it crosses a process boundary
        return OutputError, (self.filename, self.errno)

    def __str__(self) -> str:
        return f"{self.filename}: cannot write: {self.strerror} ({_HINTS.get(self.errno, 'check the output folder')})"


def disk_error_line(error: OSError) -> str | None:
    """One line for an OSError that is a disk / folder problem (see :data:`DISK_ERRNOS`), else None."""
    if error.errno not in DISK_ERRNOS:
        return None
    if isinstance(error, OutputError):
        return str(error)
    where = f"{error.filename}: " if error.filename else ""
    return f"{where}{os.strerror(error.errno)} ({_HINTS[error.errno]})"


def _host() -> str:
    return socket.gethostname().replace(os.sep, "_")


def _remove_stale_temporaries(path: Path) -> None:
    """Remove the temporary files of ``path`` whose writer (a process of this host) is gone."""
    prefix = f".{path.name}.{_host()}."
    for stale in path.parent.glob(glob.escape(prefix) + "*.tmp"):
        pid = stale.name[len(prefix):].split(".", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:  # its writer died before renaming it into place
            try:
                stale.unlink(missing_ok=True)
            except OSError:  # not ours to remove: leave it
                pass
        except OSError:  # alive (another user's process), or cannot tell: leave it
            pass


def _disk_problem(tmp: Path) -> int | None:
    """Whether writing more to ``tmp`` fails for a disk reason: that errno, else None.

    Some writers (torch.save) report a short write without its errno; appending one more
    block to the (doomed) temporary file finds out whether the disk is the cause.
    """
    try:
        with open(tmp, "ab") as handle:
            handle.write(b"\0" * _PROBE_BYTES)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as error:
        return error.errno if error.errno in DISK_ERRNOS else None
    return None


def check_room(path: Path, expected_bytes: int) -> None:
    """Raise :class:`OutputError` before writing when ``expected_bytes`` cannot fit next to ``path``.

    Checks the free space of the folder's file system and this process's file size limit
    (RLIMIT_FSIZE). HDF5 cannot be trusted to fail cleanly when the disk fills under it
    (h5py 3.16 with HDF5 2.0 may even crash), so its writers ask first.
    """
    import resource

    limit, _ = resource.getrlimit(resource.RLIMIT_FSIZE)
    if limit != resource.RLIM_INFINITY and expected_bytes > limit:
        raise OutputError(path, errno.EFBIG)
    stats = os.statvfs(path.parent)
    if expected_bytes > stats.f_bavail * stats.f_frsize:
        raise OutputError(path, errno.ENOSPC)


@contextmanager
def atomic_path(path, expected_bytes: int | None = None):
    """Yield a temporary path next to ``path``; rename it onto ``path`` only on success.

    The parent folder is created if needed. On an exception the temporary file is
    removed and ``path`` is left as it was; a full disk or an unwritable folder raises
    :class:`OutputError` (one line naming ``path``). ``expected_bytes``: about how large
    the file will be; where it cannot fit, nothing is written (:func:`check_room`).
    """
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_temporaries(path)
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.{_host()}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        tmp = Path(name)
        if expected_bytes is not None:  # after mkstemp: a read-only folder is reported as such
            check_room(path, expected_bytes)
        yield tmp
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the file the usual permissions
        os.replace(tmp, path)
    except BaseException as error:
        code = getattr(error, "errno", None) if isinstance(error, OSError) else None
        # A library that hides a full disk behind its own error (torch.save, h5py): probe the disk. Not for
        # our own errors (bad input found halfway through): they are what went wrong, and a probe of a
        # large half-written file would cost an fsync.
        if code not in DISK_ERRNOS and tmp is not None and isinstance(error, Exception) and not isinstance(error, WtalError):
            code = _disk_problem(tmp)
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        if code in DISK_ERRNOS and not isinstance(error, OutputError):
            raise OutputError(path, code) from error
        raise


def atomic_write_text(path, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically; return ``path``."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding=encoding)
    return path
