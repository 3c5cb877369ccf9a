"""Language identification for texts that come without a language tag (`mlclip langid`,
`mlclip embed --lang auto`), restricted to the languages the caller can use.

Two steps per text:

1. Script rule. The letters' dominant Unicode script (a CJK character weighing 3 letters) picks the candidates among the allowed
   languages: Kana (with or without Han) is Japanese, Hangul is Korean, Han without Kana is
   Chinese (Japanese when Chinese is not allowed), Cyrillic/Greek/... leave only the allowed
   languages written in that script. One candidate: done, no model. None (text with no letters,
   or in a script no allowed language uses): the text matches nothing.
2. Model. Two or more candidates (Latin-script languages, say): the backend decides among them.
   `py3langid` (the default: most accurate and fastest on the world, XTD10 and Multi30K, see
   docs/benchmarks.md), `lingua` (lingua-language-detector, high-accuracy mode) or `lingua-low`
   (its low-accuracy mode). A backend with no evidence (a tie between its best two, every score
   zero) or below `min_confidence` matches nothing.

A text that matches nothing is an error unless a fallback language is given. py3langid (4.5 MB) is
a dependency of mlclip; lingua (96 MB) is the optional `langid` extra (`pip install 'mlclip[langid]'`):
without it this module still imports and fails in one line when asked for that backend.
"""

from __future__ import annotations

import copy
import functools
import json
import logging
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import regex

from mlclip_cli.errors import MlclipError
from mlclip_cli.text import normalise_language

BACKENDS = ("py3langid", "lingua", "lingua-low")
DEFAULT_BACKEND = "py3langid"
XTD10_LANGUAGES = ("en", "de", "fr", "es", "it", "ko", "pl", "ru", "tr", "zh", "ja")  # and the world's
EXTRA_HINT = "pip install 'mlclip[langid]'"
_log = logging.getLogger(__name__)  # the CLI prints a warning as one note: line

# The scripts a language is written in, for every non-Latin language either backend knows;
# any other code is taken as Latin-script. "Kana" is the Japanese-only part of the writing system.
_SCRIPTS: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(("zh", "yue", "wuu"), ("Han",)),
    "ja": ("Kana", "Han"),
    "ko": ("Hangul", "Han"),
    **dict.fromkeys(("ru", "uk", "be", "bg", "mk", "kk", "ky", "mn", "tg", "tt", "ba"), ("Cyrillic",)),
    "sr": ("Cyrillic", "Latin"),
    **dict.fromkeys(("el", "grc"), ("Greek",)),
    **dict.fromkeys(("ar", "ary", "arz", "fa", "ps", "ur", "ug", "sdh", "uzs"), ("Arabic",)),
    "ku": ("Arabic", "Latin"),
    **dict.fromkeys(("he", "hbo", "yi"), ("Hebrew",)),
    **dict.fromkeys(("hi", "mr", "ne", "sa"), ("Devanagari",)),
    "gom": ("Devanagari", "Latin"),
    **dict.fromkeys(("bn", "as"), ("Bengali",)),
    "gu": ("Gujarati",), "pa": ("Gurmukhi",), "or": ("Oriya",), "ta": ("Tamil",), "te": ("Telugu",),
    "kn": ("Kannada",), "ml": ("Malayalam",), "si": ("Sinhala",), "th": ("Thai",), "lo": ("Lao",),
    "km": ("Khmer",), "my": ("Myanmar",), "ka": ("Georgian",), "hy": ("Armenian",), "am": ("Ethiopic",),
    **dict.fromkeys(("dz", "bo"), ("Tibetan",)),
}
_SCRIPT_PATTERNS = [(name, regex.compile(rf"\p{{Script={name}}}")) for name in (
    "Latin", "Han", "Hangul", "Cyrillic", "Greek", "Arabic", "Hebrew", "Devanagari", "Bengali", "Gujarati",
    "Gurmukhi", "Oriya", "Tamil", "Telugu", "Kannada", "Malayalam", "Sinhala", "Thai", "Lao", "Khmer",
    "Myanmar", "Georgian", "Armenian", "Ethiopic", "Tibetan")] + [
    ("Kana", regex.compile(r"[\p{Script=Hiragana}\p{Script=Katakana}]"))]
