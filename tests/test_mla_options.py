"""MLA's ablation options (the paper's Tables 5, 7, 8 and 9): linear / no acquirers, the CLIP
embedding init, MSE or InfoNCE in each stage, and a cap on the training pairs. Every default is
today's behaviour, and an extension written before these options still loads."""

import json
import shutil
from dataclasses import replace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from mlclip_cli.artifacts import read_manifest
from mlclip_cli.encoders import FrozenClip
from mlclip_cli.loading import load_encoder
from mlclip_cli.errors import MlclipError
from mlclip_cli.core import extension as folder_format
from mlclip_cli.core.pairs import PairData
from mlclip_cli.mla.method import MlaConfig, _init_shared, extend_mla, limit_pairs, train_mla
from mlclip_cli.core.acquirer import Acquirer
from mlclip_cli.mla.model import MlaTextEncoder
from mlclip_cli.mla.tokenizer import train_bpe
from mlclip_cli.core.encoding import encode_grouped
from mlclip_cli.mla.train import LoopConfig, StageConfig, _fingerprint, losses_for

from conftest import Killed, kill_at, world_with_micro_clip

LOOP = LoopConfig(stages="nlt", nlt=StageConfig(6, 5e-3, 0.1), le=StageConfig(3, 1e-3, 0.1), batch_size=16,
                  eval_every=1000, checkpoint_every=3, checkpoint_seconds=None)  # checkpoints by step


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return world_with_micro_clip(tmp_path_factory.mktemp("mla-options"), 32, 6, 4)


def _config(world, out, languages=("de",), **changes):
    return MlaConfig(manifest=world["manifest"], out=out, languages=languages, features_root=world["root"] / "features",
                     model=world["model"], vocab_size=300, loop=changes.pop("loop", LOOP), **changes)


@pytest.fixture(scope="module")
def trained(world, tmp_path_factory):
    """One small German extension per acquirer kind."""
    root = tmp_path_factory.mktemp("kinds")
    return {kind: train_mla(_config(world, root / kind, acquirer=kind)) for kind in ("mlp", "linear", "none")}


def _captions(world, language, split="val"):
    table = read_manifest(world["manifest"]).to_pandas()
    return table[(table.language == language) & (table.split == split)].caption.tolist()


