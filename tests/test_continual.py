"""CLL-CLIP, TEIR and the continual runner on a tiny world with an untrained micro CLIP: only the
token table changes, TEIR leaves unused rows bit-identical, the dynamic vocabulary keeps English
exact, a killed sequence resumes to the same state, and bad input is one clear error."""

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from mlclip_cli.artifacts import manifest_from_rows, read_manifest, write_manifest
from mlclip_cli.continual import snapshot
from mlclip_cli.datasets.base import PrepareConfig
from mlclip_cli.datasets.prepare import prepare_dataset
from mlclip_cli.continual.learners import Settings, learner_names
from mlclip_cli.continual.model import ContinualTextEncoder
from mlclip_cli.continual.runner import ContinualConfig, ExtendConfig, TaskLoop, extend_continual, run_continual
from mlclip_cli.continual.teir import RowScaledStep, TeirConfig, new_rows, row_scales
from mlclip_cli.continual.vocab import ClipVocabulary
from mlclip_cli.encoders import FrozenClip
from mlclip_cli.loading import load_encoder
from mlclip_cli.errors import MlclipError
from mlclip_cli.models.clip import create_untrained
from mlclip_cli.training.checkpoint import save_weights
from mlclip_cli.world.generate import WorldConfig, generate_world

LOOP = TaskLoop(steps=6, batch_size=16)
ORDER = ("en", "de", "ru")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("continual")
    result = generate_world(root / "world", WorldConfig(seed=3, train_scenes=40, val_scenes=8, test_scenes=10), workers=1)
    manifest = write_manifest(manifest_from_rows(result.rows), root / "world.parquet")
    test = prepare_dataset("xtd10", PrepareConfig(root=root / "world" / "xtd10"), root / "xtd10.parquet").manifest
    torch.manual_seed(0)
    save_weights(create_untrained("mlclip-micro"), root / "micro", {"model_name": "mlclip-micro"})
    return {"root": root, "manifest": manifest, "test": test, "model": str(root / "micro")}


def _config(world, out, order=ORDER, **changes):
    return ContinualConfig(manifest=world["manifest"], out=out, order=order, features_root=world["root"] / "features",
                           model=world["model"], test_manifest=world["test"], loop=changes.pop("loop", LOOP),
                           settings=changes.pop("settings", Settings(memory=64, fisher_batches=2)), **changes)


@pytest.fixture(scope="module")
def teir_run(world, tmp_path_factory):
    out = tmp_path_factory.mktemp("teir")
    return run_continual(_config(world, out, teir=TeirConfig.parse("both")))


def _captions(world, language, split=None):
    table = read_manifest(world["test" if split == "test" else "manifest"]).to_pandas()
    rows = table[table.language == language]
    return (rows if split is None else rows[rows.split == split]).caption.tolist()


def test_only_the_token_table_is_trained_and_the_base_model_never_changes(world, teir_run):
    base = FrozenClip.load(world["model"])
    before = {k: v.clone() for k, v in base.clip.model.state_dict().items()}
    encoder = ContinualTextEncoder(base.clip.model, 49408 + 10)
    assert [name for name, _ in encoder.named_parameters()] == ["table", "logit_scale"]  # + CLFM's temperature
    loaded = load_encoder(str(teir_run.extension))
    for key, value in loaded.clip.model.state_dict().items():
        assert torch.equal(value, before[key]), key  # the extension's base CLIP is the untouched one
    weights = snapshot.read(teir_run.extension).weights
    assert sorted(weights) == ["logit_scale", "table"]
    clip_rows = base.clip.model.token_embedding.weight
    assert not torch.equal(weights["table"][:len(clip_rows)], clip_rows)  # it did learn


def test_teir_regulariser_keeps_unused_rows_bit_identical_and_plain_decay_moves_them():
    torch.manual_seed(0)
    for config, unused_move in ((TeirConfig.parse("reg"), False), (TeirConfig.parse("none"), True),
                                (TeirConfig.parse("reg", freq="update"), False), (TeirConfig.parse("reg", freq="off"), False),
                                (TeirConfig.parse("reg", freq="balanced"), False)):
        table = torch.nn.Parameter(torch.randn(12, 4))
        start = table.detach().clone()
        used = torch.zeros(12, dtype=torch.bool)
        used[[2, 3, 5]] = True
        usage = torch.full((12,), 2.0)
        scale = row_scales(usage, used, [11], config)
        optimizer = torch.optim.AdamW([{"params": [table], "weight_decay": 0.0}], lr=0.1, eps=1e-6)
        step = RowScaledStep(table, 0.05, config if config.reg else None, scale, usage)
        for _ in range(3):
            optimizer.zero_grad()
            # Rows 2, 3, 5 (the corpus) and 11 (a special token) all get a gradient.
            (table[[2, 3, 5, 11]] ** 2).sum().backward()
            step(optimizer, 0.1)
        unused = ~used
        if config.reg:
            unused[11] = True
        moved = ~torch.all(table.detach() == start, dim=1)
        assert bool(moved[unused].any()) == unused_move, config
        assert bool(moved[used].all()), config  # the task's own rows learn either way
        if config.reg:
            assert torch.equal(table.detach()[11], start[11])  # special tokens are frozen by TEIR


