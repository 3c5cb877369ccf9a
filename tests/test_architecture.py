"""The package's import graph keeps the layout docs/architecture.md describes: layers that import
only downwards, no cycle, the two methods as peers, references/ outside the library, and command
modules that never import one another. Imports inside functions count."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "mlclip_cli"

# Bottom first. A module may import its own layer or a lower one.
LAYERS = (
    ("foundation", {"mlclip_cli", "errors", "atomic", "registry", "text", "text_segment", "provenance", "images", "metrics", "workspace",
                    "artifacts", "feature_shards", "search", "retrieval", "xtd10_layout", "locks", "text_files", "inputs",
                    "faults"}),
    ("data", {"world", "datasets"}),
    ("models", {"models", "training"}),
    ("core", {"core", "encoders", "features", "langid"}),
    ("methods", {"mla", "continual"}),
    ("dispatch", {"methods", "loading"}),
    ("applications", {"bench", "embed", "export_onnx", "api", "collection"}),
    ("workflows", {"demo", "demo_report", "reproduce", "references", "serve"}),
    ("cli", {"cli", "__main__"}),
)
CLI_SHARED = {"commands", "console", "options", "progress", "tables"}  # what command modules may share


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()

    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(parent + ([base] if base else []))
                targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
            else:
                continue
            for target in targets:
                found = resolve(target) if target.startswith("mlclip_cli") else None
                if found and found != name:
                    graph[name].add(found)
    return graph


def _layer(module: str) -> int:
    top = module.split(".")[1] if "." in module else module
    for index, (_, members) in enumerate(LAYERS):
        if top in members:
            return index
    raise AssertionError(f"{module} is in no layer of LAYERS (add it to docs/architecture.md and this test)")


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return _graph()


def test_every_module_has_a_layer(graph):
    for module in graph:
        _layer(module)


def test_imports_run_downwards_only(graph):
    upward = [f"{a} ({LAYERS[_layer(a)][0]}) -> {b} ({LAYERS[_layer(b)][0]})"
              for a, targets in graph.items() for b in targets if _layer(b) > _layer(a)]
    assert not upward, "imports from a lower layer to a higher one:\n" + "\n".join(sorted(upward))


def test_no_import_cycle(graph):
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    assert not cycles, f"import cycles: {cycles}"


def test_the_methods_are_peers(graph):
    for a, b in (("mla", "continual"), ("continual", "mla")):
        crossing = sorted(f"{m} -> {t}" for m, targets in graph.items() if m.startswith(f"mlclip_cli.{a}")
                          for t in targets if t.startswith(f"mlclip_cli.{b}"))
        assert not crossing, f"{a}/ imports {b}/: {crossing}"


def test_references_stay_out_of_the_library(graph):
    users = sorted(m for m, targets in graph.items() if not m.startswith("mlclip_cli.references")
                   and any(t.startswith("mlclip_cli.references") for t in targets))
    assert not users, f"library modules import references/ (benchmarks and tests only): {users}"


def test_command_modules_never_import_one_another(graph):
    commands = {m for m in graph if m.startswith("mlclip_cli.cli.") and m.rsplit(".", 1)[1] not in CLI_SHARED | {"app"}}
    crossing = sorted(f"{m} -> {t}" for m in commands | {f"mlclip_cli.cli.{s}" for s in CLI_SHARED}
                      for t in graph[m] if t in commands | {"mlclip_cli.cli.app"})
    assert not crossing, f"command modules import one another (or the app): {crossing}"
