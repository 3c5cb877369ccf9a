"""Language identification: the script rule, both backends restricted to a set of languages, the
fallback, `mlclip langid` (Parquet / TSV, one-line errors) and `mlclip embed --lang auto` routing
each text like its given tag. Skipped when the optional 'langid' packages are not installed."""

from __future__ import annotations

import csv
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from mlclip_cli.errors import MlclipError

from conftest import world_with_micro_clip

SENTENCES = {  # written for these tests, not taken from any benchmark's data
    "de": "Zwei Kinder spielen im Garten mit einem roten Ball.",
    "fr": "Une femme lit un journal sur un banc près de la rivière.",
    "ja": "公園のベンチで男の人が新聞を読んでいる。",
    "zh": "一个男人在公园的长椅上看报纸。",
    "ko": "남자가 공원 벤치에서 신문을 읽고 있다.",
    "ru": "Мужчина читает газету на скамейке в парке.",
    "en": "A man is reading a newspaper on a park bench.",
    "es": "Un hombre lee el periódico en un banco del parque.",
}
HAS_LINGUA = importlib.util.find_spec("lingua") is not None  # the optional `langid` extra
BACKENDS_HERE = ("py3langid", "lingua") if HAS_LINGUA else ("py3langid",)
ALL = ["en", "de", "fr", "es", "it", "ko", "pl", "ru", "tr", "zh", "ja"]


@pytest.fixture(scope="module")
def langid():
    pytest.importorskip("py3langid")
    from mlclip_cli import langid

    return langid


def _one_line_error(result, needle: str) -> None:
    assert result.code != 0
    assert "error:" in result.err and needle in result.err, result.err
    assert len(result.err.strip().splitlines()) == 1, result.err
    assert "Traceback" not in result.err + result.out


@pytest.mark.parametrize("backend", ["py3langid", *(pytest.param(b, marks=pytest.mark.skipif(not HAS_LINGUA, reason="no lingua"))
                                                    for b in ("lingua", "lingua-low"))])
def test_detects_each_language_among_xtd10s_eleven(langid, backend):
    texts = list(SENTENCES.values())
    assert langid.detect_languages(texts, ALL, backend) == list(SENTENCES)


def test_script_rule_decides_cjk_and_cyrillic_without_a_model(langid):
    found = langid.identify([SENTENCES["ja"], SENTENCES["zh"], SENTENCES["ko"], SENTENCES["ru"], SENTENCES["de"]], ALL)
    assert [d.method for d in found] == ["script"] * 4 + ["model"]
    assert [d.confidence is None for d in found] == [True] * 4 + [False]
    assert 0.5 < found[-1].confidence <= 1
    # Kana present: Japanese even with Latin in it; Han alone: Chinese, or Japanese when no Chinese is allowed
    assert langid.detect_languages(["ONE WAYと書かれた道路標識", "日本語"], ALL) == ["ja", "zh"]
    assert langid.detect_languages(["日本語"], ["en", "ja"]) == ["ja"]
    # a Chinese caption that quotes English stays Chinese (a CJK character weighs 3 letters)
    assert langid.detect_languages(["桌子上的牙刷，上面写着 mystery toothbrush"], ALL) == ["zh"]


def test_restricted_set_is_honoured(langid):
    assert langid.detect_languages([SENTENCES["es"]], ["en", "it", "fr"])[0] in {"en", "it", "fr"}  # never "es"
    for backend in BACKENDS_HERE:
        found = langid.detect_languages(list(SENTENCES.values())[:1] + [SENTENCES["en"], SENTENCES["ru"]],
                                        ["de", "en", "ru"], backend)
        assert found == ["de", "en", "ru"]
        assert set(langid.detect_languages([SENTENCES[k] for k in ("de", "fr", "en", "es")], ["de", "en"], backend)) <= {"de", "en"}
    # one candidate for the script: no model needed; XTD10's "jp" is ja
    assert langid.identify(["Hund"], ["ru", "en"])[0] == langid.Detection("en", None, "script")
    assert langid.detect_languages([SENTENCES["ja"]], ["jp", "en"]) == ["ja"]


