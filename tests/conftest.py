"""Shared test helpers."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlclip_cli.cli.app import main

SHARED_XTD10 = Path(__file__).resolve().parents[2] / "shared" / "data" / "xtd10"


class CliResult:
    def __init__(self, code: int, out: str, err: str):
        self.code, self.out, self.err = code, out, err


@pytest.fixture
def run_cli(capsys, tmp_path):
    """Run `mlclip ARGS` in-process with a temporary workspace; return code, stdout, stderr."""

    def run(*args: str) -> CliResult:
        try:
            main(["--workspace", str(tmp_path / "ws"), *args])
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run
