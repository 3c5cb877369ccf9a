"""A PNG bar chart of one bench run: per language, R@1 both ways and mean recall (of its task)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, never a window
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from mlclip_cli.atomic import atomic_path  # noqa: E402
from mlclip_cli.bench.result import TASK_NAMES, result_task  # noqa: E402

SERIES = (("image_retrieval_recall@1", "text->image R@1"), ("text_retrieval_recall@1", "image->text R@1"),
          ("mean_recall", "mean recall"))
T2T_SERIES = (("target_to_english_recall@1", "language->English R@1"),
              ("english_to_target_recall@1", "English->language R@1"), ("mean_recall", "mean recall"))


def plot_bench(result: dict, path: Path) -> Path:
    task = result_task(result)
    series = T2T_SERIES if task == "t2t" else SERIES
    languages = list(result["languages"])
    x = np.arange(len(languages))
    width = 0.8 / len(series)
    fig, ax = plt.subplots(figsize=(max(6, 0.7 * len(languages) + 2), 4))
    for i, (key, label) in enumerate(series):
        values = [result["languages"][lang]["metrics"][key] for lang in languages]
        ax.bar(x + (i - 1) * width, values, width, label=label)
    ax.set_xticks(x, languages)
    ax.set_ylim(0, 100)
    ax.set_ylabel("%")
    what = "" if task == "t2i" else f" {TASK_NAMES[task]}"
    ax.set_title(f"{result['benchmark']}{what} - {result['model']} ({result['text_encoder']})")
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return Path(path)
