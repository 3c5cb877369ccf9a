"""`mlclip bench <benchmark>` and `mlclip bench report`."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from mlclip_cli.bench.registry import BENCHMARKS, Benchmark
from mlclip_cli.cli.commands import Commands
from mlclip_cli.cli.console import out
from mlclip_cli.cli.options import FALLBACK_HELP, FALLBACK_LANG_HELP, MODEL_HELP, language_list
from mlclip_cli.cli.progress import progress_bar, progress_callback

commands = Commands()

bench_app = typer.Typer(
    help="Multilingual image-text retrieval benchmarks (R@1/5/10 both ways, mean recall), text-to-text "
         "retrieval against parallel English (--task t2t), and their report.",
    no_args_is_help=True,
)
commands.group(bench_app, "bench")

COLUMNS = (("image_retrieval_recall@1", "t2i R@1"), ("image_retrieval_recall@5", "t2i R@5"),
           ("image_retrieval_recall@10", "t2i R@10"), ("text_retrieval_recall@1", "i2t R@1"),
           ("text_retrieval_recall@5", "i2t R@5"), ("text_retrieval_recall@10", "i2t R@10"),
           ("mean_recall", "mean"), ("text_to_text_recall@1", "t2t R@1"))
T2T_COLUMNS = (("target_to_english_recall@1", "t2e R@1"), ("target_to_english_recall@5", "t2e R@5"),
               ("target_to_english_recall@10", "t2e R@10"), ("english_to_target_recall@1", "e2t R@1"),
               ("english_to_target_recall@5", "e2t R@5"), ("english_to_target_recall@10", "e2t R@10"),
               ("mean_recall", "mean"))
TASK_HELP = ("t2i: image-text retrieval both ways (images required). t2t: text-to-text, each caption retrieves "
             "its parallel English caption (same pair_id) among all English captions of the split and back; "
             "no images, text encoder only.")


def _t2t_caption(result: dict) -> str:
    entries = list(result["languages"].values())
    text = "t2e: language -> English, e2t: English -> language"
    english = {v["english_captions"] for v in entries}
    if len(english) == 1:
        text += f"; {english.pop()} English captions"
    sizes = {(v["captions"], v["target_queries"]) for v in entries}
    if len(sizes) == 1:
        captions, to_english = sizes.pop()
        text += f", {captions} per language ({to_english} with a parallel English caption)"
    return text


def results_table(result: dict) -> Table:
    from mlclip_cli.bench.result import TASK_NAMES, result_task

    task = result_task(result)
    default_split = BENCHMARKS.get(result["benchmark"]).split if result["benchmark"] in BENCHMARKS else result["split"]
    what = "" if task == "t2i" else f" {TASK_NAMES[task]} (each language <-> English)"
    split = f" {result['split']}" if result["split"] != default_split else ""
    table = Table(title=f"{result['benchmark']}{' ' + result['subset'] if result['subset'] else ''}{split}{what}: "
                        f"{result['model']} ({result['text_encoder']}), {result['index']} index")
    if task == "t2t":
        table.caption = _t2t_caption(result)
    else:
        sizes = {(v["images"], v["captions"]) for v in result["languages"].values()}
        if len(sizes) == 1:
            images, captions = sizes.pop()
            table.caption = f"{images} images and {captions} captions per language"
    table.add_column("lang")
    columns = T2T_COLUMNS if task == "t2t" else COLUMNS
    shown = [(k, name) for k, name in columns if any(k in v["metrics"] for v in result["languages"].values())]
    for _, name in shown:
        table.add_column(name, justify="right")
    for language, entry in result["languages"].items():
        table.add_row(language, *(f"{entry['metrics'][k]:.1f}" if k in entry["metrics"] else "-" for k, _ in shown))
    table.add_row("[bold]mean[/]", *(f"[bold]{result['average'][k]:.1f}[/]" if k in result["average"] else ""
                                                for k, _ in shown))
    return table


# benchmarks whose captions are translations of English ones (the others' t2t is refused)
T2T_EXAMPLES = {"xtd": "--task t2t", "multi30k": "--task t2t --split val"}


def _make_command(benchmark: Benchmark):
    subset_help = f"Subset: {' or '.join(benchmark.subsets)}." if benchmark.subsets else "No subsets."
    example = f"Example: [bold]mlclip bench {benchmark.name} --langs all[/]"
    if benchmark.name in T2T_EXAMPLES:
        example = (f"Examples: [bold]mlclip bench {benchmark.name} --langs all[/]\n"
                   f"          [bold]mlclip bench {benchmark.name} {T2T_EXAMPLES[benchmark.name]}[/]  (text-to-text, no images)")

    def command(
        ctx: typer.Context,
        langs: str = typer.Option("all", "--langs", help="all, or a comma-separated list such as en,de,ja."),
        manifest: str = typer.Option(None, "--manifest", "--data", help=f"Prepared manifest: a path, or a workspace manifest's name (`prepare pairs --name`) \\[default: WORKSPACE/manifests/{benchmark.dataset}.parquet]."),
        model: str = typer.Option("mlclip-tiny", "--model", help=MODEL_HELP),
        task: str = typer.Option("t2i", "--task", help=TASK_HELP),
        split: str = typer.Option(None, "--split", help=f"Manifest split to evaluate \\[default: {benchmark.split}]."),
        subset: str = typer.Option(None, "--subset", help=subset_help),
        index: str = typer.Option("flat", "--index", help="FAISS index: flat (exact), ivf, ivfpq (IVF with product quantisation) or hnsw (galleries past a million)."),
        out_dir: Path = typer.Option(None, "--out", help="Results folder \\[default: WORKSPACE/results]."),
        fallback: str = typer.Option("none", "--fallback", help=FALLBACK_HELP),
        lang: str = typer.Option("given", "--lang", help="given (each caption through its tagged language's pack) or "
                                 "auto (ignore the tags: each caption goes to the pack of the language detected for it, "
                                 "among the extension's languages plus English; a caption in none of them is an error "
                                 "unless --fallback-lang; the result says where each language's captions went)."),
        fallback_lang: str = typer.Option(None, "--fallback-lang", help=FALLBACK_LANG_HELP),
        langid_backend: str = typer.Option(None, "--langid-backend", help="--lang auto: py3langid (default) or lingua."),
        output_format: str = typer.Option(
            "mlclip", "--format",
            help="mlclip (its JSON and PNG) or clip_benchmark (also one CLIP_benchmark-shaped JSON per "
                 "language, in OUT/clip_benchmark/, for CLIP_benchmark's aggregation scripts)."),
    ) -> None:
        from mlclip_cli.bench.clip_benchmark import FORMATS, NO_T2T, SUBFOLDER, write_clip_benchmark
        from mlclip_cli.bench.result import TASKS
        from mlclip_cli.bench.run import POLICIES, BenchConfig, run_bench

        if output_format not in FORMATS:
            raise typer.BadParameter(f"must be {' or '.join(FORMATS)}, not '{output_format}'", param_hint="'--format'")
        if task not in TASKS:
            raise typer.BadParameter(f"must be {' or '.join(TASKS)}, not '{task}'", param_hint="'--task'")
        from mlclip_cli.search import INDEX_KINDS

        if index not in INDEX_KINDS:
            raise typer.BadParameter(f"must be {', '.join(INDEX_KINDS[:-1])} or {INDEX_KINDS[-1]}, not '{index}'",
                                     param_hint="'--index'")
        if task == "t2t" and output_format == "clip_benchmark":
            raise typer.BadParameter(NO_T2T, param_hint="'--format'")
        ws = ctx.obj
        config = BenchConfig(
            benchmark=benchmark.name, manifest=ws.find_manifest(manifest) if manifest else ws.manifest(benchmark.dataset),
            out_dir=out_dir or ws.results, features_dir=ws.features_root,
            languages=language_list(langs),
            model=model, subset=subset, index=index, fallback=fallback, task=task, split=split,
            lang=lang, lang_fallback=fallback_lang, langid_backend=langid_backend,
        )
        with progress_bar() as bar:
            result = run_bench(config, progress=progress_callback(bar))
        out.print(results_table(result.result))
        out.print(f"[dim]{POLICIES[task]}[/]")
        if lang == "auto":
            routing = {code: entry["routing_accuracy"] for code, entry in result.result["languages"].items()}
            out.print("routed to their own pack (%): " + " ".join(f"{code} {share:.1f}" for code, share in routing.items()))
        for language, why in result.skipped.items():
            out.print(f"note: {language} skipped: {why}")
        out.print(f"results: {result.json_path}\nplot:    {result.png_path}")
        if output_format == "clip_benchmark":
            written = write_clip_benchmark(result.result, Path(config.out_dir) / SUBFOLDER)
            out.print(f"CLIP_benchmark format ({len(written)} files):")
            for path in written:
                out.print(f"  {path}", soft_wrap=True)

    command.__doc__ = None
    bench_app.command(
        benchmark.name,
        help=f"""{benchmark.summary}.

