"""The layout's rules, read from the code's own imports (every import, lazy ones too).

- ``schemas`` imports nothing of the project but ``schemas``: it is the contract.
- ``processors`` imports neither ``streams`` nor ``sinks``: decisions stay pure.
- Only ``commands`` (and tests) import ``commands``.
- No import circles between the project's modules.
- Small parts: no function over 60 lines, no module over 400, median function under 15.
"""

import ast
import statistics
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("commands", "streams", "processors", "schemas", "sinks", "simulator")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """The project modules ``name`` imports (``from pkg import mod`` resolves to the module)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {m for m in found if m in MODULES and m != name}


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _package(module: str) -> str:
    return module.split(".", 1)[0]


def test_the_layout_is_read() -> None:
    # Guards the rules below against passing on an empty or misread tree.
    assert {_package(m) for m in MODULES} == set(PACKAGES)
    assert "processors.budget" in GRAPH["processors.router"]
    assert "schemas.errors" in GRAPH["streams.client"]


@pytest.mark.parametrize(
    ("package", "may_not_import"),
    [
        ("schemas", {"commands", "streams", "processors", "sinks", "simulator"}),
        ("processors", {"commands", "streams", "sinks", "simulator"}),
        ("streams", {"commands"}),
        ("sinks", {"commands"}),
        ("simulator", {"commands"}),
    ],
)
def test_imports_run_one_way(package: str, may_not_import: set[str]) -> None:
    wrong = sorted(
        f"{module} imports {target}"
        for module, targets in GRAPH.items()
        if _package(module) == package
        for target in targets
        if _package(target) in may_not_import
    )
    assert wrong == []


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in graph[node]:
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_circles() -> None:
    assert _cycles(GRAPH) == []


def test_a_circle_is_seen() -> None:
    # The check above must be able to fail.
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


MAX_FUNCTION_LINES = 60
MAX_MODULE_LINES = 400
MAX_MEDIAN_FUNCTION_LINES = 15


def _function_lengths() -> dict[str, int]:
    """``module:function`` -> its lines, decorators included."""
    lengths: dict[str, int] = {}
    for name, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                lengths[f"{name}:{node.lineno}:{node.name}"] = (
                    (node.end_lineno or first) - first + 1
                )
    return lengths


FUNCTIONS = _function_lengths()


def test_no_function_is_long() -> None:
    assert {f: n for f, n in FUNCTIONS.items() if n > MAX_FUNCTION_LINES} == {}


def test_no_module_is_long() -> None:
    lines = {name: len(path.read_text().splitlines()) for name, path in MODULES.items()}
    assert {m: n for m, n in lines.items() if n > MAX_MODULE_LINES} == {}


def test_most_functions_are_short() -> None:
    assert len(FUNCTIONS) > 100  # the whole tree was read
    assert statistics.median(FUNCTIONS.values()) < MAX_MEDIAN_FUNCTION_LINES