def _count(module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_linear_acquirer_has_the_mlps_parameters_and_is_affine():
    torch.manual_seed(0)
    mlp, linear = Acquirer(16, 8, "mlp"), Acquirer(16, 8, "linear")
    assert _count(mlp) == _count(linear) == 2 * 16 * 8 + 16 + 8
    for acquirer in (mlp, linear):
        torch.nn.init.normal_(acquirer.up.weight)
        torch.nn.init.normal_(acquirer.up.bias)
    x, zero = torch.randn(5, 16), torch.zeros(1, 16)
    with torch.no_grad():
        def delta(f, v):
            return f(v) - v

        offset = delta(linear, zero)
        for a in (2.0, -0.5, 3.0):  # f(a x) - a x - f(0) = a (f(x) - x - f(0))
            torch.testing.assert_close(delta(linear, a * x) - offset, a * (delta(linear, x) - offset), atol=1e-5, rtol=1e-5)
        mlp_offset = delta(mlp, zero)
        assert not torch.allclose(delta(mlp, -1.0 * x) - mlp_offset, -1.0 * (delta(mlp, x) - mlp_offset), atol=1e-3)
        torch.nn.init.zeros_(linear.down.bias)
        torch.nn.init.zeros_(linear.up.bias)
        for a in (2.0, -0.5):  # without biases, exactly linear: f(a x) - a x = a (f(x) - x)
            torch.testing.assert_close(delta(linear, a * x), a * delta(linear, x), atol=1e-5, rtol=1e-5)


def test_pack_sizes_per_acquirer_kind(world):
    model = FrozenClip.load(world["model"], "cpu").clip.model
    sizes = {kind: _count(MlaTextEncoder(model, 300, acquirer=kind).add_pack("de")) for kind in ("mlp", "linear", "none")}
    assert sizes["mlp"] == sizes["linear"] > 0 and sizes["none"] == 0
    none = MlaTextEncoder(model, 300, acquirer="none")
    none.add_pack("de")
    assert {name.split(".")[0] for name, _ in none.named_parameters()} == {"shared"}  # only the table trains
    assert _count(none.add_pack("ko", extra_rows=7)) == 7 * model.transformer.width
    with pytest.raises(MlclipError, match="unknown --acquirer 'relu'"):
        MlaTextEncoder(model, 300, acquirer="relu")


def test_none_trains_only_the_shared_table(trained):
    result = trained["none"]
    info = folder_format.read_extension(result.out).info
    assert info["encoder"]["acquirer"] == "none"
    card = result.cards["de"]
    assert card["acquirer"] == "none" and card["parameters"] == 0
    assert load_file(str(result.out / "packs" / "de.safetensors")) == {}
    losses = [loss for _, _, loss in result.loop.history]
    assert len(losses) == 2 and losses[-1] < losses[0]  # the table alone still learns


@pytest.mark.parametrize("kind", ["linear", "none"])
def test_an_extension_reloads_with_its_acquirer_kind_and_the_same_embeddings(world, trained, kind):
    out = trained[kind].out
    loaded = load_encoder(str(out), "cpu")
    assert loaded.mla.acquirer == kind
    german = _captions(world, "de")
    embeddings = loaded.encode_texts(german, "de")
    np.testing.assert_array_equal(embeddings, load_encoder(str(out), "cpu").encode_texts(german, "de"))

    def by_hand(as_kind):  # the saved weights in a fresh encoder of kind `as_kind`
        base = FrozenClip.load(world["model"], "cpu")
        shape = folder_format.read_extension(out).info["encoder"]
        encoder = MlaTextEncoder(base.clip.model, shape["vocab_size"], shape["emb_dim"], shape["hidden"], as_kind)
        encoder.shared.load_state_dict(load_file(str(out / "shared" / "embedding.safetensors")))
        encoder.add_pack("de").load_state_dict(load_file(str(out / "packs" / "de.safetensors")))
        with torch.no_grad():
            emb = encode_grouped(encoder.eval(), loaded.tokenizers, german, np.array(["de"] * len(german)), torch.device("cpu"))
        return F.normalize(emb, dim=-1).numpy()

    np.testing.assert_allclose(by_hand(kind), embeddings, atol=1e-6)
    if kind == "linear":  # the same weights through ReLU acquirers give other embeddings: the kind is honoured
        assert np.abs(by_hand("mlp") - embeddings).max() > 1e-5


def test_extend_adds_a_pack_of_the_extensions_kind(world, trained, tmp_path):
    folder = tmp_path / "linear"
    shutil.copytree(trained["linear"].out, folder)
    result = extend_mla(_config(world, folder, languages=("ru",), loop=replace(LOOP, nlt=StageConfig(2, 1e-3))))
    card = result.cards["ru"]
    assert card["acquirer"] == "linear"
    de_keys = set(load_file(str(folder / "packs" / "de.safetensors")))
    assert set(load_file(str(folder / "packs" / "ru.safetensors"))) - {"extra_rows"} == de_keys
    with pytest.raises(MlclipError, match="acquirers of kind 'linear'.*not 'none'"):
        extend_mla(_config(world, folder, languages=("ko",), acquirer="none"))

    folder = tmp_path / "none"
    shutil.copytree(trained["none"].out, folder)
    result = extend_mla(_config(world, folder, languages=("ko",), loop=replace(LOOP, nlt=StageConfig(2, 1e-3))))
    card = result.cards["ko"]  # Korean's own rows are all its pack has
    assert card["acquirer"] == "none" and card["extra_tokens"] > 0
    assert card["parameters"] == card["extra_tokens"] * folder_format.read_extension(folder).info["encoder"]["emb_dim"]
    assert load_encoder(str(folder), "cpu").encode_texts(_captions(world, "ko")[:4], "ko").shape[0] == 4


def test_clip_embedding_init_puts_clips_rows_of_each_tokens_text(world):
    base = FrozenClip.load(world["model"], "cpu")
    clip_tokenizer, weight = base.clip.tokenizer, base.clip.model.token_embedding.weight
    tokenizer = train_bpe(_captions(world, "de", "train") + _captions(world, "ru", "train"), 300)
    torch.manual_seed(0)
    encoder = MlaTextEncoder(base.clip.model, tokenizer.vocab_size)
    random_pad = encoder.shared.table[tokenizer.pad].detach().clone()
    count = _init_shared(encoder, tokenizer, base, "clip")
    table = encoder.shared.table.detach()
    checked = with_text = 0
    for token in range(tokenizer.vocab_size):
        text = tokenizer.tokenizer.decode([token], skip_special_tokens=False).strip()
        ids = clip_tokenizer.encode(text) if text and "\ufffd" not in text and token not in (tokenizer.sos, tokenizer.eos, tokenizer.pad) else []
        with_text += bool(ids)
        if len(ids) >= 2:  # a word CLIP splits: the row is the mean of its pieces' rows
            torch.testing.assert_close(table[token], weight[ids].mean(0))
            checked += 1
        elif len(ids) == 1:
            torch.testing.assert_close(table[token], weight[ids[0]])
    # every token with a text of its own was set (the rest are lone bytes of multi-byte characters)
    assert count == with_text > 100 and checked > 10
    assert torch.equal(table[tokenizer.sos], weight[clip_tokenizer.sot_token_id])
    assert torch.equal(table[tokenizer.eos], weight[clip_tokenizer.eot_token_id])
    assert torch.equal(table[tokenizer.pad], random_pad)  # no text of its own: left as it was
    narrow = MlaTextEncoder(base.clip.model, tokenizer.vocab_size, emb_dim=16)
    with pytest.raises(MlclipError, match="embedding-init clip needs the shared table as wide as the text tower"):
        _init_shared(narrow, tokenizer, base, "clip")


def _pair_data(rows=8, dim=6, seed=0):
    rng = np.random.default_rng(seed)
    unit = lambda a: (a / np.linalg.norm(a, axis=1, keepdims=True)).astype(np.float32)  # noqa: E731
    return PairData.of([f"c{i}" for i in range(rows)], np.array(["de"] * rows), unit(rng.normal(size=(rows, dim))),
                       unit(rng.normal(size=(rows, dim))), np.arange(rows))


@pytest.mark.parametrize("losses, default, other", [
    (("nlt",), {"nlt_loss": "mse"}, {"nlt_loss": "nce"}),
    (("le",), {"le_loss": "nce"}, {"le_loss": "mse"}),
])
def test_each_stage_objective_gives_a_finite_loss_and_a_gradient(losses, default, other):
    data = _pair_data()
    rows = np.arange(len(data))
    values = {}
    for name, kwargs in (("default", default), ("other", other)):
        student = torch.randn(len(rows), 6, generator=torch.Generator().manual_seed(1), requires_grad=True)
        loss = losses_for(student, rows, data, losses, 0.01, torch.device("cpu"), **kwargs)
        loss.backward()
        assert torch.isfinite(loss) and torch.isfinite(student.grad).all() and student.grad.abs().sum() > 0
        values[name] = loss.item()
    assert values["default"] == pytest.approx(losses_for(torch.randn(8, 6, generator=torch.Generator().manual_seed(1)),
                                                         rows, data, losses, 0.01, torch.device("cpu")).item())
    assert values["default"] != pytest.approx(values["other"])
    # the alternatives are what they claim: nce is InfoNCE, mse the squared distance of unit vectors
    student = F.normalize(torch.randn(8, 6, generator=torch.Generator().manual_seed(1)), dim=-1)
    target = torch.from_numpy(data.teacher if losses == ("nlt",) else data.image)
    if losses == ("nlt",):
        logits = student @ target.T / 0.01
        expected = (F.cross_entropy(logits, torch.arange(8)) + F.cross_entropy(logits.T, torch.arange(8))) / 2
    else:
        expected = (student - target).pow(2).sum(-1).mean()
    assert values["other"] == pytest.approx(expected.item(), rel=1e-5)
    with pytest.raises(MlclipError, match="unknown --(nlt|le)-loss 'l1'"):
        losses_for(student, rows, data, losses, 0.01, torch.device("cpu"), **{next(iter(other)): "l1"})


def test_new_loop_settings_enter_the_resume_fingerprint_only_off_their_defaults():
    assert "nlt_loss" not in _fingerprint(LoopConfig(), {}) and "le_loss" not in _fingerprint(LoopConfig(), {})
    assert _fingerprint(LoopConfig(nlt_loss="nce"), {}) != _fingerprint(LoopConfig(), {})
    assert _fingerprint(LoopConfig(le_loss="mse"), {}) != _fingerprint(LoopConfig(), {})


def test_resume_with_another_objective_is_refused(world, tmp_path):
    with pytest.raises(Killed):
        train_mla(_config(world, tmp_path / "run"), on_step=kill_at(4))
    with pytest.raises(MlclipError, match="used other settings"):
        train_mla(_config(world, tmp_path / "run", resume=True, loop=replace(LOOP, nlt_loss="nce")))


def test_max_pairs_keeps_a_deterministic_subset_per_language():
    rows = 30
    base = _pair_data(rows)
    data = PairData.of(base.captions + [f"r{i}" for i in range(rows)], np.array(["de"] * rows + ["ru"] * rows),
                       np.concatenate([base.teacher, base.teacher]), np.concatenate([base.image, base.image]),
                       np.arange(2 * rows))
    summary = {"rows": {"de": rows, "ru": rows}, "images": 2 * rows}
    limited, info = limit_pairs(data, summary, 5, seed=0)
    assert info["rows"] == {"de": 5, "ru": 5} and info["rows_available"] == summary["rows"] and info["max_pairs"] == 5
    assert len(limited) == 10 and info["images"] == 10
    again, _ = limit_pairs(data, summary, 5, seed=0)
    assert again.captions == limited.captions
    assert limit_pairs(data, summary, 5, seed=1)[0].captions != limited.captions
    for i, caption in enumerate(limited.captions):  # features travel with their captions
        j = data.captions.index(caption)
        assert np.array_equal(limited.teacher[i], data.teacher[j]) and limited.image_ids[i] == data.image_ids[j]
    assert sorted(limited.captions, key=data.captions.index) == limited.captions  # original order kept
    assert limit_pairs(data, summary, None, seed=0)[0] is data
    assert len(limit_pairs(data, summary, 1000, seed=0)[0]) == 2 * rows
    with pytest.raises(MlclipError, match="--max-pairs must be at least 1"):
        limit_pairs(data, summary, 0, seed=0)


def test_an_extension_json_without_the_new_keys_still_loads(world, trained, tmp_path):
    folder = tmp_path / "old"
    shutil.copytree(trained["mlp"].out, folder)
    german = _captions(world, "de")
    before = load_encoder(str(folder), "cpu").encode_texts(german, "de")
    path = folder / "extension.json"
    info = json.loads(path.read_text(encoding="utf-8"))
    assert info["encoder"].pop("acquirer") == "mlp" and info.pop("embedding_init") is None
    info.pop("embedding_init_rows")
    path.write_text(json.dumps(info), encoding="utf-8")
    old = load_encoder(str(folder), "cpu")
    assert old.mla.acquirer == "mlp"
    np.testing.assert_array_equal(old.encode_texts(german, "de"), before)
    extend_mla(_config(world, folder, languages=("ru",), loop=replace(LOOP, nlt=StageConfig(2, 1e-3))))
    assert folder_format.read_extension(folder).cards["ru"]["acquirer"] == "mlp"


def test_cli_ablation_options(world, run_cli, tmp_path):
    ext = tmp_path / "ext"
    common = ("--data", str(world["manifest"]), "--model", world["model"], "--stages", "nlt", "--nlt-steps", "2",
              "--batch-size", "8", "--vocab-size", "300")
    result = run_cli("train", "--method", "mla", "--langs", "de", "--out", str(ext), "--acquirer", "linear",
                     "--embedding-init", "clip", "--nlt-loss", "nce", "--max-pairs", "20", *common)
    assert result.code == 0, result.err
    extension = folder_format.read_extension(ext)
    assert extension.info["encoder"]["acquirer"] == "linear" and extension.info["embedding_init"] == "clip"
    assert extension.info["embedding_init_rows"] > 0
    card = extension.cards["de"]
    assert card["training"]["loop"]["nlt_loss"] == "nce" and card["training"]["loop"]["le_loss"] == "nce"
    assert card["training"]["data"]["rows"] == {"de": 20} and card["training"]["data"]["max_pairs"] == 20
    result = run_cli("extend", "--lang", "ru", "--data", str(world["manifest"]), "--extension", str(ext), "--stages", "nlt",
                     "--nlt-steps", "2", "--batch-size", "8", "--max-pairs", "12", "--nlt-loss", "nce")
    assert result.code == 0, result.err
    card = folder_format.read_extension(ext).cards["ru"]
    assert card["acquirer"] == "linear" and card["training"]["data"]["rows"] == {"ru": 12}
    for option, value, message in (("--acquirer", "relu", "unknown --acquirer 'relu' (choose mlp, linear, none)"),
                                   ("--nlt-loss", "l1", "unknown --nlt-loss 'l1' (choose mse, nce)"),
                                   ("--le-loss", "l1", "unknown --le-loss 'l1' (choose mse, nce)")):
        result = run_cli("train", "--method", "mla", "--langs", "de", "--out", str(tmp_path / "bad"), option, value, *common)
        assert result.code == 1 and result.err.strip() == f"error: {message}", result.err
    assert not (tmp_path / "bad").exists()
