"""`prepare`: run a data set's loader, then write its manifest and summary atomically."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

from mlclip_cli.artifacts import check_manifest, manifest_from_rows, write_manifest
from mlclip_cli.atomic import write_json
from mlclip_cli.datasets import dataset_names, get_dataset
from mlclip_cli.datasets.base import PrepareConfig, Report, count_by
from mlclip_cli.datasets.layout import LayoutCheck, check_root
from mlclip_cli.errors import DatasetError
from mlclip_cli.locks import writer_lock

_EXAMPLES = 20  # how many masked captions / missing images the summary lists in full


@dataclass
class PrepareResult:
    manifest: Path
    summary_path: Path
    summary: dict


def prepare_dataset(name: str, config: PrepareConfig, out: Path) -> PrepareResult:
    """Turn the data set `name` under config.root into `out` (Parquet) and `out`.summary.json."""
    spec = get_dataset(name)
    if config.size is not None and config.size < 1:  # before --root is made (world's 0 would mean its default)
        raise DatasetError(f"--size must be at least 1, not {config.size}")
    if spec.own_command:
        spec.load(config, Report())  # raises: says which command prepares it
    with contextlib.ExitStack() as held:
        held.enter_context(writer_lock(out, "manifest", is_file=True))
        held.enter_context(writer_lock(Path(out).with_suffix(".summary.json"), "summary", is_file=True))
        if spec.generated:  # it writes its data under --root too
            held.enter_context(writer_lock(config.root, "generated data set"))
        return _prepare(name, spec, config, out)


def _prepare(name: str, spec, config: PrepareConfig, out: Path) -> PrepareResult:
    root = Path(config.root)
    if config.splits is not None and not spec.splits:
        choosers = [other for other in dataset_names() if get_dataset(other).splits]
        raise DatasetError(f"{name} has no choice of splits (splits can be chosen for {', '.join(choosers)} only)")
    if spec.generated:
        root.mkdir(parents=True, exist_ok=True)
        layout = LayoutCheck(warnings=[], files={})
    elif spec.check_layout is not None:
        layout = spec.check_layout(config)
    else:
        layout = check_root(name, root)
    if config.images is None and spec.default_images and (root / spec.default_images).is_dir():
        config.images = root / spec.default_images
    if config.images is not None and not Path(config.images).is_dir():
        raise DatasetError(f"image folder {config.images} does not exist")

    report = Report(warnings=list(layout.warnings))
    rows = spec.load(config, report)
    missing_rows = sum(1 for row in rows if report.images_checked and row["image_path"] is None)
    if config.drop_missing_images:
        rows = [row for row in rows if row["image_path"] is not None]
    if not rows:
        raise DatasetError(f"{name}: no usable captions under {root}")

    table = manifest_from_rows(rows)
    manifest = Path(out)
    check_manifest(table, manifest)  # before anything is written
    missing = sorted(set(report.missing_images))
    summary = {
        "dataset": name,
        "root": str(root.resolve()),
        "images": str(Path(config.images).resolve()) if config.images else None,
        "manifest": str(manifest.resolve()),
        "rows": len(rows),
        "images_total": len({row["image_id"] for row in rows}),
        "rows_per_language_split": count_by(rows, "language", "split"),
        "splits": report.splits,
        "files": layout.files,
        "cleaned_captions": report.cleaned,
        "masked_captions": {
            "count": len(report.masked),
            "by_reason": count_by(report.masked, "reason") if report.masked else {},
            "items": report.masked,
        },
        "missing_images": {
            "checked": report.images_checked,
            "count": len(missing),
            "captions_affected": missing_rows,
            "policy": "dropped" if config.drop_missing_images else "kept with image_path null",
            "examples": missing[:_EXAMPLES],
        },
        "warnings": report.warnings,
    }
    # The summary first, the manifest last: a manifest on disk always has its summary beside it
    # (a kill between the two leaves a summary of a manifest not yet written, which the rerun rewrites).
    summary_path = write_json(manifest.with_suffix(".summary.json"), summary)
    write_manifest(table, manifest)
    return PrepareResult(manifest=manifest, summary_path=summary_path, summary=summary)
