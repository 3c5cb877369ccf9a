"""CLL-CLIP's dynamic vocabulary: continued BPE per language, protected text unchanged."""

from __future__ import annotations

import itertools
import json
from collections import Counter

import open_clip
import pytest

from mlclip_cli.continual.vocab import ClipVocabulary
from mlclip_cli.errors import ArtifactError, MlclipError
from mlclip_cli.models.clip import register_configs

CONTEXT = 64
COLOURS = ["красный", "синий", "зелёный", "жёлтый"]
SHAPES = ["круг", "квадрат", "треугольник"]
RELATIONS = ["слева от", "справа от", "над", "под"]
OF_COLOUR = ["красного", "синего", "зелёного", "жёлтого"]
OF_SHAPE = ["круга", "квадрата", "треугольника"]
RUSSIAN = [f"{c} {s} {r} {oc} {os}" for c, s, r, oc, os
           in itertools.product(COLOURS, SHAPES, RELATIONS, OF_COLOUR, OF_SHAPE)]
RUSSIAN_LONG = [" и ".join(RUSSIAN[i:i + 3]).capitalize() for i in range(0, 60, 3)]
CORPUS = RUSSIAN + RUSSIAN_LONG
ENGLISH = [f"a {c} {s} {r} a {oc} {os}" for c, s, r, oc, os in itertools.product(
    ["red", "blue"], ["circle", "square"], ["left of", "above"], ["green", "yellow"], ["triangle", "square"])]
ENGLISH += ["A photo of a dog.", "two cats sleeping on a sofa, next to a window"]


@pytest.fixture(scope="module")
def base():
    register_configs()
    return open_clip.get_tokenizer("mlclip-tiny")


@pytest.fixture(scope="module")
def russian(base):
    vocab = ClipVocabulary(base)
    learned = vocab.learn("ru", CORPUS, protected=ENGLISH)
    return vocab, learned


def _open_clip_ids(base, texts):
    rows = base(texts, context_length=CONTEXT).tolist()
    return [row[:row.index(base.eot_token_id) + 1] for row in rows]


def test_without_additions_it_is_open_clips_tokenizer(base):
    texts = ["A red circle left of a blue square.", "Ein roter Kreis links von einem blauen Quadrat!",
             "Красный круг слева от синего квадрата", "红色的圆在蓝色方块的左边。",
             "a small red circle above a big green triangle, " * 8]
    vocab = ClipVocabulary(base)
    assert (vocab.base_size, vocab.vocab_size, vocab.sot, vocab.eot) == (49408, 49408, 49406, 49407)
    ours = vocab.ids(texts, CONTEXT)
    assert ours == _open_clip_ids(base, texts)
    assert len(ours[-1]) == CONTEXT and ours[-1][-1] == vocab.eot
    assert vocab.truncated(texts, CONTEXT) == 1


def test_learning_russian_keeps_english_and_shortens_russian(base, russian):
    vocab, learned = russian
    plain = ClipVocabulary(base)
    assert vocab.ids(ENGLISH, CONTEXT) == plain.ids(ENGLISH, CONTEXT)
    before = sum(len(plain.encode(t)) for t in CORPUS)
    after = sum(len(vocab.encode(t)) for t in CORPUS)
    assert after < 0.3 * before
    assert vocab.new_ids("ru") == range(49408, vocab.vocab_size) and len(learned.new_tokens) > 0
    used_new = {i for i in vocab.token_set(CORPUS) if i >= vocab.base_size}
    assert used_new and min(used_new) >= 49408 and max(used_new) < vocab.vocab_size
    assert plain.truncated(RUSSIAN_LONG, CONTEXT) > 0 and vocab.truncated(CORPUS, CONTEXT) == 0
    assert len(base.encoder) == 49408 and len(base.bpe_ranks) == 48894  # the base is untouched
    assert learned.words == len({w for t in CORPUS for w in t.lower().split()})


def test_learning_stops_when_no_pair_is_seen_twice(base, russian):
    vocab, learned = russian
    assert len(learned.merges) < learned.budget and "no unprotected pair seen 2 times" in learned.note
    assert all(len(vocab.encode(w)) == 1 for t in CORPUS for w in t.split())  # every word recurs
    corpus = ["кот и кошка", "собака и кот", "кошка спит", "мышка бежит"]
    vocab = ClipVocabulary(base)
    learned = vocab.learn("ru", corpus)
    pairs = Counter(p for t in corpus for w in t.split() for p in itertools.pairwise(vocab.encode(w)))
    assert learned.merges and pairs and max(pairs.values()) < 2


def test_training_captions_decode_to_the_cleaned_text(base, russian):
    vocab, _ = russian
    for caption, ids in zip(CORPUS, vocab.ids(CORPUS, CONTEXT)):
        assert ids[0] == vocab.sot and ids[-1] == vocab.eot
        assert " ".join(vocab.decode(ids[1:-1]).split()) == " ".join(caption.lower().split())


