"""`mlclip train`, `mlclip extend` and `mlclip packs`: teach a frozen CLIP new languages."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from mlclip_cli.cli.commands import Commands
from mlclip_cli.cli.console import err, out
from mlclip_cli.cli.options import MODEL_HELP, TEACHER_HELP, default_extension, default_test_manifest, language_list
from mlclip_cli.cli.progress import run_sequence_with_progress, run_training_with_progress
from mlclip_cli.cli.tables import print_result
from mlclip_cli.errors import MlclipError
from mlclip_cli.loading import teacher_model

commands = Commands()

STAGES_HELP = ("nlt, le, nlt+le (both losses at once), nlt,le (one after the other) or nlt,nlt+le: "
               "each row of the MLA paper's Table 4.")


ACQUIRER_HELP = ("Language acquirers: mlp (x + W_up ReLU(W_down x), the paper's), linear (no ReLU, the same size: "
                 "Table 8) or none (no acquirers, only the shared token table trains: Table 5).")
NLT_LOSS_HELP = "NLT's objective: mse (to the English teacher's embedding, the paper's) or nce (InfoNCE against the batch's teacher embeddings): Table 9."
LE_LOSS_HELP = "LE's objective: nce (image-text InfoNCE, the paper's) or mse (to its own image's feature): Table 9."
MAX_PAIRS_HELP = "Train on at most N captions per language, drawn with --seed (low-resource runs: Table 7)."


CHECKPOINT_HELP = ("Seconds between saves of the resumable state (Ctrl-C and SIGTERM also save, between steps); "
                   "--resume continues from the last one.")
GRAD_ACCUM_HELP = ("Split each process's share of a batch into N micro-batches (less memory, the same loss: "
                   "InfoNCE keeps every negative of the batch).")


def _loop(stages, nlt_steps, nlt_lr, le_steps, le_lr, batch_size, seed, eval_every, nlt_loss="mse", le_loss="nce",
          text_teacher=False, grad_accum=1, checkpoint_seconds=60.0):
    from dataclasses import replace

    from mlclip_cli.mla.train import TEXT_BATCH, TEXT_NLT, LoopConfig, check_losses

    if batch_size is None:
        batch_size = TEXT_BATCH if text_teacher else 128
    loop = LoopConfig(stages=stages, batch_size=batch_size, seed=seed, eval_every=eval_every, nlt_loss=nlt_loss,
                      le_loss=le_loss, grad_accum=grad_accum, checkpoint_seconds=checkpoint_seconds)
    if text_teacher:
        loop = replace(loop, nlt=TEXT_NLT)
    check_losses(loop)
    return replace(loop, nlt=replace(loop.nlt, **{k: v for k, v in (("steps", nlt_steps), ("lr", nlt_lr)) if v is not None}),
                   le=replace(loop.le, **{k: v for k, v in (("steps", le_steps), ("lr", le_lr)) if v is not None}))


TEXT_VOCAB = 8000  # real text has far more word forms than the world


def _text_base(folder: Path) -> bool:
    """Whether an extension was built on a text-only encoder (its defaults are the --teacher ones)."""
    from mlclip_cli.core.extension import read_index
    from mlclip_cli.models.clip import is_text_encoder_spec

    return is_text_encoder_spec(str(read_index(folder)["base_model"]))


def _summary(result) -> None:
    table = Table(title=f"MLA packs in {result.out}")
    direction = "val ->en R@1" if result.text_only else "val t2i R@1"  # text-only: each caption finds its English one
    for column in ("lang", direction, "val mean recall", "train rows", "vocabulary"):
        table.add_column(column, justify="left" if column in ("lang", "vocabulary") else "right")
    for language in result.languages:
        metrics = result.loop.val.get(language, {})
        table.add_row(language, *(f"{metrics[k]:.1f}" if k in metrics else "-" for k in ("image_retrieval_recall@1", "mean_recall")),
                      str(result.data["rows"].get(language, 0)), result.tokenizer_note.get(language, ""))
    out.print(table)
    if not result.loop.val:
        out.print("[dim]no validation: the manifest has no val split with images (text-only: with parallel English)[/]")
    if result.data["split"] != "train":
        out.print(f"[yellow]trained on split '{result.data['split']}' (the manifest has no train split): "
                  "do not benchmark on the same rows[/]")
    if result.loop.resumed_from:
        out.print(f"resumed from {result.loop.resumed_from}")
    if result.loop.nothing_to_resume:
        err.print(f"note: --resume: {result.out} held no unfinished run to resume; it trained from the beginning",
                  markup=False, highlight=False, style="yellow")
    out.print(f"{result.loop.steps} steps in {result.loop.seconds:.0f} s -> {result.out}")


@commands.command(
    help="""Teach the frozen CLIP several languages at once with a method (MLA: a shared non-native
token block + one pack of language acquirers per language; the CLIP itself never changes).

