"""`mlclip prepare <dataset>`: turn a real data set folder into a Parquet manifest; `mlclip prepare
pairs`: the same from your own files (options of its own, so a command of its own)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.progress import Progress, TimeElapsedColumn
from rich.table import Table
from typer.core import TyperGroup

from mlclip_cli.cli.commands import Commands
from mlclip_cli.cli.console import out
from mlclip_cli.cli.options import comma_list
from mlclip_cli.datasets import dataset_names, get_dataset
from mlclip_cli.errors import MlclipError
from mlclip_cli.langid import XTD10_LANGUAGES

commands = Commands()


class _DataSets(TyperGroup):
    """`mlclip prepare NAME`: an unknown NAME is one line naming the known data sets."""

    def resolve_command(self, ctx, args):
        if args and not args[0].startswith("-") and args[0] not in self.commands:
            get_dataset(args[0])  # raises: unknown data set 'x' (known: ...)
        return super().resolve_command(ctx, args)


def _dataset_list() -> str:
    return "\n".join(f"* [bold]{name}[/]: {get_dataset(name).summary}" for name in dataset_names())


def _parse_translations(items: list[str]) -> dict[str, Path]:
    translations = {}
    for item in items:
        lang, sep, path = item.partition("=")
        if not sep or not lang or not path:
            raise MlclipError(f"--translation expects LANG=FILE, got '{item}'")
        translations[lang.strip()] = Path(path)
    return translations


def _help() -> str:
    return f"""Turn a data set's real files under --root into a Parquet manifest (one row per caption)
plus a JSON summary (rows per language and split, masked captions and why, missing images), or your
own files (`mlclip prepare pairs --from FILE|FOLDER`) into the same manifest plus a report.

Data sets:

{_dataset_list()}

Output: WORKSPACE/manifests/DATASET.parquet and .summary.json, unless --out is given.
Layouts and licences: data_manifests/DATASET.json and docs/datasets.md.

