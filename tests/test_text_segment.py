"""Chinese and Japanese split into words before BPE (`--cjk words`, the default) or into characters
(`--cjk chars`): the segmenters, the choice recorded in an MLA extension, and every tokenizer of a
segmented language segmenting before it encodes (training, bench, search and serve alike)."""

import json

import numpy as np
import pytest

from mlclip_cli.errors import MlclipError
from mlclip_cli.loading import load_encoder
from mlclip_cli.mla.method import MlaConfig, extension_cjk, open_extension, train_mla
from mlclip_cli.mla.tokenizer import train_bpe
from mlclip_cli.mla.train import LoopConfig, StageConfig
from mlclip_cli.text_segment import check_mode, segment, segmenter_for

from conftest import world_with_micro_clip

LOOP = LoopConfig(stages="nlt", nlt=StageConfig(4, 5e-3, 0.1), le=StageConfig(1, 1e-3, 0.1), batch_size=16,
                  eval_every=1000, checkpoint_every=1000, checkpoint_seconds=None)


def test_the_segmenters_give_the_words_a_reader_sees():
    assert segment(["左上角有一个黄色小菱形"], "zh", "words") == ["左上角 有 一个 黄色 小 菱形"]
    assert segment(["左上に黄色い小さなひし形があります"], "ja", "words") == ["左上 に 黄色い 小さな ひし形 が あり ます"]
    assert segment(["ein roter Kreis"], "de", "words") == ["ein roter Kreis"]  # spaced scripts are left alone
    assert segment(["黄色小菱形"], "zh", "chars") == ["黄色小菱形"]
    assert segmenter_for("ko", "words") is None
    with pytest.raises(MlclipError, match="unknown --cjk 'word' \\(choose words, chars\\)"):
        check_mode("word")


def test_bpe_within_words_keeps_a_word_whole_and_the_character_split_does_not():
    texts = ["左上角有一个黄色小菱形", "一个白色小菱形在黄色大菱形左侧"] * 30
    words = train_bpe(segment(texts, "zh", "words"), 300, split_han=False).for_language("zh", "words")
    chars = train_bpe(texts, 300)
    word_pieces = words.ids(["黄色小菱形"], 64)[0][1:-1]
    char_pieces = chars.ids(["黄色小菱形"], 64)[0][1:-1]
    assert len(word_pieces) == 3 and len(char_pieces) == 5  # 黄色 / 小 / 菱形 against one token a character
    assert words.for_language("de", "words") is words  # no segmenter: the same tokenizer


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return world_with_micro_clip(tmp_path_factory.mktemp("cjk"), 40, 8, 6)


@pytest.mark.parametrize("cjk", ["words", "chars"])
def test_an_extension_records_its_choice_and_encodes_with_it(world, tmp_path, cjk):
    out = tmp_path / "ext"
    train_mla(MlaConfig(manifest=world["manifest"], out=out, languages=("de", "zh"), model=world["model"],
                        features_root=world["root"] / "features", vocab_size=300, loop=LOOP, cjk=cjk))
    info = json.loads((out / "extension.json").read_text())
    assert extension_cjk(info) == cjk
    shared = json.loads((out / "shared" / "tokenizer.json").read_text())
    assert ("Split" in json.dumps(shared["pre_tokenizer"])) == (cjk == "chars")
    _, _, _, tokenizers, raw = open_extension(out, "cpu")
    caption = "一个黄色小菱形"
    expected = segment([caption], "zh", cjk)[0]
    assert tokenizers["zh"].ids([caption], 64) == raw.ids([expected], 64)
    assert tokenizers["de"].segment is None
    encoder = load_encoder(str(out), "cpu")  # what bench, search and serve load
    np.testing.assert_array_equal(encoder.encode_texts([caption], "zh"), encoder.encode_mixed([caption], ["zh"]))


def test_an_extension_written_before_the_choice_splits_characters():
    assert extension_cjk({"method": "mla"}) == "chars"
