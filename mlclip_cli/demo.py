"""`mlclip demo`: the whole pipeline on the embedded default, step by step.

Every step runs in order (or reuses its finished artifact and says so); the report folder
(demo_report.py) is written at the end.
"""

from __future__ import annotations

import ctypes
import gc
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from mlclip_cli.demo_report import write_report
from mlclip_cli.workspace import Workspace

QUICK_TRAIN_SCENES = 2_000
QUICK_FOLDER = "quick"
QUICK_PRETRAIN_STEPS = 200
MLA_LANGUAGES = ("de", "fr", "es", "it", "ru", "pl", "tr", "zh", "ja")  # Korean comes later, by extend
ADDED_LANGUAGE = "ko"
QUICK_MLA_STEPS = (60, 10, 40)  # NLT, LE, and NLT of the extend step


@dataclass(frozen=True)
class DemoConfig:
    workspace: Workspace
    quick: bool = False  # smaller world and a short pretraining instead of the shipped CLIP

    @property
    def space(self) -> Workspace:
        """Where the run's artifacts go: a quick run keeps to WORKSPACE/quick, so it never reuses
        (or overwrites) the full run's world, packs or sequences, nor they its."""
        return Workspace(self.workspace.root / QUICK_FOLDER) if self.quick else self.workspace


@dataclass
class StepResult:
    name: str
    command: str  # the equivalent command a user would type
    status: str  # "ran" (recorded in report.json)
    detail: str = ""
    data: object = None  # the step's typed result, for callers that want more than text
    seconds: float = 0.0  # wall time of the step


@dataclass
class _State:
    model: str = "mlclip-tiny"  # what later steps load: the shipped name or a checkpoint folder
    results: dict = field(default_factory=dict)
    zero_shot: dict | None = None  # bench result of the frozen CLIP
    extension: str | None = None
    progress: Callable[[str, int, int], None] | None = None  # the library functions' (name, done, total)


@dataclass(frozen=True)
class Step:
    name: str
    command: str
    run: Callable[[DemoConfig, _State], tuple[str, object]]


def _world_is_ready(config: DemoConfig, size: int | None) -> bool:
    """The world and its manifest exist, from this version and size: regenerating would write the same."""
    from mlclip_cli.world.generate import WORLD_VERSION, WorldConfig

    record = config.space.data("world") / "world.json"
    manifest = config.space.manifest("world")
    if not (record.is_file() and manifest.is_file() and manifest.with_suffix(".summary.json").is_file()):
        return False
    written = json.loads(record.read_text(encoding="utf-8"))
    return (written.get("world_version") == WORLD_VERSION
            and written.get("config", {}).get("train_scenes") == (size or WorldConfig().train_scenes)
            and manifest.stat().st_mtime >= record.stat().st_mtime)


def _prepare_world(config: DemoConfig, state: _State):
    from mlclip_cli.datasets.base import PrepareConfig
    from mlclip_cli.datasets.prepare import prepare_dataset

    size = QUICK_TRAIN_SCENES if config.quick else None
    if _world_is_ready(config, size):
        summary = json.loads(config.space.manifest("world").with_suffix(".summary.json").read_text(encoding="utf-8"))
        return (f"reused the generated world: {summary['rows']} captions of {summary['images_total']} images "
                f"-> {config.space.manifest('world')}"), None
    result = prepare_dataset("world", PrepareConfig(root=config.space.data("world"), size=size),
                             config.space.manifest("world"))
    summary = result.summary
    return (f"{summary['rows']} captions of {summary['images_total']} images in "
            f"{len(summary['rows_per_language_split'])} languages -> {result.manifest}"), result


def _prepare_world_test(config: DemoConfig, state: _State):
    from mlclip_cli.datasets.base import PrepareConfig
    from mlclip_cli.datasets.prepare import prepare_dataset

    result = prepare_dataset("xtd10", PrepareConfig(root=config.space.data("world") / "xtd10"),
                             config.space.manifest("xtd10"))
    return f"{result.summary['rows']} test captions in XTD10's layout -> {result.manifest}", result


