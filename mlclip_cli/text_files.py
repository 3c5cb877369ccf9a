"""A user's text file, one text per line (`langid`, `embed`), or a text column of a Parquet file
(`embed --parquet`): UTF-8 text, or one clear line saying why not."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from mlclip_cli.errors import MlclipError


def parse_text_lines(data: bytes, where: str) -> list[tuple[int, str]]:
    """(line number, text) of each non-blank line of UTF-8 `data`; one line for binary, non-UTF-8
    or empty input."""
    if b"\x00" in data:
        raise MlclipError(f"{where}: a binary file (a NUL byte at offset {data.index(0)}), expected UTF-8 text, "
                          "one text per line")
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
    if not path.exists():
        raise MlclipError(f"{path}: no such file")
    if path.is_dir():
        raise MlclipError(f"{path}: a folder, not a text file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise MlclipError(f"cannot read {path}: {(exc.strerror or str(exc)).lower()}") from None
    return parse_text_lines(data, str(path))


def read_text_input(given: str) -> list[tuple[int, str]]:
    """A --text-file value: a path, or '-' for standard input."""
    if given == "-":
        return parse_text_lines(sys.stdin.buffer.read(), "stdin")
    return read_text_lines(given)


def read_text_column(path: str | os.PathLike, column: str) -> list[str]:
    """The non-blank texts of a Parquet file's string `column`; one line naming the file and the
    column when the file is missing or unreadable, the column absent or not text, or it holds none."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = Path(path)
    if not path.is_file():
        raise MlclipError(f"--parquet {path}: {'a folder, not a file' if path.is_dir() else 'no such file'}")
    try:
        schema = pq.read_schema(path)
    except Exception as exc:  # not Parquet at all: the reader's first line says why
        raise MlclipError(f"--parquet {path}: not a readable Parquet file ({str(exc).splitlines()[0]})") from None
    if column not in schema.names:
        raise MlclipError(f"--column {column}: {path} has no such column (it has {', '.join(schema.names)})")
    kind = schema.field(column).type
    if not (pa.types.is_string(kind) or pa.types.is_large_string(kind)):
        raise MlclipError(f"--column {column}: a {kind} column of {path}, not text")
    texts = [text.strip() for text in pq.read_table(path, columns=[column]).column(column).to_pylist() if text]
    texts = [text for text in texts if text]
    if not texts:
        raise MlclipError(f"{path}: no text in its column '{column}'")
    return texts
