"""Lost-update protection over SFTP: the contract of :mod:`.local_guard`
with what SFTP offers.

An SFTP file handle is an open descriptor inside the server process, so it
pins the inode it was opened on exactly as a local descriptor does:

1. *Before*: open the current file (handle kept), read it through the handle
   and hash it; refuse unless it is what the caller planned from.
2. Replace with ``posix-rename`` (``hardlink`` for a file that must not
   exist yet: it fails atomically when the name was taken meanwhile).
3. *After*: wait :data:`SETTLE_SECONDS`, then re-read the replaced file
   through the kept handle. An edit that landed on it is put back and the
   caller gets a ConflictError.

What remains: SFTP cannot tell whether another process still holds the
replaced file open for writing (no lease), so a writer that opened it before
the rename and writes to it more than the settle time later is not seen.
Editors and ``>>`` appends open, write and close within that time.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import posixpath
import secrets

from jupiter.errors import ConflictError
from jupiter.targets._asyncssh import asyncssh
from jupiter.targets.base import Expected

SETTLE_SECONDS = 0.05


async def pin(
    sftp: asyncssh.SFTPClient,
    remote: str,
    rel: str,
    expect: Expected,
    exists: bool,
    where: str,
) -> asyncssh.SFTPClientFile | None:
    """Check ``remote`` against ``expect``; a handle on the checked file
    (``None`` when it is expected absent and is). ConflictError otherwise."""
    if expect.sha256 is None:
        if exists:
            raise ConflictError(
                f"{rel} on {where} was created by someone else after it was planned; their "
                "file was kept and nothing was written"
            )
        return None
    if not exists:
        raise ConflictError(
            f"{rel} on {where} was removed after it was planned; nothing was written"
        )
    handle = await sftp.open(remote, "rb")
    try:
        current = hashlib.sha256(await _read_all(handle)).hexdigest()
        if current != expect.sha256:
            raise ConflictError(
                f"{rel} on {where} changed after it was planned (now sha256 {current[:12]}, "
                f"planned from {expect.sha256[:12]}); their edit was kept and nothing was written"
            )
    except BaseException:
        await handle.close()
        raise
    return handle


async def _read_all(handle: asyncssh.SFTPClientFile) -> bytes:
    data = await handle.read(-1, 0)
    assert isinstance(data, bytes)
    return data


async def lost_edit(handle: asyncssh.SFTPClientFile, expect: Expected) -> bytes | None:
    """After the rename: the replaced file's content when it no longer
    matches ``expect`` (an edit that would otherwise be lost), else ``None``."""
    await asyncio.sleep(SETTLE_SECONDS)
    data = await _read_all(handle)
    if hashlib.sha256(data).hexdigest() == expect.sha256:
        return None
    return data


async def link_new(sftp: asyncssh.SFTPClient, tmp: str, remote: str, rel: str, where: str) -> None:
    """Give the temp file the name ``remote`` only if that name is free."""
    try:
        await sftp.link(tmp, remote)
    except asyncssh.SFTPOpUnsupported:
        # No hardlink extension: SFTPv3 rename does not overwrite either.
        try:
            await sftp.rename(tmp, remote)
        except asyncssh.SFTPFailure as exc:
            raise _taken(rel, where) from exc
        return
    except asyncssh.SFTPError as exc:
        if await _exists(sftp, remote):
            raise _taken(rel, where) from exc
        raise
    await sftp.remove(tmp)


def _taken(rel: str, where: str) -> ConflictError:
    return ConflictError(
        f"{rel} on {where} was created by someone else after it was planned; their file was "
        "kept and nothing was written"
    )


async def _exists(sftp: asyncssh.SFTPClient, remote: str) -> bool:
    try:
        await sftp.lstat(remote)
    except asyncssh.SFTPError:
        return False
    return True


async def keep_aside(sftp: asyncssh.SFTPClient, remote: str, data: bytes) -> str:
    """Save content that could not be put back next to ``remote`` (0600)."""
    directory, name = posixpath.split(remote)
    aside = posixpath.join(directory, f"{name}.jupiter-conflict-{secrets.token_hex(4)}")
    fh = await sftp.open(aside, "xb", asyncssh.SFTPAttrs(permissions=0o600))
    try:
        await fh.write(data)
        with contextlib.suppress(asyncssh.SFTPOpUnsupported):
            await fh.fsync()
    finally:
        await fh.close()
    return posixpath.basename(aside)
