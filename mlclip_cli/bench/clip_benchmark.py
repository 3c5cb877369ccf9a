"""A bench result in CLIP_benchmark's own result shape: one JSON file per language.

`mlclip bench ... --format clip_benchmark` writes these beside mlclip's own JSON, so scripts that
aggregate CLIP_benchmark results (`clip_benchmark build`, or a `json.load` of each file) read
mlclip's numbers unchanged. What is matched, as read in LAION-AI/CLIP_benchmark (main, June 2025):

- clip_benchmark/cli.py, `run`: each evaluation dumps one JSON object
  `{"dataset", "model", "pretrained", "task", "metrics", "language"}` (plus `classnames` /
  `templates` on request). The default `--output` template is
  `{dataset}_{pretrained}_{model}_{language}_{task}.json`, where `dataset` has `/` replaced by `_`
  and `pretrained` is the file's base name when it is a path.
- clip_benchmark/cli.py, `main_build`: the aggregation reads `data["metrics"]` and every other
  top-level key into one CSV row, and adds `model_fullname` = `model + " " + pretrained`.
- clip_benchmark/metrics/zeroshot_retrieval.py: the task is `zeroshot_retrieval`; its metrics are
  `image_retrieval_recall@{k}` (text->image) and `text_retrieval_recall@{k}` (image->text) for each
  `--recall_k` (we give 1, 5 and 10, as `--recall_k 1 5 10` would), as FRACTIONS in [0, 1]. A text
  query hits when its image is in the top k; an image hits when any of its captions is: the same
  all-captions-kept policy as mlclip's bench. So `metrics` holds those six keys only, each
  mlclip percentage / 100. CLIP_benchmark has no `mean_recall` and no text->text recall: they
  are not in `metrics` (see `mlclip` below).
- Data set names (clip_benchmark/datasets/builder.py): XTD10 is `xtd10` (its older alias
  `multilingual_mscoco_captions` reads the same files) and calls Japanese `jp`, not `ja`;
  Crossmodal-3600 is `crossmodal3600` (same 36 codes as ours); MSCOCO Karpathy 5K test is
  `mscoco_captions`. CLIP_benchmark has no Multi30K (its `flickr30k` is the Karpathy test, other
  images) nor xFlickr&CO, and no COCO 1K: those keep mlclip's names (`multi30k`, `xflickrco`,
  `mscoco_captions_1k`), which clash with none of its data sets.

Anything mlclip knows beyond that (benchmark, subset, model spec and identity, text encoder,
index, image and caption counts, our language code, `mean_recall` and `text_to_text_recall@k` as
fractions) is under one extra top-level key, `mlclip`, as CLIP_benchmark's own optional
`classnames` are: `main_build` just turns it into one more CSV column.

CLIP_benchmark has no text-to-text task, so a `t2t` bench result has no CLIP_benchmark shape:
converting one is refused (and `mlclip bench --task t2t --format clip_benchmark` says so up front).
"""

from __future__ import annotations

import re
from pathlib import Path

from mlclip_cli.atomic import write_json
from mlclip_cli.bench.result import result_task, validate_bench_result
from mlclip_cli.errors import MlclipError

TASK = "zeroshot_retrieval"
FILENAME_TEMPLATE = "{dataset}_{pretrained}_{model}_{language}_{task}.json"  # CLIP_benchmark's default --output
SUBFOLDER = "clip_benchmark"  # under the results folder, so `mlclip bench report results/*.json` never meets them
FORMATS = ("mlclip", "clip_benchmark")

# mlclip benchmark (and subset) -> CLIP_benchmark's data set name
DATASETS = {("xtd", None): "xtd10", ("xm3600", None): "crossmodal3600", ("coco", None): "mscoco_captions",
            ("coco", "5k"): "mscoco_captions", ("coco", "1k"): "mscoco_captions_1k",
            ("multi30k", None): "multi30k", ("xflickrco", None): "xflickrco"}
# per CLIP_benchmark data set: our ISO code -> its code, where they differ
LANGUAGE_CODES = {"xtd10": {"ja": "jp"}}
_CLIP_BENCHMARK_METRIC = re.compile(r"^(image|text)_retrieval_recall@\d+$")
SHIPPED_MODEL = "mlclip-tiny"
NO_T2T = ("CLIP_benchmark has no text-to-text task, so --format clip_benchmark cannot hold a --task t2t "
          "result; use --format mlclip")


