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
