"""The demo's report folder: report.json, PNG charts and a short report.md that embeds them.

    report/report.json        every step (command, detail, seconds), the per-language comparison, AA/F
    report/languages.png      per-language text->image R@1: zero-shot vs MLA vs CLL-CLIP vs CLL-CLIP+TEIR
    report/forgetting_*.png   the continual runs' t2i R@1 matrices (step x language)
    report/report.md          the summary a reader opens first
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mlclip_cli.atomic import atomic_path, write_json


METRICS = ("image_retrieval_recall@1", "mean_recall")
SEQUENCE_COLUMNS = {"none": "cll_clip", "both": "cll_clip_teir"}  # the continual run's --teir -> its column


def _final_scores(run) -> dict[str, dict[str, float]]:
    """Each language's scores after the last task of a continual run."""
    scores = {}
    for metric in METRICS:
        last = run.summary["metrics"][metric]["matrix"][-1]
        for language, value in zip(run.summary["order"], last):
            if value is not None:
                scores.setdefault(language, {})[metric] = value
    return scores


def comparison(zero_shot: dict, mla: dict | None, continual: dict | None = None) -> list[dict]:
    """Per language, per method (zero-shot English CLIP, MLA, CLL-CLIP, CLL-CLIP+TEIR): text->image
    R@1 and mean recall on the world test; a method that did not see a language has no entry."""
    sources = {"mla": {k: v["metrics"] for k, v in mla["languages"].items()} if mla else {}}
    for teir, column in SEQUENCE_COLUMNS.items():
        sources[column] = _final_scores(continual[teir]) if continual and teir in continual else {}
    rows = []
    for language, entry in zero_shot["languages"].items():
        row = {"language": language}
        for metric in METRICS:
            row[f"zero_shot/{metric}"] = entry["metrics"][metric]
            for column, scores in sources.items():
                if language in scores and metric in scores[language]:
                    row[f"{column}/{metric}"] = scores[language][metric]
        rows.append(row)
    return rows


METHOD_LABELS = {"zero_shot": "zero-shot English CLIP", "mla": "MLA", "cll_clip": "CLL-CLIP",
                 "cll_clip_teir": "CLL-CLIP + TEIR"}
R1, MEAN = "image_retrieval_recall@1", "mean_recall"


@dataclass
class DemoReport:
    folder: Path
    json_path: Path
    markdown_path: Path
    plots: list[Path] = field(default_factory=list)


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.1f}"


def _sequences(continual: dict) -> dict[str, dict]:
    """'none'/'both' -> {order, aa/f of t2i R@1 and mean recall, final matrix row}."""
    out = {}
    for teir, run in continual.items():
        metrics = run.summary["metrics"]
        out[SEQUENCE_COLUMNS[teir]] = {
            "order": list(run.order), "teir": teir, "run": str(run.out),
            **{f"{key}/{metric}": metrics[metric][f"final_{key}"] for metric in (R1, MEAN) for key in ("aa", "f")},
        }
    return out