_CHAR_SCRIPT: dict[str, str | None] = {}


def scripts_of(language: str) -> tuple[str, ...]:
    return _SCRIPTS.get(language, ("Latin",))


def _char_script(ch: str) -> str | None:
    try:
        return _CHAR_SCRIPT[ch]
    except KeyError:
        found = None
        if ch.isalpha():
            found = next((name for name, pattern in _SCRIPT_PATTERNS if pattern.match(ch)), "Other")
        _CHAR_SCRIPT[ch] = found
        return found


# A Han, Kana or Hangul character carries about a word's worth of text (Chinese words average
# ~1.5 characters, Latin-script words ~5 letters), so in mixed text it counts as 3 letters: a
# Chinese caption quoting "mystery toothbrush" stays Chinese.
_WEIGHT = {"Han": 3, "Kana": 3, "Hangul": 3}


def dominant_script(text: str) -> str | None:
    """The script most of the text's letters are in (Han, Kana and Hangul characters weigh 3;
    "Kana" for Japanese: Kana plus its Han; "Hangul" for Korean with Hanja), or None when the
    text has no letters."""
    counts = Counter()
    for script in map(_char_script, text):
        if script is not None:
            counts[script] += _WEIGHT.get(script, 1)
    if not counts:
        return None
    if counts["Kana"]:
        counts["Kana"] += counts.pop("Han", 0)
    elif counts["Hangul"]:
        counts["Hangul"] += counts.pop("Han", 0)
    return max(counts.items(), key=lambda item: item[1])[0]


def script_candidates(text: str, languages: Sequence[str]) -> list[str]:
    """The allowed languages the text's dominant script leaves (in `languages`' order)."""
    script = dominant_script(text)
    if script is None:
        return []
    if script == "Han":  # Han without Kana: Chinese; Japanese only when no Chinese is allowed
        chinese = [lang for lang in languages if scripts_of(lang)[0] == "Han"]
        return chinese or [lang for lang in languages if lang == "ja"]
    return [lang for lang in languages if script in scripts_of(lang)]


@dataclass(frozen=True)
class Detection:
    language: str | None  # None: the text matched none of the languages (and there was no fallback)
    confidence: float | None  # the backend's probability of that language; None for the script rule / fallback
    method: str  # "script" (one candidate for its script), "model" (the backend chose), "fallback", "none"


# ---------------------------------------------------------------------------------------- backends


