"""File-system failures as user errors: full disk, read-only file system, quota.

HDF5 reports a failed write as an ``OSError`` whose ``errno`` is often unset, with
the system's message buried in its text; these helpers recognise the cases a
user must fix (free space, remount, another directory) and name the path.
"""

from __future__ import annotations

import errno
import os
import tempfile

from hpcspin.errors import DataFileError

_STORAGE = (
    (errno.ENOSPC, ("no space left", "errno = 28"), "no space left on {path}"),
    (errno.EDQUOT, ("quota exceeded", "errno = 122"), "disk quota exceeded on {path}"),
    (errno.EROFS, ("read-only file system", "errno = 30"), "read-only file system: {path}"),
)


def os_error_text(err: BaseException) -> str:
    """One line for an OSError: the system's message (strerror) when it has one."""
    if isinstance(err, OSError) and err.strerror and err.filename:
        return f"{err.strerror}: {err.filename}"
    return str(err)


def storage_problem(err: BaseException, path) -> str | None:
    """The message "no space left on <path>" (read-only, quota) when err is one, else None."""
    text = str(err).lower()
    code = getattr(err, "errno", None)
    for number, needles, message in _STORAGE:
        if code == number or any(n in text for n in needles):
            return message.format(path=os.fspath(path))
    return None


def storage_error(err: BaseException, path, what: str) -> DataFileError:
    """A DataFileError for a failed write of ``what`` to ``path`` (storage cases named)."""
    problem = storage_problem(err, path)
    if problem is not None:
        return DataFileError(
            f"{problem} while writing {what}; free space (or choose a writable "
            "directory) and run again: finished files are intact and the run resumes"
        )
    return DataFileError(f"writing {what} to {path} failed: {os_error_text(err)}")


def check_writable(path, what: str) -> None:
    """Fail early unless a file can be created at ``path`` (its directory is writable).

    Creates and removes a small temporary file next to ``path``; an existing
    ``path`` is left untouched.

    Raises:
        DataFileError: the directory is missing, read-only, full or not writable.
    """
    directory = os.path.dirname(os.path.abspath(os.fspath(path)))
    if not os.path.isdir(directory):
        raise DataFileError(f"{what} {path}: directory {directory} does not exist")
    try:
        fd, tmp = tempfile.mkstemp(prefix=".hpcspin-write-test-", dir=directory)
        try:
            os.write(fd, b"\0" * 4096)  # a full disk may accept the empty file only
            os.fsync(fd)
        finally:
            os.close(fd)
            os.remove(tmp)
    except OSError as err:
        problem = storage_problem(err, directory)
        reason = problem or f"cannot write in {directory} ({os_error_text(err)})"
        raise DataFileError(f"{what} {path}: {reason}") from None


#: Room left beyond a file's payload for HDF5 metadata (object headers, B-trees).
HDF5_OVERHEAD = 32 * 1024


def space_problem(path, nbytes: float) -> str | None:
    """A message when the file system of ``path`` cannot take ``nbytes`` more (else None).

    HDF5 does not recover from a write that fails half-way (the library may crash
    when the broken file is closed), so writers check the free space first.
    """
    directory = os.path.dirname(os.path.abspath(os.fspath(path)))
    try:
        st = os.statvfs(directory)
    except OSError:
        return None  # cannot tell: the write itself reports what goes wrong
    free = st.f_bavail * st.f_frsize
    if free >= nbytes or getattr(st, "f_blocks", 1) == 0:
        return None  # enough room, or a file system that reports no sizes (some FUSE)
    if os.statvfs(directory).f_flag & os.ST_RDONLY:
        return f"read-only file system: {directory}"
    return (
        f"no space left on {directory}: {free} bytes free, about {int(nbytes)} needed to "
        f"write {os.path.basename(os.fspath(path))}; free space and run again "
        "(finished files are intact and the run resumes)"
    )


def require_space(comm, path, nbytes: float, what: str) -> None:
    """Raise on every rank when rank 0 finds too little room for ``nbytes``. Collective.

    Args:
        comm: communicator or None.
        path: file about to be written (its file system is checked).
        nbytes: payload bytes; :data:`HDF5_OVERHEAD` is added.
        what: the write, for the message (e.g. "trajectory frame 12").
    """
    problem = None
    if comm is None or comm.Get_rank() == 0:
        problem = space_problem(path, nbytes + HDF5_OVERHEAD)
    if comm is not None and comm.Get_size() > 1:
        problem = comm.bcast(problem, root=0)
    if problem:
        err = DataFileError(f"{problem} ({what} not written)")
        err.collective = True
        raise err
