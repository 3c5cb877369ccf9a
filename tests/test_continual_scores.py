"""Continual-learning scores: AA, forgetting, the JSON summary and its plots."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mlclip_cli.continual.scores import (
    METRICS, average_accuracy, forgetting, plot_aa_f, plot_heatmap, sequence_summary)

NAN = float("nan")
A = np.array([[80, NAN, NAN],
              [70, 60, NAN],
              [50, 65, 40]], dtype=np.float64)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _metrics(x: float) -> dict[str, float]:
    return {"image_retrieval_recall@1": x, "text_retrieval_recall@1": x + 1, "mean_recall": x + 2}


def _sequential() -> dict:
    rows = [{"en": _metrics(80)}, {"en": _metrics(70), "it": _metrics(60)},
            {"en": _metrics(50), "it": _metrics(65), "de": _metrics(40)}]
    return sequence_summary(["en", "it", "de"], rows)


def _joint() -> dict:
    return sequence_summary(["en", "it", "de"], [{"de": _metrics(30), "en": _metrics(50), "it": _metrics(40)}])


def test_average_accuracy_every_step():
    assert average_accuracy(A, 0) == pytest.approx(80.0)
    assert average_accuracy(A, 1) == pytest.approx((70 + 60) / 2)
    assert average_accuracy(A, 2) == pytest.approx((50 + 65 + 40) / 3)


def test_forgetting_every_step():
    assert forgetting(A, 0) is None
    assert forgetting(A, 1) == pytest.approx(80 - 70)
    # en: best of steps 0..1 is 80, now 50 -> 30; it: best of step 1 is 60, now 65 -> -5
    assert forgetting(A, 2) == pytest.approx(((80 - 50) + (60 - 65)) / 2) == pytest.approx(12.5)


def test_rising_language_counts_negative():
    rising = np.array([[40, NAN], [55, 70]], dtype=np.float64)
    assert forgetting(rising, 1) == pytest.approx(40 - 55)


def test_forgetting_uses_best_past_not_last():
    a = np.array([[50, NAN, NAN], [90, 10, NAN], [60, 20, 30]], dtype=np.float64)
    assert forgetting(a, 2) == pytest.approx(((90 - 60) + (10 - 20)) / 2)


def test_summary_columns_none_and_strict_json():
    s = _sequential()
    assert s["order"] == ["en", "it", "de"]
    assert set(s["metrics"]) == set(METRICS)
    r1 = s["metrics"]["image_retrieval_recall@1"]
    assert r1["matrix"] == [[80.0, None, None], [70.0, 60.0, None], [50.0, 65.0, 40.0]]
    assert r1["aa"] == pytest.approx([80.0, 65.0, 155 / 3])
    assert r1["f"][0] is None and r1["f"][1:] == pytest.approx([10.0, 12.5])
    assert r1["final_aa"] == pytest.approx(155 / 3) and r1["final_f"] == pytest.approx(12.5)
    assert s["metrics"]["mean_recall"]["matrix"][1] == [72.0, 62.0, None]
    text = json.dumps(s, allow_nan=False)
    assert json.loads(text)["metrics"]["mean_recall"]["matrix"][0] == [82.0, None, None]


def test_summary_columns_follow_order_not_row_keys():
    s = sequence_summary(["fr", "en"], [{"fr": _metrics(10)}, {"en": _metrics(30), "fr": _metrics(20)}])
    assert s["metrics"]["image_retrieval_recall@1"]["matrix"] == [[10.0, None], [20.0, 30.0]]


def test_summary_rejects_language_outside_order():
    with pytest.raises(ValueError, match="ja"):
        sequence_summary(["en"], [{"en": _metrics(1), "ja": _metrics(2)}])


def test_joint_summary():
    r1 = _joint()["metrics"]["image_retrieval_recall@1"]
    assert r1["matrix"] == [[50.0, 40.0, 30.0]]
    assert r1["aa"] == pytest.approx([40.0]) and r1["final_aa"] == pytest.approx(40.0)
    assert r1["f"] == [None] and r1["final_f"] is None
    json.dumps(_joint(), allow_nan=False)


def _assert_png_alone(path):
    assert path.read_bytes()[:8] == PNG_SIGNATURE and path.stat().st_size > 1000
    assert [p.name for p in path.parent.iterdir()] == [path.name]


@pytest.mark.parametrize("make", [_sequential, _joint])
def test_heatmap_png(tmp_path, make):
    out = plot_heatmap(make(), "mean_recall", tmp_path / "plots" / "heat.png", "heatmap")
    assert out == tmp_path / "plots" / "heat.png"
    _assert_png_alone(out)


def test_aa_f_png(tmp_path):
    runs = {"plain": _sequential(), "teir": _sequential(), "joint": _joint()}
    out = plot_aa_f(runs, "image_retrieval_recall@1", tmp_path / "aa_f.png", "AA and F")
    assert out == tmp_path / "aa_f.png"
    _assert_png_alone(out)
