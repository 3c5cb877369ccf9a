"""Scores of a continual run: the accuracy matrix, average accuracy (AA) and forgetting (F).

A run learns the languages of an `order` one step at a time; after step t every language seen so far
is benched, giving A[t][lang] (NaN for a language not yet seen). Following CLFM's gather.py:
AA_t is the mean of row t over the seen languages, and F_t is the mean, over languages order[j] with
j < t, of the best past score max_{k in [j, t-1]} A[k][j] minus the current A[t][j] (negative when a
language improved; counted as is). F_0 is undefined. A joint run has one row covering every language:
its AA is the mean of that row and its F is undefined.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from mlclip_cli.atomic import atomic_path

METRICS = ("image_retrieval_recall@1", "text_retrieval_recall@1", "mean_recall")


def average_accuracy(matrix: np.ndarray, step: int) -> float:
    """Mean of row `step` over its seen (non-NaN) cells; columns follow the order."""
    row = np.asarray(matrix, dtype=np.float64)[step]
    seen = row[~np.isnan(row)]
    if seen.size == 0:
        raise ValueError(f"no language scored at step {step}")
    return float(seen.mean())


def forgetting(matrix: np.ndarray, step: int) -> float | None:
    """CLFM forgetting at `step`: mean over earlier languages of best past score minus current.

    Column j is the language learned at step j. None at step 0 (nothing learned before).
    """
    a = np.asarray(matrix, dtype=np.float64)
    if not 0 <= step < a.shape[0]:
        raise IndexError(f"step {step} outside 0..{a.shape[0] - 1}")
    drops = []
    for j in range(min(step, a.shape[1])):
        past, now = a[j:step, j], a[step, j]
        if np.isnan(now) or np.isnan(past).all():
            continue
        drops.append(float(np.nanmax(past)) - float(now))
    return float(np.mean(drops)) if drops else None


def _json_float(x: float | None) -> float | None:
    return None if x is None or math.isnan(x) else float(x)


def sequence_summary(order: list[str], rows: list[dict[str, dict[str, float]]]) -> dict:
    """JSON-ready matrices, per-step AA and F, and their final values for each metric.

    rows[t] maps each language benched after step t to its metrics dict (a joint run: one row with
    every language). Columns follow `order`; unseen cells and undefined values are None.
    """
    order = list(order)
    if not rows:
        raise ValueError("no steps to summarise")
    for t, row in enumerate(rows):
        extra = sorted(set(row) - set(order))
        if extra:
            raise ValueError(f"step {t} scores languages outside the order: {', '.join(extra)}")
    metrics = {}
    for metric in METRICS:
        a = np.full((len(rows), len(order)), np.nan)
        for t, row in enumerate(rows):
            for i, lang in enumerate(order):
                if lang in row and row[lang].get(metric) is not None:
                    a[t, i] = float(row[lang][metric])
        aa = [average_accuracy(a, t) for t in range(len(rows))]
        f = [forgetting(a, t) for t in range(len(rows))]
        metrics[metric] = {
            "matrix": [[_json_float(v) for v in r] for r in a.tolist()],
            "aa": aa, "f": f, "final_aa": aa[-1], "final_f": f[-1],
        }
    return {"order": order, "metrics": metrics}


def _matrix(summary: dict, metric: str) -> np.ndarray:
    cells = summary["metrics"][metric]["matrix"]
    return np.array([[np.nan if v is None else v for v in r] for r in cells], dtype=np.float64)


def plot_heatmap(summary: dict, metric: str, path: Path, title: str) -> Path:
    """Steps x languages heatmap of `metric`, cells annotated, unseen cells blank; PNG, atomic."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    order, a = summary["order"], _matrix(summary, metric)
    joint = a.shape[0] == 1 and len(order) > 1
    labels = ["joint"] if joint else [f"{t + 1}: +{order[t]}" if t < len(order) else str(t + 1)
                                      for t in range(a.shape[0])]
    fig, ax = plt.subplots(figsize=(max(4.0, 0.8 * len(order) + 2), max(2.0, 0.5 * a.shape[0] + 1.5)))
    im = ax.imshow(np.ma.masked_invalid(a), cmap="viridis", vmin=0, vmax=100, aspect="auto")
    for (t, i), v in np.ndenumerate(a):
        if not np.isnan(v):
            ax.text(i, t, f"{v:.1f}", ha="center", va="center", fontsize=8,
                    color="white" if v < 60 else "black")
    ax.set_xticks(range(len(order)), order)
    ax.set_yticks(range(a.shape[0]), labels)
    ax.set_xlabel("language")
    ax.set_ylabel("step")
    ax.set_title(title)
    fig.colorbar(im, ax=ax, label=f"{metric} (%)")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return Path(path)


def plot_aa_f(summaries: dict[str, dict], metric: str, path: Path, title: str) -> Path:
    """AA (left) and F (right) of `metric` per step, one line per named run; PNG, atomic."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_aa, ax_f) = plt.subplots(1, 2, figsize=(10, 4), sharex=True)
    for name, summary in summaries.items():
        scores = summary["metrics"][metric]
        steps = np.arange(1, len(scores["aa"]) + 1)
        ax_aa.plot(steps, scores["aa"], marker="o", label=name)
        ax_f.plot(steps, [np.nan if v is None else v for v in scores["f"]], marker="o", label=name)
    for ax, what in ((ax_aa, "AA"), (ax_f, "F")):
        ax.set_xlabel("step")
        ax.set_ylabel(f"{what} (%)")
        ax.set_title(what)
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    ax_f.axhline(0, color="grey", lw=0.8)
    fig.suptitle(f"{title} - {metric}")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return Path(path)
