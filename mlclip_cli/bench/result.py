"""The bench result JSON: its schema, defined once, and its validating writer and checking reader.

A result belongs to one task (top-level `task`): `t2i`, image-text retrieval both ways, or `t2t`,
text-to-text retrieval between each language and its parallel English sentences. Per language,
`metrics` of a `t2i` result uses CLIP_benchmark's keys (`image_retrieval_recall@k` = text->image,
`text_retrieval_recall@k` = image->text) plus ours (`mean_recall`, `text_to_text_recall@k`); a
`t2t` result has `target_to_english_recall@k`, `english_to_target_recall@k` and `mean_recall`
(the mean of those six). Schema version 1 had no `task`: such files are `t2i`.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from mlclip_cli.atomic import write_json
from mlclip_cli.errors import ArtifactError

BENCH_SCHEMA_VERSION = 2  # 2 added `task` (and the t2t task); version 1 files are read as t2i
KS = (1, 5, 10)
RETRIEVAL_KEYS = tuple(f"image_retrieval_recall@{k}" for k in KS) + tuple(f"text_retrieval_recall@{k}" for k in KS) + ("mean_recall",)
T2T_KEYS = tuple(f"target_to_english_recall@{k}" for k in KS) + tuple(f"english_to_target_recall@{k}" for k in KS) + ("mean_recall",)

TASKS = ("t2i", "t2t")
DEFAULT_TASK = "t2i"
TASK_NAMES = {"t2i": "image-text", "t2t": "text-to-text"}
# per task: the metrics every language and the average must have
TASK_KEYS = {"t2i": RETRIEVAL_KEYS, "t2t": T2T_KEYS}

# key -> type(s) of the top level
TOP_LEVEL = {
    "artifact": str, "schema_version": int, "benchmark": str, "dataset": str, "manifest": str, "split": str,
    "subset": (str, type(None)), "model": str, "model_identity": str, "text_encoder": str, "index": str,
    "captions_policy": str, "created": str, "mlclip_version": str, "languages": dict, "average": dict,
}
# per task: key -> type of each languages.<lang> entry
PER_LANGUAGE = {
    "t2i": {"images": int, "captions": int, "metrics": dict},
    # captions: the language's sentences (the English->target gallery); english_captions: the split's
    # English sentences (the target->English gallery); *_queries: the sentences with a translation
    "t2t": {"captions": int, "english_captions": int, "target_queries": int, "english_queries": int, "metrics": dict},
}


def result_task(result: dict) -> str:
    """The task of a (validated) result; files from before schema version 2 are image-text."""
    return result.get("task", DEFAULT_TASK)


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
    if "task" not in result and result["schema_version"] >= 2:
        raise ArtifactError(f"{where}: key 'task' is missing")
    task = result_task(result)
    if task not in TASKS:
        raise ArtifactError(f"{where}: unknown task '{task}' (known: {', '.join(TASKS)})")
    if not isinstance(result.get("skipped_languages", {}), dict):
        raise ArtifactError(f"{where}: key 'skipped_languages' has the wrong type")
    if not result["languages"]:
        raise ArtifactError(f"{where}: no languages")
    for language, entry in result["languages"].items():
        if not isinstance(entry, dict):
            raise ArtifactError(f"{where}: languages.{language} is not an object")
        for key, kind in PER_LANGUAGE[task].items():
            if not isinstance(entry.get(key), kind) or isinstance(entry.get(key), bool):
                raise ArtifactError(f"{where}: languages.{language}.{key} is missing or of the wrong type")
        metrics = entry["metrics"]
        for key in TASK_KEYS[task]:
            if not _number(metrics.get(key)):
                raise ArtifactError(f"{where}: languages.{language}.metrics.{key} is missing or not a percentage")
        for key, value in metrics.items():
            if not _number(value):
                raise ArtifactError(f"{where}: languages.{language}.metrics.{key} is not a percentage")
    for key in TASK_KEYS[task]:
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
