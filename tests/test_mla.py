"""MLA on a tiny world with an untrained micro CLIP: the frozen parts stay frozen, zero acquirers
are the identity, packs are independent and checked, training learns and resumes exactly."""

import hashlib
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from mlclip_cli.artifacts import manifest_from_rows, read_manifest, write_manifest
from mlclip_cli.encoders import FrozenClip
from mlclip_cli.loading import load_encoder
from mlclip_cli.errors import MlclipError
from mlclip_cli.metrics import retrieval_metrics
from mlclip_cli.core import extension as folder_format
from mlclip_cli.mla.method import MlaConfig, extend_mla, train_mla
from mlclip_cli.mla.model import MlaTextEncoder
from mlclip_cli.mla.tokenizer import extend_vocabulary, train_bpe
from mlclip_cli.mla.train import LoopConfig, StageConfig
from mlclip_cli.models.clip import create_untrained

from conftest import Killed, kill_at, world_with_micro_clip

LOOP = LoopConfig(stages="nlt,le", nlt=StageConfig(24, 5e-3, 0.1), le=StageConfig(6, 1e-3, 0.1), batch_size=16,
                  eval_every=1000, checkpoint_every=5, checkpoint_seconds=None)  # checkpoints by step


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return world_with_micro_clip(tmp_path_factory.mktemp("mla"), 48, 12, 10)


def _config(world, out, languages=("de", "ru"), **changes):
    return MlaConfig(manifest=world["manifest"], out=out, languages=languages, features_root=world["root"] / "features",
                     model=world["model"], vocab_size=300, loop=changes.pop("loop", LOOP), **changes)


