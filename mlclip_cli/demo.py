"""`mlclip demo`: the whole pipeline on the embedded default, step by step.

Each step that exists runs; the ones later issues add are listed as not built yet, so the
demo always says truthfully how far the project goes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from mlclip_cli.workspace import Workspace


@dataclass(frozen=True)
class DemoConfig:
    workspace: Workspace
    quick: bool = False  # smaller world and shorter training, for a smoke run


@dataclass
class StepResult:
    name: str
    command: str  # the equivalent command a user would type
    status: str  # "ran" | "not built yet"
    detail: str = ""
    data: object = None  # the step's typed result, for callers that want more than text


@dataclass(frozen=True)
class Step:
    name: str
    command: str
    run: Callable[[DemoConfig], tuple[str, object]] | None  # None: not built yet


QUICK_TRAIN_SCENES = 2_000
QUICK_PRETRAIN_STEPS = 200


def _world_folder(config: DemoConfig):
    return config.workspace.data("world")


def _prepare_world(config: DemoConfig) -> tuple[str, object]:
    from mlclip_cli.datasets.base import PrepareConfig
    from mlclip_cli.datasets.prepare import prepare_dataset

    size = QUICK_TRAIN_SCENES if config.quick else None
    result = prepare_dataset("world", PrepareConfig(root=_world_folder(config), size=size),
                             config.workspace.manifest("world"))
    summary = result.summary
    return (f"{summary['rows']} captions of {summary['images_total']} images in "
            f"{len(summary['rows_per_language_split'])} languages -> {result.manifest}"), result


def _prepare_world_test(config: DemoConfig) -> tuple[str, object]:
    from mlclip_cli.datasets.base import PrepareConfig
    from mlclip_cli.datasets.prepare import prepare_dataset

    result = prepare_dataset("xtd10", PrepareConfig(root=_world_folder(config) / "xtd10"),
                             config.workspace.manifest("xtd10"))
    return f"{result.summary['rows']} test captions (XTD10 layout) -> {result.manifest}", result


def _english_clip(config: DemoConfig) -> tuple[str, object]:
    from mlclip_cli.artifacts import read_manifest
    from mlclip_cli.evaluation import zero_shot_retrieval
    from mlclip_cli.models.clip import SHIPPED, TINY, load_clip

    if (SHIPPED / "model.safetensors").is_file() and not config.quick:
        clip, origin = load_clip(TINY), f"shipped checkpoint {SHIPPED.name}"
    else:
        from mlclip_cli.training.pretrain import PretrainConfig, pretrain

        out = config.workspace.root / "models" / "mlclip-tiny-demo"
        pretrain(PretrainConfig(manifest=config.workspace.manifest("world"), out=out,
                                steps=QUICK_PRETRAIN_STEPS, eval_every=QUICK_PRETRAIN_STEPS))
        clip, origin = load_clip(str(out)), f"pretrained here for {QUICK_PRETRAIN_STEPS} steps ({out})"
    test = read_manifest(config.workspace.manifest("xtd10")).to_pandas()
    english = zero_shot_retrieval(clip, test, ["en"])[0]
    return (f"{origin}; English test mean recall {english.metrics['mean_recall']:.1f} "
            f"(text->image R@1 {english.metrics['image_retrieval_recall@1']:.1f})"), english


def _steps() -> list[Step]:
    return [
        Step("generate the embedded world", "mlclip prepare world --root WORKSPACE/data/world", _prepare_world),
        Step("prepare its XTD10-layout test set", "mlclip prepare xtd10 --root WORKSPACE/data/world/xtd10", _prepare_world_test),
        Step("English CLIP for the world", "mlclip pretrain (or the shipped checkpoint)", _english_clip),
        Step("frozen feature cache", "mlclip features", None),
        Step("zero-shot retrieval benchmark", "mlclip bench xtd --langs all", None),
        Step("teach new languages (MLA)", "mlclip extend", None),
    ]


def run_demo(config: DemoConfig, on_step: Callable[[StepResult], None] | None = None) -> list[StepResult]:
    results = []
    for step in _steps():
        if step.run is None:
            result = StepResult(step.name, step.command, "not built yet")
        else:
            detail, data = step.run(config)
            result = StepResult(step.name, step.command, "ran", detail, data)
        results.append(result)
        if on_step is not None:
            on_step(result)
    return results
