"""Whole-file SHA-256 seals in the HDF5 user block: damaged files are refused unparsed.

HDF5 lets a file begin with a *user block* that the library never reads. hpcspin
creates checkpoints and datasets with a 512-byte user block and, once a file is
closed, writes into it a header::

    HPCSPIN-SEAL v1
    sha256 <64 hex digits>
    size <file size in bytes>

The digest covers every byte after the user block: all datasets, attributes
(step, time, RNG state, provenance) and HDF5's own metadata. A reader checks it
before HDF5 parses anything, so a flipped bit or a truncation is reported as a
clear error instead of reaching the HDF5 library (which may crash or loop on
damaged metadata). A file that is being modified (a dataset during a datagen
run) carries ``HPCSPIN-OPEN v1`` instead: it has no valid digest until the
writer closes it. Files without a user block come from older hpcspin versions;
they are read unverified. A user block with an unrecognised header is damage.
"""

from __future__ import annotations

import hashlib
import os

from hpcspin.errors import DataFileError

USERBLOCK = 512
_SEALED = b"HPCSPIN-SEAL v1\n"
_OPEN = b"HPCSPIN-OPEN v1\n"
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
_CHUNK = 1 << 22

#: States returned by :func:`verify_seal`.
SEALED, OPEN, UNSEALED = "sealed", "open", "unsealed"


def has_userblock(path) -> bool:
    """Whether ``path`` is an HDF5 file with hpcspin's 512-byte user block."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(USERBLOCK + len(_HDF5_SIGNATURE))
    except OSError:
        return False
    return head[USERBLOCK:] == _HDF5_SIGNATURE and not head.startswith(_HDF5_SIGNATURE)


def _digest(path, size: int) -> str:
    """SHA-256 of the bytes after the user block (at most ``size`` bytes read)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        fh.seek(USERBLOCK)
        left = size - USERBLOCK
        while left > 0:
            block = fh.read(min(_CHUNK, left))
            if not block:
                break
            h.update(block)
            left -= len(block)
    return h.hexdigest()


def _write_header(path, header: bytes) -> None:
    with open(path, "r+b") as fh:
        fh.seek(0)
        fh.write(header.ljust(USERBLOCK, b"\0"))
        fh.flush()
        os.fsync(fh.fileno())


def seal_file(path) -> None:
    """Write the digest of a closed file into its user block (no-op without one).

    Raises:
        OSError: the file cannot be read or written (callers convert it).
    """
    if not has_userblock(path):
        return
    size = os.path.getsize(path)
    text = f"sha256 {_digest(path, size)}\nsize {size}\n".encode()
    _write_header(path, _SEALED + text)


def mark_open(path) -> None:
    """Mark a sealed file as being modified (its digest becomes invalid). No-op without one."""
    if has_userblock(path):
        _write_header(path, _OPEN)


def verify_seal(path) -> str:
    """Check a file's seal before HDF5 opens it.

    Returns:
        :data:`SEALED` (digest verified), :data:`OPEN` (being written, or a writer
        was interrupted), :data:`UNSEALED` (no hpcspin user block: an older file).

    Raises:
        DataFileError: the file is missing or unreadable, the seal header is
            damaged, or the content does not match its digest (corrupt or truncated).
    """
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as fh:
            head = fh.read(USERBLOCK)
        if head.startswith(_OPEN):
            return OPEN
        if not head.startswith(_SEALED):
            return _unsealed_state(path, head)
        want, want_size = _parse(path, head[len(_SEALED) :])
        if size != want_size:
            raise DataFileError(
                f"{path}: file is {size} bytes, its seal says {want_size} (truncated or "
                "damaged file); restore it from a copy or delete it"
            )
        got = _digest(path, size)
    except OSError as err:
        raise DataFileError(f"cannot read {path}: {err.strerror or err}") from None
    if got != want:
        raise DataFileError(
            f"{path}: content fails its SHA-256 checksum (corrupt file); restore it "
            "from a copy or delete it"
        )
    return SEALED


def _unsealed_state(path, head: bytes) -> str:
    """A file without a seal header: older file, unsealed new one, or a damaged header."""
    if not has_userblock(path):
        return UNSEALED  # written before seals existed
    if not head.strip(b"\0"):
        return OPEN  # created, never sealed (a writer stopped before its first close)
    raise DataFileError(f"{path}: damaged checksum header (corrupt file)")


def _parse(path, body: bytes) -> tuple[str, int]:
    """Digest and size from the seal header; a damaged header is an error."""
    try:
        lines = body.split(b"\0", 1)[0].decode("ascii").split("\n")
        tag1, digest = lines[0].split(" ")
        tag2, size = lines[1].split(" ")
        ok = tag1 == "sha256" and tag2 == "size" and len(digest) == 64
        int(digest, 16)
        n = int(size)
    except (UnicodeDecodeError, ValueError, IndexError):
        ok = False
    if not ok or n < USERBLOCK:
        raise DataFileError(f"{path}: damaged checksum header (corrupt file)")
    return digest, n
