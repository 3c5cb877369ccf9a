"""kill -9 at seeded, reproducible moments of prepare, features, train, extend, continual and export.

Each command runs as `mlclip ...` in a child process forked from a forkserver that imported mlclip
once (a kill costs no interpreter start). `faults.arm(n)` makes the child SIGKILL itself at the n-th
kill point it reaches: a training step, a file written in full but not yet renamed into place, a
step of a folder swap. n is drawn with random.Random(SEED) from the points an uninterrupted run of
the same command passed, so every kill is reproducible and nothing sleeps or times itself.

After each kill: what is on disk is the old state or the new one, as the library's own readers and
checkers see it (read_manifest, the feature shards and features.json, read_extension and
packs.problems, snapshot.read with its hashes); the same command rerun (with --resume where it
has one) finishes; and then every file has the bytes of the uninterrupted run's (JSON files
compared without the times they record). Lock files are left out: they are meant to differ.

One kill point of each command runs by default (drawn); the others are marked slow (its last point,
where it commits, and more drawn):
`python -m pytest -m slow tests/test_fault_injection.py` runs them (see CONTRIBUTING.md).
"""

from __future__ import annotations

import functools
import hashlib
import json
import multiprocessing
import os
import random
import re
import shutil
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import world_with_micro_clip

SEED = 20240607
KILLS = 5  # kill points per command in the full (slow) set; the first one also runs by default
SMALL_WORLD = {"val_scenes": 4, "test_scenes": 4}  # `prepare world` with its default 1000 + 1000 is too slow here
VOLATILE = {"created", "updated", "seconds"}  # what a JSON file records of the clock, not of the work
PRELOAD = ["torch", "mlclip_cli.cli.app", "mlclip_cli.mla.method", "mlclip_cli.continual.runner", "mlclip_cli.features",
           "mlclip_cli.datasets.prepare", __name__]
HAS_ONNX = all(__import__("importlib").util.find_spec(name) for name in ("onnx", "onnxscript", "onnxruntime"))


# ------------------------------------------------------------------------------------- the child


def _child(argv: list[str], kill_at: int | None, log: str, small_world: bool) -> None:
    """`mlclip ARGV` in this (forked) process, armed to kill itself at point `kill_at`; the points
    it passed go to LOG.points.json."""
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    if small_world:
        from mlclip_cli.datasets import world as world_dataset

        world_dataset.WorldConfig = functools.partial(world_dataset.WorldConfig, **SMALL_WORLD)
    from mlclip_cli import faults
    from mlclip_cli.cli.app import main

    faults.arm(kill_at)
    try:
        main(argv)
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    Path(f"{log}.points.json").write_text(json.dumps(faults.passed()), encoding="utf-8")
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


@functools.cache
def _context():
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    return context


def run(argv: list[str], log: Path, kill_at: int | None = None, small_world: bool = False) -> tuple[int, list[str]]:
    """(exit code, or -9 when killed; the kill points passed)."""
    process = _context().Process(target=_child, args=(argv, kill_at, str(log), small_world))
    process.start()
    process.join(600)
    if process.exitcode is None:  # a hang is a failure, not a wait
        process.kill()
        process.join()
        pytest.fail(f"mlclip {' '.join(argv)} hung; see {log}")
    points = Path(f"{log}.points.json")
    return process.exitcode, json.loads(points.read_text(encoding="utf-8")) if points.is_file() else []


# ---------------------------------------------------------------------------------- the commands


@dataclass
class Command:
    """One command under test: what it starts from, its arguments, its rerun's extra arguments, and
    `check`, which reads what a kill left with the library's own readers."""
    name: str
    argv: object  # (ctx) -> list[str]
    check: object  # (ctx, work) -> None
    rerun: tuple[str, ...] = ()
    start_from: str | None = None  # another command's finished work, copied in first
    small_world: bool = False
    needs_onnx: bool = False


def _train_args(ctx):
    return ["train", "--method", "mla", "--langs", "de", "--out", str(ctx.work / "ext"), "--data", ctx.manifest,
            "--model", ctx.model, "--nlt-steps", "6", "--le-steps", "2", "--batch-size", "16", "--vocab-size", "300",
            "--checkpoint-every", "0"]


def _check_manifest(path: Path, summary: Path, rows: int | None) -> None:
    from mlclip_cli.artifacts import read_manifest

    if path.exists():  # the new state: readable, whole, and its summary beside it
        assert rows is None or read_manifest(path).num_rows == rows
        assert json.loads(summary.read_text(encoding="utf-8"))["rows"] == read_manifest(path).num_rows


def _check_world(ctx, work: Path) -> None:
    from PIL import Image

    for image in (work / "world").rglob("*.jpg"):  # every image there is whole (an image there is reused)
        with Image.open(image) as opened:
            opened.load()
    _check_manifest(work / "world.parquet", work / "world.summary.json", ctx.reference_rows("prepare-world"))


