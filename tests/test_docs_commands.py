"""Every `mlclip ...` command written in README.md and docs/ names commands and options that exist.

A renamed option or command breaks the docs silently; this walks each command line of every page
(fenced blocks and inline code spans) through the real click tree of the CLI and fails with the page,
the line and the unknown word. Values are not checked (the docs use placeholders such as DIR or
<dataset>), only the words the CLI itself defines.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import typer.main

from mlclip_cli.cli.app import app

try:  # typer >= 0.20 vendors its own click
    from typer import _click as click
except ImportError:  # pragma: no cover
    import click

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
GENERATED = {ROOT / "docs" / "cli.md"}  # written from the CLI itself by scripts/gen_cli_docs.py

FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.S | re.M)
INLINE = re.compile(r"(?<!`)`(mlclip [^`]+)`(?!`)")
TORCHRUN_MODULE = re.compile(r"-m mlclip_cli\b")


def _is_group(command) -> bool:
    return hasattr(command, "list_commands") and hasattr(command, "get_command")


def _options(command) -> dict[str, click.Parameter]:
    names = {"--help": None}
    for param in command.params:
        for name in [*param.opts, *param.secondary_opts]:
            names[name] = param
    return names


def command_lines(text: str) -> list[str]:
    """`mlclip ...` commands of a page: fenced lines (with their `\\` continuations) and inline spans."""
    found = []
    for block in FENCE.findall(text):
        joined = re.sub(r"\\\n\s*", " ", block)
        for line in joined.splitlines():
            line = line.strip().removeprefix("$ ")
            if TORCHRUN_MODULE.search(line):
                line = "mlclip " + TORCHRUN_MODULE.split(line, 1)[1]
            if line.startswith("mlclip "):
                found.append(line)
    prose = FENCE.sub("", text)
    for span in INLINE.findall(prose):
        found.append(span.replace("\\|", "|"))
    return found


def _tokens(line: str) -> list[str]:
    lexer = shlex.shlex(line, posix=True, punctuation_chars=False)
    lexer.whitespace_split = True
    lexer.commenters = "#"
    try:
        words = list(lexer)
    except ValueError:  # an unbalanced quote in prose ("it's"): split on spaces instead
        words = line.split()
    # optional groups such as `[--images DIR]` and `[--quick]`: their words are still checked
    return [word.strip("[]") for word in words[1:] if word.strip("[]")]


def problems(line: str, root) -> list[str]:
    """The words of one command line that the CLI does not know."""
    command, words, unknown = root, _tokens(line), []
    i = 0
    while i < len(words):
        word = words[i]
        if word in ("...", "|") or word.startswith("<") or word.startswith("{"):
            if _is_group(command):  # a placeholder command (`prepare <dataset>`): the rest is its own
                return unknown
            i += 1
            continue
        if word.startswith("-"):
            name = word.split("=", 1)[0]
            params = _options(command)
            if name not in params:
                unknown.append(f"{name} (not an option of `{command.name}`)")
                i += 1
                continue
            param = params[name]
            takes_value = param is not None and not getattr(param, "is_flag", False) and param.nargs != 0
            i += 1
            if takes_value and "=" not in word and i < len(words) and not words[i].startswith("--"):
                i += 1  # its value (bare options such as `--teir` take none when a flag follows)
            continue
        if _is_group(command):
            alternatives = [a for a in word.split("|") if a not in ("", "...")]
            ctx = click.Context(command)
            subs = [command.get_command(ctx, a) for a in alternatives]
            if not alternatives or any(sub is None for sub in subs):
                missing = [a for a, sub in zip(alternatives, subs) if sub is None]
                unknown.append(f"{' or '.join(missing) or word} (not a command of `{command.name}`)")
                return unknown
            if len(subs) > 1:  # `packs list|show|check|remove`: each exists; their options differ
                return unknown
            command = subs[0]
        i += 1
    return unknown


def _all_lines() -> list[tuple[str, str]]:
    return [(page.relative_to(ROOT).as_posix(), line) for page in PAGES if page not in GENERATED
            for line in command_lines(page.read_text(encoding="utf-8"))]


def test_the_pages_have_commands_to_check():
    lines = _all_lines()
    pages = {page for page, _ in lines}
    assert len(lines) > 100 and {"README.md", "docs/tutorial.md", "docs/benchmarks.md"} <= pages


def test_every_documented_command_parses_against_the_cli():
    root = typer.main.get_command(app)
    bad = [f"{page}: `{line}`: {', '.join(found)}" for page, line in _all_lines()
           if (found := problems(line, root))]
    assert not bad, "documented commands the CLI does not accept:\n" + "\n".join(bad)


@pytest.mark.parametrize("line, word", [
    ("mlclip train --langs de --no-such-option 3", "--no-such-option"),
    ("mlclip bench xtdd --langs all", "xtdd"),
    ("mlclip -w ws packs lisst", "lisst"),
    ("mlclip prepare world --rooot DIR", "--rooot"),
])
def test_a_wrong_word_is_caught(line, word):
    found = problems(line, typer.main.get_command(app))
    assert found and word in found[0]


def test_placeholders_and_continuations_are_read():
    text = "```bash\nmlclip -w ws train --method mla \\\n    --nlt-steps 10   # a comment --bogus\n```\n" \
           "and `mlclip bench <xtd\\|multi30k> --langs all` and `mlclip prepare <dataset> --root DIR [--images DIR]`"
    lines = command_lines(text)
    assert lines[0].split() == "mlclip -w ws train --method mla --nlt-steps 10 # a comment --bogus".split()
    root = typer.main.get_command(app)
    assert [problems(line, root) for line in lines] == [[], [], []]