def _hashes(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def extension(world, tmp_path_factory):
    out = tmp_path_factory.mktemp("ext") / "mla"
    result = train_mla(_config(world, out))
    return {"out": out, "result": result}


def _captions(world, language, split="val"):
    table = read_manifest(world["manifest"]).to_pandas()
    return table[(table.language == language) & (table.split == split)].caption.tolist()


def test_zero_acquirers_with_clip_token_table_are_exactly_the_frozen_tower(world):
    base = FrozenClip.load(world["model"], "cpu")
    model = base.clip.model
    encoder = MlaTextEncoder(model, model.token_embedding.weight.shape[0])
    with torch.no_grad():
        encoder.shared.table.copy_(model.token_embedding.weight)
    encoder.add_pack("xx")
    torch.nn.init.normal_(encoder.packs["xx"].acquirers[0].down.weight)  # W_down is anything: W_up = 0
    tokens = base.clip.tokenizer(_captions(world, "en"))
    lengths = tokens.argmax(dim=-1) + 1  # CLIP's EOS has the largest id
    with torch.no_grad():
        frozen = model.encode_text(tokens)
        full = encoder(tokens, lengths, [("xx", 0, len(tokens))])
        trimmed = encoder(tokens[:, :int(lengths.max())], lengths, [("xx", 0, len(tokens))])
    assert torch.equal(full, frozen)
    torch.testing.assert_close(trimmed, frozen, atol=1e-5, rtol=0)  # the trimmed context: equal up to rounding


def test_training_never_changes_the_frozen_clip_and_lowers_the_nlt_loss(world, tmp_path):
    before = {k: v.clone() for k, v in FrozenClip.load(world["model"], "cpu").clip.model.state_dict().items()}
    result = train_mla(_config(world, tmp_path / "mla", loop=replace(LOOP, stages="nlt", checkpoint_every=6)))
    losses = [loss for stage, _, loss in result.loop.history]
    assert losses[-1] < losses[0] * 0.8
    after = FrozenClip.load(world["model"], "cpu").clip.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    extension = folder_format.read_extension(tmp_path / "mla")
    assert extension.languages == ["de", "ru"] and not (tmp_path / "mla" / "state").exists()
    card = extension.cards["de"]
    assert card["base_identity"].startswith("mlclip-micro@sha256:") and card["stages"] == "nlt"
    assert card["parameters"] == sum(p.numel() for p in MlaTextEncoder(
        FrozenClip.load(world["model"], "cpu").clip.model, 300).add_pack("de").parameters())


def test_english_goes_through_the_untouched_frozen_tower(world, extension):
    frozen = FrozenClip.load(world["model"], "cpu")
    extended = load_encoder(str(extension["out"]), "cpu")
    english = _captions(world, "en")
    assert np.array_equal(frozen.encode_texts(english, "en"), extended.encode_texts(english, "en"))
    assert extended.text_identity("en") == frozen.text_identity("en")
    assert extended.text_identity("de") != frozen.text_identity("de")
    german = _captions(world, "de")
    assert not np.allclose(frozen.encode_texts(german, "de"), extended.encode_texts(german, "de"))


def test_le_raises_recall_above_zero_shot(world, tmp_path):
    result = train_mla(_config(world, tmp_path / "le", languages=("de",),
                               loop=replace(LOOP, stages="le", le=StageConfig(40, 1e-2, 0.1))))
    table = read_manifest(world["manifest"]).to_pandas()
    rows = table[(table.language == "de") & (table.split == "train")]
    images = rows.drop_duplicates("image_id")
    frozen = FrozenClip.load(world["model"], "cpu")
    image = frozen.encode_images(images.image_path.tolist())
    caption_image = rows.image_id.map({k: i for i, k in enumerate(images.image_id)}).to_numpy()
    zero_shot = retrieval_metrics(frozen.encode_texts(rows.caption.tolist(), "de"), image, caption_image)
    learnt = retrieval_metrics(load_encoder(str(result.out), "cpu").encode_texts(rows.caption.tolist(), "de"), image, caption_image)
    assert learnt["mean_recall"] > zero_shot["mean_recall"] + 10


def test_extend_leaves_every_other_file_and_output_bit_identical(world, extension, tmp_path):
    folder = tmp_path / "mla"
    shutil.copytree(extension["out"], folder)
    before = _hashes(folder)
    earlier = load_encoder(str(folder), "cpu")
    german, russian = _captions(world, "de"), _captions(world, "ru")
    outputs = (earlier.encode_texts(german, "de"), earlier.encode_texts(russian, "ru"))
    result = extend_mla(_config(world, folder, languages=("ko",)))
    after = _hashes(folder)
    assert {k: v for k, v in after.items() if not k.startswith("packs/ko.")} == before
    assert {"packs/ko.json", "packs/ko.safetensors", "packs/ko.tokenizer.json"} <= set(after)
    extended = load_encoder(str(folder), "cpu")
    assert extended.languages == ["de", "ko", "ru"]
    assert np.array_equal(extended.encode_texts(german, "de"), outputs[0])
    assert np.array_equal(extended.encode_texts(russian, "ru"), outputs[1])
    # Korean was never seen by the shared tokenizer: its pack brought tokens of its own
    assert result.cards["ko"]["extra_tokens"] > 0
    shared = extended.tokenizers["de"]
    assert extended.tokenizers["ko"].ids(german, 64) == shared.ids(german, 64)
    with pytest.raises(MlclipError, match="already has a 'ko' pack; pass --replace"):
        extend_mla(_config(world, folder, languages=("ko",)))


def test_vocabulary_extension_keeps_every_earlier_id():
    shared = train_bpe(["ein roter Kreis", "ein blaues Quadrat", "красный круг"] * 20, 300)
    korean = ["빨간 원이 있는 그림", "파란 사각형"] * 20
    extended, added = extend_vocabulary(shared, korean, 50)
    assert added > 0 and extended.vocab_size == shared.vocab_size + added
    earlier = ["ein roter Kreis", "красный круг", "ein Quadrat"]
    assert extended.ids(earlier, 64) == shared.ids(earlier, 64)
    assert {t: i for t, i in extended.tokenizer.get_vocab().items() if i < shared.vocab_size} == shared.tokenizer.get_vocab()
    assert shared.byte_fallback_rate(korean) > 0.5 and extended.byte_fallback_rate(korean) < 0.05
    assert len(extended.ids(korean[:1], 64)[0]) < len(shared.ids(korean[:1], 64)[0])


def test_mixed_language_batches_equal_one_language_at_a_time(world, extension):
    encoder = load_encoder(str(extension["out"]), "cpu")
    german, russian = _captions(world, "de"), _captions(world, "ru")
    mixed = encoder.encode_mixed([c for pair in zip(german, russian) for c in pair], ["de", "ru"] * len(german))
    np.testing.assert_allclose(mixed[0::2], encoder.encode_texts(german, "de"), atol=1e-6)
    np.testing.assert_allclose(mixed[1::2], encoder.encode_texts(russian, "ru"), atol=1e-6)


def test_a_language_without_a_pack_is_refused_unless_falling_back_to_english(world, extension):
    with pytest.raises(MlclipError, match="no language pack for 'ja'.*--fallback english"):
        load_encoder(str(extension["out"]), "cpu").encode_texts(["赤い円"], "ja")
    fallback = load_encoder(str(extension["out"]), "cpu", fallback="english")
    frozen = FrozenClip.load(world["model"], "cpu")
    assert np.array_equal(fallback.encode_texts(["赤い円"], "ja"), frozen.encode_texts(["赤い円"], "en"))


def test_foreign_or_corrupt_packs_are_refused(world, extension, tmp_path):
    other = train_mla(_config(world, tmp_path / "other", languages=("de",), loop=replace(LOOP, stages="nlt", seed=1,
                                                                                          nlt=StageConfig(2, 1e-3))))
    folder = tmp_path / "mla"
    shutil.copytree(extension["out"], folder)
    for suffix in (".json", ".safetensors"):  # another extension's German pack dropped in
        shutil.copy(other.out / "packs" / f"de{suffix}", folder / "packs" / f"de{suffix}")
    encoder = load_encoder(str(folder), "cpu")  # the other languages stay usable: only German is refused
    assert "de" not in encoder.languages and encoder.encode_texts(["собака"], "ru").shape[0] == 1
    with pytest.raises(MlclipError, match="pack .de. .* was built for another (tokenizer|shared embedding block)"):
        encoder.encode_texts(["ein Hund"], "de")
    shutil.copy(extension["out"] / "packs" / "de.json", folder / "packs" / "de.json")
    with pytest.raises(MlclipError, match="de.safetensors: missing or corrupt"):
        load_encoder(str(folder), "cpu").encode_texts(["ein Hund"], "de")


def test_resume_after_a_kill_gives_the_same_weights(world, tmp_path):
    straight = train_mla(_config(world, tmp_path / "straight"))

    with pytest.raises(Killed):
        train_mla(_config(world, tmp_path / "resumed"), on_step=kill_at(13, "nlt"))
    assert not folder_format.is_extension(tmp_path / "resumed")  # nothing half-written is visible
    with pytest.raises(MlclipError, match="holds an unfinished run .* pass --resume"):
        train_mla(_config(world, tmp_path / "resumed"))
    resumed = train_mla(_config(world, tmp_path / "resumed", resume=True))
    assert resumed.loop.resumed_from == "stage 1 of 2 (nlt) at step 10"
    for name in ("shared/embedding.safetensors", "packs/de.safetensors", "packs/ru.safetensors"):
        assert (tmp_path / "straight" / name).read_bytes() == (tmp_path / "resumed" / name).read_bytes(), name


@pytest.mark.parametrize("languages, stages, message", [
    (("en",), "nlt", "English goes through the frozen CLIP unchanged"),
    (("xx",), "nlt", "no train rows in language 'xx'"),
    (("de",), "le+nlt", "unknown --stages 'le\\+nlt'"),
])
def test_bad_training_input_is_one_clear_error(world, tmp_path, languages, stages, message):
    with pytest.raises(MlclipError, match=message):
        train_mla(_config(world, tmp_path / "bad", languages=languages, loop=replace(LOOP, stages=stages)))
    assert not folder_format.is_extension(tmp_path / "bad")


def test_nlt_without_parallel_english_is_refused(world, tmp_path):
    table = read_manifest(world["manifest"]).to_pandas()
    table = table[table.language != "en"]
    path = write_manifest(manifest_from_rows(table.to_dict("records")), tmp_path / "no-en.parquet")
    with pytest.raises(MlclipError, match="parallel English caption"):
        train_mla(replace(_config(world, tmp_path / "x"), manifest=path))


def test_cli_train_extend_packs_and_bench(world, run_cli, tmp_path):
    ext = tmp_path / "cli-ext"
    common = ("--data", str(world["manifest"]), "--model", world["model"], "--nlt-steps", "4", "--le-steps", "2",
              "--batch-size", "8", "--vocab-size", "300")
    result = run_cli("train", "--method", "mla", "--langs", "de,ru", "--out", str(ext), *common)
    assert result.code == 0, result.err
    assert "MLA packs" in result.out
    result = run_cli("train", "--method", "nope", "--langs", "de", "--out", str(tmp_path / "x"), *common)
    assert result.code == 1 and result.err.startswith("error: unknown method 'nope'")
    result = run_cli("extend", "--lang", "ko", "--data", str(world["manifest"]), "--extension", str(ext),
                     "--nlt-steps", "3", "--le-steps", "2", "--batch-size", "8")
    assert result.code == 0, result.err
    result = run_cli("extend", "--lang", "ko", "--data", str(world["manifest"]), "--extension", str(ext))
    assert result.code == 1 and "already has a 'ko' pack" in result.err and "Traceback" not in result.err
    listed = run_cli("packs", "list", "--extension", str(ext))
    assert listed.code == 0 and all(lang in listed.out for lang in ("de", "ru", "ko"))
    shown = run_cli("packs", "show", "ko", "--extension", str(ext))
    assert shown.code == 0 and '"extra_tokens"' in shown.out
    removed = run_cli("packs", "remove", "ru", "--extension", str(ext))
    assert removed.code == 0 and not (ext / "packs" / "ru.safetensors").exists()
    assert folder_format.read_extension(ext).languages == ["de", "ko"]


def test_le_without_images_is_refused(world, tmp_path):
    table = read_manifest(world["manifest"]).to_pandas()
    table["image_path"] = None
    path = write_manifest(manifest_from_rows(table.to_dict("records")), tmp_path / "no-images.parquet")
    with pytest.raises(MlclipError, match="has an image, which LE needs"):
        train_mla(replace(_config(world, tmp_path / "x", loop=replace(LOOP, stages="le")), manifest=path))


def test_replace_retrains_only_that_pack(world, extension, tmp_path):
    folder = tmp_path / "mla"
    shutil.copytree(extension["out"], folder)
    before = _hashes(folder)
    extend_mla(_config(world, folder, languages=("ru",), replace=True, loop=replace(LOOP, seed=3)))
    after = _hashes(folder)
    assert after["packs/ru.safetensors"] != before["packs/ru.safetensors"]
    others = lambda hashes: {k: v for k, v in hashes.items() if not k.startswith("packs/ru.")}  # noqa: E731
    assert others(after) == others(before)


def test_vit_b_32_text_tower_is_wrapped_the_same_way():
    model = create_untrained("ViT-B-32").eval()  # offline: the architecture, random weights
    encoder = MlaTextEncoder(model, model.token_embedding.weight.shape[0])
    assert encoder.hidden == 256 and len(encoder.tower.blocks) == 12
    pack = encoder.add_pack("de")
    assert sum(p.numel() for p in pack.parameters()) == 3_154_944  # the paper's "3.14 MB" of acquirers
    with torch.no_grad():
        encoder.shared.table.copy_(model.token_embedding.weight)
        import open_clip
        tokens = open_clip.get_tokenizer("ViT-B-32")(["a red circle", "two small blue squares on the left"])
        lengths = tokens.argmax(dim=-1) + 1
        assert torch.equal(encoder(tokens, lengths, [("de", 0, 2)]), model.encode_text(tokens))


def test_bench_with_an_extension_reuses_the_frozen_image_features(world, extension, tmp_path):
    from mlclip_cli.bench.run import BenchConfig, run_bench, slug
    from mlclip_cli.datasets.base import PrepareConfig
    from mlclip_cli.datasets.prepare import prepare_dataset

    manifest = prepare_dataset("xtd10", PrepareConfig(root=world["root"] / "world" / "xtd10"), tmp_path / "xtd10.parquet").manifest
    config = BenchConfig(benchmark="xtd", manifest=manifest, out_dir=tmp_path / "results", features_dir=tmp_path / "features",
                         languages=("en", "de", "ru"), model=world["model"])
    frozen = run_bench(config).result
    extended = run_bench(replace(config, model=str(extension["out"]))).result
    assert extended["text_encoder"] == "mla" and frozen["text_encoder"] == "frozen"
    assert extended["languages"]["en"]["metrics"] == frozen["languages"]["en"]["metrics"]  # English untouched
    folders = sorted(p for p in (tmp_path / "features" / "xtd10" / "test").iterdir())
    assert len(folders) == 2  # the frozen model's, and the extension's text features
    mla_folder = next(p for p in folders if p.name.endswith(slug(f"+mla-{extension['result'].cards['de']['shared_sha256'][:12]}")))
    assert not list(mla_folder.glob("image-*.parquet")) and list(mla_folder.glob("text-de-*.parquet"))


def test_an_extension_from_a_newer_mlclip_or_of_another_kind_is_refused_in_one_line(extension, tmp_path):
    import json
    import shutil

    from mlclip_cli.core.extension import read_extension
    from mlclip_cli.errors import ArtifactError

    copy = tmp_path / "copy"
    shutil.copytree(extension["out"], copy)
    index = json.loads((copy / "extension.json").read_text())
    (copy / "extension.json").write_text(json.dumps({**index, "schema_version": 99}))
    with pytest.raises(ArtifactError, match=r"version 99, newer than this mlclip .* upgrade mlclip"):
        read_extension(copy)
    (copy / "extension.json").write_text(json.dumps({**index, "artifact": "mlclip-index"}))
    with pytest.raises(ArtifactError, match="a 'mlclip-index', not an extension index"):
        read_extension(copy)
    legacy = {key: value for key, value in index.items() if key not in ("artifact", "schema_version")}
    (copy / "extension.json").write_text(json.dumps(legacy))  # a folder older than the keys: version 1
    assert read_extension(copy).languages == ["de", "ru"]
