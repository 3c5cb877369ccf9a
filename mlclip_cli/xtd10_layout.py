"""XTD10's file layout: the folder and file-name code of each language's caption file.

The XTD10 loader reads it; the world writes its test set in exactly this layout, so that
`prepare xtd10` prepares the world's test as it prepares the real XTD10.
"""

from __future__ import annotations

from pathlib import Path

# language -> (folder, code in the file name)
FILES = {
    "en": ("XTD10", "en"), "es": ("XTD10", "es"), "it": ("XTD10", "it"), "ko": ("XTD10", "ko"),
    "pl": ("XTD10", "pl"), "ru": ("XTD10", "ru"), "tr": ("XTD10", "tr"), "zh": ("XTD10", "zh"),
    "de": ("MIC", "de"), "fr": ("MIC", "fr"), "ja": ("STAIR", "jp"),
}


def caption_file(root: Path, language: str) -> Path:
    folder, code = FILES[language]
    return root / folder / f"test_1kcaptions_{code}.txt"