def test_a_pair_of_a_protected_word_is_never_merged(base):
    german = "donaudampfschifffahrt"
    corpus = [german] * 50 + ["kapitänsmütze"] * 3
    segmentation = base.bpe("".join(base.byte_encoder[b] for b in german.encode())).split()
    protected_pairs = set(zip(segmentation, segmentation[1:]))
    free = ClipVocabulary(base)
    assert free.learn("de", corpus).merges[0] in protected_pairs  # the most frequent pairs are German
    assert free.encode(german) != base.encode(german)
    vocab = ClipVocabulary(base)
    learned = vocab.learn("de", corpus, protected=[f"Die {german} fährt."])
    assert learned.merges and not protected_pairs & set(learned.merges)
    assert vocab.encode(german) == base.encode(german)
    assert len(vocab.encode("kapitänsmütze")) < len(base.encode("kapitänsmütze"))


def test_budget_and_a_tiny_corpus(base):
    learned = ClipVocabulary(base).learn("ru", CORPUS, budget=5)
    assert len(learned.merges) == 5 and learned.note == "learnt 5 of 5 merges"
    tiny = ClipVocabulary(base).learn("ru", ["кот кот"], budget=100)
    assert 0 < len(tiny.merges) < 100 and tiny.words == 1
    assert tiny.note.startswith(f"learnt {len(tiny.merges)} of 100 merges: ")
    single = ClipVocabulary(base).learn("ru", ["кот"], budget=100)
    assert single.merges == [] and single.note.startswith("learnt 0 of 100 merges: ")


def test_json_round_trip_and_refusals(base, russian):
    vocab = ClipVocabulary(base, russian[0].additions)  # a copy: the fixture stays Russian only
    vocab.learn("uk", ["червоне коло ліворуч від синього квадрата"] * 3, protected=ENGLISH + CORPUS)
    text = vocab.to_json()
    again = ClipVocabulary.from_json(text, base)
    assert again.languages == ["ru", "uk"] and again.sha256() == vocab.sha256()
    assert again.ids(CORPUS + ENGLISH, CONTEXT) == vocab.ids(CORPUS + ENGLISH, CONTEXT)
    assert vocab.new_ids("uk").start == vocab.new_ids("ru").stop

    def refused(edit) -> str:
        doc = json.loads(text)
        edit(doc)
        with pytest.raises(ArtifactError) as info:
            ClipVocabulary.from_json(json.dumps(doc), base)
        return str(info.value)

    assert "another base" in refused(lambda d: d["base"].update(merges_sha256="0" * 64))
    assert "another base" in refused(lambda d: d["base"].update(size=49409))
    assert "merge" in refused(lambda d: d["additions"][0]["merges"][0].__setitem__(1, "zzz"))
    assert "new tokens" in refused(lambda d: d["additions"][0]["new_tokens"].__setitem__(0, "x"))
    assert "language" in refused(lambda d: d["additions"][1].update(language="ru"))
    with pytest.raises(ArtifactError):
        ClipVocabulary.from_json("{not json", base)
    with pytest.raises(MlclipError) as info:
        vocab.learn("ru", CORPUS)
    assert "\n" not in str(info.value)


def test_learning_is_deterministic(base):
    one = ClipVocabulary(base)
    one.learn("ru", CORPUS, budget=200)
    two = ClipVocabulary(base)
    two.learn("ru", CORPUS[::-1], budget=200)
    assert one.to_json() == two.to_json()


def test_split_han_makes_each_han_or_kana_character_a_word_and_changes_nothing_else(base):
    tok = base
    plain, split = ClipVocabulary(tok), ClipVocabulary(tok, split_han=True)
    for text in ("a red circle left of a blue square", "ein roter kreis", "красный круг"):
        assert split.ids([text], 64) == plain.ids([text], 64)
    chinese = ["左边有一个红色的圆形和蓝色的方形"] * 3 + ["右边有一个绿色的三角形和红色的圆形"] * 3
    learnt = split.learn("zh", chinese)
    pieces = [split._decoder[i] for i in split.encode(chinese[0])]
    assert len(pieces) == len(chinese[0])  # one token per character
    whole = ClipVocabulary(tok)
    whole.learn("zh", chinese)
    assert len(whole.encode(chinese[0])) == 1 < len(pieces)  # without the split the phrase is one token
    again = ClipVocabulary.from_json(split.to_json(), tok)
    assert again.split_han and again.encode(chinese[0]) == split.encode(chinese[0]) and learnt.merges


def test_cjk_words_split_unspaced_chinese_and_japanese_into_words_and_are_saved():
    from open_clip.tokenizer import SimpleTokenizer

    base = SimpleTokenizer()
    words = ClipVocabulary(base, cjk_words=True)
    chars = ClipVocabulary(base, split_han=True)
    assert len(words._words("黄色小菱形")) == 3 and len(chars._words("黄色小菱形")) == 5  # 黄色 / 小 / 菱形
    assert words.encode("a red circle") == chars.encode("a red circle") == base.encode("a red circle")
    japanese = words._words("左上に黄色い小さなひし形があります")
    assert len(japanese) == 8  # 左上 / に / 黄色い / 小さな / ひし形 / が / あり / ます
    again = ClipVocabulary.from_json(words.to_json(), base)
    assert again.cjk_words and again.encode("黄色小菱形") == words.encode("黄色小菱形")
