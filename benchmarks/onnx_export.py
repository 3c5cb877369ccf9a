"""ONNX export of an MLA extension: parity, file sizes and CPU latency vs torch (run by hand after
`mlclip demo`; needs the onnx extra, `pip install -e '.[onnx]'`):

    python benchmarks/onnx_export.py [-w mlclip-workspace] [--extension DIR] [--manifest xtd10]

1. exports the extension (`mlclip export --format onnx`, every pack + en unless --langs) to --out
   (default: a temporary folder);
2. parity: onnxruntime (inputs made from the export folder alone, as manifest.json says) vs
   mlclip's torch encoder of the extension, on ALL the manifest's captions of each language and
   all its images: min and mean cosine;
3. sizes: text-<lang>.onnx, tokenizer-<lang>.json, image.onnx (MB = 10^6 bytes);
4. CPU latency, onnxruntime vs torch, on the same already tokenised / preprocessed inputs (the
   modules the export traces): batch 1 (median ms per caption or image over --single items,
   after 5 warm-up runs) and batch 64 (items/s over all the manifest's captions / images in
   consecutive batches of 64, best of --repeats passes, onnxruntime and torch alternating pass by
   pass so that load from other work on a shared machine falls on both). Thread counts are the libraries' defaults
   (onnxruntime: SessionOptions' intra-op default; torch: torch.get_num_threads()); both are printed.
Prints a markdown table.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from mlclip_cli.artifacts import read_manifest
from mlclip_cli.export_onnx import ExportConfig, ExportTokenizer, check_parity, export_onnx, torch_encoders
from mlclip_cli.workspace import Workspace


def median_ms(fns, items: list) -> list[float]:
    """Median ms per call of each fn over `items` one at a time, after 5 warm-up calls. One fn after
    the other, not item by item: onnxruntime's pool threads spin for a moment after each run, and
    on few cores that would stall torch's next call (and torch's OpenMP threads onnxruntime's)."""
    result = []
    for fn in fns:
        for item in items[:5]:
            fn(item)
        spent = []
        for item in items:
            start = time.perf_counter()
            fn(item)
            spent.append(time.perf_counter() - start)
        result.append(1000 * statistics.median(spent))
    return result


def throughput(fns, batches: list, count: int, repeats: int) -> list[float]:
    """Items/s of each fn over all `batches`, best of `repeats` passes, the fns alternating pass by pass."""
    for fn in fns:
        fn(batches[0])
    best = [float("inf")] * len(fns)
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            start = time.perf_counter()
            for batch in batches:
                fn(batch)
            best[i] = min(best[i], time.perf_counter() - start)
    return [count / spent for spent in best]