def _english_clip(config: DemoConfig, state: _State):
    from mlclip_cli.models.clip import SHIPPED, TINY

    if (SHIPPED / "model.safetensors").is_file() and not config.quick:
        state.model = TINY
        return f"the shipped {TINY} checkpoint ({SHIPPED})", None
    from mlclip_cli.training.pretrain import PretrainConfig, pretrain

    out = config.space.root / "models" / "mlclip-tiny-demo"
    state.model = str(out)
    finished = out / "trainer_state.json"
    if (out / "model.safetensors").is_file() and finished.is_file() and \
            json.loads(finished.read_text(encoding="utf-8")).get("step") == QUICK_PRETRAIN_STEPS:
        return f"reused the CLIP pretrained here for {QUICK_PRETRAIN_STEPS} steps -> {out}", None
    result = pretrain(PretrainConfig(manifest=config.space.manifest("world"), out=out,
                                     steps=QUICK_PRETRAIN_STEPS, eval_every=QUICK_PRETRAIN_STEPS))
    state.model = str(out)
    return (f"pretrained here for {QUICK_PRETRAIN_STEPS} steps -> {out} "
            f"(val mean recall {result.val_metrics.get('mean_recall', float('nan')):.1f})"), result


def _features(config: DemoConfig, state: _State):
    from mlclip_cli.encoders import FrozenClip
    from mlclip_cli.features import FeaturesConfig, compute_features

    encoder = FrozenClip.load(state.model)  # the frozen teacher: its features feed MLA
    folder = config.space.feature_folder(config.space.manifest("world"), "train", encoder.image_identity)
    result = compute_features(FeaturesConfig(manifest=config.space.manifest("world"), out=folder,
                                             model=state.model, split="train"), encoder=encoder,
                              progress=state.progress)
    counts = ", ".join(f"{part} {rows}" for part, rows in result.counts.items())
    return f"{counts} (written {result.shards_written} shards, reused {result.shards_skipped}) -> {folder}", result


def _bench(config: DemoConfig, state: _State):
    from mlclip_cli.bench.run import BenchConfig, run_bench

    result = run_bench(BenchConfig(benchmark="xtd", manifest=config.space.manifest("xtd10"),
                                   out_dir=config.space.results, features_dir=config.space.features_root,
                                   model=state.model), progress=state.progress)
    state.zero_shot = result.result
    english = result.result["languages"]["en"]["metrics"]["mean_recall"]
    others = [v["metrics"]["mean_recall"] for k, v in result.result["languages"].items() if k != "en"]
    return (f"English mean recall {english:.1f}; the other 10 languages zero-shot {min(others):.1f}-{max(others):.1f} "
            f"-> {result.json_path}"), result


def _mla_loop(config: DemoConfig, extend: bool = False):
    from dataclasses import replace

    from mlclip_cli.mla.train import LoopConfig

    loop = LoopConfig()
    if config.quick:
        nlt, le, ko = QUICK_MLA_STEPS
        loop = replace(loop, nlt=replace(loop.nlt, steps=ko if extend else nlt), le=replace(loop.le, steps=le),
                       eval_every=10_000)
    else:
        loop = replace(loop, nlt=replace(loop.nlt, steps=EXTEND_NLT_STEPS if extend else DEMO_NLT_STEPS))
    return loop


# The demo's budget (10 minutes on 2 cores, everything included) buys 500 of `train`'s 900 NLT
# steps; `mlclip train` keeps the world default (figures in docs/benchmarks.md).
DEMO_NLT_STEPS = 500
EXTEND_NLT_STEPS = 250


