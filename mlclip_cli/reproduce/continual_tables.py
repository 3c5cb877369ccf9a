"""CLL-CLIP's tables on the world: TEIR's components, and the continual baselines.

The paper's sequence is 36 languages of XM3600 on ViT-B/16; the world's full 11-language sequence
takes 6-7 minutes a run (docs/benchmarks.md), so these tables use a shorter order to fit 10
minutes: English then the Latin-script languages, which share the most sub-words and so forget the
most.
"""

from __future__ import annotations

from dataclasses import replace

from mlclip_cli.continual.runner import TaskLoop
from mlclip_cli.continual.teir import TeirConfig
from mlclip_cli.reproduce.table import PaperFigures, Table, TableRows, register
from mlclip_cli.reproduce.rows import MEAN, R1, continual_row

TEIR_ORDER, BASELINE_ORDER, QUICK_ORDER = ("en", "it", "de", "fr", "es"), ("en", "it", "de", "fr"), ("en", "de")
STEPS, QUICK_STEPS = 60, 2
XM3600 = "CLL-CLIP's released results (yangbang18/CLFM reproducibility CSVs), XM3600, 36 languages, ViT-B/16"


def _xm3600(rows: list[list[str]], claim: str) -> PaperFigures:
    """CLL-CLIP's released XM3600 figures, in the columns both continual tables print."""
    return PaperFigures(source=XM3600, columns=["run", "AA t2i R@1", "F t2i R@1", "AA mean", "F mean"], rows=rows,
                        claim=claim)


def _loop(ctx) -> TaskLoop:
    return replace(TaskLoop(), steps=QUICK_STEPS, batch_size=32) if ctx.quick else replace(TaskLoop(), steps=STEPS)


def _table(ctx, order, runs) -> TableRows:
    order = QUICK_ORDER if ctx.quick else order
    loop = _loop(ctx)
    rows = []
    for title, key, learner, teir in runs:
        ctx.row(title)
        done = continual_row(ctx, key, order, learner, teir, loop)
        metrics = done["scores"]["metrics"]
        final = metrics[R1]["matrix"][-1]
        rows.append([title, metrics[R1]["final_aa"], metrics[R1]["final_f"], metrics[MEAN]["final_aa"],
                     metrics[MEAN]["final_f"], final[0], f"{done['seconds']:.0f}"])
    settings = {"order": " -> ".join(order), "steps per language": loop.steps, "lr": loop.lr,
                "batch": loop.batch_size, "model": ctx.model}
    return TableRows(["run", "AA t2i R@1", "F t2i R@1", "AA mean", "F mean", "English final t2i R@1", "s"],
                     rows, settings)


def _sequences(order, runs, note: str):
    """A table of continual runs over one order, one row each (title, key, learner, TEIR), with a note."""
    def run(ctx) -> TableRows:
        table = _table(ctx, order, runs)
        table.notes.append(note)
        return table
    return run


_teir = _sequences(
    TEIR_ORDER,
    [("CLL-CLIP", "plain", "cll-clip", TeirConfig.parse("none")),
     ("+ init only", "init", "cll-clip", TeirConfig.parse("init")),
     ("+ reg only", "reg", "cll-clip", TeirConfig.parse("reg")),
     ("+ TEIR (init + reg)", "teir", "cll-clip", TeirConfig.parse("both")),
     ("+ TEIR, 1/f per-row update not normalised", "teir-update", "cll-clip", TeirConfig.parse("both", freq="update")),
     ("+ TEIR, the mask only (no 1/f)", "teir-off", "cll-clip", TeirConfig.parse("both", freq="off")),
     ("+ TEIR, the paper's 1/f on the gradient", "teir-grad", "cll-clip", TeirConfig.parse("both", freq="grad"))],
    "mlclip's TEIR scales each row's whole update by 1/f, normalised so a task's rows move as much on average as "
    "without TEIR (--teir-freq balanced, the default). Under Adam the paper's 1/f gradient scale cancels (measured; "
    "docs/continual.md): the last row is the paper's rule, the one before it the mask-only control.")


register(Table(
    name="teir", reproduces="CLL-CLIP Table (TEIR ablation)",
    summary="CLL-CLIP vs + TEIR's initialisation only vs + its regularisation only vs TEIR: AA and F over a sequence.",
    paper=_xm3600(
        rows=[["CLL-CLIP", "17.6", "18.4", "36.9", "25.3"], ["+ init only", "20.5", "18.2", "40.8", "24.1"],
              ["+ reg only (grad + decay)", "22.8", "12.6", "45.0", "16.3"], ["+ TEIR", "24.3", "12.5", "46.9", "15.9"]],
        claim="Each component raises AA; the regulariser cuts forgetting most; TEIR (both) is best."),
    headline="XM3600 AA/F t2i R@1: 17.6/18.4 -> init 20.5/18.2, reg 22.8/12.6, TEIR 24.3/12.5",
    run=_teir))


_BOTH = TeirConfig.parse("both")
_baselines = _sequences(
    BASELINE_ORDER,
    [("CLL-CLIP + TEIR", "cll-clip-teir", "cll-clip", _BOTH), ("oEWC + TEIR", "ewc-teir", "ewc", _BOTH),
     ("ER + TEIR", "er-teir", "er", _BOTH), ("LwF + TEIR", "lwf-teir", "lwf", _BOTH),
     ("MLA + TEIR", "mla-teir", "mla", _BOTH), ("full fine-tuning", "full-ft", "full-ft", TeirConfig.parse("none")),
     ("joint (all languages at once)", "joint", "joint", TeirConfig.parse("none"))],
    "Joint training is one task with every language: its F is undefined.")


register(Table(
    name="baselines", reproduces="CLL-CLIP main table (continual baselines)",
    summary="Continual baselines on one sequence: CLL-CLIP, oEWC, ER, LwF and MLA (each with TEIR), full fine-tuning, joint training.",
    paper=_xm3600(
        rows=[["CLL-CLIP + TEIR", "24.3", "12.5", "46.9", "15.9"], ["oEWC + TEIR", "25.6", "11.2", "48.7", "14.0"],
              ["ER + TEIR", "24.7", "11.2", "47.6", "14.4"], ["LwF + TEIR", "not in CLFM's results", "", "", ""],
              ["MLA + TEIR", "29.0", "10.7", "53.5", "12.6"], ["full fine-tuning (TEIR, all parameters)", "4.0", "36.9", "9.6", "58.0"],
              ["joint training", "37.1", "-", "63.2", "-"]],
        claim="Training every parameter forgets catastrophically; joint training is the upper bound; "
              "MLA + TEIR is the best continual learner."),
    headline="XM3600 AA t2i R@1: +TEIR CLL-CLIP 24.3, oEWC 25.6, ER 24.7, MLA 29.0; full-FT 4.0 (F 36.9); joint 37.1",
    run=_baselines))