def test_one_over_frequency_scales_a_row_update_only_in_the_update_variant():
    def moved(freq: str, f: float) -> float:
        torch.manual_seed(0)
        table = torch.nn.Parameter(torch.ones(2, 4))
        usage = torch.tensor([f, 1.0])
        config = TeirConfig.parse("reg", freq=freq)
        scale = row_scales(usage, torch.tensor([True, False]), [], config)
        optimizer = torch.optim.AdamW([{"params": [table], "weight_decay": 0.0}], lr=0.1, eps=1e-6)
        step = RowScaledStep(table, 0.0, config, scale, usage)
        optimizer.zero_grad()
        table[0].sum().backward()
        step(optimizer, 0.1)
        return float((1 - table.detach()[0]).abs().mean())

    # Adam normalises a constant gradient scale away: 1/f changes nothing in the paper's rule...
    assert moved("grad", 4.0) == pytest.approx(moved("grad", 1.0), rel=1e-4)
    # ...and really weighs when it scales the update.
    assert moved("update", 4.0) == pytest.approx(moved("update", 1.0) / 4, rel=1e-4)


def test_balanced_rule_shares_the_plain_update_out_by_one_over_frequency():
    """freq="balanced": each used row's update is 1/f, scaled so the task's rows move as much on
    average as without TEIR (one step of Adam moves every coordinate by lr at first)."""
    torch.manual_seed(0)
    table = torch.nn.Parameter(torch.zeros(4, 3))
    usage = torch.tensor([1.0, 2.0, 4.0, 5.0])
    used = torch.tensor([True, True, True, False])
    config = TeirConfig.parse("reg", freq="balanced")
    step = RowScaledStep(table, 0.0, config, row_scales(usage, used, [], config), usage)
    optimizer = torch.optim.AdamW([{"params": [table], "weight_decay": 0.0}], lr=0.1, eps=1e-12)
    table.sum().backward()
    step(optimizer, 0.1)
    moved = table.detach().abs().mean(dim=1)
    assert moved[:3].mean().item() == pytest.approx(0.1, rel=1e-5)  # plain's average move
    assert (moved[0] / moved[1]).item() == pytest.approx(2.0, rel=1e-5)  # shared out by 1/f
    assert (moved[0] / moved[2]).item() == pytest.approx(4.0, rel=1e-5)
    assert moved[3].item() == 0.0  # a row the task does not use stays put


def test_teir_init_draws_rows_from_the_table_distribution():
    generator = torch.Generator().manual_seed(0)
    table = torch.randn(4000, 16) * 0.3 + 0.1
    rows = new_rows(table, 5000, TeirConfig.parse("init"), generator)
    assert rows.mean().item() == pytest.approx(table.mean().item(), abs=0.01)
    assert rows.std().item() == pytest.approx(table.std().item(), rel=0.02)
    plain = new_rows(table, 5000, TeirConfig.parse("none"), generator)
    assert plain.mean().item() == pytest.approx(0.0, abs=0.002) and plain.std().item() == pytest.approx(0.02, rel=0.02)


def test_dynamic_vocabulary_keeps_english_exact_and_cuts_no_caption(world, teir_run):
    base = FrozenClip.load(world["model"])
    clip_tokenizer = base.clip.tokenizer
    vocabulary = ClipVocabulary.from_json(snapshot.read(teir_run.extension).vocabulary_json, clip_tokenizer)
    assert vocabulary.languages == ["de", "ru"] and vocabulary.vocab_size > vocabulary.base_size
    english = _captions(world, "en")
    fresh = ClipVocabulary(clip_tokenizer)
    assert vocabulary.ids(english, 64) == fresh.ids(english, 64)  # exactly as before any expansion
    context = base.clip.model.positional_embedding.shape[0]
    for language in ("en", "de", "ru"):
        assert vocabulary.truncated(_captions(world, language), context) == 0, language
    for caption in _captions(world, "ru", "train"):  # every caption decodes back (CLIP spaces words apart)
        assert "".join(vocabulary.decode(vocabulary.encode(caption)).split()) == "".join(caption.lower().split())


