"""The baseline a user would otherwise pick: multilingual knowledge distillation (sentence-
transformers style) of a full trainable copy of the CLIP text tower, next to MLA.

    python benchmarks/mla_vs_distillation.py [-w mlclip-workspace] [--steps 1200] [--lr 5e-4]

The student is a copy of the whole text tower (its own CLIP BPE tokenizer, every text weight
trainable); the teacher is the frozen original. Same data as `mlclip train` (the world's train
split, nine languages), plus English itself as in Reimers & Gurevych 2020 (student(en) and
student(target) are both pulled to teacher(en)), the same NLT loss, batch and steps. Then the
world test in all 11 languages through the student, against the frozen image features: per-language
t2i R@1 and mean recall, the trainable parameters and the wall time. English now goes through
the student too, so what distillation does to English shows.
"""

from __future__ import annotations

import argparse
import copy
import math
import time

import numpy as np
import torch
import torch.nn.functional as F

from mlclip_cli.artifacts import read_manifest
from mlclip_cli.encoders import FrozenClip
from mlclip_cli.metrics import retrieval_metrics
from mlclip_cli.core.pairs import load_pairs
from mlclip_cli.training.pretrain import attention_kernel
from mlclip_cli.workspace import Workspace

LANGUAGES = ("de", "fr", "es", "it", "ru", "pl", "tr", "zh", "ja")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-w", "--workspace", default=None)
    parser.add_argument("--steps", type=int, default=1200)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--batch-size", type=int, default=128)
    args = parser.parse_args()
    ws = Workspace.resolve(args.workspace)
    base = FrozenClip.load("mlclip-tiny", "cpu")
    manifest_path = ws.manifest("world")
    manifest = read_manifest(manifest_path).to_pandas()
    data, _ = load_pairs(manifest, manifest_path, list(LANGUAGES) + ["en"], None, True, False, base, ws.features_root)
    student = copy.deepcopy(base.clip.model)
    del student.visual  # a text encoder: the image side stays the frozen original's
    student.train()
    trainable = [p for p in student.parameters()]
    for p in trainable:
        p.requires_grad_(True)
    optimizer = torch.optim.AdamW(trainable, lr=args.lr, weight_decay=0.01)
    tokenizer = base.clip.tokenizer
    warm = max(1, int(0.05 * args.steps))
    began = time.perf_counter()
    for step in range(args.steps):
        lr = args.lr * (step + 1) / warm if step < warm else \
            args.lr * 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, args.steps - warm)))
        for group in optimizer.param_groups:
            group["lr"] = lr
        rows = data.batch(step, args.batch_size, 0)
        tokens = tokenizer([data.captions[r] for r in rows])
        longest = int(tokens.argmax(dim=-1).max()) + 1
        with attention_kernel(torch.device("cpu")):
            # the same trim as MLA: positions past the longest EOS never reach the pooled token
            x = student.token_embedding(tokens[:, :longest]) + student.positional_embedding[:longest]
            x = student.transformer(x, attn_mask=student.attn_mask[:longest, :longest])
            x = student.ln_final(x)[torch.arange(len(x)), tokens[:, :longest].argmax(dim=-1)] @ student.text_projection
            loss = (F.normalize(x, dim=-1) - torch.from_numpy(data.teacher[rows])).pow(2).sum(-1).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if (step + 1) % 200 == 0:
            print(f"step {step + 1}: loss {loss.item():.4f}", flush=True)
    seconds = time.perf_counter() - began
    student.eval()

    test = read_manifest(ws.manifest("xtd10")).to_pandas()
    images = test.drop_duplicates("image_id")
    image = base.encode_images(images.image_path.tolist())
    index = {k: i for i, k in enumerate(images.image_id)}
    print(f"trainable parameters {sum(p.numel() for p in trainable):,}; {args.steps} steps in {seconds:.0f} s")
    print("| lang | frozen t2i R@1 | distilled t2i R@1 | frozen mean | distilled mean |")
    print("|---|---|---|---|---|")
    for language in ("en",) + LANGUAGES + ("ko",):
        rows = test[test.language == language]
        with torch.no_grad():
            tokens = tokenizer(rows.caption.tolist())
            distilled = F.normalize(student.encode_text(tokens), dim=-1).numpy()
        frozen = base.encode_texts(rows.caption.tolist(), language)
        caption_image = rows.image_id.map(index).to_numpy()
        a, b = retrieval_metrics(frozen, image, caption_image), retrieval_metrics(distilled, image, caption_image)
        print(f"| {language} | {a['image_retrieval_recall@1']:.1f} | {b['image_retrieval_recall@1']:.1f} | "
              f"{a['mean_recall']:.1f} | {b['mean_recall']:.1f} |")


if __name__ == "__main__":
    main()
