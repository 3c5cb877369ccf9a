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


def _steps() -> list[Step]:
    return [
        Step("generate the embedded world", "mlclip prepare world", None),
        Step("English CLIP for the world", "mlclip pretrain", None),
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
