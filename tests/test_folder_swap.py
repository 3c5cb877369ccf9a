"""A folder swapped whole (core.extension.swap_in) is seen old or new, never missing or mixed; a kill
at any step of a swap leaves one whole state; two writers of one folder never both go on."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from mlclip_cli import faults
from mlclip_cli.core.extension import read_whole, recover, resolve, swap_in
from mlclip_cli.errors import MlclipError
from mlclip_cli.locks import FolderBusy, writer_lock

SWAPS = 60  # swaps the writer makes while the test reads
READS = 100_000  # a bound on the reader's loop (it stops when the writer has finished)

# Holds a folder's lock, forks a worker that outlives it, and dies by kill -9 (like `prepare world`
# killed while its image workers ran).
ORPHANING = """
import os, signal, sys
from mlclip_cli.locks import writer_lock
with writer_lock(sys.argv[1]):
    started, ready = os.pipe()
    if os.fork() == 0:  # the fork hooks have run once the child runs its own code
        os.write(ready, b"1")
        os.read(0, 1)  # a worker waiting for work that never comes
        os._exit(0)
    os.read(started, 1)  # die only once the worker runs (under load it may start late)
    print("forked", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
"""
CONTENDER = """
import sys
from mlclip_cli.locks import FolderBusy, writer_lock
print("ready", flush=True)
sys.stdin.readline()  # go
try:
    with writer_lock(sys.argv[1], "extension folder"):
        print("held", flush=True)
        sys.stdin.readline()  # release
except FolderBusy as exc:
    print("refused", exc, flush=True)
"""


def _write(folder: Path, generation: int) -> None:
    """Generation G of a folder: two files whose bytes depend on G, then index.json (last) with their
    hashes. A folder is whole when the index names G and both hashes match."""
    hashes = {}
    for name in ("a.bin", "b.bin"):
        data = hashlib.sha256(f"{name}:{generation}".encode()).digest() * (2048 + generation)
        (folder / name).write_bytes(data)
        hashes[name] = hashlib.sha256(data).hexdigest()
    (folder / "index.json").write_text(json.dumps({"generation": generation, "files": hashes}))


def _in_child(work) -> int:
    """Fork; run work() in the child (file work only, so forking a process that ran torch is safe);
    the child's exit status (-9 when it killed itself)."""
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            work()
        except BaseException:
            code = 3
        os._exit(code)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def _read(version: Path) -> int:
    """The generation of a whole folder; an AssertionError for a mixed or half one."""
    index = json.loads((version / "index.json").read_text())
    for name, digest in index["files"].items():
        assert hashlib.sha256((version / name).read_bytes()).hexdigest() == digest, f"{version / name} is not whole"
    return index["generation"]


def test_a_reader_during_repeated_swaps_always_finds_one_whole_state(tmp_path):
    folder = tmp_path / "ext"
    folder.mkdir()  # a plain folder written before versions: the first swap makes it versioned
    _write(folder, 0)
    go_read, go_write = os.pipe()

    def write_generations() -> None:
        with writer_lock(folder):
            os.read(go_read, 1)  # the reader has started
            for generation in range(1, SWAPS + 1):
                with swap_in(folder) as staged:
                    _write(staged, generation)

    writer = os.fork()
    if writer == 0:
        code = 0
        try:
            write_generations()
        except BaseException:
            code = 3
        os._exit(code)
    seen = [read_whole(folder, _read)]
    os.write(go_write, b"g")
    status = None
    for _ in range(READS):
        done, status = os.waitpid(writer, os.WNOHANG)
        if done:
            break
        seen.append(read_whole(folder, _read))  # one version, every file of it whole
        version = resolve(folder)
        try:  # a plain open through the link: never half
            index = json.loads((folder / "index.json").read_text())
        except FileNotFoundError:  # only when that version was retired meanwhile (two swaps later)
            assert not version.exists()
        else:
            assert set(index["files"]) == {"a.bin", "b.bin"}
    else:
        status = os.waitpid(writer, 0)[1]
    assert os.waitstatus_to_exitcode(status) == 0
    seen.append(read_whole(folder, _read))
    assert seen[-1] == SWAPS and seen == sorted(seen)  # never back to an older state
    assert len(set(seen)) > 2  # it did read while the writer swapped
    assert folder.is_symlink() and sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".ext")) == \
        [f".ext.v{SWAPS + 0:06d}", f".ext.v{SWAPS + 1:06d}"]  # the current version and the one before


