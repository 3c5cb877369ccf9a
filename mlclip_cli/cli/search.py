"""`mlclip search`: the images of an image index nearest a text in any language, or an image."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table
from rich.text import Text

from mlclip_cli.cli.commands import Commands
from mlclip_cli.cli.console import out
from mlclip_cli.cli.options import FALLBACK_HELP
from mlclip_cli.errors import MlclipError

commands = Commands()

FORMATS = ("table", "json")


@commands.command(
    help="""Search an image index (`mlclip index build --images`) with a text or an image. A text is
encoded in its language: --lang CODE names it; --lang auto (the default) detects it among the
model's languages (an extension's packs plus English; XTD10's 11 for a plain CLIP) and routes the
query to that pack. --model defaults to the model the index was built with; any other must share
its image tower (the extension of the same base, say).

Prints rank, path (relative to the collection root) and cosine score, with the language the query
went to and language ID's confidence in it; --format json prints one JSON object
{query, language, confidence, results: [{rank, path, score}]} (for --image: language null).

Examples: [bold]mlclip search "ein roter Würfel neben einer Kugel" --index photos-index[/]
[bold]mlclip search --image photo.jpg --index photos-index -k 5 --format json[/]""",
    short_help="Search an image index with a text (any language) or an image.",
)
def search(
    query: str = typer.Argument(None, help="The text to search for, in any language the model has."),
    index: Path = typer.Option(..., "--index", help="Image index folder (`mlclip index build --images`)."),
    image: Path = typer.Option(None, "--image", help="Search with this image instead of a text (image -> image)."),
    model: str = typer.Option(None, "--model", help="Model or language-extension folder to encode the query "
                              "\\[default: the one the index records]."),
    lang: str = typer.Option("auto", "--lang", help="The query's language (ISO 639-1), or auto: detect it."),
    k: int = typer.Option(10, "-k", "--top-k", help="How many images to return."),
    output: str = typer.Option("table", "--format", help="table or json (one JSON object)."),
    fallback: str = typer.Option("none", "--fallback", help=FALLBACK_HELP),
) -> None:
    from mlclip_cli.api import SearchConfig, search as run

    if output not in FORMATS:
        raise MlclipError(f"--format {output}: choose {' or '.join(FORMATS)}")
    if query is not None and image is not None:
        raise MlclipError("give a text query or --image FILE, not both")
    if query is None and image is None:
        raise MlclipError("give a text query (mlclip search \"a red cube\" --index DIR) or --image FILE")
    result = run(SearchConfig(index=index, query=query, image=image, model=model, language=lang, k=k,
                              fallback=fallback))
    if output == "json":
        out.print(json.dumps(result.to_json(), ensure_ascii=False), markup=False, highlight=False, soft_wrap=True)
        return
    if result.language is None:
        out.print(f"image {result.query}", soft_wrap=True, highlight=False, markup=False)
    else:
        out.print(f"{result.query!r} -> language {result.language} (confidence {result.confidence:.2f})",
                  soft_wrap=True, highlight=False, markup=False)
    table = Table()
    table.add_column("rank", justify="right")
    table.add_column("path", overflow="fold")
    table.add_column("score", justify="right")
    for hit in result.results:
        table.add_row(str(hit.rank), Text(hit.path), f"{hit.score:.3f}")  # a path is text, never markup
    out.print(table)