def dataset_name(benchmark: str, subset: str | None) -> str:
    return DATASETS.get((benchmark, subset)) or (f"{benchmark}_{subset}" if subset else benchmark)


def model_and_pretrained(model: str, model_identity: str, text_encoder: str) -> tuple[str, str]:
    """CLIP_benchmark's (model, pretrained) pair for an mlclip `--model` spec.

    `NAME:PRETRAINED` -> (NAME, PRETRAINED); the shipped `mlclip-tiny` -> (`mlclip-tiny`, `mlclip`);
    a `mlclip pretrain` folder -> (its architecture, the folder's name), as CLIP_benchmark names a
    local checkpoint; a language-extension folder -> (the folder's name, `mlclip-<method>`).
    """
    if text_encoder != "frozen":
        return Path(model).name or model, f"mlclip-{text_encoder}"
    if model == SHIPPED_MODEL:
        return SHIPPED_MODEL, "mlclip"
    for scheme in ("hf-hub:", "local-dir:"):  # open_clip's own schemes: the spec names the weights
        if model.startswith(scheme):
            return model, scheme[:-1]
    if "@sha256:" in model_identity:  # a checkpoint folder: identity is <architecture>@sha256:<digest>
        return model_identity.split("@sha256:", 1)[0], Path(model).name or model
    name, _, pretrained = model.partition(":")
    if pretrained:
        return name, pretrained
    return Path(model).name or model, "mlclip"


def _slug(text: str) -> str:
    # CLIP_benchmark turns `/` into `_` in the data set's slug; we do that for every part, and for
    # anything else a file name cannot hold.
    return re.sub(r"[^A-Za-z0-9._@+-]+", "_", text.replace("/", "_")).strip("_") or "_"


def output_name(dump: dict) -> str:
    pretrained = dump["pretrained"]
    if "/" in pretrained or "\\" in pretrained:  # a weights path: CLIP_benchmark uses its base name
        pretrained = Path(pretrained.replace("\\", "/")).name
    return FILENAME_TEMPLATE.format(dataset=_slug(dump["dataset"]), pretrained=_slug(pretrained),
                                    model=_slug(dump["model"]), language=_slug(dump["language"]), task=dump["task"])


def to_clip_benchmark(result: dict) -> dict[str, dict]:
    """mlclip bench result -> {CLIP_benchmark language code: CLIP_benchmark dump}. Pure."""
    validate_bench_result(result)
    if result_task(result) != "t2i":
        raise MlclipError(NO_T2T)
    dataset = dataset_name(result["benchmark"], result["subset"])
    model, pretrained = model_and_pretrained(result["model"], result["model_identity"], result["text_encoder"])
    codes = LANGUAGE_CODES.get(dataset, {})
    dumps = {}
    for language, entry in result["languages"].items():
        fractions = {key: value / 100.0 for key, value in entry["metrics"].items()}
        code = codes.get(language, language)
        dumps[code] = {
            "dataset": dataset, "model": model, "pretrained": pretrained, "task": TASK,
            "metrics": {k: v for k, v in fractions.items() if _CLIP_BENCHMARK_METRIC.match(k)},
            "language": code,
            "mlclip": {
                "benchmark": result["benchmark"], "subset": result["subset"], "model": result["model"],
                "model_identity": result["model_identity"], "text_encoder": result["text_encoder"],
                "index": result["index"], "language": language, "images": entry["images"],
                "captions": entry["captions"], "created": result["created"],
                "mlclip_version": result["mlclip_version"],
                "extra_metrics": {k: v for k, v in fractions.items() if not _CLIP_BENCHMARK_METRIC.match(k)},
                "scale": "fraction",
            },
        }
    return dumps


def write_clip_benchmark(result: dict, out_dir: Path) -> list[Path]:
    """Write one CLIP_benchmark JSON per language into out_dir (atomically); return their paths.
    A later run of the same data set, model and language replaces its file, as in CLIP_benchmark."""
    paths = []
    for dump in to_clip_benchmark(result).values():
        paths.append(write_json(Path(out_dir) / output_name(dump), dump))
    return paths
