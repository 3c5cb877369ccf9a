"""Where MLA's seconds go, on the world (run by hand after `mlclip demo`; figures in docs/benchmarks.md):

    python benchmarks/mla_speed.py [-w mlclip-workspace] [--extension DIR] [--steps 30]

1. a full training step (sampling, tokenising, per-language grouping, loss, AdamW) vs a bare
   forward + backward + AdamW step of the same student on the same, already tokenised batch
   (goal <= 1.15x);
2. a step that reads cached teacher and image features vs one that recomputes them with the
   frozen towers (English caption through the text tower, image decoded and through the image
   tower) (goal: cached >= 1.5x faster);
3. inference: the MLA encoder at batch 256 vs the same frozen tower on the same tokens with the
   acquirers removed (goal <= 15% overhead).
Each figure is the median of --steps timed repetitions after 5 warm-up ones.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from mlclip_cli.artifacts import read_manifest
from mlclip_cli.core.pairs import load_pairs
from mlclip_cli.mla.method import open_extension
from mlclip_cli.core.encoding import encode_grouped
from mlclip_cli.mla.train import losses_for
from mlclip_cli.training.pretrain import attention_kernel
from mlclip_cli.workspace import Workspace


def timed(fn, repeats: int) -> float:
    for _ in range(5):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-w", "--workspace", default=None)
    parser.add_argument("--extension", default=None)
    parser.add_argument("--steps", type=int, default=30)
    args = parser.parse_args()
    ws = Workspace.resolve(args.workspace)
    folder = Path(args.extension or ws.root / "extensions" / "mla")
    extension, base, encoder, tokenizers, _ = open_extension(folder, "cpu")
    languages = [lang for lang in extension.languages if extension.cards[lang].get("extra_tokens", 0) == 0]
    manifest_path = ws.manifest("world")
    manifest = read_manifest(manifest_path).to_pandas()
    data, _ = load_pairs(manifest, manifest_path, languages, None, True, True, base, ws.features_root)
    encoder.train()
    optimizer = torch.optim.AdamW(encoder.parameters(), lr=1e-6)
    device = torch.device("cpu")
    step_counter = iter(range(10**9))

    def full_step(losses=("nlt",)):
        rows = data.batch(next(step_counter), 128, 0)
        with attention_kernel(device):
            student = encode_grouped(encoder, tokenizers, [data.captions[r] for r in rows], data.languages[rows], device)
            loss = losses_for(student, rows, data, losses, 0.01, device)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    # The bare step: one language's pack, ids already made, no sampling, no grouping, no loss bookkeeping.
    rows = data.batch(0, 128, 0)
    language = languages[0]
    ids, lengths = tokenizers[language].encode([data.captions[r] for r in rows], encoder.tower.context_length)
    target = torch.from_numpy(data.teacher[rows])

    def bare_step():
        with attention_kernel(device):
            out = encoder(ids, lengths, [(language, 0, len(ids))])
            loss = (F.normalize(out, dim=-1) - target).pow(2).sum(-1).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    full, bare = timed(full_step, args.steps), timed(bare_step, args.steps)
    print(f"1. training step {full * 1000:.0f} ms vs bare forward+backward {bare * 1000:.0f} ms: {full / bare:.2f}x")

    english = manifest[(manifest.split == "train") & (manifest.language == "en")].set_index("pair_id")
    table = manifest[(manifest.split == "train") & manifest.language.isin(languages)]
    pair_of, path_of = table.pair_id.to_numpy(), table.image_path.to_numpy()
    caption_of = table.caption.tolist()

    def recomputed_step():
        rows = data.batch(next(step_counter), 128, 0)
        with torch.no_grad():  # what the cache saves: both frozen towers, every step
            base.encode_texts(english.loc[pair_of[rows], "caption"].tolist(), "en")
            base.encode_images(path_of[rows].tolist())
        with attention_kernel(device):
            student = encode_grouped(encoder, tokenizers, [caption_of[r] for r in rows], data.languages[rows], device)
            loss = losses_for(student, rows, data, ("nlt", "le"), 0.01, device)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def cached_step():
        full_step(("nlt", "le"))

    recomputed, cached = timed(recomputed_step, max(5, args.steps // 3)), timed(cached_step, args.steps)
    print(f"2. step with recomputed features {recomputed * 1000:.0f} ms vs cached {cached * 1000:.0f} ms: "
          f"cached is {recomputed / cached:.2f}x faster")

    encoder.eval()
    val = manifest[(manifest.split == "val") & (manifest.language == language)].caption.tolist()[:256]
    ids, lengths = tokenizers[language].encode(val, encoder.tower.context_length)
    segments = [(language, 0, len(ids))]
    pack = encoder.packs[language]
    acquirers = pack.acquirers

    @torch.no_grad()
    def with_acquirers():
        with attention_kernel(device):
            encoder(ids, lengths, segments)

    with_time = timed(with_acquirers, args.steps)
    pack.acquirers = torch.nn.ModuleList(torch.nn.Identity() for _ in acquirers)
    without_time = timed(with_acquirers, args.steps)
    pack.acquirers = acquirers
    print(f"3. inference at batch {len(ids)}: with acquirers {with_time * 1000:.1f} ms, frozen tower alone on the "
          f"same tokens {without_time * 1000:.1f} ms: overhead {100 * (with_time / without_time - 1):.1f}%")


if __name__ == "__main__":
    main()