def test_sequence_writes_matrix_plots_and_a_loadable_extension(world, teir_run, tmp_path):
    result = teir_run
    assert [t.languages for t in result.tasks] == [["en"], ["de"], ["ru"]]
    block = result.summary["metrics"]["image_retrieval_recall@1"]
    assert block["matrix"][0][1] is None and block["matrix"][2][0] is not None
    assert block["final_aa"] == pytest.approx(np.mean(block["matrix"][2]))
    saved = json.loads(result.json_path.read_text())
    assert saved["order"] == list(ORDER) and saved["metrics"]["mean_recall"]["f"][0] is None
    for plot in result.plots:
        assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    encoder = load_encoder(str(result.extension))
    ru = _captions(world, "ru", "test")
    vectors = encoder.encode_texts(ru, "ru")
    assert vectors.shape[0] == len(ru) and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    # Language-agnostic: the tag does not matter, and a mixed batch equals one language at a time.
    assert np.allclose(encoder.encode_texts(ru, "de"), vectors, atol=1e-6)
    mixed = encoder.encode_mixed(ru[:3] + _captions(world, "en", "test")[:3], ["ru"] * 3 + ["en"] * 3)
    assert np.allclose(mixed[:3], vectors[:3], atol=1e-5)


def test_a_killed_sequence_resumes_to_the_same_state(world, teir_run, tmp_path):
    class Killed(Exception):
        pass

    def kill(task, record):
        if task == 1:
            raise Killed

    out = tmp_path / "resumed"
    with pytest.raises(Killed):
        run_continual(_config(world, out, teir=TeirConfig.parse("both")), on_task=kill)
    assert len(snapshot.read(out / "extension").record["tasks"]) == 2  # the state after de stands
    with pytest.raises(MlclipError, match=r"unfinished \(2 of 3 languages\) .* pass --resume"):
        run_continual(_config(world, out, teir=TeirConfig.parse("both")))
    resumed = run_continual(_config(world, out, teir=TeirConfig.parse("both"), resume=True))
    assert resumed.resumed_from == 2
    for name in ("weights.safetensors", "tokenizer.json", "usage.safetensors"):
        assert (out / "extension" / name).read_bytes() == (teir_run.extension / name).read_bytes(), name
    with pytest.raises(MlclipError, match="holds a finished run"):
        run_continual(_config(world, out, teir=TeirConfig.parse("both")))


def test_a_swap_killed_halfway_is_recovered(world, teir_run, tmp_path):
    folder = tmp_path / "run" / "extension"
    snapshot.keep_copy(teir_run.extension, folder)
    snapshot.keep_copy(teir_run.extension, folder.parent / ".extension.next")
    folder.rename(folder.parent / ".extension.old")  # killed between the two renames
    snapshot.recover(folder)
    assert snapshot.exists(folder) and not (folder.parent / ".extension.old").exists()
    (folder.parent / ".extension.next").mkdir()  # killed while writing the next state
    snapshot.recover(folder)
    assert not (folder.parent / ".extension.next").exists() and snapshot.exists(folder)


@pytest.mark.parametrize("learner", [m for m in learner_names() if m != "cll-clip"])
def test_every_baseline_runs_on_the_same_runner(world, tmp_path, learner):
    result = run_continual(_config(world, tmp_path / learner, order=("de", "ru"), learner=learner,
                                   loop=replace(LOOP, steps=3)))
    assert set(result.summary["metrics"]["mean_recall"]["matrix"][-1]) != {None}
    weights = snapshot.read(result.extension).weights
    if learner == "mla":
        assert any(k.startswith("acquirers.ru.") for k in weights)
    if learner == "full-ft":
        assert any(k.startswith("tower_copy.blocks.") for k in weights)
    if learner == "joint":
        assert len(result.tasks) == 1 and result.summary["metrics"]["mean_recall"]["final_f"] is None
    load_encoder(str(result.extension)).encode_texts(_captions(world, "ru", "test")[:4], "ru")


def test_extend_adds_one_language_with_the_run_settings(world, teir_run, tmp_path):
    folder = tmp_path / "run" / "extension"
    snapshot.keep_copy(teir_run.extension, folder)
    result = extend_continual(ExtendConfig(extension=folder, language="fr", manifest=world["manifest"],
                                           features_root=world["root"] / "features", test_manifest=world["test"]))
    assert result.order == ["en", "de", "ru", "fr"] and len(result.tasks) == 4
    state = snapshot.read(folder)
    assert state.info["languages"] == ["en", "de", "ru", "fr"] and state.info["teir"]["reg"] is True
    for language, steps in (("fr", 3), ("de", None)):  # learnt again (other steps), or not the last one
        with pytest.raises(MlclipError, match=f"already learnt '{language}'"):
            extend_continual(ExtendConfig(extension=folder, language=language, manifest=world["manifest"],
                                          features_root=world["root"] / "features", steps=steps))
    # the same command again (a rerun after a kill once the state was in place): nothing to do
    again = extend_continual(ExtendConfig(extension=folder, language="fr", manifest=world["manifest"],
                                          features_root=world["root"] / "features"))
    assert again.resumed_from == 4 and snapshot.read(folder).weights["table"].equal(state.weights["table"])