def _mla_train(config: DemoConfig, state: _State):
    from mlclip_cli.mla.method import MlaConfig, train_mla
    from mlclip_cli.core.extension import is_extension, read_extension

    out = config.space.extension("mla")
    state.extension = str(out)
    if is_extension(out) and set(MLA_LANGUAGES) <= set(read_extension(out).languages):
        return f"reused the finished extension {out} ({', '.join(read_extension(out).languages)})", None
    result = train_mla(MlaConfig(manifest=config.space.manifest("world"), out=out, languages=MLA_LANGUAGES,
                                 features_root=config.space.features_root, model=state.model,
                                 loop=_mla_loop(config), resume=True), progress=state.progress)
    scores = ", ".join(f"{k} {v['image_retrieval_recall@1']:.1f}" for k, v in result.loop.val.items())
    return f"{result.loop.steps} steps in {result.loop.seconds:.0f} s; val t2i R@1 {scores} -> {out}", result


def _mla_extend(config: DemoConfig, state: _State):
    from mlclip_cli.mla.method import MlaConfig, extend_mla
    from mlclip_cli.core.extension import read_extension

    out = config.space.extension("mla")
    if ADDED_LANGUAGE in read_extension(out).languages:
        return f"reused the finished '{ADDED_LANGUAGE}' pack in {out}", None
    result = extend_mla(MlaConfig(manifest=config.space.manifest("world"), out=out, languages=(ADDED_LANGUAGE,),
                                  features_root=config.space.features_root, loop=_mla_loop(config, extend=True),
                                  resume=True), progress=state.progress)
    metrics = result.loop.val.get(ADDED_LANGUAGE, {})
    return (f"{result.loop.steps} steps in {result.loop.seconds:.0f} s, {result.tokenizer_note[ADDED_LANGUAGE]}; "
            f"val t2i R@1 {metrics.get('image_retrieval_recall@1', float('nan')):.1f}; "
            "the other packs' files untouched"), result


def _mla_bench(config: DemoConfig, state: _State):
    from mlclip_cli.bench.run import BenchConfig, run_bench

    result = run_bench(BenchConfig(benchmark="xtd", manifest=config.space.manifest("xtd10"),
                                   out_dir=config.space.results, features_dir=config.space.features_root,
                                   model=state.extension), progress=state.progress)
    state.results["mla"] = result.result
    others = [v["metrics"]["mean_recall"] for k, v in result.result["languages"].items() if k != "en"]
    return (f"with the extension the 10 other languages reach mean recall {min(others):.1f}-{max(others):.1f} "
            f"-> {result.json_path}"), result


# The demo's sequence: English, then four Latin-script languages (they share the most sub-words,
# so that is where forgetting shows); the full 11-language order is in docs/benchmarks.md.
CONTINUAL_ORDER = ("en", "it", "de", "fr", "es")
CONTINUAL_STEPS = 40
QUICK_CONTINUAL = (("en", "de"), 6)


def _continual(teir: str):
    def run(config: DemoConfig, state: _State):
        from dataclasses import replace

        from mlclip_cli.continual import snapshot
        from mlclip_cli.continual.runner import ContinualConfig, TaskLoop, run_continual, settings_match
        from mlclip_cli.continual.teir import TeirConfig

        order, steps = QUICK_CONTINUAL if config.quick else (CONTINUAL_ORDER, CONTINUAL_STEPS)
        out = config.space.continual_run("cll-clip", teir, prefix="demo-")
        run_config = ContinualConfig(
            manifest=config.space.manifest("world"), out=out, order=order, features_root=config.space.features_root,
            learner="cll-clip", teir=TeirConfig.parse(teir), model=state.model, test_manifest=config.space.manifest("xtd10"),
            loop=replace(TaskLoop(), steps=steps, batch_size=32 if config.quick else TaskLoop().batch_size), resume=True)
        redone = not settings_match(run_config)
        if redone:  # the demo's own folder, made by an earlier version with other defaults: run it again
            shutil.rmtree(out)
        reused = snapshot.exists(out / "extension")
        result = run_continual(run_config, progress=state.progress)
        state.results[f"continual-{teir}"] = result
        block = result.summary["metrics"]["image_retrieval_recall@1"]
        how = "reused the finished run" if reused and result.resumed_from == len(result.tasks) else f"{result.seconds:.0f} s"
        if redone:
            how += "; run again: the one there had other settings (an earlier version's defaults)"
        return (f"{' -> '.join(order)}: t2i R@1 AA {block['final_aa']:.1f}, F {block['final_f']:.1f} ({how}) "
                f"-> {out}"), result
    return run


