"""The MLA paper's tables on the world: stages (4), ablations (5, 8), objectives (9), extension (6),
low resource (7).

Sizes fit 2 CPU cores in <= 10 minutes per table: two languages, German (Latin script, many
sub-words shared with English) and Japanese (the world's hardest), 300 NLT steps at lr 2e-3 then the
world's LE (100 steps at 1e-4). The world's full MLA (nine languages, 900 + 100 steps) is in
docs/benchmarks.md; these rows are shorter, so compare rows within a table, not with it.
"""

from __future__ import annotations

from dataclasses import replace

from mlclip_cli.mla.train import WORLD_LE, LoopConfig, StageConfig
from mlclip_cli.reproduce.table import PaperFigures, Table, TableRows, register
from mlclip_cli.reproduce.rows import MEAN, R1, mla_extend_row, mla_row

LANGUAGES = ("de", "ja")
QUICK_LANGUAGES = ("de",)
NLT_STEPS, QUICK_STEPS = 300, 3
NO_FIGURES = ("only the abstract of the MLA paper could be read offline; its figures for this table are not "
              "recorded here, so the world table is judged by what the paper's text claims")


def _languages(ctx) -> tuple[str, ...]:
    return QUICK_LANGUAGES if ctx.quick else LANGUAGES


def _loop(ctx, **changes) -> LoopConfig:
    steps = QUICK_STEPS if ctx.quick else NLT_STEPS
    loop = LoopConfig(nlt=StageConfig(steps, 2e-3, 0.05), le=StageConfig(2, 1e-4) if ctx.quick else WORLD_LE,
                      eval_every=10**9)
    return replace(loop, **changes)


def _settings(ctx, languages) -> dict:
    loop = _loop(ctx)
    return {"languages": ",".join(languages), "NLT": f"{loop.nlt.steps} steps at lr {loop.nlt.lr:g}",
            "LE": f"{loop.le.steps} steps at lr {loop.le.lr:g}", "batch": loop.batch_size,
            "model": ctx.model}


def _columns(languages) -> list[str]:
    return (["row"] + [f"{lang} {name}" for lang in languages for name in ("t2i R@1", "mean")]
            + ["mean t2i R@1", "mean recall", "train s"])


def _cells(title: str, done: dict, languages) -> list:
    scores = done["scores"]
    r1 = [scores[lang][R1] for lang in languages]
    mean = [scores[lang][MEAN] for lang in languages]
    cells = [title]
    for lang in languages:
        cells += [scores[lang][R1], scores[lang][MEAN]]
    return cells + [sum(r1) / len(r1), sum(mean) / len(mean), f"{done['seconds']:.0f}"]


def _rows_table(ctx, rows: list[tuple[str, str, dict]]) -> TableRows:
    """rows: (title, key, changes: loop fields under 'loop', MlaConfig fields otherwise)."""
    languages = _languages(ctx)
    out = []
    for title, key, changes in rows:
        ctx.row(title)
        options = dict(changes)
        loop = _loop(ctx, **options.pop("loop", {}))
        out.append(_cells(title, mla_row(ctx, key, languages, loop, **options), languages))
    return TableRows(_columns(languages), out, _settings(ctx, languages))


def _variants(rows: list[tuple[str, str, dict]], note: str):
    """A table of MLA variants, one row each (see `_rows_table`), with a note under it."""
    def run(ctx) -> TableRows:
        table = _rows_table(ctx, rows)
        table.notes.append(note)
        return table
    return run


def _stages(ctx) -> TableRows:
    first = _loop(ctx).nlt
    rows = [("NLT only", "nlt", {"loop": {"stages": "nlt"}}),
            # LE alone gets the first stage's budget, or it would be a 100-step straw man.
            ("LE only", "le", {"loop": {"stages": "le", "le": first}}),
            ("NLT+LE together", "nlt-and-le", {"loop": {"stages": "nlt+le"}}),
            ("NLT -> LE (default)", "nlt-then-le", {"loop": {"stages": "nlt,le"}}),
            ("NLT -> NLT+LE", "nlt-then-nlt-and-le", {"loop": {"stages": "nlt,nlt+le"}})]
    table = _rows_table(ctx, rows)
    table.notes.append("Every row's first stage has the same budget; the second stage of the two-stage rows is LE's.")
    return table


