"""One writer per folder: an advisory lock beside each folder (or file) a command writes.

The lock is the OS's (`fcntl.flock` on `.<name>.lock` next to the folder), so it is released when
its holder exits in any way, kill -9 included: a lock is never stale in the sense of blocking
anyone. The file also records who holds it (pid, host, start time, command); a second writer is
refused at once with that record, and a writer that finds the record of a process that died
without releasing says so as it takes over. Readers take no lock and never wait.

Under torchrun only rank 0 locks: the other ranks belong to the same launch.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import logging
import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

from mlclip_cli.errors import MlclipError

_HELD: dict[Path, int] = {}  # lock file -> how many times this process holds it (locks nest)
_log = logging.getLogger(__name__)  # the CLI prints its warnings as one "note:" line each


class FolderBusy(MlclipError):
    """Another live process is writing the folder."""


def lock_path(target: str | os.PathLike) -> Path:
    target = Path(target).absolute()
    return target.parent / f".{target.name}.lock"


def _describe(owner: dict) -> str:
    return (f"pid {owner.get('pid')} on {owner.get('host')}, since {owner.get('started')}"
            + (f": {owner['command']}" if owner.get("command") else ""))


def _read_owner(handle) -> dict:
    handle.seek(0)
    try:
        owner = json.loads(handle.read() or "{}")
    except (json.JSONDecodeError, UnicodeDecodeError):
        return {}
    return owner if isinstance(owner, dict) else {}


def check_writable(target: str | os.PathLike, what: str = "folder", is_file: bool = False) -> None:
    """Before any work: `target` is (or can be made) a writable `what`. One line otherwise."""
    target = Path(target)
    if target.exists() and target.is_dir() == is_file:
        raise MlclipError(f"{target}: the {what} is {'a folder' if is_file else 'a file'}, not {'a file' if is_file else 'a folder'}")
    existing = target if target.exists() else next(p for p in target.absolute().parents if p.exists())
    if not existing.is_dir() and existing != target:
        raise MlclipError(f"{target}: the {what} cannot be created: {existing} is a file")
    if not os.access(existing if existing.is_dir() else existing.parent, os.W_OK | os.X_OK):
        raise MlclipError(f"{target}: the {what} cannot be written: {existing} is not writable")


@contextlib.contextmanager
def writer_lock(target: str | os.PathLike, what: str = "folder", is_file: bool = False) -> Iterator[None]:
    """Hold the write lock of `target` (a folder, or a file with `is_file`) for the block, after
    checking it can be written; refuse at once, in one line naming the holder, when a live process
    holds it. A taken-over lock is logged (a warning)."""
    check_writable(target, what, is_file)
    if os.environ.get("RANK", "0") != "0":
        yield
        return
    path = lock_path(target)
    if path in _HELD:  # this process already writes it (a step inside a larger one)
        _HELD[path] += 1
        try:
            yield
        finally:
            _HELD[path] -= 1
        return
    handle = _acquire(path, target, what)
    try:
        left = _read_owner(handle)
        if left:  # the holder died without releasing (kill -9, power loss)
            _log.warning(f"{Path(target)}: took over the lock of a process that is gone ({_describe(left)})")
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                 "started": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                                 "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])[:300]}))
        handle.flush()
        _HELD[path] = 1
        try:
            yield
        finally:
            del _HELD[path]
            path.unlink(missing_ok=True)  # while still held: a process that opened it re-checks its inode
    finally:
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        handle.close()


def _acquire(path: Path, target, what: str):
    """The open, locked lock file. A lock file is removed when released, so a process that opened
    it just before may lock a file that no longer has a name: it checks and opens the new one."""
    for _ in range(100):
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            handle = open(path, "a+", encoding="utf-8")  # noqa: SIM115  (held for the whole block)
        except OSError as exc:
            raise MlclipError(f"{Path(target)}: cannot write here ({exc.strerror or exc})") from None
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = _read_owner(handle)
            handle.close()
            raise FolderBusy(f"{Path(target)}: this {what} is being written by another mlclip process "
                             f"({_describe(owner) if owner else 'owner unknown'}); wait for it to finish "
                             "or choose another one") from None
        try:
            same = os.stat(path).st_ino == os.fstat(handle.fileno()).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return handle
        handle.close()  # released and removed meanwhile: take the new one
    raise MlclipError(f"{lock_path(target)}: could not take the lock (it kept changing)")