def test_no_match_is_one_line_error_unless_a_fallback_is_given(langid):
    for text in ("", "1234 5678", "!!! ...", SENTENCES["ja"]):
        with pytest.raises(MlclipError, match="matches none of the languages") as caught:
            langid.detect_languages(["Ein Hund", text], ["en", "de"])
        assert "\n" not in str(caught.value) and "text 2" in str(caught.value)
    found = langid.identify(["1234", SENTENCES["ko"], SENTENCES["de"]], ["en", "de"], fallback="en")
    assert [(d.language, d.method) for d in found] == [("en", "fallback"), ("en", "fallback"), ("de", "model")]
    assert langid.detect_languages(["1234"], ["en", "de"], BACKENDS_HERE[-1], fallback="de") == ["de"]
    with pytest.raises(MlclipError, match="--fallback-lang ko: not one of the languages"):
        langid.detect_languages(["x"], ["en", "de"], fallback="ko")
    with pytest.raises(MlclipError, match="unknown language code 'xx'"):
        langid.detect_languages(["x"], ["en", "xx"])
    with pytest.raises(MlclipError, match="unknown language-identification backend"):
        langid.detect_languages(["x"], ["en"], backend="nope")
    # a confidence floor turns a weak model decision into no match
    with pytest.raises(MlclipError, match="matches none"):
        langid.identify(["a dog"], ALL, min_confidence=0.99)


def test_missing_packages_fail_in_one_line_naming_the_extra(langid, monkeypatch):
    import sys

    for module, backend, hint in (("py3langid.langid", "py3langid", r"pip install py3langid \(a dependency"),
                                  ("lingua", "lingua", r"pip install 'mlclip\[langid\]'")):
        langid.get_backend.cache_clear()
        monkeypatch.setitem(sys.modules, module, None)  # import now raises ImportError
        try:
            with pytest.raises(MlclipError, match=hint):
                langid.detect_languages(["Ein Hund"], ["en", "de"], backend)
        finally:
            monkeypatch.delitem(sys.modules, module)
            langid.get_backend.cache_clear()


def _fake_extensions(root: Path) -> dict[str, Path]:
    """Index files only (no weights): enough to read an extension's languages."""
    mla, cll = root / "mla", root / "cll"
    (mla / "packs").mkdir(parents=True)
    keys = ("base_model", "base_identity", "tower_sha256", "tokenizer_sha256", "shared_sha256", "encoder")
    (mla / "extension.json").write_text(json.dumps({"method": "mla", **dict.fromkeys(keys, "x")}), encoding="utf-8")
    for language in ("ru", "de"):
        (mla / "packs" / f"{language}.json").write_text(
            json.dumps({"artifact": "mlclip-language-pack", "language": language}), encoding="utf-8")
    cll.mkdir()
    (cll / "extension.json").write_text(json.dumps({"method": "cll-clip", "languages": ["it", "ko"]}), encoding="utf-8")
    return {"mla": mla, "cll": cll}


def test_extension_languages_always_include_english(langid, tmp_path):
    folders = _fake_extensions(tmp_path)
    assert langid.extension_languages(folders["mla"]) == ["en", "de", "ru"]
    assert langid.extension_languages(folders["cll"]) == ["en", "it", "ko"]

    class WithLanguages:
        languages = ["de"]

    assert langid.encoder_languages(WithLanguages()) == ["en", "de"]
    assert langid.encoder_languages(object()) == ALL


