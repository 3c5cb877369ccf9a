"""A PNG bar chart of one bench run: per language, R@1 both ways and mean recall."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, never a window
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from mlclip_cli.atomic import atomic_path  # noqa: E402

SERIES = (("image_retrieval_recall@1", "text->image R@1"), ("text_retrieval_recall@1", "image->text R@1"),
          ("mean_recall", "mean recall"))


def plot_bench(result: dict, path: Path) -> Path:
    languages = list(result["languages"])
    x = np.arange(len(languages))
    width = 0.8 / len(SERIES)
    fig, ax = plt.subplots(figsize=(max(6, 0.7 * len(languages) + 2), 4))
    for i, (key, label) in enumerate(SERIES):
        values = [result["languages"][lang]["metrics"][key] for lang in languages]
        ax.bar(x + (i - 1) * width, values, width, label=label)
    ax.set_xticks(x, languages)
    ax.set_ylim(0, 100)
    ax.set_ylabel("%")
    ax.set_title(f"{result['benchmark']} - {result['model']} ({result['text_encoder']})")
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return Path(path)
