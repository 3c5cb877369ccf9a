"""Figures in README.md and docs/ are rendered from results files (scripts/render_docs.py); a page
whose figure differs from its file, or a mark that names no figure, fails here."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("render_docs", ROOT / "scripts" / "render_docs.py")
render_docs = importlib.util.module_from_spec(spec)
spec.loader.exec_module(render_docs)

RERENDER = "run `python scripts/render_docs.py` and commit the pages"
# results files written before benchmarks recorded their commit; the pages that use them name the
# commit that measured them (git log of the file), and a rerun of the benchmark replaces them
WRITTEN_BEFORE_PROVENANCE = {"serve_load.json", "serve_load_paced150.json"}


def _pages():
    return [(page.relative_to(ROOT).as_posix(), page.read_text(encoding="utf-8")) for page in render_docs.PAGES]


def test_every_marked_figure_is_what_its_results_file_says():
    stale = [f"{name}: {line}" for name, text in _pages() for line in render_docs.differences(text)]
    assert not stale, f"figures that differ from their results files ({RERENDER}):\n" + "\n".join(stale)


def test_the_readme_and_the_benchmarks_render_their_measured_figures():
    pages = dict(_pages())
    assert len(render_docs.marks(pages["README.md"])) >= 25
    assert len(render_docs.marks(pages["docs/benchmarks.md"])) >= 25
    assert "<!--table demo-languages demo_report.json-->" in pages["README.md"]


def test_every_results_file_a_page_uses_says_when_and_at_which_commit_it_was_measured():
    used = {spec.split()[0] if spec.split()[0].endswith(".json") else spec.split()[1]
            for _, text in _pages() for spec in render_docs.marks(text)}
    assert used
    for name in sorted(used - WRITTEN_BEFORE_PROVENANCE):
        data = render_docs.load(name)
        record = data.get("provenance", data)
        assert record.get("commit") or data.get("created"), f"docs/results/{name} records no commit or date"
        assert record.get("date") or data.get("created"), f"docs/results/{name} records no date"


def test_a_changed_figure_is_caught_and_rendered_back():
    line = "English: <!--fig demo_report.json languages[language=en].zero_shot/mean_recall .1f-->12.3<!--/fig-->"
    found = render_docs.differences(line)
    assert len(found) == 1 and "'12.3'" in found[0]
    fixed = render_docs.render(line)
    assert render_docs.differences(fixed) == [] and "12.3" not in fixed


def test_a_changed_table_is_caught():
    page = "<!--table demo-languages demo_report.json-->\n| edited by hand |\n<!--/table-->"
    assert render_docs.differences(page) == ["table demo-languages demo_report.json"]


@pytest.mark.parametrize("mark, why", [
    ("<!--fig no_such_file.json a.b-->1<!--/fig-->", "does not exist"),
    ("<!--fig demo_report.json languages[language=xx].zero_shot/mean_recall-->1<!--/fig-->", "0 items"),
    ("<!--fig demo_report.json steps[0].no_such_key-->1<!--/fig-->", "no_such_key"),
    ("<!--table no-such-table demo_report.json-->\n<!--/table-->", "NAME FILE"),
])
def test_a_mark_that_names_nothing_is_an_error(mark, why):
    with pytest.raises(render_docs.DocsError, match=why):
        render_docs.differences(mark)


def test_the_path_syntax():
    data = {"runs": [{"name": "a", "v": 1.25}, {"name": "b", "v": {"x.y": 7}}], "steps": [3, 4]}
    assert render_docs.lookup(data, "runs[name=a].v") == 1.25
    assert render_docs.lookup(data, 'runs[name=b].v."x.y"') == 7
    assert render_docs.lookup(data, "steps[-1]") == 4
    assert render_docs.formatted(340, "minsec") == "5 min 40 s" and render_docs.formatted(0.625, "pct") == "62%"