def test_cli_writes_parquet_and_tsv(langid, run_cli, tmp_path):
    from mlclip_cli.artifacts import LANGID, read_metadata, read_table

    texts = tmp_path / "q.txt"
    lines = [SENTENCES[k] for k in ("de", "fr", "ja", "zh", "ko", "ru")]
    texts.write_text("\n".join(lines[:3]) + "\n\n" + "\n".join(lines[3:]) + "\n", encoding="utf-8")
    result = run_cli("langid", "--text-file", str(texts), "--out", str(tmp_path / "o.parquet"))
    assert result.code == 0, result.err
    assert "6 texts" in result.out and "ja" in result.out and "script 4" in result.out
    table = read_table(tmp_path / "o.parquet", LANGID).to_pylist()
    assert [r["language"] for r in table] == ["de", "fr", "ja", "zh", "ko", "ru"]
    assert [r["line"] for r in table] == [1, 2, 3, 5, 6, 7]  # the blank line 4 is skipped
    assert [r["text"] for r in table] == lines
    assert table[0]["method"] == "model" and 0 < table[0]["confidence"] <= 1 and table[2]["confidence"] is None
    assert read_metadata(tmp_path / "o.parquet")["backend"] == "py3langid"

    result = run_cli("langid", "--text-file", str(texts), "--langs", "en,de,fr,ja,zh,ko,ru", "--backend", BACKENDS_HERE[-1],
                     "--out", str(tmp_path / "o.tsv"))
    assert result.code == 0, result.err
    with (tmp_path / "o.tsv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    assert list(rows[0]) == [f.name for f in LANGID.schema]
    assert [r["language"] for r in rows] == ["de", "fr", "ja", "zh", "ko", "ru"]
    assert rows[2]["confidence"] == "" and float(rows[0]["confidence"]) > 0


def test_cli_extension_languages_and_fallback(langid, run_cli, tmp_path):
    folders = _fake_extensions(tmp_path)
    texts = tmp_path / "q.txt"
    texts.write_text(f"{SENTENCES['de']}\n{SENTENCES['ja']}\n", encoding="utf-8")
    _one_line_error(run_cli("langid", "--text-file", str(texts), "--extension", str(folders["mla"])),
                    "line 2:")
    result = run_cli("langid", "--text-file", str(texts), "--extension", str(folders["mla"]), "--fallback-lang", "en",
                     "--out", str(tmp_path / "o.tsv"))
    assert result.code == 0 and not result.err, result.err
    rows = list(csv.DictReader((tmp_path / "o.tsv").open(encoding="utf-8"), delimiter="\t"))
    assert [(r["language"], r["method"]) for r in rows] == [("de", "model"), ("en", "fallback")]
    _one_line_error(run_cli("langid", "--text-file", str(texts), "--extension", str(tmp_path)), "not a language-extension")
    _one_line_error(run_cli("langid", "--text-file", str(texts), "--extension", str(folders["mla"]), "--langs", "en"),
                    "pass one of them")


def test_cli_bad_input_is_one_line_error(langid, run_cli, tmp_path):
    good = tmp_path / "good.txt"
    good.write_text("Ein Hund\n", encoding="utf-8")
    empty = tmp_path / "empty.txt"
    empty.write_text("\n  \n", encoding="utf-8")
    binary = tmp_path / "b.bin"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("café crème\n".encode("latin-1"))
    _one_line_error(run_cli("langid", "--text-file", str(tmp_path / "missing.txt")), "missing.txt: no such file")
    _one_line_error(run_cli("langid", "--text-file", str(empty)), "empty file")
    _one_line_error(run_cli("langid", "--text-file", str(binary)), "binary file")
    _one_line_error(run_cli("langid", "--text-file", str(latin1)), "not UTF-8")
    _one_line_error(run_cli("langid", "--text-file", str(good), "--langs", "en,xx"), "unknown language code 'xx'")
    _one_line_error(run_cli("langid", "--text-file", str(good), "--out", str(tmp_path / "o.csv")), ".parquet or .tsv")
    _one_line_error(run_cli("langid", "--text-file", str(good), "--backend", "nope"), "unknown language-identification")
    assert not (tmp_path / "o.csv").exists()


def test_cli_help_has_an_example(run_cli):
    result = run_cli("langid", "--help")
    assert result.code == 0 and "Example" in result.out


@pytest.fixture(scope="module")
def tiny_extension(tmp_path_factory):
    pytest.importorskip("py3langid")
    from mlclip_cli.mla.method import MlaConfig, train_mla
    from mlclip_cli.mla.train import LoopConfig, StageConfig

    world = world_with_micro_clip(tmp_path_factory.mktemp("langid"), 16, 6, 4)
    loop = LoopConfig(stages="nlt,le", nlt=StageConfig(4, 5e-3, 0.1), le=StageConfig(2, 1e-3, 0.1), batch_size=16,
                      eval_every=1000, checkpoint_every=5)
    out = world["root"] / "mla"
    train_mla(MlaConfig(manifest=world["manifest"], out=out, languages=("de", "ru"), features_root=world["root"] / "features",
                        model=world["model"], vocab_size=300, loop=loop))
    return {**world, "extension": out}


def test_embed_auto_routes_like_the_given_tags(tiny_extension, run_cli, tmp_path):
    from mlclip_cli.artifacts import EMBEDDINGS, read_metadata, read_manifest, read_table

    table = read_manifest(tiny_extension["manifest"]).to_pandas()
    val = table[(table.split == "val") & table.language.isin(["en", "de", "ru"])].sort_values("sample_id")
    texts, tags = val.caption.tolist(), val.language.tolist()
    assert set(tags) == {"en", "de", "ru"}
    model = str(tiny_extension["extension"])
    (tmp_path / "all.txt").write_text("\n".join(texts) + "\n", encoding="utf-8")
    result = run_cli("embed", "--lang", "auto", "--text-file", str(tmp_path / "all.txt"), "--model", model,
                     "--out", str(tmp_path / "auto.parquet"))
    assert result.code == 0, result.err
    assert "detected:" in result.out
    auto = read_table(tmp_path / "auto.parquet", EMBEDDINGS)
    assert auto.column("input").to_pylist() == texts
    assert auto.column("language").to_pylist() == tags  # detected among the extension's de, ru + en
    identities = json.loads(read_metadata(tmp_path / "auto.parquet")["identity"])
    assert set(identities) == {"en", "de", "ru"} and len(set(identities.values())) == 3
    auto_vectors = np.stack(auto.column("embedding").to_numpy(zero_copy_only=False))
    for language in ("en", "de", "ru"):
        rows = [i for i, tag in enumerate(tags) if tag == language]
        (tmp_path / f"{language}.txt").write_text("\n".join(texts[i] for i in rows) + "\n", encoding="utf-8")
        result = run_cli("embed", "--lang", language, "--text-file", str(tmp_path / f"{language}.txt"), "--model", model,
                         "--out", str(tmp_path / f"{language}.parquet"))
        assert result.code == 0, result.err
        tagged = np.stack(read_table(tmp_path / f"{language}.parquet", EMBEDDINGS).column("embedding").to_numpy(zero_copy_only=False))
        np.testing.assert_allclose(auto_vectors[rows], tagged, atol=1e-5)
    # the routing matters: German through the English tower is not German through its pack
    de_rows = [i for i, tag in enumerate(tags) if tag == "de"]
    (tmp_path / "de.txt").write_text("\n".join(texts[i] for i in de_rows) + "\n", encoding="utf-8")
    run_cli("embed", "--lang", "en", "--text-file", str(tmp_path / "de.txt"), "--model", model, "--out", str(tmp_path / "x.parquet"))
    as_english = np.stack(read_table(tmp_path / "x.parquet", EMBEDDINGS).column("embedding").to_numpy(zero_copy_only=False))
    assert np.abs(as_english - auto_vectors[de_rows]).max() > 1e-3


def test_embed_auto_no_match_and_fallbacks(tiny_extension, run_cli, tmp_path):
    from mlclip_cli.artifacts import EMBEDDINGS, read_table

    model = str(tiny_extension["extension"])
    texts = tmp_path / "t.txt"
    texts.write_text(f"{SENTENCES['de']}\n12345\n{SENTENCES['ja']}\n", encoding="utf-8")
    out = tmp_path / "e.parquet"
    _one_line_error(run_cli("embed", "--lang", "auto", "--text-file", str(texts), "--model", model, "--out", str(out)),
                    "text 2: '12345' matches none")
    assert not out.exists()
    result = run_cli("embed", "--lang", "auto", "--text-file", str(texts), "--model", model, "--out", str(out),
                     "--fallback-lang", "ru")
    assert result.code == 0, result.err
    assert read_table(out, EMBEDDINGS).column("language").to_pylist() == ["de", "ru", "ru"]
    result = run_cli("embed", "--lang", "auto", "--text-file", str(texts), "--model", model, "--out", str(out),
                     "--fallback", "english")  # reuses --fallback english: unmatched text goes English
    assert result.code == 0, result.err
    assert read_table(out, EMBEDDINGS).column("language").to_pylist() == ["de", "en", "en"]
    _one_line_error(run_cli("embed", "--lang", "auto", "--text-file", str(texts), "--model", model, "--out", str(out),
                            "--fallback-lang", "ko"), "not one of the languages")
    # a plain CLIP: detected among XTD10's 11 languages, recorded per row
    result = run_cli("embed", "--lang", "auto", "--text-file", str(texts), "--model", tiny_extension["model"],
                     "--out", str(out), "--fallback-lang", "en")
    assert result.code == 0, result.err
    assert read_table(out, EMBEDDINGS).column("language").to_pylist() == ["de", "en", "ja"]


def test_bench_lang_auto_routes_each_caption_and_matches_the_given_tags(tiny_extension, tmp_path):
    """The world's de/ru captions are detected exactly, so auto routing gives the tagged results,
    and the result records where each language's captions went."""
    from mlclip_cli.bench.run import BenchConfig, run_bench

    base = dict(benchmark="xtd", manifest=tiny_extension["manifest"], out_dir=tmp_path / "r", features_dir=tmp_path / "f",
                languages=("de", "ru", "en"), model=str(tiny_extension["extension"]), split="val")
    given = run_bench(BenchConfig(**base)).result
    auto = run_bench(BenchConfig(**base, lang="auto")).result
    assert auto["lang"] == "auto" and given["lang"] == "given"
    for language in ("de", "ru", "en"):
        assert auto["languages"][language]["routed"] == {language: auto["languages"][language]["captions"]}
        assert auto["languages"][language]["routing_accuracy"] == 100.0
        for key, value in given["languages"][language]["metrics"].items():
            assert auto["languages"][language]["metrics"][key] == pytest.approx(value, abs=1e-6)
    with pytest.raises(MlclipError, match="unknown --lang"):
        run_bench(BenchConfig(**base, lang="guess"))