@pytest.mark.parametrize("plain", [True, False], ids=["plain-folder", "versioned-folder"])
@pytest.mark.parametrize("kill_at", [1, 2, 3, 4])
def test_a_kill_at_any_step_of_a_swap_leaves_the_old_or_the_new_state(tmp_path, plain, kill_at):
    folder = tmp_path / "ext"
    if plain:
        folder.mkdir()
        _write(folder, 0)
    else:
        with swap_in(folder) as staged:
            _write(staged, 0)
    def swap() -> None:
        faults.arm(kill_at)
        with swap_in(folder) as staged:
            _write(staged, 1)

    steps = 4 if plain else 3  # staged, new version, (a plain folder retired), switched
    assert _in_child(swap) == (0 if kill_at > steps else -signal.SIGKILL)
    # what a reader finds right after the kill: the new state once the folder's name leads to it
    assert read_whole(folder, _read) == (1 if kill_at >= 3 else 0)
    recover(folder)  # what the next writer does first: a version renamed whole is finished, not undone
    assert read_whole(folder, _read) == (1 if kill_at >= 2 else 0)
    with swap_in(folder) as staged:  # and the folder goes on
        _write(staged, 7)
    assert read_whole(folder, _read) == 7 and not list(tmp_path.glob(".ext.next*")) and not list(tmp_path.glob(".ext.link-*"))


def test_two_writer_processes_on_one_folder_never_both_go_on(tmp_path):
    folder = tmp_path / "ext"
    for _ in range(3):
        contenders = [subprocess.Popen([sys.executable, "-c", CONTENDER, str(folder)], stdin=subprocess.PIPE,
                                       stdout=subprocess.PIPE, text=True) for _ in range(2)]
        try:
            assert [c.stdout.readline().strip() for c in contenders] == ["ready", "ready"]
            for contender in contenders:  # both try at once
                contender.stdin.write("go\n")
                contender.stdin.flush()
            answers = [c.stdout.readline().strip() for c in contenders]  # the winner holds until told
            held = [c for c, answer in zip(contenders, answers) if answer == "held"]
            refused = [answer for answer in answers if answer.startswith("refused")]
            assert len(held) == 1 and len(refused) == 1, answers
            assert f"{folder}: this extension folder is being written by another mlclip process (pid {held[0].pid}" \
                in refused[0] and "\n" not in refused[0]
            held[0].stdin.write("release\n")
            held[0].stdin.flush()
            assert [c.wait() for c in contenders] == [0, 0]
        finally:
            for contender in contenders:
                contender.kill()
                contender.wait()


def test_two_writer_threads_on_one_folder_never_both_go_on(tmp_path):
    folder = tmp_path / "ext"
    both_tried = threading.Barrier(2)
    release = threading.Event()
    outcomes: list[str] = []

    def contend() -> None:
        both_tried.wait(timeout=60)
        try:
            with writer_lock(folder):
                outcomes.append("held")
                release.wait(timeout=60)  # hold until the other has tried
        except FolderBusy as exc:
            outcomes.append(f"refused: {exc}")
            release.set()

    threads = [threading.Thread(target=contend) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert sorted(outcome.split(":")[0] for outcome in outcomes) == ["held", "refused"], outcomes
    with writer_lock(folder), writer_lock(folder):  # within one thread, locks still nest
        pass


def test_a_folder_written_before_versions_is_read_as_it_is(tmp_path):
    folder = tmp_path / "ext"
    folder.mkdir()
    _write(folder, 3)
    assert resolve(folder) == folder and read_whole(folder, _read) == 3
    with pytest.raises(MlclipError, match="no such extension index"):  # a reader's own error is not retried away
        from mlclip_cli.core.extension import read_extension
        read_extension(folder)


def test_a_worker_that_outlives_a_killed_writer_does_not_keep_its_lock(tmp_path, caplog):
    folder = tmp_path / "world"
    writer = subprocess.Popen([sys.executable, "-c", ORPHANING, str(folder)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().strip() == "forked"
        assert writer.wait() == -signal.SIGKILL  # its worker still runs, with a copy of every descriptor
        with caplog.at_level("WARNING", logger="mlclip_cli"), writer_lock(folder):
            pass  # the lock went with its holder
        assert f"took over the lock of a process that is gone (pid {writer.pid}" in caplog.text
    finally:
        writer.stdin.close()  # the worker reads end-of-file and exits
        writer.kill()
        writer.wait()


def test_a_swapped_folder_copied_without_following_links_is_named_in_one_line(tmp_path):
    folder = tmp_path / "ext"
    for generation in (1, 2):
        with swap_in(folder) as staged:
            _write(staged, generation)
    copy = tmp_path / "elsewhere" / "ext"
    copy.parent.mkdir()
    subprocess.run(["cp", "-r", str(folder), str(copy)], check=True)  # copies the link alone
    assert copy.is_symlink() and not copy.exists()
    with pytest.raises(MlclipError, match=r"cp -rL"):
        resolve(copy)
    followed = tmp_path / "followed"
    subprocess.run(["cp", "-rL", str(folder), str(followed)], check=True)
    assert read_whole(followed, _read) == 2
