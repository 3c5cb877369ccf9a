"""`mlclip export`: an extension as deployable files (ONNX)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from mlclip_cli.cli.commands import Commands
from mlclip_cli.cli.console import out
from mlclip_cli.cli.options import language_list

commands = Commands()


@commands.command(
    help="""Export an MLA extension for deployment: the image tower once (image.onnx, with
preprocess.json) and one small text encoder per language (text-<lang>.onnx: the frozen text tower +
that language's pack, with its tokenizer-<lang>.json; text-en.onnx is the CLIP's own tower), so a
client downloads only its languages and all share one image index. Text graphs take ids and lengths
(int64), the image graph preprocessed pixels; all return L2-normalised embeddings. manifest.json
lists every file with its sha256, input names and how to tokenise.

--check MANIFEST compares onnxruntime to torch on that manifest's captions (each exported language)
and images, and prints the lowest cosine per language.

Needs the onnx extra: pip install -e '.\\[onnx]'.

Example: [bold]mlclip export --format onnx --extension mlclip-workspace/extensions/mla --langs de,ko[/]""",
    short_help="Export an extension as ONNX (image tower + one text encoder per language).",
)
def export(
    ctx: typer.Context,
    extension: Path = typer.Option(None, "--extension", help="Extension folder \\[default: WORKSPACE/extensions/mla]."),
    format: str = typer.Option("onnx", "--format", help="Export format: onnx."),
    langs: str = typer.Option(None, "--langs", help="Languages to export, comma-separated \\[default: every pack + en]."),
    out_dir: Path = typer.Option(None, "--out", help="Output folder \\[default: EXTENSION/onnx]."),
    check: str = typer.Option(None, "--check", help="Manifest (path or workspace name) to check parity on: its "
                              "captions of the exported languages and its images."),
    check_rows: int = typer.Option(1000, "--check-rows", min=1, help="At most this many captions per language and images."),
) -> None:
    from mlclip_cli.export_onnx import ExportConfig, check_parity, export_onnx, parity_rows

    folder = extension or ctx.obj.extension("mla")
    languages = language_list(langs) if langs else None
    # --check's manifest is read before the export: an unknown one is not found after the files are written
    rows = parity_rows(ctx.obj.find_manifest(check), check) if check is not None else None
    with out.status("exporting"):
        result = export_onnx(ExportConfig(extension=folder, out=out_dir, languages=languages, format=format))
    table = Table(title=f"ONNX export -> {result.out}")
    table.add_column("file")
    table.add_column("MB", justify="right")
    for name, size in result.files.items():
        table.add_row(name, f"{size / 1e6:.2f}")
    out.print(table)
    if rows is None:
        return
    captions = {lang: rows[rows.language == lang].caption.tolist()[:check_rows] for lang in result.languages}
    images = rows[rows.image_path.notna()].drop_duplicates("image_id").image_path.tolist()[:check_rows]
    with out.status("checking parity with onnxruntime"):
        report = check_parity(result.out, folder, captions, images)
    parity = Table(title="onnxruntime vs torch (cosine)")
    for column in ("part", "rows", "min", "mean"):
        parity.add_column(column, justify="left" if column == "part" else "right")
    for part, scores in report.items():
        parity.add_row(part, str(scores["count"]), f"{scores['min_cosine']:.7f}", f"{scores['mean_cosine']:.7f}")
    out.print(parity)