def _check_xtd10(ctx, work: Path) -> None:
    _check_manifest(work / "xtd10.parquet", work / "xtd10.summary.json", ctx.reference_rows("prepare-xtd10"))


def _check_features(ctx, work: Path) -> None:
    from mlclip_cli.feature_shards import read_feature_shard

    folder = work / "features"
    rows: dict[str, int] = {}
    for shard in sorted(folder.glob("*.parquet")) if folder.is_dir() else []:  # every shard there is whole
        part = shard.name.rsplit("-", 1)[0]
        rows[part] = rows.get(part, 0) + len(read_feature_shard(shard)[0])
    index = folder / "features.json"
    if index.is_file():  # written last: every part it lists is all there
        for part, entry in json.loads(index.read_text(encoding="utf-8"))["parts"].items():
            assert rows.get(part) == entry["rows"], part


def _check_mla(languages: tuple[set, ...]):
    def check(ctx, work: Path) -> None:
        from mlclip_cli.core.extension import is_extension, read_extension
        from mlclip_cli.mla.packs import problems
        from mlclip_cli.training.checkpoint import read_trainer_state

        out = work / "ext"
        read_trainer_state(out / "state")  # an unfinished run's state is readable (or absent)
        if is_extension(out):
            extension = read_extension(out)
            assert problems(extension) == {} and not extension.broken  # what `mlclip packs check` checks
            assert set(extension.languages) in languages, extension.languages
        else:
            assert languages[0] == set()  # only a first train may leave no extension
    return check


def _check_continual(orders: tuple[list, ...]):
    def check(ctx, work: Path) -> None:
        from mlclip_cli.continual import snapshot

        folder = work / "run" / "extension"
        if snapshot.exists(folder):
            state = snapshot.read(folder)  # every file against the index's hashes
            assert state.info["languages"] in orders, state.info["languages"]
            assert [task["languages"][0] for task in state.record["tasks"]] == state.info["languages"]
        else:
            assert orders[0] == []
    return check


def _check_export(ctx, work: Path) -> None:
    manifest = work / "onnx" / "manifest.json"
    if manifest.exists():
        for name, entry in json.loads(manifest.read_text(encoding="utf-8"))["files"].items():
            assert hashlib.sha256((work / "onnx" / name).read_bytes()).hexdigest() == entry["sha256"], name


COMMANDS = [
    Command("prepare-world", lambda ctx: ["prepare", "world", "--root", str(ctx.work / "world"), "--out",
                                          str(ctx.work / "world.parquet"), "--size", "12"],
            _check_world, small_world=True),
    Command("prepare-xtd10", lambda ctx: ["prepare", "xtd10", "--root", str(ctx.root / "world" / "xtd10"), "--out",
                                          str(ctx.work / "xtd10.parquet")], _check_xtd10),
    Command("features", lambda ctx: ["features", ctx.manifest, "--model", ctx.model, "--langs", "en,de",
                                     "--shard-size", "16", "--out", str(ctx.work / "features")], _check_features),
    Command("train", _train_args, _check_mla((set(), {"de"})), rerun=("--resume",)),
    Command("extend", lambda ctx: ["extend", "--lang", "ru", "--extension", str(ctx.work / "ext"), "--data", ctx.manifest,
                                   "--nlt-steps", "6", "--le-steps", "2", "--batch-size", "16", "--checkpoint-every", "0"],
            _check_mla(({"de"}, {"de", "ru"})), rerun=("--resume",), start_from="train"),
    Command("continual", lambda ctx: ["continual", "--order", "de,ru", "--out", str(ctx.work / "run"), "--data",
                                      ctx.manifest, "--model", ctx.model, "--steps", "4", "--batch-size", "16"],
            _check_continual(([], ["de"], ["de", "ru"])), rerun=("--resume",)),
    Command("extend-cll-clip", lambda ctx: ["extend", "--lang", "fr", "--extension", str(ctx.work / "run" / "extension"),
                                            "--data", ctx.manifest, "--steps", "4"],
            _check_continual((["de", "ru"], ["de", "ru", "fr"])), start_from="continual"),
    Command("export", lambda ctx: ["export", "--format", "onnx", "--extension", str(ctx.work / "ext"), "--langs", "de",
                                   "--out", str(ctx.work / "onnx")], _check_export, start_from="train", needs_onnx=True),
]
BY_NAME = {command.name: command for command in COMMANDS}


# ------------------------------------------------------------------------------ digests and runs


def _normalised(path: Path) -> str:
    """sha256 of a file; of a JSON file without the clock's keys."""
    data = path.read_bytes()
    if path.suffix == ".json":
        def strip(value):
            if isinstance(value, dict):
                return {k: strip(v) for k, v in value.items() if k not in VOLATILE}
            if isinstance(value, list):
                return [strip(v) for v in value]
            return value
        data = json.dumps(strip(json.loads(data)), sort_keys=True).encode()
    return hashlib.sha256(data).hexdigest()


