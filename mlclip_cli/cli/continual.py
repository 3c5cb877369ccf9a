"""`mlclip continual`: learn languages one after another and measure forgetting."""

from __future__ import annotations

from pathlib import Path

import typer

from mlclip_cli.cli.commands import Commands
from mlclip_cli.cli.console import err
from mlclip_cli.cli.options import MODEL_HELP, TEACHER_HELP, default_test_manifest, comma_list
from mlclip_cli.cli.progress import run_sequence_with_progress
from mlclip_cli.cli.tables import print_result
from mlclip_cli.errors import MlclipError
from mlclip_cli.loading import teacher_model

commands = Commands()

WORLD_ORDER = "en,it,de,fr,es,pl,tr,ru,ko,zh,ja"
TEIR_HELP = ("TEIR: none, init (new rows from the table's N(mean, std)), reg (usage-scaled gradient and decay) or "
             "both; a bare --teir means both.")


@commands.command(
    help="""Learn languages one after another (continual language learning) and measure forgetting.

Each language in --order is one task: CLIP's BPE is continued on that language (English and the
languages before it keep their tokenisation exactly), the new token rows are appended, and the
learner trains (cll-clip: the token table only; ewc, er, lwf: the same with online EWC, replay or
distillation; mla: + per-language acquirers; full-ft: the whole text tower; joint: every language
at once, the upper bound). After each task every language seen so far is benched on the test
manifest (default: the world's XTD10-layout test set).

Writes OUT/extension (the state after the last finished language: usable as --model; a killed
run resumes from it with --resume), OUT/results.json (accuracy matrices, AA and F as CLFM's
gather.py), and PNG heatmaps and an AA/F plot.

Example: [bold]mlclip continual --learner cll-clip --teir --order en,it,de,fr,es,pl,tr,ru,ko,zh,ja[/]""",
    short_help="Learn languages in sequence; measure forgetting (CLL-CLIP, TEIR, baselines).",
)
def continual(
    ctx: typer.Context,
    order: str = typer.Option(WORLD_ORDER, "--order", help="Languages in the order they arrive, comma-separated."),
    learner: str = typer.Option("cll-clip", "--learner", help="What each task trains and how it holds earlier languages: "
                                "cll-clip (the token table), ewc, er, lwf, mla (+ acquirers), full-ft or joint."),
    method: str = typer.Option(None, "--method", hidden=True, help="Deprecated name of --learner."),
    teir: str = typer.Option("none", "--teir", help=TEIR_HELP),
    teir_reg: str = typer.Option("both", "--teir-reg", help="What TEIR's regulariser scales: grad, decay or both."),
    teir_freq: str = typer.Option("balanced", "--teir-freq",
                                  help="balanced (the default: each row's update scaled by 1/f, normalised so the task's "
                                  "rows move as much on average as without TEIR), update (1/f per-row update, not "
                                  "normalised), grad (the paper: 1/f scales gradient and decay, which Adam cancels) or "
                                  "off (the mask only, no 1/f). See docs/continual.md."),
    data: str = typer.Option("world", "--data", help="Training manifest path or workspace manifest name."),
    test: str = typer.Option(None, "--test", help="Test manifest benched after each task \\[default: the workspace's xtd10; "
                             "--teacher: --data]."),
    test_split: str = typer.Option(None, "--test-split", help="\\[default: test; --teacher: val]."),
    out_dir: Path = typer.Option(None, "--out", help="Run folder \\[default: WORKSPACE/continual/<learner>-teir-<teir>]."),
    model: str = typer.Option(None, "--model", help=MODEL_HELP + " \\[default: mlclip-tiny]"),
    teacher: str = typer.Option(None, "--teacher", help=TEACHER_HELP.replace("the packs", "the new rows").replace(
        "validation is text to text on the val split", "each task is benched text to text on --data's val split")),
    steps: int = typer.Option(None, "--steps", min=1, help="Steps per language \\[world default 100; --teacher 200]."),
    lr: float = typer.Option(None, "--lr", help="Peak lr \\[world default 5e-3; --teacher 1e-3; CLFM 5e-5]."),
    batch_size: int = typer.Option(None, "--batch-size", min=2, help="\\[default 128; --teacher 64]."),
    vocab_budget: int = typer.Option(10_000, "--vocab-budget", min=0, help="New BPE merges per language (CLFM: 10,000)."),
    split_han: bool = typer.Option(True, "--split-han/--no-split-han", help="Make each Han/kana character a word before BPE "
                                   "(CLIP's regex keeps unspaced Chinese/Japanese phrases whole, and 100 steps cannot "
                                   "train their 8k phrase tokens); --no-split-han: CLFM's pre-tokenisation."),
    cjk: str = typer.Option("words", "--cjk", help="Chinese and Japanese before BPE: words (rjieba / fugashi + unidic-lite, "
                            "the default; before --split-han) or chars (--split-han decides)."),
    memory: int = typer.Option(8000, "--memory", min=1, help="er: captions kept from earlier languages."),
    ewc_lambda: float = typer.Option(1000.0, "--ewc-lambda", help="ewc: penalty weight."),
    split: str = typer.Option(None, "--split", help="Training split \\[default: train when the manifest has one]."),
    seed: int = typer.Option(0, "--seed"),
    keep_steps: bool = typer.Option(False, "--keep-steps", help="Also keep the state after every language under OUT/steps/."),
    resume: bool = typer.Option(False, "--resume", help="Continue an unfinished run in --out (or reuse a finished one)."),
) -> None:
    from dataclasses import replace

    from mlclip_cli.continual.learners import Settings
    from mlclip_cli.continual.runner import TEXT_LOOP, ContinualConfig, TaskLoop, run_continual
    from mlclip_cli.continual.teir import TeirConfig
    from mlclip_cli.text_segment import check_mode

    ws = ctx.obj
    if method is not None:  # the learner was first chosen with --method, which now names the method only
        if learner != "cll-clip" and learner != method:
            raise MlclipError(f"--method {method} and --learner {learner} disagree: pass --learner only")
        err.print("[yellow]--method is deprecated here: it is --learner (the method is cll-clip; its learners are "
                  "cll-clip, ewc, er, lwf, mla, full-ft and joint)[/]")
        learner = method
    teir_config = TeirConfig.parse(teir, teir_reg, teir_freq)
    model = teacher_model(model, teacher)
    loop = replace(TEXT_LOOP if teacher else TaskLoop(), seed=seed)
    if batch_size is not None:
        loop = replace(loop, batch_size=batch_size)
    loop = replace(loop, **{k: v for k, v in (("steps", steps), ("lr", lr)) if v is not None})
    config = ContinualConfig(
        manifest=ws.find_manifest(data), out=out_dir or ws.continual_run(learner, teir),
        order=comma_list(order), features_root=ws.features_root,
        learner=learner, teir=teir_config, model=model,
        test_manifest=ws.find_manifest(test) if test else ws.find_manifest(data) if teacher else default_test_manifest(ws),
        test_split=test_split or ("val" if teacher else "test"),
        loop=loop, settings=Settings(memory=memory, ewc_lambda=ewc_lambda), vocab_budget=vocab_budget,
        split_han=split_han, cjk=check_mode(cjk), split=split, resume=resume, keep_steps=keep_steps)
    print_result(run_sequence_with_progress(lambda p, s, t: run_continual(config, p, s, t)))
