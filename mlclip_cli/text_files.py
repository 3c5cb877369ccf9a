"""A user's text file, one text per line (`langid`, `embed`): UTF-8 or one clear line saying why not."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from mlclip_cli.errors import MlclipError


def parse_text_lines(data: bytes, where: str) -> list[tuple[int, str]]:
    """(line number, text) of each non-blank line of UTF-8 `data`; one line for binary, non-UTF-8
    or empty input."""
    if b"\x00" in data:
        raise MlclipError(f"{where}: a binary file (NUL bytes), expected UTF-8 text, one text per line")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise MlclipError(f"{where}: not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})") from None
    lines = [(number, line.strip()) for number, line in enumerate(text.splitlines(), 1)]
    lines = [(number, line) for number, line in lines if line]
    if not lines:
        raise MlclipError(f"{where}: no text in it (empty file)")
    return lines


def read_text_lines(path: str | os.PathLike) -> list[tuple[int, str]]:
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise MlclipError(f"cannot read {path}: {exc.strerror or exc}") from None
    return parse_text_lines(data, str(path))


def read_text_input(given: str) -> list[tuple[int, str]]:
    """A --text-file value: a path, or '-' for standard input."""
    if given == "-":
        return parse_text_lines(sys.stdin.buffer.read(), "stdin")
    return read_text_lines(given)
