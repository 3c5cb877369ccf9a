"""One writer per folder: an advisory lock beside each folder (or file) a command writes.

The lock is the OS's (`fcntl.flock` on `.<name>.lock` next to the folder), so it is released when
its holder exits in any way, kill -9 included: a lock is never stale in the sense of blocking
anyone. The file also records who holds it (pid, host, start time, command); a second writer is
refused at once with that record, and a writer that finds the record of a process that died
without releasing says so as it takes over. Readers take no lock and never wait.

Under torchrun only rank 0 locks: the other ranks belong to the same launch.

Locks nest within one thread (a step inside a larger one); another thread of the same process is
another writer, refused like another process. A process forked while holding a lock (a worker
pool) closes its copies of the lock files at once, so that the lock goes when its holder goes,
however its workers end. A writer that takes over a dead writer's lock removes the temporary
files that writer left (atomic.remove_temporaries).
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
import time
import threading
from collections.abc import Iterator
from pathlib import Path

from mlclip_cli.atomic import remove_temporaries
from mlclip_cli.errors import MlclipError

_NESTING = threading.local()  # .held: lock file -> how many times this thread holds it (locks nest)
_HANDLES: dict[Path, object] = {}  # lock file -> its open, locked file, whichever thread holds it
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


def _owner_of_held(handle) -> dict:
    """The holder's record of a lock another process holds. The holder writes it just after taking
    the lock, so a contender that came in between waits briefly (at most half a second) for it."""
    for _ in range(100):
        owner = _read_owner(handle)
        if owner:
            return owner
        time.sleep(0.005)
    return {}


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
    held = _held()
    if path in held:  # this thread already writes it (a step inside a larger one)
        held[path] += 1
        try:
            yield
        finally:
            held[path] -= 1
        return
    handle = _acquire(path, target, what)
    try:
        left = _read_owner(handle)
        if left:  # the holder died without releasing (kill -9, power loss)
            _log.warning(f"{Path(target)}: took over the lock of a process that is gone ({_describe(left)})")
            remove_temporaries(target)  # what it was writing when it died
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                 "started": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                                 "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]])[:300]}))
        handle.flush()
        held[path] = 1
        _HANDLES[path] = handle
        try:
            yield
        finally:
            del held[path]
            path.unlink(missing_ok=True)  # while still held: a process that opened it re-checks its inode
    finally:
        _HANDLES.pop(path, None)
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        handle.close()


def _held() -> dict[Path, int]:
    if not hasattr(_NESTING, "held"):
        _NESTING.held = {}
    return _NESTING.held


def _close_in_child() -> None:
    """In a forked child: close (never unlock) the inherited lock files. A flock belongs to the open
    file, which the child shares: a child that kept it open (a pool worker orphaned by kill -9 of
    its parent) would hold the lock after its parent is gone."""
    if not _HANDLES:
        return
    nothing = os.open(os.devnull, os.O_RDONLY)
    for handle in _HANDLES.values():  # the descriptor now names /dev/null: the handle's own close stays harmless
        with contextlib.suppress(OSError, ValueError):
            os.dup2(nothing, handle.fileno())
    os.close(nothing)
    _HANDLES.clear()
    _NESTING.held = {}


os.register_at_fork(after_in_child=_close_in_child)


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
            owner = _owner_of_held(handle)
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