@pytest.mark.parametrize("order, message", [
    (("de", "ru", "de"), "names de more than once"),
    (("de", "xx"), "no train rows in language 'xx'"),
    ((), "name the languages to learn"),
])
def test_bad_orders_are_one_clear_error(world, tmp_path, order, message):
    with pytest.raises(MlclipError, match=message):
        run_continual(_config(world, tmp_path / "bad", order=order))
    assert not (tmp_path / "bad" / "extension").exists()


def test_corrupt_or_foreign_extensions_are_refused(world, teir_run, tmp_path):
    folder = tmp_path / "copy"
    snapshot.keep_copy(teir_run.extension, folder)
    weights = folder / "weights.safetensors"
    weights.write_bytes(weights.read_bytes()[:-8] + b"corrupt!")
    with pytest.raises(MlclipError, match="weights.safetensors: missing or corrupt"):
        load_encoder(str(folder))
    info = json.loads((teir_run.extension / "extension.json").read_text())
    foreign = tmp_path / "foreign"
    snapshot.keep_copy(teir_run.extension, foreign)
    (foreign / "extension.json").write_text(json.dumps({**info, "method": "mla"}))
    with pytest.raises(MlclipError):
        extend_continual(ExtendConfig(extension=foreign, language="fr", manifest=world["manifest"],
                                      features_root=world["root"] / "features"))


def test_cli_continual_extend_and_bench(world, run_cli, tmp_path):
    out = tmp_path / "cli-run"
    common = ["--data", str(world["manifest"]), "--test", str(world["test"]), "--model", world["model"]]
    done = run_cli("continual", "--order", "en,de", "--teir", "--steps", "3", "--batch-size", "16", "--out", str(out), *common)
    assert done.code == 0, done.err
    assert "image_retrieval_recall@1: AA" in done.out and (out / "results.json").is_file()
    assert json.loads((out / "extension" / "extension.json").read_text())["teir"]["init"] is True  # bare --teir = both
    again = run_cli("continual", "--order", "en,de", "--teir", "--steps", "3", "--batch-size", "16", "--out", str(out), *common)
    assert again.code == 1 and "pass --resume to reuse it" in again.err and "Traceback" not in again.err
    added = run_cli("extend", "--method", "cll-clip", "--lang", "ru", "--extension", str(out / "extension"),
                    "--data", str(world["manifest"]), "--test", str(world["test"]), "--steps", "3")
    assert added.code == 0, added.err
    bench = run_cli("bench", "xtd", "--manifest", str(world["test"]), "--langs", "en,ru",
                    "--model", str(out / "extension"))
    assert bench.code == 0, bench.err
    refused = run_cli("packs", "remove", "de", "--extension", str(out / "extension"))
    assert refused.code == 1 and "cannot be removed one by one" in refused.err
    wrong = run_cli("continual", "--order", "en,de", "--teir", "sometimes", "--out", str(tmp_path / "x"), *common)
    assert wrong.code == 1 and "unknown --teir 'sometimes'" in wrong.err


def test_a_saved_run_matches_across_a_change_of_teir_defaults_only_where_teir_acts(tmp_path):
    """Runs saved before `balanced` became the default recorded freq "update": a plain run (TEIR's
    regulariser off, so the rule changes nothing) is still the same run; a TEIR run is not, and
    the refusal names what differs."""
    import dataclasses
    import json

    from mlclip_cli.continual.runner import ContinualConfig, _differences, _fingerprint

    def config(teir):
        return ContinualConfig(manifest=tmp_path / "m.parquet", out=tmp_path / "run", order=("en", "de"),
                               features_root=tmp_path / "features", teir=teir)

    def saved_by_older_version(teir):
        keys = json.loads(_fingerprint(config(teir)))
        keys["teir"] = dataclasses.asdict(dataclasses.replace(teir, freq="update"))
        return json.dumps(keys, sort_keys=True)

    plain, both = TeirConfig.parse("none"), TeirConfig.parse("both")
    assert _differences(saved_by_older_version(plain), config(plain)) == []
    assert _differences(saved_by_older_version(both), config(both)) == ["teir"]
    assert _differences(_fingerprint(config(both)), config(both)) == []
    assert _differences(_fingerprint(config(both)), dataclasses.replace(config(both), order=("en", "fr"))) == ["order"]
