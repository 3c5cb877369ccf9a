"""`mlclip demo`: the whole pipeline on the embedded default, step by step.

Each step that exists runs; the ones later issues add are listed as not built yet, so the
demo always says truthfully how far the project goes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from mlclip_cli.workspace import Workspace

QUICK_TRAIN_SCENES = 2_000
QUICK_PRETRAIN_STEPS = 200


@dataclass(frozen=True)
class DemoConfig:
    workspace: Workspace
    quick: bool = False  # smaller world and a short pretraining instead of the shipped CLIP


@dataclass
class StepResult:
    name: str
    command: str  # the equivalent command a user would type
    status: str  # "ran" | "not built yet"
    detail: str = ""
    data: object = None  # the step's typed result, for callers that want more than text


@dataclass
class _State:
    model: str = "mlclip-tiny"  # what later steps load: the shipped name or a checkpoint folder
    results: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Step:
    name: str
    command: str
    run: Callable[[DemoConfig, _State], tuple[str, object]] | None  # None: not built yet


def _prepare_world(config: DemoConfig, state: _State):
    from mlclip_cli.datasets.base import PrepareConfig
    from mlclip_cli.datasets.prepare import prepare_dataset

    size = QUICK_TRAIN_SCENES if config.quick else None
    result = prepare_dataset("world", PrepareConfig(root=config.workspace.data("world"), size=size),
                             config.workspace.manifest("world"))
    summary = result.summary
    return (f"{summary['rows']} captions of {summary['images_total']} images in "
            f"{len(summary['rows_per_language_split'])} languages -> {result.manifest}"), result


def _prepare_world_test(config: DemoConfig, state: _State):
    from mlclip_cli.datasets.base import PrepareConfig
    from mlclip_cli.datasets.prepare import prepare_dataset

    result = prepare_dataset("xtd10", PrepareConfig(root=config.workspace.data("world") / "xtd10"),
                             config.workspace.manifest("xtd10"))
    return f"{result.summary['rows']} test captions in XTD10's layout -> {result.manifest}", result


def _english_clip(config: DemoConfig, state: _State):
    from mlclip_cli.models.clip import SHIPPED, TINY

    if (SHIPPED / "model.safetensors").is_file() and not config.quick:
        state.model = TINY
        return f"the shipped {TINY} checkpoint ({SHIPPED})", None
    from mlclip_cli.training.pretrain import PretrainConfig, pretrain

    out = config.workspace.root / "models" / "mlclip-tiny-demo"
    result = pretrain(PretrainConfig(manifest=config.workspace.manifest("world"), out=out,
                                     steps=QUICK_PRETRAIN_STEPS, eval_every=QUICK_PRETRAIN_STEPS))
    state.model = str(out)
    return (f"pretrained here for {QUICK_PRETRAIN_STEPS} steps -> {out} "
            f"(val mean recall {result.val_metrics.get('mean_recall', float('nan')):.1f})"), result


def _features(config: DemoConfig, state: _State):
    from mlclip_cli.bench.run import slug
    from mlclip_cli.encoders import FrozenClip
    from mlclip_cli.features import FeaturesConfig, compute_features

    encoder = FrozenClip.load(state.model)
    folder = config.workspace.features_root / "world" / "train" / slug(encoder.image_identity)
    result = compute_features(FeaturesConfig(manifest=config.workspace.manifest("world"), out=folder,
                                             model=state.model, split="train"), encoder=encoder)
    counts = ", ".join(f"{part} {rows}" for part, rows in result.counts.items())
    return f"{counts} (written {result.shards_written} shards, reused {result.shards_skipped}) -> {folder}", result


def _bench(config: DemoConfig, state: _State):
    from mlclip_cli.bench.run import BenchConfig, run_bench

    result = run_bench(BenchConfig(benchmark="xtd", manifest=config.workspace.manifest("xtd10"),
                                   out_dir=config.workspace.results, features_dir=config.workspace.features_root,
                                   model=state.model))
    english = result.result["languages"]["en"]["metrics"]["mean_recall"]
    others = [v["metrics"]["mean_recall"] for k, v in result.result["languages"].items() if k != "en"]
    return (f"English mean recall {english:.1f}; the other 10 languages zero-shot {min(others):.1f}-{max(others):.1f} "
            f"-> {result.json_path}"), result


def _steps() -> list[Step]:
    return [
        Step("generate the embedded world", "mlclip prepare world --root WORKSPACE/data/world", _prepare_world),
        Step("prepare its XTD10-layout test set", "mlclip prepare xtd10 --root WORKSPACE/data/world/xtd10", _prepare_world_test),
        Step("English CLIP for the world", "mlclip pretrain (or the shipped checkpoint)", _english_clip),
        Step("frozen feature cache (images + English teacher)", "mlclip features world --split train", _features),
        Step("zero-shot retrieval benchmark", "mlclip bench xtd --langs all", _bench),
        Step("teach new languages (MLA)", "mlclip extend", None),
        Step("continual language learning (CLL-CLIP + TEIR)", "mlclip continual", None),
    ]


def run_demo(config: DemoConfig, on_step: Callable[[StepResult], None] | None = None) -> list[StepResult]:
    state = _State()
    results = []
    for step in _steps():
        if step.run is None:
            result = StepResult(step.name, step.command, "not built yet")
        else:
            detail, data = step.run(config, state)
            result = StepResult(step.name, step.command, "ran", detail, data)
        results.append(result)
        if on_step is not None:
            on_step(result)
    return results