def _require(module: str, package: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        hint = EXTRA_HINT if package != "py3langid" else "pip install py3langid (a dependency of mlclip)"
        raise MlclipError(f"language identification needs {package}: {hint}") from None


class _Py3langid:
    name = "py3langid"

    def __init__(self):
        langid = _require("py3langid.langid", "py3langid")
        self._base = langid.LanguageIdentifier.from_model_file(langid.MODEL_FILE, norm_probs=True)
        self.known = frozenset(self._base.labels) - {"zxx"}  # zxx: "no linguistic content"
        self._restricted: dict[tuple[str, ...], object] = {}

    def _for(self, candidates: tuple[str, ...]):
        if candidates not in self._restricted:
            identifier = copy.copy(self._base)  # set_languages replaces the arrays, never edits them
            identifier.set_languages(list(candidates))
            self._restricted[candidates] = identifier
        return self._restricted[candidates]

    def classify(self, text: str, candidates: tuple[str, ...]) -> tuple[str | None, float]:
        ranked = self._for(candidates).rank(text)
        (best, score), second = ranked[0], ranked[1][1]
        return (best, score) if score > second else (None, score)  # a tie: no evidence either way


_LINGUA_CODES = {"no": "nb"}  # ISO 639-1 as mlclip spells it -> lingua's IsoCode639_1


class _Lingua:
    def __init__(self, low_accuracy: bool, preload: bool = True):
        self.name = "lingua-low" if low_accuracy else "lingua"
        self._lingua = _require("lingua", "lingua-language-detector")
        self._low, self._preload = low_accuracy, preload
        by_code = {lang.iso_code_639_1.name.lower(): lang for lang in self._lingua.Language.all()}
        self._languages = {**by_code, **{ours: by_code[theirs] for ours, theirs in _LINGUA_CODES.items()}}
        self.known = frozenset(self._languages)
        self._detectors: dict[tuple[str, ...], object] = {}

    def _for(self, candidates: tuple[str, ...]):
        if candidates not in self._detectors:
            builder = self._lingua.LanguageDetectorBuilder.from_languages(*(self._languages[c] for c in candidates))
            if self._preload:  # all at once: the same total as lazily, but no first-text stall per language
                builder = builder.with_preloaded_language_models()
            if self._low:
                builder = builder.with_low_accuracy_mode()
            self._detectors[candidates] = (builder.build(), {self._languages[c]: c for c in candidates})
        return self._detectors[candidates]

    def classify(self, text: str, candidates: tuple[str, ...]) -> tuple[str | None, float]:
        detector, codes = self._for(candidates)
        values = detector.compute_language_confidence_values(text)
        if not values or values[0].value <= 0 or (len(values) > 1 and values[0].value <= values[1].value):
            return None, values[0].value if values else 0.0
        return codes[values[0].language], values[0].value


@functools.lru_cache(maxsize=None)
def get_backend(name: str):
    """A loaded backend (cached: a model loads once per process)."""
    if name == "py3langid":
        return _Py3langid()
    if name in ("lingua", "lingua-low"):
        return _Lingua(low_accuracy=name == "lingua-low")
    raise MlclipError(f"unknown language-identification backend '{name}' (choose {', '.join(BACKENDS)})")


def check_languages(languages: Sequence[str], backend: str = DEFAULT_BACKEND) -> tuple[str, ...]:
    """Normalised, de-duplicated codes the backend knows ("jp" -> "ja"), or one line naming the
    first unknown one."""
    known = get_backend(backend).known
    codes = tuple(dict.fromkeys(normalise_language(code) for code in languages if code.strip()))
    if not codes:
        raise MlclipError("no languages to choose from")
    for code in codes:
        if code not in known:
            raise MlclipError(f"unknown language code '{code}' for backend {backend} (ISO 639-1 codes it knows: "
                              f"{', '.join(sorted(c for c in known if len(c) == 2))})")
    return codes


# ---------------------------------------------------------------------------------------- detection


def identify(texts: Sequence[str], languages: Sequence[str], backend: str = DEFAULT_BACKEND,
             fallback: str | None = None, *, min_confidence: float = 0.0,
             labels: Sequence[str] | None = None) -> list[Detection]:
    """One Detection per text, each language one of `languages`. A text that matches none of
    them gets `fallback` (method "fallback"), or raises one line naming it (`labels[i]`, e.g.
    "line 3", says where; default "text i+1")."""
    codes = check_languages(languages, backend)
    if not 0 <= min_confidence <= 1:
        raise MlclipError(f"the minimum confidence must be between 0 and 1, not {min_confidence}")
    if fallback is not None:
        fallback = normalise_language(fallback)
        if fallback not in codes:
            raise MlclipError(f"--fallback-lang {fallback}: not one of the languages detected among ({', '.join(codes)})")
    model = get_backend(backend)
    found = []
    for index, text in enumerate(texts):
        candidates = tuple(script_candidates(text, codes))
        if len(candidates) == 1:
            detection = Detection(candidates[0], None, "script")
        elif not candidates:
            detection = Detection(None, None, "none")
        else:
            language, confidence = model.classify(text, candidates)
            if language is None or confidence < min_confidence:
                detection = Detection(None, round(float(confidence), 6), "none")
            else:
                detection = Detection(language, round(float(confidence), 6), "model")
        if detection.language is None:
            if fallback is None:
                where = labels[index] if labels is not None else f"text {index + 1}"
                shown = text if len(text) <= 40 else text[:37] + "..."
                raise MlclipError(f"{where}: {shown!r} matches none of the languages ({', '.join(codes)}); "
                                  "--fallback-lang LANG gives such texts LANG (en: the English tower)")
            detection = Detection(fallback, None, "fallback")
        found.append(detection)
    return found


def detect_languages(texts: list[str], languages: Sequence[str], backend: str = DEFAULT_BACKEND,
                     fallback: str | None = None) -> list[str]:
    """The language of each text, restricted to `languages` (ISO 639-1 codes); see `identify`."""
    return [d.language for d in identify(texts, languages, backend, fallback)]


class Identifier:
    """Language identification for preparing data (`mlclip prepare pairs`, whose data layer cannot
    import this module and is handed one): each text's language among `languages`, or None where
    it matches none, never an error; `known` is every code the backend knows."""

    def __init__(self, languages: Sequence[str] = XTD10_LANGUAGES, backend: str = DEFAULT_BACKEND):
        self.languages = check_languages(languages, backend)
        self.backend = backend

    @property
    def known(self) -> frozenset[str]:
        return get_backend(self.backend).known

    def __call__(self, texts: Sequence[str]) -> list[str | None]:
        # a fallback turns "matches none" from an error into a mark (method "fallback") read back as None
        found = identify(list(texts), self.languages, self.backend, fallback=self.languages[0])
        return [None if d.method == "fallback" else d.language for d in found]


def auto_fallback(model: str, backend: str = DEFAULT_BACKEND, fallback_language: str | None = None,
                  fallback: str = "none") -> str | None:
    """`--lang auto`'s one rule (bench, embed), checked before any work: each text goes to the pack
    of its language detected among the model's languages (an extension's plus English; XTD10's 11
    for a plain CLIP); a text that matches none of them takes `--fallback-lang LANG` (one of those
    languages), else it is an error. `--fallback english`, which once meant `--fallback-lang en`
    here, still does, with a note. Returns the fallback language (None: an error)."""
    get_backend(backend)  # an unknown backend or a missing extra: one line, before the model loads
    if fallback_language is None and fallback == "english":
        _log.warning("--fallback english with --lang auto is deprecated: it means --fallback-lang en (a text in "
                     "none of the model's languages goes through the English tower); pass that instead")
        fallback_language = "en"
    if fallback_language is None:
        return None
    try:
        code = check_languages([fallback_language], backend)[0]
    except MlclipError as exc:
        raise MlclipError(f"--fallback-lang {fallback_language}: {exc}") from None
    from mlclip_cli.core.extension import is_extension

    languages = extension_languages(model) if is_extension(Path(model)) else list(XTD10_LANGUAGES)
    if code not in languages:
        raise MlclipError(f"--fallback-lang {code}: not one of the languages detected among ({', '.join(languages)})")
    return code


def extension_languages(folder: str | os.PathLike) -> list[str]:
    """The languages an extension folder encodes, English always included: a continual
    (cll-clip) extension lists them in its extension.json; an MLA extension has one pack each."""
    from mlclip_cli.core.extension import EXTENSION_FILE, read_extension, read_json_object

    folder = Path(folder)
    info = read_json_object(folder / EXTENSION_FILE, "extension index")
    listed = info.get("languages")
    languages = [str(code) for code in listed] if isinstance(listed, list) else read_extension(folder).languages
    return list(dict.fromkeys(["en", *languages]))


def encoder_languages(encoder) -> list[str]:
    """The languages to detect among for an encoder: an extension's own (plus English), or
    XTD10's 11 for a plain CLIP (one tower for all of them)."""
    languages = getattr(encoder, "languages", None)
    if languages is None:
        return list(XTD10_LANGUAGES)
    return list(dict.fromkeys(["en", *languages]))


class AutoRouted:
    """An encoder that ignores the language a caller names: each text goes to the pack of the
    language detected for it (`--lang auto` in bench). `routing[named][detected]` counts where
    the texts of each named language went."""

    def __init__(self, encoder, backend: str = DEFAULT_BACKEND, fallback: str | None = None):
        self.encoder, self.backend, self.fallback = encoder, backend, fallback
        self.languages = encoder_languages(encoder)
        self.routing: dict[str, dict[str, int]] = {}
        self._detected: dict[str, str] = {}  # caption -> its language, from `detect_all`

    def detect_all(self, captions: Sequence[str]) -> None:
        """Detect every caption's language now, before any encoding: one that matches none (and no
        fallback) is refused before the features are computed, not after; encode_texts reuses them."""
        unseen = list(dict.fromkeys(c for c in captions if c not in self._detected))
        self._detected.update(zip(unseen, detect_languages(unseen, self.languages, self.backend, self.fallback)))

    def encode_texts(self, captions: list[str], language: str):
        self.detect_all(captions)
        detected = [self._detected[caption] for caption in captions]
        counts = self.routing.setdefault(language, {})
        for code in detected:
            counts[code] = counts.get(code, 0) + 1
        return self.encoder.encode_mixed(list(captions), detected)

    def accuracy(self, language: str) -> float:
        """Share (%) of `language`'s texts routed to `language`."""
        counts = self.routing.get(language, {})
        return 100.0 * counts.get(language, 0) / max(1, sum(counts.values()))

    def __getattr__(self, name: str):  # identities, image tower, name: the wrapped encoder's
        return getattr(self.encoder, name)


# ---------------------------------------------------------------------------------------- files


OUT_SUFFIXES = (".parquet", ".tsv")


@dataclass(frozen=True)
class LangidConfig:
    lines: tuple[tuple[int, str], ...]  # (line number, text), from text_files.read_text_lines
    languages: tuple[str, ...] = XTD10_LANGUAGES
    backend: str = DEFAULT_BACKEND
    fallback: str | None = None
    min_confidence: float = 0.0
    out: Path | None = None  # .parquet or .tsv; None: count only


@dataclass
class LangidResult:
    detections: list[Detection]
    languages: tuple[str, ...]
    backend: str
    out: Path | None
    counts: dict[str, int] = field(default_factory=dict)  # language -> texts, most first
    methods: dict[str, int] = field(default_factory=dict)  # script / model / fallback -> texts


def check_out_path(out: Path | None) -> None:
    if out is None:
        return
    if Path(out).suffix.lower() not in OUT_SUFFIXES:
        raise MlclipError(f"{out}: the output must end in .parquet or .tsv, not '{Path(out).suffix or '(none)'}'")
    from mlclip_cli.locks import check_writable

    check_writable(out, "output file", is_file=True)


def langid(config: LangidConfig) -> LangidResult:
    """Detect every line's language and write (line, text, language, confidence, method)."""
    check_out_path(config.out)
    languages = check_languages(config.languages, config.backend)
    numbers = [number for number, _ in config.lines]
    texts = [text for _, text in config.lines]
    detections = identify(texts, languages, config.backend, config.fallback, min_confidence=config.min_confidence,
                          labels=[f"line {n}" for n in numbers])
    if config.out is not None:
        _write(Path(config.out), numbers, texts, detections, languages, config.backend)
    counts = Counter(d.language for d in detections)
    return LangidResult(detections, languages, config.backend, config.out, dict(counts.most_common()),
                        dict(Counter(d.method for d in detections).most_common()))


def _write(out: Path, numbers, texts, detections, languages, backend) -> None:
    from mlclip_cli.artifacts import LANGID, write_table

    columns = {"line": numbers, "text": texts, "language": [d.language for d in detections],
               "confidence": [d.confidence for d in detections], "method": [d.method for d in detections]}
    if out.suffix.lower() == ".parquet":
        import pyarrow as pa

        write_table(pa.table(columns, schema=LANGID.schema), out, LANGID,
                    metadata={"backend": backend, "languages": json.dumps(list(languages))})
        return
    import csv

    from mlclip_cli.atomic import atomic_path

    with atomic_path(out) as tmp, tmp.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
        writer.writerow([f.name for f in LANGID.schema])
        for row in zip(*columns.values()):
            writer.writerow(["" if value is None else value for value in row])
