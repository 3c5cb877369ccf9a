"""`mlclip index build` and `mlclip index add`: a FAISS index file from a feature folder, or an image
index folder of a collection (a folder of images, a prepared data set) kept up to date."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from mlclip_cli.cli.commands import Commands
from mlclip_cli.cli.console import out
from mlclip_cli.cli.options import FALLBACK_HELP, MODEL_HELP
from mlclip_cli.errors import MlclipError

commands = Commands()

index_app = typer.Typer(help="Build FAISS indexes: of cached features, or of a folder of images to search.",
                        no_args_is_help=True)
commands.group(index_app, "index")

KIND_HELP = ("flat (exact, 4 x dim bytes a vector), ivf (inverted lists of raw vectors), ivfpq (inverted lists of "
             "product-quantised codes: pq-m bytes a vector) or hnsw (a graph, CPU only).")


@index_app.command(
    "build",
    help="""Index the images of a collection (--images FOLDER, or --data NAME: a prepared data set's
images) into an image index folder that `mlclip search` queries and `mlclip index add` updates; or
index one part of a feature folder (`mlclip features`: image-00000.parquet, ...) with
FAISS, inner product over the L2-normalised embeddings, and save it as FILE.faiss plus its keys
(image_id or sample_id per FAISS id) in FILE.keys.parquet (docs/artifacts.md).

The shards are read one at a time: ivf and ivfpq train once on a sample drawn over all shards
(--train-size vectors, default 64 per list), then each shard is added, so the features never sit
in memory at once (the index does). flat, ivf and ivfpq are built on the GPU when faiss-gpu sees one.

With --images or --data: every image is encoded by --model's image tower (a language extension
shares its base's), images listed recursively in sorted order (jpg, jpeg, png, webp, bmp, gif;
hidden files skipped); one that cannot be read is left out and reported. The folder --out holds
index.faiss, items.parquet (path, size, mtime) and index.json (the model, its image identity, the
collection root), written whole and swapped in (docs/search.md).