Examples: [bold]mlclip prepare xtd10 --root data/xtd10 --images coco2014/[/]
          [bold]mlclip prepare world --root mlclip-workspace/data/world[/]  (generates it)
          [bold]mlclip prepare pairs --from photos.csv --lang de[/]  (your own data)"""


prepare_app = typer.Typer(cls=_DataSets, help=_help(), short_help="Turn a data set, or your own files, into a Parquet manifest.",
                          no_args_is_help=True, rich_markup_mode="rich")
commands.group(prepare_app, "prepare")


def _example(dataset: str) -> str:
    if dataset == "world":
        return "Example: [bold]mlclip prepare world --root mlclip-workspace/data/world[/]  (generates it)"
    return f"Example: [bold]mlclip prepare {dataset} --root DIR --images IMAGES[/]"


def _make_command(dataset: str):
    def command(
        ctx: typer.Context,
        root: Path = typer.Option(..., "--root", help="Folder holding the data set's files, as upstream ships them."),
        images: Path = typer.Option(None, "--images", help="Image folder (default: ROOT/images when present)."),
        out_path: Path = typer.Option(None, "--out", help=f"Manifest path \\[default: WORKSPACE/manifests/{dataset}.parquet]."),
        langs: str = typer.Option(None, "--langs", help="Comma-separated languages to keep (default: all)."),
        drop_missing_images: bool = typer.Option(False, "--drop-missing-images", help="Drop captions whose image file is absent (default: keep them with an empty image_path)."),
        subset: str = typer.Option(None, "--subset", help="coco only: all, test5k or test1k."),
        splits: str = typer.Option(None, "--splits", help="multi30k only: comma-separated splits to prepare, of train, val, test \\[default: every complete one]."),
        size: int = typer.Option(None, "--size", help="cc300k: sample size \\[default: 300000]; world: train scenes \\[default: 30000]."),
        seed: int = typer.Option(0, "--seed", help="cc300k: sampling seed; world: generation seed."),
        translation: list[str] = typer.Option([], "--translation", help="cc3m/cc300k only: LANG=FILE, a parallel line file or key<TAB>caption TSV; repeatable."),
    ) -> None:
        prepare(ctx, dataset, root, images, out_path, langs, drop_missing_images, subset, splits, size, seed, translation)

    spec = get_dataset(dataset)
    prepare_app.command(dataset, help=f"{spec.summary[0].upper()}{spec.summary[1:]}.\n\nWrites WORKSPACE/manifests/"
                        f"{dataset}.parquet and .summary.json unless --out is given.\n\n{_example(dataset)}",
                        short_help=spec.summary)(command)


def prepare(ctx: typer.Context, dataset: str, root: Path, images: Path | None, out_path: Path | None, langs: str | None,
            drop_missing_images: bool, subset: str | None, splits: str | None, size: int | None, seed: int,
            translation: list[str]) -> None:
    from mlclip_cli.datasets.base import PrepareConfig
    from mlclip_cli.datasets.prepare import prepare_dataset

    config = PrepareConfig(
        root=root, images=images, drop_missing_images=drop_missing_images,
        languages=comma_list(langs) if langs else None,
        subset=subset, size=size, seed=seed, translations=_parse_translations(translation),
        splits=comma_list(splits) if splits else None,
    )
    target = out_path or ctx.obj.manifest(dataset)
    with Progress(*Progress.get_default_columns(), TimeElapsedColumn(), console=out, transient=True) as bar:
        task = bar.add_task(f"preparing {dataset}", total=None)
        config.progress = lambda done, total: bar.update(task, completed=done, total=total)
        result = prepare_dataset(dataset, config, target)
    _print_summary(result.summary)
    out.print(f"manifest: {result.manifest}\nsummary:  {result.summary_path}")


def _print_summary(summary: dict) -> None:
    per_language = summary["rows_per_language_split"]
    splits = sorted({split for counts in per_language.values() for split in counts})
    table = Table(title=f"{summary['dataset']}: captions per language and split")
    table.add_column("language")
    for split in splits:
        table.add_column(split, justify="right")
    for language, counts in per_language.items():
        table.add_row(language, *(str(counts.get(split, 0)) for split in splits))
    out.print(table)
    if summary.get("splits"):
        _print_splits(summary["splits"])
    out.print(f"{summary['rows']} captions of {summary['images_total']} images; "
              f"{summary['cleaned_captions']} cleaned (invisible characters or stray whitespace)")
    masked = summary["masked_captions"]
    if masked["count"]:
        out.print(f"masked captions: {masked['count']} ({', '.join(f'{k}: {v}' for k, v in masked['by_reason'].items())})")
        for item in masked["items"][:10]:
            out.print(f"  {item['where']}: {item['caption']!r} ({item['reason']})", markup=False)
    missing = summary["missing_images"]
    if not missing["checked"]:
        out.print("images: not checked (no image folder; pass --images)")
    elif missing["count"]:
        out.print(f"missing images: {missing['count']} ({missing['captions_affected']} captions, {missing['policy']})")
    for warning in summary["warnings"]:
        out.print(f"[yellow]warning:[/] {warning}")


def _print_splits(splits: dict) -> None:
    line = f"splits: {', '.join(splits['prepared'])} prepared"
    if splits["not_chosen"]:
        line += f"; {', '.join(splits['not_chosen'])} present, not chosen"
    out.print(line, markup=False)
    for split, files in splits["absent"].items():
        state = "incomplete" if files["present"] else "absent"
        out.print(f"  {split}: {state}, missing {', '.join(files['missing'])}", markup=False)


for _name in dataset_names():  # one command per data set; pairs has its own below
    if not get_dataset(_name).own_command:
        _make_command(_name)


@prepare_app.command(
    "pairs",
    help="""Your own data into the manifest every data set produces, so that features, train,
extend, continual and bench take it by name (--data NAME, bench pairs --manifest NAME).