def text_batches(tokenize, captions: list[str], size: int) -> list[tuple[np.ndarray, np.ndarray]]:
    return [tokenize(captions[i:i + size]) for i in range(0, len(captions), size)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-w", "--workspace", default=None)
    parser.add_argument("--extension", default=None, help="default: WORKSPACE/extensions/mla")
    parser.add_argument("--manifest", default="xtd10", help="a test manifest (path or workspace name) in XTD10's layout")
    parser.add_argument("--langs", default=None, help="comma-separated (default: every pack + en)")
    parser.add_argument("--out", default=None, help="export folder (default: a temporary one)")
    parser.add_argument("--single", type=int, default=200, help="items timed one at a time (batch 1)")
    parser.add_argument("--repeats", type=int, default=5, help="passes over the data at batch 64 (best kept)")
    args = parser.parse_args()
    import onnxruntime as ort

    ws = Workspace.resolve(args.workspace)
    folder = Path(args.extension or ws.root / "extensions" / "mla")
    manifest_path = ws.find_manifest(args.manifest)
    rows = read_manifest(manifest_path).to_pandas()
    tmp = None if args.out else tempfile.TemporaryDirectory(prefix="mlclip-onnx-")
    out = Path(args.out or tmp.name) / "onnx"
    languages = tuple(x.strip() for x in args.langs.split(",")) if args.langs else None

    start = time.perf_counter()
    result = export_onnx(ExportConfig(extension=folder, out=out, languages=languages))
    export_s = time.perf_counter() - start
    captions = {lang: rows[rows.language == lang].caption.tolist() for lang in result.languages}
    images = rows[rows.image_path.notna()].drop_duplicates("image_id").image_path.tolist()
    start = time.perf_counter()
    parity = check_parity(result.out, folder, captions, images)
    parity_s = time.perf_counter() - start

    modules = torch_encoders(folder, result.languages)
    options = ort.SessionOptions()
    torch_threads = torch.get_num_threads()

    def session(name: str):
        return ort.InferenceSession(str(result.out / name), options, providers=["CPUExecutionProvider"])

    load_before = f"{os.getloadavg()[0]:.2f}"
    lines = []
    header = ("| part | .onnx MB | tokenizer MB | items | min cos | mean cos | ORT b1 ms | torch b1 ms "
              "| ORT b64 items/s | torch b64 items/s |")
    lines += [header, "|" + "---|" * 10]
    with torch.inference_mode():
        for lang in result.languages:
            texts = captions[lang]
            if not texts:
                continue
            tokenize = ExportTokenizer(result.out, lang)
            ort_text, module = session(f"text-{lang}.onnx"), modules[lang]
            singles = text_batches(tokenize, texts[:args.single], 1)
            batches = text_batches(tokenize, texts, 64)
            run_ort = lambda b: ort_text.run(None, {"ids": b[0], "lengths": b[1]})  # noqa: E731
            run_torch = lambda b: module(torch.from_numpy(b[0]), torch.from_numpy(b[1]))  # noqa: E731
            score = parity[lang]
            single = median_ms([run_ort, run_torch], singles)
            rate = throughput([run_ort, run_torch], batches, len(texts), args.repeats)
            lines.append(
                f"| {lang} | {result.files[f'text-{lang}.onnx'] / 1e6:.2f} | {result.files[f'tokenizer-{lang}.json'] / 1e6:.3f} "
                f"| {score['count']} | {score['min_cosine']:.7f} | {score['mean_cosine']:.7f} "
                f"| {single[0]:.3f} | {single[1]:.3f} | {rate[0]:,.0f} | {rate[1]:,.0f} |")
        reference = modules["image"]
        from mlclip_cli.loading import load_encoder

        pixels = load_encoder(str(folder), "cpu").load_pixels(images).numpy()
        ort_image = session("image.onnx")
        singles = [pixels[i:i + 1] for i in range(min(args.single, len(pixels)))]
        batches = [pixels[i:i + 64] for i in range(0, len(pixels), 64)]
        run_ort = lambda p: ort_image.run(None, {"pixels": p})  # noqa: E731
        run_torch = lambda p: reference(torch.from_numpy(p))  # noqa: E731
        score = parity["image"]
        single = median_ms([run_ort, run_torch], singles)
        rate = throughput([run_ort, run_torch], batches, len(pixels), args.repeats)
        lines.append(
            f"| image | {result.files['image.onnx'] / 1e6:.2f} | - | {score['count']} | {score['min_cosine']:.7f} "
            f"| {score['mean_cosine']:.7f} | {single[0]:.3f} | {single[1]:.3f} | {rate[0]:,.0f} | {rate[1]:,.0f} |")
    tokenize_us = {}
    for lang in result.languages:
        if captions[lang]:
            tokenize = ExportTokenizer(result.out, lang)
            start = time.perf_counter()
            for batch in range(0, len(captions[lang]), 64):
                tokenize(captions[lang][batch:batch + 64])
            tokenize_us[lang] = 1e6 * (time.perf_counter() - start) / len(captions[lang])

    print(f"extension {folder}, manifest {manifest_path}; export {export_s:.1f} s, parity check {parity_s:.1f} s; "
          f"load average before / after timing: {load_before} / {os.getloadavg()[0]:.2f}")
    print(f"onnxruntime {ort.__version__} (intra-op threads: default = {options.intra_op_num_threads} -> "
          f"physical cores), torch {torch.__version__} ({torch_threads} threads), os.cpu_count() {os.cpu_count()}, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")
    print()
    print("\n".join(lines))
    print()
    print("tokenising with tokenizer-<lang>.json (batches of 64), us per caption: "
          + ", ".join(f"{lang} {value:.0f}" for lang, value in tokenize_us.items()))
    total = sum(result.files.values())
    print(f"export folder: {len(result.files) + 1} files, {total / 1e6:.1f} MB "
          f"(image.onnx + {len(result.languages)} text encoders + tokenizers)")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