Examples: [bold]mlclip index build --images ~/photos --model mlclip-workspace/extensions/mla --out photos-index[/]
[bold]mlclip index build --features mlclip-workspace/features/xtd10/all/mlclip-tiny --kind ivfpq --out xtd10.faiss[/]""",
    short_help="Build an image index of a folder, or a FAISS index file of features.",
)
def build(
    ctx: typer.Context,
    features: Path = typer.Option(None, "--features", help="Feature folder written by `mlclip features` (--out FILE.faiss)."),
    images: Path = typer.Option(None, "--images", help="A folder of images, read recursively (--out: an index folder)."),
    data: str = typer.Option(None, "--data", help="A prepared data set's images: a workspace manifest name (e.g. world) "
                             "or a .parquet path (--out: an index folder)."),
    split: str = typer.Option(None, "--split", help="--data: only the images of this split (e.g. train)."),
    model: str = typer.Option(None, "--model", help=MODEL_HELP + " --images/--data only \\[default: mlclip-tiny]."),
    fallback: str = typer.Option("none", "--fallback", help=FALLBACK_HELP),
    part: str = typer.Option("image", "--part", help="--features: part to index: image, or text-<lang> (e.g. text-en)."),
    kind: str = typer.Option(None, "--kind", help=KIND_HELP + " \\[default: ivfpq for --features, flat for --images/--data]."),
    out_path: Path = typer.Option(..., "--out", help="--features: the index file to write (FILE.faiss; keys go to "
                                  "FILE.keys.parquet); --images/--data: the index folder to write."),
    nlist: int = typer.Option(None, "--nlist", min=1, help="ivf/ivfpq: inverted lists \\[default: min(4 sqrt(n), n/39)]."),
    nprobe: int = typer.Option(32, "--nprobe", min=1, help="ivf/ivfpq: lists visited per query (saved in the file)."),
    pq_m: int = typer.Option(None, "--pq-m", min=1, help="ivfpq: sub-quantisers of 8 bits, dividing the dimension "
                             "\\[default: dim/4, at most 64, GPU-compatible]."),
    refine: bool = typer.Option(False, "--refine", help="ivfpq: keep the raw vectors too and re-rank the top "
                                "candidates exactly (4 x dim more bytes a vector)."),
    train_size: int = typer.Option(None, "--train-size", min=1, help="ivf/ivfpq: training vectors sampled over all "
                                   "shards \\[default: 64 per list, at least 9984 for ivfpq]."),
    hnsw_m: int = typer.Option(32, "--hnsw-m", min=1, help="hnsw: links per node."),
    gpu: bool = typer.Option(None, "--gpu/--cpu", help="Build on the GPU or the CPU \\[default: the GPU when FAISS sees one; hnsw: CPU]."),
) -> None:
    from mlclip_cli.cli.progress import progress_bar, progress_callback
    from mlclip_cli.search import INDEX_KINDS, IndexConfig, build_feature_index

    if sum(source is not None for source in (features, images, data)) != 1:
        raise MlclipError("give what to index: --features DIR, --images FOLDER or --data NAME (one of them)")
    if features is None:
        feature_only = {"--part": part != "image", "--nlist": nlist is not None, "--nprobe": nprobe != 32,
                        "--pq-m": pq_m is not None, "--refine": refine, "--train-size": train_size is not None,
                        "--hnsw-m": hnsw_m != 32, "--gpu/--cpu": gpu is not None}
        given = [name for name, used in feature_only.items() if used]
        if given:
            raise MlclipError(f"{', '.join(given)}: options of --features; an image index takes --kind only")
        return _build_images(ctx, images, data, split, model or "mlclip-tiny", fallback, kind or "flat", out_path)
    if model is not None or split is not None:
        raise MlclipError("--model and --split are for --images/--data: a feature folder is encoded already")
    kind = kind or "ivfpq"
    if kind not in INDEX_KINDS:
        raise MlclipError(f"unknown index kind '{kind}' (choose {', '.join(INDEX_KINDS)})")
    if not features.is_dir():
        raise MlclipError(f"{features}: no such feature folder (run `mlclip features` first)")
    config = IndexConfig(kind=kind, nlist=nlist, nprobe=nprobe, pq_m=pq_m, refine=refine, hnsw_m=hnsw_m,
                         use_gpu=gpu, train_size=train_size)
    with progress_bar() as bar:
        result = build_feature_index(features, out_path, config, part=part, progress=progress_callback(bar))
    table = Table(title=f"{result.kind} index of {part}")
    table.add_column("setting")
    table.add_column("value", justify="right")
    resolved = result.config
    rows = [("vectors", f"{result.rows:,}"), ("dimension", str(result.dim)), ("shards read", str(result.shards))]
    if resolved.kind in ("ivf", "ivfpq"):
        rows += [("nlist", str(resolved.nlist)), ("nprobe", str(min(resolved.nprobe, resolved.nlist))),
                 ("training vectors", f"{min(resolved.train_size, result.rows):,}")]
    if resolved.kind == "ivfpq":
        rows += [("pq_m x bits", f"{resolved.pq_m} x {resolved.pq_bits}"), ("refine", "yes" if resolved.refine else "no")]
    if resolved.kind == "hnsw":
        rows += [("M", str(resolved.hnsw_m)), ("efConstruction", str(resolved.ef_construction))]
    rows += [("device", "GPU" if result.on_gpu else "CPU"), ("file size", _size(result.index_bytes)),
             ("seconds (train / add / save)", " / ".join(f"{result.seconds[s]:.1f}" for s in ("train", "add", "save")))]
    for name, value in rows:
        table.add_row(name, value)
    out.print(table)
    for note in result.notes:
        out.print(f"note: {note}")
    out.print(f"index: {result.path}\nkeys:  {result.keys_path}")


def _build_images(ctx, images: Path | None, data: str | None, split: str | None, model: str, fallback: str,
                  kind: str, out_path: Path) -> None:
    from mlclip_cli.api import BuildConfig, build as build_index
    from mlclip_cli.cli.progress import progress_bar, progress_callback
    from mlclip_cli.search import INDEX_KINDS

    if kind not in INDEX_KINDS:
        raise MlclipError(f"unknown index kind '{kind}' (choose {', '.join(INDEX_KINDS)})")
    if split is not None and data is None:
        raise MlclipError("--split picks the images of a data set: it goes with --data")
    manifest = ctx.obj.find_manifest(data) if data is not None else None
    if manifest is not None and not manifest.is_file():
        raise MlclipError(f"--data {data}: no such manifest ({manifest}; run `mlclip prepare {data}` first)")
    config = BuildConfig(out=out_path, images=images, manifest=manifest, split=split, model=model, kind=kind,
                         fallback=fallback)
    with progress_bar() as bar:
        result = build_index(config, progress=progress_callback(bar))
    out.print(f"indexed {result.count:,} images of {result.root} ({result.kind}, dimension {result.dim}, "
              f"image tower {result.image_identity}) -> {result.out}", soft_wrap=True, markup=False)
    _report_unreadable(result.unreadable)


def _report_unreadable(unreadable) -> None:
    from rich.markup import escape

    if unreadable:
        first = unreadable[0]
        many = len(unreadable)
        out.print(f"[yellow]warning:[/] {many} image{'s' if many > 1 else ''} could not be read and "
                  f"{'are' if many > 1 else 'is'} not in the index (first: {escape(first.path)}: {escape(first.reason)})",
                  soft_wrap=True, highlight=False)


@index_app.command(
    "add",
    help="""Bring an image index folder up to date: encode the images that are new or changed (their
size or modification time differs from the index's) with the model that built it, drop the ones
that are gone, keep the rest as they are. Without --images it re-reads what it was built from (its
folder, or its data set's manifest); --images FOLDER takes that folder as the collection now (a
moved collection keeps its unchanged images). The folder is rewritten whole and swapped in, under
its lock; nothing is written when nothing changed.

Example: [bold]mlclip index add --index photos-index[/]""",
    short_help="Update an image index: encode new and changed images, drop vanished ones.",
)
def add(
    index: Path = typer.Option(..., "--index", help="Image index folder (`mlclip index build --images`)."),
    images: Path = typer.Option(None, "--images", help="The collection's folder now \\[default: the one it was built from]."),
    model: str = typer.Option(None, "--model", help="Model to encode with \\[default: the one the index records]; "
                              "its image tower must be the index's."),
    fallback: str = typer.Option("none", "--fallback", help=FALLBACK_HELP),
) -> None:
    from mlclip_cli.api import UpdateConfig, update
    from mlclip_cli.cli.progress import progress_bar, progress_callback

    with progress_bar() as bar:
        result = update(UpdateConfig(index=index, images=images, model=model, fallback=fallback),
                        progress=progress_callback(bar))
    changes = result.changes
    out.print(f"added {changes.added}, updated {changes.updated}, removed {changes.removed}, unchanged "
              f"{changes.unchanged} -> {result.index} ({result.count:,} images of {result.root})", soft_wrap=True,
              markup=False)
    _report_unreadable(changes.unreadable)


def _size(count: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return str(count)
