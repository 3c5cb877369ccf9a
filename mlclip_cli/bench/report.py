"""`mlclip bench report`: several bench JSONs -> one table (mean recall per language) and a CSV."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from mlclip_cli.atomic import atomic_path
from mlclip_cli.bench.result import read_bench_result


@dataclass
class Report:
    table: pd.DataFrame  # one row per run, one column per language (mean recall) + their mean
    long: pd.DataFrame  # every metric: run, benchmark, model, text_encoder, language, metric, value


def build_report(paths: list[Path]) -> Report:
    records, rows = [], []
    for path in paths:
        result = read_bench_result(path)
        model = Path(result["model"]).name or result["model"]
        run = f"{result['benchmark']}{'-' + result['subset'] if result['subset'] else ''} {model} ({result['text_encoder']})"
        row = {"run": run}
        for language, entry in result["languages"].items():
            row[language] = entry["metrics"]["mean_recall"]
            for metric, value in entry["metrics"].items():
                records.append({"run": run, "file": str(path), "benchmark": result["benchmark"], "model": result["model"],
                                "text_encoder": result["text_encoder"], "language": language, "metric": metric, "value": value})
        row["mean"] = result["average"]["mean_recall"]
        rows.append(row)
    table = pd.DataFrame(rows).set_index("run")
    ordered = [c for c in table.columns if c != "mean"] + ["mean"]
    return Report(table=table[ordered], long=pd.DataFrame(records))


def write_csv(report: Report, path: Path) -> Path:
    with atomic_path(path) as tmp:
        report.long.to_csv(tmp, index=False)
    return Path(path)