def digest(work: Path) -> dict[str, str]:
    """Every folder and file under `work` as a reader finds it, with each file's hash. A folder
    swapped whole is followed through its link; its versions (`.NAME.v000002`: the current one and
    the one before it) are left out, as are lock files: how many swaps a folder saw is meant to
    differ between a run and a rerun, the state it leads to is not."""
    found = {}
    for top, dirs, files in os.walk(work, followlinks=True):
        dirs[:] = [name for name in dirs if not re.fullmatch(r"\..+\.v[0-9]{6}", name)]
        for name in dirs + files:
            path = Path(top) / name
            if not name.endswith(".lock"):
                found[str(path.relative_to(work))] = "folder" if path.is_dir() else _normalised(path)
    return found


class Context:
    """The world, the micro CLIP, and each command's uninterrupted run (made once, when first needed)."""

    def __init__(self, root: Path):
        self.root = root
        world = world_with_micro_clip(root, 24, 6, 6)
        self.manifest, self.model = str(world["manifest"]), world["model"]
        self.work = root / "work"  # every run of a command happens here: the same paths, the same bytes
        self.references: dict[str, tuple[dict, list[str]]] = {}
        self.logs = root / "logs"
        self.logs.mkdir()

    def argv(self, command: Command, rerun: bool = False) -> list[str]:
        return ["--workspace", str(self.work / "ws"), *command.argv(self), *(command.rerun if rerun else ())]

    def start(self, command: Command) -> None:
        if command.start_from:
            self.reference(BY_NAME[command.start_from])
        if self.work.exists():
            shutil.rmtree(self.work)
        if command.start_from:
            shutil.copytree(self.root / "finished" / command.start_from, self.work, symlinks=True)
        else:
            self.work.mkdir()

    def reference(self, command: Command) -> tuple[dict, list[str]]:
        """The digest of an uninterrupted run, and the kill points it passed."""
        if command.name not in self.references:
            self.start(command)
            code, points = run(self.argv(command), self.logs / f"{command.name}.reference.log",
                               small_world=command.small_world)
            assert code == 0, (self.logs / f"{command.name}.reference.log").read_text()
            assert points, f"{command.name} passed no kill point"
            shutil.copytree(self.work, self.root / "finished" / command.name, symlinks=True)
            self.references[command.name] = digest(self.work), points
        return self.references[command.name]

    def reference_rows(self, name: str) -> int:
        from mlclip_cli.artifacts import read_manifest

        return read_manifest(self.root / "finished" / name / f"{name.split('-')[1]}.parquet").num_rows


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    return Context(tmp_path_factory.mktemp("faults"))


def kill_points(points: list[str], command: str) -> list[int]:
    """The points (1-based) a command is killed at: one drawn with random.Random(SEED), then its last
    (where it commits: an index, a card, a swap's link), then more drawn; KILLS in all."""
    order = list(range(1, len(points)))
    random.Random(f"{SEED}:{command}").shuffle(order)
    return (order[:1] + [len(points)] + order[1:])[:KILLS]


CASES = [pytest.param(command.name, index, id=f"{command.name}-{index}",
                      marks=([pytest.mark.slow] if index else []) +
                      ([pytest.mark.skipif(not HAS_ONNX, reason="needs the onnx extra (pip install -e '.[onnx]')")]
                       if command.needs_onnx else []))
         for command in COMMANDS for index in range(KILLS)]


@pytest.mark.parametrize("name, index", CASES)
def test_a_kill_leaves_the_old_or_the_new_state_and_a_rerun_ends_with_the_same_bytes(ctx, name, index):
    command = BY_NAME[name]
    expected, points = ctx.reference(command)
    if index >= len(points):
        pytest.skip(f"{name} passes {len(points)} kill points")
    at = kill_points(points, name)[index]
    where = f"{name}: killed at point {at} of {len(points)} ({points[at - 1]})"
    ctx.start(command)
    log = ctx.logs / f"{name}.{at}"
    code, _ = run(ctx.argv(command), Path(f"{log}.killed.log"), kill_at=at, small_world=command.small_world)
    assert code == -signal.SIGKILL, f"{where}: exit {code}\n{Path(f'{log}.killed.log').read_text()}"
    command.check(ctx, ctx.work)  # the old state or the new one, whole
    code, _ = run(ctx.argv(command, rerun=True), Path(f"{log}.rerun.log"), small_world=command.small_world)
    assert code == 0, f"{where}: the rerun failed\n{Path(f'{log}.rerun.log').read_text()}"
    found = digest(ctx.work)
    differ = sorted(rel for rel in set(found) | set(expected) if found.get(rel) != expected.get(rel))
    assert not differ, f"{where}: after the rerun these differ from an uninterrupted run: {differ[:10]}"
