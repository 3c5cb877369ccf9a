"""`mlclip prepare <dataset>`: turn a real data set folder into a Parquet manifest."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.progress import Progress, TimeElapsedColumn
from rich.table import Table

from mlclip_cli.cli.commands import Commands
from mlclip_cli.cli.console import out
from mlclip_cli.cli.options import comma_list
from mlclip_cli.datasets import dataset_names, get_dataset
from mlclip_cli.errors import MlclipError

commands = Commands()


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
plus a JSON summary (rows per language and split, masked captions and why, missing images).

Data sets:

{_dataset_list()}

Output: WORKSPACE/manifests/DATASET.parquet and .summary.json, unless --out is given.
Layouts and licences: data_manifests/DATASET.json and docs/datasets.md.

Examples: [bold]mlclip prepare xtd10 --root ../shared/data/xtd10 --images coco2014/[/]
          [bold]mlclip prepare world --root mlclip-workspace/data/world[/]  (generates it)"""


def prepare(
    ctx: typer.Context,
    dataset: str = typer.Argument(..., help="Data set name (see the list above)."),
    root: Path = typer.Option(..., "--root", help="Folder holding the data set's files, as upstream ships them."),
    images: Path = typer.Option(None, "--images", help="Image folder (default: ROOT/images when present)."),
    out_path: Path = typer.Option(None, "--out", help="Manifest path \\[default: WORKSPACE/manifests/DATASET.parquet]."),
    langs: str = typer.Option(None, "--langs", help="Comma-separated languages to keep (default: all)."),
    drop_missing_images: bool = typer.Option(False, "--drop-missing-images", help="Drop captions whose image file is absent (default: keep them with an empty image_path)."),
    subset: str = typer.Option(None, "--subset", help="coco only: all, test5k or test1k."),
    splits: str = typer.Option(None, "--splits", help="multi30k only: comma-separated splits to prepare, of train, val, test \\[default: every complete one]."),
    size: int = typer.Option(None, "--size", help="cc300k: sample size \\[default: 300000]; world: train scenes \\[default: 30000]."),
    seed: int = typer.Option(0, "--seed", help="cc300k: sampling seed; world: generation seed."),
    translation: list[str] = typer.Option([], "--translation", help="cc3m/cc300k only: LANG=FILE, a parallel line file or key<TAB>caption TSV; repeatable."),
) -> None:
    from mlclip_cli.datasets.base import PrepareConfig
    from mlclip_cli.datasets.prepare import prepare_dataset

    get_dataset(dataset)  # unknown names fail before any work
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


commands.command(help=_help(), short_help="Turn a real data set into a Parquet manifest.")(prepare)