register(Table(
    name="mla-stages", reproduces="MLA Table 4",
    summary="Which training stages matter: NLT only / LE only / NLT+LE together / NLT->LE / NLT->NLT+LE.",
    paper=PaperFigures(
        source="MLA paper Table 4, German, as its text reports it",
        columns=["stages", "de"], rows=[["NLT -> LE", "78.7"], ["NLT only", "76.3"], ["NLT+LE together", "71.1"],
                                        ["LE only", "68.2"], ["NLT -> NLT+LE", "no better than NLT -> LE"]],
        claim="NLT -> LE > NLT only > NLT+LE together > LE only; adding NLT to the second stage does not help."),
    headline="de: NLT->LE 78.7 > NLT 76.3 > NLT+LE 71.1 > LE 68.2",
    run=_stages))


def _register_unread(name: str, reproduces: str, summary: str, claim: str, headline: str, run) -> None:
    """Register a table whose paper figures could not be read offline: the paper's claim only."""
    register(Table(name=name, reproduces=reproduces, summary=summary,
                   paper=PaperFigures(source=reproduces.replace("MLA ", "MLA paper ", 1), columns=[], rows=[],
                                      claim=f"{claim} ({NO_FIGURES}.)"),
                   headline=f"{headline} (figures not available offline)", run=run))


_ablation = _variants(
    [("MLA (MLP acquirers)", "mla", {}),
     ("without acquirers (embeddings only)", "no-acquirers", {"acquirer": "none"}),
     ("linear acquirers (same size)", "linear", {"acquirer": "linear"}),
     ("with embedding init (CLIP's rows)", "clip-init", {"embedding_init": "clip"})],
    "The paper starts the shared table from M-BERT's embeddings; the world has no multilingual model, so 'embedding "
    "init' here starts each row from the frozen CLIP's embedding of the token's text (mean of its CLIP BPE pieces): "
    "the offline analogue, not the paper's init.")


_register_unread(
    "mla-ablation", "MLA Tables 5 and 8",
    "Without language acquirers (only the shared embeddings train), with an embedding init, and a "
    "linear acquirer against the MLP of the same size.",
    "Removing the acquirers costs the most; the embedding initialisation adds only "
    "+0.3 to +1.5 mean recall (the paper's text); the MLP acquirer beats a linear one of the "
    "same size.",
    "embedding init +0.3 to +1.5 mean recall; no acquirers and linear acquirers worse", _ablation)


_objectives = _variants(
    [("NLT MSE -> LE NCE (default)", "mse-nce", {}),
     ("NLT NCE -> LE NCE", "nce-nce", {"loop": {"nlt_loss": "nce"}}),
     ("NLT MSE -> LE MSE", "mse-mse", {"loop": {"le_loss": "mse"}}),
     ("NLT NCE -> LE MSE", "nce-mse", {"loop": {"nlt_loss": "nce", "le_loss": "mse"}})],
    "NCE in NLT: symmetric InfoNCE (tau 0.01) between the student's target captions and the teacher's English "
    "embeddings of the batch; MSE in LE: squared distance of the normalised student embedding to its image's feature.")


_register_unread(
    "mla-objectives", "MLA Table 9",
    "The objective of each stage: MSE or NCE in NLT, NCE or MSE in LE.",
    "MSE suits NLT (copy the teacher) and NCE suits LE (align with images).",
    "MSE for NLT, NCE for LE", _objectives)


SEEN, ADDED = ("de", "fr"), ("ko", "ja")
EXTEND_NLT = 250


def _extend_loop(ctx, stages: str = "nlt,le") -> LoopConfig:
    return _loop(ctx, stages=stages, nlt=StageConfig(QUICK_STEPS if ctx.quick else EXTEND_NLT, 2e-3, 0.05))


