"""Render the measured figures of README.md and docs/*.md from the results files in docs/results/.

    python scripts/render_docs.py           # rewrite every marked figure from its results file
    python scripts/render_docs.py --check   # exit 1, naming each figure that differs

A figure is never typed: the page marks where it goes, and this script writes it. Two marks,
both invisible once the Markdown is rendered:

    inline  <!--fig FILE PATH [FORMAT]-->74.5<!--/fig-->
    block   <!--table NAME FILE-->
            | ... rendered rows ... |
            <!--/table-->

FILE is a JSON file under docs/results/. PATH walks it: `sequences.cll_clip.f/mean_recall`,
`runs[name=plain].final_aa` (the item of a list whose `name` is `plain`), `steps[0].seconds`. A key
that holds a dot is written in quotes: `languages[language=de]."mla/image_retrieval_recall@1"`.
FORMAT is a Python format spec (`.1f`, `,d`) or one of FORMATS below. NAME is one of TABLES below.
Each results file records the command, commit, machine and date that made it (`provenance`), so a
page can say where a figure was measured with `<!--fig FILE provenance.commit commit-->`.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "results"
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SCRIPT = "python scripts/render_docs.py"

INLINE = re.compile(r"<!--fig (?P<spec>[^>]*?)-->(?P<value>.*?)<!--/fig-->", re.S)
BLOCK = re.compile(r"(?P<open><!--table (?P<spec>[^>]*?)-->\n)(?P<body>.*?)(?P<close><!--/table-->)", re.S)
STEP = re.compile(r'\.?(?:"(?P<quoted>[^"]+)"|(?P<key>[^.\[\]"]+)|\[(?P<index>-?\d+)\]|\[(?P<field>[^=\]]+)=(?P<match>[^\]]+)\])')


class DocsError(Exception):
    """A mark that cannot be rendered: its file, path, format or table is unknown."""


# --- reading ----------------------------------------------------------------------------------------

_CACHE: dict[str, Any] = {}


def load(name: str) -> Any:
    if name not in _CACHE:
        path = RESULTS / name
        if not path.is_file():
            raise DocsError(f"docs/results/{name} does not exist")
        _CACHE[name] = json.loads(path.read_text(encoding="utf-8"))
    return _CACHE[name]


def lookup(data: Any, path: str) -> Any:
    """The value at `path` in `data` (see the module's help for the path syntax)."""
    position, value = 0, data
    while position < len(path):
        step = STEP.match(path, position)
        if step is None or step.end() == position:
            raise DocsError(f"cannot read the path {path!r} at {path[position:]!r}")
        position = step.end()
        try:
            if step["index"] is not None:
                value = value[int(step["index"])]
            elif step["field"] is not None:
                hits = [item for item in value if str(item.get(step["field"])) == step["match"]]
                if len(hits) != 1:
                    raise DocsError(f"{path!r}: {len(hits)} items with {step['field']} = {step['match']}")
                value = hits[0]
            else:
                value = value[step["quoted"] or step["key"]]
        except (KeyError, IndexError, TypeError, AttributeError) as error:
            raise DocsError(f"{path!r}: no {error} at {path[:position]!r}") from None
    return value


# --- formats ----------------------------------------------------------------------------------------

def _minutes_seconds(seconds: float) -> str:
    minutes, rest = divmod(round(float(seconds)), 60)
    return f"{minutes} min {rest} s" if minutes else f"{rest} s"


FORMATS: dict[str, Callable[[Any], str]] = {
    "minsec": _minutes_seconds,                                 # 340 -> "5 min 40 s"
    "commit": lambda value: str(value)[:7],                     # a commit hash, short
    "pct": lambda value: f"{100 * float(value):.0f}%",          # 0.62 -> "62%"
    "kib_gib": lambda value: f"{float(value) / 1024 ** 2:.2f}",  # KiB (time -v) -> GiB
    "kib_gb": lambda value: f"{float(value) * 1024 / 1e9:.2f}",  # KiB -> GB
    "date": lambda value: str(value)[:10],                      # ISO time -> its day
    "str": str,
}


def formatted(value: Any, form: str | None) -> str:
    if form is None:
        return str(value)
    if form in FORMATS:
        return FORMATS[form](value)
    try:
        return format(value, form)
    except (ValueError, TypeError) as error:
        raise DocsError(f"cannot format {value!r} as {form!r}: {error}") from None


def inline(spec: str) -> str:
    parts = spec.split()
    if len(parts) not in (2, 3):
        raise DocsError(f"a figure mark needs FILE PATH [FORMAT], not {spec!r}")
    return formatted(lookup(load(parts[0]), parts[1]), parts[2] if len(parts) == 3 else None)


# --- tables -----------------------------------------------------------------------------------------

XTD10_ORDER = ("en", "de", "fr", "es", "it", "ru", "pl", "tr", "ko", "zh", "ja")  # the order the pages use


def in_page_order(codes) -> list[str]:
    """Language codes in XTD10's order (the order every page uses); unknown ones last."""
    return sorted(codes, key=lambda code: XTD10_ORDER.index(code) if code in XTD10_ORDER else len(XTD10_ORDER))
DEMO_ROWS = (("zero-shot English CLIP", "zero_shot"), ("MLA (ko added later by `extend`)", "mla"),
             ("CLL-CLIP, plain (en -> it -> de -> fr -> es)", "cll_clip"), ("CLL-CLIP + TEIR", "cll_clip_teir"))


def _cell(value: Any) -> str:
    return "-" if value is None else f"{value:.1f}"


def demo_languages(data: dict, metric: str = "image_retrieval_recall@1") -> list[str]:
    """The demo's closing table: one column per non-English language, one row per method."""
    rows = {row["language"]: row for row in data["languages"]}
    languages = [rows[code] for code in in_page_order(rows) if code != "en"]
    lines = ["| | " + " | ".join(row["language"] for row in languages) + " |",
             "|---|" + "---|" * len(languages)]
    for label, key in DEMO_ROWS:
        lines.append(f"| {label} | " + " | ".join(_cell(row.get(f"{key}/{metric}")) for row in languages) + " |")
    return lines


def demo_mean_recall(data: dict) -> list[str]:
    return demo_languages(data, "mean_recall")


def real_text(data: dict) -> list[str]:
    """Multi30K val text-to-text, each language -> English R@1, per model (benchmarks/real_text.py)."""
    languages = data["languages"]
    lines = ["| model | " + " | ".join(f"{lang} ->en R@1" for lang in languages)
             + " | mean recall | trainable parameters | time of its training steps (2 cores) | English max abs change |",
             "|---|" + "---|" * (len(languages) + 4)]
    for row in data["rows"]:
        cells = [_cell(row["to_english_r1"].get(lang)) for lang in languages]
        trainable = "-" if row.get("trainable_parameters") is None else f"{row['trainable_parameters']:,}"
        wall = "-" if row.get("train_seconds") is None else _minutes_seconds(row["train_seconds"])
        drift = row.get("english_max_abs_change")
        lines.append(f"| {row['label']} | " + " | ".join(cells) + f" | {_cell(row.get('mean_recall'))} | {trainable}"
                     f" | {wall} | {'-' if drift is None else f'{drift:.3g}'} |")
    return lines


def share_of_english(data: dict) -> list[str]:
    """A bench result (t2i) per language: R@1 both ways, mean recall, and each as a share of English's."""
    english = data["languages"]["en"]["metrics"]
    lines = ["| language | text->image R@1 | of English's | image->text R@1 | mean recall | of English's |",
             "|---|---|---|---|---|---|"]
    for language in in_page_order(data["languages"]):
        m = data["languages"][language]["metrics"]
        lines.append(f"| {language} | {m['image_retrieval_recall@1']:.1f} | "
                     f"{100 * m['image_retrieval_recall@1'] / english['image_retrieval_recall@1']:.1f}% | "
                     f"{m['text_retrieval_recall@1']:.1f} | {m['mean_recall']:.1f} | "
                     f"{100 * m['mean_recall'] / english['mean_recall']:.1f}% |")
    return lines


def demo_steps(data: dict) -> list[str]:
    """The demo's steps with the seconds its own timer gave each (report.json)."""
    lines = ["| step | command | seconds |", "|---|---|---|"]
    for step in data["steps"]:
        lines.append(f"| {step['name']} | `{step['command']}` | {step['seconds']:.0f} |")
    lines.append(f"| **total of the steps** | | **{sum(step['seconds'] for step in data['steps']):.0f}** |")
    return lines


def share_spread(data: dict) -> list[str]:
    """benchmarks/mla_share_spread.py: each language's share of English's R@1 with its 95% interval."""
    goal = 100 * data["goal"]
    lines = [f"| language | t2i R@1 | share of English's ({data['english_r1']:.1f}) | 95% interval "
             f"| P(share < {goal:.0f}%) |", "|---|---|---|---|---|"]
    for language in in_page_order(data["languages"]):
        entry = data["languages"][language]
        low, high = entry["share_interval_95"]
        lines.append(f"| {language} | {entry['r1']:.1f} | {100 * entry['share']:.1f}% | "
                     f"{100 * low:.1f}-{100 * high:.1f}% | {entry['probability_below_goal']:.2f} |")
    return lines


def segmenters(data: dict) -> list[str]:
    """The zh/ja pre-tokenisation probe: one row per language and split, with shares of English's."""
    lines = ["| language | split into | t2i R@1 | of English's | mean recall | of English's | train (600 steps) |",
             "|---|---|---|---|---|---|---|"]
    for run in data["runs"]:
        lines.append(f"| {run['language']} | {run['pre_tokenisation']} | {run['t2i_r1']:.1f} | "
                     f"{100 * run['t2i_r1'] / run['english_t2i_r1']:.1f}% | {run['mean_recall']:.1f} | "
                     f"{100 * run['mean_recall'] / run['english_mean_recall']:.1f}% | {run['train_seconds_600_steps']} s |")
    return lines


def teir_rules(data: dict) -> list[str]:
    """Every run of the TEIR-rule experiment: order, steps, rule, final AA and F (t2i R@1)."""
    lines = ["| run | order | steps a language | TEIR | rule | AA | F |", "|---|---|---|---|---|---|---|"]
    for run in data["runs"]:
        lines.append(f"| {run['name']} | {run['order']} | {run['steps']} | {run['teir']} | {run['rule'] or '-'} | "
                     f"{run['final_aa']:.1f} | {run['final_f']:.1f} |")
    return lines


def teir_seeds(data: dict) -> list[str]:
    """benchmarks/teir_seeds.py: plain vs TEIR per seed, and the means."""
    lines = ["| seed | plain AA | plain F | TEIR AA | TEIR F | TEIR - plain, AA |", "|---|---|---|---|---|---|"]
    for row in [*data["runs"], {"seed": "**mean**", **data["mean"]}]:
        lines.append(f"| {row['seed']} | {row['plain_aa']:.2f} | {row['plain_f']:.2f} | {row['teir_aa']:.2f} | "
                     f"{row['teir_f']:.2f} | {row['aa_difference']:+.2f} |")
    return lines


TABLES: dict[str, Callable[[Any], list[str]]] = {
    "teir-seeds": teir_seeds,
    "segmenters": segmenters,
    "teir-rules": teir_rules,
    "share-spread": share_spread,
    "demo-steps": demo_steps,
    "share-of-english": share_of_english,
    "demo-languages": demo_languages,
    "demo-mean-recall": demo_mean_recall,
    "real-text": real_text,
}


def block(spec: str) -> str:
    parts = spec.split()
    if len(parts) != 2 or parts[0] not in TABLES:
        raise DocsError(f"a table mark needs NAME FILE with NAME one of {', '.join(TABLES)}, not {spec!r}")
    return "\n".join(TABLES[parts[0]](load(parts[1]))) + "\n"


# --- pages ------------------------------------------------------------------------------------------

def render(text: str) -> str:
    text = BLOCK.sub(lambda m: m["open"] + block(m["spec"]) + m["close"], text)
    return INLINE.sub(lambda m: f"<!--fig {m['spec']}-->{inline(m['spec'])}<!--/fig-->", text)


def differences(text: str) -> list[str]:
    """One line per mark whose written figure is not what its results file gives."""
    found = []
    for m in BLOCK.finditer(text):
        if m["body"] != block(m["spec"]):
            found.append(f"table {m['spec']}")
    for m in INLINE.finditer(text):
        if m["value"] != inline(m["spec"]):
            found.append(f"{m['spec']}: the page says {m['value']!r}, the file gives {inline(m['spec'])!r}")
    return found


def marks(text: str) -> list[str]:
    return [m["spec"] for m in BLOCK.finditer(text)] + [m["spec"] for m in INLINE.finditer(text)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a page differs")
    args = parser.parse_args(argv)
    stale = []
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        try:
            if args.check:
                stale += [f"{page.relative_to(ROOT)}: {line}" for line in differences(text)]
            elif (new := render(text)) != text:
                page.write_text(new, encoding="utf-8")
                print(f"rendered {page.relative_to(ROOT)}")
        except DocsError as error:
            print(f"error: {page.relative_to(ROOT)}: {error}", file=sys.stderr)
            return 1
    if stale:
        print("figures that differ from their results files (run `" + SCRIPT + "`):\n" + "\n".join(stale),
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