--from takes a CSV, TSV, JSONL or Parquet table (one caption per row; columns named below, image
paths relative to --images-root), an image folder with same-name caption sidecars (stem.txt; stem.json
may hold caption, language, english), or webdataset .tar shards (img2dataset's output). A table with
--no-images holds text-only parallel pairs (a sentence and its English) for `train --teacher`.

Languages: --lang for every row, a language column, or detected (among --detect-langs) with the
distribution reported. A parallel-English column adds each row's English on the same image, paired.
Splits: a split column, or a seeded --val-fraction by image (all captions of an image together).

Rows are dropped, never silently, for a missing or unreadable image, an empty caption, an unknown
language or split, a duplicate, or an image URL (mlclip does not download): the table lists each
reason with its count and first example, and NAME.report.json keeps it. Drops still exit 0; a run
that keeps nothing is an error and writes nothing.

Output: WORKSPACE/manifests/NAME.parquet and NAME.report.json, unless --out is given.

Examples: [bold]mlclip prepare pairs --from photos.csv --lang de --val-fraction 0.1[/]
          [bold]mlclip prepare pairs --from shards/ --name mine[/]  (webdataset, languages detected)
          [bold]mlclip prepare pairs --from de-en.tsv --no-images --caption-column de --english-column en --lang de[/]""",
    short_help="Your own data (a table, an image folder, webdataset shards, text pairs) into a manifest.",
)
def pairs(
    ctx: typer.Context,
    source: Path = typer.Option(..., "--from", help="A .csv/.tsv/.jsonl (.gz too) or .parquet table, an image folder, a .tar shard or a folder of shards."),
    name: str = typer.Option(None, "--name", help="Data set name: later commands take --data NAME \\[default: the input's stem]."),
    out_path: Path = typer.Option(None, "--out", help="Manifest path \\[default: WORKSPACE/manifests/NAME.parquet]."),
    input_format: str = typer.Option(None, "--format", help="csv, tsv, jsonl, parquet, folder or webdataset \\[default: from the path]."),
    images_root: Path = typer.Option(None, "--images-root", help="Tables: folder the image paths are relative to \\[default: the table's folder]."),
    image_column: str = typer.Option(None, "--image-column", help="Tables: column of image paths \\[default: image]."),
    caption_column: str = typer.Option(None, "--caption-column", help="Tables: column of captions \\[default: caption]."),
    lang_column: str = typer.Option(None, "--lang-column", help="Tables: column of language codes \\[default: language, when present]."),
    english_column: str = typer.Option(None, "--english-column", help="Tables: column of the captions' English translations \\[default: english, when present]."),
    split_column: str = typer.Option(None, "--split-column", help="Tables: column of splits (train, val, test) \\[default: split, when present]."),
    lang: str = typer.Option(None, "--lang", help="The language of every row (an ISO 639-1 code)."),
    no_images: bool = typer.Option(False, "--no-images", help="Tables: text-only parallel pairs (needs an English column)."),
    val_fraction: float = typer.Option(None, "--val-fraction", help="Share of images put in val, chosen by a seeded hash of each image \\[default: everything in train]."),
    seed: int = typer.Option(0, "--seed", help="Seed of --val-fraction."),
    detect_langs: str = typer.Option(",".join(XTD10_LANGUAGES), "--detect-langs", help="Languages to detect among, for rows without one."),
    langid_backend: str = typer.Option("py3langid", "--langid-backend", help="Language identification: py3langid, lingua or lingua-low."),
) -> None:
    from mlclip_cli.datasets.pairs import PairsConfig, default_name, prepare_pairs
    from mlclip_cli.langid import Identifier

    name = name if name is not None else default_name(source)
    config = PairsConfig(
        source=source, out=out_path or ctx.obj.manifest(name), name=name, format=input_format, images_root=images_root,
        image_column=image_column, caption_column=caption_column, language_column=lang_column,
        english_column=english_column, split_column=split_column, language=lang, no_images=no_images,
        val_fraction=val_fraction, seed=seed, identifier=Identifier(comma_list(detect_langs), langid_backend),
    )
    with Progress(*Progress.get_default_columns(), TimeElapsedColumn(), console=out, transient=True) as bar:
        task = bar.add_task(f"preparing {name}", total=None)
        config.progress = lambda done, total: bar.update(task, completed=done, total=total)
        result = prepare_pairs(config)
    _print_report(result.report)
    out.print(f"manifest: {result.manifest}\nreport:   {result.report_path}", soft_wrap=True)


def _print_report(report) -> None:
    from mlclip_cli.datasets.pairs import DROP_REASONS

    table = Table(title=f"{report.name}: {report.rows_read} rows read from {Path(report.source).name} ({report.format})")
    table.add_column("")
    table.add_column("rows", justify="right")
    table.add_column("first example", overflow="fold")
    table.add_row("[bold]kept[/]", f"[bold]{report.rows_kept}[/]",
                  f"{_count(report.manifest_rows, 'caption')} of {_count(report.images, 'image')}" if report.images
                  else f"{_count(report.manifest_rows, 'caption')}, no images")
    for reason, drop in report.dropped.items():
        table.add_row(f"dropped: {DROP_REASONS[reason]}", str(drop.count), drop.example)
    out.print(table)
    splits = sorted({split for counts in report.languages.values() for split in counts})
    languages = Table(title="captions per language and split")
    languages.add_column("language")
    for split in splits:
        languages.add_column(split, justify="right")
    for language, counts in report.languages.items():
        languages.add_row(language, *(str(counts.get(split, 0)) for split in splits))
    out.print(languages)
    out.print(f"languages: {report.language}; splits: {report.split}", markup=False)
    if report.detected:
        counts = ", ".join(f"{code} {n}" for code, n in report.detected["counts"].items())
        out.print(f"detected ({report.detected['backend']} among {', '.join(report.detected['among'])}): {counts}", markup=False)
    for warning in report.warnings:
        out.print(f"[yellow]warning:[/] {warning}")


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"