Reads a manifest (default: the world's, WORKSPACE/manifests/world.parquet) and the frozen feature
cache (computed on first use): NLT needs each caption's parallel English caption (same pair_id),
LE its image. Validates on the manifest's val split. Checkpoints as it goes; --resume continues a
killed run to the same weights.

Output: an extension folder (default WORKSPACE/extensions/mla) usable as --model by bench, embed
and features; add languages later with `mlclip extend`.

Example: [bold]mlclip train --method mla --langs de,fr,es,it,ru,pl,tr,zh,ja[/]""",
    short_help="Teach the frozen CLIP new languages (MLA).",
)
def train(
    ctx: typer.Context,
    langs: str = typer.Option(..., "--langs", help="Languages to teach, comma-separated (not en)."),
    method: str = typer.Option("mla", "--method", help="Method: mla (cll-clip learns in sequence: `mlclip continual`)."),
    data: str = typer.Option("world", "--data", help="Manifest path or workspace manifest name."),
    out_dir: Path = typer.Option(None, "--out", help="Extension folder \\[default: WORKSPACE/extensions/<method>]."),
    model: str = typer.Option(None, "--model", help=MODEL_HELP + " \\[default: mlclip-tiny]"),
    teacher: str = typer.Option(None, "--teacher", help=TEACHER_HELP),
    stages: str = typer.Option("nlt,le", "--stages", help=STAGES_HELP),
    nlt_steps: int = typer.Option(None, "--nlt-steps", min=1, help="Steps of the NLT stage \\[world default 1800; --teacher 1300; paper 117,150]."),
    nlt_lr: float = typer.Option(None, "--nlt-lr", help="Peak lr of NLT \\[world 2e-3; paper 1e-4]."),
    le_steps: int = typer.Option(None, "--le-steps", min=1, help="Steps of the LE stage \\[world 100; paper 11,715]."),
    le_lr: float = typer.Option(None, "--le-lr", help="Peak lr of LE \\[world 1e-4; paper 3e-6]."),
    batch_size: int = typer.Option(None, "--batch-size", min=2, help="Captions per step (distinct images) \\[default 128; --teacher 64]."),
    hidden: int = typer.Option(None, "--hidden", min=1, help="Acquirer bottleneck \\[default: half the tower's width]."),
    vocab_size: int = typer.Option(None, "--vocab-size", min=300, help="Size of the BPE trained here \\[default 4000; --teacher 8000]."),
    tokenizer: str = typer.Option(None, "--tokenizer", help="Use this tokenizer instead: a tokenizer.json, a folder, or a HF name."),
    cjk: str = typer.Option("words", "--cjk", help="Chinese and Japanese before BPE: words (split by rjieba / fugashi + "
                            "unidic-lite, the default) or chars (each Han character a token). Recorded in the extension."),
    embedding_init: str = typer.Option(None, "--embedding-init", help="Start the shared rows from: a safetensors with one "
                                       "\\[vocab, dim] table, or 'clip' (each row the mean of the frozen CLIP's token "
                                       "rows of that token's text; the paper's Table 5 embedding init) \\[default: N(0, 0.02)]."),
    acquirer: str = typer.Option("mlp", "--acquirer", help=ACQUIRER_HELP),
    nlt_loss: str = typer.Option("mse", "--nlt-loss", help=NLT_LOSS_HELP),
    le_loss: str = typer.Option("nce", "--le-loss", help=LE_LOSS_HELP),
    max_pairs: int = typer.Option(None, "--max-pairs", min=1, help=MAX_PAIRS_HELP),
    split: str = typer.Option(None, "--split", help="Training split \\[default: train when the manifest has one]."),
    features_dir: Path = typer.Option(None, "--features", help="An already computed feature folder to read instead of the cache."),
    seed: int = typer.Option(0, "--seed"),
    eval_every: int = typer.Option(1000, "--eval-every", min=1, help="Steps between validations (and at the end of each stage)."),
    grad_accum: int = typer.Option(1, "--grad-accum", min=1, help=GRAD_ACCUM_HELP),
    checkpoint_every: float = typer.Option(60.0, "--checkpoint-every", min=0.0, help=CHECKPOINT_HELP),
    resume: bool = typer.Option(False, "--resume", help="Continue the unfinished run in --out."),
) -> None:
    from mlclip_cli.core.acquirer import check_acquirer
    from mlclip_cli.errors import MlclipError
    from mlclip_cli.methods import get_method
    from mlclip_cli.mla.method import CLIP_INIT
    from mlclip_cli.text_segment import check_mode

    ws = ctx.obj
    chosen = get_method(method)
    if chosen.train is None:  # a method that learns in sequence has no train of its own
        raise MlclipError(chosen.sequence_hint)
    check_acquirer(acquirer)
    check_mode(cjk)
    model = teacher_model(model, teacher)
    loop = _loop(stages, nlt_steps, nlt_lr, le_steps, le_lr, batch_size, seed, eval_every, nlt_loss, le_loss,
                 text_teacher=teacher is not None, grad_accum=grad_accum, checkpoint_seconds=checkpoint_every)
    if teacher is not None and embedding_init is None:
        embedding_init = CLIP_INIT  # real text: each row starts from the teacher's own rows of its text
    vocab_size = vocab_size or (TEXT_VOCAB if teacher is not None else 4000)
    init = None if embedding_init is None else embedding_init if embedding_init == CLIP_INIT else Path(embedding_init)
    config = chosen.train_config()(
        manifest=ws.find_manifest(data), out=out_dir or default_extension(ws, method), languages=language_list(langs),
        features_root=ws.features_root, model=model, hidden=hidden, vocab_size=vocab_size, tokenizer=tokenizer,
        embedding_init=init, split=split, features_dir=features_dir, resume=resume,
        acquirer=acquirer, max_pairs=max_pairs, loop=loop, cjk=cjk,
    )
    _summary(run_training_with_progress(lambda p, s, e: chosen.train(config, p, s, e)))


@commands.command(
    help="""Add one language to an extension.

MLA: trains only that language's pack (the shared block and every other pack stay
bit-identical), from any manifest with rows of that language (parallel English for NLT, images
for LE). A language whose script the shared tokenizer never saw gets a vocabulary extension of
its own (--vocab-extension).

