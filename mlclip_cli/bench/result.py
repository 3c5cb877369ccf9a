"""The bench result JSON: its schema, defined once, and its validating writer and checking reader.

Per language, `metrics` uses CLIP_benchmark's keys (`image_retrieval_recall@k` = text->image,
`text_retrieval_recall@k` = image->text) plus ours (`mean_recall`, `text_to_text_recall@k`).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from mlclip_cli.atomic import write_json
from mlclip_cli.errors import ArtifactError

BENCH_SCHEMA_VERSION = 1
KS = (1, 5, 10)
RETRIEVAL_KEYS = tuple(f"image_retrieval_recall@{k}" for k in KS) + tuple(f"text_retrieval_recall@{k}" for k in KS) + ("mean_recall",)
TRANSLATION_KEYS = tuple(f"text_to_text_recall@{k}" for k in KS)

# key -> type(s) of the top level
TOP_LEVEL = {
    "artifact": str, "schema_version": int, "benchmark": str, "dataset": str, "manifest": str, "split": str,
    "subset": (str, type(None)), "model": str, "model_identity": str, "text_encoder": str, "index": str,
    "captions_policy": str, "created": str, "mlclip_version": str, "languages": dict, "average": dict,
}
PER_LANGUAGE = {"images": int, "captions": int, "metrics": dict}


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and (math.isnan(value) or 0 <= value <= 100)


def validate_bench_result(result: dict, where: str = "bench result") -> None:
    """Raise ArtifactError naming the first key that is missing or of the wrong type."""
    if not isinstance(result, dict):
        raise ArtifactError(f"{where}: not a JSON object")
    for key, kind in TOP_LEVEL.items():
        if key not in result:
            raise ArtifactError(f"{where}: key '{key}' is missing")
        if not isinstance(result[key], kind):
            raise ArtifactError(f"{where}: key '{key}' has the wrong type ({type(result[key]).__name__})")
    if result["artifact"] != "bench":
        raise ArtifactError(f"{where}: not a bench result (artifact '{result['artifact']}')")
    if not result["languages"]:
        raise ArtifactError(f"{where}: no languages")
    for language, entry in result["languages"].items():
        for key, kind in PER_LANGUAGE.items():
            if not isinstance(entry.get(key), kind):
                raise ArtifactError(f"{where}: languages.{language}.{key} is missing or of the wrong type")
        metrics = entry["metrics"]
        for key in RETRIEVAL_KEYS:
            if not _number(metrics.get(key)):
                raise ArtifactError(f"{where}: languages.{language}.metrics.{key} is missing or not a percentage")
        for key, value in metrics.items():
            if not _number(value):
                raise ArtifactError(f"{where}: languages.{language}.metrics.{key} is not a percentage")
    for key in RETRIEVAL_KEYS:
        if not _number(result["average"].get(key)):
            raise ArtifactError(f"{where}: average.{key} is missing or not a percentage")


def write_bench_result(result: dict, path: Path) -> Path:
    validate_bench_result(result, f"cannot write {path}")
    return write_json(path, result)


def read_bench_result(path: Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"{path}: no such bench result")
    try:
        result = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{path}: not valid JSON ({exc})") from None
    validate_bench_result(result, str(path))
    return result
