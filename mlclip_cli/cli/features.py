"""`mlclip features` and `mlclip embed`: frozen features and embeddings."""

from __future__ import annotations

from pathlib import Path

import typer

from mlclip_cli.cli.commands import Commands
from mlclip_cli.cli.console import out
from mlclip_cli.cli.options import FALLBACK_HELP, MODEL_HELP, comma_list
from mlclip_cli.cli.progress import progress_bar, progress_callback
from mlclip_cli.errors import MlclipError

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
    with distributed.session() as runtime:  # under torchrun: one rank per device, shards shared
        encoder = load_encoder(model, str(runtime.device), fallback=fallback)
        folder = out_dir or ctx.obj.feature_folder(path, split, encoder.cache_key)
        config = FeaturesConfig(manifest=path, out=folder, model=model, languages=comma_list(langs), split=split,
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
--lang auto detects each text's language (as `mlclip langid` does, among an extension's languages
plus English, or XTD10's 11 for a plain CLIP), routes each through its pack and records it in the
language column; a text that matches none takes --fallback-lang (en with --fallback english), else
it is an error. auto needs the 'langid' extra: pip install 'mlclip\\[langid]'.

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
    fallback_lang: str = typer.Option(None, "--fallback-lang", help="--lang auto: language of a text that matches none "
                                      "\\[default: en with --fallback english, else an error]."),
    langid_backend: str = typer.Option("py3langid", "--langid-backend", help="--lang auto: py3langid, lingua or lingua-low."),
) -> None:
    from mlclip_cli.embed import EmbedConfig, embed as run

    texts: list[str] = []
    if text_file is not None:  # UTF-8, one text per line: one clear line for an empty or binary file
        from mlclip_cli.text_files import read_text_input

        texts = [text for _, text in read_text_input(text_file)]
    if parquet is not None:
        import pyarrow.parquet as pq

        try:
            texts += [str(t) for t in pq.read_table(parquet, columns=[column]).column(column).to_pylist() if t]
        except Exception as exc:
            raise MlclipError(f"cannot read column '{column}' of {parquet}: {str(exc).splitlines()[0]}") from None
    result = run(EmbedConfig(out=out_path, texts=tuple(texts), language=lang,
                             images=tuple(str(p) for p in image), model=model, fallback=fallback,
                             fallback_language=fallback_lang, langid_backend=langid_backend))
    if result.languages:
        out.print("detected: " + ", ".join(f"{language} {count}" for language, count in result.languages.items()))
    out.print(f"{result.rows} embeddings of dimension {result.dim} -> {result.out}")