def _base(ctx) -> dict:
    """The extension both tables start from: MLA on de and fr (the table's NLT -> LE)."""
    ctx.row(f"base extension on {', '.join(SEEN[:1] if ctx.quick else SEEN)}")
    seen = SEEN[:1] if ctx.quick else SEEN
    return mla_row(ctx, "base", seen, _loop(ctx))


def _extension(ctx) -> TableRows:
    import hashlib

    seen = SEEN[:1] if ctx.quick else SEEN
    added = ADDED[:1] if ctx.quick else ADDED
    before = _base(ctx)["scores"]
    base = ctx.folder / "base" / "extension"
    digest = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted((base / "packs").glob("*"))}
    current, after = base, None
    for language in added:
        ctx.row(f"extend --lang {language}")
        done = mla_extend_row(ctx, f"plus-{language}", current, language, _extend_loop(ctx), seen + added[:added.index(language) + 1])
        current, after = ctx.folder / f"plus-{language}" / "extension", done["scores"]
    unchanged = all(hashlib.sha256((current / "packs" / name).read_bytes()).hexdigest() == sha
                    for name, sha in digest.items())
    rows = []
    for language in seen + added:
        old = before.get(language)
        new = after[language]
        rows.append([language + (" (added)" if language in added else ""),
                     old[R1] if old else None, new[R1], (new[R1] - old[R1]) if old else None,
                     old[MEAN] if old else None, new[MEAN], (new[MEAN] - old[MEAN]) if old else None])
    notes = [f"The seen languages' pack files are {'byte-identical' if unchanged else 'CHANGED'} after adding "
             f"{', '.join(added)} (sha256 of every file of the base's packs/)."]
    return TableRows(["language", "t2i R@1 before", "after", "change", "mean before", "after", "change"], rows,
                     {**_settings(ctx, seen), "added": ",".join(added),
                      "extend NLT": f"{_extend_loop(ctx).nlt.steps} steps"}, notes)


_register_unread(
    "extension", "MLA Table 6",
    "Seen languages before and after unseen ones are added (extend --lang ko, then ja).",
    "A new language is added without changing the seen languages' results: their "
    "acquirers are untouched.",
    "seen languages unchanged by an added one", _extension)


PAIRS, QUICK_PAIRS = (100, 200, 600), (20,)


def _low_resource(ctx) -> TableRows:
    _base(ctx)
    base = ctx.folder / "base" / "extension"
    rows = []
    for pairs in QUICK_PAIRS if ctx.quick else PAIRS:
        cells = [str(pairs)]
        for stages, name in (("nlt", "text-text"), ("nlt,le", "text-text + image-text")):
            ctx.row(f"ko from {pairs} pairs, {name}")
            done = mla_extend_row(ctx, f"ko-{pairs}-{stages.replace(',', '-then-')}", base, "ko",
                                  _extend_loop(ctx, stages), ("ko",), max_pairs=pairs)
            cells += [done["scores"]["ko"][R1], done["scores"]["ko"][MEAN]]
        rows.append(cells)
    return TableRows(["Korean pairs", "text-text t2i R@1", "text-text mean", "+ image-text t2i R@1",
                      "+ image-text mean"], rows,
                     {**_settings(ctx, SEEN[:1] if ctx.quick else SEEN), "extend NLT": f"{_extend_loop(ctx).nlt.steps} steps"},
                     ["text-text = NLT on the Korean captions' English translations; + image-text = NLT then LE on "
                      "the same captions' images. The shared block is frozen; Korean gets its own vocabulary extension."])


_register_unread(
    "low-resource", "MLA Table 7",
    "Korean learnt from 100 / 200 / 600 caption pairs: text-text (NLT) only vs text-text + image-text (NLT -> LE).",
    "MLA learns a new language from little data, and image-text pairs add to text-text ones.",
    "image-text adds to text-text with few pairs", _low_resource)

