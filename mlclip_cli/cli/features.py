"""`mlclip features` and `mlclip embed`: frozen features and embeddings."""

from __future__ import annotations

from pathlib import Path

import typer

from mlclip_cli.cli.commands import Commands
from mlclip_cli.cli.console import err, out
from mlclip_cli.cli.options import FALLBACK_HELP, FALLBACK_LANG_HELP, MODEL_HELP, language_list
from mlclip_cli.cli.progress import progress_bar, progress_callback

commands = Commands()

@commands.command(
    help="""Encode a manifest's images with the frozen image tower and its captions (English by
default) with the frozen text tower, into sharded Parquet feature files keyed by image_id /
sample_id, with the model identity and preprocessing recorded so a mismatch is caught on read.

Resumable: a killed run continues where it stopped; rerunning a finished one does nothing.
Uses the GPU when there is one; under torchrun (one process per GPU) the ranks share the shards.

Output: WORKSPACE/features/<manifest>/<split>/<model>/ unless --out is given.

Example: [bold]mlclip features xtd10 --langs all[/]  (a workspace manifest name or a .parquet path)""",
    short_help="Cache frozen image and text features of a manifest.",
)
def features(
    ctx: typer.Context,
    manifest: str = typer.Argument(..., help="Manifest path, or the name of a workspace manifest (e.g. xtd10)."),
    model: str = typer.Option("mlclip-tiny", "--model", help=MODEL_HELP),
    langs: str = typer.Option("en", "--langs", help="Caption languages to encode: en (teacher), a list, or all."),
    split: str = typer.Option(None, "--split", help="Only this split (default: every row)."),
    dtype: str = typer.Option("float16", "--dtype", help="float16 or float32."),
    shard_size: int = typer.Option(4096, "--shard-size", min=1, help="Rows per shard file (the unit a restart skips "
                                   "and torchrun ranks share)."),
    out_dir: Path = typer.Option(None, "--out", help="Feature folder."),
    no_images: bool = typer.Option(False, "--no-images", help="Skip the images."),
    fallback: str = typer.Option("none", "--fallback", help=FALLBACK_HELP),
) -> None:
    from mlclip_cli.loading import load_encoder
    from mlclip_cli.features import FeaturesConfig, compute_features

    from mlclip_cli.training import distributed

    path = ctx.obj.find_manifest(manifest)
    languages = language_list(langs)
    with distributed.session() as runtime:  # under torchrun: one rank per device, shards shared
        encoder = load_encoder(model, str(runtime.device), fallback=fallback)
        folder = out_dir or ctx.obj.feature_folder(path, split, encoder.cache_key)
        config = FeaturesConfig(manifest=path, out=folder, model=model, languages=languages, split=split,
                                images=not no_images, dtype=dtype, device=str(runtime.device),
                                shard_size=shard_size)
        with progress_bar() as bar:
            result = compute_features(config, encoder=encoder, progress=progress_callback(bar))
    for part, rows in result.counts.items():
        out.print(f"{part}: {rows} rows")
    out.print(f"shards written {result.shards_written}, already there {result.shards_skipped} -> {result.folder}")


@commands.command(
    help="""Embed texts in a named language, or images, with the frozen CLIP (plus its language
extension for that language, once one exists), into a Parquet file (input, language, embedding).

Texts come from --text-file (one per line; '-' for stdin) or a Parquet --column of --parquet.
A text longer than the model's context is embedded from its first tokens (as every CLIP does), and
said: a note counts them (the result's truncated rows).

--lang auto detects each text's language (as `mlclip langid` does, among an extension's languages
plus English, or XTD10's 11 for a plain CLIP), routes each through its pack and records it in the
language column. One rule for a text whose language is none of those (a language the extension
lacks, digits only): it is an error unless --fallback-lang LANG names one of them to use (en: the
English tower); the same as `mlclip bench --lang auto`. Detection uses py3langid, installed with
mlclip; the lingua backend needs the 'langid' extra: pip install 'mlclip\\[langid]'.

Example: [bold]echo "a red circle" | mlclip embed --lang en --text-file - --out emb.parquet[/]""",
    short_help="Embed texts or images to Parquet.",
)
def embed(
    out_path: Path = typer.Option(..., "--out", help="Output Parquet file."),
    lang: str = typer.Option(None, "--lang", help="Language of the texts (picks the language extension), or auto: detect each."),
    text_file: str = typer.Option(None, "--text-file", help="Text file, one text per line; '-' reads stdin."),
    parquet: Path = typer.Option(None, "--parquet", help="Parquet file holding texts."),
    column: str = typer.Option("caption", "--column", help="Column of --parquet with the texts."),
    image: list[Path] = typer.Option([], "--image", help="Image file to embed; repeatable."),
    model: str = typer.Option("mlclip-tiny", "--model", help=MODEL_HELP),
    fallback: str = typer.Option("none", "--fallback", help=FALLBACK_HELP),
    fallback_lang: str = typer.Option(None, "--fallback-lang", help=FALLBACK_LANG_HELP),
    langid_backend: str = typer.Option("py3langid", "--langid-backend", help="--lang auto: py3langid, lingua or lingua-low."),
) -> None:
    from mlclip_cli.embed import EmbedConfig, check_out, embed as run
    from mlclip_cli.text_files import read_text_column, read_text_input

    check_out(out_path)  # before reading the inputs: a bad --out is not found after the work
    texts: list[str] = []
    where: list[str] = []  # each text's line of --text-file, or its row of --parquet, for the notes
    if text_file is not None:  # UTF-8, one text per line: one clear line for an empty or binary file
        lines = read_text_input(text_file)
        texts = [text for _, text in lines]
        where = [f"line {number} of {text_file}" for number, _ in lines]
    if parquet is not None:
        column_texts = read_text_column(parquet, column)
        texts += column_texts
        where += [f"text {number} of {parquet}" for number in range(1, len(column_texts) + 1)]
    result = run(EmbedConfig(out=out_path, texts=tuple(texts), language=lang,
                             images=tuple(str(p) for p in image), model=model, fallback=fallback,
                             fallback_language=fallback_lang, langid_backend=langid_backend))
    if result.languages:
        out.print("detected: " + ", ".join(f"{language} {count}" for language, count in result.languages.items()))
    if result.truncated:
        first = where[result.truncated_rows[0]] if where else f"row {result.truncated_rows[0] + 1}"
        err.print(f"note: {result.truncated} of {result.rows} texts are longer than the model's context "
                  f"({result.context} tokens) and were embedded from their first {result.context} tokens "
                  f"(the first: {first})", markup=False, highlight=False, style="yellow")
    out.print(f"{result.rows} embeddings of dimension {result.dim} -> {result.out}")
