"""`mlclip bench <benchmark>` and `mlclip bench report`."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from mlclip_cli.bench.registry import BENCHMARKS, Benchmark
from mlclip_cli.cli.app import app
from mlclip_cli.cli.console import out
from mlclip_cli.cli.features import FALLBACK_HELP, MODEL_HELP, progress_bar, progress_callback

bench_app = typer.Typer(
    help="Multilingual image-text retrieval benchmarks (R@1/5/10 both ways, mean recall), and their report.",
    no_args_is_help=True,
)
app.add_typer(bench_app, name="bench")

COLUMNS = (("image_retrieval_recall@1", "t2i R@1"), ("image_retrieval_recall@5", "t2i R@5"),
           ("image_retrieval_recall@10", "t2i R@10"), ("text_retrieval_recall@1", "i2t R@1"),
           ("text_retrieval_recall@5", "i2t R@5"), ("text_retrieval_recall@10", "i2t R@10"),
           ("mean_recall", "mean"), ("text_to_text_recall@1", "t2t R@1"))


def results_table(result: dict) -> Table:
    table = Table(title=f"{result['benchmark']}{' ' + result['subset'] if result['subset'] else ''}: "
                        f"{result['model']} ({result['text_encoder']}), {result['index']} index")
    sizes = {(v["images"], v["captions"]) for v in result["languages"].values()}
    if len(sizes) == 1:
        images, captions = sizes.pop()
        table.caption = f"{images} images and {captions} captions per language"
    table.add_column("lang")
    shown = [(k, name) for k, name in COLUMNS if any(k in v["metrics"] for v in result["languages"].values())]
    for _, name in shown:
        table.add_column(name, justify="right")
    for language, entry in result["languages"].items():
        table.add_row(language, *(f"{entry['metrics'][k]:.1f}" if k in entry["metrics"] else "-" for k, _ in shown))
    table.add_row("[bold]mean[/]", *(f"[bold]{result['average'][k]:.1f}[/]" if k in result["average"] else ""
                                                for k, _ in shown))
    return table


def _make_command(benchmark: Benchmark):
    subset_help = f"Subset: {' or '.join(benchmark.subsets)}." if benchmark.subsets else "No subsets."

    def command(
        ctx: typer.Context,
        langs: str = typer.Option("all", "--langs", help="all, or a comma-separated list such as en,de,ja."),
        manifest: Path = typer.Option(None, "--manifest", help=f"Prepared manifest \\[default: WORKSPACE/manifests/{benchmark.dataset}.parquet]."),
        model: str = typer.Option("mlclip-tiny", "--model", help=MODEL_HELP),
        subset: str = typer.Option(None, "--subset", help=subset_help),
        index: str = typer.Option("flat", "--index", help="FAISS index: flat (exact), ivf or hnsw (galleries past a million)."),
        out_dir: Path = typer.Option(None, "--out", help="Results folder \\[default: WORKSPACE/results]."),
        fallback: str = typer.Option("none", "--fallback", help=FALLBACK_HELP),
        output_format: str = typer.Option(
            "mlclip", "--format",
            help="mlclip (its JSON and PNG) or clip_benchmark (also one CLIP_benchmark-shaped JSON per "
                 "language, in OUT/clip_benchmark/, for CLIP_benchmark's aggregation scripts)."),
    ) -> None:
        from mlclip_cli.bench.clip_benchmark import FORMATS, SUBFOLDER, write_clip_benchmark
        from mlclip_cli.bench.run import CAPTIONS_POLICY, BenchConfig, run_bench

        if output_format not in FORMATS:
            raise typer.BadParameter(f"must be {' or '.join(FORMATS)}, not '{output_format}'", param_hint="'--format'")
        ws = ctx.obj
        config = BenchConfig(
            benchmark=benchmark.name, manifest=manifest or ws.manifest(benchmark.dataset),
            out_dir=out_dir or ws.results, features_dir=ws.features_root,
            languages=tuple(code.strip() for code in langs.split(",") if code.strip()),
            model=model, subset=subset, index=index, fallback=fallback,
        )
        with progress_bar() as bar:
            result = run_bench(config, progress=progress_callback(bar))
        out.print(results_table(result.result))
        out.print(f"[dim]{CAPTIONS_POLICY}[/]")
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

Reads the manifest that `mlclip prepare {benchmark.dataset}` wrote (its {benchmark.split} split, images
required), encodes images and captions into the feature cache (once), searches with FAISS and
prints R@1/5/10 both ways and mean recall per language, plus text->text recall to the English
caption where captions are parallel. Writes one JSON (CLIP_benchmark-compatible keys) and a PNG;
with --format clip_benchmark also one JSON per language in CLIP_benchmark's own result shape.

Example: [bold]mlclip bench {benchmark.name} --langs all[/]""",
        short_help=benchmark.summary,
    )(command)


for _benchmark in BENCHMARKS.values():
    _make_command(_benchmark)


@bench_app.command(
    "report",
    help="""Aggregate bench result JSONs into one table of mean recall per language, and
optionally a CSV of every metric.

Example: [bold]mlclip bench report mlclip-workspace/results/*.json --csv report.csv[/]""",
    short_help="Aggregate several bench JSONs into one table / CSV.",
)
def report(
    results: list[Path] = typer.Argument(..., help="Bench result JSON files."),
    csv: Path = typer.Option(None, "--csv", help="Write every metric of every run to this CSV."),
) -> None:
    from mlclip_cli.bench.report import build_report, write_csv

    built = build_report(results)
    table = Table(title="mean recall per language")
    table.add_column("run")
    for column in built.table.columns:
        table.add_column(column, justify="right")
    for run, row in built.table.iterrows():
        table.add_row(run, *("-" if v != v else f"{v:.1f}" for v in row))
    out.print(table)
    if csv is not None:
        out.print(f"csv: {write_csv(built, csv)}")