cll-clip (a `mlclip continual` extension): one more task of its sequence with the settings it
was trained with (its learner, TEIR, steps); the folder is updated whole, and every language is
benched on --test afterwards.

Example: [bold]mlclip extend --lang ko --data xtd10[/]
or [bold]mlclip extend --method cll-clip --lang ko --extension WORKSPACE/continual/cll-clip-teir-both/extension[/]""",
    short_help="Add one language pack to an extension.",
)
def extend(
    ctx: typer.Context,
    lang: str = typer.Option(..., "--lang", help="The language to add."),
    method: str = typer.Option(None, "--method", help="mla or cll-clip \\[default: the extension's own]."),
    data: str = typer.Option("world", "--data", help="Manifest path or workspace manifest name."),
    extension: Path = typer.Option(None, "--extension", help="Extension folder \\[default: WORKSPACE/extensions/mla; "
                                   "cll-clip: WORKSPACE/continual/cll-clip-teir-both/extension]."),
    test: str = typer.Option(None, "--test", help="cll-clip: test manifest benched afterwards \\[default: the workspace's xtd10]."),
    steps: int = typer.Option(None, "--steps", min=1, help="cll-clip: steps for the new language \\[default: the run's]."),
    stages: str = typer.Option("nlt,le", "--stages", help=STAGES_HELP),
    nlt_steps: int = typer.Option(600, "--nlt-steps", min=1, help="Steps of the NLT stage (one language: fewer than train's)."),
    nlt_lr: float = typer.Option(None, "--nlt-lr", help="Peak lr of NLT."),
    le_steps: int = typer.Option(None, "--le-steps", min=1, help="Steps of the LE stage."),
    le_lr: float = typer.Option(None, "--le-lr", help="Peak lr of LE."),
    batch_size: int = typer.Option(None, "--batch-size", min=2, help="\\[default 128; a text-only base 64]."),
    nlt_loss: str = typer.Option("mse", "--nlt-loss", help=NLT_LOSS_HELP),
    le_loss: str = typer.Option("nce", "--le-loss", help=LE_LOSS_HELP),
    max_pairs: int = typer.Option(None, "--max-pairs", min=1, help=MAX_PAIRS_HELP),
    vocab_extension: str = typer.Option("auto", "--vocab-extension", help="auto (when the shared tokenizer falls back to bytes), always or never."),
    extra_tokens: int = typer.Option(1000, "--extra-tokens", min=1, help="At most this many tokens of its own."),
    split: str = typer.Option(None, "--split", help="Training split \\[default: train when the manifest has one, else all rows]."),
    features_dir: Path = typer.Option(None, "--features", help="An already computed feature folder."),
    seed: int = typer.Option(0, "--seed"),
    eval_every: int = typer.Option(1000, "--eval-every", min=1),
    grad_accum: int = typer.Option(1, "--grad-accum", min=1, help=GRAD_ACCUM_HELP),
    checkpoint_every: float = typer.Option(60.0, "--checkpoint-every", min=0.0, help=CHECKPOINT_HELP),
    replace: bool = typer.Option(False, "--replace", help="Train again a language that already has a pack."),
    resume: bool = typer.Option(False, "--resume", help="Continue an unfinished extend of this language."),
) -> None:
    from mlclip_cli.core.extension import is_extension
    from mlclip_cli.errors import MlclipError
    from mlclip_cli.methods import method_of

    ws = ctx.obj
    folder = extension or default_extension(ws, method or "mla")
    if not is_extension(folder):
        raise MlclipError(f"{folder}: no extension here (make one first with `mlclip train --method mla --langs ...` "
                          "or `mlclip continual`)")
    chosen = method_of(folder)
    if method is not None and method != chosen.name:
        raise MlclipError(f"{folder} is a {chosen.name} extension, not {method}")
    if chosen.train is None:  # a sequence method: one more task, with the settings its run was trained with
        config = chosen.extend_config()(extension=folder, language=lang.strip(), manifest=ws.find_manifest(data),
                                 features_root=ws.features_root, steps=steps, split=split,
                                 test_manifest=ws.find_manifest(test) if test else default_test_manifest(ws))
        print_result(run_sequence_with_progress(lambda p, s, t: chosen.extend(config, p, s, t)))
        return
    if vocab_extension not in ("auto", "always", "never"):
        raise MlclipError(f"--vocab-extension must be auto, always or never, not '{vocab_extension}'")
    config = chosen.extend_config()(
        manifest=ws.find_manifest(data), out=folder, languages=(lang.strip(),), features_root=ws.features_root,
        vocab_extension=vocab_extension, extra_tokens=extra_tokens, split=split, features_dir=features_dir,
        resume=resume, replace=replace, max_pairs=max_pairs,
        loop=_loop(stages, nlt_steps, nlt_lr, le_steps, le_lr, batch_size, seed, eval_every, nlt_loss, le_loss,
                   text_teacher=_text_base(folder), grad_accum=grad_accum, checkpoint_seconds=checkpoint_every),
    )
    _summary(run_training_with_progress(lambda p, s, e: chosen.extend(config, p, s, e)))


packs_app = typer.Typer(help="List, show and remove the language packs of an extension.", no_args_is_help=True)
commands.group(packs_app, "packs")

EXTENSION_OPTION = typer.Option(None, "--extension", help="Extension folder \\[default: WORKSPACE/extensions/mla].")


@packs_app.command("list", help="One line per pack: language, size, training steps, val scores.\n\nExample: [bold]mlclip packs list[/]")
def packs_list(ctx: typer.Context, extension: Path = EXTENSION_OPTION) -> None:
    from mlclip_cli.core.extension import read_extension

    ext = read_extension(extension or default_extension(ctx.obj))
    table = Table(title=f"{ext.info['method']} extension {ext.folder} on {ext.info['base_identity']}")
    for column in ("lang", "parameters", "extra tokens", "stages", "steps", "val t2i R@1", "val mean recall", "created"):
        table.add_column(column, justify="left" if column in ("lang", "stages", "created") else "right")
    for language, card in sorted(ext.cards.items()):
        metrics = card.get("val_metrics") or {}
        table.add_row(language, f"{card.get('parameters', 0):,}", str(card.get("extra_tokens", 0)), str(card.get("stages")),
                      str(card.get("steps")), f"{metrics.get('image_retrieval_recall@1', float('nan')):.1f}",
                      f"{metrics.get('mean_recall', float('nan')):.1f}", str(card.get("created")))
    for language in sorted(ext.broken):
        table.add_row(f"[red]{language}[/]", "[red]broken card[/]", "", "", "", "", "", "")
    out.print(table)
    if ext.broken:
        out.print(f"[red]{len(ext.broken)} broken: see `mlclip packs check`[/]")


@packs_app.command("check", help="""Verify every file of an extension against its card and hash, and list what is broken.

