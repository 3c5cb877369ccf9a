"""`mlclip langid`: the language of each line of a text file."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from mlclip_cli.cli.commands import Commands
from mlclip_cli.cli.console import out
from mlclip_cli.errors import MlclipError

commands = Commands()


@commands.command(
    help="""Detect the language of each line of a UTF-8 text file (one text per line, blank
lines skipped), among a given set of languages: the languages of --extension (its packs, plus
English), else --langs, else XTD10's 11 (en de fr es it ko pl ru tr zh ja).

The dominant script decides first (Kana: ja, Hangul: ko, Han without Kana: zh, Cyrillic: the one
Cyrillic language in the set, ...); a model (--backend) chooses among several languages of one
script. A line that matches none of the languages (digits only, a script none of them uses) is an
error unless --fallback-lang names one to use. py3langid (the default backend) is installed with mlclip;
--backend lingua needs the 'langid' extra: pip install 'mlclip\\[langid]'.

Output: --out FILE.parquet or FILE.tsv with line, text, language, confidence, method
(docs/artifacts.md); without --out only the counts per language are printed.

Example: [bold]mlclip langid --text-file queries.txt --extension mlclip-workspace/extensions/mla --out langs.tsv[/]""",
    short_help="Detect the language of each line of a text file.",
)
def langid(
    text_file: str = typer.Option(..., "--text-file", help="UTF-8 text file, one text per line; '-' reads stdin."),
    extension: Path = typer.Option(None, "--extension", help="Language-extension folder: detect among its languages (+ en)."),
    langs: str = typer.Option(None, "--langs", help="Comma-separated ISO 639-1 codes to detect among \\[default: XTD10's 11]."),
    backend: str = typer.Option("py3langid", "--backend", help="py3langid, lingua (high accuracy) or lingua-low."),
    fallback_lang: str = typer.Option(None, "--fallback-lang", help="Language for a line that matches none of them "
                                      "\\[default: an error]."),
    fallback: str = typer.Option(None, "--fallback", hidden=True, help="Deprecated name of --fallback-lang."),
    min_confidence: float = typer.Option(0.0, "--min-confidence", help="A model decision below this probability matches none."),
    out_path: Path = typer.Option(None, "--out", help="Output file: .parquet or .tsv."),
) -> None:
    from mlclip_cli import langid as lid
    from mlclip_cli.cli.console import err
    from mlclip_cli.cli.options import language_list
    from mlclip_cli.text_files import read_text_input
    from mlclip_cli.core.extension import EXTENSION_FILE, is_extension

    lid.check_out_path(out_path)
    if fallback is not None:  # --fallback was this option's first name; embed and bench call it --fallback-lang
        if fallback_lang is not None and fallback_lang != fallback:
            raise MlclipError(f"--fallback {fallback} and --fallback-lang {fallback_lang} disagree: pass --fallback-lang only")
        err.print("note: --fallback is deprecated here: it is --fallback-lang (as in embed and bench)",
                  markup=False, highlight=False, style="yellow")
        fallback_lang = fallback
    if extension is not None and langs is not None:
        raise MlclipError("--extension and --langs both give the languages: pass one of them")
    if extension is not None:
        if not is_extension(extension):
            raise MlclipError(f"{extension}: not a language-extension folder (no {EXTENSION_FILE})")
        languages = lid.extension_languages(extension)
    elif langs is not None:
        languages = list(language_list(langs))
    else:
        languages = list(lid.XTD10_LANGUAGES)
    languages = lid.check_languages(languages, backend)
    lines = read_text_input(text_file)
    result = lid.langid(lid.LangidConfig(lines=tuple(lines), languages=languages, backend=backend,
                                         fallback=fallback_lang, min_confidence=min_confidence, out=out_path))
    total = len(result.detections)
    out.print(f"{total} texts; {result.backend} among {', '.join(result.languages)}")
    table = Table()
    table.add_column("language")
    table.add_column("texts", justify="right")
    table.add_column("share", justify="right")
    for language, count in result.counts.items():
        table.add_row(language, str(count), f"{100 * count / total:.1f}%")
    out.print(table)
    how = ", ".join(f"{method} {count}" for method, count in result.methods.items())
    out.print(f"decided by: {how}" + (f" -> {result.out}" if result.out else ""))
