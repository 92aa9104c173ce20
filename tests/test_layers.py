"""asclib stands in layers (docs/library.md, "Layers"): its import graph, read from the source
with ast, has no circle, config imports nothing of asclib, no module imports from a layer above
its own, and no module reads another module's private names."""

import ast
import re
from pathlib import Path

import pytest

from asclib.config import PROJECT_ROOT

PACKAGE = PROJECT_ROOT / "asclib"
MODULES = sorted(path.stem for path in PACKAGE.glob("*.py") if path.stem != "__init__")


def _imports(path: Path) -> dict[str, set[str]]:
    """The asclib modules `path` imports (anywhere in it, lazy imports included), each with the
    names it takes from them (`from asclib.x import y`, `x.y`)."""
    tree = ast.parse(path.read_text())
    aliases, used = {}, {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "asclib":
            for alias in node.names:
                if alias.name in MODULES:
                    aliases[alias.asname or alias.name] = alias.name
                    used.setdefault(alias.name, set())
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("asclib."):
            used.setdefault(node.module.split(".")[1], set()).update(alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("asclib."):
                    used.setdefault(alias.name.split(".")[1], set())
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases:
            used[aliases[node.value.id]].add(node.attr)
    used.pop(path.stem, None)
    return used


GRAPH = {module: _imports(PACKAGE / f"{module}.py") for module in MODULES}


def declared_layers(text: str) -> dict[str, int]:
    """Module -> layer from the table of docs/library.md's "Layers" section."""
    section = text.split("## Layers", 1)[1]
    layers = {}
    for number, modules in re.findall(r"^\| (\d+) \| ([^|]+) \|", section, re.M):
        for module in re.findall(r"`(\w+)`", modules):
            assert module not in layers, f"docs/library.md puts {module} in two layers"
            layers[module] = int(number)
    return layers


LAYERS = declared_layers((PROJECT_ROOT / "docs" / "library.md").read_text())


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import circles of `graph` (its strongly connected components of more than one module)."""
    index, low, stack, found = {}, {}, [], []

    def visit(module):
        index[module] = low[module] = len(index)
        stack.append(module)
        for other in graph[module]:
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            component = []
            while not component or component[-1] != module:
                component.append(stack.pop())
            if len(component) > 1:
                found.append(sorted(component))

    for module in graph:
        if module not in index:
            visit(module)
    return found


def test_the_import_graph_has_no_circle():
    assert circles({module: set(imported) for module, imported in GRAPH.items()}) == []


def test_the_circle_finder_finds_a_circle():
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_config_is_the_ground_floor():
    assert GRAPH["config"] == {}, f"asclib/config.py imports {sorted(GRAPH['config'])} of asclib"


def upward(graph: dict, layers: dict[str, int]) -> list[str]:
    """Every import of `graph` from a layer above the importing module's."""
    return [f"{module} (layer {layers[module]}) imports {other} (layer {layers[other]})"
            for module, imported in graph.items() for other in imported if layers[other] > layers[module]]


def test_every_module_has_one_layer_and_imports_none_above_it():
    assert sorted(LAYERS) == MODULES, "docs/library.md's layers must list every module of asclib once"
    assert upward(GRAPH, LAYERS) == []


def test_an_import_from_above_is_caught():
    layers = declared_layers("## Layers\n| 0 | `config`, `files` | ground |\n| 1 | `data` | data |\n")
    assert layers == {"config": 0, "files": 0, "data": 1}
    assert upward({"config": {"data"}, "files": set(), "data": {"config"}}, layers) == ["config (layer 0) imports data (layer 1)"]


@pytest.mark.parametrize("module", MODULES)
def test_no_module_reads_another_modules_private_names(module):
    private = sorted(f"{other}.{name}" for other, names in GRAPH[module].items() for name in names
                     if name.startswith("_") and not name.startswith("__"))
    assert private == [], f"asclib/{module}.py uses private names of other modules"