Exit status 1 when anything is; a broken pack can be removed (`mlclip packs remove LANG`) and
trained again, and the other languages stay usable meanwhile.

Example: [bold]mlclip packs check --extension WORKSPACE/extensions/mla[/]""")
def packs_check(ctx: typer.Context, extension: Path = EXTENSION_OPTION) -> None:
    from mlclip_cli.core.extension import read_extension
    from mlclip_cli.mla.packs import METHOD, problems

    ext = read_extension(extension or default_extension(ctx.obj))
    if ext.info["method"] == METHOD:
        found = problems(ext)
    else:  # a continual extension is one state: its files are checked as a whole when it loads
        from mlclip_cli.continual import snapshot

        found = dict(ext.broken)
        try:
            snapshot.read(ext.folder)
        except MlclipError as exc:
            found["state"] = str(exc)
    table = Table(title=f"{ext.info['method']} extension {ext.folder}")
    table.add_column("part")
    table.add_column("status")
    for part in sorted({*ext.languages, *found}):
        table.add_row(part, f"[red]broken[/]: {found[part]}" if part in found else "[green]ok[/]")
    out.print(table)
    if found:
        raise typer.Exit(1)


@packs_app.command("show", help="A pack's card (JSON).\n\nExample: [bold]mlclip packs show ko[/]")
def packs_show(ctx: typer.Context, lang: str = typer.Argument(..., help="Language of the pack."),
               extension: Path = EXTENSION_OPTION) -> None:
    import json

    from mlclip_cli.core.extension import read_extension, unavailable
    from mlclip_cli.errors import MlclipError

    ext = read_extension(extension or default_extension(ctx.obj))
    if lang not in ext.cards:
        raise MlclipError(unavailable(ext, lang))
    out.print_json(json.dumps(ext.cards[lang]))


@packs_app.command("remove", help="Delete a language's pack (its card first, so no half pack remains).\n\nExample: [bold]mlclip packs remove ko[/]")
def packs_remove(ctx: typer.Context, lang: str = typer.Argument(..., help="Language of the pack."),
                 extension: Path = EXTENSION_OPTION) -> None:
    from mlclip_cli.core.extension import read_extension
    from mlclip_cli.errors import MlclipError
    from mlclip_cli.mla.packs import METHOD, remove_pack

    ext = read_extension(extension or default_extension(ctx.obj))
    if ext.info["method"] != METHOD:
        raise MlclipError(f"{ext.folder}: the languages of a {ext.info['method']} extension share one token table "
                          "and cannot be removed one by one")
    removed = remove_pack(ext, lang)
    out.print(f"removed the '{lang}' pack ({len(removed)} files)")
