"""`mlclip bench report`: several bench JSONs -> one table per task (mean recall per language) and a CSV.

Image-text (`t2i`) and text-to-text (`t2t`) results never share a table: their mean recalls
measure different things. The CSV has a `task` column for the same reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from mlclip_cli.atomic import atomic_path
from mlclip_cli.bench.registry import BENCHMARKS
from mlclip_cli.bench.result import read_bench_result, result_task


@dataclass
class Report:
    tables: dict[str, pd.DataFrame]  # task -> one row per run, one column per language (mean recall) + their mean
    long: pd.DataFrame  # every metric: run, task, benchmark, split, model, text_encoder, language, metric, value

    @property
    def table(self) -> pd.DataFrame:
        """The image-text table (or, with no image-text run, the first task's)."""
        return self.tables.get("t2i", next(iter(self.tables.values())))


def run_name(result: dict) -> str:
    model = Path(result["model"]).name or result["model"]
    benchmark = BENCHMARKS.get(result["benchmark"]) if result["benchmark"] in BENCHMARKS else None
    split = f" {result['split']}" if benchmark is not None and result["split"] != benchmark.split else ""
    task = result_task(result)
    return (f"{result['benchmark']}{'-' + result['subset'] if result['subset'] else ''}{split}"
            f"{' ' + task if task != 't2i' else ''} {model} ({result['text_encoder']})")


def build_report(paths: list[Path]) -> Report:
    records, rows = [], {}
    for path in paths:
        result = read_bench_result(path)
        task = result_task(result)
        run = run_name(result)
        row = {"run": run}
        for language, entry in result["languages"].items():
            row[language] = entry["metrics"]["mean_recall"]
            for metric, value in entry["metrics"].items():
                records.append({"run": run, "file": str(path), "task": task, "benchmark": result["benchmark"],
                                "split": result["split"], "model": result["model"],
                                "text_encoder": result["text_encoder"], "language": language, "metric": metric,
                                "value": value})
        row["mean"] = result["average"]["mean_recall"]
        rows.setdefault(task, []).append(row)
    tables = {}
    for task, task_rows in rows.items():
        table = pd.DataFrame(task_rows).set_index("run")
        tables[task] = table[[c for c in table.columns if c != "mean"] + ["mean"]]
    return Report(tables=tables, long=pd.DataFrame(records))


def write_csv(report: Report, path: Path) -> Path:
    with atomic_path(path) as tmp:
        report.long.to_csv(tmp, index=False)
    return Path(path)