def plot_languages(rows: list[dict], path: Path) -> Path:
    """Grouped bars: per language, each method's text->image R@1 (a missing bar = not taught)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = [m for m in METHOD_LABELS if any(f"{m}/{R1}" in row for row in rows)]
    languages = [row["language"] for row in rows]
    width = 0.8 / len(methods)
    fig, ax = plt.subplots(figsize=(max(6.0, 0.75 * len(languages) + 2), 3.6))
    for k, method in enumerate(methods):
        values = [row.get(f"{method}/{R1}", np.nan) for row in rows]
        ax.bar(np.arange(len(languages)) + (k - (len(methods) - 1) / 2) * width, values, width,
               label=METHOD_LABELS[method])
    ax.set_xticks(range(len(languages)), languages)
    ax.set_ylim(0, 100)
    ax.set_ylabel("text->image R@1 (%)")
    ax.set_title("World test (XTD10 layout): the frozen English CLIP taught new languages")
    ax.legend(fontsize=7, ncol=len(methods), loc="upper center", bbox_to_anchor=(0.5, -0.12), frameon=False)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return Path(path)


def _markdown(demo, rows: list[dict], sequences: dict, plots: dict[str, Path]) -> str:
    lines = ["# mlclip demo report", "",
             "The embedded world's XTD10-layout test (1000 images, one caption per image and language). "
             "English always goes through the frozen CLIP.", ""]
    if "languages" in plots:
        lines += [f"![per-language text->image R@1]({plots['languages'].name})", ""]
    methods = [m for m in METHOD_LABELS if any(f"{m}/{R1}" in row for row in rows)]
    header = ["lang"] + [f"{METHOD_LABELS[m]} t2i R@1" for m in methods] + [f"{METHOD_LABELS[m]} mean" for m in methods]
    lines += ["| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    for row in rows:
        cells = [row["language"]] + [_fmt(row.get(f"{m}/{R1}")) for m in methods] + [_fmt(row.get(f"{m}/{MEAN}")) for m in methods]
        lines.append("| " + " | ".join(cells) + " |")
    if sequences:
        lines += ["", "## Continual sequences", "",
                  "AA: mean over the languages seen so far of their final score; F: mean over earlier languages "
                  "of (best score - final score). Lower F is less forgetting.", "",
                  "| run | order | AA t2i R@1 | F t2i R@1 | AA mean | F mean |", "|---|---|---|---|---|---|"]
        for key, seq in sequences.items():
            lines.append(f"| {METHOD_LABELS[key]} | {' -> '.join(seq['order'])} | {_fmt(seq[f'aa/{R1}'])} | "
                         f"{_fmt(seq[f'f/{R1}'])} | {_fmt(seq[f'aa/{MEAN}'])} | {_fmt(seq[f'f/{MEAN}'])} |")
        for key in sequences:
            if key in plots:
                lines += ["", f"![{METHOD_LABELS[key]}: t2i R@1 after each language]({plots[key].name})"]
    lines += ["", "## Steps", "", "| step | command | seconds | result |", "|---|---|---|---|"]
    for step in demo.steps:
        lines.append(f"| {step.name} | `{step.command}` | {step.seconds:.0f} | {step.detail.replace('|', '/')} |")
    lines += ["", f"Total: {sum(s.seconds for s in demo.steps):.0f} s.", ""]
    return "\n".join(lines)


def write_report(folder: Path, demo, command: str = "mlclip demo") -> DemoReport:
    """Write the report folder for a finished demo (every file atomic); `command` is recorded with the
    commit, machine and date, so figures rendered from report.json say where they were measured."""
    from mlclip_cli.continual.scores import plot_heatmap
    from mlclip_cli.provenance import provenance

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rows = comparison(demo.zero_shot, demo.mla, demo.continual)
    sequences = _sequences(demo.continual)
    plots = {"languages": plot_languages(rows, folder / "languages.png")}
    for teir, run in demo.continual.items():
        key = SEQUENCE_COLUMNS[teir]
        plots[key] = plot_heatmap(run.summary, R1, folder / f"forgetting_{key}.png",
                                  f"{METHOD_LABELS[key]}: t2i R@1 after each language")
    json_path = write_json(folder / "report.json", {
        "provenance": provenance(command),
        "steps": [{"name": s.name, "command": s.command, "status": s.status, "detail": s.detail,
                   "seconds": round(s.seconds, 1)} for s in demo.steps],
        "languages": rows, "sequences": sequences,
        "plots": {key: path.name for key, path in plots.items()},
    })
    markdown = folder / "report.md"
    with atomic_path(markdown) as tmp:
        tmp.write_text(_markdown(demo, rows, sequences, plots), encoding="utf-8")
    return DemoReport(folder, json_path, markdown, list(plots.values()))