Reads the manifest that `mlclip prepare {benchmark.dataset}` wrote (its {benchmark.split} split unless
--split, images required), encodes images and captions into the feature cache (once), searches
with FAISS and prints R@1/5/10 both ways and mean recall per language, plus text->text recall to
the English caption where captions are parallel. Writes one JSON (CLIP_benchmark-compatible keys)
and a PNG; with --format clip_benchmark also one JSON per language in CLIP_benchmark's own result
shape.

With --task t2t, no images: each caption retrieves its parallel English caption (same pair_id)
among all English captions of the split, and each English caption its translation among all
captions of that language; R@1/5/10 both ways and their mean per language (English itself and
languages without parallel English are skipped with a note). Only the text encoder runs.

With --lang auto the language tags are ignored: each caption goes to the pack of the language
detected for it, among the model's languages (an extension's plus English). One rule, as in
`mlclip embed --lang auto`: a caption whose language is none of them is an error unless
--fallback-lang LANG names one of them to use (en: the English tower).

{example}""",
        short_help=benchmark.summary,
    )(command)


for _name in BENCHMARKS.names():  # one command per benchmark a data set declares
    _make_command(BENCHMARKS.get(_name))


@bench_app.command(
    "report",
    help="""Aggregate bench result JSONs into one table of mean recall per language, and
optionally a CSV of every metric. Image-text and text-to-text (--task t2t) results get a table
each, never one mixed table; the CSV has a task column.

Example: [bold]mlclip bench report mlclip-workspace/results/*.json --csv report.csv[/]""",
    short_help="Aggregate several bench JSONs into one table / CSV.",
)
def report(
    results: list[Path] = typer.Argument(..., help="Bench result JSON files."),
    csv: Path = typer.Option(None, "--csv", help="Write every metric of every run to this CSV."),
) -> None:
    from mlclip_cli.bench.report import build_report, write_csv

    from mlclip_cli.bench.result import TASK_NAMES

    built = build_report(results)
    for task, frame in built.tables.items():
        title = "mean recall per language" + ("" if len(built.tables) == 1 and task == "t2i" else f" ({TASK_NAMES[task]})")
        table = Table(title=title)
        table.add_column("run")
        for column in frame.columns:
            table.add_column(column, justify="right")
        for run, row in frame.iterrows():
            table.add_row(run, *("-" if v != v else f"{v:.1f}" for v in row))
        out.print(table)
    if csv is not None:
        out.print(f"csv: {write_csv(built, csv)}")
