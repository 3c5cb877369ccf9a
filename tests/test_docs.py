from pathlib import Path

from mlclip_cli.artifacts import ARTIFACTS

DOCS = Path(__file__).resolve().parents[1] / "docs" / "artifacts.md"


def test_every_schema_column_is_documented():
    text = DOCS.read_text(encoding="utf-8")
    for spec in ARTIFACTS.values():
        assert f"## {spec.name}" in text, f"docs/artifacts.md has no section for {spec.name}"
        section = text.split(f"## {spec.name}", 1)[1].split("\n## ", 1)[0]
        for field in spec.schema:
            assert f"`{field.name}`" in section, f"{spec.name}.{field.name} is not documented"


def test_every_relative_link_in_the_docs_exists():
    import re

    root = DOCS.parents[1]
    for page in [root / "README.md", *sorted((root / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text(encoding="utf-8")):
            if "://" in target:
                continue
            assert (page.parent / target).exists(), f"{page.name} links to {target}, which does not exist"


def test_no_link_or_path_leaves_the_repository():
    """A page may point only at files of this repository: a reader's clone has nothing beside it."""
    import re

    root = DOCS.parents[1].resolve()
    pages = [root / "README.md", root / "CONTRIBUTING.md", *sorted((root / "docs").glob("*.md"))]
    for page in pages:
        text = page.read_text(encoding="utf-8")
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
            if "://" in target or target.startswith("mailto:"):
                continue
            resolved = (page.parent / target).resolve()
            assert resolved.is_relative_to(root), f"{page.name} links to {target}, outside the repository"
        # a path climbing out of the checkout (`../shared/...`, `../../data`) in prose or in a command,
        # read from the page's folder and from the root (where the commands run)
        prose = re.sub(r"\]\([^)]*\)", "]()", text)
        for match in re.finditer(r"(?<![\w.'])\.\./[\w./-]*", prose):
            for base in (page.parent, root):
                assert (base / match.group()).resolve().is_relative_to(root), (
                    f"{page.name} names {match.group()}, a path outside the repository")


def test_no_page_cites_a_note_that_is_not_shipped():
    root = DOCS.parents[1]
    for page in [root / "README.md", *sorted((root / "docs").glob("*.md"))]:
        text = page.read_text(encoding="utf-8")
        for word in ("DESIGN.md", "../shared", "STYLE.md"):
            assert word not in text, f"{page.name} cites {word}, which is not in the repository"