def _steps() -> list[Step]:
    return [
        Step("generate the embedded world", "mlclip prepare world --root WORKSPACE/data/world", _prepare_world),
        Step("prepare its XTD10-layout test set", "mlclip prepare xtd10 --root WORKSPACE/data/world/xtd10", _prepare_world_test),
        Step("English CLIP for the world", "mlclip pretrain (or the shipped checkpoint)", _english_clip),
        Step("frozen feature cache (images + English teacher)", "mlclip features world --split train", _features),
        Step("zero-shot retrieval benchmark", "mlclip bench xtd --langs all", _bench),
        Step("teach nine languages (MLA)", "mlclip train --method mla --langs " + ",".join(MLA_LANGUAGES), _mla_train),
        Step("add Korean, touching nothing else", f"mlclip extend --lang {ADDED_LANGUAGE}", _mla_extend),
        Step("retrieval with the extension", "mlclip bench xtd --langs all --model WORKSPACE/extensions/mla", _mla_bench),
        Step("continual languages, plain CLL-CLIP", "mlclip continual --order " + ",".join(CONTINUAL_ORDER), _continual("none")),
        Step("continual languages, CLL-CLIP + TEIR", "mlclip continual --teir --order " + ",".join(CONTINUAL_ORDER),
             _continual("both")),
    ]


BASE_STEPS = 4  # world, its test set, the English CLIP, the feature cache: what every later step needs


def release_memory() -> None:
    """Give back to the system what a finished step freed: Python's garbage, Arrow's pool and the C
    heap's free pages (glibc), which the process otherwise keeps. Each step returned 0.2-0.7 GB this
    way, memory the next step would have started on top of (docs/benchmarks.md)."""
    import pyarrow as pa

    gc.collect()
    pa.default_memory_pool().release_unused()
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to trim
        pass


def prepare_base(config: DemoConfig, progress: Callable[[str, int, int], None] | None = None) -> str:
    """Run (or reuse) the demo's first steps; return the English CLIP's spec for later steps."""
    state = _State(progress=progress)
    for step in _steps()[:BASE_STEPS]:
        step.run(config, state)
    return state.model


@dataclass
class DemoResult:
    steps: list[StepResult]
    zero_shot: dict | None
    mla: dict | None
    continual: dict = field(default_factory=dict)  # "none" / "both" (TEIR) -> ContinualResult
    report: object = None  # demo_report.DemoReport: the report folder's files


def run_demo(config: DemoConfig, on_step: Callable[[StepResult], None] | None = None,
             on_start: Callable[[int, int, Step], None] | None = None,
             progress: Callable[[str, int, int], None] | None = None) -> DemoResult:
    """Run every step in order; `on_start(index, count, step)` before each, `on_step(result)` after,
    `progress(name, done, total)` from inside the steps. Ends by writing the report folder."""
    state = _State(progress=progress)
    results = []
    steps = _steps()
    for index, step in enumerate(steps):
        if on_start is not None:
            on_start(index, len(steps), step)
        began = time.perf_counter()
        detail, data = step.run(config, state)
        result = StepResult(step.name, step.command, "ran", detail, data)
        result.seconds = time.perf_counter() - began
        release_memory()  # before the next step: the peak is one step's, not the sum of what each kept
        results.append(result)
        if on_step is not None:
            on_step(result)
    continual = {key.split("-", 1)[1]: value for key, value in state.results.items() if key.startswith("continual-")}
    demo = DemoResult(results, state.zero_shot, state.results.get("mla"), continual)
    if demo.zero_shot is not None:
        demo.report = write_report(config.space.root / "report", demo, "mlclip demo --quick" if config.quick else "mlclip demo")
    return demo
